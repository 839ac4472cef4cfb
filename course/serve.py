"""A trained model outside Jupyter: ``python -m course serve MODEL.keras`` answers emotion questions over HTTP.

A FastAPI app (:func:`create_app`) served by uvicorn (:func:`serve`), one process, loopback by default:

* ``POST /predict/photo``: a JPEG or PNG photo, uploaded as ``multipart/form-data`` in the field ``file`` →
  every face the kit's detector finds (:func:`data_loaders.face_detection.detect_faces`, largest first), each
  with its box in pixels of the uploaded photo, the seven probabilities by FER2013 emotion name and the top label.
  The face is cropped as the kit crops it for a model (:func:`widgets.live_emotion.crop_for_model`: a square with
  a 20 % margin, resized to 48 × 48). A photo without a face is a valid question: 200 with ``"faces": []``.
* ``POST /predict/faces``: faces already cropped, 48 × 48 grey levels 0-255, as JSON ``{"faces": [face, …]}``
  (each face 48 lists of 48 numbers; ``faces.tolist()`` of a ``(N, 48, 48)`` array) or as
  ``application/octet-stream``, ``N × 2304`` bytes (``faces.astype(np.uint8).tobytes()``, row by row) →
  ``{"faces": [{"probabilities": {…}, "label": …}, …]}`` in the order sent.
* ``GET /health``: the model's name, input shape, classes and parameters, and the limits below; ``GET /docs``:
  FastAPI's OpenAPI page (Swagger UI, its script and style served by the service: offline); ``/openapi.json``.

Bad input gets a 4xx whose ``detail`` names what was expected, and the server goes on: 400 a body that is not
JSON, 413 a body over :data:`MAX_UPLOAD_BYTES` or a photo over :data:`MAX_PIXELS`, 415 an upload that is not a
JPEG or PNG (or a faces body that is neither JSON nor bytes), 422 faces of the wrong shape, type or range, more
than :data:`MAX_FACES` faces, or a request without its field.

Speed (``benchmarks/serve_load.py``): ``model.predict`` sets up a data pipeline on every call, a hundred times
the work of one face, so the model runs as one ``tf.function`` traced once for ``float32 (None, 48, 48, 1)``, with
its batch norms folded (:func:`course.inference.fold_batch_norms`, kept only when it predicts the same to 1e-4).
Inference runs on one worker thread, off the event loop, TensorFlow on one thread (the other core serves HTTP);
faces that arrive while it is busy go through the model together as one batch (:class:`Inference`), so
concurrent requests share a call instead of queueing for one each.
The model takes faces as :func:`~widgets.live_emotion.crop_for_model` scales them: ``float32`` in [0, 1].
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import queue
import threading
import warnings
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import anyio
import anyio.to_thread
import numpy as np
from fastapi import File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from data_loaders.emotions import EMOTIONS
from data_loaders.personal import grey_levels

#: The side in pixels of the grey faces the served model takes: ``float32 (N, 48, 48, 1)``.
FACE_SIDE = 48
#: The most bytes one request body may have (a photo upload, a faces batch): 10 MiB.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: The most pixels an uploaded photo may have (width × height): 50 megapixels, a large phone photo.
MAX_PIXELS = 50_000_000
#: The most faces one ``/predict/faces`` request may carry.
MAX_FACES = 256
#: The most faces the inference worker puts through the model in one call.
MAX_BATCH = 64
#: Photos decoded and searched for faces at once (each can take a few hundred MB while decoded).
PHOTO_WORKERS = 2
PHOTO_FORMATS = ("JPEG", "PNG")

EXPECTED_PHOTO = (
    "a JPEG or PNG photo uploaded as multipart/form-data in the field 'file' "
    f"(at most {MAX_UPLOAD_BYTES // 2**20} MB and {MAX_PIXELS // 10**6} megapixels)"
)
EXPECTED_FACES = (
    f'JSON {{"faces": [face, ...]}} with 1 to {MAX_FACES} faces, each {FACE_SIDE} lists of {FACE_SIDE} grey '
    f"levels 0-255 (Content-Type: application/json), or N x {FACE_SIDE * FACE_SIDE} bytes of uint8 faces row by "
    "row (Content-Type: application/octet-stream)"
)


class InputError(ValueError):
    """A request the service cannot answer: ``status`` is its HTTP status (4xx), the message names what was
    expected."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class Classifier:
    """A loaded emotion model ready to serve.

    ``forward`` maps ``float32 (N, 48, 48, 1)`` faces in [0, 1] to ``float32 (N, 7)`` probabilities in FER2013
    order (:data:`data_loaders.EMOTIONS`); it may be called from any thread.
    """

    name: str
    file: str
    parameters: int
    batch_norms_folded: int
    compiled: bool
    forward: Callable[[np.ndarray], np.ndarray]


def _count_batch_norms(model) -> int:
    return sum(type(layer).__name__ == "BatchNormalization" for layer in model.layers)


def compiled_forward(model) -> Callable[[np.ndarray], np.ndarray]:
    """``model``'s forward pass as one compiled call: ``float32 (N, 48, 48, 1)`` → ``float32 (N, K)`` numpy.

    With the TensorFlow backend, a ``tf.function`` of ``model(x, training=False)`` traced once for the input
    signature ``float32 (None, 48, 48, 1)`` (any batch size, no retracing); with another backend,
    ``model.predict_on_batch``.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda x: np.asarray(model.predict_on_batch(x), dtype=np.float32)
    import tensorflow as tf

    spec = tf.TensorSpec((None, FACE_SIDE, FACE_SIDE, 1), tf.float32)
    call = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return lambda x: call(tf.constant(x, tf.float32)).numpy()


def load_classifier(path: str | Path, fold: bool = True, compiled: bool = True) -> Classifier:
    """Load ``path`` (``keras.models.load_model(path, safe_mode=True)``), check it and make it fast.

    Args:
        path: a ``.keras`` file (legacy ``.h5`` also loads) whose model takes ``float32 (N, 48, 48, 1)`` faces in
            [0, 1] and returns ``(N, 7)`` softmax probabilities in FER2013 order.
        fold: fold batch norms into the layer before them (:func:`course.inference.fold_batch_norms`) where the
            model's graph is known; the folded copy is kept only when its probabilities on a few test faces
            differ from the model's by at most 1e-4.
        compiled: run the model as :func:`compiled_forward`; False runs ``model.predict`` (for comparison only:
            a hundred times slower for one face).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a Keras model that loads safely, or the model's input is not
            ``(48, 48, 1)``, its output not 7 classes, or its outputs are not probabilities (the message says
            which, with the shapes found).
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file (expected a .keras file saved by model.save)")
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # Keras raises ValueError, OSError, TypeError, zipfile errors… for a bad file
        raise ValueError(
            f"{path}: not a Keras model that loads with safe_mode=True ({type(err).__name__}: {err})"
        ) from None
    inputs, outputs = model.inputs, model.outputs
    if len(inputs) != 1 or tuple(inputs[0].shape[1:]) != (FACE_SIDE, FACE_SIDE, 1):
        found = [tuple(t.shape) for t in inputs]
        raise ValueError(
            f"{path}: expected a model taking grey 48 x 48 faces, input shape (None, 48, 48, 1); found {found}"
        )
    if len(outputs) != 1 or tuple(outputs[0].shape[1:]) != (len(EMOTIONS),):
        found = [tuple(t.shape) for t in outputs]
        raise ValueError(
            f"{path}: expected a model returning the {len(EMOTIONS)} FER2013 probabilities "
            f"({', '.join(EMOTIONS)}), output shape (None, 7); found {found}"
        )
    with warnings.catch_warnings():  # Keras warns that a folded copy's input is a list of one; it takes a tensor
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        return _checked_classifier(model, path, fold, compiled)


def _checked_classifier(model, path: Path, fold: bool, compiled: bool) -> Classifier:
    """:func:`load_classifier` after loading: probabilities checked, batch norms folded, forward pass traced."""
    import keras

    from .inference import fold_batch_norms, has_layer_graph

    probe = np.random.default_rng(0).random((4, FACE_SIDE, FACE_SIDE, 1), dtype=np.float32)
    probe[0] = 0.0
    reference = keras.ops.convert_to_numpy(model(probe, training=False)).astype(np.float32)
    sums = reference.sum(axis=1)
    if not (np.isfinite(reference).all() and (reference >= 0).all() and np.allclose(sums, 1.0, atol=1e-3)):
        raise ValueError(
            f"{path}: expected probabilities (a final softmax) from the model; on 4 test faces its rows sum to "
            f"{np.round(sums, 4).tolist()} (min {reference.min():.3g})"
        )
    served, folded = model, 0
    if fold and has_layer_graph(model) and _count_batch_norms(model):
        copy = fold_batch_norms(model)
        if np.abs(keras.ops.convert_to_numpy(copy(probe, training=False)) - reference).max() <= 1e-4:
            served, folded = copy, _count_batch_norms(model) - _count_batch_norms(copy)
    if compiled:
        forward = compiled_forward(served)
    else:
        forward = lambda x: np.asarray(served.predict(x, verbose=0), dtype=np.float32)  # noqa: E731
    forward(probe)  # trace and warm up: the first request is as fast as the rest
    forward(probe[:1])
    return Classifier(model.name, path.name, int(model.count_params()), folded, compiled, forward)


def limit_inference_threads(threads: int) -> bool:
    """Let TensorFlow run each operation on at most ``threads`` threads, and one operation at a time; returns
    False (with a warning) when TensorFlow has already started in this process and the setting cannot change."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as err:
        warnings.warn(f"inference_threads={threads} ignored: {err}", stacklevel=2)
        return False
    return True


# ---------------------------------------------------------------------------------------------------- inference
@dataclass
class _Job:
    faces: np.ndarray
    future: concurrent.futures.Future


class Inference:
    """Runs a :class:`Classifier` off the event loop.

    ``batching=True`` (the default of :func:`create_app`): one worker thread takes the requests in turn; the faces
    of every request that arrived while it was busy go through the model in one call (up to ``max_batch`` faces,
    more when one request has more), so under load a call's fixed cost is shared, and at low load no request
    waits for others. ``batching=False``: each request calls the model itself on the threadpool of the server
    (``anyio.to_thread``), concurrent calls running side by side.
    """

    def __init__(self, classifier: Classifier, batching: bool = True, max_batch: int = MAX_BATCH):
        self.classifier, self.batching, self.max_batch = classifier, batching, max_batch
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread (with batching; otherwise nothing to start)."""
        if self.batching and self._thread is None:
            self._thread = threading.Thread(target=self._work, name="expression-lab-inference", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the worker thread after the jobs already queued."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def submit(self, faces: np.ndarray) -> concurrent.futures.Future:
        """Queue ``float32 (N, 48, 48, 1)`` faces; the future's result is ``float32 (N, 7)`` probabilities.

        Raises:
            RuntimeError: without batching, or before :meth:`start`.
        """
        if self._thread is None:
            raise RuntimeError("the inference worker is not running (Inference.start() first, batching=True)")
        job = _Job(faces, concurrent.futures.Future())
        self._jobs.put(job)
        return job.future

    def predict_blocking(self, faces: np.ndarray) -> np.ndarray:
        """``float32 (N, 7)`` probabilities of ``float32 (N, 48, 48, 1)`` faces; blocks (call it from a thread)."""
        if not self.batching:
            return self.classifier.forward(faces)
        return self.submit(faces).result()

    async def predict(self, faces: np.ndarray) -> np.ndarray:
        """``float32 (N, 7)`` probabilities of ``float32 (N, 48, 48, 1)`` faces, without blocking the event loop."""
        if not self.batching:
            return await anyio.to_thread.run_sync(self.classifier.forward, faces)
        return await asyncio.wrap_future(self.submit(faces))

    def _work(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                return
            jobs, count = [first], len(first.faces)
            while count < self.max_batch:  # whatever else is waiting goes in the same call
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
                count += len(job.faces)
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if not jobs:
                continue
            try:
                faces = jobs[0].faces if len(jobs) == 1 else np.concatenate([job.faces for job in jobs])
                probabilities = self.classifier.forward(faces)
            except BaseException as err:  # a failed call fails its requests, never the worker
                for job in jobs:
                    job.future.set_exception(err)
                continue
            start = 0
            for job in jobs:
                job.future.set_result(probabilities[start : start + len(job.faces)])
                start += len(job.faces)


# ----------------------------------------------------------------------------------------------- parsing input
def check_faces(faces: np.ndarray) -> np.ndarray:
    """Faces as the model takes them: ``float32 (N, 48, 48, 1)`` in [0, 1] from grey levels 0-255.

    Args:
        faces: ``(N, 48, 48)`` or ``(N, 48, 48, 1)`` integers or floats 0-255, 1 ≤ N ≤ :data:`MAX_FACES`.

    Raises:
        InputError: 422, naming what was expected and what was found: not numbers, the wrong shape, NaN or
            infinite values, values outside 0-255, no faces or too many.
    """
    faces = np.asarray(faces)
    if faces.dtype.kind not in "iuf":
        raise InputError(422, f"expected grey levels as numbers 0-255; found values of type {faces.dtype}")
    if faces.ndim == 4 and faces.shape[3] == 1:
        faces = faces[..., 0]
    if faces.ndim != 3 or faces.shape[1:] != (FACE_SIDE, FACE_SIDE):
        raise InputError(
            422,
            f"expected faces of shape (N, {FACE_SIDE}, {FACE_SIDE}) (each face 48 rows of 48 grey levels); "
            f"found shape {faces.shape}",
        )
    if not 1 <= len(faces) <= MAX_FACES:
        raise InputError(422, f"expected 1 to {MAX_FACES} faces in one request; found {len(faces)}")
    values = faces.astype(np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        face = int(np.argwhere(bad)[0][0])
        raise InputError(422, f"expected finite grey levels 0-255; face {face} has NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 255:
        face = int(np.argwhere((values < 0) | (values > 255))[0][0])
        raise InputError(
            422, f"expected grey levels 0-255; found values from {low:g} to {high:g} (face {face} is out of range)"
        )
    return (values / 255.0)[..., None]


def faces_from_json(body: bytes) -> np.ndarray:
    """The faces of a JSON body ``{"faces": [face, …]}`` as :func:`check_faces` returns them.

    Raises:
        InputError: 400 the body is not JSON; 422 it has no ``faces`` list, the faces are ragged or
            :func:`check_faces` refuses them (each message names what was expected).
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(400, f"the body is not valid JSON ({err}); expected {EXPECTED_FACES}") from None
    except RecursionError:  # thousands of nested brackets: Python's parser gives up
        raise InputError(400, f"the body is not valid JSON (nested too deeply); expected {EXPECTED_FACES}") from None
    if not isinstance(document, dict) or not isinstance(document.get("faces"), list):
        if not isinstance(document, dict):
            found = f"a JSON {type(document).__name__}"
        elif "faces" in document:
            found = f'"faces" as a JSON {type(document["faces"]).__name__}'
        else:
            found = f"an object with the keys {sorted(document)[:5]}"
        raise InputError(422, f'expected a JSON object with a list "faces"; found {found}. Send {EXPECTED_FACES}')
    faces = document["faces"]
    if not 1 <= len(faces) <= MAX_FACES:  # before building a large array
        raise InputError(422, f"expected 1 to {MAX_FACES} faces in one request; found {len(faces)}")
    try:
        array = np.asarray(faces)
    except (ValueError, TypeError, OverflowError):
        raise InputError(
            422, f"expected every face to be {FACE_SIDE} lists of {FACE_SIDE} numbers; the faces sent are ragged"
        ) from None
    return check_faces(array)


def faces_from_bytes(body: bytes) -> np.ndarray:
    """The faces of an ``application/octet-stream`` body, ``N × 2304`` bytes (uint8 48 × 48 faces row by row),
    as :func:`check_faces` returns them.

    Raises:
        InputError: 422 the length is not a positive multiple of 2304 or it holds more than :data:`MAX_FACES`.
    """
    size = FACE_SIDE * FACE_SIDE
    if not body or len(body) % size:
        raise InputError(
            422,
            f"expected N x {size} bytes (N uint8 faces of {FACE_SIDE} x {FACE_SIDE}, row by row); "
            f"found {len(body)} bytes",
        )
    return check_faces(np.frombuffer(body, np.uint8).reshape(-1, FACE_SIDE, FACE_SIDE))


def faces_from_body(body: bytes, content_type: str | None) -> np.ndarray:
    """:func:`faces_from_json` or :func:`faces_from_bytes` by the request's ``Content-Type``.

    Raises:
        InputError: 415 a content type other than ``application/json`` and ``application/octet-stream``; else
            what the parser raises.
    """
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json":
        return faces_from_json(body)
    if kind == "application/octet-stream":
        return faces_from_bytes(body)
    raise InputError(415, f"expected {EXPECTED_FACES}; found Content-Type {content_type!r}")


def decode_photo(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A JPEG or PNG file's bytes as ``uint8 (H, W)`` grey levels, EXIF orientation applied (what the camera
    saw), transparent pixels composited on white, 16-bit grey scaled to 8 bits.

    Raises:
        InputError: 415 not a JPEG or PNG, or a truncated or corrupt one; 413 more than ``max_pixels`` pixels.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InputError(415, f"the upload is empty; expected {EXPECTED_PHOTO}")
    try:
        image = Image.open(io.BytesIO(data), formats=PHOTO_FORMATS)
    except UnidentifiedImageError:
        kind = "PNG" if data.startswith(b"\x89PNG\r\n\x1a\n") else "JPEG" if data.startswith(b"\xff\xd8") else None
        if kind:  # the signature is right: what cannot be read is its header (a 0 × 0 size, a damaged chunk)
            why = f"the {kind} image's header cannot be read (a size of 0 pixels, or damaged)"
            raise InputError(415, f"{why}; expected {EXPECTED_PHOTO}") from None
        raise InputError(415, f"the upload is not a JPEG or PNG image; expected {EXPECTED_PHOTO}") from None
    except Image.DecompressionBombError as err:  # Pillow's message gives the size found
        raise InputError(413, f"the photo has too many pixels ({err}); expected {EXPECTED_PHOTO}") from None
    except (OSError, ValueError, SyntaxError) as err:  # a header cut short or corrupt
        raise InputError(415, f"the image cannot be read ({err}): expected a complete JPEG or PNG file") from None
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(
            413,
            f"the photo is {width} x {height} = {width * height / 1e6:.1f} megapixels; expected at most "
            f"{max_pixels / 1e6:g} megapixels",
        )
    try:
        return grey_levels(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise InputError(
            415, f"the {image.format} image cannot be decoded ({err}): expected a complete JPEG or PNG file"
        ) from None


# ----------------------------------------------------------------------------------------------------- answers
def face_answer(probabilities: np.ndarray) -> dict:
    """``{"probabilities": {emotion name: p}, "label": name}`` of one face's ``(7,)`` probabilities; the label is
    their arg-max."""
    values = [float(p) for p in probabilities]
    return {"probabilities": dict(zip(EMOTIONS, values)), "label": EMOTIONS[int(np.argmax(values))]}


def analyse_photo(data: bytes, inference: Inference, max_pixels: int = MAX_PIXELS) -> dict:
    """Every face of a JPEG/PNG photo and its emotion: ``{"width", "height", "faces": [{"box": {"x", "y", "w",
    "h"}, "probabilities", "label"}]}``, boxes in pixels of the photo as uploaded (after its EXIF rotation),
    faces largest first; ``"faces": []`` when none is found. Blocks: call it from a thread.

    Raises:
        InputError: see :func:`decode_photo`.
    """
    from data_loaders.face_detection import detect_faces
    from widgets.live_emotion import crop_for_model

    grey = decode_photo(data, max_pixels)
    boxes = [tuple(int(v) for v in box) for box in detect_faces(grey)]
    answer = {"width": int(grey.shape[1]), "height": int(grey.shape[0]), "faces": []}
    if boxes:
        crops = np.concatenate([crop_for_model(grey, box, FACE_SIDE) for box in boxes])
        for (x, y, w, h), p in zip(boxes, inference.predict_blocking(crops)):
            answer["faces"].append({"box": {"x": x, "y": y, "w": w, "h": h}, **face_answer(p)})
    return answer


# --------------------------------------------------------------------------------------------------------- app
class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 before it is read (a ``Content-Length`` over
    the cap) or as soon as the bytes received pass it (a chunked body)."""

    def __init__(self, app, max_bytes: int = MAX_UPLOAD_BYTES):
        self.app, self.max_bytes = app, max_bytes

    def message(self, size: str) -> str:
        return f"the request body is {size}; expected at most {self.max_bytes} bytes ({self.max_bytes / 2**20:g} MB)"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            response = JSONResponse({"detail": self.message(f"{int(length)} bytes")}, status_code=413)
            return await response(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self.message(f"over {self.max_bytes} bytes (at least {received})"))
            return message

        return await self.app(scope, limited_receive, send)


def _schemas():
    """Pydantic models of the answers, for the OpenAPI page only (answers are built as plain dicts)."""
    from pydantic import BaseModel, Field, create_model

    probabilities = (dict[str, float], Field(description="probability of each FER2013 emotion, by name"))
    label = (str, Field(description="the emotion with the highest probability"))
    face = create_model("FaceEmotion", probabilities=probabilities, label=label)

    class Box(BaseModel):
        x: int = Field(description="left edge, pixels from the photo's left")
        y: int = Field(description="top edge, pixels from the photo's top")
        w: int = Field(description="width in pixels")
        h: int = Field(description="height in pixels")

    photo_face = create_model("PhotoFace", box=(Box, ...), probabilities=probabilities, label=label)
    faces_answer = create_model("FacesAnswer", faces=(list[face], ...))
    photo_answer = create_model(
        "PhotoAnswer",
        width=(int, Field(description="pixels")),
        height=(int, Field(description="pixels")),
        faces=(list[photo_face], Field(description="every face found, largest first; empty when none")),
    )
    error = create_model("Error", detail=(str, Field(description="what was wrong and what was expected")))
    return faces_answer, photo_answer, error


def create_app(
    model_path: str | Path,
    batching: bool = True,
    fold: bool = True,
    compiled: bool = True,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    inference_threads: int | None = None,
):
    """The FastAPI app serving the model in ``model_path`` (see the module docstring for the endpoints).

    The model is loaded and checked here, before any port is opened. ``batching``, ``fold``, ``compiled`` and
    ``inference_threads`` exist to measure the choices (``benchmarks/serve_load.py``, ``docs/serving.md``); the
    defaults, with :func:`serve`'s ``inference_threads=1``, cost the least CPU a request. ``inference_threads`` is
    the number of threads TensorFlow gives one operation (None: leave TensorFlow's setting, one per core); it can
    be set only before TensorFlow has run anything in this process, and is ignored (with a warning) after.
    ``max_upload_bytes`` caps a request body, ``max_pixels`` a photo's width × height.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_classifier` (a missing file, a model that is not a 48 × 48
            grey-face, 7-class classifier).
    """
    if inference_threads:
        limit_inference_threads(inference_threads)
    classifier = load_classifier(model_path, fold=fold, compiled=compiled)
    inference = Inference(classifier, batching=batching)
    photo_limiter = anyio.CapacityLimiter(PHOTO_WORKERS)
    faces_answer, photo_answer, error = _schemas()
    errors = {code: {"model": error} for code in (400, 413, 415, 422)}

    @asynccontextmanager
    async def lifespan(app):
        inference.start()
        yield
        inference.stop()

    # FastAPIOffline: FastAPI serving the API page's Swagger UI files from its package, not from a CDN (offline).
    app = FastAPIOffline(
        title="Expression Lab emotion service",
        summary=f"FER2013 emotions of faces, by the model {classifier.file}",
        description=__doc__.split("\n\n")[1],
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)

    @app.exception_handler(InputError)
    async def input_error(request: Request, err: InputError):
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        expected = EXPECTED_PHOTO if request.url.path == "/predict/photo" else "the request the API page describes"
        return JSONResponse({"detail": f"expected {expected}; found {problems}"}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, err: Exception):  # answered and logged; the server goes on
        return JSONResponse({"detail": f"the service failed on this request ({type(err).__name__})"}, status_code=500)

    @app.get("/", include_in_schema=False)
    async def root():
        return RedirectResponse("/docs")

    @app.get("/health", summary="The model served and the limits")
    async def health() -> dict:
        return {
            "status": "ok",
            "model": classifier.name,
            "file": classifier.file,
            "input_shape": [FACE_SIDE, FACE_SIDE, 1],
            "input": "float32 grey levels / 255 (the service scales the 0-255 values it receives)",
            "classes": list(EMOTIONS),
            "parameters": classifier.parameters,
            "batch_norms_folded": classifier.batch_norms_folded,
            "compiled": classifier.compiled,
            "batching": inference.batching,
            "limits": {"upload_bytes": max_upload_bytes, "photo_pixels": max_pixels, "faces_per_request": MAX_FACES},
        }

    @app.post(
        "/predict/photo",
        summary="Every face of a JPEG or PNG photo: its box, the 7 probabilities and the top label",
        response_model=None,
        responses={200: {"model": photo_answer}, **errors},
    )
    async def predict_photo(file: Annotated[UploadFile, File(description=EXPECTED_PHOTO)]):
        data = await file.read()
        answer = await anyio.to_thread.run_sync(analyse_photo, data, inference, max_pixels, limiter=photo_limiter)
        return JSONResponse(answer)

    face_schema = {
        "type": "array",
        "minItems": FACE_SIDE,
        "maxItems": FACE_SIDE,
        "items": {
            "type": "array",
            "minItems": FACE_SIDE,
            "maxItems": FACE_SIDE,
            "items": {"type": "number", "minimum": 0, "maximum": 255},
        },
    }
    body_schema = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["faces"],
                    "properties": {
                        "faces": {"type": "array", "minItems": 1, "maxItems": MAX_FACES, "items": face_schema}
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }

    @app.post(
        "/predict/faces",
        summary="The 7 probabilities and the top label of each 48 x 48 grey face",
        description=f"Send {EXPECTED_FACES}. Answers keep the order of the faces sent.",
        response_model=None,
        responses={200: {"model": faces_answer}, **errors},
        openapi_extra={"requestBody": body_schema},
    )
    async def predict_faces(request: Request):
        body = await request.body()
        content_type = request.headers.get("content-type")
        if len(body) > 65536:  # a large JSON batch takes milliseconds to parse: off the event loop
            faces = await anyio.to_thread.run_sync(faces_from_body, body, content_type)
        else:
            faces = faces_from_body(body, content_type)
        probabilities = await inference.predict(faces)
        return JSONResponse({"faces": [face_answer(p) for p in probabilities]})

    app.state.classifier, app.state.inference = classifier, inference
    return app


def serve(
    model_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    access_log: bool = False,
    inference_threads: int | None = 1,
    **options,
) -> None:
    """Serve the model in ``model_path`` with uvicorn on ``host:port`` until interrupted (Ctrl-C).

    Args:
        model_path: a ``.keras`` file (see :func:`load_classifier`).
        host: the address to listen on; the default answers this machine only. The service has no login: put it
            behind an authenticating proxy before listening on a network address.
        port: the TCP port (0: any free one).
        access_log: log one line per request (costs about a tenth of a millisecond a request).
        inference_threads: threads TensorFlow gives one operation (None: one per core). One leaves the other
            core of a 2-core machine to the event loop (HTTP, JSON) and costs least CPU a face when the
            machine is busy (``benchmarks/serve_load.py``).
        options: passed on to :func:`create_app` (``batching``, ``fold``, ``compiled``, the limits).

    Raises:
        FileNotFoundError, ValueError: as :func:`create_app`, or a ``port`` outside 0-65535, before the port is
            opened.
    """
    import uvicorn

    if not 0 <= port <= 65535:
        raise ValueError(f"port {port}: expected a TCP port 0-65535 (0: a free one)")

    app = create_app(model_path, inference_threads=inference_threads, **options)
    classifier = app.state.classifier
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    where = f"{url}, API page {url}/docs" if port else "a free port (named below)"
    print(f"serving {classifier.file} ({classifier.parameters:,} parameters) on {where}; Ctrl-C stops", flush=True)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")


__all__ = [
    "Classifier",
    "EXPECTED_FACES",
    "EXPECTED_PHOTO",
    "FACE_SIDE",
    "Inference",
    "InputError",
    "MAX_FACES",
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "analyse_photo",
    "check_faces",
    "create_app",
    "decode_photo",
    "face_answer",
    "faces_from_body",
    "faces_from_bytes",
    "faces_from_json",
    "load_classifier",
    "serve",
]
