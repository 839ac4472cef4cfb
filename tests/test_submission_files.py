"""What a submission folder may hold (:mod:`course.submission_files`): pages a browser would run whatever their
suffix, and caps that count every file nbgrader copies. The end-to-end versions (a real autograde of such folders)
are in ``tests/test_sandbox_attacks.py`` (``left_behind``)."""

from __future__ import annotations

import pytest

from course.submission_files import Caps, inspect_folder, is_active_content, nbgrader_ignore

REPO_IGNORE = None  # the repository's nbgrader_config.py patterns, read once below


def _ignore():
    from pathlib import Path

    global REPO_IGNORE
    if REPO_IGNORE is None:
        REPO_IGNORE = nbgrader_ignore(Path(__file__).resolve().parents[1])
    return REPO_IGNORE


@pytest.mark.parametrize(
    "name",
    ["notes.shtml", "a.html", "b.HTM", "c.svg", "d.xhtml", "e.xml", "f.rdf", "g.atom", "h.mht", "i.js", "j.xul"],
)
def test_pages_a_browser_would_run_are_active_content_whatever_the_suffix(name):
    # .shtml is text/html in Debian's /etc/mime.types: a suffix list missed it, and the formgrader ran its script
    assert is_active_content(name), f"expected {name} to count as a page or script, found it served as safe"


@pytest.mark.parametrize(
    "name",
    [
        "fer2013_cnn.ipynb", "model_2.keras", "model_2.run.json", "photo.png", "photo.JPG", "faces.csv", "notes.txt",
        "helper.py", "faces.npz", "model.h5", "clip.mp4", "face.obj", "face.xyz", "face.ply", "report.pdf", "README",
        "helper.cpython-311.pyc",
    ],
)  # fmt: skip
def test_what_students_hand_in_is_not_active_content(name):
    assert not is_active_content(name), f"expected {name} to be served as data, found it treated as a page"


def test_an_shtml_page_is_listed_unsafe_with_the_type_it_would_be_served_as(tmp_path):
    (tmp_path / "notes.shtml").write_text("<script>fetch('/api/contents/solutions')</script>")
    (tmp_path / "model_2.run.json").write_text("{}")
    found = inspect_folder(tmp_path, active_content=True)
    assert [name for name, _ in found.unsafe] == ["notes.shtml"], f"expected notes.shtml unsafe, found {found.unsafe}"
    assert "text/html" in found.unsafe[0][1], f"expected the reason to name text/html, found {found.unsafe[0][1]!r}"
    assert found.files == ["model_2.run.json"], f"expected the run record kept, found {found.files}"


def test_files_nbgrader_copies_count_against_the_caps_though_a_pattern_seems_to_ignore_them(tmp_path):
    # fnmatch says *.pyc matches .x.pyc and d[0]/y.pyc; nbgrader's glob copies both: they must count
    caps = Caps(files=200, bytes=2**30, depth=4)
    for k in range(150):
        (tmp_path / f".x{k}.pyc").write_bytes(b"0" * 10)
    (tmp_path / "d[0]").mkdir()
    for k in range(60):
        (tmp_path / "d[0]" / f"y{k}.pyc").write_bytes(b"0" * 10)
    (tmp_path / "tiny.ipynb").write_text("{}")
    found = inspect_folder(tmp_path, caps, ignore=_ignore())
    assert len(found.files) == 211 and not found.ignored, (
        f"expected all 211 files counted (nbgrader copies them), found {len(found.files)} counted, "
        f"{len(found.ignored)} left out"
    )
    assert any("211 files" in reason for reason in found.over_caps(caps)), found.over_caps(caps)


def test_what_nbgrader_really_ignores_stays_out_of_the_caps(tmp_path):
    caps = Caps(files=3, bytes=100, depth=4)
    (tmp_path / "model_1.keras").write_bytes(b"0" * 1000)  # ps1's 100 MB model_1, never copied
    for folder in ("__pycache__", ".ipynb_checkpoints", "autograde_outputs"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.pyc").write_bytes(b"0" * 1000)
    (tmp_path / "helper.pyc").write_bytes(b"0" * 1000)
    (tmp_path / "tiny.ipynb").write_text("{}")
    found = inspect_folder(tmp_path, caps, ignore=_ignore())
    assert found.files == ["tiny.ipynb"] and not found.over_caps(caps), (
        f"expected only the notebook counted and no refusal, found {found.files}, {found.over_caps(caps)}"
    )
    assert len(found.ignored) == 5, f"expected 5 ignored files listed, found {found.ignored}"


def test_too_many_seemingly_ignored_files_are_all_counted(tmp_path):
    caps = Caps(files=5, bytes=2**30, depth=4)
    (tmp_path / "__pycache__").mkdir()
    for k in range(25):  # more than MAX_IGNORED_FACTOR x 5: not asked of nbgrader one by one
        (tmp_path / "__pycache__" / f"m{k}.pyc").write_bytes(b"0")
    found = inspect_folder(tmp_path, caps, ignore=_ignore())
    assert len(found.files) == 25 and found.over_caps(caps), (
        f"expected all 25 counted and the folder over the caps, found {len(found.files)}, {found.over_caps(caps)}"
    )
