"""Fair grading in assignments 4 and 5: the test cells of the solution notebooks, public and hidden parts, run
against answers that are correct but written differently from the model solution, and against wrong ones.

The cells are taken from the solution notebooks by grade_id and executed in a namespace holding what the notebook
would have defined, on tiny inputs. Each wrong answer below passed the public checks of the notebook as it was
before (and failed only in the hidden tests, or scored full points), and each correct-but-different answer
failed somewhere; now every wrong answer fails a public check saying why, and every correct one passes.

- **ps4 (Action Units)**: ``Dense(N_AUS)`` instead of the argument, a fresh CNN that never uses model_2, an
  unfrozen base where the base has no batch norm, a sigmoid or linear valence/arousal head, thresholds never above
  one half; a correct CCC computed in float32 failed (a 1e-9 tolerance). The run record is written and shown
  beside the grading run.
- **ps5 (faces in motion)**: a ROC over all frames (``face_present`` ignored), a ROC that drops the frames without
  a face instead of scoring them 0, a smoothing by ``np.convolve(..., "same")`` (its output has the window's
  length when the window is longer than the clip), ``groupby("frame").first()`` for the largest face; a correct
  answer picking the largest box by ``w * h`` crashed on a hidden toy table without the box columns.
"""

from __future__ import annotations

import ast
import json
import types

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from course.feedback import without_hidden_regions
from course.notebook_cells import SOLUTION_CELLS, sources_by_grade_id

# ---------------------------------------------------------------- ps4

PS4 = REPO / "solutions" / "ps4_action_units" / "action_units.ipynb"
#: The answer cells of the solution, in notebook order (the registry's list of them, after the imports cell).
PS4_ANSWERS = [gid for gid in SOLUTION_CELLS["action_units"][1] if gid != "imports"]
#: The graded test cells, in notebook order.
PS4_TESTS = [
    "test_au_cnn",
    "test_per_au_f1",
    "test_pick_thresholds",
    "test_au_transfer",
    "test_model_5_saved",
    "test_model_5_submitted",
    "test_ccc",
    "test_va_model",
    "test_au_to_emotion",
]
PS4_HIDDEN = "### BEGIN HIDDEN TESTS"


def ps4_run(grade_ids, ns, path=PS4, public_only=False):
    """Execute the cells ``grade_ids`` of the notebook at ``path`` in ``ns`` (only their public part if asked)."""
    cells = sources_by_grade_id(path)
    for gid in grade_ids:
        source = without_hidden_regions(cells[gid]) if public_only else cells[gid]
        exec(compile(source, f"{path.name}#{gid}", "exec"), ns)  # noqa: S102 (our own notebooks)
    return ns


def ps4_with_answer(ns, code):
    exec(code, ns)  # noqa: S102
    return ns


class _Ps4Faces(types.SimpleNamespace):
    def __len__(self):
        return len(self.labels)


def ps4_faces(rng, n):
    """``n`` faces of the 7 emotions: AU intensities around the FACS prototypes, each AU's presence written into
    pixel (0, k) so that a one-layer model reads it, valence and arousal on the unit circle."""
    from data_loaders import EMOTIONS
    from data_loaders.synthetic import AUS, EMOTION_AUS

    proto = np.array([[1.0 if au in EMOTION_AUS[e] else 0.0 for au in AUS] for e in EMOTIONS])
    labels = np.arange(n) % 7
    intensity = np.clip(proto[labels] * rng.uniform(2, 5, (n, 1)) + rng.normal(0, 0.3, (n, len(AUS))), 0, 5)
    presence = (intensity >= 1).astype(np.uint8)
    images = rng.integers(0, 100, (n, 48, 48)).astype(np.uint8)
    images[:, 0, : len(AUS)] = 255 * presence
    angle = rng.uniform(0, 2 * np.pi, n)
    return _Ps4Faces(
        images=images,
        presence=presence,
        intensity=intensity.astype("float32"),
        labels=labels,
        valence=np.cos(angle).astype("float32"),
        arousal=np.sin(angle).astype("float32"),
    )


def ps4_small_cnn(outputs, activation, batch_norm, pooled):
    import keras
    from keras import layers

    inputs = keras.Input((48, 48, 1))
    h = layers.Conv2D(8, 3, use_bias=not batch_norm)(inputs)
    if batch_norm:
        h = layers.BatchNormalization()(h)
    h = layers.MaxPooling2D(4)(layers.Activation("relu")(h))
    h = layers.GlobalAveragePooling2D()(h) if pooled else layers.Dense(16, activation="relu")(layers.Flatten()(h))
    return keras.Model(inputs, layers.Dense(outputs, activation=activation)(h))


def ps4_pixel_reader(n_aus):
    """A model_5 that reads each AU's presence from pixel (0, k): a mean ROC AUC of 1 on :func:`ps4_faces`."""
    import keras
    from keras import layers

    inputs = keras.Input((48, 48, 1))
    dense = layers.Dense(n_aus, activation="sigmoid")
    model = keras.Model(inputs, dense(layers.Flatten()(inputs)))
    kernel = np.zeros((48 * 48, n_aus), "float32")
    kernel[np.arange(n_aus), np.arange(n_aus)] = 20.0
    dense.set_weights([kernel, np.full(n_aus, -10.0, "float32")])
    return model


_PS4_TRAINED_WEIGHTS: dict[tuple, list] = {}


def ps4_trained(model, x, y):
    """``model`` after one epoch on ``(x, y)``: trained once per architecture, the weights copied into each new
    model after that (a fresh model for each test: answers freeze or train its layers)."""
    key = (model.count_params(), len(model.layers), model.output_shape, len(model.weights))
    if key not in _PS4_TRAINED_WEIGHTS:
        model.compile("adam", "sparse_categorical_crossentropy" if y.ndim == 1 else "binary_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)
        _PS4_TRAINED_WEIGHTS[key] = model.get_weights()
    model.set_weights(_PS4_TRAINED_WEIGHTS[key])
    return model


def ps4_namespace(folder, batch_norm=True):
    """What the notebook defines before its first test cell, on tiny inputs; ``model_5.keras`` saved in ``folder``
    (the working directory and ``MODEL_DIR``): a model that detects the AUs of :func:`ps4_faces`."""
    import keras
    import pandas as pd
    from keras import layers
    from sklearn.metrics import f1_score

    from data_loaders import EMOTIONS
    from data_loaders.synthetic import AUS

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n_aus = len(AUS)
    x = {s: rng.random((64, 48, 48, 1)).astype("float32") for s in ("train", "val", "test")}
    y = {s: (rng.random((64, n_aus)) < 0.3).astype("float32") for s in ("train", "val", "test")}
    model_2 = ps4_trained(ps4_small_cnn(7, "softmax", batch_norm, pooled=True), x["train"], np.arange(64) % 7)
    model_5 = ps4_trained(ps4_small_cnn(n_aus, "sigmoid", batch_norm, pooled=False), x["train"], y["train"])
    ps4_pixel_reader(n_aus).save(folder / "model_5.keras")
    faces = {
        s: ps4_faces(rng, n)
        for s, n in (("Training", 140), ("Validation", 70), ("PublicTest", 70), ("PrivateTest", 70))
    }
    return {
        "np": np,
        "pd": pd,
        "keras": keras,
        "layers": layers,
        "f1_score": f1_score,
        "Path": type(folder),
        "EMOTIONS": EMOTIONS,
        "AU_NAMES": list(AUS),
        "N_AUS": n_aus,
        "SEED": 6835,
        "MODEL_DIR": folder,
        "HAS_EMOTIONS": True,
        "HAS_VA": True,
        "model_2": model_2,
        "model_5": model_5,
        "x_train": x["train"],
        "y_train": y["train"],
        "x_val": x["val"],
        "y_val": y["val"],
        "x_test": x["test"],
        "y_test": y["test"],
        "train_set": faces["Training"],
        "val_set": faces["Validation"],
        "test_set": faces["PublicTest"],
        "au_data": types.SimpleNamespace(subset=faces.__getitem__, description="tiny faces for a test"),
        "to_inputs": lambda images: images[..., None].astype("float32") / 255.0,
    }


@pytest.fixture
def ps4_ns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return ps4_namespace(tmp_path)


@pytest.fixture
def ps4_ns_without_batch_norm(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return ps4_namespace(tmp_path, batch_norm=False)


def _ps4_weights(model):
    return [w.numpy() for w in model.weights]


# ---------------------------------------------------------------- the solution, and correct answers written otherwise


@pytest.mark.parametrize(
    "batch_norm, cells",
    [(True, PS4_TESTS), (False, ["test_au_transfer", "test_va_model"])],
    ids=["batch-norm", "no-batch-norm"],
)
@pytest.mark.slow
def test_ps4_the_solution_passes_every_test_cell_and_leaves_the_models_as_they_were(
    tmp_path, monkeypatch, batch_norm, cells
):
    monkeypatch.chdir(tmp_path)
    ns = ps4_run(PS4_ANSWERS, ps4_namespace(tmp_path, batch_norm=batch_norm))
    before = {name: _ps4_weights(ns[name]) for name in ("model_2", "model_5")}
    ps4_run(cells, ns)
    for name, weights in before.items():  # later cells train on model_2 and model_5: the tests may not change them
        for a, b in zip(weights, _ps4_weights(ns[name])):
            np.testing.assert_array_equal(a, b, err_msg=f"the test cells changed {name}")


PS4_SEQUENTIAL_CNN_WITH_A_LOSS_OBJECT = """
def build_au_cnn(n_aus):
    model = keras.Sequential([keras.Input((48, 48, 1)), layers.Conv2D(16, 3, padding="same", activation="relu"),
                              layers.MaxPooling2D(2), layers.Conv2D(32, 3, padding="same", activation="relu"),
                              layers.GlobalAveragePooling2D(), layers.Dense(n_aus), layers.Activation("sigmoid")])
    model.compile(keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy())
    return model
"""

PS4_VECTORISED_THRESHOLDS = """
def pick_thresholds(y_true, probs):
    y, p = np.asarray(y_true).astype(bool), np.asarray(probs)
    grid = np.arange(0.05, 0.96, 0.05)
    pred = p[None] >= grid[:, None, None]
    tp, fp, fn = (pred & y).sum(1), (pred & ~y).sum(1), (~pred & y).sum(1)
    f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    return grid[f1.argmax(axis=0)]
"""

PS4_SHARED_LAYERS_FROZEN_ONE_BY_ONE = """
def build_au_transfer(model_2, n_aus):
    for layer in model_2.layers[:-1]:
        layer.trainable = False
    model = keras.Sequential([keras.Input((48, 48, 1)), *model_2.layers[1:-1], layers.Dense(32, activation="relu"),
                              layers.Dense(n_aus, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return model
"""

PS4_COPIED_BASE = """
def build_au_transfer(model_2, n_aus):
    clone = keras.models.clone_model(model_2)
    clone.set_weights(model_2.get_weights())
    base = keras.Model(clone.inputs, clone.layers[-2].output)
    base.trainable = False
    inputs = keras.Input((48, 48, 1))
    outputs = layers.Dense(n_aus, activation="sigmoid")(layers.Dropout(0.2)(base(inputs, training=False)))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "binary_crossentropy")
    return model
"""

PS4_FLOAT32_CCC = """
def ccc(y_true, y_pred):
    t, p = np.asarray(y_true, dtype=np.float32), np.asarray(y_pred, dtype=np.float32)
    covariance = np.mean((t - t.mean()) * (p - p.mean()))
    return float(2 * covariance / (t.var() + p.var() + (t.mean() - p.mean()) ** 2))
"""

# float32 throughout and a numpy scalar returned (np.float32 is not a Python float)
PS4_NUMPY_SCALAR_CCC = """
def ccc(y_true, y_pred):
    t, p = np.asarray(y_true, dtype=np.float32), np.asarray(y_pred, dtype=np.float32)
    return 2 * np.mean((t - t.mean()) * (p - p.mean())) / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)
"""

PS4_COVARIANCE_MATRIX_CCC = """
def ccc(y_true, y_pred):
    c = np.cov(y_true, y_pred, bias=True)
    return float(2 * c[0, 1] / (c[0, 0] + c[1, 1] + (np.mean(y_true) - np.mean(y_pred)) ** 2))
"""

PS4_RESCALED_SIGMOID_HEAD = """
def build_va_model(base_model):
    features = keras.Model(base_model.inputs, base_model.layers[-2].output)
    features.trainable = False
    inputs = keras.Input((48, 48, 1))
    x = layers.Dense(32, activation="relu")(layers.Flatten()(features(inputs, training=False)))
    outputs = layers.Rescaling(2.0, offset=-1.0)(layers.Dense(2, activation="sigmoid")(x))  # 2σ - 1: [-1, 1]
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), loss="mean_squared_error")
    return model
"""

PS4_COPIED_BASE_TANH_LAYER = """
def build_va_model(base_model):
    clone = keras.models.clone_model(base_model)
    clone.set_weights(base_model.get_weights())
    for layer in clone.layers:
        layer.trainable = False
    inputs = keras.Input((48, 48, 1))
    x = keras.Model(clone.inputs, clone.layers[-2].output)(inputs)
    model = keras.Model(inputs, layers.Activation("tanh")(layers.Dense(2)(x)))
    model.compile("adam", "mse")
    return model
"""

PS4_PIPELINE_AU_TO_EMOTION = """
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def fit_au_to_emotion(au_probs, labels):
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(au_probs, labels)
"""

PS4_CORRECT_BUT_DIFFERENT = [
    ("sequential-cnn-loss-object", PS4_SEQUENTIAL_CNN_WITH_A_LOSS_OBJECT, "test_au_cnn"),
    ("vectorised-thresholds", PS4_VECTORISED_THRESHOLDS, "test_pick_thresholds"),
    ("shared-layers-frozen-one-by-one", PS4_SHARED_LAYERS_FROZEN_ONE_BY_ONE, "test_au_transfer"),
    ("copied-base", PS4_COPIED_BASE, "test_au_transfer"),
    ("float32-ccc", PS4_FLOAT32_CCC, "test_ccc"),
    ("covariance-matrix-ccc", PS4_COVARIANCE_MATRIX_CCC, "test_ccc"),
    ("numpy-scalar-ccc", PS4_NUMPY_SCALAR_CCC, "test_ccc"),
    ("rescaled-sigmoid-head", PS4_RESCALED_SIGMOID_HEAD, "test_va_model"),
    ("copied-base-tanh-layer", PS4_COPIED_BASE_TANH_LAYER, "test_va_model"),
    ("pipeline-au-to-emotion", PS4_PIPELINE_AU_TO_EMOTION, "test_au_to_emotion"),
]


@pytest.mark.slow  # each case trains small models: seconds
@pytest.mark.parametrize(
    "answer, cell", [(a, c) for _, a, c in PS4_CORRECT_BUT_DIFFERENT], ids=[i for i, _, _ in PS4_CORRECT_BUT_DIFFERENT]
)
def test_ps4_a_correct_but_different_answer_passes_the_public_and_hidden_tests(ps4_ns, answer, cell):
    ps4_run([cell], ps4_with_answer(ps4_run(PS4_ANSWERS, ps4_ns), answer))


@pytest.mark.slow  # each case trains small models: seconds
@pytest.mark.parametrize("answer", [PS4_SHARED_LAYERS_FROZEN_ONE_BY_ONE, PS4_COPIED_BASE], ids=["shared", "copied"])
def test_ps4_a_frozen_transfer_passes_when_model_2_has_no_batch_norm(ps4_ns_without_batch_norm, answer):
    ps4_run(["test_au_transfer"], ps4_with_answer(ps4_run(PS4_ANSWERS, ps4_ns_without_batch_norm), answer))


# ---------------------------------------------------------------- wrong answers fail in public, saying why

PS4_CNN_OF_FIXED_WIDTH = """
def build_au_cnn(n_aus):
    model = keras.Sequential([keras.Input((48, 48, 1)), layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(4),
                              layers.Flatten(), layers.Dense(N_AUS, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    return model
"""

PS4_THRESHOLDS_NEVER_ABOVE_ONE_HALF = """
def pick_thresholds(y_true, probs):
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    candidates = np.arange(0.05, 0.5, 0.05)
    return np.array([max(candidates, key=lambda t: f1_score(y_true[:, k], probs[:, k] >= t, zero_division=0))
                     for k in range(y_true.shape[1])])
"""

PS4_FRESH_CNN_NEVER_USING_MODEL_2 = """
def build_au_transfer(model_2, n_aus):
    model = keras.Sequential([keras.Input((48, 48, 1)), layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(4),
                              layers.Flatten(), layers.Dense(n_aus, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    return model
"""

PS4_TRANSFER_OF_FIXED_WIDTH = """
def build_au_transfer(model_2, n_aus):
    base = keras.Model(model_2.inputs, model_2.layers[-2].output)
    base.trainable = False
    inputs = keras.Input((48, 48, 1))
    model = keras.Model(inputs, layers.Dense(N_AUS, activation="sigmoid")(base(inputs, training=False)))
    model.compile("adam", "binary_crossentropy")
    return model
"""

PS4_UNFROZEN_TRANSFER = """
def build_au_transfer(model_2, n_aus):
    base = keras.Model(model_2.inputs, model_2.layers[-2].output)
    inputs = keras.Input((48, 48, 1))
    model = keras.Model(inputs, layers.Dense(n_aus, activation="sigmoid")(base(inputs)))
    model.compile("adam", "binary_crossentropy")
    return model
"""

PS4_SAMPLE_MOMENTS_CCC = """
def ccc(y_true, y_pred):
    t, p = np.asarray(y_true, float), np.asarray(y_pred, float)
    return float(2 * np.cov(t, p)[0, 1] / (t.var(ddof=1) + p.var(ddof=1) + (t.mean() - p.mean()) ** 2))
"""


def _ps4_va_head(activation, freeze=True):
    return f"""
def build_va_model(base_model):
    base = keras.Model(base_model.inputs, base_model.layers[-2].output)
    base.trainable = {not freeze}
    inputs = keras.Input((48, 48, 1))
    model = keras.Model(inputs, layers.Dense(2, activation={activation!r})(base(inputs, training=False)))
    model.compile("adam", "mse")
    return model
"""


PS4_FRESH_VA_BASE = """
def build_va_model(base_model):
    model = keras.Sequential([keras.Input((48, 48, 1)), layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(4),
                              layers.Flatten(), layers.Dense(2, activation="tanh")])
    model.compile("adam", "mse")
    return model
"""

#: (id, answer, cell, the public failure message, whether model_2 and model_5 have batch norm)
PS4_WRONG = [
    ("cnn-of-fixed-width", PS4_CNN_OF_FIXED_WIDTH, "test_au_cnn", r"build_au_cnn\(3\) to give \(None, 3\)", True),
    (
        "thresholds-never-above-one-half",
        PS4_THRESHOLDS_NEVER_ABOVE_ONE_HALF,
        "test_pick_thresholds",
        "expected thresholds that separate these faces",
        True,
    ),
    (
        "fresh-cnn-never-using-model-2",
        PS4_FRESH_CNN_NEVER_USING_MODEL_2,
        "test_au_transfer",
        "expected model_2's learned weights",
        False,
    ),
    (
        "transfer-of-fixed-width",
        PS4_TRANSFER_OF_FIXED_WIDTH,
        "test_au_transfer",
        r"build_au_transfer\(model_2, 3\) to give \(None, 3\)",
        True,
    ),
    (
        "unfrozen-transfer-no-batch-norm",
        PS4_UNFROZEN_TRANSFER,
        "test_au_transfer",
        "expected model_2's weights unchanged by training",
        False,
    ),
    ("sample-moments-ccc", PS4_SAMPLE_MOMENTS_CCC, "test_ccc", r"expected 4/7 = 0\.571428571 \(±1e-6\)", True),
    ("sigmoid-va-head", _ps4_va_head("sigmoid"), "test_va_model", "can be negative", True),
    (
        "linear-va-head",
        _ps4_va_head(None),
        "test_va_model",
        r"expected outputs in \[-1, 1\] that can be negative",
        True,
    ),
    (
        "unfrozen-va-base-no-batch-norm",
        _ps4_va_head("tanh", freeze=False),
        "test_va_model",
        "expected model_5's weights unchanged by training",
        False,
    ),
    ("fresh-va-base", PS4_FRESH_VA_BASE, "test_va_model", "expected model_5's learned weights", False),
]


@pytest.mark.parametrize("answer, cell, message, batch_norm", [w[1:] for w in PS4_WRONG], ids=[w[0] for w in PS4_WRONG])
def test_ps4_a_wrong_answer_fails_the_public_test_saying_why(tmp_path, monkeypatch, answer, cell, message, batch_norm):
    monkeypatch.chdir(tmp_path)
    ns = ps4_with_answer(ps4_run(PS4_ANSWERS, ps4_namespace(tmp_path, batch_norm=batch_norm)), answer)
    with pytest.raises(AssertionError, match=message):
        ps4_run([cell], ns, public_only=True)


def test_ps4_a_model_5_that_guesses_fails_the_self_check_before_the_grader_does(ps4_ns, tmp_path):
    import keras

    inputs = keras.Input((48, 48, 1))
    guess = keras.Model(
        inputs, keras.layers.Dense(ps4_ns["N_AUS"], activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(inputs))
    )
    guess.save(tmp_path / "model_5.keras")
    with pytest.raises(AssertionError, match="expected a mean ROC AUC of at least 0.65 on the test faces"):
        ps4_run(["test_model_5_submitted"], ps4_ns, public_only=True)


# ---------------------------------------------------------------- the run record

PS4_RUN = ["train_detectors", "train_va", "au_route", "run_record", "student_run"]


@pytest.mark.slow
def test_ps4_the_run_record_is_written_and_shown_beside_the_grading_run(ps4_ns, tmp_path, capsys):
    """The student's run writes model_5.run.json; the grading run shows it beside its own and re-evaluates the
    handed-in model_5.keras with the record's thresholds; a tampered, malformed or missing record is said."""
    from course.run_record import read_run_record

    shown = []
    ns = ps4_run(["imports"], ps4_ns)
    ns.update(display=shown.append, GRADING=False, EPOCHS_CAP=1)
    for split, faces in (("train", "train_set"), ("val", "val_set"), ("test", "test_set")):  # the faces themselves
        ns[f"x_{split}"], ns[f"y_{split}"] = ns["to_inputs"](ns[faces].images), ns[faces].presence.astype("float32")
    ps4_run(PS4_ANSWERS + PS4_RUN, ns)
    record = read_run_record(tmp_path / "model_5.keras")
    assert record["model_5"] in record["detectors"] and record["epochs"] == 1
    assert set(record["detectors"][record["model_5"]]["thresholds"]) == set(ns["AU_NAMES"])
    assert set(record["valence_arousal"]["mean_by_emotion"]) == set(ns["EMOTIONS"])
    assert record["au_route"]["table"]["AU route"]["accuracy"] >= 0
    tables = [t for t in shown if hasattr(t, "loc") and "model file" in t.index]
    assert tables and list(tables[0].columns) == ["student's own run"], shown

    grading = tmp_path / "autograde_outputs"
    grading.mkdir()
    ns.update(GRADING=True, MODEL_DIR=grading)
    ns["model_5"].save(grading / "model_5.keras")
    shown.clear()
    ps4_run(["run_record", "student_run"], ns)
    out = capsys.readouterr().out
    assert "run record check: reproduced within ±0.02" in out and "for this model file" in out, out
    assert (grading / "model_5.run.json").is_file()
    assert list(next(t for t in shown if hasattr(t, "loc") and "model file" in t.index).columns) == [
        "student's own run",
        "grading run",
    ]

    path = tmp_path / "model_5.run.json"
    tampered = json.loads(path.read_text())
    for table in tampered["detectors"][tampered["model_5"]]["f1"].values():
        table.update({au: 1.0 for au in table})
    path.write_text(json.dumps(tampered))
    ps4_run(["student_run"], ns)
    assert "NOT REPRODUCED" in capsys.readouterr().out
    path.write_text("{not json")
    ps4_run(["student_run"], ns)
    assert "MALFORMED" in capsys.readouterr().out
    path.unlink()
    ps4_run(["student_run"], ns)
    assert "No run record (model_5.run.json) was handed in" in capsys.readouterr().out


# ---------------------------------------------------------------- the notebook's text and structure


def test_ps4_every_test_cell_checks_in_public_and_every_assert_says_what_was_expected_and_found():
    nb = json.loads(PS4.read_text())
    graded = []
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] != "code" or not meta.get("grade"):
            continue
        graded.append(meta["grade_id"])
        source = "".join(cell["source"])
        public = source.split(PS4_HIDDEN)[0]
        assert [n for n in ast.walk(ast.parse(public)) if isinstance(n, ast.Assert)], (
            f"{meta['grade_id']}: expected a public check before the hidden tests, found none"
        )
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Assert):
                message = ast.unparse(node.msg) if node.msg is not None else ""
                assert "expected" in message and "found" in message, (
                    f"{meta['grade_id']} line {node.lineno}: expected the message to say what was expected and "
                    f"found, found {message!r}"
                )
    assert graded == PS4_TESTS, f"expected the test cells {PS4_TESTS}, found {graded}"


def test_ps4_manual_answers_carry_a_rubric_the_total_is_stated_and_the_notebook_ends_with_the_checklist():
    nb = json.loads(PS4.read_text())
    graded = [c["metadata"]["nbgrader"] for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] == "markdown" and meta.get("grade"):
            assert "Rubric" in "".join(cell["source"]), f"{meta['grade_id']}: expected a rubric, found none"
    total = sum(m["points"] for m in graded)
    title = "".join(nb["cells"][0]["source"])
    assert f"**{total:g} points**" in title and "model_5.run.json" in title
    checklist = "".join(nb["cells"][-1]["source"])
    assert "Before you submit" in checklist and "model_5.run.json" in checklist


def test_ps4_the_text_names_the_right_sections_and_credits_what_it_asks_for():
    cells = sources_by_grade_id(PS4)
    text = " ".join(" ".join("".join(c["source"]) for c in json.loads(PS4.read_text())["cells"]).split())
    assert "training runs in section 2.4" not in text and "training runs in section 2.5" in text
    assert "It takes about 8 minutes" in text, "expected the training cell's duration stated before it"
    # Question 1.1 credits only what it asks: the muscles are in the AU table printed above it, so it no longer asks
    # for them, and its rubric's last half point is the harder AU it does ask about.
    question = text.split("**Question 1.1")[1].split("*Rubric")[0]
    assert "which muscle" not in question and "harder" in question, f"expected 1.1 to ask no muscle, found {question!r}"
    assert "muscle behind each" not in cells["q_smile"] and "AU6 is the harder one" in " ".join(
        cells["q_smile"].split()
    )
    assert "the kit's choice" in " ".join(cells["q_ccc"].split()) and "the kit's choice" in text.split("## 2.")[0]
    for gid in ("q_hard_aus", "q_ccc", "q_au_route"):
        assert "run record" in cells[gid].split("*Rubric")[1], f"{gid}: expected the rubric to read the run record"
    assert "LambdaCallback" in cells["train_detectors"] and "validation" in cells["train_detectors"]


# ---------------------------------------------------------------- ps5

PS5 = REPO / "solutions" / "ps5_faces_in_motion" / "faces_in_motion.ipynb"
PS5_HIDDEN = "### BEGIN HIDDEN TESTS"


def _ps5_run(grade_ids, ns, *, public_only=False):
    cells = sources_by_grade_id(PS5)
    for gid in grade_ids:
        source = without_hidden_regions(cells[gid]) if public_only else cells[gid]
        exec(compile(source, f"{PS5.name}#{gid}", "exec"), ns)  # noqa: S102 (our own notebook)
    return ns


def _ps5_frames(n=12, missing=(5,)):
    """A DataFrame with analyze_video's columns: one face per frame, none in ``missing``."""
    from data_loaders import EMOTIONS

    rng = np.random.default_rng(0)
    rows = []
    for frame in range(n):
        found = frame not in missing
        smile = float(rng.random()) if found else np.nan
        p = {e: ((1 - smile) / 6 if found else np.nan) for e in EMOTIONS} | {"Happy": smile}
        rows.append(
            {
                "frame": frame,
                "time_s": frame / 15,
                "face": found,
                "face_index": 0,
                **dict(zip("xywh", (40, 30, 100, 100) if found else (None,) * 4)),
                **p,
                "smile": smile,
                "label": max(p, key=p.get) if found else "",
            }
        )
    return pd.DataFrame(rows).astype({c: "Int64" for c in "xywh"})


@pytest.fixture
def ps5_namespace():
    """What the notebook defines before its test cells: the imports, the analysis of a short clip, and the model
    solution's three functions (an answer below replaces one of them)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    from data_loaders import EMOTIONS

    ns = {
        "np": np,
        "pd": pd,
        "EMOTIONS": EMOTIONS,
        "roc_auc_score": roc_auc_score,
        "roc_curve": roc_curve,
        "frames": _ps5_frames(),
    }
    return _ps5_run(["per_frame_scores", "smooth", "smile_roc"], ns)


def _ps5_with(ns, code):
    fresh = dict(ns)
    exec(code, fresh)  # noqa: S102
    return fresh


# ---------------------------------------------------------------- answers

PER_FRAME_LARGEST_BOX = """
def per_frame_scores(frames):
    area = (frames["w"] * frames["h"]).astype(float).fillna(-1)
    largest = frames.assign(area=area).sort_values("area", ascending=False).drop_duplicates("frame")
    return largest.set_index("frame")["smile"].sort_index()
"""

PER_FRAME_SORT_AND_DEDUPLICATE = """
def per_frame_scores(frames):
    first = frames.sort_values(["frame", "face_index"]).drop_duplicates("frame")
    return pd.Series(first["smile"].to_numpy(), index=first["frame"].to_numpy())
"""

PER_FRAME_IDXMIN = """
def per_frame_scores(frames):
    rows = frames.loc[frames.groupby("frame")["face_index"].idxmin()]
    return rows.set_index("frame")["smile"].astype(float)
"""

SMOOTH_NDIMAGE = """
from scipy import ndimage
def smooth(scores, window):
    x = np.asarray(scores, dtype=float)
    valid = ~np.isnan(x)
    total = ndimage.uniform_filter1d(np.where(valid, x, 0.0), window, mode="constant")
    count = ndimage.uniform_filter1d(valid.astype(float), window, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, total / count, np.nan)
"""

SMOOTH_CONVOLVE_FULL = """
def smooth(scores, window):
    x = np.asarray(scores, dtype=float)
    valid = ~np.isnan(x)
    kernel, half = np.ones(window), window // 2
    total = np.convolve(np.where(valid, x, 0.0), kernel, "full")[half:half + len(x)]
    count = np.convolve(valid.astype(float), kernel, "full")[half:half + len(x)]
    out = total / np.maximum(count, 1)
    out[~valid] = np.nan
    return out
"""

SMOOTH_LOOP = """
def smooth(scores, window):
    x = np.asarray(scores, dtype=float)
    half = window // 2
    return np.array([np.nan if np.isnan(v) else np.nanmean(x[max(0, i - half):i + half + 1])
                     for i, v in enumerate(x)])
"""

SMILE_ROC_PANDAS = """
def smile_roc(smile_true, scores, face_present):
    table = pd.DataFrame({"y": smile_true, "s": scores, "face": face_present})
    table = table[table.face == 1].fillna({"s": 0})
    fpr, tpr, _ = roc_curve(table.y, table.s)
    return fpr, tpr, roc_auc_score(table.y, table.s)
"""

SMILE_ROC_AUC_FROM_CURVE = """
from sklearn.metrics import auc
def smile_roc(smile_true, scores, face_present):
    keep = np.asarray(face_present) == 1
    s = np.where(np.isnan(np.asarray(scores, dtype=float)), 0.0, scores)[keep]
    fpr, tpr, _ = roc_curve(np.asarray(smile_true)[keep], s)
    return fpr, tpr, auc(fpr, tpr)
"""

PER_FRAME_GROUPBY_FIRST = """
def per_frame_scores(frames):
    return frames.groupby("frame")["smile"].first()
"""

SMOOTH_CONVOLVE_SAME = """
def smooth(scores, window):
    x = np.asarray(scores, dtype=float)
    if window <= 1:
        return x.copy()
    valid = ~np.isnan(x)
    kernel = np.ones(window)
    out = np.convolve(np.where(valid, x, 0.0), kernel, "same") / np.convolve(valid.astype(float), kernel, "same")
    out[~valid] = np.nan
    return out
"""

SMILE_ROC_ALL_FRAMES = """
def smile_roc(smile_true, scores, face_present):
    s = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0)
    fpr, tpr, _ = roc_curve(smile_true, s)
    return fpr, tpr, roc_auc_score(smile_true, s)
"""

SMILE_ROC_DROPS_NAN = """
def smile_roc(smile_true, scores, face_present):
    y, s, f = (np.asarray(a, dtype=float) for a in (smile_true, scores, face_present))
    keep = (f == 1) & ~np.isnan(s)
    fpr, tpr, _ = roc_curve(y[keep], s[keep])
    return fpr, tpr, roc_auc_score(y[keep], s[keep])
"""

#: grade_ids of the test cells of each function
PS5_TESTS = {
    "per_frame_scores": ["test_per_frame_scores"],
    "smooth": ["test_smooth", "test_smooth_hidden"],
    "smile_roc": ["test_smile_roc"],
}


@pytest.mark.parametrize(
    "function, answer",
    [
        ("per_frame_scores", PER_FRAME_LARGEST_BOX),
        ("per_frame_scores", PER_FRAME_SORT_AND_DEDUPLICATE),
        ("per_frame_scores", PER_FRAME_IDXMIN),
        ("smooth", SMOOTH_NDIMAGE),
        ("smooth", SMOOTH_CONVOLVE_FULL),
        ("smooth", SMOOTH_LOOP),
        ("smile_roc", SMILE_ROC_PANDAS),
        ("smile_roc", SMILE_ROC_AUC_FROM_CURVE),
    ],
    ids=[
        "largest-box-by-w-times-h",
        "sort-and-drop-duplicates",
        "groupby-idxmin",
        "ndimage-uniform-filter",
        "convolve-full-sliced",
        "python-loop-nanmean",
        "pandas-table",
        "auc-from-the-curve",
    ],
)
def test_ps5_correct_but_different_answers_pass_public_and_hidden_tests(ps5_namespace, function, answer):
    _ps5_run(PS5_TESTS[function], _ps5_with(ps5_namespace, answer))


def test_ps5_the_model_solution_passes_every_test_cell(ps5_namespace):
    _ps5_run([gid for gids in PS5_TESTS.values() for gid in gids], ps5_namespace)


@pytest.mark.parametrize(
    "answer, grade_id, error, message",
    [
        (PER_FRAME_GROUPBY_FIRST, "test_per_frame_scores", AssertionError, "the larger face"),
        (SMOOTH_CONVOLVE_SAME, "test_smooth_hidden", (IndexError, ValueError), None),
        (SMILE_ROC_ALL_FRAMES, "test_smile_roc", AssertionError, "empty frame"),
        (SMILE_ROC_DROPS_NAN, "test_smile_roc", AssertionError, "missed face"),
    ],
    ids=["groupby-first", "np-convolve-same", "face-present-ignored", "nan-rows-dropped"],
)
def test_ps5_wrong_answers_fail_a_public_check(ps5_namespace, answer, grade_id, error, message):
    """Each fails in the public part of its test cell, so a student sees it before handing in."""
    ns = _ps5_with(ps5_namespace, answer)
    for gids in PS5_TESTS.values():  # the checks of the other functions still pass
        if grade_id not in gids:
            _ps5_run(gids, ns)
    with pytest.raises(error, match=message):
        _ps5_run([grade_id], ns, public_only=True)


def test_ps5_a_convolve_same_answer_is_told_why_at_the_public_check(ps5_namespace):
    """The crash of np.convolve(..., "same") with a window longer than the clip happens on a public line that
    names the cause (the student reads that line in the traceback)."""
    source = sources_by_grade_id(PS5)["test_smooth_hidden"].split(PS5_HIDDEN)[0]
    line = next(x for x in source.splitlines() if "smooth(np.array([0.2, 0.6, 0.4]), 11)" in x)
    assert 'np.convolve(..., "same")' in line, f"expected the long-window line to name np.convolve, found {line!r}"


# ---------------------------------------------------------------- the locked cells around the student's functions


def _ps5_clip_namespace(ns, tmp_path, *, grading):
    """Names the evaluation, record and student-run cells read, for a 60-frame clip (3 smiles, 4 s at 15 fps)."""
    import plotly.graph_objects as go

    from course.run_record import file_sha256, read_run_record, write_run_record

    n = 60
    truth = pd.DataFrame(
        {
            "frame": np.arange(n),
            "smile": ((np.arange(n) // 10) % 2 == 1).astype(int),
            "face_present": (np.arange(n) < 55).astype(int),
        }
    )
    frames = _ps5_frames(n, missing=(20, 55, 56, 57, 58, 59))
    frames.loc[frames.face, "smile"] = np.clip(0.3 * truth.smile[frames.face] + frames.smile[frames.face] * 0.7, 0, 1)
    if grading:  # the re-run analyses every second frame
        frames = frames[frames.frame % 2 == 0].reset_index(drop=True)
    model = tmp_path / "model_2.keras"
    model.write_bytes(b"a model file")
    out = tmp_path / ("autograde_outputs" if grading else ".")
    out.mkdir(exist_ok=True)
    shown = []
    return {
        **ns,
        "go": go,
        "Path": type(tmp_path),
        "file_sha256": file_sha256,
        "read_run_record": read_run_record,
        "write_run_record": write_run_record,
        "display": lambda *a, **k: shown.append(a[0]),
        "shown": shown,
        "GRADING": grading,
        "EVERY": 2 if grading else 1,
        "SEED": 6835,
        "OUTPUT_DIR": out,
        "clip": tmp_path / "clip.mp4",
        "_synthetic": True,
        "_found": model,
        "info": types.SimpleNamespace(fps=15.0, frame_count=n),
        "tuning_info": types.SimpleNamespace(fps=15.0),
        "truth": truth,
        "frames": frames,
        "WINDOW": 5 if grading else 9,
        "auc_tuning": {1: 0.8, 5: 0.85, 9: 0.84},
        "model_2": types.SimpleNamespace(count_params=lambda: 1234),
    }


@pytest.mark.slow
def test_ps5_the_record_is_written_and_shown_beside_the_grading_run(ps5_namespace, tmp_path, monkeypatch, capsys):
    from course.run_record import read_run_record

    monkeypatch.chdir(tmp_path)
    student = _ps5_run(
        ["roc_plot", "run_record", "student_run"], _ps5_clip_namespace(ps5_namespace, tmp_path, grading=False)
    )
    record = read_run_record(tmp_path / "faces_in_motion.run.json")
    evaluation = record["evaluation"]
    assert record["window"]["chosen"] == 9 and evaluation["window"] == 9, f"expected window 9, found {record['window']}"
    assert evaluation["faces_lost"] == 1 and evaluation["frames_with_face"] == 55, f"found {evaluation}"
    low, high = evaluation["difference_interval_95"]
    assert low <= evaluation["auc_smoothed"] - evaluation["auc_raw"] <= high, f"found {evaluation}"
    assert len(record["frames"]["smile"]) == 60 and record["frames"]["smile"][20] is None, "NaN is written as null"
    assert record["model_2"]["file"] == "model_2.keras" and "While grading" in capsys.readouterr().out
    assert not any(isinstance(x, pd.DataFrame) for x in student["shown"]), "nothing shown beside a student's run"

    graded = _ps5_clip_namespace(ps5_namespace, tmp_path, grading=True)
    graded.update(window=5, evaluation=student["evaluation"])  # what the evaluation cell defines (it ran above)
    _ps5_run(["run_record", "student_run"], graded)
    assert (tmp_path / "autograde_outputs" / "faces_in_motion.run.json").is_file()
    table = next(x for x in graded["shown"] if isinstance(x, pd.DataFrame))
    assert list(table.columns) == ["student's own run", "grading run"], f"found {list(table.columns)}"
    assert table.loc["frames analysed"].tolist() == ["60 (every 1)", "30 (every 2)"], f"found {table}"
    assert table.loc["window chosen on the tuning clip"].tolist() == ["9", "5"], f"found {table}"
    assert "could not be shown" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "No run record (faces_in_motion.run.json) was handed in"),
        ("{broken", "could not be shown: RunRecordError"),
        (
            json.dumps(
                {"schema": "expression-lab/run-record/1", "assignment": "ps5_faces_in_motion", "frames": [1, 2]}
            ),
            "could not be shown: AttributeError",
        ),
    ],
    ids=["missing", "not-json", "frames-not-an-object"],
)
def test_ps5_a_missing_or_broken_record_is_one_line_for_the_grader(
    ps5_namespace, tmp_path, monkeypatch, capsys, content, expected
):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / "faces_in_motion.run.json").write_text(content)
    ns = _ps5_clip_namespace(ps5_namespace, tmp_path, grading=True)
    _ps5_run(["run_record", "student_run"], {**ns, "window": 5, "evaluation": None})
    captured = capsys.readouterr()
    assert expected in captured.out and not captured.err, f"expected {expected!r}, found {captured}"


# ---------------------------------------------------------------- the notebook as a whole


def test_ps5_every_test_cell_checks_in_public_and_every_assert_says_what_was_expected():
    nb = json.loads(PS5.read_text())
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] != "code" or not meta.get("grade"):
            continue
        source = "".join(cell["source"])
        public = source.split(PS5_HIDDEN)[0]
        assert [n for n in ast.walk(ast.parse(public)) if isinstance(n, ast.Assert)], (
            f"{meta['grade_id']}: expected a public check before the hidden tests, found none"
        )
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Assert):
                message = ast.unparse(node.msg) if node.msg is not None else ""
                assert "expected" in message, (
                    f"{meta['grade_id']} line {node.lineno}: the assert says no expected value"
                )


def test_ps5_manual_answers_carry_a_rubric_and_the_notebook_ends_with_the_checklist():
    nb = json.loads(PS5.read_text())
    graded = [c["metadata"]["nbgrader"] for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] == "markdown" and meta.get("grade"):
            assert "Rubric" in "".join(cell["source"]), f"{meta['grade_id']}: expected a rubric, found none"
    total = sum(m["points"] for m in graded)
    assert f"**{total:g} points**" in "".join(nb["cells"][0]["source"]), f"expected {total:g} points in the title"
    last = "".join(nb["cells"][-1]["source"])
    assert "Before you submit" in last and "faces_in_motion.run.json" in last, f"found {last[:200]!r}"


def test_ps5_the_window_is_chosen_on_the_tuning_clip_not_on_the_evaluated_one():
    """The locked cells choose WINDOW from the tuning clip's AUCs; the evaluated clip is scored once, raw vs WINDOW."""
    cells = sources_by_grade_id(PS5)
    assert "write_clip(" in cells["tuning"] and "WINDOW = max(auc_tuning" in cells["tuning"]
    assert "for _w in" not in cells["roc_plot"] and "WINDOW" in cells["roc_plot"], (
        "expected the evaluated clip scored at the chosen window only, found a loop over windows"
    )
