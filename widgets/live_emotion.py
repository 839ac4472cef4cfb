"""Live emotion recognition from the browser's webcam, inside JupyterLab: face box and smoothed bars on the preview.

The browser's ``getUserMedia`` shows the camera; a few times a second the widget copies the preview into a small
grayscale frame (``frame_width`` pixels wide, default 320) and sends its raw bytes to the kernel as a binary
widget message, at most one frame in flight, so a slow kernel lowers the frame rate instead of building a queue.
The kernel finds the face (``detector``; default: the kit's Haar cascade), crops it like the personal photos of
assignment 2 (square, 20 % margin, 48×48, [0, 1]), runs the Keras model on that one face through a compiled call,
smooths the probabilities over time and answers with the face box and the bars, which the browser draws over
the preview. Frames travel from the browser to the kernel on your machine and nowhere else, and nothing is
written anywhere unless you press *Save*, which writes the current frame and its face crop to the folder you
chose.

    live = LiveEmotion(model)            # a kit model: float32 (N, 48, 48, 1) in [0, 1] → 7 probabilities
    live                                 # allow the camera; Pause / Resume; Save writes to save_folder

Smoothing: an exponential moving average whose weight follows the time between frames,
``s_t = s_{t-1} + a (p_t - s_{t-1})`` with ``a = 1 - exp(-Δt / tau)`` (Δt seconds between the two frames'
capture times, ``tau`` the time constant, default 0.3 s): a change of expression shows at 63 % after ``tau``
and 95 % after ``3 tau`` whatever the frame rate, and after a long gap (no face, a pause) the first new frame
counts almost fully. ``tau=0`` turns smoothing off.

Timings: the browser measures each frame from the moment it is copied from the preview to the moment its bars
are painted, and reports the frame rate and those latencies in :attr:`LiveEmotion.stats` (see
``benchmarks/live_webcam.py``). The Jupyter server should send the kernel's small replies at once (TCP_NODELAY):
the kit's install names ``widgets.kernel_websocket.NoDelayWebsocketConnection`` in the server config for that.

Backends: ``backend="kernel"`` (the default) is the above. With ``backend="browser"`` the face finding and the
model run in the page: the kernel exports the model to ONNX once (:func:`widgets.onnx_model.onnx_bytes`) and sends it
with the browser libraries, onnxruntime-web and OpenCV.js (installed from npm at install time by
``scripts/vendor_js.sh`` into the git-ignored ``widgets/vendor/``: nothing is downloaded, it works offline); the page
then finds the face with the kernel backend's detector ported to OpenCV.js (``live_emotion_faces.js``: the same
cascades and settings; the boxes are the same) in a Web Worker, so that a search never holds up the page; it crops
each camera frame at the last box found as the kernel crops (``live_emotion_crop.js``: the same Lanczos filter, the
same bytes), runs the model on it (up to ``max_fps``, default 60 frames a second), smooths as above and paints. The
face search runs at most every 100 ms, on the newest frame, and the frames between are cropped at the last box. The
kernel receives no frame: only the smoothed result (:attr:`LiveEmotion.result`, with ``label``, ``probabilities``,
``box`` and the counters updated from it), sent with the stats about once a second, and the frame when *Save* is
pressed. 200 students on one JupyterHub then cost the hub nothing per frame. Where the model cannot be exported (a
layer tf2onnx cannot convert) or the libraries are not installed, the widget keeps the kernel backend and says why
(:attr:`message`, and a warning).

Front end: small files beside this module, one job each, joined into the one ES module anywidget loads by
:mod:`widgets.frontend` (``FRONT_END_PARTS``, in order): ``camera.js`` (the camera start, shared with
:mod:`widgets.capture`), ``live_emotion_timings.js`` (frame → bars latencies, ``stats``),
``live_emotion_painter.js`` (label, bars, face box), ``live_emotion_sender.js`` (grey frames to the kernel, one in
flight, at most ``max_fps``), ``live_emotion_crop.js`` and ``live_emotion_browser.js`` (the browser backend: the
crop, the libraries, the search worker and the model, the in-page loop) and ``live_emotion.js`` (the layout, the
controls and ``render`` wiring the parts for the backend in use). The face-search worker is one classic script
joined the same way (``SEARCH_WORKER_PARTS``: ``live_emotion_crop.js``, ``live_emotion_faces.js`` and
``live_emotion_search_worker.js``) and sent to the page with the libraries.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import anywidget
import numpy as np
import traitlets

from data_loaders.emotions import EMOTIONS
from data_loaders.files import atomic_write

from .frontend import CAMERA_PART, compose_module, compose_script

Box = tuple[int, int, int, int]
#: A face detector: ``uint8 (H, W)`` grey frame → the face as ``(x, y, w, h)`` pixels, or None.
Detector = Callable[[np.ndarray], "Box | None"]

_HERE = Path(__file__).resolve().parent
NO_FACE = "no face"
#: The browser side, joined into one module in this order (:mod:`widgets.frontend`): the shared camera start,
#: the timings, the painter (label, bars, box), the sender (frames to the kernel), the in-page crop and analysis
#: (the browser backend) and ``render`` wiring them.
FRONT_END_PARTS = (
    CAMERA_PART,
    "live_emotion_timings.js",
    "live_emotion_painter.js",
    "live_emotion_sender.js",
    "live_emotion_crop.js",
    "live_emotion_browser.js",
    "live_emotion.js",
)
#: The browser backend's face-search Web Worker, one classic script joined in this order: ``pyRound`` (with the
#: crop), the detector ported to OpenCV.js, and the worker's message loop.
SEARCH_WORKER_PARTS = ("live_emotion_crop.js", "live_emotion_faces.js", "live_emotion_search_worker.js")
#: The name the worker's script travels under, with the libraries.
SEARCH_WORKER_FILE = "search_worker.js"
BACKENDS = ("kernel", "browser")
#: Where ``scripts/vendor_js.sh`` puts the browser backend's libraries (git-ignored), and the files it needs.
VENDOR_DIR = _HERE / "vendor"
VENDOR_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm", "opencv.js")
#: The Haar cascades the page's detector loads (``data_loaders.face_detection``'s, from ``cv2.data.haarcascades``).
PAGE_CASCADES = (
    "haarcascade_frontalface_default",
    "haarcascade_frontalface_alt",
    "haarcascade_frontalface_alt2",
    "haarcascade_profileface",
)
#: The frames a second each backend analyses at most, unless ``max_fps`` says otherwise.
DEFAULT_MAX_FPS = {"kernel": 20.0, "browser": 60.0}


def default_detector(downscale: int = 2) -> Detector:
    """The kit's face detector for webcam frames: OpenCV's frontal-face Haar cascade, largest face (``find_face``
    of assignment 2's photo loader), run on the frame shrunk ``downscale`` times (area averaging) with the box
    scaled back. The one place the live widget chooses a detector.

    Halving a 320×240 frame makes detection 2-4 times faster (the cascade's cost grows with the pixels and the
    small scales searched) and still finds faces 60 px and taller, a quarter of the frame's height: someone in
    front of a laptop camera fills more than that.
    """
    import cv2

    from data_loaders.personal import find_face

    if downscale <= 1:
        return find_face

    def detect(grey: np.ndarray) -> Box | None:
        small = cv2.resize(
            grey, (max(1, grey.shape[1] // downscale), max(1, grey.shape[0] // downscale)), interpolation=cv2.INTER_AREA
        )
        box = find_face(small)
        return None if box is None else tuple(int(v * downscale) for v in box)

    return detect


def crop_for_model(grey: np.ndarray, box: Box, size: int = 48) -> np.ndarray:
    """The face in ``box`` as the model sees it: a square crop with a 20 % margin (as assignment 2's photo
    loader makes), resized to ``size`` × ``size``: ``float32 (1, size, size, 1)`` in [0, 1]."""
    from data_loaders.personal import crop_face

    return (crop_face(grey, box, 0.2, size).astype(np.float32) / 255.0)[None, :, :, None]


def smooth_probabilities(previous: np.ndarray | None, current: np.ndarray, dt_s: float, tau_s: float) -> np.ndarray:
    """One step of the exponential moving average: ``previous + a (current - previous)``, ``a = 1 - exp(-dt/tau)``.

    Args:
        previous: the smoothed probabilities so far ``(K,)``, or None for the first frame (``current`` is taken).
        current: this frame's probabilities ``(K,)``.
        dt_s: seconds since the frame behind ``previous`` (negative values count as 0).
        tau_s: time constant in seconds; 0 takes ``current`` as it is.

    Returns:
        ``float64 (K,)``; still sums to 1 when both inputs do (a convex combination).
    """
    current = np.asarray(current, dtype=np.float64)
    if previous is None or tau_s <= 0:
        return current
    weight = 1.0 - math.exp(-max(dt_s, 0.0) / tau_s)
    return np.asarray(previous, dtype=np.float64) + weight * (current - previous)


def fast_predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    """A callable ``float32 (1, S, S, 1)`` → ``float64 (K,)`` probabilities for one face at a time.

    ``model.predict`` sets up a data pipeline on every call (about a hundred times the work of one face); this
    traces the forward pass once with ``tf.function`` for the one input shape, so each frame is one compiled
    call (see ``benchmarks/live_webcam.py`` for the measured difference: folding the batch norms as
    ``course evaluate`` does saves a further ~0.2 ms a face, not worth a dependency of a widget on course/).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda x: np.asarray(model.predict_on_batch(x), dtype=np.float64)[0]
    import tensorflow as tf

    shape = (1, *model.input_shape[1:])
    forward = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec(shape, tf.float32)])
    return lambda x: np.asarray(forward(tf.constant(x, tf.float32)), dtype=np.float64)[0]


def _model_input_side(model) -> int:
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 1 or shape[1] is None:
        raise ValueError(f"LiveEmotion needs a model taking grey square faces (N, S, S, 1), got input shape {shape}")
    return int(shape[1])


def missing_vendor_files(folder: Path = VENDOR_DIR) -> list[str]:
    """The browser libraries (:data:`VENDOR_FILES`) missing from ``folder``: install them with
    ``scripts/vendor_js.sh`` (npm, once, at install time)."""
    return [name for name in VENDOR_FILES if not (folder / name).is_file()]


def browser_runtime_files(folder: Path = VENDOR_DIR) -> dict[str, bytes]:
    """What the page needs to find faces and run a model: the vendored onnxruntime-web and OpenCV.js files by name,
    the Haar cascades as ``cascade:<name>`` (the XML files of ``cv2.data.haarcascades``) and the face-search
    worker's script as :data:`SEARCH_WORKER_FILE` (UTF-8, joined from :data:`SEARCH_WORKER_PARTS`).

    Raises:
        FileNotFoundError: a vendored file is missing (the message names it and ``scripts/vendor_js.sh``).
    """
    import cv2

    missing = missing_vendor_files(folder)
    if missing:
        raise FileNotFoundError(
            f"{folder}: the browser libraries are not installed ({', '.join(missing)} missing): run "
            "scripts/vendor_js.sh once (it installs onnxruntime-web and OpenCV.js from npm)"
        )
    files = {name: (folder / name).read_bytes() for name in VENDOR_FILES}
    for name in PAGE_CASCADES:
        files[f"cascade:{name}"] = (Path(cv2.data.haarcascades) / f"{name}.xml").read_bytes()
    files[SEARCH_WORKER_FILE] = compose_script(*SEARCH_WORKER_PARTS).encode("utf-8")
    return files


class LiveEmotion(anywidget.AnyWidget):
    """Webcam preview with the face box and the model's smoothed class probabilities drawn over it.

    Args:
        model: a Keras model, input ``float32 (N, S, S, 1)`` in [0, 1] (S = 48 for the kit's models), output
            ``(N, len(class_names))`` probabilities.
        detector: ``uint8 (H, W)`` → ``(x, y, w, h)`` or None (default :func:`default_detector`).
        class_names: names in the model's output order (default FER2013's seven).
        tau: smoothing time constant in seconds (0: none); see the module docstring.
        save_folder: where *Save* writes (nothing is written until then); can also be typed into the widget.
        frame_width: width in pixels of the grey frames analysed (height keeps the camera's aspect).
        max_fps: the most frames a second analysed (default 20 in the kernel, 60 in the page).
        backend: ``"kernel"`` (frames go to the kernel, which finds the face and runs the model) or ``"browser"``
            (both in the page; see the module docstring). ``"browser"`` falls back to ``"kernel"``, with a
            warning and the reason in :attr:`message`, where the model cannot be exported to ONNX or the browser
            libraries are not installed; :attr:`backend` says which runs.

    Raises:
        ValueError: the model's input is not ``(N, S, S, 1)``, its output does not match ``class_names``,
            ``backend`` is not one of :data:`BACKENDS`, or ``tau``, ``frame_width`` or ``max_fps`` is not a number
            in its range (``tau`` ≥ 0, the others > 0).

    Attributes read in the kernel (not drawn): ``label`` (smoothed arg-max, or ``"no face"``), ``probabilities``
    (smoothed, ``float64 (K,)`` or None), ``box``, counters ``frames``, ``faces``, ``no_face_frames``,
    ``bad_frames`` (frames whose bytes did not match their size; ignored), ``errors`` and ``last_error``, and
    ``stats`` (from the browser: ``fps``, ``latency_ms`` median and ``latency_p95_ms`` over the last 60 frames,
    ``kernel_ms`` median (with the browser backend: the page's time for face and model), ``frames_drawn``,
    ``frames_lost``). With the browser backend ``result`` is what the page last reported (about once a second):
    ``label``, ``probabilities``, ``box``, ``face`` and the page's counters ``frames``, ``faces``,
    ``no_face_frames``, ``errors``, ``last_error``; the attributes above follow it.
    """

    _esm = compose_module(*FRONT_END_PARTS)
    _css = _HERE / "live_emotion.css"

    camera_state = traitlets.Unicode("starting").tag(sync=True)  #: "live", "starting", or why there is none
    paused = traitlets.Bool(False).tag(sync=True)
    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    frame_width = traitlets.Int(320).tag(sync=True)
    max_fps = traitlets.Float(20.0).tag(sync=True)
    mirror = traitlets.Bool(True).tag(sync=True)  #: show the preview as a mirror (the box follows)
    save_folder = traitlets.Unicode("").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)  #: the kernel's last word to the student (saved, errors)
    stats = traitlets.Dict().tag(sync=True)  #: written by the browser about once a second
    backend = traitlets.Unicode("kernel").tag(sync=True)  #: "kernel" or "browser": where faces are analysed
    tau = traitlets.Float(0.3).tag(sync=True)  #: the smoothing time constant in seconds (the page smooths too)
    result = traitlets.Dict().tag(sync=True)  #: the browser backend's smoothed result, about once a second

    def __init__(
        self,
        model,
        detector: Detector | None = None,
        class_names: Sequence[str] = EMOTIONS,
        tau: float = 0.3,
        save_folder: str | os.PathLike | None = None,
        frame_width: int = 320,
        max_fps: float | None = None,
        backend: str = "kernel",
        **kwargs,
    ):
        side = _model_input_side(model)
        outputs = tuple(model.output_shape)
        if outputs[-1] != len(class_names):
            raise ValueError(
                f"the model gives {outputs[-1]} outputs (output shape {outputs}) but "
                f"{len(class_names)} class names were given"
            )
        if not (math.isfinite(tau) and tau >= 0):  # NaN passed "tau < 0" and then smoothed every frame to NaN
            raise ValueError(f"tau must be a number of seconds ≥ 0, got {tau}")
        if int(frame_width) < 1:
            raise ValueError(f"frame_width must be a positive number of pixels, got {frame_width}")
        if max_fps is not None and not (math.isfinite(max_fps) and max_fps > 0):
            raise ValueError(f"max_fps must be a number of frames a second > 0, got {max_fps}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        onnx, why_not = self._browser_model(model) if backend == "browser" else (None, "")
        runs = "browser" if onnx is not None else "kernel"
        super().__init__(
            class_names=list(class_names),
            frame_width=int(frame_width),
            max_fps=float(DEFAULT_MAX_FPS[runs] if max_fps is None else max_fps),
            save_folder="" if save_folder is None else str(save_folder),
            backend=runs,
            tau=float(tau),
            message=why_not,
            **kwargs,
        )
        self.model, self.side, self.onnx = model, side, onnx
        self.detector = detector or default_detector()
        self.predict = fast_predictor(model)
        self.predict(np.zeros((1, side, side, 1), np.float32))  # traced now, not on the first camera frame
        self.label, self.probabilities, self.box = "", None, None
        self.frames = self.faces = self.no_face_frames = self.bad_frames = self.errors = 0
        self.last_error = ""
        self.kernel_ms: deque[float] = deque(maxlen=100)
        self._last_time_ms: float | None = None
        self._last_frame: np.ndarray | None = None  # kept in memory only, for Save
        self._last_crop: np.ndarray | None = None
        self.on_msg(self._on_message)
        self.observe(self._on_result, names="result")

    @staticmethod
    def _browser_model(model) -> tuple[bytes | None, str]:
        """``(the model as ONNX, "")`` for the browser backend, or ``(None, why not)`` (with a warning)."""
        from .onnx_model import onnx_bytes

        missing = missing_vendor_files()
        if missing:
            why = (
                f"Running in the kernel: the browser libraries are not installed ({', '.join(missing)} missing "
                f"in {VENDOR_DIR}; run scripts/vendor_js.sh once)."
            )
        else:
            try:
                return onnx_bytes(model), ""
            except Exception as exc:  # tf2onnx/Keras raise many kinds of errors for a model they cannot convert
                why = f"Running in the kernel: the model cannot be exported to ONNX ({type(exc).__name__}: {exc})."
        warnings.warn(why, stacklevel=3)
        return None, why

    # ---- messages from the browser
    def _on_message(self, _widget, content, buffers) -> None:
        kind = content.get("kind") if isinstance(content, dict) else None
        if kind == "frame":
            self.send(self.handle_frame(content, buffers))
        elif kind == "runtime":
            self._send_runtime(bool(content.get("libraries")))
        elif kind == "save":
            if buffers:
                self._keep_page_frame(content, buffers)
            # the folder typed in the page comes with the request (its state update may still be on its way)
            folder = content.get("folder")
            self.save(folder if isinstance(folder, str) and folder.strip() else None)

    def _send_runtime(self, libraries: bool) -> None:
        """Answer a browser-backend view: the ONNX model, and the libraries when its page has none yet."""
        from .onnx_model import ONNX_INPUT, ONNX_OUTPUT

        if self.onnx is None:
            self.send({"kind": "runtime", "error": "this widget runs in the kernel (backend='kernel')"})
            return
        try:
            files = browser_runtime_files() if libraries else {}
        except FileNotFoundError as exc:
            self.send({"kind": "runtime", "error": str(exc)})
            return
        files["model.onnx"] = self.onnx
        reply = {"kind": "runtime", "names": list(files), "input": ONNX_INPUT, "output": ONNX_OUTPUT, "side": self.side}
        self.send(reply, buffers=list(files.values()))

    def _on_result(self, change) -> None:
        """The page's smoothed result (browser backend): the kernel-side attributes follow it."""
        result = change["new"] or {}
        self.label = result.get("label", self.label)
        if result.get("probabilities") is not None:
            self.probabilities = np.asarray(result["probabilities"], dtype=np.float64)
        box = result.get("box")
        self.box = tuple(int(v) for v in box) if box else None
        for name in ("frames", "faces", "no_face_frames", "errors"):
            if isinstance(result.get(name), int):
                setattr(self, name, result[name])
        self.last_error = result.get("last_error") or self.last_error

    def _keep_page_frame(self, content: dict, buffers: Sequence[bytes]) -> None:
        """Keep the frame a browser-backend view sent with *Save* (and its face crop), for :meth:`save`."""
        try:
            grey = decode_frame(content, buffers)
        except ValueError as exc:
            self.bad_frames += 1
            self.last_error = f"saved frame: {exc}; ignored"
            return
        self._last_frame, box = grey, content.get("box")
        if box:
            self.box = tuple(int(v) for v in box)
            self._last_crop = crop_for_model(grey, self.box, self.side)[0, :, :, 0]

    def handle_frame(self, content: dict, buffers: Sequence[bytes]) -> dict:
        """Analyse one frame from the browser and return the reply it is sent.

        Args:
            content: ``{"id": n, "width": W, "height": H, "t": capture time in ms}``.
            buffers: one buffer of ``W * H`` bytes, the grey frame row by row (``uint8``).

        Returns:
            ``{"kind": "result", "id", "face": bool, "box": [x, y, w, h] or None, "probabilities": list or None,
            "label", "kernel_ms", "error"}``. A frame whose bytes do not match its size is counted in
            ``bad_frames`` and answered with an ``error`` naming it; with no face the bars keep their last values
            and ``label`` is ``"no face"``.
        """
        start = time.perf_counter()
        frame_id = content.get("id")
        reply = {
            "kind": "result",
            "id": frame_id,
            "face": False,
            "box": None,
            "probabilities": None,
            "label": self.label,
            "kernel_ms": 0.0,
            "error": None,
        }
        self.frames += 1
        try:
            grey = decode_frame(content, buffers)
        except ValueError as exc:
            self.bad_frames += 1
            self.last_error = reply["error"] = f"frame {frame_id}: {exc}; ignored"
            return reply
        try:
            box = self.detector(grey)
            self._last_frame = grey
            if box is None:
                self.no_face_frames += 1
                self.box, self.label = None, NO_FACE
                reply["label"] = NO_FACE
            else:
                x = crop_for_model(grey, box, self.side)
                p = self.predict(x)
                t = float(content.get("t", time.perf_counter() * 1000))
                dt = 0.0 if self._last_time_ms is None else (t - self._last_time_ms) / 1000
                self.probabilities = smooth_probabilities(self.probabilities, p, dt, self.tau)
                self._last_time_ms, self._last_crop = t, x[0, :, :, 0]
                self.box = tuple(int(v) for v in box)
                self.label = self.class_names[int(np.argmax(self.probabilities))]
                self.faces += 1
                reply.update(
                    face=True,
                    box=list(self.box),
                    probabilities=[float(v) for v in self.probabilities],
                    label=self.label,
                )
        except Exception as exc:  # a detector or model failure is shown in the widget, never lost in a log
            self.errors += 1
            self.last_error = reply["error"] = f"frame {frame_id}: {type(exc).__name__}: {exc}"
        reply["kernel_ms"] = (time.perf_counter() - start) * 1000
        self.kernel_ms.append(reply["kernel_ms"])
        return reply

    # ---- saving, only on request
    def save(self, folder: str | os.PathLike | None = None) -> list[Path]:
        """Write the last analysed frame (``<stamp>_<label>_frame.png``) and its face crop (``…_face.png``, when
        a face was found) into ``folder`` (default: ``save_folder``); return the paths written.

        Errors (no folder chosen, no frame yet, a folder that cannot be written) go to :attr:`message` and an
        empty list is returned.
        """
        from PIL import Image

        target = folder if folder is not None else self.save_folder.strip()
        if not target:
            self.message = "Not saved: type a folder into the box first (or LiveEmotion(model, save_folder=…))."
            return []
        if self._last_frame is None:
            self.message = "Not saved: no frame has been analysed yet."
            return []
        root = Path(target).expanduser()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        label = (self.label or "unknown").replace(" ", "-").lower()
        images = {"frame": self._last_frame}
        if self.box is not None and self._last_crop is not None:
            images["face"] = np.clip(np.rint(self._last_crop * 255), 0, 255).astype(np.uint8)
        written = []
        try:
            root.mkdir(parents=True, exist_ok=True)
            for name, image in images.items():
                path = root / f"{stamp}_{label}_{name}.png"
                with atomic_write(path) as tmp:
                    Image.fromarray(image).save(tmp, format="PNG")
                written.append(path)
        except OSError as exc:
            self.message = f"Not saved: {exc}"
            return written
        self.message = "Saved " + ", ".join(p.name for p in written) + f" in {root}"
        return written


def decode_frame(content: dict, buffers: Sequence[bytes]) -> np.ndarray:
    """The grey frame of a ``frame`` message: ``uint8 (H, W)``.

    Raises:
        ValueError: a missing buffer, a size that is not two positive integers, or a byte count other than
            ``width * height``.
    """
    width, height = content.get("width"), content.get("height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise ValueError(f"expected positive integer width and height, got {width!r} × {height!r}")
    if not buffers:
        raise ValueError("no pixel buffer came with the frame")
    data = np.frombuffer(buffers[0], dtype=np.uint8)
    if data.size != width * height:
        raise ValueError(f"expected {width} × {height} = {width * height} grey bytes, got {data.size}")
    return data.reshape(height, width)
