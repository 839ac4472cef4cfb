"""LiveEmotion's browser backend on the kernel side, without a browser (fast): the page's detector settings are the
kernel's, the widget answers a view with the ONNX model (which answers as Keras does) and the libraries, the page's
result updates the kernel's attributes, Save works with the frame the page sends, the page's face-search worker
(run by Node, which the kit's install has) finds the kernel's box, and the widget keeps the kernel backend, saying why, where the model cannot be exported or the libraries are not installed. The page itself is
tested in ``tests/test_live_emotion_browser.py``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from data_loaders import face_detection
from widgets import live_emotion
from widgets.live_emotion import (
    NO_FACE,
    PAGE_CASCADES,
    SEARCH_WORKER_FILE,
    VENDOR_FILES,
    LiveEmotion,
    missing_vendor_files,
)

FACES_JS = (REPO / "widgets" / "live_emotion_faces.js").read_text(encoding="utf-8")
BROWSER_JS = (REPO / "widgets" / "live_emotion_browser.js").read_text(encoding="utf-8")
needs_vendor = pytest.mark.skipif(
    bool(missing_vendor_files()) and os.environ.get("EXPRESSION_LAB_REQUIRE_BROWSER") != "1",
    reason="the browser libraries are not installed (scripts/vendor_js.sh)",
)


def js_constant(source: str, name: str) -> str:
    found = re.search(rf"^const {name} = (.+?);", source, re.MULTILINE | re.DOTALL)
    assert found, f"expected `const {name} = …;` in the page's code"
    return found.group(1)


def tiny_model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((48, 48, 1)), layers.Conv2D(4, 3), layers.GlobalAveragePooling2D(), layers.Dense(7, "softmax")]
    )


def test_the_pages_detector_settings_are_the_kernels():
    """live_emotion_faces.js ports data_loaders/face_detection.py: the same cascades, votes, scales and border."""
    python = {
        "MIN_VOTES": face_detection.MIN_VOTES,
        "STRONG_NEIGHBOURS": face_detection.STRONG_NEIGHBOURS,
        "NMS_IOU": face_detection._NMS_IOU,
        "SCALE_FACTOR": face_detection._SCALE_FACTOR,
        "PAD": face_detection._PAD,
        "ENLARGE_BELOW": face_detection._ENLARGE_BELOW,
        "SHRINK_ABOVE": face_detection._SHRINK_ABOVE,
    }
    page = {name: float(js_constant(FACES_JS, name)) for name in python}
    assert page == python, f"expected the page's detector numbers {python}, found {page}"
    frontal = re.findall(r'\["(\w+)", (\d+)\]', js_constant(FACES_JS, "FRONTAL_CASCADES"))
    assert [(n, int(k)) for n, k in frontal] == list(face_detection.FRONTAL_CASCADES), (
        f"expected the frontal cascades {face_detection.FRONTAL_CASCADES}, found {frontal}"
    )
    profile = re.findall(r'"(\w+)", (\d+)', js_constant(FACES_JS, "PROFILE_CASCADE"))[0]
    assert (profile[0], int(profile[1])) == face_detection.PROFILE_CASCADE, f"found the profile cascade {profile}"
    first = {tuple(p.split("/")) for p in re.findall(r'"([\w/]+)"', js_constant(FACES_JS, "FIRST_PASSES"))}
    assert {(n, int(c)) for n, c in first} == face_detection._FIRST_PASSES, f"found the first passes {first}"
    assert set(PAGE_CASCADES) == {n for n, _ in face_detection.FRONTAL_CASCADES} | {profile[0]}, (
        f"expected the widget to send every cascade the page loads; it sends {PAGE_CASCADES}"
    )
    assert js_constant(BROWSER_JS, "NO_FACE_LABEL") == f'"{NO_FACE}"', "expected the page's no-face label the kernel's"


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend must be one of kernel, browser"):
        LiveEmotion(tiny_model(), backend="gpu")


def test_without_the_libraries_the_kernel_backend_stays(monkeypatch):
    monkeypatch.setattr(live_emotion, "missing_vendor_files", lambda: ["opencv.js"])
    with pytest.warns(UserWarning, match="scripts/vendor_js.sh"):
        live = LiveEmotion(tiny_model(), backend="browser")
    assert live.backend == "kernel" and "opencv.js missing" in live.message, (
        f"expected the kernel backend and the reason shown; found {live.backend!r}, {live.message!r}"
    )
    assert live.max_fps == 20, f"expected the kernel backend's 20 frames/s at most, found {live.max_fps}"


@needs_vendor
def test_a_model_that_cannot_be_exported_keeps_the_kernel_backend(monkeypatch):
    def refuse(model, source=""):
        raise ValueError("model.onnx: the ONNX conversion failed (an op tf2onnx cannot convert)")

    monkeypatch.setattr("widgets.onnx_model.onnx_bytes", refuse)
    with pytest.warns(UserWarning, match="cannot be exported to ONNX"):
        live = LiveEmotion(tiny_model(), backend="browser")
    assert live.backend == "kernel" and "ONNX conversion failed" in live.message, (
        f"expected the kernel backend and the reason; found {live.backend!r}, {live.message!r}"
    )


# Node runs the worker's script as a page's Worker would: `self` gets its messages and takes its replies. (OpenCV.js
# sees Node, not a worker, so it is given the CommonJS names it looks for there.)
WORKER_DRIVER = """
const fs = require("fs");
global.__dirname = "."; global.__filename = "opencv.js"; global.require = require;
const [script, filesJson, greyPath, w, h] = process.argv.slice(1);
const replies = [];
const self = { postMessage: (msg) => replies.push(msg) };
new Function("self", fs.readFileSync(script, "utf8"))(self);
const files = {};
for (const [name, path] of Object.entries(JSON.parse(fs.readFileSync(filesJson, "utf8")))) files[name] = fs.readFileSync(path);
const grey = new Uint8Array(fs.readFileSync(greyPath));
self.onmessage({ data: { kind: "search", id: 1, grey: grey.slice(), w: +w, h: +h } });
self.onmessage({ data: { kind: "load", files } });
const waitForReady = () => {
  if (replies.length < 2) { setTimeout(waitForReady, 20); return; }
  self.onmessage({ data: { kind: "search", id: 2, grey, w: +w, h: +h } });
  console.log(JSON.stringify(replies.map(({ grey, ...rest }) => ({ ...rest, back: grey ? grey.length : null }))));
};
waitForReady();
"""


@needs_vendor
@pytest.mark.skipif(shutil.which("node") is None, reason="Node is not installed")
def test_the_search_worker_finds_the_kernels_face(tmp_path):
    """The worker's script (``SEARCH_WORKER_PARTS``, as the page gets it) answers a search before it has loaded
    with an error, then says it is ready, then finds the box the kernel's detector finds on the same frame."""
    import cv2
    from skimage import data as skimage_data

    from widgets.live_emotion import browser_runtime_files, default_detector

    files = browser_runtime_files()
    (tmp_path / "worker.js").write_bytes(files.pop(SEARCH_WORKER_FILE))
    paths = {}
    for name, content in files.items():
        paths[name] = str(tmp_path / name.replace(":", "_"))
        Path(paths[name]).write_bytes(content)
    (tmp_path / "files.json").write_text(json.dumps(paths))
    grey = cv2.resize(cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2GRAY)[:384], (320, 240))
    (tmp_path / "grey.raw").write_bytes(grey.tobytes())
    run = subprocess.run(
        ["node", "-e", WORKER_DRIVER, str(tmp_path / "worker.js"), str(tmp_path / "files.json"),
         str(tmp_path / "grey.raw"), "320", "240"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, f"expected the worker's script to run in Node, it failed:\n{run.stderr[-2000:]}"
    early, ready, found = json.loads(run.stdout.strip().splitlines()[-1])
    assert early["id"] == 1 and early["box"] is None and "before OpenCV.js was loaded" in early["error"], (
        f"expected a search before loading to be answered with an error, found {early}"
    )
    assert ready == {"kind": "ready", "error": None, "back": None}, f"expected the worker ready, found {ready}"
    box = default_detector()(grey)
    assert found["id"] == 2 and found["error"] is None and found["box"] == list(box), (
        f"expected the worker to find the kernel's box {box}, found {found}"
    )
    assert found["back"] == grey.size and (found["w"], found["h"]) == (320, 240), (
        f"expected the frame handed back with its size, found {found['back']} pixels, {found['w']}x{found['h']}"
    )


@needs_vendor
def test_a_view_gets_the_model_and_the_libraries_once(monkeypatch):
    import keras
    import onnxruntime

    model = tiny_model()
    live = LiveEmotion(model, backend="browser")
    assert live.backend == "browser" and live.max_fps == 60, f"found {live.backend!r} at {live.max_fps} frames/s"
    sent = []
    monkeypatch.setattr(live, "send", lambda content, buffers=None: sent.append((content, buffers)))
    live._on_message(live, {"kind": "runtime", "libraries": True}, [])
    live._on_message(live, {"kind": "runtime", "libraries": False}, [])
    (first, files), (second, model_only) = sent
    expected = [*VENDOR_FILES, *(f"cascade:{n}" for n in PAGE_CASCADES), SEARCH_WORKER_FILE, "model.onnx"]
    assert first["names"] == expected and len(files) == len(expected), f"expected {expected}, found {first['names']}"
    assert second["names"] == ["model.onnx"] and len(model_only) == 1, (
        f"expected only the model for a page that has the libraries, found {second['names']}"
    )
    session = onnxruntime.InferenceSession(model_only[0], providers=["CPUExecutionProvider"])
    faces = np.random.default_rng(0).random((5, 48, 48, 1), dtype=np.float32)
    found = session.run([first["output"]], {first["input"]: faces})[0]
    diff = np.abs(found - keras.ops.convert_to_numpy(model(faces, training=False))).max()
    assert diff <= 1e-4 and first["side"] == 48, f"expected the ONNX model Keras's to 1e-4, found {diff:.2e}"


def test_the_pages_result_and_saved_frame_reach_the_kernel(monkeypatch, tmp_path):
    monkeypatch.setattr(live_emotion, "missing_vendor_files", lambda: ["opencv.js"])
    with pytest.warns(UserWarning):
        live = LiveEmotion(tiny_model(), backend="browser", save_folder=tmp_path)
    p = [0.1, 0.0, 0.0, 0.7, 0.1, 0.1, 0.0]
    live.result = {"label": "Happy", "probabilities": p, "box": [10, 20, 60, 60], "frames": 40, "faces": 38}
    assert (live.label, live.box, live.frames, live.faces) == ("Happy", (10, 20, 60, 60), 40, 38), (
        f"expected the page's result in the kernel's attributes; found {live.label}, {live.box}, {live.frames}"
    )
    assert np.allclose(live.probabilities, p), f"expected the page's probabilities, found {live.probabilities}"
    frame = np.random.default_rng(0).integers(0, 256, (120, 160), dtype=np.uint8)
    content = {"kind": "save", "width": 160, "height": 120, "box": [40, 20, 60, 60]}
    live._on_message(live, content, [frame.tobytes()])
    names = sorted(path.name.rsplit("_", 1)[1] for path in tmp_path.iterdir())
    assert names == ["face.png", "frame.png"], f"expected the page's frame and its face saved, found {names}"
