"""data_loaders.fer2013: every format users meet, every kind of bad row, path resolution and the cache."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import pixels_string, write_fer_csv
from data_loaders import EMOTIONS, FER2013FormatError, load_fer2013
from data_loaders import fer2013 as fer_module


def test_reads_the_kaggle_csv(fer_csv, tiny_faces):
    images, labels = tiny_faces
    data = load_fer2013(fer_csv)
    assert data.images.dtype == np.uint8 and data.images.shape == (14, 48, 48)
    assert data.labels.dtype == np.int64 and np.array_equal(data.labels, labels)
    assert np.array_equal(data.images, images), "pixels must be row-major 48x48, unchanged"
    assert data.class_names == EMOTIONS == ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
    assert data.usages == ("Training", "PublicTest", "PrivateTest")
    assert str(fer_csv) in data.description


def test_usage_selects_rows(fer_csv):
    assert len(load_fer2013(fer_csv, usage="Training")) == 7
    both = load_fer2013(fer_csv, usage=["PublicTest", "PrivateTest"])
    assert len(both) == 7 and set(both.usage) == {"PublicTest", "PrivateTest"}


def test_missing_usage_is_an_error_not_an_empty_set(tmp_path, tiny_faces):
    images, labels = tiny_faces
    path = write_fer_csv(tmp_path / "fer2013.csv", images, labels, ["Training"] * 14)
    with pytest.raises(ValueError, match="no PrivateTest rows; it has: Training"):
        load_fer2013(path, usage="PrivateTest")


def test_gzip_zip_and_tar_archives_give_the_same_data(fer_csv, tmp_path):
    raw = fer_csv.read_bytes()
    gz = tmp_path / "fer2013.csv.gz"
    gz.write_bytes(gzip.compress(raw))
    zp = tmp_path / "fer2013.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("fer2013/fer2013.csv", raw)
        zf.writestr("README.txt", "not data")
    tgz = tmp_path / "fer2013.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:  # the original distribution: fer2013/fer2013.csv inside
        info = tarfile.TarInfo("fer2013/fer2013.csv")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    reference = load_fer2013(fer_csv)
    for path in (gz, zp, tgz):
        data = load_fer2013(path)
        assert np.array_equal(data.images, reference.images), path.name
        assert np.array_equal(data.labels, reference.labels), path.name
        assert list(data.usage) == list(reference.usage), path.name


def test_icml_face_data_headers_with_leading_spaces(tmp_path, tiny_faces):
    images, labels = tiny_faces
    usages = ["Training"] * 10 + ["PrivateTest"] * 4
    path = write_fer_csv(
        tmp_path / "icml_face_data.csv",
        images,
        labels,
        usages,
        header="emotion, Usage, pixels",
        columns=("e", "u", "p"),
    )
    data = load_fer2013(path)
    assert np.array_equal(data.images, images)
    assert list(data.usage) == usages


def test_kaggle_train_csv_is_training(tmp_path, tiny_faces):
    images, labels = tiny_faces
    path = tmp_path / "train.csv"
    path.write_text("emotion,pixels\n" + "\n".join(f"{lab},{pixels_string(img)}" for img, lab in zip(images, labels)))
    data = load_fer2013(path)
    assert set(data.usage) == {"Training"} and np.array_equal(data.labels, labels)
    assert "no Usage column: every row taken as Training" in data.description, (  # said, not guessed in silence
        f"expected the description to say how Usage was assigned, found {data.description!r}"
    )


def test_kaggle_test_csv_is_unlabelled(tmp_path, tiny_faces):
    images, _ = tiny_faces
    path = tmp_path / "test.csv"
    path.write_text("pixels\n" + "\n".join(pixels_string(i) for i in images))
    data = load_fer2013(path)
    assert (data.labels == -1).all(), "test.csv has no labels: -1 marks them unknown"
    assert "every row taken as unlabelled PublicTest" in data.description, (
        f"expected the description to say how Usage was assigned, found {data.description!r}"
    )
    assert np.array_equal(data.images, images)


def test_image_folders(tmp_path, tiny_faces):
    images, labels = tiny_faces
    for k, (img, lab) in enumerate(zip(images, labels)):
        split = "train" if k < 10 else "test"
        folder = tmp_path / "mirror" / split / EMOTIONS[lab].lower()
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{k:03d}.png")
    data = load_fer2013(tmp_path / "mirror")
    assert len(data) == 14
    assert data.usages == ("Training", "Test"), "the test folder merges PublicTest and PrivateTest"
    # every saved face comes back with its label
    found = {(lab, img.tobytes()) for img, lab in zip(data.images, data.labels)}
    assert found == {(lab, img.tobytes()) for img, lab in zip(images, labels)}


def test_image_folders_reject_a_non_image_file(tmp_path, tiny_faces):
    folder = tmp_path / "mirror" / "train" / "happy"
    folder.mkdir(parents=True)
    Image.fromarray(tiny_faces[0][0]).save(folder / "ok.png")
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(FER2013FormatError, match=r"notes\.txt.*not an image file"):
        load_fer2013(tmp_path / "mirror")
    with pytest.warns(UserWarning, match="skipped 1 bad rows"):
        data = load_fer2013(tmp_path / "mirror", on_bad_rows="skip")
    assert len(data) == 1 and "notes.txt" in data.bad_rows[0].where


def test_image_folders_list_what_the_layout_has_no_place_for(tmp_path, tiny_faces):
    """Regression: a valid/ split folder, an image directly in train/ and a folder inside an emotion folder were
    skipped without a word (and `check` said 0 bad rows)."""
    root = tmp_path / "mirror"
    face = Image.fromarray(tiny_faces[0][0])
    for folder in ("train/happy", "valid/happy", "train/sad/more", "__MACOSX/train"):
        (root / folder).mkdir(parents=True)
    face.save(root / "train" / "happy" / "ok.png")
    face.save(root / "valid" / "happy" / "lost.png")
    face.save(root / "train" / "stray.png")
    face.save(root / "train" / "sad" / "more" / "deep.png")
    with pytest.raises(FER2013FormatError, match=r"valid.*not a split folder"):
        load_fer2013(root)
    with pytest.warns(UserWarning, match="skipped 3 bad rows"):
        data = load_fer2013(root, on_bad_rows="skip")
    reasons = {Path(b.where).relative_to(root).as_posix(): b.reason for b in data.bad_rows}
    assert set(reasons) == {"valid", "train/stray.png", "train/sad/more"}, reasons
    assert len(data) == 1, f"expected the one face in its place, found {len(data)}"


def test_image_folders_reject_an_unknown_emotion_folder(tmp_path, tiny_faces):
    folder = tmp_path / "mirror" / "train" / "contempt"
    folder.mkdir(parents=True)
    Image.fromarray(tiny_faces[0][0]).save(folder / "a.png")
    with pytest.raises(FER2013FormatError, match="contempt.*not an emotion"):
        load_fer2013(tmp_path / "mirror")


def _corrupt(fer_csv, line_number, new_line):
    lines = fer_csv.read_text().splitlines()
    lines[line_number - 1] = new_line
    fer_csv.write_text("\n".join(lines) + "\n")


GOOD = " ".join(["7"] * 2304)


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        (f"0,{' '.join(['7'] * 2303)},Training", "has 2303 pixel values, expected 2304"),
        (f"0,{' '.join(['7'] * 2305)},Training", "has 2305 pixel values, expected 2304"),
        (f"0,{GOOD[:-1]}7x,Training", "pixel 2304 is '7x', expected an integer 0-255"),
        (f"0,{GOOD[:-1]}300,Training", "pixel 2304 is 300, expected an integer 0-255"),
        (f"0,{GOOD[:-1]}-1,Training", "pixel 2304 is '-1', expected an integer 0-255"),
        (f"9,{GOOD},Training", "emotion '9' is not a FER2013 label code 0-6"),
        (f"happy,{GOOD},Training", "emotion 'happy' is not a FER2013 label code 0-6"),
        (f"3,{GOOD},Validation", "Usage 'Validation' is not one of Training, PublicTest, PrivateTest"),
        ("3,,Training", "has 0 pixel values, expected 2304"),
        # another script's digit: a \\d pattern let it through to numpy's parser, which failed naming no row
        (f"0,{GOOD[:-1]}\u0663,Training", "pixel 2304 is '\u0663', expected an integer 0-255"),
    ],
)
def test_bad_rows_name_the_file_and_line(fer_csv, bad_line, expected):
    _corrupt(fer_csv, 5, bad_line)
    with pytest.raises(FER2013FormatError) as err:
        load_fer2013(fer_csv)
    assert f"{fer_csv}:5: {expected}" in str(err.value)


def test_skip_reports_every_bad_row_and_keeps_the_rest(fer_csv, tiny_faces):
    images, labels = tiny_faces
    _corrupt(fer_csv, 3, f"0,{GOOD[:-1]}999,Training")
    _corrupt(fer_csv, 9, "4,1 2 3,PublicTest")
    with pytest.warns(UserWarning, match=r"skipped 2 bad rows \(3, 9\)"):
        data = load_fer2013(fer_csv, on_bad_rows="skip")
    assert len(data) == 12
    assert [b.where for b in data.bad_rows] == [f"{fer_csv}:3", f"{fer_csv}:9"]
    keep = [i for i in range(14) if i not in (1, 7)]  # csv lines 3 and 9 are rows 1 and 7
    assert np.array_equal(data.images, images[keep]) and np.array_equal(data.labels, labels[keep])


def test_a_file_without_a_pixels_column(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(FER2013FormatError, match="no 'pixels' column"):
        load_fer2013(path)


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\xff\xfe garbage", b"\xff\xfe\x00e\x00m"])
def test_empty_and_binary_files_are_format_errors(tmp_path, content):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(content)
    with pytest.raises(FER2013FormatError, match="fer2013.csv"):
        load_fer2013(path)


def test_truncated_gzip_is_a_format_error(fer_csv, tmp_path):
    gz = tmp_path / "fer2013.csv.gz"
    gz.write_bytes(gzip.compress(fer_csv.read_bytes())[:500])
    with pytest.raises(FER2013FormatError, match="fer2013.csv.gz"):
        load_fer2013(gz)


def test_a_corrupt_zip_or_gzip_is_a_format_error_not_a_zlib_traceback(fer_csv, tmp_path):
    import zipfile

    archive = tmp_path / "fer2013.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fer2013.csv", fer_csv.read_bytes())
    data = bytearray(archive.read_bytes())
    start = 30 + len("fer2013.csv")  # the deflate data begins after the local header and the member's name
    data[start : start + 64] = b"\xff" * 64  # it no longer decodes: zlib.error, where a CRC error would be BadZipFile
    archive.write_bytes(bytes(data))
    with pytest.raises(FER2013FormatError, match=r"fer2013\.zip: cannot read the archive"):
        load_fer2013(archive)
    gz = tmp_path / "fer2013.csv.gz"
    compressed = bytearray(gzip.compress(fer_csv.read_bytes()))
    compressed[20:84] = bytes(64)
    gz.write_bytes(bytes(compressed))
    with pytest.raises(FER2013FormatError, match=r"fer2013\.csv\.gz"):
        load_fer2013(gz)


def test_a_byte_that_is_not_utf8_is_named_by_its_line(fer_csv, tmp_path):
    """Regression: the error gave pandas' offset within its read buffer ("at byte 0"), which names no place."""
    lines = fer_csv.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"Training", b"Training\xe9")  # Latin-1 é
    broken = tmp_path / "fer2013.csv"
    broken.write_bytes(b"\n".join(lines))
    with pytest.raises(FER2013FormatError, match=r"fer2013\.csv:4: not a UTF-8/ASCII csv file"):
        load_fer2013(broken)
    gz = tmp_path / "fer2013.csv.gz"
    gz.write_bytes(gzip.compress(b"\n".join(lines)))
    with pytest.raises(FER2013FormatError, match=r"fer2013\.csv\.gz:4: not a UTF-8/ASCII csv file"):
        load_fer2013(gz)


def test_a_file_with_no_usable_row_is_an_error_that_lists_the_bad_rows(tmp_path, capsys):
    from data_loaders.__main__ import main

    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n")
    with pytest.raises(FER2013FormatError, match=r"fer2013\.csv: no data rows \(only a header\)"):
        load_fer2013(path)
    path.write_text("emotion,pixels,Usage\n9,1 2 3,Training\n")
    with pytest.raises(FER2013FormatError, match=r"no usable rows, all 1 are bad:\n.*fer2013\.csv:2: has 3 pixel"):
        load_fer2013(path, on_bad_rows="skip")
    assert main(["check", str(path)]) == 2  # regression: check crashed on an empty table before listing the rows
    assert f"{path}:2: has 3 pixel values" in capsys.readouterr().err


def test_input_files_are_never_modified(fer_csv):
    before = (fer_csv.read_bytes(), fer_csv.stat().st_mtime_ns)
    load_fer2013(fer_csv)
    _corrupt(fer_csv, 4, "x")
    before = (fer_csv.read_bytes(), fer_csv.stat().st_mtime_ns)
    with pytest.raises(FER2013FormatError):
        load_fer2013(fer_csv)
    assert (fer_csv.read_bytes(), fer_csv.stat().st_mtime_ns) == before


def test_path_resolution_order(fer_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("FER2013_PATH", str(fer_csv))
    assert load_fer2013().source == str(fer_csv)
    monkeypatch.setenv("FER2013_PATH", str(tmp_path / "nowhere.csv"))
    with pytest.raises(FileNotFoundError, match=r"nowhere\.csv \(FER2013_PATH\).*Kaggle"):
        load_fer2013()
    # an explicit argument wins over the environment
    assert load_fer2013(fer_csv).source == str(fer_csv)


def test_missing_data_error_says_where_to_get_it_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv("FER2013_PATH", raising=False)
    monkeypatch.setenv("EXPRESSION_LAB_DATA", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as err:
        fer_module.fer2013_path(synthetic_fallback=False)  # by default the synthetic faces stand in
    message = str(err.value)
    assert "kaggle.com" in message and "data/fer2013/" in message and "FER2013_PATH" in message


def test_default_folder_is_data_fer2013(fer_csv, tmp_path, monkeypatch):
    monkeypatch.delenv("FER2013_PATH", raising=False)
    (tmp_path / "data" / "fer2013").mkdir(parents=True)
    fer_csv.rename(tmp_path / "data" / "fer2013" / "fer2013.csv")
    monkeypatch.setenv("EXPRESSION_LAB_DATA", str(tmp_path / "data"))
    assert len(load_fer2013()) == 14


def test_the_cache_is_used_and_invalidated_when_the_file_changes(fer_csv, monkeypatch):
    first = load_fer2013(fer_csv)
    calls = []
    real_parse = fer_module._parse
    monkeypatch.setattr(fer_module, "_parse", lambda *a: calls.append(a) or real_parse(*a))
    second = load_fer2013(fer_csv)
    assert calls == [] and "cache" in second.description
    assert np.array_equal(first.images, second.images) and list(first.usage) == list(second.usage)
    _corrupt(fer_csv, 2, f"6,{GOOD},Training")
    os.utime(fer_csv, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = load_fer2013(fer_csv)
    assert len(calls) == 1 and third.labels[0] == 6


def test_a_changed_parser_does_not_read_the_old_parse_from_the_cache(fer_csv, monkeypatch):
    """The key holds the loaders' code: a parse cached by an older parser is not served to a corrected one
    (regression: only a version number bumped by hand separated them)."""
    from data_loaders import cache

    load_fer2013(fer_csv)
    calls = []
    real_parse = fer_module._parse
    monkeypatch.setattr(fer_module, "_parse", lambda *a: calls.append(a) or real_parse(*a))
    monkeypatch.setattr(cache, "code_version", lambda: "another-parser")
    again = load_fer2013(fer_csv)
    assert len(calls) == 1 and "cache" not in again.description, (
        f"expected a fresh parse by the changed code, found {len(calls)} parses and {again.description!r}"
    )


def test_cli_check_prints_counts_and_bad_rows(fer_csv, capsys):
    from data_loaders.__main__ import main

    _corrupt(fer_csv, 6, "2,1 2,Training")
    assert main(["check", str(fer_csv)]) == 1
    out = capsys.readouterr().out
    assert "Happy" in out and "PrivateTest" in out
    assert f"{fer_csv}:6: has 2 pixel values, expected 2304" in out


def test_cli_check_on_a_clean_file_exits_0(fer_csv, capsys):
    from data_loaders.__main__ import main

    assert main(["check", str(fer_csv)]) == 0
    assert "0 bad rows" in capsys.readouterr().out


def test_cli_check_on_a_missing_file_is_a_clear_error(tmp_path, capsys):
    from data_loaders.__main__ import main

    assert main(["check", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err
