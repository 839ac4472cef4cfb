"""Fair grading under attack: crafted ps3 submissions autograded by nbgrader, each with its expected outcome.

ps3 (synthetic point clouds) autogrades in about 20 s, so every case runs in CI. The course copy uses the
repository's nbgrader_config.py with a 20 s cell timeout, so the endless-loop case ends quickly.
"""

from __future__ import annotations

import json
import shutil

import nbformat
import pytest

from conftest import REPO
from course import nbgrader_steps as steps
from course.notebook_cells import cell_by_grade_id
from course.sample_submission import fill_answers

pytestmark = pytest.mark.slow

AID, NOTEBOOK = "ps3_iphonex_3dcnn", "iphonex_3dcnn.ipynb"
FULL = 14  # automatic points of ps3


def _hand_in(root, student, nb, model_from=None):
    folder = steps.submission_folder(student, AID, root)
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / NOTEBOOK)
    (folder / "timestamp.txt").write_text("2026-11-21 10:00:00.000000 UTC")
    if model_from is not None:
        shutil.copy(model_from, folder / "model_4.keras")


def _scores(root, student):
    return {s.cell: s for s in steps.cell_scores(AID, student, root) if s.kind == "auto"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    shutil.copytree(REPO / "solutions" / AID, root / "solutions" / AID)
    config = (REPO / "nbgrader_config.py").read_text() + "\nc.Execute.timeout = 20\n"
    (root / "nbgrader_config.py").write_text(config)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPHONEX_PATH", "synthetic")
        steps.release(AID, root)
        release, source = root / "assignments" / AID / NOTEBOOK, root / "solutions" / AID / NOTEBOOK

        # a trained model_4.keras to hand in: run the perfect notebook once in grading mode
        from course.notebook_run import execute_notebook

        work = root / "work"
        work.mkdir()
        nbformat.write(fill_answers(release, source), work / NOTEBOOK)
        execute_notebook(work / NOTEBOOK, env={"NBGRADER_EXECUTION": "autograde"})
        model = work / "autograde_outputs" / "model_4.keras"

        cases = {}
        cases["honest"] = fill_answers(release, source)

        nb = fill_answers(release, source)  # wrong voxelize, and its public test cell edited to pass
        cell_by_grade_id(nb, "voxelize").source = "def voxelize(points, grid=24, box=None):\n    return np.zeros((grid,) * 3, np.int32)\n"
        cell_by_grade_id(nb, "test_voxelize").source = "pass\n"
        cases["edited_test"] = nb

        nb = fill_answers(release, source)  # wrong subject_split, and its test cell deleted
        cell_by_grade_id(nb, "subject_split").source = (
            "def subject_split(subjects, test_fraction=0.2, seed=0):\n"
            "    n = len(subjects)\n    test = np.arange(n) % 5 == 0\n    return ~test, test\n")
        nb.cells.remove(cell_by_grade_id(nb, "test_subject_split"))
        cases["deleted_test"] = nb

        nb = fill_answers(release, source)  # test cell metadata changed: more points, not graded, unlocked
        meta = cell_by_grade_id(nb, "test_model_4").metadata.nbgrader
        meta.update(points=100, grade=False, locked=False)
        cases["metadata"] = nb

        nb = fill_answers(release, source)  # an endless loop in an answer cell
        cell_by_grade_id(nb, "subject_split").source += "\nimport time\nwhile True:\n    time.sleep(1)\n"
        cases["endless"] = nb

        nb = fill_answers(release, source)  # megabytes of output
        cell_by_grade_id(nb, "voxelize").source += "\nfor _i in range(60000):\n    print('x' * 100)\n"
        cases["flood"] = nb

        nb = fill_answers(release, source)  # logs and warnings raised while a test cell runs the answer
        cell_by_grade_id(nb, "voxelize").source = cell_by_grade_id(nb, "voxelize").source.replace(
            "def voxelize(points, grid=24, box=None):\n",
            "def voxelize(points, grid=24, box=None):\n"
            "    import logging, warnings\n"
            "    warnings.warn('a student warning', UserWarning)\n"
            "    logging.getLogger('tensorflow').warning('a tensorflow log line')\n"
            "    logging.getLogger('absl').warning('an absl log line')\n", 1)
        cases["noisy"] = nb

        errors = {}
        for student, nb in cases.items():
            _hand_in(root, student, nb, model_from=model)
            try:
                steps.autograde(AID, student, root)
            except steps.GradingError as err:  # nbgrader refuses some tampering outright
                errors[student] = str(err)
        first = _scores(root, "honest")
        steps.autograde(AID, "honest", root)  # the same submission again
        steps.generate_feedback(AID, "flood", root)
        return root, first, errors


def test_the_honest_submission_scores_every_automatic_point(graded):
    root, _, _ = graded
    scores = _scores(root, "honest")
    assert sum(s.score for s in scores.values()) == FULL, {k: v.score for k, v in scores.items()}


def test_a_test_cell_edited_to_pass_is_graded_with_the_original(graded):
    root, _, _ = graded
    scores = _scores(root, "edited_test")
    assert scores["test_voxelize"].score == 0 and scores["test_voxelize_hidden"].score == 0
    assert scores["test_subject_split"].score == 2


def test_a_deleted_test_cell_does_not_inflate_the_score(graded):
    root, _, _ = graded
    scores = _scores(root, "deleted_test")
    total = sum(s.score for s in scores.values())
    assert total <= FULL - 2, {k: v.score for k, v in scores.items()}
    assert scores.get("test_subject_split") is None or scores["test_subject_split"].score == 0


def test_changed_cell_metadata_is_refused_and_named(graded):
    """nbgrader checks each graded cell's checksum: a test cell whose metadata (points, grade, locked) was edited
    stops autograding of that submission with an error naming the cell, so no inflated score is recorded and the
    instructor sees which cell was changed."""
    root, _, errors = graded
    assert "Inconsistent checksums for cell test_model_4" in errors.get("metadata", "")
    assert not (root / "grading" / "autograded" / "metadata" / AID).exists()
    assert set(errors) == {"metadata"}, errors  # every other case was graded


def test_an_endless_loop_times_out_and_the_rest_is_graded(graded):
    root, _, _ = graded
    nb = json.loads((root / "grading" / "autograded" / "endless" / AID / NOTEBOOK).read_text())
    errors = [o.get("ename") for c in [cell_by_grade_id(nb, "subject_split")]
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert "CellTimeoutError" in errors  # the looping cell was interrupted after the 20 s timeout …
    scores = _scores(root, "endless")
    assert scores["test_model_4_saved"].score == 4  # … and every later cell still ran and was graded
    assert sum(s.score for s in scores.values()) == FULL  # subject_split was defined before the loop


def test_output_flooding_is_graded_and_gets_feedback(graded):
    root, _, _ = graded
    assert sum(s.score for s in _scores(root, "flood").values()) == FULL
    assert (root / "grading" / "feedback" / "flood" / AID / NOTEBOOK.replace(".ipynb", ".html")).is_file()


def test_logs_and_warnings_in_test_cells_do_not_zero_a_correct_answer(graded):
    root, _, _ = graded
    scores = _scores(root, "noisy")
    assert scores["test_voxelize"].score == 3 and scores["test_voxelize_hidden"].score == 3


def test_autograding_twice_gives_identical_scores(graded):
    root, first, _ = graded
    again = _scores(root, "honest")
    assert {k: v.score for k, v in again.items()} == {k: v.score for k, v in first.items()}


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
