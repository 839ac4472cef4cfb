"""The demo course run on a machine with no dataset: every assignment runs on the synthetic FACS faces.

This is what `make demo` does on a fresh machine: release, a sample student's quick run (it trains and hands in
model_2.keras, model_3.keras, model_4.keras and model_5.keras; ps2 uses stand-in photos and, without ps1's
model_2.keras beside it, the kit's fallback model), autograde, feedback, grades. FER2013_PATH, IPHONEX_PATH and AU_DATA_PATH are set
to ``synthetic`` so that real data on the machine is not used. The course is built once per test session
(``synthetic_course`` in conftest.py) and shared with other tests that need a graded course.
"""

from __future__ import annotations

import json
import os
import shutil

import nbformat
import pytest

from conftest import hand_in
from course import ASSIGNMENTS
from course import nbgrader_steps as steps
from course.notebook_cells import cell_by_grade_id
from course.sample_submission import fill_answers

pytestmark = pytest.mark.slow


def test_every_assignment_scores_every_automatic_point_on_synthetic_data(synthetic_course):
    root, table = synthetic_course
    assert set(table.notebook) == set(ASSIGNMENTS.values())
    for aid in ASSIGNMENTS:
        lost = [
            (s.cell, s.score, s.max_score)
            for s in steps.cell_scores(aid, "demo", root)
            if s.kind == "auto" and s.score != s.max_score
        ]
        assert not lost, f"{aid}: {lost}"


def test_the_notebooks_say_they_ran_on_synthetic_data(synthetic_course):
    root, _ = synthetic_course
    for aid, name in ASSIGNMENTS.items():
        nb = json.loads((root / "grading" / "submitted" / "demo" / aid / f"{name}.ipynb").read_text())
        text = "".join(
            "".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
        )
        expected = "DATA IN USE: stand-in photos" if aid == "ps2_personal_transfer" else "DATA IN USE: SYNTHETIC"
        assert expected in text, aid
        assert "Traceback" not in text and not any(
            o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", [])
        )


HANDED_IN = {
    "ps1_fer2013_cnn": ["model_2.keras", "model_2.run.json"],
    "ps2_personal_transfer": ["model_3.keras", "model_3.run.json"],
    "ps3_iphonex_3dcnn": ["model_4.keras", "model_4.run.json"],
    "ps4_action_units": ["model_5.keras", "model_5.run.json"],
    "ps5_faces_in_motion": ["faces_in_motion.run.json"],
    "ps6_explain_compare": ["explain_compare.run.json"],
}


def test_the_submitted_models_and_run_records_are_handed_in(synthetic_course):
    root, _ = synthetic_course
    for assignment, files in HANDED_IN.items():
        folder = root / "grading" / "submitted" / "demo" / assignment
        missing = [f for f in files if not (folder / f).is_file()]
        assert not missing, f"expected {missing} handed in with {assignment}, found {sorted(os.listdir(folder))}"
    assert (root / "grading" / "grades.csv").is_file(), "expected the grades exported"


@pytest.mark.parametrize("assignment", ["ps4_action_units", "ps5_faces_in_motion", "ps6_explain_compare"])
def test_the_student_run_is_shown_beside_the_grading_run(synthetic_course, assignment):
    """ps4, ps5 and ps6 show the student's own run beside the grading run (their locked ``student_run`` cell)."""
    from course.notebook_cells import cell_by_grade_id

    root, _ = synthetic_course
    name = ASSIGNMENTS[assignment]
    nb = nbformat.read(root / "grading" / "autograded" / "demo" / assignment / f"{name}.ipynb", as_version=4)
    shown = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for o in cell_by_grade_id(nb, "student_run").outputs
    )
    assert "grading run" in shown, f"expected the student's run beside the grading run in {assignment}, found {shown!r}"


def test_ps1_student_run_record_is_shown_beside_the_grading_run(synthetic_course):
    from course.demo import student_runs

    root, _ = synthetic_course
    runs = student_runs("ps1_fer2013_cnn", "demo", root)
    table = runs["model_2.run.json"]
    assert list(table.columns) == ["student's own run", "grading run"]
    assert table.loc["epochs"].tolist() == ["3", "1"], "the quick student run (3 epochs) beside the 1-epoch re-run"


def test_the_video_assignment_evaluates_smiles_frame_by_frame(synthetic_course):
    root, _ = synthetic_course
    nb = json.loads(
        (root / "grading" / "submitted" / "demo" / "ps5_faces_in_motion" / "faces_in_motion.ipynb").read_text()
    )
    text = "".join(
        "".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
    )
    assert "DATA IN USE: SYNTHETIC clip" in text and "AUC by smoothing window" in text


def test_logs_and_warnings_in_test_cells_do_not_zero_a_correct_answer(synthetic_course):
    """ps3's locked config cell silences warnings and TensorFlow/absl logs in grading mode: a correct voxelize
    that warns and logs (stderr inside a test cell would score 0) keeps its points."""
    root, _ = synthetic_course
    aid, name = "ps3_iphonex_3dcnn", "iphonex_3dcnn.ipynb"
    nb = fill_answers(root / "assignments" / aid / name, root / "solutions" / aid / name)
    cell_by_grade_id(nb, "voxelize").source = cell_by_grade_id(nb, "voxelize").source.replace(
        "def voxelize(points, grid=24, box=None):\n",
        "def voxelize(points, grid=24, box=None):\n"
        "    import logging, warnings\n"
        "    warnings.warn('a student warning', UserWarning)\n"
        "    logging.getLogger('tensorflow').warning('a tensorflow log line')\n"
        "    logging.getLogger('absl').warning('an absl log line')\n",
        1,
    )
    folder = hand_in(root, "noisy", aid, nb, name)
    shutil.copy(steps.submission_folder("demo", aid, root) / "model_4.keras", folder / "model_4.keras")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPHONEX_PATH", "synthetic")
        steps.autograde(aid, "noisy", root)
    scores = {c.cell: c.score for c in steps.cell_scores(aid, "noisy", root) if c.kind == "auto"}
    assert scores["test_voxelize"] == 3 and scores["test_voxelize_hidden"] == 3, (
        f"expected 3 + 3 points for the noisy but correct voxelize, found {scores}"
    )
    assert sum(scores.values()) == 14, f"expected all 14 automatic points of ps3, found {scores}"
