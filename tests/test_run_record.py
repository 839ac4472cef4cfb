"""Run records (course/run_record.py): round trip, malformed records, the reproduction tolerance, the demo table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from course import run_record as rr


def _record(**extra):
    return {
        "assignment": "ps1_fer2013_cnn",
        "data": "SYNTHETIC FACS faces",
        "epochs": 2,
        "seconds": 61.5,
        "history": {
            "loss": [1.9, 1.5],
            "accuracy": np.array([0.3, 0.45]),
            "val_loss": [1.7, float("nan")],
            "val_accuracy": [0.35, 0.5],
        },
        "test": {"usage": "PublicTest", "accuracy": np.float32(0.5), "faces": 200},
        "confusion_matrix": np.eye(7, dtype=np.int64).tolist(),
        "class_names": list("ABCDEFG"),
        **extra,
    }


def test_round_trip_beside_the_model(tmp_path):
    model = tmp_path / "model_2.keras"
    model.write_bytes(b"weights")
    path = rr.write_run_record(model, _record(crops=["iVBORw0KGgo="]))
    assert path == tmp_path / "model_2.run.json"
    back = rr.read_run_record(model)
    assert back["schema"] == rr.SCHEMA and back["model"] == "model_2.keras"
    assert back["model_sha256"] == rr.file_sha256(model)
    assert back["history"]["val_loss"] == [1.7, None], "NaN must be written as null (JSON has no NaN)"
    assert back["test"] == {"usage": "PublicTest", "accuracy": pytest.approx(0.5), "faces": 200}
    assert back["crops"] == ["iVBORw0KGgo="], "assignment-specific keys are kept"
    assert rr.read_run_record(path) == back, "the record file itself can be named"
    assert rr.read_run_record(tmp_path / "model_3.keras") is None, "no record: None"


def test_a_record_that_breaks_the_schema_is_not_written(tmp_path):
    with pytest.raises(rr.RunRecordError, match="assignment") as err:
        rr.write_run_record(tmp_path / "m.keras", {"test": {"usage": "PublicTest", "accuracy": 65.5, "faces": 3}})
    assert "fraction in [0, 1]" in str(err.value), "every problem is listed"
    assert not (tmp_path / "m.run.json").exists()


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "not a JSON run record"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"schema": rr.SCHEMA, "assignment": "ps1", "epochs": "five"}), "epochs"),
        (
            json.dumps({"schema": rr.SCHEMA, "assignment": "ps1", "history": {"loss": [1], "accuracy": [1, 2]}}),
            "different lengths",
        ),
        (json.dumps({"schema": rr.SCHEMA, "assignment": "ps1", "confusion_matrix": [[1, 2]]}), "square"),
        (json.dumps({"schema": "something/else", "assignment": "ps1"}), "schema"),
    ],
)
def test_a_malformed_record_is_a_clear_error(tmp_path, text, problem):
    (tmp_path / "model_2.run.json").write_text(text)
    with pytest.raises(rr.RunRecordError, match=problem) as err:
        rr.read_run_record(tmp_path / "model_2.keras")
    assert "model_2.run.json" in str(err.value), "the message names the file"


def test_a_record_is_never_executed_and_a_huge_one_is_refused(tmp_path):
    (tmp_path / "model_2.run.json").write_text("__import__('os').system('touch pwned')")
    with pytest.raises(rr.RunRecordError):
        rr.read_run_record(tmp_path / "model_2.keras")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "model_2.run.json").write_bytes(b" " * (rr.MAX_BYTES + 1))
    with pytest.raises(rr.RunRecordError, match="more than"):
        rr.read_run_record(tmp_path / "model_2.keras")


def test_the_grading_display_never_raises(tmp_path, capsys):
    (tmp_path / "model_2.run.json").write_text("{broken")
    assert rr.show_student_run(tmp_path / "model_2.keras", {"epochs": 1}) is None
    assert "MALFORMED" in capsys.readouterr().out
    (tmp_path / "model_2.run.json").unlink()
    assert rr.show_student_run(tmp_path / "model_2.keras") is None
    assert "No run record" in capsys.readouterr().out
    rr.write_run_record(tmp_path / "model_2.keras", _record())
    table = rr.show_student_run(
        tmp_path / "model_2.keras", {"epochs": 1, "test": {"usage": "PrivateTest", "accuracy": 0.4, "faces": 50}}
    )
    assert list(table.columns) == ["student's own run", "grading run"]
    assert table.loc["test accuracy"].tolist() == ["50.0%", "40.0%"]
    assert table.loc["epochs"].tolist() == ["2", "1"]


def test_reproduction_tolerance(tmp_path):
    model = tmp_path / "model_2.keras"
    model.write_bytes(b"weights")
    rr.write_run_record(model, _record())
    record = rr.read_run_record(model)
    ok, message = rr.reproduction_check(
        record, accuracy=0.515, usage="PublicTest", faces=200, model_sha256=rr.file_sha256(model)
    )
    assert ok is True and "reproduced within ±2 points" in message and "this model file" in message
    ok, message = rr.reproduction_check(record, accuracy=0.47, usage="PublicTest", faces=200, model_sha256="0" * 64)
    assert ok is False and "NOT REPRODUCED" in message and "DIFFERENT model file" in message
    ok, message = rr.reproduction_check(record, accuracy=0.9, usage="PrivateTest", faces=200)
    assert ok is None and "not compared" in message, "another test set cannot be compared"
    assert rr.reproduction_check(None, accuracy=0.5, usage="PublicTest", faces=200)[0] is None


def test_the_demo_prints_each_handed_in_record_beside_the_grading_run(tmp_path):
    from course import nbgrader_steps as steps
    from course.demo import student_runs

    submitted = steps.submission_folder("s", "ps9", tmp_path)
    graded = tmp_path / "grading" / "autograded" / "s" / "ps9" / "autograde_outputs"
    submitted.mkdir(parents=True)
    graded.mkdir(parents=True)
    rr.write_run_record(submitted / "model_5.keras", _record(assignment="ps9"))
    rr.write_run_record(graded / "model_5.keras", _record(assignment="ps9", epochs=1))
    (submitted / "model_6.run.json").write_text("{}")
    runs = student_runs("ps9", "s", tmp_path)
    assert runs["model_5.run.json"].loc["epochs"].tolist() == ["2", "1"]
    assert runs["model_6.run.json"].startswith("malformed")
