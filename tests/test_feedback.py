"""Feedback shows neither the hidden tests nor what running them printed.

A submission registers an IPython ``pre_run_cell`` hook that prints the source of every cell it runs. While
autograding, the hidden tests run too, so their source lands in that cell's output: the instructor's autograded
notebook shows it, the student's feedback must not (``course.feedback.ClearHiddenTestOutputs``). The course
grades without the kit's guard (:mod:`course.guarded_execute`, which removes the hook before each test cell), so
that feedback is tested on its own. The tiny assignment (conftest; no TensorFlow) keeps this to a few seconds of nbgrader.
"""

from __future__ import annotations

import nbformat
import pytest

from conftest import TINY_ID, TINY_NOTEBOOK, TINY_SECRET, hand_in, make_tiny_course
from course import nbgrader_steps as steps
from course.notebook_cells import cell_by_grade_id
from course.sample_submission import fill_answers

pytestmark = pytest.mark.slow

HOOK = "get_ipython().events.register('pre_run_cell', lambda info: print('LEAK:', info.raw_cell))\n"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from test_sandbox_attacks import PLAIN_EXECUTE

    root = tmp_path_factory.mktemp("feedback-course")
    release, source = make_tiny_course(root)
    # feedback is tested on its own: grading without the guard, which stops this hook earlier (and flags it)
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(PLAIN_EXECUTE)
    nb = fill_answers(release, source)
    cell_by_grade_id(nb, "double").source += "\n" + HOOK
    hand_in(root, "leaker", TINY_ID, nb, TINY_NOTEBOOK)
    steps.autograde(TINY_ID, "leaker", root)
    return root, steps.generate_feedback(TINY_ID, "leaker", root)


def test_the_attack_works_while_autograding(graded):
    root, _ = graded
    nb = nbformat.read(root / "grading" / "autograded" / "leaker" / TINY_ID / TINY_NOTEBOOK, as_version=4)
    printed = "".join(o.get("text", "") for o in cell_by_grade_id(nb, "test_double").outputs)
    assert TINY_SECRET in printed, f"expected the hook to print the hidden test while grading; found {printed!r}"


def test_feedback_shows_neither_hidden_tests_nor_their_outputs(graded):
    _, feedback = graded
    html = "".join(p.read_text() for p in sorted(feedback.rglob("*.html")))
    assert html, f"expected feedback HTML under {feedback}"
    assert TINY_SECRET not in html, "expected no trace of the hidden test in the feedback; found its source"
    assert "not shown in feedback" in html, "expected the note that replaced the hidden-test cell's output"
    assert "a public test cell keeps its output" in html, "expected public test cells to keep their outputs"


def test_the_submission_is_still_graded_for_what_it_answered(graded):
    root, _ = graded
    scores = {s.cell: (s.score, s.max_score) for s in steps.cell_scores(TINY_ID, "leaker", root)}
    assert scores == {"test_double": (2, 2), "test_triple": (2, 2), "test_public": (1, 1)}, (
        f"expected full points; found {scores}"
    )
