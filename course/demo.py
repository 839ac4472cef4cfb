"""The demo course run: release ps1, hand in a sample submission, autograde it, write feedback, export grades.

The sample submission is the released notebook with every answer filled from the solution, executed as a
student would (a short "quick" run: ``EXPRESSION_LAB_QUICK=1``), so it hands in a real trained
``model_2.keras``. Autograding then re-executes it in nbgrader's grading mode.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd

from . import ASSIGNMENTS, REPO_ROOT
from . import nbgrader_steps as steps
from .notebook_run import execute_notebook
from .sample_submission import write_submission

STUDENT = "sample-student"


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _done(start: float, what: str) -> None:
    print(f"   {what} ({time.perf_counter() - start:.0f} s)", flush=True)


def score_table(assignment: str, student: str, root: Path = REPO_ROOT) -> pd.DataFrame:
    """One row per graded cell: kind, score (blank while a manual grade is pending), max."""
    rows = [{"notebook": s.notebook, "cell": s.cell, "graded": s.kind,
             "score": "pending" if s.score is None else f"{s.score:g}", "max": s.max_score}
            for s in steps.cell_scores(assignment, student, root)]
    return pd.DataFrame(rows)


def run_demo(assignment: str = "ps1_fer2013_cnn", student: str = STUDENT, quick: bool = True,
             root: Path = REPO_ROOT) -> pd.DataFrame:
    """Run the whole course loop for one assignment and return the score table.

    Raises:
        FileNotFoundError: no FER2013 is configured (the message says how to get it).
        GradingError: an nbgrader step failed.
    """
    from data_loaders import load_fer2013

    notebook = ASSIGNMENTS[assignment] + ".ipynb"
    total = time.perf_counter()

    t = _step("0/5 data")
    data = load_fer2013()  # fails early, with instructions, when FER2013 is missing; warms the cache
    _done(t, data.description)

    t = _step(f"1/5 release: solutions/{assignment} -> assignments/{assignment}")
    steps.release(assignment, root)
    _done(t, f"assignments/{assignment}/{notebook} regenerated")

    t = _step(f"2/5 the sample student '{student}' fills in every answer and runs the notebook (quick run)")
    folder = steps.submission_folder(student, assignment, root)
    if folder.exists():
        shutil.rmtree(folder)
    submitted = write_submission(root / "assignments" / assignment / notebook,
                                 root / "solutions" / assignment / notebook, folder)
    execute_notebook(submitted, env={"EXPRESSION_LAB_QUICK": "1"} if quick else {})
    _done(t, f"submission in {folder.relative_to(root)}: " +
          ", ".join(sorted(p.name for p in folder.iterdir() if p.is_file())))

    t = _step("3/5 autograde (nbgrader re-runs the submission in grading mode)")
    steps.autograde(assignment, student, root)
    _done(t, f"autograded notebook in grading/autograded/{student}/{assignment}")

    t = _step("4/5 feedback")
    feedback = steps.generate_feedback(assignment, student, root)
    _done(t, f"feedback HTML in {feedback.relative_to(root)}")

    t = _step("5/5 export grades")
    csv = steps.export_grades(root)
    _done(t, f"grades exported to {csv.relative_to(root)}")

    table = score_table(assignment, student, root)
    auto = table[table.graded == "auto"]
    auto_score = sum(float(s) for s in auto.score)
    print(f"\nScores of '{student}' on {assignment} (demo finished in {time.perf_counter() - total:.0f} s):\n")
    print(table.to_string(index=False))
    print(f"\nautograded: {auto_score:g} / {auto['max'].sum():g} points · written answers: "
          f"{table[table.graded == 'manual']['max'].sum():g} points await manual grading "
          f"(formgrader: `make lab`, then Nbgrader → Formgrader)")
    return table
