"""Benchmark autograding: one full submission of every assignment, then a class of synthetic submissions.

Usage::

    .venv/bin/python -m benchmarks.autograde_class [--students 30] [--class-assignment ps3_iphonex_3dcnn] \
        [--assignments ps1_fer2013_cnn,ps2_personal_transfer,ps3_iphonex_3dcnn]

``--students 0`` times the single submissions only and keeps the last class result in the JSON.

Works in a throw-away course folder (a copy of ``nbgrader_config.py`` and ``solutions/``), so the repository's
gradebook is untouched. For each assignment it releases the notebook, hands in the sample submission (the
released notebook filled with the reference answers and run once as a student would, ``EXPRESSION_LAB_QUICK=1``)
and times ``nbgrader autograde`` of it (goal: ≤ 120 s wall each). Then it copies that submission to ``--students``
students of one assignment, every fifth of them handing in the notebook unanswered (``NotImplementedError``
everywhere, as happens), and times one ``nbgrader autograde`` of the whole class: total wall time, seconds per
submission, and the peak memory of nbgrader with its kernels (the sum of the resident set sizes of the process
tree, sampled every 0.2 s). Data: whatever the notebooks resolve (the synthetic default unless FER2013_PATH /
IPHONEX_PATH are set). Writes ``benchmarks/results/autograde_class.json``. Run it alone: other work skews it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from benchmarks.results_file import RESULTS, write_results
from course import ASSIGNMENTS, REPO_ROOT
from course import nbgrader_steps as steps
from course.notebook_run import execute_notebook
from course.sample_submission import write_submission


class PeakMemory:
    """Sample the summed RSS of this process's descendants (nbgrader and its kernels) in a thread."""

    def __init__(self, every: float = 0.2):
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _timed_autograde(assignment: str, root: Path, student: str | None = None) -> tuple[float, int]:
    """Seconds and peak memory (bytes) of ``nbgrader autograde`` for one student, or every submitted one."""
    args = ["autograde", assignment, "--force"] + (["--student", student] if student else [])
    start = time.perf_counter()
    with PeakMemory() as memory:
        steps.nbgrader(*args, root=root)
    return time.perf_counter() - start, memory.peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--students",
        type=int,
        default=30,
        help="class size (default 30; 0: no class run, the last class result is kept)",
    )
    parser.add_argument(
        "--class-assignment",
        default="ps3_iphonex_3dcnn",
        choices=list(ASSIGNMENTS),
        help="the assignment the class hands in (default: ps3_iphonex_3dcnn)",
    )
    parser.add_argument(
        "--assignments",
        default=",".join(ASSIGNMENTS),
        help="comma-separated assignments to time one submission of (default: all); the class "
        "assignment is always included",
    )
    parser.add_argument("--keep", action="store_true", help="keep the course folder (its path is printed)")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="expression-lab-autograde-"))
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root)
    shutil.copytree(REPO_ROOT / "solutions", root / "solutions")
    print(f"course folder: {root}", flush=True)
    rows = []
    try:
        chosen = [a for a in ASSIGNMENTS if a in args.assignments.split(",") or a == args.class_assignment]
        for assignment in chosen:
            name = ASSIGNMENTS[assignment]
            steps.release(assignment, root)
            folder = steps.submission_folder("sample", assignment, root)
            notebook = write_submission(
                root / "assignments" / assignment / f"{name}.ipynb",
                root / "solutions" / assignment / f"{name}.ipynb",
                folder,
            )
            t = time.perf_counter()
            execute_notebook(notebook, env={"EXPRESSION_LAB_QUICK": "1"})
            student_minutes = (time.perf_counter() - t) / 60
            seconds, peak = _timed_autograde(assignment, root, "sample")
            rows.append(
                {
                    "step": f"autograde one {assignment} submission",
                    "seconds": round(seconds, 1),
                    "peak_mb": round(peak / 1e6),
                    "submissions": 1,
                    "note": f"the sample student's own run took {student_minutes:.1f} min",
                }
            )
            print(f"{assignment}: autograde {seconds:.1f} s, peak {peak / 1e6:,.0f} MB", flush=True)

        if args.students:
            rows.append(_class_run(args, root))
        else:
            rows += _earlier_class_rows()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print(f"\nAutograding on {os.cpu_count()} CPU cores (nbgrader runs submissions one after another)\n")
    print(f"{'step':<60}{'seconds':>9}{'peak MB':>9}  note")
    for r in rows:
        print(f"{r['step']:<60}{r['seconds']:>9.1f}{r['peak_mb']:>9,}  {r['note']}")
    write_results("autograde_class", results=rows)
    return 0


def _earlier_class_rows() -> list[dict]:
    """The class rows of the last results file, marked as earlier (``--students 0`` keeps them)."""
    path = RESULTS / "autograde_class.json"
    if not path.is_file():
        return []
    rows = [r for r in json.loads(path.read_text())["results"] if r.get("submissions", 1) > 1]
    for r in rows:
        if not r["note"].startswith("earlier run"):
            r["note"] = "earlier run: " + r["note"]
    return rows


def _class_run(args, root: Path) -> dict:
    """Copy the sample submission to ``args.students`` students (every fifth unanswered), autograde them all."""
    assignment, name = args.class_assignment, ASSIGNMENTS[args.class_assignment]
    sample = steps.submission_folder("sample", assignment, root)
    class_ids = [f"student{i:03d}" for i in range(1, args.students + 1)]
    for i, student in enumerate(class_ids):
        target = steps.submission_folder(student, assignment, root)
        shutil.copytree(sample, target)
        if i % 5 == 4:  # an unanswered notebook: the released one, as handed out
            shutil.copy(root / "assignments" / assignment / f"{name}.ipynb", target / f"{name}.ipynb")
    shutil.rmtree(sample)
    seconds, peak = _timed_autograde(assignment, root)
    return {
        "step": f"autograde a class of {args.students} {assignment} submissions",
        "seconds": round(seconds, 1),
        "peak_mb": round(peak / 1e6),
        "submissions": args.students,
        "per_second": round(args.students / seconds * 60, 1),
        "unit": "submissions/min",
        "note": f"{seconds / args.students:.1f} s per submission; every fifth unanswered",
    }


if __name__ == "__main__":
    sys.exit(main())
