"""Scoring of submitted model files in a process of their own: no notebook code, only the file and the data.

The hidden tests that grade a handed-in ``model_*.keras`` run in the student's own kernel during ``nbgrader
autograde``, where any answer cell can replace ``keras.models.load_model`` (or numpy, or the test helpers) and
make them score an oracle. After nbgrader has graded a submission, :func:`apply_model_scores` scores each such
file again, here, and the gradebook keeps this score:

1. the file is copied from ``grading/submitted/<student>/<assignment>/`` (what the student handed in, not the
   autograded folder the kernel could write) into a fresh temporary folder: a regular file only, at most
   :data:`MAX_MODEL_BYTES`, opened without following links (a symlink, FIFO, device or hard link is refused);
2. trusted code (this module, outside any sandbox) prepares the data the notebook's test uses, as numpy arrays
   in the same folder (``data.npz``);
3. ``python -m course.model_scoring MEASURE model.keras data.npz`` runs in the grading sandbox
   (:func:`course.sandbox.run_sandboxed`: no network, read-only system, resource limits, an unprivileged user):
   it loads the file with ``keras.models.load_model(path, compile=False, safe_mode=True)`` after refusing any
   ``Lambda`` layer (arbitrary Python code), measures it, and prints one JSON line;
4. that line is read as untrusted input (bounded size, strict schema, finite numbers in range), the cell's
   points are computed from it by the notebook cell's own rule, and the cell's ``Grade.auto_score`` in the
   worker gradebook is set, with an auto comment on the cell saying that it was scored separately and what was
   measured.

The cells and their rules (:data:`REGISTRY`; the constants are the notebooks' own, checked against the source
notebooks by ``tests/test_sandbox_attacks.py``):

- ps1 ``test_model_2_accuracy`` (6 points, replaced): accuracy of ``model_2.keras`` on
  ``grading_test_set(load_fer2013(), seed=SEED)``, points by :data:`MODEL_2_BANDS`;
- ps3 ``test_model_4_saved`` (4 points, gated): the cell also checks the grading run's own ``model_4``, which
  is not the student's file, so the cell keeps nbgrader's score only when the separate check of the handed-in
  ``model_4.keras`` passes (input ``(None, 24, 24, 24, 1)``, output ``(None, 7)``, ``Conv3D`` and
  ``MaxPooling3D`` layers, finite predictions of shape ``(4, 7)`` for 4 test clouds, voxelized by the solution
  notebook's ``voxelize``, never the student's), else 0;
- ps4 ``test_model_5_submitted`` (2 points, replaced): mean ROC AUC of ``model_5.keras`` over the AUs present
  in ``PrivateTest`` of the AU data, 2 points at :data:`MODEL_5_MIN_AUC` or more.

A separate score that differs from the notebook's is returned as a review reason (source ``"model-scoring"``).
A file that is missing, not a plain file, too large or refused (a ``Lambda`` layer, not a Keras archive, cannot
predict) scores 0, like the notebook's assertion would; a scoring process that crashed, timed out or printed no
valid result scores 0 too, and the grade is marked for manual grading.

Contaminated models. Kaggle's ``fer2013.csv`` labels ``PrivateTest``, so a ``model_2`` trained on the faces it
is graded on scores well there. When the grading data holds both ``PublicTest`` and ``PrivateTest``, ps1's
scorer measures both; a submission whose ``PrivateTest − PublicTest`` gap is above
``max(CONTAMINATION_MIN_POINTS, CONTAMINATION_Z × standard error of the difference)`` is flagged for review
(source ``"contamination"``), never penalised. Measured by ``benchmarks/model_contamination.py`` on real FER2013
(``benchmarks/results/model_contamination.json``): honest models stay within -1.5 to +1.2 points, a model_2 with
the graded faces in its training set is +8 points above; see :data:`CONTAMINATION_MIN_POINTS` for the numbers.

Run records. ps1's scorer also reads the ``model_2.run.json`` handed in beside the file and compares its test
accuracy with what it measured on the same faces (:func:`run_record_reason`): the notebook's own check of the
record runs in the student's kernel, where it can be made to print anything. A disagreement is flagged for review
(source ``"run-record"``), never scored.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import REPO_ROOT
from .review import one_line
from .settings import EXPRESSION_LAB_SANDBOX_AUTOGRADED, EXPRESSION_LAB_SANDBOX_SLOT

# ------------------------------------------------------------------------------------------- the notebooks' rules

#: ps1's ``SEED`` (config cell of ``solutions/ps1_fer2013_cnn/fer2013_cnn.ipynb``): the seed of the grading split.
PS1_SEED = 6835
#: ps1's ``MODEL_2_BANDS`` (cell ``test_model_2_accuracy``): (accuracy at least, points), best band first.
MODEL_2_BANDS = ((0.56, 6), (0.50, 4), (0.44, 2))
#: ps3's ``SEED``, ``GRID`` and grading-mode ``SUBJECT_LIMIT`` (config cell of the ps3 notebook).
PS3_SEED = 6835
PS3_GRID = 24
PS3_SUBJECT_LIMIT = 14
#: ps3's ``subject_split(clouds.subjects, test_fraction=0.2, seed=SEED)`` (cell ``split_data``).
PS3_TEST_FRACTION = 0.2
#: Test clouds ps3's ``_check_model_4`` predicts (``x_test[:4]``).
PS3_CHECK_CLOUDS = 4
#: ps4's pass mark for the submitted ``model_5`` (cell ``test_model_5_submitted``): mean ROC AUC at least this.
MODEL_5_MIN_AUC = 0.65

# ------------------------------------------------------------------------------------------- contamination flag

#: Flag a model whose PrivateTest accuracy exceeds its PublicTest accuracy by more than this many percentage
#: points (and by more than :data:`CONTAMINATION_Z` standard errors of the difference). Measured on real FER2013 by
#: ``benchmarks/model_contamination.py`` (that copy has no PrivateTest, so two disjoint, stratified 3,589-face
#: hold-outs of Training, A and B, stand in for unseen test sets): honest models (the solution notebook's
#: ``build_model_2`` after 10 epochs, 63.1-64.3 %, and the kit's fallback recipe) gave gaps from -1.53 to +1.23
#: points over 12 measurements of 4 models (A - PublicTest, B - PublicTest, A - B; SD 0.85), and chance alone
#: spreads such a gap by 1.09 points (the binomial standard error of a difference of two accuracies on 3,589 faces
#: each is 1.07). Models that saw A in training: ``build_model_2`` with A added to its training set, 10 epochs,
#: +8.11 points (73.25 % on A, 65.14 % on PublicTest); fine-tuned 10 epochs on A alone (Adam 1e-3), +23.35; fine-tuned
#: gently (2 epochs, Adam 1e-4; +1.0 point on A itself), +1.50, which no threshold tells from chance (the fallback
#: recipe learns too little on real FER2013, 15-35 %, to memorise anything either way). 5 points is 4.6 standard
#: errors above a zero gap and 3.8 points above the highest honest gap, room for a systematic difference between
#: Kaggle's two test sets; it flags the first two.
CONTAMINATION_MIN_POINTS = 5.0
#: ... and by more than this many standard errors of the difference of the two accuracies (binomial), so that
#: small test sets (synthetic data, a few hundred faces) do not flag honest models by chance.
CONTAMINATION_Z = 4.0

# ------------------------------------------------------------------------------------------- limits and protocol

#: Largest model file scored (bytes). The kit's models are 1-20 MB; ps1's public test asks for under 20 MB.
MAX_MODEL_BYTES = 100 * 10**6
#: Largest total size of the files inside a ``.keras`` archive (bytes) and most entries it may hold.
MAX_UNPACKED_BYTES = 1024**3
MAX_ARCHIVE_ENTRIES = 1000
#: Seconds one separate scoring may take (TensorFlow's start-up ~7 s, the prediction seconds) before it is
#: stopped; the cell then scores 0 and is marked for manual grading.
DEFAULT_TIMEOUT = 300
#: The scorer's result line on stdout starts with this; everything else printed is ignored.
RESULT_PREFIX = "EXPRESSION_LAB_MODEL_SCORE "
RESULT_VERSION = 1
#: Most characters of stdout read, of the result line, and of a reason.
MAX_STDOUT_CHARS = 256 * 1024
MAX_RESULT_CHARS = 16 * 1024
MAX_REASON_CHARS = 1500
#: Names of the copied model and the data inside the scoring folder.
MODEL_NAME, DATA_NAME = "model.keras", "data.npz"


class ScoringRefused(Exception):
    """The model file cannot be scored: the message says why and what the student should hand in instead."""


class ScoringOutputError(Exception):
    """The separate scoring process ended without a valid result (crash, timeout, malformed output)."""


# ------------------------------------------------------------------------------------------- measures (sandboxed)

#: The metrics each measure reports: name -> (kind, required). ``fraction``: a finite float in [0, 1];
#: ``count``: an int in [0, 10**8].
METRICS: dict[str, dict[str, tuple[str, bool]]] = {
    "fer_accuracy": {
        "accuracy": ("fraction", True),
        "faces": ("count", True),
        "public_accuracy": ("fraction", False),
        "public_faces": ("count", False),
    },
    "model_4_check": {"clouds": ("count", True)},
    "au_auc": {"auc": ("fraction", True), "aus": ("count", True), "faces": ("count", True)},
}


def _predict(model, x: np.ndarray, name: str, **kwargs) -> np.ndarray:
    try:
        probs = np.asarray(model.predict(x, verbose=0, **kwargs))
    except Exception as err:  # any failure of the student's model to run is the model's, reported as such
        raise ScoringRefused(
            f"{name} could not predict on inputs of shape {x.shape} (float32): "
            f"{type(err).__name__}: {one_line(str(err), 300)}"
        ) from None
    if probs.ndim != 2 or len(probs) != len(x):
        raise ScoringRefused(
            f"expected {name} to return one row of scores per input, shape ({len(x)}, classes), "
            f"found shape {probs.shape}"
        )
    return probs


def measure_fer_accuracy(model, arrays: Mapping[str, np.ndarray], name: str = "model_2.keras") -> dict:
    """ps1's ``submitted_accuracy``: accuracy of ``model`` on ``arrays["images"]`` (``uint8 (N, 48, 48)``) against
    ``arrays["labels"]`` (``int (N,)``), inputs ``float32 (N, 48, 48, 1)`` in [0, 1], batches of 512; the same on
    ``public_images``/``public_labels`` when present. Returns ``{"accuracy", "faces"[, "public_accuracy",
    "public_faces"]}`` (fractions and face counts).

    Raises:
        ScoringRefused: the model cannot predict on such inputs, or returns other than one row per face.
    """

    def accuracy(images, labels):
        probs = _predict(model, images[..., None].astype("float32") / 255.0, name, batch_size=512)
        return float(np.mean(np.argmax(probs, axis=1) == labels))

    out = {"accuracy": accuracy(arrays["images"], arrays["labels"]), "faces": len(arrays["labels"])}
    if "public_images" in arrays:
        out.update(
            public_accuracy=accuracy(arrays["public_images"], arrays["public_labels"]),
            public_faces=len(arrays["public_labels"]),
        )
    return out


def measure_model_4_check(model, arrays: Mapping[str, np.ndarray], name: str = "model_4.keras") -> dict:
    """ps3's ``_check_model_4``: input ``(None, G, G, G, 1)`` and output ``(None, 7)`` (``G`` from ``arrays["x"]``,
    ``float32 (n, G, G, G, 1)``), ``Conv3D`` and ``MaxPooling3D`` among its layers (nested models included),
    finite predictions of shape ``(min(4, n), 7)`` for ``x[:4]``. Returns ``{"clouds": min(4, n)}``.

    Raises:
        ScoringRefused: a check fails; the message is the notebook's.
    """
    x = arrays["x"]
    grid = x.shape[1]
    want_in = (None, grid, grid, grid, 1)
    if model.input_shape != want_in or model.output_shape != (None, 7):
        raise ScoringRefused(
            f"expected {name} to take {want_in} and return (None, 7), found {model.input_shape} -> {model.output_shape}"
        )
    kinds = {type(layer).__name__ for layer in all_layers(model)}
    if not {"Conv3D", "MaxPooling3D"} <= kinds:
        raise ScoringRefused(f"expected {name} to be a 3D CNN (Conv3D, MaxPooling3D), found {sorted(kinds)}")
    n = min(PS3_CHECK_CLOUDS, len(x))
    p = _predict(model, x[:PS3_CHECK_CLOUDS], name)
    if p.shape != (n, 7) or not np.all(np.isfinite(p)):
        raise ScoringRefused(
            f"expected finite predictions of shape {(n, 7)} from {name}, found {p.shape}, "
            f"finite: {bool(np.all(np.isfinite(p)))}"
        )
    return {"clouds": n}


def measure_au_auc(model, arrays: Mapping[str, np.ndarray], name: str = "model_5.keras") -> dict:
    """ps4's hidden test: mean ROC AUC of ``model`` on ``arrays["images"]`` (``uint8 (N, 48, 48)``, inputs float32
    in [0, 1], batches of 512) over the AUs (columns of ``arrays["presence"]``, ``(N, A)`` 0/1) that are present
    on some faces and absent on others. Returns ``{"auc", "aus", "faces"}``.

    Raises:
        ScoringRefused: the model cannot predict, returns fewer than A columns or non-finite scores, or no AU
            varies over the faces.
    """
    from sklearn.metrics import roc_auc_score

    presence = np.asarray(arrays["presence"])
    probs = _predict(model, arrays["images"][..., None].astype("float32") / 255.0, name, batch_size=512)
    if probs.shape[1] < presence.shape[1]:
        raise ScoringRefused(
            f"expected {name} to return {presence.shape[1]} AU probabilities per face, found {probs.shape[1]}"
        )
    if not np.all(np.isfinite(probs)):
        raise ScoringRefused(f"expected finite AU probabilities from {name}, found NaN or infinite values")
    cols = [k for k in range(presence.shape[1]) if 0 < presence[:, k].sum() < len(presence)]
    if not cols:
        raise ScoringRefused("no AU is present on some faces and absent on others in the grading data")
    auc = float(np.mean([roc_auc_score(presence[:, k], probs[:, k]) for k in cols]))
    return {"auc": auc, "aus": len(cols), "faces": len(presence)}


MEASURES: dict[str, Callable[..., dict]] = {
    "fer_accuracy": measure_fer_accuracy,
    "model_4_check": measure_model_4_check,
    "au_auc": measure_au_auc,
}


def _lambda_layers(config) -> list[str]:
    """Names of the ``Lambda`` layers anywhere in a Keras model config (nested models included)."""
    found = []
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") == "Lambda":
                inner = item.get("config")
                found.append(str(inner.get("name", "?")) if isinstance(inner, dict) else "?")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def load_submitted_model(path: Path, name: str):
    """Load a handed-in ``.keras`` file the safe way: a zip archive of bounded size with a ``config.json`` holding
    no ``Lambda`` layer, read by ``keras.models.load_model(path, compile=False, safe_mode=True)``.

    ``name`` is the file's name as handed in (for messages). Returns the Keras model.

    Raises:
        ScoringRefused: not a Keras 3 ``.keras`` archive, too large unpacked, a ``Lambda`` layer, or Keras cannot
            load it; the message says what to hand in instead.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ARCHIVE_ENTRIES:
                raise ScoringRefused(f"{name} holds {len(entries)} files; a Keras model file holds a few")
            unpacked = sum(e.file_size for e in entries)
            if unpacked > MAX_UNPACKED_BYTES:
                raise ScoringRefused(
                    f"{name} unpacks to {unpacked / 1e6:,.0f} MB, more than the "
                    f"{MAX_UNPACKED_BYTES / 1e6:,.0f} MB allowed"
                )
            if "config.json" not in archive.namelist():
                raise ScoringRefused(
                    f"{name} has no config.json: expected a Keras 3 model saved with model.save('{name}')"
                )
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError) as err:
        raise ScoringRefused(
            f"{name} is not a Keras model file (expected the zip archive that model.save('{name}') "
            f"writes): {type(err).__name__}: {one_line(str(err), 200)}"
        ) from None
    lambdas = _lambda_layers(config)
    if lambdas:
        raise ScoringRefused(
            f"{name} holds a Lambda layer ({', '.join(lambdas[:3])}): Lambda layers run arbitrary "
            "Python code, so the grader refuses to load them (Keras safe_mode). Rebuild the model "
            "with Keras layers only (e.g. layers.Rescaling instead of a Lambda that scales) and "
            "hand in the file again"
        )
    import keras

    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # whatever Keras raises on a malformed or hostile file is a refusal
        raise ScoringRefused(
            f"Keras cannot load {name} (safe_mode=True, compile=False): {type(err).__name__}: {one_line(str(err), 300)}"
        ) from None
    lambdas = [layer.name for layer in all_layers(model) if type(layer).__name__ == "Lambda"]
    if lambdas:  # not reachable through safe_mode; kept so that the rule never depends on Keras' default
        raise ScoringRefused(f"{name} holds a Lambda layer ({', '.join(lambdas[:3])}); the grader refuses them")
    return model


def all_layers(model) -> list:
    """Every layer of a Keras ``model``, those of nested models and wrapped layers (``TimeDistributed``,
    ``Bidirectional``) included, through Keras' public ``layers`` and ``layer`` attributes."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found += all_layers(layer)
        inner = getattr(layer, "layer", None)
        if inner is not None:
            found += [inner, *(all_layers(inner) if hasattr(inner, "layers") else [])]
    return found


def measure_file(measure: str, model_path: Path, data_path: Path, name: str) -> dict:
    """Run measure ``measure`` on the model file and the data (``.npz``, read without pickles); return the result
    record (the JSON object :func:`main` prints): ``{"version", "measure", "ok", "reason", "metrics"}``."""
    record = {"version": RESULT_VERSION, "measure": measure, "ok": False, "reason": "", "metrics": {}}
    try:
        with np.load(data_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        model = load_submitted_model(model_path, name)
        record["metrics"] = MEASURES[measure](model, arrays, name)
        record["ok"] = True
    except ScoringRefused as err:
        record["reason"] = one_line(str(err), MAX_REASON_CHARS)
    except Exception as err:  # noqa: BLE001 (reported to the grader, who sees the reason)
        record["reason"] = one_line(
            f"the separate scoring of {name} failed: {type(err).__name__}: {err}", MAX_REASON_CHARS
        )
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m course.model_scoring MEASURE MODEL DATA [NAME]``: print the result line (what runs sandboxed).

    Exit status 0 whenever a result line was printed (also for a refused model), 2 for a usage error.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) not in (3, 4) or argv[0] not in MEASURES:
        print(f"usage: python -m course.model_scoring {{{','.join(MEASURES)}}} MODEL DATA [NAME]", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    name = argv[3] if len(argv) == 4 else Path(argv[1]).name
    record = measure_file(argv[0], Path(argv[1]), Path(argv[2]), name)
    sys.stdout.write(RESULT_PREFIX + json.dumps(record, allow_nan=False) + "\n")
    sys.stdout.flush()
    return 0


# ------------------------------------------------------------------------------------------- scorers (trusted side)

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Scorer:
    """How one graded cell's submitted model file is scored.

    Attributes:
        assignment, notebook, grade_id: the cell (nbgrader ids; ``notebook`` without ``.ipynb``).
        model_file: the file the student hands in beside the notebook (e.g. ``model_2.keras``).
        points: the cell's points.
        measure: the name of the measure in :data:`MEASURES` (runs sandboxed).
        data: trusted code run outside the sandbox: ``data(root) -> (arrays, info)``; ``arrays`` go to the measure
            (``data.npz``), ``info`` (e.g. ``{"usage": "PrivateTest"}``) into comments and reasons.
        award: ``award(metrics, notebook_score) -> points`` for a model the measure accepted.
        rule: ``"replace"`` (the cell's score is the separate score) or ``"gate"`` (nbgrader's score is kept only
            when the separate check passes, else 0).
        describe: ``describe(metrics, info) -> str``, what was measured, for comments and reasons.
    """

    assignment: str
    notebook: str
    grade_id: str
    model_file: str
    points: float
    measure: str
    data: Callable[[Path], tuple[Arrays, dict]] = field(repr=False)
    award: Callable[[dict, float | None], float] = field(repr=False)
    rule: str = "replace"
    describe: Callable[[dict, dict], str] = field(repr=False, default=lambda metrics, info: "passed")
    max_bytes: int = MAX_MODEL_BYTES


def accuracy_points(accuracy: float) -> int:
    """ps1's ``accuracy_points``: 6 at 56 % or more, 4 at 50 %, 2 at 44 % (model_1's level), else 0."""
    return next((points for level, points in MODEL_2_BANDS if accuracy >= level), 0)


def _ps1_data(root: Path) -> tuple[Arrays, dict]:
    """The faces ps1's hidden test grades on (``grading_test_set(load_fer2013(), seed=SEED)``) and, when the data
    also holds a labelled PublicTest and the grading set is PrivateTest, PublicTest (for the contamination check)."""
    from data_loaders import grading_test_set, load_fer2013

    fer = load_fer2013()
    graded, usage = grading_test_set(fer, seed=PS1_SEED)
    arrays = {"images": graded.images, "labels": graded.labels}
    public = (fer.usage == "PublicTest") & (fer.labels >= 0)
    if usage == "PrivateTest" and public.any():
        arrays.update(public_images=fer.images[public], public_labels=fer.labels[public])
    return arrays, {"usage": usage}


def _ps1_describe(metrics: dict, info: dict) -> str:
    text = f"accuracy {metrics['accuracy']:.1%} on {info.get('usage', 'the grading set')} ({metrics['faces']:,} faces)"
    if "public_accuracy" in metrics:
        text += f", {metrics['public_accuracy']:.1%} on PublicTest ({metrics['public_faces']:,} faces)"
    return text


def _ps3_data(root: Path) -> tuple[Arrays, dict]:
    """ps3's ``x_test`` in grading mode: the first ``SUBJECT_LIMIT`` subjects of ``load_iphonex()``, split by the
    solution notebook's ``subject_split`` and voxelized by its ``voxelize`` (the instructor's code, run here outside
    the sandbox; the student's own functions are never used), scaled to [0, 1] per cloud; the first
    :data:`PS3_CHECK_CLOUDS` test clouds."""
    from data_loaders import load_iphonex

    from .notebook_cells import sources_by_grade_id

    notebook = root / "solutions" / "ps3_iphonex_3dcnn" / "iphonex_3dcnn.ipynb"
    cells = sources_by_grade_id(notebook)
    ns: dict = {"np": np, "__name__": "ps3_solution"}
    for gid in ("voxelize", "subject_split"):
        exec(compile(cells[gid], f"{notebook}#{gid}", "exec"), ns)  # noqa: S102 (the instructor's solution notebook)
    clouds = load_iphonex()
    clouds = clouds.select(np.isin(clouds.subjects, clouds.subject_ids[:PS3_SUBJECT_LIMIT]))
    _, test = ns["subject_split"](clouds.subjects, test_fraction=PS3_TEST_FRACTION, seed=PS3_SEED)
    points = clouds.points[np.asarray(test)][:PS3_CHECK_CLOUDS]
    voxels = ns["voxelize"](points, grid=PS3_GRID)
    x = (voxels / voxels.max(axis=(1, 2, 3), keepdims=True)).astype("float32")[..., None]
    return {"x": x}, {"usage": "test subjects"}


def _ps4_data(root: Path) -> tuple[Arrays, dict]:
    """ps4's hidden test data: ``load_action_units().subset("PrivateTest")``, images and AU presence (0/1)."""
    from data_loaders import load_action_units

    held_out = load_action_units().subset("PrivateTest")
    return (
        {"images": held_out.images, "presence": np.asarray(held_out.presence).astype(np.int8)},
        {"usage": "PrivateTest"},
    )


#: Every graded cell that scores a handed-in model file: (assignment, grade_id) -> scorer.
REGISTRY: dict[tuple[str, str], Scorer] = {
    (s.assignment, s.grade_id): s
    for s in (
        Scorer(
            "ps1_fer2013_cnn",
            "fer2013_cnn",
            "test_model_2_accuracy",
            "model_2.keras",
            6,
            "fer_accuracy",
            data=_ps1_data,
            award=lambda m, nb: float(accuracy_points(m["accuracy"])),
            describe=_ps1_describe,
        ),
        Scorer(
            "ps3_iphonex_3dcnn",
            "iphonex_3dcnn",
            "test_model_4_saved",
            "model_4.keras",
            4,
            "model_4_check",
            data=_ps3_data,
            award=lambda m, nb: float(nb or 0.0),
            rule="gate",
            describe=lambda m, info: f"the checks of _check_model_4 passed on {m['clouds']} test clouds",
        ),
        Scorer(
            "ps4_action_units",
            "action_units",
            "test_model_5_submitted",
            "model_5.keras",
            2,
            "au_auc",
            data=_ps4_data,
            award=lambda m, nb: 2.0 if m["auc"] >= MODEL_5_MIN_AUC else 0.0,
            describe=lambda m, info: (
                f"mean ROC AUC {m['auc']:.3f} over {m['aus']} AUs on {info.get('usage')} ({m['faces']:,} faces)"
            ),
        ),
    )
}


@dataclass
class CellScore:
    """What the separate scoring of one cell found.

    ``status``: ``"scored"`` (the measure ran), ``"refused"`` (the file is missing, not a regular file, too
    large, or the model was refused; the student's doing: 0 points) or ``"error"`` (the scoring process crashed,
    timed out or printed no valid result: 0 points, marked for manual grading). ``points`` is the separate score
    before the ``gate`` rule; ``metrics`` what the measure reported; ``reason`` why not scored; ``info`` about the
    data (``usage``).
    """

    scorer: Scorer
    status: str
    points: float = 0.0
    metrics: dict = field(default_factory=dict)
    reason: str = ""
    info: dict = field(default_factory=dict)
    contamination: str = ""  #: the contamination reason, "" when not flagged
    run_record: str = ""  #: why the handed-in run record disagrees with this scoring, "" when it does not

    def summary(self) -> str:
        """One line: what was measured, or why nothing was."""
        if self.status == "scored":
            return self.scorer.describe(self.metrics, self.info)
        return ("not scored: " if self.status == "refused" else "could not be scored: ") + self.reason


def _plain_id(kind: str, value: str) -> str:
    if not value or "/" in value or "\\" in value or value in (".", "..") or "\0" in value:
        raise ValueError(f"{kind} {value!r}: expected a plain nbgrader id (no '/', not '.' or '..')")
    return value


def copy_submitted_file(
    root: Path, student: str, assignment: str, name: str, dest: Path, max_bytes: int = MAX_MODEL_BYTES
) -> int:
    """Copy ``root/grading/submitted/<student>/<assignment>/<name>`` to ``dest`` (a new file); return its bytes.

    No link is followed: the student's and the assignment's folders and the file are opened with ``O_NOFOLLOW``
    relative to each other, and only a regular file with one link of at most ``max_bytes`` is copied (reading
    stops at ``max_bytes + 1``, so a file that grows is refused too).

    Raises:
        ScoringRefused: no such file, a symlink, a folder, FIFO, socket or device, a hard link, or too large.
        ValueError: ``student``, ``assignment`` or ``name`` is not a plain name.
    """
    for kind, value in (("student", student), ("assignment", assignment), ("file", name)):
        _plain_id(kind, value)
    where = f"grading/submitted/{student}/{assignment}/{name}"
    base = os.open(root / "grading" / "submitted", os.O_RDONLY | os.O_DIRECTORY)
    fds = [base]
    try:
        for part in (student, assignment):
            try:
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
            except FileNotFoundError:
                raise ScoringRefused(f"no submission folder {where.rsplit('/', 1)[0]}") from None
            except OSError as err:  # ELOOP/ENOTDIR: a link or a file where a folder belongs
                raise ScoringRefused(
                    f"{where.rsplit('/', 1)[0]} is not a plain folder ({err.strerror}); links are not followed"
                ) from None
        try:
            st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
        except FileNotFoundError:
            raise ScoringRefused(f"no {name} handed in beside the notebook ({where})") from None
        if stat.S_ISLNK(st.st_mode):
            raise ScoringRefused(f"{where} is a symbolic link; links are not followed: hand in the model file itself")
        if not stat.S_ISREG(st.st_mode):
            raise ScoringRefused(
                f"{where} is not a regular file (mode {stat.filemode(st.st_mode)}): hand in the model file itself"
            )
        if st.st_nlink != 1:
            raise ScoringRefused(
                f"{where} is a hard link ({st.st_nlink} names for one file); only a plain file "
                "is scored: hand in the model file itself"
            )
        if st.st_size > max_bytes:
            raise ScoringRefused(
                f"{where} is {st.st_size / 1e6:,.1f} MB, more than the {max_bytes / 1e6:,.0f} MB a model file may have"
            )
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fds[-1])
        fds.append(fd)
        again = os.fstat(fd)
        if (again.st_ino, again.st_dev) != (st.st_ino, st.st_dev) or not stat.S_ISREG(again.st_mode):
            raise ScoringRefused(f"{where} changed while it was being read; not scored")
        copied = 0
        with open(dest, "xb") as out:
            while chunk := os.read(fd, 1 << 20):
                copied += len(chunk)
                if copied > max_bytes:
                    raise ScoringRefused(f"{where} is more than the {max_bytes / 1e6:,.0f} MB a model file may have")
                out.write(chunk)
        return copied
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _check_number(key: str, value, kind: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScoringOutputError(f"metric {key!r} is {type(value).__name__}, expected a number")
    if kind == "count":
        if not isinstance(value, int) or not 0 <= value <= 10**8:
            raise ScoringOutputError(f"metric {key!r} = {value!r}: expected a count (an integer from 0 to 10**8)")
    elif not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ScoringOutputError(f"metric {key!r} = {value!r}: expected a fraction from 0 to 1")


def parse_result(stdout: str, measure: str) -> dict:
    """The result record printed by the scoring process, checked: exactly one :data:`RESULT_PREFIX` line of at
    most :data:`MAX_RESULT_CHARS` characters holding ``{"version": 1, "measure": measure, "ok": bool, "reason":
    str, "metrics": {...}}``; when ``ok``, ``metrics`` holds exactly the measure's required metrics and any of its
    optional ones (:data:`METRICS`), each a count or a fraction in range; else ``metrics`` is empty.

    Raises:
        ScoringOutputError: anything else (the message says what).
    """
    if len(stdout) > MAX_STDOUT_CHARS:
        raise ScoringOutputError(
            f"the scoring process printed {len(stdout):,} characters (at most {MAX_STDOUT_CHARS:,} are read)"
        )
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if len(lines) != 1:
        raise ScoringOutputError(f"expected one result line from the scoring process, found {len(lines)}")
    text = lines[0][len(RESULT_PREFIX) :]
    if len(text) > MAX_RESULT_CHARS:
        raise ScoringOutputError(f"the result line has {len(text):,} characters, more than {MAX_RESULT_CHARS:,}")

    def no_constants(name):
        raise ValueError(f"{name} is not a number here")

    try:
        record = json.loads(text, parse_constant=no_constants)
    except ValueError as err:
        raise ScoringOutputError(f"the result line is not JSON: {one_line(str(err), 200)}") from None
    keys = {"version", "measure", "ok", "reason", "metrics"}
    if not isinstance(record, dict) or set(record) != keys:
        raise ScoringOutputError(
            f"expected a result object with keys {sorted(keys)}, found "
            f"{sorted(record) if isinstance(record, dict) else type(record).__name__}"
        )
    if record["version"] != RESULT_VERSION or record["measure"] != measure:
        raise ScoringOutputError(
            f"expected version {RESULT_VERSION} of measure {measure!r}, found version "
            f"{record['version']!r} of {record['measure']!r}"
        )
    if (
        not isinstance(record["ok"], bool)
        or not isinstance(record["reason"], str)
        or not isinstance(record["metrics"], dict)
    ):
        raise ScoringOutputError("expected ok (true/false), reason (text) and metrics (an object)")
    if len(record["reason"]) > MAX_REASON_CHARS:
        raise ScoringOutputError(f"the reason has {len(record['reason']):,} characters, more than {MAX_REASON_CHARS}")
    metrics, spec = record["metrics"], METRICS[measure]
    if record["ok"]:
        required = {k for k, (_, needed) in spec.items() if needed}
        if not required <= set(metrics) <= set(spec):
            raise ScoringOutputError(
                f"expected metrics {sorted(required)} (and optionally "
                f"{sorted(set(spec) - required)}), found {sorted(metrics)}"
            )
        for key, value in metrics.items():
            _check_number(key, value, spec[key][0])
    elif metrics or not record["reason"]:
        raise ScoringOutputError("a refused model must come with a reason and no metrics")
    return record


def contamination_reason(metrics: dict, info: dict, name: str = "model_2.keras") -> str:
    """The review reason for a model whose accuracy on the grading set (PrivateTest) is far above its accuracy on
    PublicTest (see :data:`CONTAMINATION_MIN_POINTS`), or "" when it is not (or PublicTest was not measured).

    The gap is in percentage points; its standard error is the binomial one of a difference of two independent
    accuracies, ``sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2)``.
    """
    if "public_accuracy" not in metrics or not metrics.get("faces") or not metrics.get("public_faces"):
        return ""
    graded, public = metrics["accuracy"], metrics["public_accuracy"]
    gap = 100 * (graded - public)
    se = 100 * math.sqrt(graded * (1 - graded) / metrics["faces"] + public * (1 - public) / metrics["public_faces"])
    threshold = max(CONTAMINATION_MIN_POINTS, CONTAMINATION_Z * se)
    if gap <= threshold:
        return ""
    usage = info.get("usage", "PrivateTest")
    return (
        f"{name} scores {graded:.1%} on {usage} (the faces it is graded on, {metrics['faces']:,}) but "
        f"{public:.1%} on PublicTest ({metrics['public_faces']:,} faces): {gap:+.1f} points, "
        f"{gap / se if se else float('inf'):.1f} standard errors, above the {threshold:.1f}-point limit "
        f"(honest models stay within a few points; benchmarks/model_contamination.py). It may have been "
        f"trained on the {usage} faces, which Kaggle's fer2013.csv labels. Not penalised: read the student's "
        "training code and run record before deciding"
    )


def run_record_reason(root: Path, student: str, scorer: Scorer, result: CellScore, model_copy: Path) -> str:
    """Compare the run record handed in beside ``scorer.model_file`` with this separate scoring (trusted code;
    the record is read as untrusted JSON, copied without following links); return the review reason, or "".

    The notebook prints its own reproduction check in grading mode, but in the student's kernel, where the
    student's code runs too; this is the grader-side one. A reason when: the record's test accuracy is more than
    :data:`course.run_record.TOLERANCE` from the accuracy measured here on the same faces (the grading set, or
    PublicTest when it was measured beside it); the record names the same test set but another number of faces
    (the notebook's full run measures all of them, so an edited count is what would dodge the comparison); the
    record was written for a different model file (its SHA-256); the record is damaged. No reason when no record
    was handed in (it costs nothing) or it was measured on other data.
    """
    from .run_record import MAX_BYTES, SUFFIX, RunRecordError, file_sha256, read_run_record, reproduction_check

    name = scorer.model_file.removesuffix(".keras") + SUFFIX
    copy = model_copy.with_name(name)
    try:
        copy_submitted_file(root, student, scorer.assignment, name, copy, max_bytes=MAX_BYTES)
        record = read_run_record(copy)
    except ScoringRefused as err:
        return "" if str(err).startswith("no ") else one_line(f"{name}: {err}", MAX_REASON_CHARS)
    except RunRecordError as err:
        return one_line(f"the run record could not be read: {err}", MAX_REASON_CHARS)
    test = record.get("test") if isinstance(record, dict) else None
    if not isinstance(test, dict):
        return ""
    metrics, usage = result.metrics, result.info.get("usage", "")
    measured = {usage: (metrics.get("accuracy"), metrics.get("faces"))}
    if "public_accuracy" in metrics:
        measured["PublicTest"] = (metrics["public_accuracy"], metrics["public_faces"])
    if test.get("usage") not in measured:
        return ""
    accuracy, faces = measured[test["usage"]]
    if test.get("faces") != faces:
        return one_line(
            f"{name} says its test accuracy was measured on {test.get('faces')} faces of {test['usage']}, but the "
            f"notebook's own run measures all {faces:,}: an edited record would dodge the comparison",
            MAX_REASON_CHARS,
        )
    sha = file_sha256(model_copy)
    ok, message = reproduction_check(record, accuracy=accuracy, usage=test["usage"], faces=faces, model_sha256=sha)
    other_file = record.get("model_sha256", sha) != sha
    if ok is False or other_file:
        return one_line(f"{name} (checked outside the notebook): {message}", MAX_REASON_CHARS)
    return ""


def _run_scorer(scorer: Scorer, folder: Path, *, sandbox: bool, timeout: float, env: dict) -> str:
    """Run the measure on ``folder``'s model and data; return its stdout.

    Raises:
        ScoringOutputError: it timed out or exited with an error (the message holds the end of its stderr).
        course.sandbox.SandboxError: ``sandbox`` is True and bubblewrap cannot be used.
    """
    from . import sandbox as sandbox_module

    args = [
        "-m",
        "course.model_scoring",
        scorer.measure,
        str(folder / MODEL_NAME),
        str(folder / DATA_NAME),
        scorer.model_file,
    ]
    try:
        if sandbox:
            proc = sandbox_module.run_sandboxed(
                [str(sandbox_module.venv_python()), *args], folder, timeout=timeout, env=env
            )
        else:
            path = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
            proc = subprocess.run(
                [sys.executable, *args],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**env, "PYTHONPATH": path},
            )
    except subprocess.TimeoutExpired:
        raise ScoringOutputError(
            f"the separate scoring of {scorer.model_file} ran past {timeout:.0f} s and was stopped"
        ) from None
    if proc.returncode != 0:
        raise ScoringOutputError(
            f"the separate scoring of {scorer.model_file} exited with status {proc.returncode}: "
            f"{one_line(proc.stderr[-600:], 600)}"
        )
    return proc.stdout


def score_cell(
    scorer: Scorer,
    root: Path,
    student: str,
    *,
    sandbox: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    env: dict | None = None,
) -> CellScore:
    """Score ``student``'s handed-in ``scorer.model_file`` of ``scorer.assignment`` in a process of its own (see
    the module docstring); the gradebook is not touched.

    Raises:
        course.sandbox.SandboxError: ``sandbox`` is True and bubblewrap cannot be used here.
    """
    env = dict(os.environ if env is None else env)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # the scoring folder is not a submission's autograded folder, which that variable would demand
    env.pop(EXPRESSION_LAB_SANDBOX_AUTOGRADED.name, None)
    folder = Path(tempfile.mkdtemp(prefix="expression-lab-model-score-"))
    try:
        try:
            copy_submitted_file(
                root, student, scorer.assignment, scorer.model_file, folder / MODEL_NAME, scorer.max_bytes
            )
        except ScoringRefused as err:
            return CellScore(scorer, "refused", reason=str(err))
        except OSError as err:  # the grader's folder, not the student's file: a person must look
            return CellScore(
                scorer,
                "error",
                reason=one_line(
                    f"{scorer.model_file} could not be read: {type(err).__name__}: {err}", MAX_REASON_CHARS
                ),
            )
        try:
            arrays, info = scorer.data(root)
            np.savez(folder / DATA_NAME, **arrays)
        except Exception as err:  # noqa: BLE001 (the grader's data, not the student's file: a person must look)
            return CellScore(
                scorer,
                "error",
                reason=one_line(
                    f"the grading data for {scorer.model_file} could not be prepared: {type(err).__name__}: {err}",
                    MAX_REASON_CHARS,
                ),
            )
        try:
            record = parse_result(
                _run_scorer(scorer, folder, sandbox=sandbox, timeout=timeout, env=env), scorer.measure
            )
        except ScoringOutputError as err:
            return CellScore(scorer, "error", reason=str(err), info=info)
        if not record["ok"]:
            return CellScore(scorer, "refused", reason=record["reason"], info=info)
        result = CellScore(scorer, "scored", metrics=record["metrics"], info=info)
        if scorer.measure == "fer_accuracy":
            result.contamination = contamination_reason(result.metrics, info, scorer.model_file)
            result.run_record = run_record_reason(root, student, scorer, result, folder / MODEL_NAME)
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _set_comment(gb, grade, text: str) -> None:
    """Set the auto comment of ``grade``'s cell in its submitted notebook (a comment row is made for a test cell,
    which nbgrader gives none; formgrader shows comments of answer cells only, so the review flag is what the
    instructor sees)."""
    from nbgrader.api import Comment

    comment = (
        gb.db.query(Comment)
        .filter(Comment.cell_id == grade.cell_id, Comment.notebook_id == grade.notebook_id)
        .one_or_none()
    )
    if comment is None:
        comment = Comment(cell_id=grade.cell_id, notebook_id=grade.notebook_id)
        gb.db.add(comment)
    comment.auto_comment = text


def apply_model_scores(
    root: Path,
    assignment: str,
    student: str,
    worker_db: Path,
    *,
    sandbox: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    slot: int | None = None,
    registry: Mapping[tuple[str, str], Scorer] | None = None,
) -> list[str]:
    """Score every registered model file of ``student``'s ``assignment`` separately and write the scores into the
    nbgrader gradebook ``worker_db`` (after ``nbgrader autograde`` of that student, before the merge).

    For each scorer of ``assignment`` in ``registry`` (default :data:`REGISTRY`) whose cell the gradebook has (a
    cell the release lacks is skipped: nbgrader scored nothing there): the
    cell's ``Grade.auto_score`` becomes the separate score (rule ``"replace"``), or stays nbgrader's only when the
    separate check passed, else 0 (rule ``"gate"``); a model that could not be scored because of the scoring
    process itself (``"error"``) scores 0 with ``needs_manual_grade`` set. The cell gets an auto comment ("scored
    separately: ..."). A contamination finding is recorded at once with :func:`course.review.add` (source
    ``"contamination"``, under ``root``), and so is a run record that this scoring contradicts (source
    ``"run-record"``, :func:`run_record_reason`).

    Args:
        root: the course folder (``grading/submitted/`` and, for ps3, ``solutions/`` are read).
        worker_db: the sqlite gradebook nbgrader autograded this student into.
        sandbox: score in the bubblewrap sandbox (:func:`course.sandbox.run_sandboxed`); False runs the same code in
            a plain subprocess (for ``--no-sandbox`` grading).
        timeout: seconds per model file.
        slot: the parallel worker's number, so that the scorer runs as that worker's sandbox user.

    Returns:
        Review reasons (source ``"model-scoring"``), one per cell whose separate score differs from the notebook's
        or that could not be scored; [] when every cell agrees.

    Raises:
        course.sandbox.SandboxError: ``sandbox`` is True and bubblewrap cannot be used.
        nbgrader.api.MissingEntry: the gradebook has no submission of ``assignment`` by ``student``.
    """
    from nbgrader.api import Gradebook, MissingEntry

    from . import review

    scorers = [s for (aid, _), s in (REGISTRY if registry is None else registry).items() if aid == assignment]
    if not scorers:
        return []
    env = dict(os.environ)
    if slot is not None:
        env[EXPRESSION_LAB_SANDBOX_SLOT.name] = str(slot)
    url = f"sqlite:///{worker_db}"
    with Gradebook(url) as gb:
        gb.find_submission(assignment, student)  # raises MissingEntry
        present = {}
        for scorer in scorers:
            try:
                grade = gb.find_grade(scorer.grade_id, scorer.notebook, assignment, student)
                present[scorer.grade_id] = grade.auto_score
            except MissingEntry:
                pass
    reasons, contamination, records = [], [], []
    results = [
        (s, score_cell(s, root, student, sandbox=sandbox, timeout=timeout, env=env))
        for s in scorers
        if s.grade_id in present
    ]
    with Gradebook(url) as gb:
        for scorer, result in results:
            grade = gb.find_grade(scorer.grade_id, scorer.notebook, assignment, student)
            before = grade.auto_score
            if result.status == "scored":
                after = float(scorer.award(result.metrics, before))
            else:
                after = 0.0
            if scorer.rule == "gate" and result.status == "scored":
                what = f"check passed, nbgrader's {(before or 0):g} kept"
            else:
                what = f"{after:g} of {scorer.points:g} points"
            grade.auto_score = after
            if result.status == "error":
                grade.needs_manual_grade = True
            _set_comment(
                gb,
                grade,
                f"Scored separately from the notebook ({scorer.model_file} loaded alone, "
                f"safe_mode): {result.summary()}; {what}.",
            )
            gb.db.commit()
            cell = f"{scorer.notebook}.ipynb cell {scorer.grade_id}"
            if result.status == "error":
                reasons.append(
                    f"{cell}: {scorer.model_file} {result.summary()}; the cell scores 0 until a person "
                    f"grades it (the notebook gave {(before or 0):g})"
                )
            elif abs((before or 0.0) - after) > 1e-9:
                why = (
                    " A notebook that scores a model file higher than the file itself may have changed the file, "
                    "how models load or how tests run."
                    if (before or 0.0) > after
                    else ""
                )
                reasons.append(
                    f"{cell}: the notebook scored {(before or 0):g} of {scorer.points:g}, the separate "
                    f"scoring of the handed-in {scorer.model_file} {after:g} ({result.summary()}); the "
                    f"gradebook keeps the separate score.{why}"
                )
            if result.contamination:
                contamination.append(f"{cell}: {result.contamination}")
            if result.run_record:
                records.append(f"{cell}: {result.run_record}")
    if contamination:
        review.add(assignment, student, "contamination", contamination, root)
    if records:
        review.add(assignment, student, "run-record", records, root)
    return reasons


if __name__ == "__main__":
    sys.exit(main())
