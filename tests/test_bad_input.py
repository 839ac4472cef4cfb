"""Bad input everywhere, one table: every loader and command line names the bad item in a clear error (or skips it
with a report), never crashes from deep inside a library, and never modifies its input."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, pixels_string
from data_loaders import FER2013FormatError, IPhoneXFormatError, load_fer2013, load_iphonex
from data_loaders.personal import PersonalPhotoError, load_personal

GOOD_ROW = "3," + pixels_string(np.full(2304, 100, np.uint8)) + ",Training"


def _csv(rows):
    return ("emotion,pixels,Usage\n" + "\n".join(rows) + "\n").encode()


def _png(size=(48, 48), value=128):
    buf = io.BytesIO()
    Image.fromarray(np.full(size[::-1], value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _faces(body: str) -> bytes:
    return ("face_samples = {" + body + "}\n").encode()


CLOUD = '"x": [0.1, 0.2], "y": [0.0, 0.1], "z": [0.05, 0.05]'

# (case id, relative path to write, bytes, loader, expected error, text the message must contain)
CASES = [
    ("fer: empty file", "fer2013.csv", b"", "fer", FER2013FormatError, "fer2013.csv"),
    (
        "fer: truncated gzip",
        "fer2013.csv.gz",
        gzip.compress(_csv([GOOD_ROW] * 50))[:300],
        "fer",
        FER2013FormatError,
        "fer2013.csv.gz",
    ),
    (
        "fer: UTF-16 text",
        "fer2013.csv",
        _csv([GOOD_ROW]).decode().encode("utf-16"),
        "fer",
        FER2013FormatError,
        "fer2013.csv",
    ),
    ("fer: binary, not a csv", "fer2013.csv", _png(), "fer", FER2013FormatError, "fer2013.csv"),
    (
        "fer: missing pixels column",
        "fer2013.csv",
        b"emotion,Usage\n3,Training\n",
        "fer",
        FER2013FormatError,
        "no 'pixels' column",
    ),
    (
        "fer: wrong pixel count",
        "fer2013.csv",
        _csv([GOOD_ROW, "3," + " ".join(["1"] * 2303) + ",Training"]),
        "fer",
        FER2013FormatError,
        "fer2013.csv:3",
    ),
    (
        "fer: unknown label",
        "fer2013.csv",
        _csv([GOOD_ROW.replace("3,", "9,", 1)]),
        "fer",
        FER2013FormatError,
        "not a FER2013 label code",
    ),
    (
        "fer: pixel over 255",
        "fer2013.csv",
        _csv([GOOD_ROW.replace(" 100", " 300", 1)]),
        "fer",
        FER2013FormatError,
        "expected an integer 0-255",
    ),
    (
        "fer: unknown Usage",
        "fer2013.csv",
        _csv([GOOD_ROW.replace("Training", "Validation")]),
        "fer",
        FER2013FormatError,
        "Usage 'Validation'",
    ),
    ("fer folder: zero-byte image", "train/happy/0.png", b"", "fer-folder", FER2013FormatError, "0.png"),
    (
        "fer folder: huge image",
        "train/happy/0.png",
        _png((4000, 3000)),
        "fer-folder",
        FER2013FormatError,
        "expected 48×48",
    ),
    ("fer folder: not an image", "train/happy/0.png", b"hello", "fer-folder", FER2013FormatError, "0.png"),
    ("iphonex: empty faces.py", "faces.py", b"", "iphonex", IPhoneXFormatError, "face_samples"),
    (
        "iphonex: truncated faces.py",
        "faces.py",
        _faces('"s1": {"happy": {' + CLOUD + "}}")[:40],
        "iphonex",
        IPhoneXFormatError,
        "faces.py:1",
    ),
    (
        "iphonex: NaN",
        "faces.py",
        _faces('"s1": {"happy": {"x": [nan, 0.2], "y": [0, 0], "z": [0, 0]}}'),
        "iphonex",
        IPhoneXFormatError,
        "'s1' emotion 'happy'",
    ),
    (
        "iphonex: inf",
        "faces.py",
        _faces('"s1": {"sad": {"x": [1e999, 0.2], "y": [0, 0], "z": [0, 0]}}'),
        "iphonex",
        IPhoneXFormatError,
        "NaN or inf",
    ),
    (
        "iphonex: empty cloud",
        "faces.py",
        _faces('"s1": {"sad": {"x": [], "y": [], "z": []}}'),
        "iphonex",
        IPhoneXFormatError,
        "empty cloud",
    ),
    (
        "iphonex: unequal lengths",
        "faces.py",
        _faces('"s1": {"fear": {"x": [0.1], "y": [0, 0], "z": [0, 0]}}'),
        "iphonex",
        IPhoneXFormatError,
        "different lengths",
    ),
    (
        "iphonex: Latin-1 bytes",
        "faces.py",
        "face_samples = {'é': {}}\n".encode("latin-1"),
        "iphonex",
        IPhoneXFormatError,
        "not UTF-8",
    ),
    (
        "iphonex: truncated npz",
        "faces.npz",
        b"PK\x03\x04 truncated",
        "iphonex",
        IPhoneXFormatError,
        "not a readable .npz",
    ),
    ("iphonex: zero-byte ply", "s1/happy.ply", b"", "iphonex-folder", IPhoneXFormatError, "happy.ply: empty file"),
    ("iphonex: unknown file", "s1/happy.txt", b"1 2 3", "iphonex-folder", IPhoneXFormatError, "not a point-cloud"),
    ("photos: zero-byte image", "train/happy/1.jpg", b"", "photos", PersonalPhotoError, "1.jpg"),
    ("photos: not an image", "train/happy/1.jpg", b"hello", "photos", PersonalPhotoError, "1.jpg"),
    (
        "photos: huge image without a face",
        "train/happy/1.png",
        _png((6000, 4000), 90),
        "photos",
        PersonalPhotoError,
        "no face found",
    ),
]


def _load(kind, root, target):
    if kind == "fer":
        return load_fer2013(target, use_cache=False)
    if kind == "fer-folder":
        return load_fer2013(root, use_cache=False)
    if kind == "iphonex":
        return load_iphonex(target, use_cache=False)
    if kind == "iphonex-folder":
        return load_iphonex(root, use_cache=False)
    return load_personal(root)


@pytest.mark.parametrize("case, relative, content, kind, error, text", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error_naming_the_item(tmp_path, case, relative, content, kind, error, text):
    root = tmp_path / "data"
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    before = (target.read_bytes(), target.stat().st_mtime_ns)
    with pytest.warns(UserWarning) if kind == "photos" else _no_warning_check():
        with pytest.raises(error) as err:
            _load(kind, root, target)
    assert text in str(err.value), f"{case}: {err.value}"
    assert (target.read_bytes(), target.stat().st_mtime_ns) == before, "the input file was modified"


class _no_warning_check:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize(
    "argv, code",
    [
        (["-m", "data_loaders", "check", "{bad_csv}"], 1),
        (["-m", "data_loaders", "check", "{missing}"], 2),
        (["-m", "widgets.viewer3d", "{bad_faces}", "--html", "{out}"], 2),
        (["-m", "data_loaders", "synth", "--images", "1", "--out", "{out_dir}"], 2),
    ],
)
def test_command_lines_report_bad_input_without_a_traceback(tmp_path, argv, code):
    bad_csv = tmp_path / "fer2013.csv"
    bad_csv.write_bytes(_csv([GOOD_ROW, "3,1 2 3,Training"]))
    bad_faces = tmp_path / "faces.py"
    bad_faces.write_text("import os\n")
    paths = {
        "bad_csv": bad_csv,
        "missing": tmp_path / "missing.csv",
        "bad_faces": bad_faces,
        "out": tmp_path / "out.html",
        "out_dir": tmp_path / "synthetic",
    }
    args = [a.format(**paths) for a in argv]
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, EXPRESSION_LAB_CACHE=str(tmp_path / "cache")),
        timeout=300,
    )
    assert proc.returncode == code, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def test_a_negative_seed_names_the_option(tmp_path, capsys):
    """Regression: numpy's "expected non-negative integer" named neither the seed nor its value."""
    from data_loaders.__main__ import main

    assert main(["synth", "--seed", "-1", "--out", str(tmp_path / "synthetic")]) == 2
    assert "seed must be a whole number ≥ 0, got -1" in capsys.readouterr().err


def test_a_damaged_cache_entry_is_parsed_again(tmp_path):
    from data_loaders import cache

    csv = tmp_path / "fer2013.csv"
    csv.write_bytes(_csv([GOOD_ROW] * 3))
    assert len(load_fer2013(csv)) == 3
    for entry in cache.cache_dir().glob("fer2013-*.npz"):
        entry.write_bytes(b"PK\x03\x04 damaged by a crash")
    assert len(load_fer2013(csv)) == 3
