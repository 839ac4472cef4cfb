"""A trained model for other runtimes: ``python -m course export MODEL.keras --format onnx|savedmodel|tfjs``.

* **ONNX** (``--format onnx``, a ``.onnx`` file): what onnxruntime runs, on a server or in the browser
  (onnxruntime-web; ``LiveEmotion(model, backend="browser")`` runs it in the page). Written by Keras 3's
  ``model.export(path, format="onnx")``, which converts the traced TensorFlow graph with tf2onnx (the ``tf2onnx``
  and ``onnx`` packages); the input is named ``faces``, the output ``probabilities``, and the file's metadata
  names the classes (``metadata_props``: ``classes``, a JSON list) and the input it expects.
* **SavedModel** (``--format savedmodel``, a folder): what TensorFlow Serving loads when one machine is not
  enough. Written by ``model.export(path, format="tf_saved_model")``; its ``serving_default`` signature takes
  ``faces`` and returns ``output_0``.
* **TensorFlow.js** (``--format tfjs``): refused with the reason (:data:`TFJS_UNAVAILABLE`): the
  ``tensorflowjs`` converter cannot be installed beside this kit's TensorFlow. ONNX is the browser format here.

What is exported is the model's inference pass, ``model(faces, training=False)``. Keras's own default endpoint
calls the model without ``training=False``, and a model that holds augmentation layers (``RandomFlip``,
``RandomTranslation``, as the reference ``model_2`` does) then exports them active: a SavedModel whose answers
change from call to call (max |Δp| 0.18 against Keras on the reference ``model_2``), and an ONNX graph with random
ops onnxruntime cannot load. :func:`~widgets.onnx_model.inference_model` wraps the model in a functional model
that calls it with ``training=False``, so augmentation and dropout are left out and batch norms use their moving
statistics.

Each export is checked before it is reported (:func:`check_parity`): the exported file is loaded back by its own
runtime (onnxruntime; ``tf.saved_model.load``), run on real-looking faces (:func:`parity_faces`: FER2013 from
``FER2013_PATH``, else the kit's synthetic faces) and compared with Keras: the largest difference of any
probability must be at most :data:`PARITY_TOLERANCE` (float32), else the export is removed and an error raised.
Its speed is measured too (:func:`time_runner`). ``benchmarks/export_parity.py`` does the same for every format.

The model is loaded with ``keras.models.load_model(path, safe_mode=True)``: a model holding Python code (a
``Lambda`` layer) or a class Keras does not know (a custom layer) cannot be loaded safely, and no export format
could carry that code; :func:`load_for_export` says so, naming the layer or class.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from widgets.onnx_model import ONNX_INPUT, ONNX_OUTPUT, inference_model, quiet_converters, write_onnx

#: The export formats, as ``--format`` names them.
FORMATS = ("onnx", "savedmodel", "tfjs")
#: The largest difference allowed between an export's probabilities and Keras's, on the same float32 faces.
PARITY_TOLERANCE = 1e-4
#: Faces the parity check runs by default.
PARITY_FACES = 256
#: The SavedModel's serving signature, its input and its output key.
SAVEDMODEL_SIGNATURE, SAVEDMODEL_OUTPUT = "serving_default", "output_0"
#: Why ``--format tfjs`` is refused (checked with ``pip install --dry-run tensorflowjs``: tensorflowjs 4.22.0
#: requires tensorflow-decision-forests, whose newest release, 1.12.0, requires tensorflow==2.19.0, and tf-keras and
#: packaging~=23.1; pip would replace TensorFlow 2.21 by 2.19, NumPy 2.4 by 2.1 and packaging 26 by 23).
TFJS_UNAVAILABLE = (
    "TensorFlow.js export is not available: its converter, the tensorflowjs package (4.22), cannot be installed "
    "beside this kit's TensorFlow 2.21: it requires tensorflow-decision-forests (whose newest release pins "
    "tensorflow==2.19.0) and packaging~=23.1, so installing it would downgrade TensorFlow, NumPy and packaging. "
    "Export to ONNX instead (--format onnx): onnxruntime-web runs it in the browser, as "
    'LiveEmotion(model, backend="browser") does.'
)

#: ``float32 (N, S, S, 1)`` faces → ``float32 (N, K)`` probabilities.
Runner = Callable[[np.ndarray], np.ndarray]


class ExportUnavailable(RuntimeError):
    """An export format this environment cannot write (the message says why and what to use instead)."""


@dataclass(frozen=True)
class Parity:
    """An export's answers against Keras's on the same faces.

    Attributes:
        faces: how many faces were compared.
        source: where the faces came from (``"FER2013 PublicTest (fer2013.csv)"``, ``"synthetic faces …"``).
        max_abs_diff: the largest ``|p_export - p_keras|`` over every face and class (probabilities in [0, 1]).
        argmax_agreement: the fraction of faces whose top class is the same in both (0-1).
        tolerance: the largest difference allowed (:data:`PARITY_TOLERANCE`).
    """

    faces: int
    source: str
    max_abs_diff: float
    argmax_agreement: float
    tolerance: float = PARITY_TOLERANCE

    @property
    def passed(self) -> bool:
        """Whether ``max_abs_diff`` is at most ``tolerance``."""
        return bool(self.max_abs_diff <= self.tolerance)


@dataclass(frozen=True)
class Timing:
    """An exported model's speed in its runtime, on this machine.

    Attributes:
        load_seconds: wall seconds to load the export (``onnxruntime.InferenceSession``, ``tf.saved_model.load``).
        ms_per_face: median wall milliseconds of one call with one face (batch 1).
        faces_per_second: faces a second in calls of ``batch`` faces (the best of a few passes).
        batch: the batch size behind ``faces_per_second``.
    """

    load_seconds: float
    ms_per_face: float
    faces_per_second: float
    batch: int


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and measured.

    Attributes:
        format: one of :data:`FORMATS`.
        path: the ``.onnx`` file or the SavedModel folder.
        size_bytes: bytes on disk (a folder: all its files).
        export_seconds: wall seconds the export took (tracing and conversion).
        parity: the check against Keras (passed: the export is only kept when it passes).
        timing: the export's speed in its runtime.
    """

    format: str
    path: Path
    size_bytes: int
    export_seconds: float
    parity: Parity
    timing: Timing

    def to_dict(self) -> dict:
        """The result as JSON-ready data (``path`` a string, ``parity`` with ``passed``)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["parity"]["passed"] = self.parity.passed
        return data

    def report(self) -> str:
        """Three lines for a person: what was written, the parity check, the speed."""
        p, t = self.parity, self.timing
        verdict = "OK" if p.passed else "FAILED"
        agree = round(p.argmax_agreement * p.faces)
        return "\n".join(
            [
                f"exported {self.format}: {self.path} ({self.size_bytes / 2**20:.2f} MB) "
                f"in {self.export_seconds:.1f} s",
                f"parity with Keras on {p.faces} {p.source}: max |Δp| {p.max_abs_diff:.2e} (allowed "
                f"{p.tolerance:.0e}), same top label for {agree}/{p.faces} faces: {verdict}",
                f"speed: loads in {t.load_seconds:.2f} s, one face {t.ms_per_face:.2f} ms, "
                f"{t.faces_per_second:,.0f} faces/s in batches of {t.batch}",
            ]
        )


# ------------------------------------------------------------------------------------------------- the model
def _unsafe_reason(err: Exception) -> str:
    """What a ``load_model(safe_mode=True)`` failure means for an export, from Keras's message."""
    text = str(err)
    if "Lambda" in text:
        return (
            "it holds a Lambda layer (Python code, which safe_mode=True refuses to load and no export format can "
            "carry); rebuild the model from built-in Keras layers (e.g. layers.Rescaling instead of a Lambda)"
        )
    unknown = re.search(r"[Cc]ould not (?:locate|deserialize) (?:class|function) '?([\w.>]+)'?", text)
    if unknown:
        return (
            f"it uses {unknown.group(1)!r}, which is not a built-in Keras class or function (a custom object); "
            "export models built from Keras's own layers"
        )
    return f"it does not load with safe_mode=True ({type(err).__name__}: {err})"


def load_for_export(path: str | Path):
    """Load the Keras model in ``path`` for an export: ``keras.models.load_model(path, safe_mode=True,
    compile=False)``, then check its shape.

    Args:
        path: a ``.keras`` file (legacy ``.h5`` also loads) whose model takes grey square faces ``float32
            (N, S, S, 1)`` (S = 48 for the kit's models) and returns ``(N, K)`` probabilities.

    Returns:
        The loaded Keras model.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the model cannot be exported: it holds a ``Lambda`` layer or a custom class (which
            ``safe_mode=True`` refuses: the message names it), the file is not a Keras model, or the model has
            more than one input or output, an input that is not ``(S, S, 1)`` or an output that is not ``(K,)``
            (the message gives the shapes found).
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file (expected a .keras file saved by model.save)")
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # Keras raises ValueError, TypeError, OSError, zipfile errors… for a file it refuses
        raise ValueError(f"{path}: cannot be exported: {_unsafe_reason(err)}") from None
    inputs, outputs = model.inputs, model.outputs
    shape = tuple(inputs[0].shape[1:]) if len(inputs) == 1 else ()
    if len(shape) != 3 or shape[0] != shape[1] or shape[2] != 1 or shape[0] is None:
        found = [tuple(t.shape) for t in inputs]
        raise ValueError(
            f"{path}: cannot be exported: expected a model taking grey square faces, input shape (None, S, S, 1) "
            f"(S = 48 for the kit's models); found {found}"
        )
    if len(outputs) != 1 or len(outputs[0].shape) != 2 or outputs[0].shape[1] is None:
        found = [tuple(t.shape) for t in outputs]
        raise ValueError(
            f"{path}: cannot be exported: expected one output of class probabilities, shape (None, K); found {found}"
        )
    return model


def keras_probabilities(model, faces: np.ndarray, batch: int = 256) -> np.ndarray:
    """``model(faces, training=False)`` in batches of ``batch``: ``float32 (N, K)`` numpy."""
    import keras

    parts = [
        keras.ops.convert_to_numpy(model(faces[i : i + batch], training=False)) for i in range(0, len(faces), batch)
    ]
    return np.concatenate(parts).astype(np.float32)


def parity_faces(count: int = PARITY_FACES, side: int = 48, data: str | Path | None = None) -> tuple[np.ndarray, str]:
    """Real-looking faces for the parity check: ``count`` faces spread evenly over FER2013's PublicTest rows (all
    rows when the file has no PublicTest), scaled as the kit's models take them.

    Args:
        count: how many faces (fewer when the data has fewer).
        side: the model's input side in pixels; faces are resized from 48 × 48 (area averaging) when it differs.
        data: a FER2013 file or folder, or ``"synthetic"``; default as :func:`data_loaders.load_fer2013`
            (``FER2013_PATH``, then ``data/fer2013/``, then the kit's synthetic faces).

    Returns:
        ``(faces, source)``: ``float32 (N, side, side, 1)`` in [0, 1], and a few words naming where they came from.

    Raises:
        FileNotFoundError, data_loaders.FER2013FormatError: as :func:`data_loaders.load_fer2013`.
    """
    from data_loaders import load_fer2013
    from data_loaders.synthetic import is_synthetic

    dataset = load_fer2013(data)
    if "PublicTest" in dataset.usages:
        dataset = dataset.subset("PublicTest")
    picked = np.linspace(0, len(dataset.images) - 1, min(count, len(dataset.images))).astype(int)
    images = dataset.images[picked]
    if side != images.shape[1]:
        import cv2

        images = np.stack([cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA) for face in images])
    usage = "PublicTest" if set(dataset.usage) == {"PublicTest"} else "rows"
    kind = "synthetic faces" if is_synthetic(dataset.source) else "FER2013"
    source = f"{kind} ({usage} of {Path(dataset.source).name})"
    return (images.astype(np.float32) / 255.0)[..., None], source


# ---------------------------------------------------------------------------------------------------- writing
def export_onnx(model, path: str | Path, source: str = "") -> Path:
    """Write ``model``'s inference pass as an ONNX file with :func:`widgets.onnx_model.write_onnx` (the browser
    backend's converter: Keras 3's ``model.export(path, format="onnx")`` and tf2onnx), which documents the
    arguments, the file's input and output, and the errors."""
    return write_onnx(model, path, source)


def export_savedmodel(model, path: str | Path) -> Path:
    """Write ``model``'s inference pass (:func:`inference_model`) as a TensorFlow SavedModel folder with Keras 3's
    ``model.export(path, format="tf_saved_model")``: what TensorFlow Serving loads.

    Args:
        model: a Keras model taking ``float32 (N, S, S, 1)`` and returning ``(N, K)`` probabilities.
        path: the folder to write (replaced if it exists).

    Returns:
        ``path``; its signature :data:`SAVEDMODEL_SIGNATURE` takes ``faces`` ``float32 (N, S, S, 1)`` and returns
        ``{"output_0": float32 (N, K)}`` (and ``tf.saved_model.load(path).serve(faces)`` the probabilities).
    """
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    with quiet_converters():
        inference_model(model).export(str(path), format="tf_saved_model", verbose=False)
    return path


def _check_out(model_path: Path, out: Path, format: str, overwrite: bool) -> None:
    """Refuse an ``out`` whose replacement would destroy something that is not an earlier export: the model itself,
    a folder holding it, a folder that is not a SavedModel (``--overwrite`` removes the folder it names), or a
    file where a folder is written and the other way round.

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is False, or it is not what this format writes.
        ValueError: ``out`` is the model file or a folder that holds it.
    """
    model, target = model_path.resolve(), out.resolve()
    if target == model or model.is_relative_to(target):
        raise ValueError(f"--out {out}: that is the model {model_path} or a folder holding it; choose another --out")
    if not out.exists() and not out.is_symlink():
        return
    if not overwrite:
        raise FileExistsError(f"{out} exists: choose another --out, or --overwrite to replace it")
    if format == "savedmodel":
        folder = out.is_dir() and not out.is_symlink()
        if not (folder and (not any(out.iterdir()) or (out / "saved_model.pb").is_file())):  # empty, or an export
            raise FileExistsError(
                f"{out} exists and is not a SavedModel folder (no saved_model.pb): --overwrite replaces only an "
                "earlier export; choose another --out"
            )
    elif not out.is_file() or out.is_symlink():
        raise FileExistsError(f"{out} exists and is not a file: an ONNX export is one file; choose another --out")


def export_tfjs(model, path: str | Path) -> Path:
    """TensorFlow.js export: always refused here (:data:`TFJS_UNAVAILABLE` says why, and names ONNX instead).

    Raises:
        ExportUnavailable: always.
    """
    raise ExportUnavailable(TFJS_UNAVAILABLE)


# ---------------------------------------------------------------------------------------------------- reading
def load_export(path: str | Path, format: str, threads: int | None = None) -> Runner:
    """Load an export in its own runtime and return it as a callable ``float32 (N, S, S, 1)`` → ``float32 (N, K)``.

    Args:
        path: the ``.onnx`` file or the SavedModel folder.
        format: ``"onnx"`` (onnxruntime, CPU) or ``"savedmodel"`` (``tf.saved_model.load``, its
            :data:`SAVEDMODEL_SIGNATURE` signature, as TensorFlow Serving calls it).
        threads: threads onnxruntime gives one operation (None: its default, one per core); SavedModels run on
            TensorFlow's threads.

    Raises:
        ValueError: an unknown format, or a file its runtime refuses (the message names the runtime's error).
    """
    path = Path(path)
    if format == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own error classes (InvalidGraph, NotImplemented…)
            raise ValueError(f"{path}: onnxruntime cannot load this ONNX file ({err})") from None
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: np.asarray(x, np.float32)})[0]
    if format == "savedmodel":
        import tensorflow as tf

        signature = tf.saved_model.load(str(path)).signatures[SAVEDMODEL_SIGNATURE]
        return lambda x: signature(**{ONNX_INPUT: tf.constant(x, tf.float32)})[SAVEDMODEL_OUTPUT].numpy()
    raise ValueError(f"cannot load a {format!r} export: expected 'onnx' or 'savedmodel'")


def check_parity(reference: np.ndarray, run: Runner, faces: np.ndarray, source: str = "faces") -> Parity:
    """Compare an export's probabilities with Keras's on the same faces.

    Args:
        reference: Keras's ``float32 (N, K)`` probabilities of ``faces`` (:func:`keras_probabilities`).
        run: the loaded export (:func:`load_export`).
        faces: ``float32 (N, S, S, 1)``.
        source: where the faces came from, for the report.

    Raises:
        ValueError: the export's output has another shape than ``reference``.
    """
    found = np.concatenate([run(faces[i : i + 256]) for i in range(0, len(faces), 256)])
    if found.shape != reference.shape:
        raise ValueError(f"the export returned shape {found.shape} for {len(faces)} faces; Keras {reference.shape}")
    diff = float(np.abs(found.astype(np.float64) - reference).max())
    agreement = float((found.argmax(axis=1) == reference.argmax(axis=1)).mean())
    return Parity(len(faces), source, diff, agreement)


def time_runner(
    run: Runner, faces: np.ndarray, batch: int = 256, calls: int = 50, passes: int = 3
) -> tuple[float, float]:
    """``(ms_per_face, faces_per_second)``: the median wall time of ``calls`` one-face calls (after a warm-up),
    and the best rate of ``passes`` passes over ``faces`` (tiled to at least ``batch``) in calls of ``batch``."""
    one = faces[:1]
    run(one)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run(one)
        times.append(time.perf_counter() - start)
    many = np.concatenate([faces] * -(-batch // len(faces)))[: max(batch, len(faces))]
    run(many[:batch])
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for i in range(0, len(many), batch):
            run(many[i : i + batch])
        best = min(best, time.perf_counter() - start)
    return float(np.median(times)) * 1000, len(many) / best


def size_on_disk(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def default_out(model_path: str | Path, format: str) -> Path:
    """Where an export goes when ``--out`` is not given: beside the model, ``model_2.onnx``,
    ``model_2_savedmodel/``, ``model_2_tfjs/``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + (".onnx" if format == "onnx" else f"_{format}"))


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def export_model(
    model_path: str | Path,
    format: str,
    out: str | Path | None = None,
    overwrite: bool = False,
    faces: np.ndarray | None = None,
    faces_source: str = "faces",
    data: str | Path | None = None,
) -> ExportResult:
    """Export the Keras model in ``model_path`` to ``format``, check it against Keras and time it.

    Args:
        model_path: a ``.keras`` file (see :func:`load_for_export`).
        format: one of :data:`FORMATS`.
        out: the file (ONNX) or folder (SavedModel) to write; default :func:`default_out`.
        overwrite: replace ``out`` when it exists (else an error).
        faces: the faces of the parity check, ``float32 (N, S, S, 1)`` in [0, 1]; default :func:`parity_faces`.
        faces_source: what ``faces`` are, for the report.
        data: where :func:`parity_faces` reads FER2013 (when ``faces`` is None).

    Returns:
        The :class:`ExportResult` (its parity check passed).

    Raises:
        FileNotFoundError: ``model_path`` (or the data) does not exist.
        FileExistsError: ``out`` exists and ``overwrite`` is False, or ``out`` is not an earlier export of this
            format (a folder without ``saved_model.pb``, a folder for ONNX, a file for a SavedModel).
        ValueError: ``out`` is the model file or a folder holding it; an unknown format, a model that cannot be
            exported (see :func:`load_for_export`, :func:`export_onnx`), or an export whose probabilities differ
            from Keras's by more than :data:`PARITY_TOLERANCE` (it is removed; the message gives the difference).
        ExportUnavailable: ``format`` is ``"tfjs"`` (:data:`TFJS_UNAVAILABLE`).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}: expected one of {', '.join(FORMATS)}")
    if format == "tfjs":
        raise ExportUnavailable(TFJS_UNAVAILABLE)
    out = Path(out) if out else default_out(model_path, format)
    _check_out(Path(model_path), out, format, overwrite)
    model = load_for_export(model_path)
    side = int(model.inputs[0].shape[1])
    if faces is None:
        faces, faces_source = parity_faces(side=side, data=data)
    faces = np.asarray(faces, dtype=np.float32)
    reference = keras_probabilities(model, faces)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if format == "onnx":
        export_onnx(model, out, source=Path(model_path).name)
    else:
        export_savedmodel(model, out)
    export_seconds = time.perf_counter() - start
    start = time.perf_counter()
    try:
        run = load_export(out, format)
    except ValueError:
        _remove(out)
        raise
    load_seconds = time.perf_counter() - start
    parity = check_parity(reference, run, faces, faces_source)
    if not parity.passed:
        _remove(out)
        raise ValueError(
            f"{model_path}: the {format} export differs from Keras by up to {parity.max_abs_diff:.2e} on "
            f"{parity.faces} {parity.source} (allowed {parity.tolerance:.0e}); it was removed"
        )
    ms_per_face, rate = time_runner(run, faces)
    timing = Timing(load_seconds, ms_per_face, rate, 256)
    return ExportResult(format, out, size_on_disk(out), export_seconds, parity, timing)


__all__ = [
    "ExportResult",
    "ExportUnavailable",
    "FORMATS",
    "ONNX_INPUT",
    "ONNX_OUTPUT",
    "PARITY_FACES",
    "PARITY_TOLERANCE",
    "Parity",
    "SAVEDMODEL_OUTPUT",
    "SAVEDMODEL_SIGNATURE",
    "TFJS_UNAVAILABLE",
    "Timing",
    "check_parity",
    "default_out",
    "export_model",
    "export_onnx",
    "export_savedmodel",
    "export_tfjs",
    "inference_model",
    "keras_probabilities",
    "load_export",
    "load_for_export",
    "parity_faces",
    "size_on_disk",
    "time_runner",
]
