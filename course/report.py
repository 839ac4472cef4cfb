"""Class analytics from nbgrader's gradebook: ``python -m course report ASSIGNMENT [--out DIR]``.

One self-contained HTML page (plotly, inline) with the score distribution, the points per question, the tests
that fail most and the progress of manual grading, plus a CSV for Canvas's gradebook import.

Sources of the facts used:

* nbgrader's gradebook model (``nbgrader.api``): a ``Grade`` per graded cell and submission; its ``score`` is
  the manual score when one was given, else the automatic one; ``failed_tests`` is true for a code test cell
  whose automatic score is below its maximum; written answers (markdown cells) keep ``manual_score`` empty
  until someone grades them.
* Canvas's gradebook import (Instructure, "How do I import grades in the Gradebook?"): a CSV whose first columns
  are ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column per assignment; the
  exported file's second row, ``Points Possible``, gives each assignment's maximum and is read back on import.
  A column whose header names no existing Canvas assignment creates a new assignment.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd

from . import REPO_ROOT, review
from .notebook_cells import grade_id, sources_by_grade_id

#: Canvas's fixed leading columns, in its order (see the module docstring).
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
HIDDEN_TESTS_MARKER = "### BEGIN HIDDEN TESTS"


@dataclass
class ClassReport:
    """Everything the report page shows, as pandas tables.

    Attributes:
        assignment: the nbgrader assignment id.
        scores: one row per submission: ``student``, ``score``, ``max_score``, ``auto_score``,
            ``manual_score`` (points, float), ``manual_pending`` (written answers not graded yet, int),
            ``review`` (what grading flagged for a person to review, :mod:`course.review`; "" when nothing).
        questions: one row per submission and graded cell: ``student``, ``notebook``, ``cell`` (grade_id),
            ``kind`` ("auto" test cell or "manual" written answer), ``score`` (NaN while a manual grade is
            pending), ``max_score``, ``failed`` (bool: a test cell scored below its maximum).
        failing_tests: one row per test cell, most failures first: ``notebook``, ``cell``, ``hidden`` (the
            cell holds hidden tests), ``failed``, ``submissions``, ``failed_share`` (0-1), ``error`` (the most
            common first line of the error the autograded notebooks show in that cell, "" if none).
        manual_progress: one row per written answer: ``notebook``, ``cell``, ``graded``, ``submissions``.
        flagged: one row per review flag: ``student``, ``source`` (the grading step), ``reason``.
    """

    assignment: str
    scores: pd.DataFrame
    questions: pd.DataFrame
    failing_tests: pd.DataFrame
    manual_progress: pd.DataFrame
    flagged: pd.DataFrame

    def summary(self) -> str:
        """Three lines: submissions and score statistics, the most failed test, manual grading progress."""
        s, t, m = self.scores, self.failing_tests, self.manual_progress
        worst = (
            f"most failed test: {t.cell[0]} ({t.failed[0]} of {t.submissions[0]})"
            if len(t) and t.failed[0]
            else "no test failed"
        )
        return (
            f"{self.assignment}: {len(s)} submissions, mean {s.score.mean():.1f}, median {s.score.median():.1f} "
            f"of {s.max_score.max():g} points\n{worst}\n"
            f"written answers graded: {int(m.graded.sum())} of {int(m.submissions.sum())}"
            + (f"\nflagged for review: {', '.join(sorted(set(self.flagged.student)))}" if len(self.flagged) else "")
        )


def _db_url(root: Path) -> str:
    db = root / "grading" / "gradebook.db"
    if not db.is_file():
        raise FileNotFoundError(f"no gradebook at {db}: autograde the class first (python -m course autograde …)")
    return f"sqlite:///{db}"


def _gradebook(root: Path):
    """nbgrader's gradebook of the course at ``root``, opened.

    Raises:
        FileNotFoundError: there is none (:func:`_db_url`).
        ValueError: the file is not a gradebook SQLite can read (the message names it).
    """
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import DatabaseError

    try:
        return Gradebook(_db_url(root))
    except DatabaseError as err:
        raise ValueError(
            f"{root / 'grading' / 'gradebook.db'}: not an nbgrader gradebook (SQLite) that can be read "
            f"({type(err).__name__}: {str(err).splitlines()[0]})"
        ) from None


def _hidden_test_cells(source_folder: Path) -> set[tuple[str, str]]:
    """(notebook name, grade_id) of every source cell holding hidden tests."""
    cells = set()
    for path in source_folder.glob("*.ipynb"):
        for gid, source in sources_by_grade_id(path).items():
            if HIDDEN_TESTS_MARKER in source:
                cells.add((path.stem, gid))
    return cells


def _error_lines(autograded: Path, assignment: str) -> dict[tuple[str, str, str], str]:
    """(student, notebook, grade_id) -> first line of the error a cell of an autograded notebook shows.

    Reads ``autograded/<student>/<assignment>/*.ipynb`` (nbgrader's autograded copies, outputs kept).
    """
    errors = {}
    for path in autograded.glob(f"*/{assignment}/*.ipynb"):
        student = path.parts[-3]
        for cell in nbformat.read(path, as_version=4).cells:
            gid = grade_id(cell)
            for out in cell.get("outputs", []) if gid else []:
                if out.get("output_type") == "error":
                    value = (out.get("evalue") or "").strip().splitlines()
                    errors[(student, path.stem, gid)] = f"{out.get('ename', 'Error')}: {value[0] if value else ''}"
    return errors


def class_report(assignment: str, root: Path = REPO_ROOT) -> ClassReport:
    """Read the gradebook (``grading/gradebook.db``) and the autograded notebooks of ``assignment``.

    Raises:
        FileNotFoundError: there is no gradebook under ``root/grading``.
        ValueError: the gradebook cannot be read, has no such assignment, or no submission of it.
    """
    from nbgrader.api import MissingEntry

    hidden = _hidden_test_cells(root / "solutions" / assignment)
    autograded = root / "grading" / "autograded"
    errors = _error_lines(autograded, assignment)
    score_rows, question_rows = [], []
    with _gradebook(root) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            known = ", ".join(a.name for a in gb.assignments) or "none"
            raise ValueError(f"the gradebook has no assignment {assignment!r} (it has: {known})") from None
        for sub in gb.assignment_submissions(assignment):
            pending, auto, manual = 0, 0.0, 0.0
            for nb in sub.notebooks:
                for grade in nb.grades:
                    is_manual = grade.cell_type == "markdown"
                    graded = not is_manual or grade.manual_score is not None
                    pending += not graded
                    if is_manual:
                        manual += grade.score if graded else 0.0
                    else:
                        auto += grade.score
                    question_rows.append(
                        {
                            "student": sub.student.id,
                            "notebook": nb.name,
                            "cell": grade.name,
                            "kind": "manual" if is_manual else "auto",
                            "score": float(grade.score) if graded else float("nan"),
                            "max_score": float(grade.max_score),
                            "failed": bool(grade.failed_tests),
                        }
                    )
            score_rows.append(
                {
                    "student": sub.student.id,
                    "score": float(sub.score),
                    "max_score": float(sub.max_score),
                    "auto_score": auto,
                    "manual_score": manual,
                    "manual_pending": pending,
                }
            )
    if not score_rows:
        raise ValueError(f"no submission of {assignment!r} is in the gradebook yet (collect and autograde first)")
    scores = pd.DataFrame(score_rows).sort_values("student", ignore_index=True)
    flags = {student: review.read(assignment, student, root) for student in scores.student}
    scores["review"] = [review.summary(flags[student]) for student in scores.student]
    flagged = pd.DataFrame(
        [
            {"student": student, "source": f.source, "reason": f.reason}
            for student, found in flags.items()
            for f in found
        ],
        columns=["student", "source", "reason"],
    )
    questions = pd.DataFrame(question_rows)

    tests = questions[questions.kind == "auto"]
    failing = (
        tests.groupby(["notebook", "cell"], sort=False)
        .agg(failed=("failed", "sum"), submissions=("failed", "size"))
        .reset_index()
    )
    failing["hidden"] = [(nb, cell) in hidden for nb, cell in zip(failing.notebook, failing.cell)]
    failing["failed_share"] = failing.failed / failing.submissions
    failing["error"] = [_most_common(errors, nb, cell) for nb, cell in zip(failing.notebook, failing.cell)]
    failing = failing.sort_values(["failed", "hidden"], ascending=False, kind="stable", ignore_index=True)
    failing = failing[["notebook", "cell", "hidden", "failed", "submissions", "failed_share", "error"]]

    written = questions[questions.kind == "manual"]
    progress = (
        written.assign(graded=written.score.notna())
        .groupby(["notebook", "cell"], sort=False)
        .agg(graded=("graded", "sum"), submissions=("graded", "size"))
        .reset_index()
    )
    return ClassReport(assignment, scores, questions, failing, progress, flagged)


def _most_common(errors: dict[tuple[str, str, str], str], notebook: str, cell: str) -> str:
    lines = pd.Series([line for (_, nb, gid), line in errors.items() if nb == notebook and gid == cell])
    return str(lines.value_counts().index[0]) if len(lines) else ""


def canvas_gradebook(root: Path = REPO_ROOT, assignments: list[str] | None = None) -> pd.DataFrame:
    """Every student's total points per assignment, as Canvas's gradebook import expects them.

    Columns: ``Student`` ("Last, First" when the gradebook has names, else the student id), ``ID`` (the
    Canvas user id, nbgrader's ``lms_user_id``, blank when unknown), ``SIS User ID`` (blank), ``SIS Login ID``
    (the nbgrader student id, i.e. the JupyterHub login), ``Section`` (blank), then one column per assignment
    (default: every assignment in the gradebook, in the gradebook's order). The first row is ``Points
    Possible`` with each assignment's maximum; a student without a submission gets an empty cell (Canvas then
    leaves that grade unchanged), never a silent zero.

    Raises:
        FileNotFoundError: there is no gradebook under ``root/grading``.
        ValueError: the gradebook cannot be read, or an assignment named in ``assignments`` is not in it.
    """
    with _gradebook(root) as gb:
        known = [a.name for a in gb.assignments]
        wanted = known if assignments is None else assignments
        unknown = [a for a in wanted if a not in known]
        if unknown:
            raise ValueError(f"not in the gradebook: {', '.join(unknown)} (it has: {', '.join(known) or 'none'})")
        possible = {"Student": "Points Possible", **{c: "" for c in CANVAS_COLUMNS[1:]}}
        possible.update({a: float(gb.find_assignment(a).max_score) for a in wanted})
        rows = [possible]
        for student in sorted(gb.students, key=lambda s: s.id):
            name = (
                f"{student.last_name}, {student.first_name}" if student.last_name and student.first_name else student.id
            )
            row = {
                "Student": name,
                "ID": student.lms_user_id or "",
                "SIS User ID": "",
                "SIS Login ID": student.id,
                "Section": "",
            }
            for sub in student.submissions:
                if sub.assignment.name in wanted:
                    row[sub.assignment.name] = float(sub.score)
            rows.append(row)
    return pd.DataFrame(rows, columns=CANVAS_COLUMNS + list(wanted))


def _figures(report: ClassReport) -> list:
    import plotly.express as px

    max_total = report.scores.max_score.max()
    dist = px.histogram(
        report.scores,
        x="score",
        nbins=max(10, min(40, len(report.scores))),
        range_x=[0, max_total],
        title=f"Total score (of {max_total:g} points)",
        labels={"score": "points"},
    )
    dist.update_layout(yaxis_title="submissions", bargap=0.05)

    per_q = (
        report.questions.groupby(["cell", "kind"], sort=False)
        .agg(mean=("score", "mean"), max_score=("max_score", "first"))
        .reset_index()
    )
    questions = px.bar(
        per_q,
        x="cell",
        y="mean",
        color="kind",
        hover_data=["max_score"],
        title="Mean points per question (written answers: graded ones only)",
        labels={"mean": "mean points", "cell": "question (grade_id)"},
    )
    questions.add_scatter(
        x=per_q.cell,
        y=per_q.max_score,
        mode="markers",
        name="maximum",
        marker={"symbol": "line-ew-open", "size": 18, "color": "black"},
    )

    tests = report.failing_tests
    failing = px.bar(
        tests,
        x="failed_share",
        y="cell",
        orientation="h",
        color="hidden",
        hover_data=["failed", "submissions", "error"],
        range_x=[0, 1],
        title="Test cells by share of submissions that fail them",
        labels={"failed_share": "share failed", "cell": "test cell (grade_id)"},
    )
    failing.update_yaxes(autorange="reversed")
    return [dist, questions, failing]


def _page(report: ClassReport) -> str:
    scores = report.scores
    progress = report.manual_progress
    graded, total = int(progress.graded.sum()), int(progress.submissions.sum())
    parts = []
    for i, fig in enumerate(_figures(report)):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    summary = (
        f"{len(scores)} submissions · mean {scores.score.mean():.1f} · median {scores.score.median():.1f} "
        f"of {scores.max_score.max():g} points · written answers graded: {graded} of {total}"
    )
    tables = [("Flagged for review (look before releasing grades)", report.flagged)] if len(report.flagged) else []
    tables += [
        (
            "Tests that fail most",
            report.failing_tests.assign(failed_share=report.failing_tests.failed_share.map("{:.0%}".format)),
        ),
        ("Manual grading progress", progress),
        ("Scores", scores),
    ]
    body = "\n".join(parts + [f"<h2>{html.escape(t)}</h2>\n{df.to_html(index=False, na_rep='')}" for t, df in tables])
    title = f"{html.escape(report.assignment)}: class report"
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head>"
        f"<body><h1>{title}</h1><p>{html.escape(summary)}</p>\n{body}\n</body></html>\n"
    )


def write_report(
    assignment: str, out: Path | None = None, root: Path = REPO_ROOT, all_assignments: bool = False
) -> tuple[ClassReport, dict[str, Path]]:
    """Write ``<assignment>_report.html`` and ``<assignment>_canvas.csv`` into ``out``.

    ``out`` defaults to ``root/grading/reports``. Returns the report and {"html": path, "csv": path}. The CSV holds
    this assignment (with ``all_assignments``: every assignment in the gradebook, as ``canvas_gradebook.csv``),
    with the Points Possible row, ready for Canvas's *Import* in the Gradebook.

    Raises:
        FileNotFoundError, ValueError: as :func:`class_report`.
    """
    report = class_report(assignment, root)
    out = Path(out) if out else root / "grading" / "reports"
    out.mkdir(parents=True, exist_ok=True)
    page = out / f"{assignment}_report.html"
    page.write_text(_page(report), encoding="utf-8")
    csv = out / ("canvas_gradebook.csv" if all_assignments else f"{assignment}_canvas.csv")
    canvas_gradebook(root, None if all_assignments else [assignment]).to_csv(csv, index=False)
    return report, {"html": page, "csv": csv}
