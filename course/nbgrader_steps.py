"""The nbgrader steps the kit runs (release, autograde, feedback, export), as thin wrappers of its CLI.

Every step runs ``nbgrader`` in the repository root so that ``nbgrader_config.py`` maps it onto
``solutions/``, ``assignments/`` and the git-ignored ``grading/`` folder. A step that reads what a student
handed in without a limit of its own runs under a wall-clock timeout: ``generate_feedback`` for one student under
:func:`feedback_timeout` seconds (autograding has the cell timeout, and ``python -m course autograde`` a timeout
per submission, :mod:`course.autograde`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import ASSIGNMENTS, REPO_ROOT, review
from .settings import EXPRESSION_LAB_FEEDBACK_TIMEOUT, positive_setting
from .submission_files import Caps, cell_text_over, nbgrader_ignore, quarantine_unsafe

#: Files a source assignment folder may hold; anything else would be released to students.
RELEASABLE_SUFFIXES = {".ipynb", ".md", ".png", ".jpg", ".svg", ".csv"}


class GradingError(RuntimeError):
    """An nbgrader step failed; the message holds its output."""


class StepTimeout(GradingError):
    """An nbgrader step ran past its timeout and was stopped."""


def feedback_timeout(env=None) -> int:
    """Seconds one student's ``nbgrader generate_feedback`` may run: ``$EXPRESSION_LAB_FEEDBACK_TIMEOUT``, else its
    declared default (:data:`course.settings.EXPRESSION_LAB_FEEDBACK_TIMEOUT`, 600: an honest notebook takes
    seconds).

    Raises:
        ValueError: the variable is set but not a positive integer (the message names it).
    """
    setting = EXPRESSION_LAB_FEEDBACK_TIMEOUT
    return positive_setting(os.environ if env is None else env, setting.name, setting.default)


def _stop_group(proc: subprocess.Popen) -> None:
    """Kill ``proc``'s process group (it leads one) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:  # something that left the group still holds the pipes
        pass


def nbgrader(*args: str, root: Path = REPO_ROOT, quiet: bool = True, timeout: float | None = None) -> str:
    """Run ``nbgrader ARGS`` in ``root``; return its output. With ``timeout`` (seconds), nbgrader runs in its own
    process group, which is killed when the time is up.

    Raises:
        GradingError: nbgrader exited non-zero (the message holds its log).
        StepTimeout: nbgrader ran past ``timeout`` (a :class:`GradingError`).
    """
    cmd = [sys.executable, "-m", "nbgrader", *args]
    # nbgrader runs `alembic` (and kernels) from PATH: put this environment's bin/ first.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if timeout is None:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    else:
        with subprocess.Popen(
            cmd,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        ) as running:
            try:
                stdout, stderr = running.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _stop_group(running)
                raise StepTimeout(f"`nbgrader {' '.join(args)}` ran past {timeout:g} s and was stopped") from None
            except BaseException:
                _stop_group(running)
                raise
        proc = subprocess.CompletedProcess(cmd, running.returncode, stdout, stderr)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        raise GradingError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}); its last lines:\n{tail}")
    if not quiet:
        print(output)
    return output


def check_source_folder(assignment: str, root: Path = REPO_ROOT) -> None:
    """Refuse to release a source folder holding files students must not get (models, data, outputs).

    Raises:
        GradingError: names each such file.
    """
    folder = root / "solutions" / assignment
    if not folder.is_dir():
        raise GradingError(f"no source assignment at {folder}")
    stray = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and ".ipynb_checkpoints" not in p.parts
        and "__pycache__" not in p.parts
        and p.suffix.lower() not in RELEASABLE_SUFFIXES
    ]
    if stray:
        listed = "\n  ".join(str(p.relative_to(root)) for p in stray)
        raise GradingError(
            f"solutions/{assignment} holds files that would be released to students:\n  {listed}\n"
            "Move or delete them (a model trained by the solution notebook is an answer)."
        )


def release(assignment: str | None = None, root: Path = REPO_ROOT) -> list[Path]:
    """Regenerate ``assignments/<id>`` from ``solutions/<id>`` (``nbgrader generate_assignment --force``).

    Returns the release notebooks written.
    """
    written = []
    for aid in [assignment] if assignment else list(ASSIGNMENTS):
        check_source_folder(aid, root)
        nbgrader("generate_assignment", aid, "--force", root=root)
        written += sorted((root / "assignments" / aid).glob("*.ipynb"))
    return written


def submission_folder(student: str, assignment: str, root: Path = REPO_ROOT) -> Path:
    """``grading/submitted/<student>/<assignment>`` (where a collected submission lives)."""
    return root / "grading" / "submitted" / student / assignment


def intake(
    assignment: str, student: str, root: Path = REPO_ROOT, caps: Caps | None = None, ignore: list[str] | None = None
) -> list[str]:
    """Make ``student``'s submission folder safe for nbgrader; return why it must be refused ([] when it may be
    graded).

    Links, hard links, FIFOs, sockets, device files and pages or scripts a browser would run (the formgrader
    serves the autograded folder's files as they are) are moved (never followed) to
    ``grading/quarantine/<student>/<assignment>/`` and flagged for review (source ``"intake"``); a folder over
    ``caps`` is refused with the reason and the fix, and flagged too. Files nbgrader never copies (the course's
    ``CourseDirectory.ignore``, read from its config when ``ignore`` is None) do not count against the caps.

    Raises:
        GradingError: the submission folder itself is a link or not a folder.
    """
    caps = caps or Caps.from_env()
    ignore = nbgrader_ignore(root) if ignore is None else ignore
    folder = submission_folder(student, assignment, root)
    try:
        found, moved = quarantine_unsafe(
            folder, root / "grading" / "quarantine" / student / assignment, caps, active_content=True, ignore=ignore
        )
    except NotADirectoryError as err:
        review.add(assignment, student, "intake", [str(err)], root)
        raise GradingError(f"{student}'s submission is not a folder: {err}") from None
    if moved:
        review.add(assignment, student, "intake", moved, root)
    over = found.over_caps(caps) or cell_text_over(folder, found, caps)
    if over:
        review.add(assignment, student, "intake", over, root)
        return [
            f"{'; '.join(over)}. Not graded: ask the student to hand in a submission within the caps (the "
            "notebooks, their model files and run records), or raise the cap for this assignment, then grade again"
        ]
    return []


def check_autograded(assignment: str, student: str, root: Path = REPO_ROOT) -> list[str]:
    """Move anything but regular files and folders out of ``student``'s autograded (and feedback) folder, as
    :func:`intake` does for the submission; return one reason per entry moved (each flagged for review)."""
    reasons = []
    for stage in ("autograded", "feedback"):
        folder = root / "grading" / stage / student / assignment
        if os.path.lexists(folder):
            try:
                quarantine = root / "grading" / "quarantine" / student / f"{assignment}.{stage}"
                _, moved = quarantine_unsafe(folder, quarantine)
            except NotADirectoryError as err:
                os.unlink(folder)
                moved = [f"{stage}: {err}; removed"]
            reasons += [f"{stage}/{m}" for m in moved]
    if reasons:
        review.add(assignment, student, "intake", reasons, root)
    return reasons


def autograde(assignment: str, student: str, root: Path = REPO_ROOT) -> str:
    """Autograde one submission (re-executes it in grading mode; locked cells come from the gradebook), after the
    intake of :func:`intake` (links and special files moved out, the caps checked).

    Raises:
        GradingError: nbgrader failed, or the submission is over the caps (the message says which and the fix).
    """

    review.clear(assignment, student, root)
    refused = intake(assignment, student, root)
    if refused:
        raise GradingError(f"{student}'s submission of {assignment}: {refused[0]}")
    output = nbgrader("autograde", assignment, "--student", student, "--force", root=root)
    check_autograded(assignment, student, root)
    return output


def generate_feedback(assignment: str, student: str, root: Path = REPO_ROOT, timeout: float | None = None) -> Path:
    """Write the feedback HTML (hidden tests stripped) and return its folder.

    nbgrader copies the autograded folder's other files into the feedback, following links: anything but regular
    files and folders is moved out of both folders first and after (:func:`check_autograded`). nbgrader runs for at
    most ``timeout`` seconds (default :func:`feedback_timeout`).

    Raises:
        GradingError: nbgrader failed, or ran past the timeout (:class:`StepTimeout`).
    """
    timeout = feedback_timeout() if timeout is None else timeout
    check_autograded(assignment, student, root)
    try:
        nbgrader("generate_feedback", assignment, "--student", student, "--force", root=root, timeout=timeout)
    except StepTimeout as err:
        raise StepTimeout(
            f"{err}: {student}'s feedback on {assignment} takes too long (look at that submission; "
            f"{EXPRESSION_LAB_FEEDBACK_TIMEOUT.name} sets the limit in seconds)"
        ) from None
    check_autograded(assignment, student, root)
    return root / "grading" / "feedback" / student / assignment


def feedback_class(
    assignment: str, students: list[str] | None = None, *, release: bool = False, root: Path = REPO_ROOT
) -> list[Path]:
    """Write the feedback of every autograded submission of ``assignment`` (or only ``students``), each through
    :func:`generate_feedback` (links and special files moved out before and after); with ``release``, publish them
    through nbgrader's exchange (``nbgrader release_feedback``). Returns the feedback folders written.

    One student's failure (a notebook that takes too long to render, an nbgrader error) does not stop the others:
    their feedback is written (and released), the failed student's folder is removed (never a stale or partial page
    released), and the failures are raised together at the end.

    Raises:
        GradingError: no autograded submission of ``assignment`` (or of a named student), an nbgrader step of the
            release failed, or the feedback of some students could not be written (the message names each, why, and
            what was written and released).
    """
    autograded = root / "grading" / "autograded"
    everyone = sorted(p.parent.name for p in autograded.glob(f"*/{assignment}") if p.is_dir() and not p.is_symlink())
    wanted = everyone if students is None else list(students)
    missing = sorted(set(wanted) - set(everyone))
    if missing or not wanted:
        raise GradingError(
            f"no autograded submission of {assignment} for: {', '.join(missing) or 'anyone'} "
            f"(autograde first: python -m course autograde {assignment})"
        )
    folders, failed = [], {}
    for student in wanted:
        try:
            folders.append(generate_feedback(assignment, student, root))
        except GradingError as err:
            failed[student] = review.one_line(err, 600)
            stale = root / "grading" / "feedback" / student / assignment
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
    if release:
        for student in everyone:
            check_autograded(assignment, student, root)
        for only in [None] if students is None else [s for s in wanted if s not in failed]:
            nbgrader("release_feedback", assignment, *([f"--student={only}"] if only else []), root=root)
    if failed:
        done = f"{len(folders)} written{' and released' if release else ''}"
        raise GradingError(
            f"feedback on {assignment} not written for {len(failed)} of {len(wanted)} ({done}): "
            + "; ".join(f"{student}: {reason}" for student, reason in failed.items())
        )
    return folders


def export_grades(root: Path = REPO_ROOT) -> Path:
    """Export every grade in the gradebook to ``grading/grades.csv``."""
    out = root / "grading" / "grades.csv"
    nbgrader("export", f"--to={out}", root=root)
    return out


@dataclass(frozen=True)
class CellScore:
    """One graded cell of one submission."""

    notebook: str
    cell: str
    kind: str  #: "auto" (a test cell) or "manual" (a written answer)
    score: float | None  #: None while a manual grade is pending
    max_score: float


def cell_scores(assignment: str, student: str, root: Path = REPO_ROOT) -> list[CellScore]:
    """Every graded cell's score for one autograded submission, from the gradebook, in notebook order."""
    from nbgrader.api import Gradebook

    from .notebook_cells import cells_by_grade_id

    order = {}
    for path in sorted((root / "solutions" / assignment).glob("*.ipynb")):
        for gid in cells_by_grade_id(path):
            order[(path.stem, gid)] = len(order)
    rows = []
    with Gradebook(f"sqlite:///{root / 'grading' / 'gradebook.db'}") as gb:
        submission = gb.find_submission(assignment, student)
        for nb in submission.notebooks:
            for grade in nb.grades:
                manual = grade.cell.cell_type == "markdown"
                score = grade.score if not manual or grade.manual_score is not None else None
                rows.append(CellScore(nb.name, grade.name, "manual" if manual else "auto", score, grade.max_score))
    return sorted(rows, key=lambda r: order.get((r.notebook, r.cell), len(order)))


def remove_submission(assignment: str, student: str, root: Path = REPO_ROOT) -> None:
    """Forget one student's submission of ``assignment`` (gradebook rows and files), e.g. the demo's own.

    nbgrader refuses to re-release a notebook whose cells changed while submissions of it exist; the demo
    removes its sample submission first so that it can run again after the solutions are edited.
    """
    from nbgrader.api import Gradebook, MissingEntry

    db = root / "grading" / "gradebook.db"
    if db.exists():
        with Gradebook(f"sqlite:///{db}") as gb:
            try:
                gb.remove_submission(assignment, student)
            except MissingEntry:
                pass
    for stage in ("submitted", "autograded", "feedback"):
        shutil.rmtree(root / "grading" / stage / student / assignment, ignore_errors=True)


def reset(root: Path = REPO_ROOT) -> None:
    """Remove all grading state (gradebook, submissions, feedback, exchange)."""
    shutil.rmtree(root / "grading", ignore_errors=True)
