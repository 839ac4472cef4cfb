"""Class analytics (``course.report``) on a small gradebook built here with nbgrader's own API.

Course ``ps9`` has one notebook with two test cells (one holding hidden tests) and one written answer;
Ada answers everything right and has her written answer graded, Bob fails the hidden test (his autograded
notebook shows the AssertionError) and awaits manual grading, Cy never handed in.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from course.__main__ import main
from course.report import CANVAS_COLUMNS, canvas_gradebook, class_report

AID, NB = "ps9", "faces"


def _cell(source, grade_id, points, markdown=False):
    cell = nbformat.v4.new_markdown_cell(source) if markdown else nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {
        "grade_id": grade_id,
        "grade": True,
        "solution": markdown,
        "locked": not markdown,
        "points": points,
        "schema_version": 3,
    }
    return cell


# nbgrader's add_submission warns about its own session handling; nothing to do with the report.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("course")
    with pytest.MonkeyPatch.context() as mp:
        # A new gradebook is stamped by running `alembic`, which lives beside this Python.
        mp.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
        _build(tmp_path)
    return tmp_path


def _build(tmp_path):
    from nbgrader.api import Gradebook

    source = nbformat.v4.new_notebook(
        cells=[
            _cell("assert 1 == 1", "test_shape", points=2),
            _cell(
                "assert 1 == 1\n### BEGIN HIDDEN TESTS\nassert 2 == 2\n### END HIDDEN TESTS", "test_hidden", points=3
            ),
            _cell("YOUR ANSWER HERE", "q_text", points=4, markdown=True),
        ]
    )
    (tmp_path / "solutions" / AID).mkdir(parents=True)
    nbformat.write(source, tmp_path / "solutions" / AID / f"{NB}.ipynb")

    bob = nbformat.v4.new_notebook(cells=[c.copy() for c in source.cells])
    bob.cells[1].outputs = [
        nbformat.v4.new_output(
            "error", ename="AssertionError", evalue="expected 7 classes, found 6\nmore", traceback=[]
        )
    ]
    (tmp_path / "grading" / "autograded" / "bob" / AID).mkdir(parents=True)
    nbformat.write(bob, tmp_path / "grading" / "autograded" / "bob" / AID / f"{NB}.ipynb")

    with Gradebook(f"sqlite:///{tmp_path / 'grading' / 'gradebook.db'}") as gb:
        gb.add_assignment(AID)
        gb.add_notebook(NB, AID)
        gb.add_grade_cell("test_shape", NB, AID, max_score=2, cell_type="code")
        gb.add_grade_cell("test_hidden", NB, AID, max_score=3, cell_type="code")
        gb.add_grade_cell("q_text", NB, AID, max_score=4, cell_type="markdown")
        gb.add_student("ada", first_name="Ada", last_name="Lovelace", lms_user_id="1001")
        gb.add_student("bob")
        gb.add_student("cy")
        for student, scores in {"ada": (2, 3, 3.5), "bob": (2, 0, None)}.items():
            gb.add_submission(AID, student)
            for cell, score in zip(("test_shape", "test_hidden"), scores):
                grade = gb.find_grade(cell, NB, AID, student)
                grade.auto_score, grade.needs_manual_grade = score, False
            if scores[2] is not None:
                grade = gb.find_grade("q_text", NB, AID, student)
                grade.manual_score, grade.needs_manual_grade = scores[2], False
        gb.db.commit()


def test_scores_and_points_per_question(course):
    report = class_report(AID, course)
    scores = report.scores.set_index("student")
    assert list(scores.index) == ["ada", "bob"], "Cy handed nothing in: no score row"
    assert scores.loc["ada", ["score", "auto_score", "manual_score", "manual_pending"]].tolist() == [8.5, 5, 3.5, 0]
    assert scores.loc["bob", ["score", "auto_score", "manual_score", "manual_pending"]].tolist() == [2, 2, 0, 1]
    assert (scores.max_score == 9).all()
    q = report.questions.set_index(["student", "cell"])
    assert q.loc[("bob", "test_hidden"), "failed"] and not q.loc[("ada", "test_hidden"), "failed"]
    assert pd.isna(q.loc[("bob", "q_text"), "score"]), "an ungraded written answer is pending, not 0"


def test_the_test_that_fails_most_comes_first_with_its_error(course):
    failing = class_report(AID, course).failing_tests
    top = failing.iloc[0]
    assert (top.cell, top.hidden, top.failed, top.submissions) == ("test_hidden", True, 1, 2)
    assert top.failed_share == 0.5
    assert top.error == "AssertionError: expected 7 classes, found 6"
    assert failing.set_index("cell").loc["test_shape", "failed"] == 0


def test_manual_grading_progress(course):
    progress = class_report(AID, course).manual_progress
    assert progress.to_dict("records") == [{"notebook": NB, "cell": "q_text", "graded": 1, "submissions": 2}]


def test_canvas_csv_has_the_import_columns_and_points_possible(course):
    table = canvas_gradebook(course)
    assert list(table.columns) == CANVAS_COLUMNS + [AID]
    assert table.iloc[0]["Student"] == "Points Possible" and table.iloc[0][AID] == 9
    rows = table.iloc[1:].set_index("SIS Login ID")
    assert rows.loc["ada", "Student"] == "Lovelace, Ada" and rows.loc["ada", "ID"] == "1001"
    assert rows.loc["ada", AID] == 8.5 and rows.loc["bob", AID] == 2
    assert pd.isna(rows.loc["cy", AID]), "no submission: blank (Canvas leaves it), never a made-up 0"


def test_report_command_writes_one_page_and_the_csv(course, tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["report", AID, "--out", str(out), "--course-dir", str(course)]) == 0
    printed = capsys.readouterr().out
    assert "2 submissions" in printed and "most failed test: test_hidden (1 of 2)" in printed
    assert "written answers graded: 1 of 2" in printed
    page = (out / f"{AID}_report.html").read_text()
    assert page.count("<script") >= 3 and page.count("plotly.js v") == 1, "one inline plotly.js, three figures"
    assert "test_hidden" in page and "AssertionError: expected 7 classes" in page
    with open(out / f"{AID}_canvas.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CANVAS_COLUMNS + [AID]
    assert rows[1][0] == "Points Possible" and float(rows[1][-1]) == 9


def test_the_whole_course_csv_has_a_column_per_assignment(course, tmp_path):
    from nbgrader.api import Gradebook

    course = Path(shutil.copytree(course, tmp_path / "course"))  # the shared gradebook stays as it was
    with Gradebook(f"sqlite:///{course / 'grading' / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment("ps10")  # released, nobody handed in yet
    out = tmp_path / "all"
    assert main(["report", AID, "--out", str(out), "--course-dir", str(course), "--all-assignments"]) == 0
    table = pd.read_csv(out / "canvas_gradebook.csv")
    assert list(table.columns[:5]) == CANVAS_COLUMNS and sorted(table.columns[5:]) == sorted([AID, "ps10"])
    assert table.ps10.iloc[1:].isna().all(), "no submissions: blank cells"


def test_bad_input_says_what_is_missing(tmp_path, course, capsys):
    with pytest.raises(FileNotFoundError, match="no gradebook"):
        class_report(AID, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="has no assignment 'ps7'.*ps9"):
        class_report("ps7", course)
    with pytest.raises(ValueError, match="not in the gradebook: ps7"):
        canvas_gradebook(course, ["ps7"])
    assert main(["report", "ps7", "--course-dir", str(course)]) == 2
    assert "has no assignment 'ps7'" in capsys.readouterr().err


def test_a_damaged_gradebook_or_review_record_is_named_not_a_traceback(tmp_path, capsys):
    """Regressions: a gradebook.db that is not SQLite ended in a sqlalchemy traceback; a review record that is not
    a list of flags in a KeyError or a JSON message naming no file."""
    from course import review

    (tmp_path / "grading").mkdir()
    (tmp_path / "grading" / "gradebook.db").write_text("not a database")
    assert main(["report", AID, "--course-dir", str(tmp_path)]) == 2
    assert "gradebook.db: not an nbgrader gradebook (SQLite)" in capsys.readouterr().err
    record = tmp_path / "grading" / "autograde" / "review" / AID / "alice.json"
    record.parent.mkdir(parents=True)
    for text in ("{not json", '[{"source": "x"}]', "[1, 2]"):
        record.write_text(text)
        with pytest.raises(ValueError, match=r"alice\.json: expected a JSON list of \{\"source\", \"reason\"\}"):
            review.read(AID, "alice", tmp_path)
