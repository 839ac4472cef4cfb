"""A Keras face model as ONNX, for onnxruntime: the file ``python -m course export --format onnx`` writes and the
model ``LiveEmotion(model, backend="browser")`` runs in the page (onnxruntime-web).

The conversion is Keras 3's own, ``model.export(path, format="onnx")`` (tf2onnx under the TensorFlow backend), of
the model's inference pass (:func:`inference_model`: ``model(faces, training=False)``, so that augmentation layers
and dropout are left out; Keras's default export endpoint keeps them active). The ONNX graph's input is named
``faces`` (``float32 (N, S, S, 1)`` in [0, 1]) and its output ``probabilities`` (``float32 (N, K)``); the file's
metadata (``metadata_props``) says so and, for 7 outputs, names the FER2013 classes (``classes``, a JSON list).
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_loaders.emotions import EMOTIONS

#: The ONNX graph's input and output names.
ONNX_INPUT, ONNX_OUTPUT = "faces", "probabilities"


def inference_model(model):
    """A functional Keras model computing ``model(faces, training=False)``, its input named ``faces``: what the
    exports trace. Augmentation layers and dropout are left out, batch norms use their moving statistics. It shares
    ``model``'s weights, and has been called once (Keras exports only a model that has been called)."""
    import keras

    shape = tuple(model.inputs[0].shape[1:])
    faces = keras.Input(shape, dtype="float32", name=ONNX_INPUT)
    wrapped = keras.Model(faces, model(faces, training=False), name=f"{model.name}_inference")
    wrapped(np.zeros((1, *shape), np.float32))
    return wrapped


@contextlib.contextmanager
def quiet_converters() -> Iterator[None]:
    """tf2onnx logs every graph rewrite at INFO, and Keras's numpy-2 patch of it warns: silence both while
    converting (errors still show)."""
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _name_and_describe(path: Path, classes: int, source: str) -> None:
    """Name the ONNX graph's output :data:`ONNX_OUTPUT` (tf2onnx names it after a TensorFlow op) and note the
    classes and the expected input in the file's metadata."""
    import onnx

    proto = onnx.load(str(path))
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [ONNX_OUTPUT if name == old else name for name in node.output]
        node.input[:] = [ONNX_OUTPUT if name == old else name for name in node.input]
    proto.graph.output[0].name = ONNX_OUTPUT
    side = proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    metadata = {
        "input": f"float32 (N, {side}, {side}, 1): grey faces scaled to [0, 1]",
        "output": f"float32 (N, {classes}): class probabilities",
        "source": source,
    }
    if classes == len(EMOTIONS):
        metadata["classes"] = json.dumps(list(EMOTIONS))
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def write_onnx(model, path: str | Path, source: str = "") -> Path:
    """Write ``model``'s inference pass (:func:`inference_model`) as an ONNX file (tf2onnx's default opset).

    Args:
        model: a Keras model taking ``float32 (N, S, S, 1)`` and returning ``(N, K)`` probabilities.
        path: the ``.onnx`` file to write (replaced if it exists).
        source: words stored in the file's metadata (``source``), e.g. the model file's name.

    Returns:
        ``path``: input ``faces`` ``float32 (N, S, S, 1)``, output ``probabilities`` ``float32 (N, K)``.

    Raises:
        ValueError: the conversion failed (an operation tf2onnx cannot convert; the message gives Keras's error).
    """
    path = Path(path)
    try:
        with quiet_converters():
            inference_model(model).export(str(path), format="onnx", verbose=False)
    except Exception as err:  # tf2onnx raises many kinds of errors for ops it cannot convert
        raise ValueError(f"{path}: the ONNX conversion failed ({type(err).__name__}: {err})") from None
    _name_and_describe(path, int(model.outputs[0].shape[1]), source or model.name)
    return path


def onnx_bytes(model, source: str = "") -> bytes:
    """:func:`write_onnx` into a temporary file, returned as the file's bytes (for a browser).

    Raises:
        ValueError: as :func:`write_onnx`.
    """
    with tempfile.TemporaryDirectory() as folder:
        return write_onnx(model, Path(folder) / "model.onnx", source).read_bytes()


__all__ = ["ONNX_INPUT", "ONNX_OUTPUT", "inference_model", "onnx_bytes", "quiet_converters", "write_onnx"]
