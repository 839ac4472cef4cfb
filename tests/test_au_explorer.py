"""The AU face explorer: sliders and presets deform the face, re-render the image and update the models' bars."""

from __future__ import annotations

import re

import numpy as np
import pytest

from data_loaders.synthetic import AUS, EMOTION_AUS, make_face
from data_loaders.synthetic.samples import render_face
from widgets.au_explorer import AUExplorer, export_html


class _Probe:
    """A stand-in Keras model: remembers its inputs and answers with a function of the image."""

    def __init__(self, n_out):
        self.n_out, self.seen = n_out, []

    def __call__(self, x, training=False):
        self.seen.append(np.asarray(x))
        mean = float(np.mean(x))
        return np.full((1, self.n_out), mean, np.float32) + np.linspace(0, 0.1, self.n_out, dtype=np.float32)


@pytest.fixture(scope="module")
def face():
    neutral = make_face()
    basis = np.stack([make_face(aus=np.eye(len(AUS), dtype=np.float32)[k]) - neutral for k in range(len(AUS))])
    presets = {e: {au: "ABCDE".index(letter) + 1 for au, letter in EMOTION_AUS[e].items()} for e in EMOTION_AUS}
    return neutral, basis, presets


def _explorer(face, **kw):
    neutral, basis, presets = face
    return AUExplorer(neutral, basis, AUS, render=lambda a: render_face(a / 5), presets=presets, **kw)


def test_a_slider_moves_the_face_re_renders_and_updates_both_bar_charts(face):
    au_model, emotion_model = _Probe(len(AUS)), _Probe(7)
    explorer = _explorer(face, au_model=au_model, emotion_model=emotion_model, au_thresholds=np.full(len(AUS), 0.3))
    assert np.allclose(explorer.face.data[0].x, face[0][:, 0]), "all sliders at 0: the neutral face"
    image_before = np.array(explorer.image.data[0].z)
    bars_before = list(explorer.emotion_bars.data[0].y)
    explorer.sliders[AUS.index("AU26")].value = 5  # the jaw drops
    points = np.stack([explorer.face.data[0].x, explorer.face.data[0].y, explorer.face.data[0].z], axis=1)
    moved = np.linalg.norm(points - face[0], axis=1) * 1000
    assert moved.max() > 5, f"expected the jaw to move several mm, found {moved.max():.1f} mm"
    assert np.allclose(explorer.face.data[0].marker.color, moved, atol=1e-3), "colour = mm moved from neutral"
    assert not np.array_equal(np.array(explorer.image.data[0].z), image_before), "the 48×48 image is re-rendered"
    assert list(explorer.emotion_bars.data[0].y) != bars_before, "the emotion bars follow the new image"
    assert au_model.seen[-1].shape == (1, 48, 48, 1) and 0 <= au_model.seen[-1].min() <= au_model.seen[-1].max() <= 1
    assert len(explorer.au_bars.data[0].y) == len(AUS) and "AU26 E" in explorer.status.value


def test_presets_set_the_prototype_and_redraw_once(face):
    au_model = _Probe(len(AUS))
    explorer = _explorer(face, au_model=au_model)
    calls = len(au_model.seen)
    explorer.preset.value = "Happy"
    assert len(au_model.seen) == calls + 1, "one redraw per preset, not one per slider"
    values = dict(zip(AUS, explorer.intensities))
    assert values["AU6"] == 3 and values["AU12"] == 4 and sum(values.values()) == 7, values
    explorer.preset.value = "Neutral"
    assert not explorer.intensities.any()
    with pytest.raises(KeyError, match="no slider for"):
        explorer.set_aus({"AU99": 3})


def test_without_models_it_still_draws_and_bad_shapes_are_refused(face):
    neutral, basis, _ = face
    explorer = _explorer(face)
    explorer.set_aus({"AU12": 5})
    assert "no AU model" in explorer.au_bars.layout.title.text
    with pytest.raises(ValueError, match="au_basis"):
        AUExplorer(neutral, basis[:3], AUS, render=lambda a: render_face(a / 5))
    with pytest.raises(ValueError, match="thresholds"):
        AUExplorer(neutral, basis, AUS, render=lambda a: render_face(a / 5), au_thresholds=[0.5])
    # regressions: a bad preset failed only when its button was clicked, and 9 or -2 were clamped in silence
    for preset, expected in [
        ({"AU99": 3}, "no slider for 'AU99'"),
        ({"AU12": 9}, "AU12 = 9, expected an intensity 0-5"),
    ]:
        with pytest.raises(ValueError, match=re.escape(f"preset 'odd': {expected}")):
            AUExplorer(neutral, basis, AUS, render=lambda a: render_face(a / 5), presets={"odd": preset})


def test_html_export_is_self_contained(face, tmp_path):
    neutral, basis, _ = face
    page = _explorer(face).export_html(tmp_path / "au.html")
    text = page.read_text()
    assert "Plotly" in text and "AU26" in text and "<script src" not in text, "plotly.js inline, nothing fetched"
    assert '"Happy": {"AU6": 3, "AU12": 4}' in text
    with pytest.raises(ValueError, match="expected neutral"):
        export_html(neutral, basis[:2], AUS, tmp_path / "bad.html")
