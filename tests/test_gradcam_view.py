"""GradCamView without a browser: what the kernel sends for a face, when it calls the explanation, and how it reports
an explanation that fails. The front end runs in ``tests/test_browser.py`` (assignment 6)."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from data_loaders.emotions import EMOTIONS
from widgets import GradCamView, gradcam_view
from widgets.gradcam_view import CACHE_FACES, model_inputs

HERE = Path(gradcam_view.__file__).parent

PROBS = np.array([0.05, 0.05, 0.1, 0.5, 0.1, 0.1, 0.1], np.float32)


def _faces(n: int = 5) -> np.ndarray:
    return (np.arange(n * 48 * 48).reshape(n, 48, 48) * 7 % 256).astype(np.uint8)


def _model(x, training=False):
    """Class 3 everywhere, except faces whose first pixel is bright: class 0."""
    p = np.tile(PROBS, (len(x), 1))
    p[np.asarray(x)[:, 0, 0, 0] > 0.5] = PROBS[[3, 1, 2, 0, 4, 5, 6]]
    return p


class Explain:
    """The face scaled by (class + 1) / 7: a known map per class; records its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, model, images, class_index):
        self.calls.append((np.asarray(images).copy(), np.asarray(class_index).copy()))
        k = np.asarray(class_index, float)[:, None, None]
        return np.asarray(images)[..., 0] * (k + 1) / 7


def _decode(text: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.uint8).reshape(shape)


def test_a_face_its_bars_and_seven_maps_from_one_call():
    faces, explain = _faces(), Explain()
    view = GradCamView(faces, _model, explain=explain, labels=[3, 0, 1, 2, 4])
    assert view.count == 5 and view.index == 0 and view.side == 48
    assert view.class_names == list(EMOTIONS)
    assert view.selected == 3, "the predicted class of the first face is chosen first"
    assert np.allclose(view.probabilities, PROBS) and view.true_label == 3
    assert len(explain.calls) == 1, f"expected one call for the 7 maps, found {len(explain.calls)}"
    images, classes = explain.calls[0]
    assert images.shape == (7, 48, 48, 1) and images.dtype == np.float32 and images.max() <= 1.0
    assert np.array_equal(classes, np.arange(7))
    assert np.array_equal(_decode(view.face, (48, 48)), faces[0]), "the face is sent as its grey levels"
    maps = _decode(view.heatmaps, (7, 48, 48)).astype(float)
    expected = np.clip(faces[0] / 255.0 * (np.arange(7)[:, None, None] + 1) / 7, 0, 1) * 255
    assert np.abs(maps - expected).max() <= 1, "each class's map as uint8 0-255, in class order"
    assert view.status == "" and view.error is None and len(view.timings_ms) == 1


def test_another_face_calls_again_and_a_face_seen_before_is_cached():
    faces, explain = _faces(), Explain()
    view = GradCamView(faces, _model, explain=explain)
    view.index = 2
    assert len(explain.calls) == 2 and np.array_equal(_decode(view.face, (48, 48)), faces[2])
    view.next()
    assert view.index == 3 and len(explain.calls) == 3
    view.index = 0
    assert len(explain.calls) == 3, "face 0's maps are cached"
    view.index = 4
    view.next()
    assert view.index == 0, "after the last face, the first"
    assert view.true_label == -1, "no labels given"


def test_probabilities_come_from_one_batched_call_per_256_faces():
    calls = []

    def model(x, training=False):
        calls.append(len(x))
        return _model(x)

    bright = _faces(300)
    bright[7, 0, 0] = 255
    view = GradCamView(bright, model, explain=Explain())
    assert calls == [256, 44], f"expected the probabilities in two batched calls, found {calls}"
    view.index = 7
    assert int(np.argmax(view.probabilities)) == 0


def test_an_explanation_that_fails_is_reported_and_the_face_still_shows():
    def broken(model, images, class_index):
        raise RuntimeError("no gradient")

    view = GradCamView(_faces(2), _model, explain=broken)
    assert view.heatmaps == "" and "explain failed: RuntimeError: no gradient" in view.status
    assert view.error == view.status and view.face, "the face and the bars still show"
    wrong = GradCamView(_faces(2), _model, explain=lambda m, x, c: np.zeros((len(x), 12, 12)))
    assert "expected explain to return (7, 48, 48) maps, got shape (7, 12, 12)" in wrong.status

    def nan_for_fear(model, images, class_index):  # regression: drawn as a blank map with an empty status line
        maps = np.zeros((len(images), 48, 48))
        maps[2] = np.nan
        return maps

    blank = GradCamView(_faces(2), _model, explain=nan_for_fear)
    assert "explain failed: ValueError: explain returned NaN or infinite values in the maps of Fear" in blank.status, (
        f"expected the status to name the class with NaN values, found {blank.status!r}"
    )


def test_the_cache_keeps_the_last_faces_only():
    explain = Explain()
    view = GradCamView(np.zeros((CACHE_FACES + 2, 48, 48), np.uint8), _model, explain=explain)
    for i in range(1, CACHE_FACES + 2):
        view.index = i
    view.index = 0  # dropped from the cache: explained again
    assert len(explain.calls) == CACHE_FACES + 3


def test_inputs_like_the_models_take_them():
    x = model_inputs(np.full((2, 48, 48), 255, np.uint8))
    assert x.shape == (2, 48, 48, 1) and x.dtype == np.float32 and np.allclose(x, 1.0)
    floats = np.random.default_rng(0).random((3, 48, 48, 1)).astype(np.float32)
    assert np.array_equal(model_inputs(floats), floats)
    for bad in (np.zeros((48, 48)), np.zeros((0, 48, 48)), np.zeros((2, 48, 48, 3))):
        with pytest.raises(ValueError, match="expected images"):
            model_inputs(bad)
    with pytest.raises(ValueError, match="expected 2 labels"):
        GradCamView(_faces(2), _model, explain=Explain(), labels=[1, 2, 3])
    with pytest.raises(ValueError, match=r"expected the model to give \(2, 7\) probabilities"):
        GradCamView(_faces(2), lambda x, training=False: np.ones((len(x), 3)), explain=Explain())
    with pytest.raises(IndexError):
        GradCamView(_faces(2), _model, explain=Explain()).show(5)


def test_the_front_end_files_are_beside_the_module():
    js = (HERE / "gradcam_view.js").read_text()
    assert "export default" in js
    assert (HERE / "gradcam_view.css").is_file()
    for trait in ("face", "heatmaps", "selected", "probabilities", "index", "count", "class_names", "status"):
        assert f'"{trait}"' in js, f"the front end reads {trait}"
