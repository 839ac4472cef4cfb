"""The demo course run on a machine with no dataset: every assignment runs on the synthetic FACS faces.

This is what `make demo` does on a fresh machine: release, a sample student's quick run (it trains and hands in
model_2.keras, model_3.keras, model_4.keras and model_5.keras; ps2 uses stand-in photos and, without ps1's
model_2.keras beside it, the kit's fallback model), autograde, feedback, grades. FER2013_PATH, IPHONEX_PATH and AU_DATA_PATH are set
to ``synthetic`` so that real data on the machine is not used. The course is built once per test session
(``synthetic_course`` in conftest.py) and shared with other tests that need a graded course.
"""

from __future__ import annotations

import json

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


def test_the_submitted_models_are_handed_in(synthetic_course):
    root, _ = synthetic_course
    submitted = root / "grading" / "submitted" / "demo"
    assert (submitted / "ps1_fer2013_cnn" / "model_2.keras").is_file()
    assert (submitted / "ps2_personal_transfer" / "model_3.keras").is_file()
    assert (submitted / "ps3_iphonex_3dcnn" / "model_4.keras").is_file()
    assert (submitted / "ps4_action_units" / "model_5.keras").is_file()
    assert (root / "grading" / "grades.csv").is_file()


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
