"""The grader-side check of ps1's run record (:func:`course.model_scoring.run_record_reason`): the notebook's own
reproduction check runs in the student's kernel and prints whatever the kernel is made to print, so the separate
scorer compares the handed-in ``model_2.run.json`` with what it measured itself, and flags what disagrees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course import model_scoring as ms
from course import run_record as rr

PS1 = "ps1_fer2013_cnn"
SCORER = ms.REGISTRY[(PS1, "test_model_2_accuracy")]
# what the separate scoring measured: PrivateTest graded, PublicTest beside it
METRICS = {"accuracy": 0.58, "faces": 3589, "public_accuracy": 0.57, "public_faces": 3589}


def _hand_in(root: Path, student: str, test: dict | None, *, model: bytes = b"weights", damage: str = "") -> Path:
    """``student``'s folder with ``model_2.keras`` (bytes ``model``) and a record whose ``test`` is ``test``; a
    scoring copy of the model (what :func:`ms.score_cell` holds) is returned."""
    folder = root / "grading" / "submitted" / student / PS1
    folder.mkdir(parents=True)
    (folder / "model_2.keras").write_bytes(model)
    if test is not None:
        rr.write_run_record(folder / "model_2.keras", {"assignment": PS1, "test": test})
    if damage:
        (folder / "model_2.run.json").write_text(damage)
    scoring = root / "scoring" / student
    scoring.mkdir(parents=True)
    (scoring / "model.keras").write_bytes(model)
    return scoring / "model.keras"


def _reason(root: Path, student: str, copy: Path, metrics: dict = METRICS) -> str:
    result = ms.CellScore(SCORER, "scored", metrics=metrics, info={"usage": "PrivateTest"})
    return ms.run_record_reason(root, student, SCORER, result, copy)


def test_a_record_the_file_reproduces_is_not_flagged(tmp_path):
    copy = _hand_in(tmp_path, "honest", {"usage": "PublicTest", "accuracy": 0.565, "faces": 3589})
    assert _reason(tmp_path, "honest", copy) == "", "expected a record within 2 points of the measure unflagged"


def test_a_fabricated_accuracy_is_flagged_outside_the_kernel(tmp_path):
    copy = _hand_in(tmp_path, "boast", {"usage": "PublicTest", "accuracy": 0.70, "faces": 3589})
    reason = _reason(tmp_path, "boast", copy)
    assert "NOT REPRODUCED" in reason and "70.0%" in reason and "57.0%" in reason, (
        f"expected the record's 70 % against the measured 57 % flagged, found {reason!r}"
    )


def test_an_edited_face_count_that_would_dodge_the_comparison_is_flagged(tmp_path):
    # the notebook's own check says "other data: not compared" for 3,588 faces of PublicTest
    copy = _hand_in(tmp_path, "dodge", {"usage": "PublicTest", "accuracy": 0.70, "faces": 3588})
    reason = _reason(tmp_path, "dodge", copy)
    assert "3588 faces of PublicTest" in reason and "all 3,589" in reason, (
        f"expected the edited count flagged, found {reason!r}"
    )


def test_a_record_written_for_another_model_file_is_flagged(tmp_path):
    copy = _hand_in(tmp_path, "swap", {"usage": "PublicTest", "accuracy": 0.57, "faces": 3589})
    copy.write_bytes(b"other weights")  # the file handed in is not the one the record was written for
    reason = _reason(tmp_path, "swap", copy)
    assert "DIFFERENT model file" in reason, f"expected the other file flagged, found {reason!r}"


@pytest.mark.parametrize(
    "test, damage, expected",
    [
        (None, "", ""),  # no record: it costs nothing
        ({"usage": "Test", "accuracy": 0.9, "faces": 7178}, "", ""),  # other data: cannot be compared
        (None, "{not json", "could not be read"),
        (None, json.dumps({"schema": rr.SCHEMA, "assignment": PS1, "test": {"accuracy": 7}}), "could not be read"),
    ],
)
def test_missing_other_data_and_damaged_records(tmp_path, test, damage, expected):
    copy = _hand_in(tmp_path, "s", test, damage=damage)
    reason = _reason(tmp_path, "s", copy)
    assert (expected in reason) if expected else reason == "", f"expected {expected or 'no flag'!r}, found {reason!r}"


def test_a_linked_record_is_not_followed(tmp_path):
    copy = _hand_in(tmp_path, "link", None)
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"schema": rr.SCHEMA, "assignment": PS1}))
    (tmp_path / "grading" / "submitted" / "link" / PS1 / "model_2.run.json").symlink_to(secret)
    reason = _reason(tmp_path, "link", copy)
    assert "symbolic link" in reason, f"expected the link named and not followed, found {reason!r}"
