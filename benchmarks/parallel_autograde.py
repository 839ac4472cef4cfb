"""Benchmark ``python -m course autograde``: a class graded with 1 and 2 workers, with and without the sandbox.

Usage::

    .venv/bin/python -m benchmarks.parallel_autograde [--students 60] [--jobs 1,2] [--assignment ps3_iphonex_3dcnn]

Works in a throw-away course folder (a copy of ``nbgrader_config.py`` and the assignment's ``solutions/``). The
sample submission (the released notebook filled with the reference answers, plus the ``model_4.keras`` that one
grading-mode run of it saves) is copied to ``--students`` students, every fifth of them handing in the
notebook unanswered. Then the same class is autograded once per configuration (each ``--jobs`` value, sandbox
off and on): wall time, submissions per minute, peak memory (the summed resident set sizes of the process tree,
sampled every 0.2 s), and the sandbox's overhead per submission (the sandboxed run's wall time minus the
unsandboxed one's, times the number of workers, divided by the class size). Every configuration must give the
same scores; the benchmark fails otherwise. Writes ``benchmarks/results/parallel_autograde.json``. Run it
alone: other work skews it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.autograde_class import PeakMemory
from benchmarks.results_file import write_results
from course import ASSIGNMENTS, REPO_ROOT
from course import nbgrader_steps as steps
from course.autograde import autograde_class
from course.notebook_run import execute_notebook
from course.sample_submission import write_submission


def _make_class(assignment: str, students: int, root: Path) -> list[str]:
    name = ASSIGNMENTS[assignment]
    steps.release(assignment, root)
    release = root / "assignments" / assignment / f"{name}.ipynb"
    work = Path(tempfile.mkdtemp(prefix="sample-", dir=root))
    notebook = write_submission(release, root / "solutions" / assignment / f"{name}.ipynb", work)
    execute_notebook(notebook, env={"NBGRADER_EXECUTION": "autograde"})  # saves autograde_outputs/model_*.keras
    for model in (work / "autograde_outputs").glob("*.keras"):
        shutil.copy(model, work / model.name)
    shutil.rmtree(work / "autograde_outputs")
    ids = [f"student{i:03d}" for i in range(1, students + 1)]
    for i, student in enumerate(ids):
        target = steps.submission_folder(student, assignment, root)
        shutil.copytree(work, target)
        if i % 5 == 4:  # an unanswered notebook: the released one, as handed out
            shutil.copy(release, target / f"{name}.ipynb")
    shutil.rmtree(work)
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=60, help="class size (default 60)")
    parser.add_argument("--jobs", default="1,2", help="comma-separated worker counts to compare (default 1,2)")
    parser.add_argument("--assignment", default="ps3_iphonex_3dcnn", choices=list(ASSIGNMENTS))
    parser.add_argument("--keep", action="store_true", help="keep the course folder (its path is printed)")
    parser.add_argument("--note", default="", help="a remark stored with the results (e.g. what else ran)")
    args = parser.parse_args(argv)
    jobs_list = [int(j) for j in args.jobs.split(",")]

    root = Path(tempfile.mkdtemp(prefix="expression-lab-parallel-"))
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root)
    shutil.copytree(REPO_ROOT / "solutions" / args.assignment, root / "solutions" / args.assignment)
    print(f"course folder: {root}", flush=True)
    rows, wall, scores = [], {}, {}
    try:
        students = _make_class(args.assignment, args.students, root)
        for jobs in jobs_list:
            for sandbox in (False, True):
                start = time.perf_counter()
                with PeakMemory() as memory:
                    results = autograde_class(
                        args.assignment, students, jobs=jobs, sandbox=sandbox, root=root, progress=True
                    )
                seconds = time.perf_counter() - start
                wall[jobs, sandbox] = seconds
                scores[jobs, sandbox] = {r.student: (r.status, r.auto_score) for r in results}
                graded = sum(r.status == "graded" for r in results)
                label = f"{args.students} submissions, --jobs {jobs}, sandbox {'on' if sandbox else 'off'}"
                rows.append(
                    {
                        "step": label,
                        "seconds": round(seconds, 1),
                        "peak_mb": round(memory.peak / 1e6),
                        "submissions": args.students,
                        "per_second": round(args.students / seconds * 60, 1),
                        "unit": "submissions/min",
                        "graded": graded,
                    }
                )
                print(
                    f"{label}: {seconds:.1f} s, {args.students / seconds * 60:.1f} submissions/min, "
                    f"peak {memory.peak / 1e6:,.0f} MB, {graded} graded",
                    flush=True,
                )
        for jobs in jobs_list:
            overhead = (wall[jobs, True] - wall[jobs, False]) * jobs / args.students
            rows.append({"step": f"sandbox overhead per submission, --jobs {jobs}", "seconds": round(overhead, 2)})
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    reference = next(iter(scores.values()))
    differing = [k for k, v in scores.items() if v != reference]
    print(f"\nParallel autograding on {os.cpu_count()} CPU cores, {args.assignment}, every fifth unanswered\n")
    print(f"{'configuration':<60}{'seconds':>9}{'subm./min':>11}{'peak MB':>9}")
    for r in rows:
        print(f"{r['step']:<60}{r['seconds']:>9.2f}{r.get('per_second', ''):>11}{r.get('peak_mb', ''):>9}")
    note = (
        f"{args.assignment}, {args.students} submissions (every fifth unanswered), the same scores in every "
        "configuration"
        if not differing
        else f"SCORES DIFFER in {differing}"
    )
    note += f"; {args.note}" if args.note else ""
    write_results("parallel_autograde", results=rows, note=note)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
