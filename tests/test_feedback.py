"""Feedback shows neither the hidden tests nor what running them printed.

A submission registers an IPython ``pre_run_cell`` hook that prints the source of every cell it runs. While
autograding, the hidden tests run too, so their source lands in that cell's output: the instructor's autograded
notebook shows it, the student's feedback must not (``course.feedback.ClearHiddenTestOutputs``).
A tiny assignment (no TensorFlow) keeps this test to a few seconds of nbgrader.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import REPO
from course import nbgrader_steps as steps
from course.notebook_cells import cell_by_grade_id

pytestmark = pytest.mark.slow

AID, NAME = "tiny", "tiny.ipynb"
SECRET = "hidden_secret_4711"


def _meta(grade_id, *, grade=False, solution=False, locked=False, points=0):
    meta = {"grade_id": grade_id, "grade": grade, "solution": solution, "locked": locked, "schema_version": 3}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _source_notebook():
    return new_notebook(cells=[
        new_markdown_cell("Write `double(x)`.", metadata=_meta("intro", locked=True)),
        new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                      metadata=_meta("double", solution=True)),
        new_code_cell("print('public check: double(2) =', double(2))\n"
                      "assert double(2) == 4, f'expected double(2) == 4, found {double(2)}'\n"
                      f"### BEGIN HIDDEN TESTS\n{SECRET} = double(21)\n"
                      f"assert {SECRET} == 42, f'expected 42, found {{{SECRET}}}'\n### END HIDDEN TESTS",
                      metadata=_meta("test_double", grade=True, locked=True, points=2)),
        new_code_cell("print('a public test cell keeps its output')\nassert double(0) == 0",
                      metadata=_meta("test_public", grade=True, locked=True, points=1)),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


HOOK = ("def double(x):\n    return 2 * x\n\n"
        "get_ipython().events.register('pre_run_cell', lambda info: print('LEAK:', info.raw_cell))\n")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("feedback-course")
    shutil.copy(REPO / "nbgrader_config.py", root)
    (root / "solutions" / AID).mkdir(parents=True)
    nbformat.write(_source_notebook(), root / "solutions" / AID / NAME)
    steps.release(AID, root)
    nb = nbformat.read(root / "assignments" / AID / NAME, as_version=4)
    cell_by_grade_id(nb, "double").source = HOOK
    folder = steps.submission_folder("leaker", AID, root)
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / NAME)
    (folder / "timestamp.txt").write_text("2026-11-21 10:00:00.000000 UTC")
    steps.autograde(AID, "leaker", root)
    feedback = steps.generate_feedback(AID, "leaker", root)
    return root, feedback


def test_the_attack_works_while_autograding(graded):
    root, _ = graded
    nb = nbformat.read(root / "grading" / "autograded" / "leaker" / AID / NAME, as_version=4)
    printed = "".join(o.get("text", "") for o in cell_by_grade_id(nb, "test_double").outputs)
    assert SECRET in printed, f"expected the hook to print the hidden test while grading; the cell printed {printed!r}"


def test_feedback_shows_neither_hidden_tests_nor_their_outputs(graded):
    _, feedback = graded
    html = "".join(p.read_text() for p in sorted(feedback.rglob("*.html")))
    assert html, f"expected feedback HTML under {feedback}"
    assert SECRET not in html, "expected no trace of the hidden test in the feedback; found its source"
    assert "not shown in feedback" in html, "expected the note that replaced the hidden-test cell's output"
    assert "a public test cell keeps its output" in html, "expected public test cells to keep their outputs"


def test_the_submission_is_still_graded_for_what_it_answered(graded):
    root, _ = graded
    scores = {s.cell: (s.score, s.max_score) for s in steps.cell_scores(AID, "leaker", root)}
    assert scores == {"test_double": (2, 2), "test_public": (1, 1)}, f"expected full points; found {scores}"
