"""Autograde a whole class across cores: ``python -m course autograde ASSIGNMENT [--jobs N] [--sandbox]``.

nbgrader grades one submission after another (nbgrader issue #174), and two nbgrader processes writing the
same sqlite gradebook fail with *database is locked*. Here each worker slot has its own copy of the course
gradebook (``grading/autograde/workers/slot-<k>.db``, taken when the batch starts); every submission is graded by
a plain ``nbgrader autograde ASSIGNMENT --student S --force`` run against its slot's copy, and when it succeeds
this process alone copies that student's submission rows (submission, notebooks, grades, comments) into the
course gradebook in one transaction. A submission that fails, crashes or runs past ``timeout`` seconds is
recorded with its reason and not merged; the batch goes on. The scores are nbgrader's own, computed by the
same command on the same gradebook content.

Nothing a submission leaves is followed by a step with the grader's rights: before nbgrader touches a submission
folder, links, hard links, FIFOs, sockets and device files are moved to ``grading/quarantine/<student>/<id>/``
and a folder over the caps of :class:`course.submission_files.Caps` is refused
(:func:`course.nbgrader_steps.intake`); the sandboxed kernel works in a private copy (:mod:`course.sandbox`), and
the autograded folder is checked again after grading. What a step finds is flagged for review
(:mod:`course.review`), never silently scored.

The batch summary (one row per submission: status, automatic score, seconds, reason, review flags) is written to
``grading/autograde/<assignment>.csv`` and ``.json`` (a later batch of some students updates their rows).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from . import REPO_ROOT, review
from .nbgrader_steps import GradingError, check_autograded, intake
from .settings import (
    EXPRESSION_LAB_SANDBOX_AUTOGRADED,
    EXPRESSION_LAB_SANDBOX_BATCH,
    EXPRESSION_LAB_SANDBOX_GRADER_MEMORY,
    EXPRESSION_LAB_SANDBOX_JOBS,
    EXPRESSION_LAB_SANDBOX_SLOT,
)
from .submission_files import Caps, nbgrader_ignore

#: Seconds one submission may take in all (nbgrader start, every cell, saving) before it is stopped.
DEFAULT_TIMEOUT = 1800
#: The nbgrader gradebook tables that hold one student's submission, parent table first.
SUBMISSION_TABLES = ("submitted_assignment", "submitted_notebook", "grade", "comment")


@dataclass
class SubmissionResult:
    """What happened to one submission in a batch."""

    student: str
    status: str  #: "graded", "failed" (nbgrader refused or crashed), "timeout" or "refused" (over the caps)
    auto_score: float | None  #: points from test cells (None unless graded)
    max_auto_score: float | None
    seconds: float
    reason: str = ""  #: why it failed (nbgrader's last log lines), empty when graded
    review: str = ""  #: what a grading step flagged for a person to review (:func:`course.review.summary`)

    def __post_init__(self) -> None:
        # both may hold what a student chose (file names, what their kernel printed): printed to a terminal and
        # written to the CSV, so one line of printable characters, escapes shown (course.review.one_line)
        self.reason = review.one_line(self.reason)
        self.review = review.one_line(self.review)


def submitted_students(assignment: str, root: Path = REPO_ROOT) -> list[str]:
    """Students with a submission folder ``grading/submitted/<student>/<assignment>``, sorted."""
    base = root / "grading" / "submitted"
    return sorted(p.parent.name for p in base.glob(f"*/{assignment}") if p.is_dir())


def prepare_data(assignment: str, root: Path = REPO_ROOT) -> list[str]:
    """Fill the parsed-data cache with what the assignment's notebooks read, outside any sandbox.

    The sandboxed kernel sees the cache read-only, so what a notebook would otherwise generate or parse on
    first use (the synthetic default data, the parsed FER2013 arrays, the stand-in photos, the fallback
    model, the default clip) is made here, once, by trusted code. Returns the steps run.
    """
    text = "\n".join(p.read_text() for p in sorted((root / "solutions" / assignment).glob("*.ipynb")))
    steps = []
    needs_model_2 = "fallback_model_2" in text or "find_model_2(" in text  # grading runs load the fallback model
    if "load_fer2013(" in text or needs_model_2:
        from data_loaders import load_fer2013

        load_fer2013()
        steps.append("load_fer2013")
    if "load_iphonex(" in text:
        from data_loaders import load_iphonex

        load_iphonex()
        steps.append("load_iphonex")
    if "load_action_units(" in text:
        from data_loaders import load_action_units

        load_action_units()
        steps.append("load_action_units")
    if "standin_photos" in text:
        from data_loaders.synthetic import standin_photos

        standin_photos()
        steps.append("standin_photos")
    if needs_model_2:
        from .fallback_model import fallback_model_2

        fallback_model_2()
        steps.append("fallback_model_2")
    if "video_path(" in text:  # grading runs analyse the synthetic default clip, rendered into the cache once
        from data_loaders.video import video_path

        video_path("synthetic")
        steps.append("default_clip")
    return steps


def _gradebook(root: Path) -> Path:
    return root / "grading" / "gradebook.db"


def _snapshot(source: Path, target: Path) -> None:
    """A consistent copy of the sqlite file ``source`` (the backup API, safe while others read it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def merge_submission(worker_db: Path, course_db: Path, assignment: str, student: str) -> None:
    """Replace ``student``'s submission of ``assignment`` in ``course_db`` by the one in ``worker_db``.

    One transaction (``BEGIN IMMEDIATE``): a reader sees the old rows or the new ones, never a mix.

    Raises:
        GradingError: the two gradebooks have different schema versions, or ``worker_db`` has no such
            submission.
    """
    con = sqlite3.connect(course_db, timeout=60, isolation_level=None)
    try:
        con.execute("ATTACH DATABASE ? AS w", (str(worker_db),))
        versions = {con.execute(f"SELECT version_num FROM {db}.alembic_version").fetchone() for db in ("main", "w")}
        if len(versions) != 1:
            raise GradingError(f"{worker_db} and {course_db} have different gradebook schemas: {versions}")
        con.execute("BEGIN IMMEDIATE")
        try:
            sub_ids = {}
            for db in ("main", "w"):
                row = con.execute(
                    f"SELECT s.id FROM {db}.submitted_assignment s JOIN {db}.assignment a ON a.id = s.assignment_id "
                    "WHERE a.name = ? AND s.student_id = ?",
                    (assignment, student),
                ).fetchone()
                sub_ids[db] = row[0] if row else None
            if sub_ids["w"] is None:
                raise GradingError(f"nbgrader recorded no submission of {assignment} by {student} in {worker_db}")
            if sub_ids["main"] is not None:
                _delete_submission(con, "main", sub_ids["main"])
            cols = [r[1] for r in con.execute("PRAGMA main.table_info(student)")]
            con.execute(
                f"INSERT OR IGNORE INTO main.student ({', '.join(cols)}) "
                f"SELECT {', '.join(cols)} FROM w.student WHERE id = ?",
                (student,),
            )
            for table, where in _submission_rows("w", sub_ids["w"]):
                cols = ", ".join(r[1] for r in con.execute(f"PRAGMA main.table_info({table})"))
                con.execute(
                    f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM w.{table} WHERE {where[0]}", where[1]
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()


def _submission_rows(db: str, sub_id: str) -> list[tuple[str, tuple[str, tuple]]]:
    """(table, (WHERE clause, parameters)) selecting one submission's rows in ``db``, parent table first."""
    notebooks = f"SELECT id FROM {db}.submitted_notebook WHERE assignment_id = ?"
    return [
        ("submitted_assignment", ("id = ?", (sub_id,))),
        ("submitted_notebook", ("assignment_id = ?", (sub_id,))),
        ("grade", (f"notebook_id IN ({notebooks})", (sub_id,))),
        ("comment", (f"notebook_id IN ({notebooks})", (sub_id,))),
    ]


def _delete_submission(con: sqlite3.Connection, db: str, sub_id: str) -> None:
    for table, (where, params) in reversed(_submission_rows(db, sub_id)):
        con.execute(f"DELETE FROM {db}.{table} WHERE {where}", params)


def _auto_score(course_db: Path, assignment: str, student: str) -> tuple[float, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_db}") as gb:
        sub = gb.find_submission(assignment, student)
        return float(sub.code_score), float(sub.max_code_score)


def _nbgrader_env(slot: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    env.update(extra or {})
    env[EXPRESSION_LAB_SANDBOX_SLOT.name] = str(slot)
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@contextlib.contextmanager
def _removed_after(folder: Path):
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _add_banner(assignment: str, student: str, flags: list[review.Flag], root: Path) -> None:
    """Put a markdown cell listing ``flags`` at the top of each of the student's autograded notebooks (what the
    formgrader shows); feedback leaves it out (:mod:`course.feedback`)."""
    import nbformat
    from nbformat.v4 import new_markdown_cell

    from .html_safety import escape_markdown

    lines = "\n".join(f"- **{escape_markdown(f.source)}**: {escape_markdown(f.reason)}" for f in flags)
    text = (
        "### Flagged for review\n\nExpression Lab's grading found something a fair submission does not do. "
        "The scores below are as graded; look before releasing them.\n\n" + lines
    )
    for path in sorted((root / "grading" / "autograded" / student / assignment).glob("*.ipynb")):
        if path.is_symlink() or not path.is_file():
            continue
        nb = nbformat.read(path, as_version=4)
        nb.cells = [c for c in nb.cells if review.BANNER_KEY not in c.get("metadata", {})]
        nb.cells.insert(0, new_markdown_cell(text, metadata={review.BANNER_KEY: True}))
        nbformat.write(nb, path)


def grade_one(
    assignment: str,
    student: str,
    worker_db: Path,
    slot: int,
    *,
    root: Path = REPO_ROOT,
    sandbox: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    log_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Run ``nbgrader autograde`` for one submission against ``worker_db``; return (status, reason).

    ``status`` is "graded", "failed" (non-zero exit; ``reason`` holds the last log lines) or "timeout".
    nbgrader runs in its own process group so that a timeout stops it and everything it started. Sandboxed, its
    process runs in worker ``slot``'s grader group (:func:`course.cgroups.join_grader`): should it run past that
    memory, the submission fails, with a reason saying so, and is flagged for review. The run records
    a sandboxed grading run hands out are copied into the autograded folder's ``autograde_outputs/``
    (:func:`course.sandbox.collect_run_records`).
    """
    # the kernel's Unix sockets are reached through a folder private to this run (TCP cannot cross the sandbox); the
    # sandbox never gets this folder: its sockets sit in a small memory file system inside, linked from here, and its
    # run records come back here through the launcher, within caps (course.sandbox.launch_kernel)
    sockets = Path(tempfile.mkdtemp(prefix="expression-lab-kernel-"))
    cmd = [
        sys.executable,
        "-m",
        "nbgrader",
        "autograde",
        assignment,
        "--student",
        student,
        "--force",
        f"--CourseDirectory.db_url=sqlite:///{worker_db}",
        "--KernelManager.transport=ipc",
        f"--KernelManager.ip={sockets / 'kernel'}",
    ]
    before, worker_env = (0, 0), _nbgrader_env(slot, env)
    if sandbox:
        from . import cgroups
        from .sandbox import KERNEL_NAME

        cmd.append(f"--Execute.kernel_name={KERNEL_NAME}")
        # nbgrader's own process in a memory group of its own: the output caps bound what it keeps, not what a
        # kernel makes it receive (one message of many parts); its kernel's launcher moves on to the worker's group
        cmd = [sys.executable, "-m", "course.cgroups", "grader", str(slot), *cmd]
        before = cgroups.memory_events(slot, batch=cgroups.batch_name(worker_env), start=True)
    log_dir = log_dir or worker_db.parent
    log = log_dir / f"{student}.log"
    with open(log, "w") as out, _removed_after(sockets):
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=worker_env,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return "timeout", f"stopped after {timeout:.0f} s (the whole submission, all cells)"
        except BaseException:
            _kill_group(proc)
            raise
        # killed past its own memory limit (not in a shortage elsewhere: both counts rose), nbgrader takes its
        # kernel with it (PR_SET_PDEATHSIG, course.sandbox)
        after = cgroups.memory_events(slot, batch=cgroups.batch_name(worker_env)) if sandbox else before
        if after[0] > before[0] and after[1] > before[1]:
            memory = cgroups.grader_memory(worker_env)
            reason = (
                f"nbgrader's process ran past its {memory:,} bytes of memory "
                f"({EXPRESSION_LAB_SANDBOX_GRADER_MEMORY.name}) and was stopped: the kernel sent it far more "
                "than the notebook's outputs may keep"
            )
            review.add(assignment, student, "sandbox", [reason], root)
            return "failed", reason
        if sandbox and code == 0:
            from .sandbox import collect_run_records

            outputs = root / "grading" / "autograded" / student / assignment / "autograde_outputs"
            left_out = collect_run_records(sockets, outputs)
            if left_out:
                review.add(assignment, student, "sandbox", left_out, root)
    if code != 0:
        return "failed", failure_reason(log.read_bytes().decode(errors="replace"))
    return "graded", ""


def failure_reason(log: str) -> str:
    """Why ``nbgrader autograde`` failed, from its log (nbgrader's lines, the sandbox launcher's and the kernel's):
    the launcher's own lines (``expression-lab sandbox: …``) if any, else nbgrader's error lines, else the last
    lines; at most 1,500 characters.

    Lines the sandbox wrote (its kernel's output, behind :data:`course.sandbox.KERNEL_OUTPUT_PREFIX`) never count
    as the launcher's or nbgrader's: a student's code printed ``expression-lab sandbox: …`` and killed its kernel,
    and that line became the reason. Lines are split at ``\\n`` only (a ``\\r`` would start a line the launcher
    never saw)."""
    from .sandbox import KERNEL_OUTPUT_PREFIX

    lines = [ln for ln in log.split("\n") if ln.strip()]
    ours = [ln for ln in lines if not ln.startswith(KERNEL_OUTPUT_PREFIX)]
    sandbox_said = [ln for ln in ours if ln.startswith("expression-lab sandbox:")]
    errors = sandbox_said or [ln for ln in ours if "| ERROR]" in ln or "Error" in ln]
    return " / ".join((errors or ours or lines)[-6:])[-1500:]


def autograde_class(
    assignment: str,
    students: list[str] | None = None,
    *,
    jobs: int = 1,
    sandbox: bool = True,
    root: Path = REPO_ROOT,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    prepare: bool = True,
) -> list[SubmissionResult]:
    """Autograde every submission of ``assignment`` (or only ``students``) with ``jobs`` parallel workers.

    Args:
        sandbox: run student code in the bubblewrap kernel (:mod:`course.sandbox`); False grades with the
            grader's own rights and must be asked for explicitly.
        timeout: seconds one submission may take in all before it is stopped and recorded as "timeout".
        prepare: fill the data cache first (:func:`prepare_data`), as the sandbox sees it read-only.

    Returns one :class:`SubmissionResult` per submission (in student order); also written to
    ``grading/autograde/<assignment>.csv`` and ``.json``.

    Raises:
        GradingError: no gradebook or no submissions, or ``jobs`` < 1.
        course.sandbox.SandboxError: ``sandbox`` is True and bubblewrap cannot start here.
    """

    if jobs < 1:
        raise GradingError(f"--jobs must be at least 1, got {jobs}")
    caps, ignore = Caps.from_env(), nbgrader_ignore(root)
    extra_env = {}
    if sandbox:
        from . import sandbox as sandbox_module

        try:
            sandbox_module.install_kernel_spec()
        except OSError:  # this environment is not writable: a kernelspec folder of the course's own
            prefix = root / "grading" / "autograde" / "jupyter"
            sandbox_module.install_kernel_spec(str(prefix))
            extra_env["JUPYTER_PATH"] = os.pathsep.join(
                [str(prefix / "share" / "jupyter"), *filter(None, [os.environ.get("JUPYTER_PATH")])]
            )
        sandbox_module.check_sandbox()
    course_db = _gradebook(root)
    if not course_db.is_file():
        raise GradingError(f"no gradebook at {course_db}: release the assignment first (python -m course release)")
    everyone = submitted_students(assignment, root)
    students = everyone if students is None else list(students)
    missing = sorted(set(students) - set(everyone))
    if missing:
        raise GradingError(f"no submission of {assignment} in grading/submitted/ for: {', '.join(missing)}")
    if not students:
        raise GradingError(f"no submissions of {assignment} in {root / 'grading' / 'submitted'}")
    if prepare:
        prepare_data(assignment, root)

    work = root / "grading" / "autograde" / "workers"
    jobs = min(jobs, len(students))
    # the sandbox judges a kernel's folder by its path (what a student hands in cannot make it refuse)
    extra_env.update(
        {
            EXPRESSION_LAB_SANDBOX_AUTOGRADED.name: str((root / "grading" / "autograded").resolve()),
            EXPRESSION_LAB_SANDBOX_JOBS.name: str(jobs),  # the workers' control groups (course.cgroups)
            EXPRESSION_LAB_SANDBOX_BATCH.name: f"batch-{os.getpid()}",
        }
    )
    if sandbox and progress:
        from . import cgroups
        from .sandbox import Limits

        print(f"sandbox: {cgroups.describe(Limits.from_env(), jobs=jobs)}", flush=True)
    for slot in range(jobs):
        _snapshot(course_db, work / f"slot-{slot}.db")
    free_slots = list(range(jobs))
    slot_lock, merge_lock = threading.Lock(), threading.Lock()

    def run(student: str) -> SubmissionResult:
        with slot_lock:
            slot = free_slots.pop()
        start = time.perf_counter()
        score = max_score = None
        try:
            worker_db = work / f"slot-{slot}.db"
            review.clear(assignment, student, root)
            refused = intake(assignment, student, root, caps, ignore)
            if refused:
                status, reason = "refused", refused[0]
            else:
                status, reason = grade_one(
                    assignment,
                    student,
                    worker_db,
                    slot,
                    root=root,
                    sandbox=sandbox,
                    timeout=timeout,
                    log_dir=work,
                    env=extra_env,
                )
            check_autograded(assignment, student, root)
            if status == "graded":
                # submitted model files are scored in a process of their own, never by notebook code
                from .model_scoring import apply_model_scores

                reasons = apply_model_scores(root, assignment, student, worker_db, sandbox=sandbox, slot=slot)
                if reasons:
                    review.add(assignment, student, "model-scoring", reasons, root)
                flags = review.read(assignment, student, root)
                if flags:
                    _add_banner(assignment, student, flags, root)
                with merge_lock:
                    merge_submission(worker_db, course_db, assignment, student)
                    score, max_score = _auto_score(course_db, assignment, student)
        finally:
            with slot_lock:
                free_slots.append(slot)
        return SubmissionResult(
            student,
            status,
            score,
            max_score,
            round(time.perf_counter() - start, 1),
            reason,
            review.summary(review.read(assignment, student, root), limit=4000),
        )

    results = {}
    try:
        _grade_all(run, students, jobs, assignment, sandbox, progress, results, root)
    finally:
        if sandbox:
            from . import cgroups

            cgroups.cleanup()
    ordered = [results[s] for s in students]
    write_summary(assignment, ordered, root)
    return ordered


def _grade_all(
    run, students: list[str], jobs: int, assignment: str, sandbox: bool, progress: bool, results: dict, root: Path
) -> None:
    """Run ``run(student)`` for every student on ``jobs`` threads, with a progress bar; fill ``results``."""
    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run, s): s for s in students}
        bar = tqdm(
            total=len(students),
            desc=f"autograde {assignment} ({jobs} job{'s' * (jobs > 1)}, "
            f"{'sandboxed' if sandbox else 'NOT sandboxed'})",
            unit="submission",
            disable=not progress,
        )
        for future in as_completed(futures):
            student = futures[future]
            try:
                results[student] = future.result()
            except Exception as err:  # noqa: BLE001 - one submission's failure never ends the class's batch
                # GradingError: the merge or the intake refused; anything else: the kit failed on what was handed
                # in (recorded, with its class, for the grader to look at)
                reason = str(err) if isinstance(err, GradingError) else f"the kit failed: {type(err).__name__}: {err}"
                try:
                    flags = review.summary(review.read(assignment, student, root), limit=4000)
                except ValueError as unreadable:
                    flags = str(unreadable)
                results[student] = SubmissionResult(student, "failed", None, None, 0.0, reason, flags)
            bar.update(1)
            if results[student].status != "graded":
                bar.write(f"{student}: {results[student].status}: {results[student].reason[:300]}")
            if results[student].review:
                bar.write(f"{student}: FLAGGED FOR REVIEW: {results[student].review[:300]}")
        bar.close()


def write_summary(assignment: str, results: list[SubmissionResult], root: Path = REPO_ROOT) -> Path:
    """Write the batch's rows to ``grading/autograde/<assignment>.csv`` and ``.json``; return the csv path.

    Rows of students not in this batch (an earlier run of the whole class) are kept; this batch's replace theirs.
    """
    folder = root / "grading" / "autograde"
    folder.mkdir(parents=True, exist_ok=True)
    earlier = folder / f"{assignment}.json"
    rows = {r["student"]: r for r in (json.loads(earlier.read_text()) if earlier.is_file() else [])}
    rows.update({r.student: asdict(r) for r in results})
    rows = [rows[s] for s in sorted(rows)]
    (folder / f"{assignment}.json").write_text(json.dumps(rows, indent=1) + "\n")
    path = folder / f"{assignment}.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["student"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def summary_table(results: list[SubmissionResult]) -> str:
    """A plain-text table of the batch (one line per submission), for the command line."""
    lines = [f"{'student':<24} {'status':<8} {'auto score':>10} {'seconds':>8}  reason"]
    for r in results:
        score = f"{r.auto_score:g}/{r.max_auto_score:g}" if r.auto_score is not None else "-"
        reason = " ".join(r.reason.split())[:80]
        lines.append(f"{r.student:<24} {r.status:<8} {score:>10} {r.seconds:>8.1f}  {reason}")
    graded = sum(r.status == "graded" for r in results)
    lines.append(f"{graded} of {len(results)} graded")
    flagged = [r for r in results if r.review]
    if flagged:
        lines.append(
            f"flagged for review ({len(flagged)}): " + "; ".join(f"{r.student}: {r.review[:160]}" for r in flagged)
        )
    return "\n".join(lines)
