"""Model exports (``course/export.py``, ``python -m course export``): ONNX and SavedModel exports of a small model
trained here answer as Keras does on the kit's synthetic faces (max |Δp| ≤ 1e-4, checked by the export itself and
again here), augmentation layers are left out of the exports, TensorFlow.js is refused with its reason, and models
that cannot be exported (a Lambda layer, a custom class, the wrong shape) get an error naming why."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import SHARED_CACHE
from course.export import (
    ONNX_INPUT,
    ONNX_OUTPUT,
    PARITY_TOLERANCE,
    TFJS_UNAVAILABLE,
    ExportUnavailable,
    export_model,
    keras_probabilities,
    load_export,
    parity_faces,
)
from data_loaders import EMOTIONS


@pytest.fixture
def synthetic_faces(monkeypatch):
    """The kit's synthetic FER2013 (generated once, in the shared cache) as the default data of the parity check."""
    monkeypatch.setenv("FER2013_PATH", "synthetic")
    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(SHARED_CACHE))


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """``(path, model)``: a small CNN shaped like the kit's fallback ``model_2`` (augmentation layers inside the
    model, convolutions with batch norms whose statistics are not the identity, dropout, softmax), saved as
    ``.keras``. Its last layer is fitted in closed form (ridge regression of scaled one-hot targets on the
    convolutional features of 1,024 synthetic training faces, about a second), so that its probabilities are peaked
    and its top labels varied: a check on near-uniform outputs would prove little."""
    import keras
    from keras import layers

    from data_loaders import load_fer2013

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPRESSION_LAB_CACHE", str(SHARED_CACHE))
        train = load_fer2013("synthetic", usage="Training").sample(1024)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((48, 48, 1)),
            layers.RandomFlip("horizontal"),
            layers.RandomTranslation(0.05, 0.05),
            layers.Conv2D(16, 5, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(len(EMOTIONS), activation="softmax"),
        ],
        name="small_model_2",
    )
    rng = np.random.default_rng(0)
    for bn in [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]:
        c = bn.gamma.shape[0]
        bn.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c), rng.uniform(0.5, 2, c)])
    features = keras.Model(model.inputs, model.layers[-2].output).predict(train.images[..., None] / 255, verbose=0)
    features = np.hstack([features, np.ones((len(features), 1))])
    target = 10 * (np.eye(len(EMOTIONS))[train.labels] - 1 / len(EMOTIONS))
    weights = np.linalg.solve(features.T @ features + np.eye(features.shape[1]), features.T @ target)
    model.layers[-1].set_weights([weights[:-1].astype(np.float32), weights[-1].astype(np.float32)])
    path = tmp_path_factory.mktemp("export") / "small.keras"
    model.save(path)
    return path, model


def test_parity_faces_are_the_synthetic_public_test_faces(synthetic_faces):
    faces, source = parity_faces(count=32)
    assert faces.shape == (32, 48, 48, 1) and faces.dtype == np.float32, (
        f"expected float32 (32, 48, 48, 1) faces, found {faces.dtype} {faces.shape}"
    )
    assert 0 <= faces.min() and faces.max() <= 1 and faces.std() > 0.05, (
        f"expected faces scaled to [0, 1] with contrast; found min {faces.min()}, max {faces.max()}, std {faces.std()}"
    )
    assert "synthetic" in source and "PublicTest" in source, f"expected the source named; found {source!r}"
    resized, _ = parity_faces(count=4, side=64)
    assert resized.shape == (4, 64, 64, 1), f"expected faces resized to the model's side 64; found {resized.shape}"


@pytest.mark.parametrize("fmt", ["onnx", "savedmodel"])
def test_export_answers_as_keras_on_synthetic_faces(small_model, synthetic_faces, tmp_path, capsys, fmt):
    """The CLI exports, checks and prints the parity; loaded again here, the export matches Keras to 1e-4 on faces
    where the model is confident, with the same top labels."""
    from course.__main__ import main

    path, model = small_model
    out = tmp_path / ("small.onnx" if fmt == "onnx" else "small_savedmodel")
    status = main(["export", str(path), "--format", fmt, "--out", str(out), "--json"])
    printed = capsys.readouterr()
    assert status == 0, f"expected exit status 0, found {status}; stderr {printed.err[-2000:]}"
    result = json.loads(printed.out)
    parity = result["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= PARITY_TOLERANCE and parity["faces"] == 256, (
        f"expected the export's own check passed on 256 faces (max |Δp| ≤ {PARITY_TOLERANCE}); found {parity}"
    )
    assert result["timing"]["ms_per_face"] > 0 and result["size_bytes"] > 0, f"expected timed and sized: {result}"

    faces, _ = parity_faces(count=256)
    expected = keras_probabilities(model, faces)
    top = expected.max(axis=1)
    labels = len(set(expected.argmax(axis=1).tolist()))
    assert np.median(top) > 0.4 and labels >= 4, (
        f"expected a model with peaked probabilities (median top p > 0.4) and varied labels (≥ 4 of 7); found "
        f"{np.median(top):.3f} and {labels}"
    )
    found = load_export(out, fmt)(faces)
    diff = float(np.abs(found - expected).max())
    assert diff <= PARITY_TOLERANCE, f"expected max |Δp| ≤ {PARITY_TOLERANCE} against Keras, found {diff:.2e}"
    same = (found.argmax(1) == expected.argmax(1)).mean()
    assert same == 1.0, f"expected the same top label for every face, found {same:.1%}"
    again = load_export(out, fmt)(faces[:8])
    assert np.array_equal(again, found[:8]), "expected the export deterministic: augmentation layers left out"


def test_onnx_file_names_its_input_output_and_classes(small_model, synthetic_faces, tmp_path):
    import onnx

    path, _ = small_model
    result = export_model(path, "onnx", out=tmp_path / "m.onnx")
    proto = onnx.load(str(result.path))
    inputs, outputs = [i.name for i in proto.graph.input], [o.name for o in proto.graph.output]
    assert (inputs, outputs) == ([ONNX_INPUT], [ONNX_OUTPUT]), (
        f"expected input {ONNX_INPUT!r} and output {ONNX_OUTPUT!r}; found {inputs} and {outputs}"
    )
    metadata = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(metadata.get("classes", "[]")) == list(EMOTIONS), (
        f"expected the FER2013 classes in the metadata; found {metadata}"
    )
    ops = sorted({node.op_type for node in proto.graph.node})
    random = [op for op in ops if "Random" in op]
    assert not random, f"expected no random (augmentation) ops in the exported graph; found {random} in {ops}"


def test_tfjs_is_refused_with_the_reason_and_onnx_named(small_model, capsys):
    from course.__main__ import main

    path, _ = small_model
    with pytest.raises(ExportUnavailable, match="tensorflowjs") as refused:
        export_model(path, "tfjs")
    assert "onnxruntime-web" in str(refused.value) and "--format onnx" in str(refused.value), (
        f"expected the alternative (ONNX in onnxruntime-web) named; found {refused.value}"
    )
    status = main(["export", str(path), "--format", "tfjs"])
    err = capsys.readouterr().err
    assert status == 2 and TFJS_UNAVAILABLE in err, f"expected exit status 2 and the reason; found {status} {err}"


def test_an_existing_output_is_kept_unless_overwrite(small_model, synthetic_faces, tmp_path):
    path, _ = small_model
    out = tmp_path / "taken.onnx"
    out.write_text("someone's file")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_model(path, "onnx", out=out)
    assert out.read_text() == "someone's file", "expected the existing file untouched"


def test_overwrite_never_removes_the_model_or_a_folder_that_is_not_an_export(small_model, synthetic_faces, tmp_path):
    """Regression: ``--overwrite`` removed whatever folder ``--out`` named (the one holding the model and the
    instructor's notes included) and let an ONNX export replace the model file itself."""
    path, _ = small_model
    project = tmp_path / "project"
    project.mkdir()
    model = project / "model_2.keras"
    model.write_bytes(path.read_bytes())
    (project / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="that is the model .* or a folder holding it"):
        export_model(model, "savedmodel", out=project, overwrite=True)
    with pytest.raises(ValueError, match="that is the model"):
        export_model(model, "onnx", out=model, overwrite=True)
    other = tmp_path / "results"
    other.mkdir()
    (other / "table.csv").write_text("a,b")
    with pytest.raises(FileExistsError, match="not a SavedModel folder"):
        export_model(model, "savedmodel", out=other, overwrite=True)
    with pytest.raises(FileExistsError, match="is not a file"):
        export_model(model, "onnx", out=other, overwrite=True)
    assert model.read_bytes() == path.read_bytes() and (project / "notes.txt").read_text() == "keep me", (
        "expected the model and the notes untouched"
    )
    assert (other / "table.csv").is_file(), "expected the folder that is not an export untouched"


def test_an_export_that_differs_from_keras_is_removed(small_model, synthetic_faces, tmp_path, monkeypatch):
    """A runtime answering differently (here: a wrapped runner adding 1e-3) fails the export and leaves no file."""
    from course import export

    real = export.load_export

    def off_by_a_little(path, fmt):
        run = real(path, fmt)
        return lambda x: run(x) + 1e-3

    monkeypatch.setattr(export, "load_export", off_by_a_little)
    out = tmp_path / "off.onnx"
    with pytest.raises(ValueError, match=r"differs from Keras by up to 1\.0\de-03"):
        export_model(path := small_model[0], "onnx", out=out)
    assert not out.exists(), f"expected the failed export of {path.name} removed; found {out}"


# --------------------------------------------------------------------------------------- models that cannot go
def test_a_lambda_layer_is_refused_by_name(tmp_path):
    import keras
    from keras import layers

    inputs = keras.Input((48, 48, 1))
    x = layers.Lambda(lambda t: t * 2.0)(inputs)
    model = keras.Model(inputs, layers.Dense(7, activation="softmax")(layers.Flatten()(x)))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="cannot be exported: it holds a Lambda layer"):
        export_model(tmp_path / "lambda.keras", "onnx")
    assert not (tmp_path / "lambda.onnx").exists(), "expected nothing written for a refused model"


def test_a_custom_layer_is_refused_by_name(tmp_path):
    import keras
    from keras import layers

    @keras.saving.register_keras_serializable(package="student")
    class Doubler(layers.Layer):
        def call(self, x):
            return x * 2.0

    inputs = keras.Input((48, 48, 1))
    model = keras.Model(inputs, layers.Dense(7, activation="softmax")(layers.Flatten()(Doubler()(inputs))))
    model.save(tmp_path / "custom.keras")
    del keras.saving.get_custom_objects()["student>Doubler"]  # as in a fresh process that never defined it
    with pytest.raises(ValueError, match="cannot be exported: it uses .*Doubler.*not a built-in Keras"):
        export_model(tmp_path / "custom.keras", "savedmodel")


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((48, 48, 3), r"input shape \(None, S, S, 1\).*found \[\(None, 48, 48, 3\)\]"),
        ((2304,), r"found \[\(None, 2304\)\]"),
    ],
)
def test_a_model_that_does_not_take_grey_faces_is_refused(tmp_path, shape, expected):
    import keras
    from keras import layers

    inputs = keras.Input(shape)
    model = keras.Model(inputs, layers.Dense(7, activation="softmax")(layers.Flatten()(inputs)))
    model.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match=expected):
        export_model(tmp_path / "other.keras", "onnx")


def test_unknown_files_and_formats(tmp_path, capsys):
    from course.__main__ import main

    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.keras: cannot be exported: it does not load with safe_mode=True"):
        export_model(tmp_path / "junk.keras", "onnx")
    with pytest.raises(ValueError, match="expected one of onnx, savedmodel, tfjs"):
        export_model(tmp_path / "junk.keras", "coreml")
    status = main(["export", str(tmp_path / "missing.keras"), "--format", "onnx"])
    err = capsys.readouterr().err
    assert status == 2 and "no such model file" in err, f"expected status 2 and 'no such model file'; found {err}"
