"""LiveEmotion in a real browser: JupyterLab + headless Chromium whose fake camera plays a video of synthetic faces.

The video (a y4m file written here) shows one synthetic face holding Happy, Surprise, Neutral and Sad for 2 s
each, in a loop. The model is a nearest-template classifier built from the very face crops the widget's
pipeline (Haar cascade, 20 % margin, 48×48) makes of the clean frames: a Keras model with fixed weights, so the
test checks the widget (camera → kernel → face → model → smoothing → bars) rather than how well some trained
model reads synthetic faces (the kit's fallback ``model_2`` reads only Happy and Surprise of these right). The
label the widget shows must follow the video's expression sequence; Pause must stop the analysis, Save must
write the frame and its face; with the camera refused the widget must say so. Screenshots go to
``$EXPRESSION_LAB_SCREENSHOTS``.

Skipped where Chromium or playwright is missing, unless ``EXPRESSION_LAB_REQUIRE_BROWSER=1`` (``.ci/run``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from conftest import REPO
from data_loaders.emotions import EMOTIONS
from lab_browser import (
    Lab,
    browser_test_marks,
    launch,
    open_notebook,
    popups,
    run_all_cells,
    synthetic_face_frames,
    write_y4m,
)

pytestmark = browser_test_marks()

SEQUENCE = [3, 5, 6, 4]  # Happy, Surprise, Neutral, Sad
HOLD_S, FPS = 2.0, 30
SHARPNESS = 40.0  # softmax temperature of the template model: confident, yet the other bars still show
LIVE_NB = """import keras
from widgets import LiveEmotion
live = LiveEmotion(keras.models.load_model("templates.keras"), tau=0.2)
live"""


def template_model(path: Path) -> Path:
    """A Keras model scoring a 48×48 face by its correlation with each expression's crop from the video (zero-mean,
    unit-norm templates; invariant to the brightness and contrast the camera path adds), softmax over 7."""
    import keras

    from widgets.live_emotion import crop_for_model, default_detector

    detect = default_detector()
    templates = []
    for frame in synthetic_face_frames(list(range(7))):
        box = detect(frame)
        assert box is not None, "the Haar cascade finds every face of the test video"
        t = crop_for_model(frame, box).ravel().astype(np.float64)
        t -= t.mean()
        templates.append(t / np.linalg.norm(t))
    kernel = (np.stack(templates, axis=1) * SHARPNESS).astype(np.float32)
    model = keras.Sequential(
        [
            keras.Input((48, 48, 1)),
            keras.layers.Flatten(),
            keras.layers.UnitNormalization(),
            keras.layers.Dense(7, use_bias=False),
            keras.layers.Softmax(),
        ],
        name="templates",
    )
    model.layers[-2].set_weights([kernel])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    frames = []
    for face in synthetic_face_frames(SEQUENCE):
        frames += [face] * int(HOLD_S * FPS)
    return write_y4m(tmp_path_factory.mktemp("video") / "faces.y4m", frames, FPS)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    template_model(root / "templates.keras")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LIVE_NB)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "live.ipynb")
    env = dict(os.environ, PYTHONPATH=str(REPO), JUPYTER_PLATFORM_DIRS="1", TF_CPP_MIN_LOG_LEVEL="2")
    server = Lab(root, env, root.parent / "jupyterlab-live.log")
    yield server
    server.stop()


def _open_live(browser, lab: Lab):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    open_notebook(page, lab, "live.ipynb")
    run_all_cells(page, timeout_s=180)
    return context, page


def record_labels(page, seconds: float) -> list[tuple[float, str]]:
    """``(seconds, label)`` read from the widget every 50 ms for ``seconds``."""
    widget = page.locator(".xl-live").first
    start, seen = time.monotonic(), []
    while time.monotonic() - start < seconds:
        seen.append((time.monotonic() - start, widget.get_attribute("data-label") or ""))
        page.wait_for_timeout(50)
    return seen


def steady_runs(seen: list[tuple[float, str]], min_s: float = 0.5) -> list[str]:
    """The labels held for at least ``min_s`` seconds, in order, repeats merged (brief transitions dropped)."""
    runs: list[list] = []
    for t, label in seen:
        if runs and runs[-1][0] == label:
            runs[-1][2] = t
        else:
            runs.append([label, t, t])
    steady = [label for label, t0, t1 in runs if t1 - t0 >= min_s and label in EMOTIONS]
    return [label for i, label in enumerate(steady) if i == 0 or steady[i - 1] != label]


def test_steady_runs_merge_and_drop_transitions():
    seen = [
        (0.0, "Happy"),
        (0.6, "Happy"),
        (0.7, "Fear"),
        (0.8, "Surprise"),
        (1.5, "Surprise"),
        (1.6, "no face"),
        (2.5, "no face"),
        (2.6, "Surprise"),
        (3.4, "Surprise"),
    ]
    assert steady_runs(seen) == ["Happy", "Surprise"]


def test_label_follows_the_faces_in_the_camera(playwright, lab, video, shots, tmp_path):
    browser = launch(
        playwright,
        [
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context, page = _open_live(browser, lab)
        page.wait_for_function("() => document.querySelector('.xl-live video').readyState >= 2", timeout=30_000)
        widget = page.locator(".xl-live").first
        page.wait_for_function("() => (document.querySelector('.xl-live').dataset.label || '') !== ''", timeout=60_000)
        loop = len(SEQUENCE) * HOLD_S
        seen = record_labels(page, 2 * loop + 1)
        runs = steady_runs(seen)
        expected = [EMOTIONS[c] for c in SEQUENCE]
        assert set(runs) == set(expected), f"expected the labels {expected}, saw steady {runs} (all: {seen[::10]})"
        start = expected.index(runs[0])
        cyclic = [expected[(start + i) % len(expected)] for i in range(len(runs))]
        assert runs == cyclic, f"the labels must follow the video's order {expected} (cyclically), saw {runs}"
        stats = json.loads(widget.get_attribute("data-stats"))
        assert stats["frames_drawn"] > 0 and stats["fps"] > 0 and stats["latency_ms"] > 0, stats
        assert widget.locator(".xl-live-top").count() == 1, "one bar, the most probable class, is highlighted"
        widget.screenshot(path=shots / "live_emotion.png")

        painted = "() => document.querySelector('.xl-live').xlTimings.length"
        widget.locator(".xl-live-pause").click()
        page.wait_for_timeout(3500)  # the frame in flight lands (or is given up after 3 s)
        drawn = page.evaluate(painted)
        page.wait_for_timeout(2000)
        assert page.evaluate(painted) == drawn, "paused: no frame is analysed"
        assert widget.locator(".xl-live-pause").inner_text() == "Resume"
        widget.locator(".xl-live-pause").click()
        page.wait_for_function(f"{painted[6:]} > {drawn}", timeout=30_000)

        saved = tmp_path / "saved"
        assert not saved.exists(), "nothing is written before Save"
        widget.locator(".xl-live-folder").fill(str(saved))
        widget.locator(".xl-live-save").click()
        widget.locator(".xl-live-message").get_by_text("Saved ").wait_for(timeout=30_000)
        names = sorted(p.name for p in saved.iterdir())
        assert [n.rsplit("_", 1)[1] for n in names] == ["face.png", "frame.png"], names
        assert popups(page) == []
        context.close()
        lab.shutdown_kernels()
    finally:
        browser.close()


def test_camera_refused_says_so(playwright, lab, shots):
    # a camera but no automatic "Allow": the request is refused, as when a student clicks "Block"
    refusing = launch(playwright, ["--use-fake-device-for-media-stream"])
    try:
        context, page = _open_live(refusing, lab)
        message = page.locator(".xl-live-camera").first
        page.get_by_text("No camera: permission refused").wait_for(timeout=30_000)
        assert "Allow the camera for this page" in message.inner_text()
        assert page.locator(".xl-live-pause").first.is_disabled()
        page.locator(".xl-live").first.screenshot(path=shots / "live_emotion_refused.png")
        context.close()
        lab.shutdown_kernels()
    finally:
        refusing.close()
