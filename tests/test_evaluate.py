"""course evaluate: metrics of a saved model on a FER2013 file, and the peer's 64×64 [-1, 1] contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import REPO, real_fer2013, requires_real_data
from course.__main__ import main
from course.evaluate import evaluate_model, model_inputs
from data_loaders import load_fer2013

PEER = REPO.parent / "shared" / "peers" / "mini_xception" / "fer2013_mini_xception.hdf5"


@pytest.fixture
def brightness_model(tmp_path):
    """A tiny model that predicts Happy (3) for bright faces and Angry (0) for dark ones."""
    import keras

    inputs = keras.Input((48, 48, 1))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)
    logits = keras.layers.Dense(7)(mean)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    weights = np.zeros((1, 7), np.float32)
    weights[0, 3], weights[0, 0] = 40.0, -40.0
    bias = np.zeros(7, np.float32)
    bias[3], bias[0] = -20.0, 20.0
    model.layers[-2].set_weights([weights, bias])
    path = tmp_path / "bright.keras"
    model.save(path)
    return path


@pytest.fixture
def bright_dark_csv(tmp_path):
    from conftest import write_fer_csv

    images = np.stack([np.full((48, 48), v, np.uint8) for v in (250, 240, 10, 20, 230)])
    labels = [3, 3, 0, 0, 0]  # the last one is a bright Angry face: one error
    return write_fer_csv(tmp_path / "fer2013.csv", images, labels, ["PublicTest"] * 5)


def test_evaluate_reports_accuracy_per_class_metrics_and_confusion(brightness_model, bright_dark_csv):
    result = evaluate_model(brightness_model, load_fer2013(bright_dark_csv), "PublicTest")
    assert result.n_images == 5 and result.accuracy == pytest.approx(0.8)
    assert result.confusion[3][3] == 2 and result.confusion[0][0] == 2 and result.confusion[0][3] == 1
    assert result.recall[0] == pytest.approx(2 / 3) and result.precision[3] == pytest.approx(2 / 3)
    assert result.support[:4] == [3, 0, 0, 2]


def test_evaluate_cli_json(brightness_model, bright_dark_csv, capsys):
    assert main(["evaluate", str(brightness_model), "--data", str(bright_dark_csv), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["usage"] == "PublicTest" and out["accuracy"] == pytest.approx(0.8)
    assert len(out["confusion"]) == 7 and out["class_names"][3] == "Happy"


def test_evaluate_cli_missing_model_is_a_clear_error(bright_dark_csv, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.keras"), "--data", str(bright_dark_csv)]) == 2
    assert "nope.keras" in capsys.readouterr().err


def test_evaluate_cli_names_a_file_that_is_not_a_model_and_a_size_the_model_does_not_take(
    brightness_model, bright_dark_csv, tmp_path, capsys
):
    """Regressions: a non-HDF5 .h5 ended in an OSError traceback, a broken .keras said "File not found", and a
    model of another input size failed inside Keras naming neither the file nor --input-size."""
    for name in ("peer.h5", "broken.keras"):
        (tmp_path / name).write_text("not a model")
        assert main(["evaluate", str(tmp_path / name), "--data", str(bright_dark_csv)]) == 2
        assert f"{name}: not a Keras model file" in capsys.readouterr().err
    assert main(["evaluate", str(brightness_model), "--data", str(bright_dark_csv), "--input-size", "64"]) == 2
    err = capsys.readouterr().err
    assert "bright.keras takes inputs (None, 48, 48, 1); expected (None, 64, 64, 1)" in err, err
    assert main(["evaluate", str(brightness_model), "--data", str(bright_dark_csv), "--input-size", "0"]) == 2
    assert "input_size must be a positive number of pixels, got 0" in capsys.readouterr().err


def test_model_inputs_scalings():
    faces = np.array([np.zeros((48, 48)), np.full((48, 48), 255)], np.uint8)
    assert model_inputs(faces).max() == 1.0 and model_inputs(faces).shape == (2, 48, 48, 1)
    peer = model_inputs(faces, 64, "symmetric")
    assert peer.shape == (2, 64, 64, 1) and peer.min() == -1.0 and peer.max() == 1.0


@requires_real_data
@pytest.mark.skipif(not PEER.exists(), reason="the mini-Xception peer is not in ../shared")
def test_the_peer_reaches_its_published_accuracy_with_its_input_contract():
    data = load_fer2013(real_fer2013())
    result = evaluate_model(PEER, data, "PublicTest", input_size=64, scale="symmetric")
    assert 0.62 < result.accuracy < 0.68, f"peer accuracy {result.accuracy:.3f}; expected about 0.646"


def test_flip_tta_averages_the_face_and_its_mirror_image(tmp_path):
    """A model that looks only at the left half: with flip TTA it sees both halves, and the wrapper reloads."""
    import keras

    from course.evaluate import with_flip_tta

    inputs = keras.Input((48, 48, 1))
    left = keras.layers.Cropping2D(((0, 0), (0, 24)))(inputs)  # columns 0-23
    logits = keras.layers.Dense(7)(keras.layers.GlobalAveragePooling2D()(left))
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    weights = np.zeros((1, 7), np.float32)
    weights[0, 3] = 10.0
    model.layers[-2].set_weights([weights, np.zeros(7, np.float32)])
    face = np.zeros((1, 48, 48, 1), np.float32)
    face[:, :, 24:] = 1.0  # bright right half only
    plain = model.predict(face, verbose=0)
    mirrored = model.predict(face[:, :, ::-1], verbose=0)
    wrapped = with_flip_tta(model)
    assert np.allclose(wrapped.predict(face, verbose=0), (plain + mirrored) / 2, atol=1e-6)
    assert not np.allclose(plain, mirrored)
    path = tmp_path / "tta.keras"
    wrapped.save(path)
    reloaded = keras.models.load_model(path, compile=False)  # safe mode: built-in layers and ops only
    assert np.allclose(reloaded.predict(face, verbose=0), (plain + mirrored) / 2, atol=1e-6)


def test_evaluate_with_flip_tta(brightness_model, bright_dark_csv):
    result = evaluate_model(brightness_model, load_fer2013(bright_dark_csv), "PublicTest", flip_tta=True)
    assert result.accuracy == pytest.approx(0.8) and result.model.endswith("+ flip TTA")  # symmetric faces
