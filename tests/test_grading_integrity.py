"""Fair grading under attack: crafted submissions autograded by nbgrader, each with its expected outcome.

nbgrader's own behaviour (a test cell edited or deleted, changed cell metadata, an endless loop, output
flooding, grading twice) is checked on the tiny assignment of conftest.py (no TensorFlow, a 5 s cell timeout),
so each case takes seconds. What depends on the kit's notebooks (warnings and log lines raised inside a test
cell must not zero a correct answer) is checked on ps3 in the session's synthetic course.
"""

from __future__ import annotations

import json

import pytest

from conftest import REPO, TINY_ID, TINY_NOTEBOOK, hand_in, make_tiny_course
from course import nbgrader_steps as steps
from course.notebook_cells import cell_by_grade_id
from course.sample_submission import fill_answers

pytestmark = pytest.mark.slow

FULL = 5  # automatic points of the tiny assignment
TIMEOUT = 5  # seconds per cell in the tiny course


def _scores(root, student, assignment=TINY_ID):
    return {s.cell: s for s in steps.cell_scores(assignment, student, root) if s.kind == "auto"}


def _points(scores) -> dict:
    return {k: v.score for k, v in scores.items()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    release, source = make_tiny_course(root, timeout=TIMEOUT)
    cases = {"honest": fill_answers(release, source)}

    nb = fill_answers(release, source)  # a wrong double, and its test cell edited to pass
    cell_by_grade_id(nb, "double").source = "def double(x):\n    return x\n"
    cell_by_grade_id(nb, "test_double").source = "pass\n"
    cases["edited_test"] = nb

    nb = fill_answers(release, source)  # a wrong triple, and its test cell deleted
    cell_by_grade_id(nb, "triple").source = "def triple(x):\n    return x\n"
    nb.cells.remove(cell_by_grade_id(nb, "test_triple"))
    cases["deleted_test"] = nb

    nb = fill_answers(release, source)  # test cell metadata changed: more points, not graded, unlocked
    cell_by_grade_id(nb, "test_triple").metadata.nbgrader.update(points=100, grade=False, locked=False)
    cases["metadata"] = nb

    nb = fill_answers(release, source)  # an endless loop in an answer cell, after its answer
    cell_by_grade_id(nb, "triple").source += "\nimport time\nwhile True:\n    time.sleep(1)\n"
    cases["endless"] = nb

    nb = fill_answers(release, source)  # megabytes of output
    cell_by_grade_id(nb, "double").source += "\nfor _i in range(60000):\n    print('x' * 100)\n"
    cases["flood"] = nb

    errors = {}
    for student, nb in cases.items():
        hand_in(root, student, TINY_ID, nb, TINY_NOTEBOOK)
        try:
            steps.autograde(TINY_ID, student, root)
        except steps.GradingError as err:  # nbgrader refuses some tampering outright
            errors[student] = str(err)
    first = _scores(root, "honest")
    steps.autograde(TINY_ID, "honest", root)  # the same submission again
    steps.generate_feedback(TINY_ID, "flood", root)
    return root, first, errors


def test_the_honest_submission_scores_every_automatic_point(graded):
    root, _, _ = graded
    scores = _points(_scores(root, "honest"))
    assert sum(scores.values()) == FULL, f"expected {FULL} points, found {scores}"


def test_a_test_cell_edited_to_pass_is_graded_with_the_original(graded):
    root, _, _ = graded
    scores = _points(_scores(root, "edited_test"))
    assert scores["test_double"] == 0, f"expected 0 for the restored test_double, found {scores}"
    assert scores["test_triple"] == 2, f"expected the untouched answer's 2 points, found {scores}"


def test_a_deleted_test_cell_does_not_inflate_the_score(graded):
    root, _, _ = graded
    scores = _points(_scores(root, "deleted_test"))
    assert sum(s or 0 for s in scores.values()) <= FULL - 2, f"expected at most {FULL - 2} points, found {scores}"
    assert scores.get("test_triple") in (None, 0), f"expected no points for the deleted test, found {scores}"


def test_changed_cell_metadata_is_refused_and_named(graded):
    """nbgrader checks each graded cell's checksum: a test cell whose metadata (points, grade, locked) was edited
    stops autograding of that submission with an error naming the cell, so no inflated score is recorded and the
    instructor sees which cell was changed."""
    root, _, errors = graded
    assert "Inconsistent checksums for cell test_triple" in errors.get("metadata", ""), errors.get("metadata")
    assert not (root / "grading" / "autograded" / "metadata" / TINY_ID).exists()
    assert set(errors) == {"metadata"}, f"expected every other case graded; refused: {sorted(errors)}"


def test_an_endless_loop_times_out_and_the_rest_is_graded(graded):
    root, _, _ = graded
    nb = json.loads((root / "grading" / "autograded" / "endless" / TINY_ID / TINY_NOTEBOOK).read_text())
    errors = [
        o.get("ename") for o in cell_by_grade_id(nb, "triple").get("outputs", []) if o.get("output_type") == "error"
    ]
    assert "CellTimeoutError" in errors, f"expected the looping cell interrupted at {TIMEOUT} s, found {errors}"
    scores = _points(_scores(root, "endless"))
    assert sum(scores.values()) == FULL, f"expected every later cell to run and be graded, found {scores}"


def test_output_flooding_is_graded_and_gets_feedback(graded):
    root, _, _ = graded
    scores = _points(_scores(root, "flood"))
    assert sum(scores.values()) == FULL, f"expected {FULL} points, found {scores}"
    html = root / "grading" / "feedback" / "flood" / TINY_ID / TINY_NOTEBOOK.replace(".ipynb", ".html")
    assert html.is_file(), f"expected feedback at {html}"


def test_autograding_twice_gives_identical_scores(graded):
    root, first, _ = graded
    again = _points(_scores(root, "honest"))
    assert again == _points(first), f"expected {_points(first)} again, found {again}"


def test_hidden_tests_appear_nowhere_in_the_release():
    hidden, public = [], []
    for nb in (REPO / "solutions").rglob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            text = "".join(cell["source"])
            while "### BEGIN HIDDEN TESTS" in text:
                before, rest = text.split("### BEGIN HIDDEN TESTS", 1)
                body, text = rest.split("### END HIDDEN TESTS", 1)
                hidden += [line.strip() for line in body.splitlines() if len(line.strip()) > 25]
                public.append(before)
            public.append(text)
    shared = "\n".join(public)
    hidden = [line for line in hidden if line not in shared]  # lines a public test also has are not secrets
    released = "\n".join(p.read_text() for p in (REPO / "assignments").rglob("*.ipynb"))
    leaked = [line for line in hidden if json.dumps(line)[1:-1] in released]
    assert hidden and not leaked, leaked[:3]
