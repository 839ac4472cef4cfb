"""LiveEmotion's kernel side without a browser: frame decoding, bad frames, no face, smoothing, saving.

The browser half (camera, drawing, timings) is tested in ``tests/test_live_emotion_browser.py``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from widgets.live_emotion import NO_FACE, LiveEmotion, decode_frame, smooth_probabilities  # noqa: E402


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((48, 48, 1))
    h = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Activation("relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(h))


def _frame(frame_id: int, t_ms: float, width: int = 64, height: int = 48, value: int = 100):
    content = {"kind": "frame", "id": frame_id, "width": width, "height": height, "t": t_ms}
    return content, [np.full(width * height, value, np.uint8).tobytes()]


def test_smoothing_is_a_time_weighted_moving_average():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert np.array_equal(smooth_probabilities(None, b, 0.1, 0.3), b), "the first frame is taken as it is"
    assert np.array_equal(smooth_probabilities(a, b, 0.1, 0.0), b), "tau = 0: no smoothing"
    one_tau = smooth_probabilities(a, b, 0.3, 0.3)
    assert one_tau[1] == pytest.approx(1 - math.exp(-1)), f"after one time constant 63 % of the step, got {one_tau}"
    assert one_tau.sum() == pytest.approx(1.0)
    # two steps of 0.1 s land where one step of 0.2 s does: the frame rate does not change the smoothing
    two = smooth_probabilities(smooth_probabilities(a, b, 0.1, 0.3), b, 0.1, 0.3)
    assert np.allclose(two, smooth_probabilities(a, b, 0.2, 0.3)), f"{two} vs one 0.2 s step"
    assert np.array_equal(smooth_probabilities(a, b, -5.0, 0.3), a), "a negative gap counts as no time"


def test_decode_frame_checks_size_and_bytes():
    content, buffers = _frame(1, 0.0, width=4, height=3)
    assert decode_frame(content, buffers).shape == (3, 4)
    with pytest.raises(ValueError, match="4 × 3 = 12 grey bytes, got 11"):
        decode_frame(content, [buffers[0][:-1]])
    with pytest.raises(ValueError, match="no pixel buffer"):
        decode_frame(content, [])
    with pytest.raises(ValueError, match="positive integer width and height"):
        decode_frame(dict(content, width="4"), buffers)


def test_bad_frames_are_counted_and_answered_with_an_error(model):
    widget = LiveEmotion(model, detector=lambda grey: (8, 4, 40, 40))
    content, buffers = _frame(7, 0.0)
    reply = widget.handle_frame(content, [buffers[0][:100]])
    assert reply["id"] == 7 and not reply["face"] and reply["probabilities"] is None
    assert "frame 7" in reply["error"] and "ignored" in reply["error"], reply["error"]
    assert (widget.bad_frames, widget.faces) == (1, 0)
    good = widget.handle_frame(*_frame(8, 50.0))
    assert good["error"] is None and good["face"], "a good frame after a bad one is analysed"


def test_a_face_gives_box_and_bars_and_no_face_keeps_the_bars(model):
    boxes = iter([(8, 4, 40, 40), None])
    widget = LiveEmotion(model, detector=lambda grey: next(boxes), tau=0.3)
    first = widget.handle_frame(*_frame(1, 0.0))
    assert first["face"] and first["box"] == [8, 4, 40, 40]
    assert len(first["probabilities"]) == 7 and sum(first["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert first["label"] == widget.class_names[int(np.argmax(first["probabilities"]))]
    face = widget._last_crop[None, :, :, None].astype(np.float32)  # what the model was given
    raw = model.predict_on_batch(face)[0]
    assert np.allclose(first["probabilities"], raw, atol=1e-5), "the compiled call computes what the model does"
    before = widget.probabilities.copy()
    second = widget.handle_frame(*_frame(2, 100.0, value=30))
    assert not second["face"] and second["box"] is None and second["probabilities"] is None
    assert second["label"] == NO_FACE and widget.label == NO_FACE and widget.no_face_frames == 1
    assert np.array_equal(widget.probabilities, before), "no face: the bars are not updated"


def test_detector_failures_are_reported_not_lost(model):
    def broken(grey):
        raise RuntimeError("cascade exploded")

    widget = LiveEmotion(model, detector=broken)
    reply = widget.handle_frame(*_frame(3, 0.0))
    assert reply["error"] == "frame 3: RuntimeError: cascade exploded" and widget.errors == 1


def test_models_that_do_not_take_grey_faces_are_refused():
    colour = keras.Sequential([keras.Input((48, 48, 3)), keras.layers.Flatten(), keras.layers.Dense(7)])
    with pytest.raises(ValueError, match=r"\(N, S, S, 1\), got input shape \(None, 48, 48, 3\)"):
        LiveEmotion(colour)
    five = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match="5 outputs"):
        LiveEmotion(five)


@pytest.mark.parametrize(
    "option, expected",
    [
        ({"tau": float("nan")}, "tau must be a number of seconds ≥ 0, got nan"),  # regression: NaN bars, no error
        ({"tau": -1.0}, "tau must be a number of seconds ≥ 0"),
        ({"frame_width": -5}, "frame_width must be a positive number of pixels, got -5"),
        ({"max_fps": 0}, "max_fps must be a number of frames a second > 0, got 0"),
    ],
)
def test_options_out_of_range_are_refused_up_front(model, option, expected):
    with pytest.raises(ValueError, match=re.escape(expected)):
        LiveEmotion(model, **option)


def test_nothing_is_saved_until_save_and_then_frame_and_face(model, tmp_path):
    folder = tmp_path / "frames"
    widget = LiveEmotion(model, detector=lambda grey: (8, 4, 40, 40))
    assert widget.save() == [] and "folder" in widget.message
    widget.save_folder = str(folder)
    assert widget.save() == [] and "no frame" in widget.message
    widget.handle_frame(*_frame(1, 0.0))
    assert not folder.exists(), "analysing frames writes nothing"
    widget._on_message(widget, {"kind": "save"}, [])  # the Save button's message
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 and names[0].endswith("_face.png") and names[1].endswith("_frame.png"), names
    assert widget.message.startswith("Saved ")


def test_save_writes_to_the_folder_sent_with_the_request(model, tmp_path):
    # ipywidgets holds a state update back while the kernel is busy, not a custom message: the page sends the folder
    # typed in its box with "save", so the kernel never saves into the folder the box held before
    widget = LiveEmotion(model, detector=lambda grey: (8, 4, 40, 40), save_folder=str(tmp_path / "before"))
    widget.handle_frame(*_frame(1, 0.0))
    widget._on_message(widget, {"kind": "save", "folder": str(tmp_path / "typed")}, [])
    assert not (tmp_path / "before").exists() and len(list((tmp_path / "typed").iterdir())) == 2, (
        f"expected the frame and face in the typed folder, found {sorted(p.name for p in tmp_path.rglob('*.png'))}"
    )
    widget._on_message(widget, {"kind": "save", "folder": "  "}, [])  # an empty box: the widget's own folder
    assert len(list((tmp_path / "before").iterdir())) == 2, (
        "expected an empty folder in the request to mean save_folder"
    )


def test_frames_are_smoothed_by_their_capture_times(model):
    widget = LiveEmotion(model, detector=lambda grey: (8, 4, 40, 40), tau=0.3)
    first, second = np.zeros(64 * 48, np.uint8).tobytes(), np.full(64 * 48, 255, np.uint8).tobytes()
    content = {"kind": "frame", "width": 64, "height": 48}
    p1 = np.array(widget.handle_frame(dict(content, id=1, t=1000.0), [first])["probabilities"])
    p2_smoothed = np.array(widget.handle_frame(dict(content, id=2, t=1300.0), [second])["probabilities"])
    p2 = model.predict_on_batch(widget._last_crop[None, :, :, None].astype(np.float32))[0]
    assert np.abs(p1 - p2).max() > 1e-3, "the two faces must give different probabilities for this test"
    expected = p1 + (1 - math.exp(-1)) * (p2 - p1)  # 300 ms apart, tau 0.3 s
    assert np.allclose(p2_smoothed, expected, atol=1e-5), f"expected {expected}, got {p2_smoothed}"
