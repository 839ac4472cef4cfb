"""``nbgrader collect`` against a student who writes into the exchange's inbound folder by hand.

Every student may write into the inbound folder. nbgrader's own collect step followed links (a ``notes.txt``
linked to the instructor's source notebook was collected as a regular file holding the hidden tests, which the
student's code then read while graded), stopped the whole step at a FIFO, and collected a folder named for a
classmate with only a warning. With :class:`course.exchange.SafeCollect` in the kit's ``nbgrader_config.py``,
the real ``nbgrader collect`` of the tiny course copies the link as a link (the kit's intake then moves it out and
flags it), leaves the FIFO out and ignores a later folder of the student's name that another user owns.
"""

from __future__ import annotations

import getpass
import os

import nbformat
import pytest

from conftest import TINY_ID, TINY_NOTEBOOK, make_tiny_course
from course import nbgrader_steps as steps
from course import review
from course.sample_submission import fill_answers

#: nbgrader's timestamps in an inbound folder's name (``nbgrader.utils.parse_utc``).
EARLY, LATE = "2026-12-07 10:00:00.000000 UTC", "2026-12-07 11:00:00.000000 UTC"


@pytest.mark.slow
def test_collect_never_follows_a_link_or_takes_a_classmates_folder(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    release, source = make_tiny_course(root)
    inbound = root / "grading" / "exchange" / "expression-lab" / "inbound"
    inbound.mkdir(parents=True)
    me = getpass.getuser()  # the owner check compares a folder's owner with the student it names
    mine = inbound / f"{me}+{TINY_ID}+{EARLY}+a1"
    mine.mkdir()
    nbformat.write(fill_answers(release, source), mine / TINY_NOTEBOOK)
    (mine / "timestamp.txt").write_text(EARLY)
    (mine / "notes.txt").symlink_to(source)  # the instructor's notebook, hidden tests and all
    os.mkfifo(mine / "pipe")
    spoof = inbound / f"{me}+{TINY_ID}+{LATE}+b2"  # a later folder in my name, owned by someone else
    spoof.mkdir()
    (spoof / "spoofed.txt").write_text("a classmate's replacement")
    (spoof / "timestamp.txt").write_text(LATE)
    if os.geteuid() == 0:
        os.chown(spoof, 65534, 65534)
    log = steps.nbgrader("collect", TINY_ID, root=root)
    folder = root / "grading" / "submitted" / me / TINY_ID
    found = sorted(p.name for p in folder.iterdir())
    assert (folder / "notes.txt").is_symlink(), f"expected the link collected as a link, found {found}: {log[-1500:]}"
    assert "pipe" not in found and (folder / TINY_NOTEBOOK).is_file(), f"expected the FIFO left out, found {found}"
    if os.geteuid() == 0:
        assert "spoofed.txt" not in found and "belongs to nobody" in log, (
            f"expected the folder another user owns not collected (and said), found {found}: {log[-1500:]}"
        )
    assert steps.intake(TINY_ID, me, root, ignore=[]) == [], "expected the submission graded"
    flags = review.summary(review.read(TINY_ID, me, root), limit=4000)
    assert "notes.txt" in flags and not (folder / "notes.txt").exists(), (
        f"expected the kit's intake to move the link out and flag it, found {flags!r}"
    )
    assert "BEGIN HIDDEN TESTS" not in "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())
