"""``nbgrader collect`` against a student who writes into the exchange's inbound folder by hand.

Every student may write into the inbound folder. nbgrader's own collect step followed links (a ``notes.txt``
linked to the instructor's source notebook was collected as a regular file holding the hidden tests, which the
student's code then read while graded), stopped the whole step at a FIFO, and collected a folder named for a
classmate with only a warning. With :class:`course.exchange.SafeCollect` in the kit's ``nbgrader_config.py``,
the real ``nbgrader collect`` of the tiny course copies the link as a link (the kit's intake then moves it out and
flags it), leaves the FIFO out, ignores a later folder of the student's name that another user owns and a folder
whose name it cannot read (each of which stopped or misled nbgrader's step); a file or folder swapped for a link
while the copy runs is refused, never followed, and a hard link to another user's file is not collected.
"""

from __future__ import annotations

import getpass
import logging
import os
import types
from pathlib import Path

import nbformat
import pytest

from conftest import TINY_ID, TINY_NOTEBOOK, make_tiny_course
from course import exchange, review
from course import nbgrader_steps as steps
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
    (mine / "answers").symlink_to(source.parent, target_is_directory=True)  # and the folder holding it
    os.mkfifo(mine / "pipe")
    spoof = inbound / f"{me}+{TINY_ID}+{LATE}+b2"  # a later folder in my name, owned by someone else
    spoof.mkdir()
    (spoof / "spoofed.txt").write_text("a classmate's replacement")
    (spoof / "timestamp.txt").write_text(LATE)
    if os.geteuid() == 0:
        os.chown(spoof, 65534, 65534)
    (inbound / f"{me}+{TINY_ID}+not-a-time").mkdir()  # a name nbgrader cannot read stopped the whole step
    log = steps.nbgrader("collect", TINY_ID, root=root)
    folder = root / "grading" / "submitted" / me / TINY_ID
    found = sorted(p.name for p in folder.iterdir())
    assert (folder / "notes.txt").is_symlink() and (folder / "answers").is_symlink(), (
        f"expected the links collected as links, found {found}: {log[-1500:]}"
    )
    assert "pipe" not in found and (folder / TINY_NOTEBOOK).is_file(), f"expected the FIFO left out, found {found}"
    assert "is not named <student>+<assignment>+<time>" in log, f"expected the unreadable name said: {log[-1500:]}"
    if os.geteuid() == 0:
        assert "spoofed.txt" not in found and "belongs to nobody" in log, (
            f"expected the folder another user owns not collected (and said), found {found}: {log[-1500:]}"
        )
    assert steps.intake(TINY_ID, me, root, ignore=[]) == [], "expected the submission graded"
    flags = review.summary(review.read(TINY_ID, me, root), limit=4000)
    assert "notes.txt" in flags and "answers" in flags and not os.path.lexists(folder / "notes.txt"), (
        f"expected the kit's intake to move the link out and flag it, found {flags!r}"
    )
    assert "BEGIN HIDDEN TESTS" not in "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def _copy_as_collect(src: Path, dest: Path, ignore, left: int = 10**9) -> list[str]:
    """Copy the submission folder ``src`` into ``dest`` as :class:`course.exchange.SafeCollect` does (its owner: this
    process's user, ``left`` bytes of nbgrader's size limit), with nbgrader's ``ignore`` callable; return the
    warnings it logged."""
    said = []
    collector = types.SimpleNamespace(log=types.SimpleNamespace(warning=lambda *args: said.append(args[0] % args[1:])))
    collector._left = left
    collector._copy_folder = lambda *args: exchange.SafeCollect._copy_folder(collector, *args)
    folder = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    try:
        exchange.SafeCollect._copy_folder(collector, folder, str(src), str(dest), ignore, 0, os.getuid())
    finally:
        os.close(folder)
    return said


def test_a_link_swapped_in_while_the_copy_runs_is_never_followed(tmp_path):
    """The student owns the folder being collected and can swap a file or a subfolder for a link between the
    moment the copy looks at it and the moment it reads it (a loop of renames wins that race): ``shutil.copytree``
    then read the link's target with the instructor's rights. Here the swap happens exactly in that gap (in the
    ``ignore`` call, between the listing and the reads)."""
    secret = tmp_path / "solutions"
    secret.mkdir()
    (secret / "hidden.txt").write_text("### BEGIN HIDDEN TESTS")
    src = tmp_path / "inbound" / "me+tiny+x"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("mine")
    (src / "f.txt").write_text("mine")

    def swap(shown, names):
        if shown == str(src):
            (src / "sub").rename(src / "sub.old")
            (src / "sub").symlink_to(secret, target_is_directory=True)
            (src / "f.txt").unlink()
            (src / "f.txt").symlink_to(secret / "hidden.txt")
        return []

    dest = tmp_path / "submitted"
    said = _copy_as_collect(src, dest, swap)
    copied = {str(p.relative_to(dest)): p.read_text() for p in dest.rglob("*") if p.is_file() and not p.is_symlink()}
    assert not any("HIDDEN" in text for text in copied.values()), f"expected no link followed, found {copied}"
    assert len([s for s in said if "changed while it was collected" in s]) == 2, (
        f"expected both swapped entries refused and said, found {said}"
    )


def test_a_hard_link_to_another_users_file_is_never_collected(tmp_path):
    """Where ``fs.protected_hardlinks`` is 0, a student may hard-link any file of a folder they can pass through,
    even one they cannot read, into their own submission folder: the instructor's collect then copied the
    instructor's file (the hidden tests) as the student's. A file that does not belong to the submission folder's
    owner is left out (and said)."""
    if os.geteuid() != 0:
        pytest.skip("making a file of another user needs root")
    secret = tmp_path / "solutions"
    secret.mkdir()
    (secret / "hidden.txt").write_text("### BEGIN HIDDEN TESTS")
    os.chown(secret / "hidden.txt", 65534, 65534)  # the instructor's file, in the student's eyes another user's
    src = tmp_path / "inbound" / "me+tiny+x"
    (src / "sub").mkdir(parents=True)
    (src / "f.txt").write_text("mine")
    os.link(secret / "hidden.txt", src / "notes.txt")
    os.link(secret / "hidden.txt", src / "sub" / "more.txt")
    dest = tmp_path / "submitted"
    said = _copy_as_collect(src, dest, lambda *_: [])
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == ["f.txt"], f"expected only the student's own file collected, found {copied}"
    assert len([s for s in said if "belongs to another user" in s]) == 2, f"expected both links said, found {said}"


def test_a_file_grown_once_measured_is_not_copied_past_the_size_limit(tmp_path):
    """nbgrader measures a submission before it copies it; a student watching the folder (inotify) can make a file a
    sparse 3 GiB the moment the copy opens it (no cost to their quota), and the copy read it to its end onto the
    grader's disk. Once open, a file larger than what is left of the size limit is refused."""
    src = tmp_path / "inbound" / "me+tiny+x"
    src.mkdir(parents=True)
    (src / "f.txt").write_text("mine")
    (src / "grow.bin").write_bytes(b"x" * 1000)

    def grow(shown, names):  # between nbgrader's measure and the copy's read
        os.truncate(src / "grow.bin", 3 * 2**30)
        return []

    dest = tmp_path / "submitted"
    said = _copy_as_collect(src, dest, grow, left=100_000_000)
    copied = sorted(p.name for p in dest.iterdir())
    assert copied == ["f.txt"], f"expected the grown file left out, found {copied}"
    assert any("grow.bin" in s and "more than the" in s for s in said), f"expected it said, found {said}"


def test_one_submission_the_copy_fails_on_never_stops_the_collect(tmp_path, caplog):
    """A folder nested a thousand deep raised ``RecursionError`` out of nbgrader's size check and stopped the whole
    collect step; now that submission is left out (and said) and the others are collected."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    inbound = tmp_path / "inbound"
    records = []
    for student in ("alice", "bob"):
        name = f"{student}+{TINY_ID}+{EARLY}+r"
        (inbound / name).mkdir(parents=True)
        records.append({"username": student, "filename": name, "timestamp": None})
    coursedir = CourseDirectory(root=str(tmp_path), course_id="expression-lab", assignment_id=TINY_ID)
    collector = exchange.SafeCollect(coursedir=coursedir, authenticator=Authenticator(), check_owner=False)
    collector.inbound_path, collector.src_records = str(inbound), records
    collector.log = logging.getLogger("expression-lab-test-collect")

    def do_copy(src, dest, log=None):
        if "alice" in src:
            raise RecursionError("maximum recursion depth exceeded")
        os.makedirs(dest)

    collector.do_copy = do_copy
    with caplog.at_level(logging.ERROR, logger="expression-lab-test-collect"):
        collector.copy_files()
    said = [r.getMessage() for r in caplog.records]
    submitted = sorted(p.parent.name for p in tmp_path.glob(f"submitted/*/{TINY_ID}"))
    assert submitted == ["bob"], f"expected bob collected though alice's copy failed, found {submitted}"
    assert any("alice" in s and "RecursionError" in s for s in said), f"expected alice's failure said, found {said}"
