"""Assignment 6 graded on real FER2013: the reference answers keep every automatic point.

The synthetic course (tests/test_course_on_synthetic.py) runs ps6 the way a student does on the synthetic faces;
here nbgrader autogrades the released notebook filled with the reference answers while ``FER2013_PATH`` names real
FER2013, so the race, Grad-CAM of the fallback ``model_2`` trained on real faces (the grader always uses it), the
model randomisation test and the slices (face sizes from OpenCV's cascade on real crops) are graded on real data.
"""

from __future__ import annotations

import shutil

import pytest

from conftest import REPO, SHARED_CACHE, hand_in, real_fer2013, requires_real_data
from course import nbgrader_steps as steps
from course.sample_submission import fill_answers

pytestmark = [pytest.mark.slow, requires_real_data]

AID, NOTEBOOK = "ps6_explain_compare", "explain_compare.ipynb"


def test_the_reference_answers_score_every_automatic_point_on_real_fer2013(tmp_path, monkeypatch):
    root = tmp_path / "course"
    shutil.copytree(REPO / "solutions" / AID, root / "solutions" / AID)
    shutil.copy(REPO / "nbgrader_config.py", root)
    monkeypatch.setenv("FER2013_PATH", str(real_fer2013()))
    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(SHARED_CACHE))  # the parsed faces, shared with other tests
    steps.release(AID, root)
    release, source = root / "assignments" / AID / NOTEBOOK, root / "solutions" / AID / NOTEBOOK
    hand_in(root, "reference", AID, fill_answers(release, source), NOTEBOOK)
    steps.autograde(AID, "reference", root)
    scores = {s.cell: (s.score, s.max_score) for s in steps.cell_scores(AID, "reference", root) if s.kind == "auto"}
    lost = {cell: score for cell, score in scores.items() if score[0] != score[1]}
    assert not lost and sum(m for _, m in scores.values()) == 20, (
        f"expected all 20 automatic points of ps6 on real FER2013, found (score, max) {scores}"
    )
