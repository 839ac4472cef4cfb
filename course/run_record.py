"""Run records: what the student's own run of a notebook measured, handed in beside the model it describes.

nbgrader autograding re-executes a notebook on a shrunk workload, so the numbers a student discusses in the
written answers are not the ones the grader's re-run prints. A notebook run therefore writes a small JSON file
beside each model it saves (``model_2.keras`` → ``model_2.run.json``); it is handed in with the notebook
(nbgrader copies it: ``*.run.json`` is not in ``CourseDirectory.ignore``), and in grading mode a locked cell
shows it beside the grading run, and a test re-evaluates the submitted model to check the record's accuracy.

Records are data, never code: they are read with :func:`json.loads` only, checked against the schema below,
and a malformed record is reported as a problem, never executed and never allowed to crash a grading cell.

Schema (``"schema": "expression-lab/run-record/1"``), one JSON object:

==================== ==================================================================================
key                  value
==================== ==================================================================================
``schema``           ``"expression-lab/run-record/1"`` (written by :func:`write_run_record`)
``assignment``       required ``str``: the assignment id, e.g. ``"ps1_fer2013_cnn"``
``model``            ``str``: the model file's name (written by :func:`write_run_record`)
``model_sha256``     ``str``: SHA-256 of the model file when the record was written (written for you), so a
                     record can be matched to the model handed in
``kit_version``      ``str``: the Expression Lab version (written for you)
``created``          ``str``: UTC time, ISO 8601 (written for you)
``data``             optional ``str``: the data in use (the dataset description the notebook's banner shows)
``epochs``           optional ``int`` ≥ 0: epochs trained
``seconds``          optional number ≥ 0: training wall time in seconds
``history``          optional ``{metric: [number | null, …]}``: one value per epoch (Keras ``History.history``;
                     ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` …), all lists the same length
``test``             optional ``{"usage": str, "accuracy": number in [0, 1], "faces": int ≥ 0,
                     "loss": number (optional)}``: the test measurement and the ``Usage`` (or split) it was
                     measured on, e.g. ``"PublicTest"``, ``"Test"``, ``"Training hold-out"``
``confusion_matrix`` optional square list of lists of ints ≥ 0: rows true class, columns predicted
``class_names``      optional ``[str, …]``: the class of each confusion-matrix row
anything else        any JSON value (assignment-specific: per-photo predictions and 48×48 crops as base64
                     PNG in ps2, the subject split in ps3, …)
==================== ==================================================================================

A record is at most :data:`MAX_BYTES` bytes. Accuracies are fractions (0.655), not percentages.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = "expression-lab/run-record/1"
SUFFIX = ".run.json"
#: Largest record accepted (bytes): room for a few hundred 48×48 PNG crops, not for a data set.
MAX_BYTES = 5_000_000
#: How far (in accuracy, as a fraction) a re-evaluation may differ from the record and still reproduce it:
#: 2 points. The same model on the same faces gives the same predictions up to float round-off across
#: machines (a handful of faces near a decision boundary); a bigger gap means the record describes another model.
TOLERANCE = 0.02

_WRITTEN_FOR_YOU = ("schema", "model", "model_sha256", "kit_version", "created")


class RunRecordError(ValueError):
    """A run record that is not valid JSON or does not follow the schema; the message lists every problem."""


def record_path(model_path: str | os.PathLike) -> Path:
    """The record beside a model: ``dir/model_2.keras`` → ``dir/model_2.run.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + SUFFIX)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def kit_version() -> str:
    """The installed Expression Lab version, or ``"unknown"`` when it is run from a source tree only."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("expression-lab")
    except PackageNotFoundError:
        return "unknown"


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN/inf: a diverged loss is written as ``null``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _finite_or_none(value.tolist())
    return value


def write_run_record(model_path: str | os.PathLike, record: dict) -> Path:
    """Write ``record`` as the run record of ``model_path`` (``model_2.keras`` → ``model_2.run.json``).

    Args:
        model_path: the saved model the record describes; when the file exists its SHA-256 is stored.
        record: the fields of the schema (module docstring); ``assignment`` is required. numpy values are
            converted; NaN and infinities become ``null``. ``schema``, ``model``, ``model_sha256``,
            ``kit_version`` and ``created`` are filled in.

    Returns:
        The path of the record written.

    Raises:
        RunRecordError: the record does not follow the schema (the message lists every problem), or it is
            larger than :data:`MAX_BYTES`; nothing is written then.
        TypeError: a value that is not JSON data (e.g. an object or a function).
    """
    model_path = Path(model_path)
    data = {k: v for k, v in _finite_or_none(dict(record)).items() if k not in _WRITTEN_FOR_YOU}
    data = {
        "schema": SCHEMA,
        "model": model_path.name,
        **({"model_sha256": file_sha256(model_path)} if model_path.is_file() else {}),
        "kit_version": kit_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **data,
    }
    problems = record_problems(data)
    text = json.dumps(data, indent=1, allow_nan=False)
    if len(text.encode()) > MAX_BYTES:
        problems.append(f"the record is {len(text.encode()):,} bytes, more than {MAX_BYTES:,}")
    if problems:
        raise RunRecordError(f"run record for {model_path.name} not written: " + "; ".join(problems))
    path = record_path(model_path)
    partial = path.with_name(path.name + ".partial")  # written whole, then renamed: never read half-written
    partial.write_text(text)
    os.replace(partial, path)
    return path


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def record_problems(record: Any) -> list[str]:
    """Every way ``record`` departs from the schema (an empty list when it follows it)."""
    if not isinstance(record, dict):
        return [f"expected a JSON object, found {type(record).__name__}"]
    problems = []
    if record.get("schema") != SCHEMA:
        problems.append(f"schema is {record.get('schema')!r}, expected {SCHEMA!r}")
    if not isinstance(record.get("assignment"), str) or not record.get("assignment"):
        problems.append(f"assignment is {record.get('assignment')!r}, expected an assignment id (a string)")
    for key in ("model", "model_sha256", "kit_version", "created", "data"):
        if key in record and not isinstance(record[key], str):
            problems.append(f"{key} is {record[key]!r}, expected a string")
    if "epochs" in record and not (
        isinstance(record["epochs"], int) and not isinstance(record["epochs"], bool) and record["epochs"] >= 0
    ):
        problems.append(f"epochs is {record['epochs']!r}, expected an integer ≥ 0")
    if "seconds" in record and not (_is_number(record["seconds"]) and record["seconds"] >= 0):
        problems.append(f"seconds is {record['seconds']!r}, expected a number ≥ 0")
    if "history" in record:
        history = record["history"]
        if not isinstance(history, dict) or not all(
            isinstance(v, list) and all(x is None or _is_number(x) for x in v) for v in history.values()
        ):
            problems.append("history must map each metric name to a list of numbers (null for a diverged value)")
        elif len({len(v) for v in history.values()}) > 1:
            problems.append(
                "history lists have different lengths: " + ", ".join(f"{k} {len(v)}" for k, v in history.items())
            )
    if "test" in record:
        test = record["test"]
        if not isinstance(test, dict):
            problems.append(f"test is {test!r}, expected an object with usage, accuracy and faces")
        else:
            if not isinstance(test.get("usage"), str):
                problems.append(f"test.usage is {test.get('usage')!r}, expected the Usage measured on (a string)")
            if not (_is_number(test.get("accuracy")) and 0 <= test["accuracy"] <= 1):
                problems.append(f"test.accuracy is {test.get('accuracy')!r}, expected a fraction in [0, 1]")
            if not (
                isinstance(test.get("faces"), int) and not isinstance(test.get("faces"), bool) and test["faces"] >= 0
            ):
                problems.append(f"test.faces is {test.get('faces')!r}, expected the number of faces (an int ≥ 0)")
            if "loss" in test and not (test["loss"] is None or _is_number(test["loss"])):
                problems.append(f"test.loss is {test['loss']!r}, expected a number")
    if "confusion_matrix" in record:
        cm = record["confusion_matrix"]
        if not (
            isinstance(cm, list)
            and all(isinstance(r, list) and len(r) == len(cm) for r in cm)
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for r in cm for x in r)
        ):
            problems.append("confusion_matrix must be a square list of lists of counts (ints ≥ 0)")
        elif isinstance(record.get("class_names"), list) and len(record["class_names"]) != len(cm):
            problems.append(
                f"class_names has {len(record['class_names'])} names for a {len(cm)}×{len(cm)} confusion matrix"
            )
    if "class_names" in record and not (
        isinstance(record["class_names"], list) and all(isinstance(n, str) for n in record["class_names"])
    ):
        problems.append("class_names must be a list of strings")
    return problems


def read_run_record(model_path: str | os.PathLike) -> dict | None:
    """The run record beside ``model_path`` (or the record file itself), checked against the schema.

    Returns:
        The record (a dict of JSON data), or ``None`` when there is no record file.

    Raises:
        RunRecordError: the file is larger than :data:`MAX_BYTES`, not UTF-8 JSON, or does not follow the
            schema; the message names the file and lists every problem.
    """
    model_path = Path(model_path)
    path = model_path if model_path.name.endswith(SUFFIX) else record_path(model_path)
    if not path.is_file():
        return None
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise RunRecordError(f"{path.name}: {size:,} bytes, more than the {MAX_BYTES:,} a run record may hold")
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, an integer of over 4,300 digits, too deep
        raise RunRecordError(f"{path.name}: not a JSON run record ({type(exc).__name__}: {exc})") from None
    problems = record_problems(record)
    if problems:
        raise RunRecordError(f"{path.name}: " + "; ".join(problems))
    return record


def reproduction_check(
    record: dict | None,
    *,
    accuracy: float,
    usage: str,
    faces: int,
    model_sha256: str | None = None,
    tolerance: float = TOLERANCE,
) -> tuple[bool | None, str]:
    """Does a re-evaluation of the submitted model reproduce the record's test accuracy?

    Args:
        record: the student's run record (:func:`read_run_record`), or None.
        accuracy: the accuracy the grader measured (a fraction), on ``faces`` faces of ``usage``.
        model_sha256: SHA-256 of the submitted model file, to say whether the record was written for it.
        tolerance: largest accepted gap (a fraction; :data:`TOLERANCE` = 2 points).

    Returns:
        ``(True, message)`` reproduced; ``(False, message)`` not reproduced (a flag for the grader to look at,
        not a grade); ``(None, message)`` nothing to compare (no record, no test entry, or another test set).
    """
    if record is None:
        return None, "no run record handed in: nothing to compare"
    test = record.get("test")
    if not isinstance(test, dict):
        return None, "the run record has no test measurement: nothing to compare"
    if test.get("usage") != usage or test.get("faces") != faces:
        return None, (
            f"the record was measured on {test.get('faces')} faces of {test.get('usage')}, the grader "
            f"has {faces} faces of {usage} (other data): not compared"
        )
    gap = accuracy - float(test["accuracy"])
    same_file = (
        ""
        if model_sha256 is None or "model_sha256" not in record
        else (
            " (the record was written for this model file)"
            if record["model_sha256"] == model_sha256
            else " (the record was written for a DIFFERENT model file)"
        )
    )
    line = (
        f"record {test['accuracy']:.1%}, re-evaluated {accuracy:.1%} on {usage} ({faces:,} faces): "
        f"gap {gap * 100:+.1f} points{same_file}"
    )
    if abs(gap) <= tolerance:
        return True, f"reproduced within ±{tolerance * 100:g} points: {line}"
    return False, f"NOT REPRODUCED (tolerance ±{tolerance * 100:g} points): {line}"


def _last(history: Any, key: str) -> float | None:
    values = history.get(key) if isinstance(history, dict) else None
    return values[-1] if values else None


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _pct(value: Any) -> str:
    return f"{value:.1%}" if _is_number(value) else "–"


def run_summary(record: dict | None) -> dict[str, str]:
    """One column of :func:`compare_runs`: the record's headline numbers as text (``–`` where absent)."""
    record = record or {}
    test = record.get("test") if isinstance(record.get("test"), dict) else {}
    history = record.get("history") if isinstance(record.get("history"), dict) else {}
    seconds = record.get("seconds")
    return {
        "data": _short(str(record.get("data", "–")), 48),
        "epochs": str(record.get("epochs", "–")),
        "training time": f"{seconds / 60:.1f} min" if _is_number(seconds) else "–",
        "final training accuracy": _pct(_last(history, "accuracy")),
        "final validation accuracy": _pct(_last(history, "val_accuracy")),
        "test set": f"{test.get('usage', '–')} ({test['faces']:,} faces)"
        if isinstance(test.get("faces"), int)
        else str(test.get("usage", "–")),
        "test accuracy": _pct(test.get("accuracy")),
        "model file": str(record.get("model", "–")),
        "kit version": str(record.get("kit_version", "–")),
        "written": str(record.get("created", "–")),
    }


def compare_runs(student: dict | None, grading: dict | None = None):
    """A table: the student's own run beside the grading run (pandas ``DataFrame``, one row per number)."""
    import pandas as pd

    columns = {"student's own run": run_summary(student)}
    if grading is not None:
        columns["grading run"] = run_summary(grading)
    return pd.DataFrame(columns)


def show_student_run(model_path: str | os.PathLike, grading: dict | None = None):
    """Display the student's own run (the record beside ``model_path``) beside ``grading``; never raises.

    For a locked grading-mode cell: a missing record or a malformed one is said in one line (to stdout, so it
    cannot score a test cell 0), and the table is returned for display. A plotly figure of both runs' accuracy
    curves follows when the student's record has them.

    Returns:
        The comparison table (:func:`compare_runs`), or None when there is no valid record.
    """
    try:
        record = read_run_record(model_path)
    except RunRecordError as exc:
        print(f"STUDENT'S RUN RECORD IS MALFORMED (look at it by hand; it is not used): {exc}")
        return None
    except OSError as exc:
        print(f"the student's run record could not be read: {exc}")
        return None
    if record is None:
        print(
            f"No run record ({record_path(model_path).name}) was handed in: the student's own numbers are only "
            "in their written answers."
        )
        return None
    print(f"The student's own run ({record_path(model_path).name}), beside this grading run:")
    try:
        from IPython.display import display

        display(_curves_figure(record, grading))
    except Exception as exc:  # noqa: BLE001 (a figure is a courtesy; the table below is what matters)
        print(f"(no curves: {exc})")
    return compare_runs(record, grading)


def _curves_figure(student: dict, grading: dict | None):
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, record, dash in (("student", student, "solid"), ("grading run", grading, "dot")):
        history = (record or {}).get("history") or {}
        for key in ("accuracy", "val_accuracy"):
            values = history.get(key)
            if values:
                fig.add_scatter(x=list(range(1, len(values) + 1)), y=values, name=f"{name}: {key}", line={"dash": dash})
    fig.update_layout(
        title="accuracy per epoch: the student's own run and the grading run",
        height=320,
        xaxis_title="epoch",
        yaxis_title="accuracy",
        yaxis_tickformat=".0%",
    )
    return fig
