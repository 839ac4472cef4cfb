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

import nbformat
import pytest

from course import ASSIGNMENTS
from course import nbgrader_steps as steps

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
}


def test_the_submitted_models_and_run_records_are_handed_in(synthetic_course):
    root, _ = synthetic_course
    for assignment, files in HANDED_IN.items():
        folder = root / "grading" / "submitted" / "demo" / assignment
        missing = [f for f in files if not (folder / f).is_file()]
        assert not missing, f"expected {missing} handed in with {assignment}, found {sorted(os.listdir(folder))}"
    assert (root / "grading" / "grades.csv").is_file(), "expected the grades exported"


@pytest.mark.parametrize("assignment", ["ps4_action_units", "ps5_faces_in_motion"])
def test_the_student_run_is_shown_beside_the_grading_run(synthetic_course, assignment):
    """ps4 and ps5 show the student's own run beside the grading run (their locked ``student_run`` cell)."""
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
    assert table.loc["epochs"].tolist() == ["4", "1"], "the quick student run (4 epochs) beside the 1-epoch re-run"


def test_the_video_assignment_evaluates_smiles_frame_by_frame(synthetic_course):
    root, _ = synthetic_course
    nb = json.loads(
        (root / "grading" / "submitted" / "demo" / "ps5_faces_in_motion" / "faces_in_motion.ipynb").read_text()
    )
    text = "".join(
        "".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
    )
    assert "DATA IN USE: SYNTHETIC clip" in text and "AUC by smoothing window" in text
