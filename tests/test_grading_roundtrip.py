"""nbgrader round trip on real FER2013 with a stored model: a perfect and a flawed submission.

The perfect submission is the released notebook with the solution's answers and a stored trained model_2.keras:
the mini-Xception peer from ``../shared/peers`` behind ps1's input contract (float32 48×48×1 in [0, 1]), with
the run record a student's run writes beside it. No model is trained on real data here (the synthetic course in
tests/test_course_on_synthetic.py runs every notebook the way a student does); what this file checks on real
FER2013 is the grading: autograde in grading mode, the submitted model evaluated on the real test set, the run
record reproduced, feedback, export. A flawed submission scores less, and editing a locked test cell gains nothing.
"""

from __future__ import annotations

import shutil

import nbformat
import numpy as np
import pytest

from conftest import REPO, hand_in, real_fer2013, requires_real_data
from course import nbgrader_steps as steps
from course.autograde import autograde_class
from course.notebook_cells import cell_by_grade_id
from course.sample_submission import fill_answers, write_submission

#: The mini-Xception peer (64×64 inputs in [-1, 1]), beside the repository as CI lays it out.
PEER = REPO.parent / "shared" / "peers" / "mini_xception" / "fer2013_mini_xception.hdf5"
requires_peer = pytest.mark.skipif(not PEER.is_file(), reason=f"no stored peer model at {PEER}")

pytestmark = [pytest.mark.slow, requires_real_data, requires_peer]

AID, NOTEBOOK = "ps1_fer2013_cnn", "fer2013_cnn.ipynb"
SEED = 6835  # the notebook's locked config cell


def _hand_in_stored_model_2(folder) -> float:
    """Save the peer as ``folder/model_2.keras`` taking ps1's inputs, with its run record; return its accuracy."""
    import keras

    from course.run_record import write_run_record
    from data_loaders import fer2013_splits, load_fer2013

    peer = keras.models.load_model(PEER, compile=False)
    inputs = keras.Input((48, 48, 1), dtype="float32")
    scaled = keras.layers.Rescaling(2.0, offset=-1.0)(inputs)  # [0, 1] -> [-1, 1]
    model = keras.Model(inputs, peer(keras.layers.Resizing(64, 64)(scaled)), name="stored_model_2")
    model.save(folder / "model_2.keras")
    test = fer2013_splits(load_fer2013(real_fer2013()), seed=SEED).test
    probs = model.predict(test.images[..., None].astype("float32") / 255.0, batch_size=512, verbose=0)
    accuracy = float(np.mean(np.argmax(probs, axis=1) == test.labels))
    write_run_record(
        folder / "model_2.keras",
        {
            "assignment": AID,
            "data": "FER2013",
            "epochs": 0,
            "test": {"usage": "PublicTest", "accuracy": accuracy, "faces": len(test)},
        },
    )
    return accuracy


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "solutions", root / "solutions")
    steps.release(AID, root)
    release_nb, source_nb = root / "assignments" / AID / NOTEBOOK, root / "solutions" / AID / NOTEBOOK

    # The perfect student: every answer, and a trained model_2.keras with its run record.
    folder = steps.submission_folder("perfect", AID, root)
    write_submission(release_nb, source_nb, folder)
    accuracy = _hand_in_stored_model_2(folder)
    assert accuracy >= 0.56, f"expected the stored model to reach the top band (56 %), found {accuracy:.1%}"

    # A flawed student: unscaled inputs, a wrong model_1 with its locked test cell edited to `pass`,
    # and no model_2.keras handed in.
    flawed = fill_answers(release_nb, source_nb)
    cell_by_grade_id(
        flawed, "preprocess"
    ).source = "def preprocess(images):\n    return np.asarray(images, dtype=np.float32)[..., None]\n"
    cell_by_grade_id(flawed, "build_model_1").source = cell_by_grade_id(flawed, "build_model_1").source.replace(
        "layers.Conv2D(64, (5, 5)", "layers.Conv2D(32, (5, 5)"
    )
    cell_by_grade_id(flawed, "test_model_1").source = "pass\n"
    hand_in(root, "flawed", AID, flawed, NOTEBOOK)

    # both at once, as an instructor grades a class (the kit's batch runs nbgrader autograde per student)
    results = autograde_class(AID, jobs=2, sandbox=False, root=root, progress=False)
    assert [r.status for r in results] == ["graded", "graded"], [(r.student, r.status, r.reason) for r in results]
    steps.generate_feedback(AID, "perfect", root)
    steps.export_grades(root)
    return root


def _scores(root, student):
    return {s.cell: s for s in steps.cell_scores(AID, student, root)}


def test_the_solution_scores_every_automatic_point(graded_course):
    scores = _scores(graded_course, "perfect")
    auto = {k: v for k, v in scores.items() if v.kind == "auto"}
    assert set(auto) == {
        "test_parse_pixels",
        "test_preprocess",
        "test_model_1",
        "test_augmentation",
        "test_model_2",
        "test_model_2_accuracy",
    }
    lost = {k: (v.score, v.max_score) for k, v in auto.items() if v.score != v.max_score}
    assert not lost, f"the solution lost points: {lost}"
    assert sum(v.max_score for v in auto.values()) == 18
    manual = [v for v in scores.values() if v.kind == "manual"]
    assert sum(v.max_score for v in manual) == 12 and all(v.score is None for v in manual)


def test_a_flawed_submission_scores_less_and_cannot_edit_a_test(graded_course):
    scores = _scores(graded_course, "flawed")
    zero = {k for k, v in scores.items() if v.kind == "auto" and v.score == 0}
    assert zero == {"test_preprocess", "test_model_1", "test_model_2_accuracy"}, (
        "unscaled inputs, a wrong model_1 (its test restored although edited to `pass`) and a missing "
        f"model_2.keras must each lose their points; zero scores: {zero}"
    )
    full = {k for k, v in scores.items() if v.kind == "auto" and v.score == v.max_score}
    assert full == {"test_parse_pixels", "test_augmentation", "test_model_2"}


def test_an_honest_model_is_scored_alike_in_the_notebook_and_separately_and_not_flagged(graded_course):
    """The separate score of the handed-in model_2.keras (a process of its own, :mod:`course.model_scoring`) equals
    the notebook's, and nothing flags it for review: the false-alarm side of the oracle tests in
    tests/test_sandbox_attacks.py, here on real FER2013."""
    from course import review

    scores = _scores(graded_course, "perfect")
    assert scores["test_model_2_accuracy"].score == 6, (
        f"expected the stored model's 6 points kept, found {scores['test_model_2_accuracy'].score}"
    )
    flags = review.read(AID, "perfect", graded_course)
    assert not flags, f"expected no flag on an honest submission, found {[(f.source, f.reason) for f in flags]}"


def test_autograding_does_not_overwrite_the_submitted_model(graded_course):
    autograded = graded_course / "grading" / "autograded" / "perfect" / AID
    submitted = steps.submission_folder("perfect", AID, graded_course)
    assert (autograded / "model_2.keras").read_bytes() == (submitted / "model_2.keras").read_bytes()
    assert not (autograded / "model_1.keras").exists(), "the 300 MB model_1 is not collected"


def test_the_demo_prints_the_score_table(graded_course, capsys):
    from course.demo import score_table

    table = score_table(AID, "perfect", graded_course)
    assert list(table.columns) == ["notebook", "cell", "graded", "score", "max"]
    assert table["max"].sum() == 30 and (table[table.graded == "manual"].score == "pending").all()


def test_the_student_run_record_is_handed_in_and_reproduced(graded_course):
    from course.run_record import read_run_record

    submitted = steps.submission_folder("perfect", AID, graded_course)
    record = read_run_record(submitted / "model_2.keras")
    assert record is not None and record["test"]["usage"] == "PublicTest", "the student's run wrote its record"
    autograded = graded_course / "grading" / "autograded" / "perfect" / AID
    assert (autograded / "model_2.run.json").read_bytes() == (submitted / "model_2.run.json").read_bytes()
    nb = nbformat.read(autograded / NOTEBOOK, as_version=4)
    text = "".join(o.get("text", "") for o in cell_by_grade_id(nb, "test_model_2_accuracy").outputs)
    assert "run record check: reproduced within ±2 points" in text, text


def test_feedback_is_written_without_hidden_tests(graded_course):
    folder = graded_course / "grading" / "feedback" / "perfect" / AID  # written by the fixture
    html = (folder / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert "test_model_2_accuracy" in html or "Hidden test" in html
    for secret in ("_graded_on", "BEGIN HIDDEN TESTS", "grading_test_set(_full"):
        assert secret not in html, f"feedback shows hidden test code ({secret!r})"


def test_grades_export(graded_course):
    csv = steps.export_grades(graded_course)
    text = csv.read_text()
    assert "perfect" in text and "flawed" in text
