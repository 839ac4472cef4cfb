"""The demo course run: for each assignment, release it, hand in a sample submission, autograde it, write
feedback; then export grades.

The sample submission is the released notebook with every answer filled from the solution, executed as a
student would (a short "quick" run: ``EXPRESSION_LAB_QUICK=1``), so it hands in real trained models
(``model_2.keras``, ``model_4.keras``) with their run records (``*.run.json``). Autograding then re-executes it
in nbgrader's grading mode, and the demo prints each handed-in run record beside the grading run's. Without
FER2013 or the iPhone X data the notebooks use the synthetic FACS faces, so the demo runs on a fresh machine.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from . import ASSIGNMENTS, REPO_ROOT
from . import nbgrader_steps as steps
from .notebook_run import execute_notebook
from .sample_submission import write_submission
from .settings import EXPRESSION_LAB_QUICK

STUDENT = "sample-student"


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _done(start: float, what: str) -> None:
    print(f"   {what} ({time.perf_counter() - start:.0f} s)", flush=True)


def score_table(assignment: str, student: str, root: Path = REPO_ROOT) -> pd.DataFrame:
    """One row per graded cell: kind, score (blank while a manual grade is pending), max."""
    rows = [
        {
            "notebook": s.notebook,
            "cell": s.cell,
            "graded": s.kind,
            "score": "pending" if s.score is None else f"{s.score:g}",
            "max": s.max_score,
        }
        for s in steps.cell_scores(assignment, student, root)
    ]
    return pd.DataFrame(rows)


def _data_check(assignment: str) -> str:
    """Load the assignment's data once (warms the cache, generates the synthetic default if needed)."""
    from data_loaders import load_fer2013, load_iphonex
    from data_loaders.synthetic import standin_photos

    if assignment == "ps2_personal_transfer":  # nobody sits at a camera during the demo: stand-in photos
        from .fallback_model import fallback_model_2

        # grading always uses the fallback model_2: train it now (once, about a minute), not inside autograding
        return f"stand-in photos in {standin_photos()}; fallback model_2 at {fallback_model_2()}"
    if assignment == "ps4_action_units":  # grading uses the fallback model_2 too: train it now, not while grading
        from data_loaders import load_action_units

        from .fallback_model import fallback_model_2

        return f"{load_action_units().description}; fallback model_2 at {fallback_model_2()}"
    if assignment == "ps5_faces_in_motion":  # the synthetic clip and, for grading, the fallback model_2
        from data_loaders.video import video_path

        from .fallback_model import fallback_model_2

        return f"clip {video_path('synthetic')}; fallback model_2 at {fallback_model_2()}"
    if assignment == "ps6_explain_compare":  # FER2013 faces and, for grading, the fallback model_2
        from .fallback_model import fallback_model_2

        return f"{load_fer2013().description}; fallback model_2 at {fallback_model_2()}"
    loader = {"ps1_fer2013_cnn": load_fer2013, "ps3_iphonex_3dcnn": load_iphonex}.get(assignment)
    return loader().description if loader else "no data set to check"


def run_demo(
    assignment: str | None = None, student: str = STUDENT, quick: bool = True, root: Path = REPO_ROOT
) -> pd.DataFrame:
    """Run the whole course loop for one assignment (default: every assignment) and return the score table.

    Raises:
        FileNotFoundError: a configured data path (FER2013_PATH, IPHONEX_PATH) does not exist.
        GradingError: an nbgrader step failed.
    """
    todo = list(ASSIGNMENTS) if assignment is None else [assignment]
    total = time.perf_counter()
    for aid in todo:
        _run_one(aid, student, quick, root)

    t = _step("export grades")
    csv = steps.export_grades(root)
    _done(t, f"grades exported to {csv.relative_to(root)}")

    table = pd.concat([score_table(aid, student, root) for aid in todo], ignore_index=True)
    auto = table[table.graded == "auto"]
    auto_score = sum(float(s) for s in auto.score)
    print(f"\nScores of '{student}' on {', '.join(todo)} (demo finished in {time.perf_counter() - total:.0f} s):\n")
    print(table.to_string(index=False))
    print(
        f"\nautograded: {auto_score:g} / {auto['max'].sum():g} points · written answers: "
        f"{table[table.graded == 'manual']['max'].sum():g} points await manual grading "
        f"(formgrader: `make lab`, then Nbgrader → Formgrader)"
    )
    return table


def _run_one(assignment: str, student: str, quick: bool, root: Path) -> None:
    notebook = ASSIGNMENTS[assignment] + ".ipynb"
    print(f"\n######## {assignment}", flush=True)

    t = _step("0/4 data")
    _done(t, _data_check(assignment))

    t = _step(f"1/4 release: solutions/{assignment} -> assignments/{assignment}")
    steps.remove_submission(assignment, student, root)  # nbgrader won't re-release under an old submission
    steps.release(assignment, root)
    _done(t, f"assignments/{assignment}/{notebook} regenerated")

    t = _step(
        f"2/4 the sample student '{student}' fills in every answer and runs the notebook"
        + (" (quick run)" if quick else "")
    )
    folder = steps.submission_folder(student, assignment, root)
    submitted = write_submission(
        root / "assignments" / assignment / notebook, root / "solutions" / assignment / notebook, folder
    )
    execute_notebook(submitted, env={EXPRESSION_LAB_QUICK.name: "1"} if quick else {})
    _done(
        t,
        f"submission in {folder.relative_to(root)}: "
        + ", ".join(sorted(p.name for p in folder.iterdir() if p.is_file())),
    )

    t = _step("3/4 autograde (nbgrader re-runs the submission in grading mode)")
    steps.autograde(assignment, student, root)
    _done(t, f"autograded notebook in grading/autograded/{student}/{assignment}")

    t = _step("4/4 feedback")
    feedback = steps.generate_feedback(assignment, student, root)
    _done(t, f"feedback HTML in {feedback.relative_to(root)}")
    print_student_runs(assignment, student, root)


def student_runs(assignment: str, student: str, root: Path = REPO_ROOT) -> dict[str, pd.DataFrame | str]:
    """For each run record (``*.run.json``) handed in, the student's own run beside the grading run.

    Generic over assignments: the student's records are read from the submission folder, the grading run's
    (written by the notebook in grading mode) from ``autograde_outputs/`` of the autograded folder.

    Returns:
        ``{record file name: comparison table}``, or the problem as text for a malformed record.
    """
    from .run_record import RunRecordError, compare_runs, read_run_record

    submitted = steps.submission_folder(student, assignment, root)
    graded = root / "grading" / "autograded" / student / assignment / "autograde_outputs"
    runs: dict[str, pd.DataFrame | str] = {}
    for path in sorted(submitted.glob("*.run.json")):
        try:
            mine = read_run_record(path)
        except RunRecordError as exc:
            runs[path.name] = f"malformed, not shown: {exc}"
            continue
        try:
            theirs = read_run_record(graded / path.name)
        except RunRecordError:
            theirs = None
        runs[path.name] = compare_runs(mine, theirs if theirs is not None else {})
    return runs


def print_student_runs(assignment: str, student: str, root: Path = REPO_ROOT) -> None:
    """Print :func:`student_runs` (what a grader sees beside the autograded notebook)."""
    runs = student_runs(assignment, student, root)
    if not runs:
        print("   no run record (*.run.json) handed in", flush=True)
    for name, table in runs.items():
        if not isinstance(table, str):  # rows this assignment's record does not have (ps4 has no one accuracy)
            table = table[(table != "–").any(axis=1)]
        print(f"\n   the student's own run ({name}) beside the grading run:", flush=True)
        print(table if isinstance(table, str) else table.to_string(), flush=True)
