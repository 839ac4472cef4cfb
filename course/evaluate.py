"""Evaluate a saved Keras model on a FER2013-format file: accuracy, per-class precision/recall/F1, confusion.

Input contract (what the kit's notebooks produce): a model taking ``float32 (N, 48, 48, 1)`` images scaled to
[0, 1] and returning 7 probabilities in FER2013 order. Other models are described by ``input_size`` and
``scale``; e.g. the mini-Xception peer (Arriaga et al. 2017) takes 64×64 inputs scaled to [-1, 1].
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from data_loaders import EMOTIONS, ImageDataset

Scale = Literal["unit", "symmetric", "raw"]


def model_inputs(images: np.ndarray, input_size: int = 48, scale: Scale = "unit") -> np.ndarray:
    """``uint8 (N, 48, 48)`` faces -> ``float32 (N, input_size, input_size, 1)`` scaled as the model expects.

    ``scale``: ``"unit"`` ([0, 1]: pixels/255, the kit's contract), ``"symmetric"`` ([-1, 1]: (pixels/255 - 0.5)
    * 2, the mini-Xception convention) or ``"raw"`` (0-255). Resizing uses bilinear interpolation (TensorFlow
    ``resize``).
    """
    x = images.astype(np.float32)[..., None]
    if input_size != images.shape[1]:
        import tensorflow as tf

        x = tf.image.resize(x, (input_size, input_size), method="bilinear").numpy()
    if scale == "unit":
        return x / 255.0
    if scale == "symmetric":
        return (x / 255.0 - 0.5) * 2.0
    if scale == "raw":
        return x
    raise ValueError(f"scale must be 'unit', 'symmetric' or 'raw', got {scale!r}")


@dataclass
class Evaluation:
    """What :func:`evaluate_model` measured. Per-class lists are in FER2013 label order."""

    model: str
    data: str
    usage: str
    n_images: int
    parameters: int
    model_bytes: int
    accuracy: float
    macro_f1: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]  #: rows true class, columns predicted class
    images_per_second: float
    class_names: tuple[str, ...] = EMOTIONS

    def to_dict(self) -> dict:
        return asdict(self)

    def report(self) -> str:
        lines = [
            f"{self.model} on {self.usage} of {self.data} ({self.n_images:,} faces)",
            f"accuracy {self.accuracy:.2%} · macro-F1 {self.macro_f1:.3f} · {self.parameters:,} parameters · "
            f"{self.model_bytes / 1e6:.1f} MB · {self.images_per_second:,.0f} faces/s",
            "",
            f"{'class':<10}{'precision':>10}{'recall':>8}{'F1':>7}{'support':>9}",
        ]
        for i, name in enumerate(self.class_names):
            lines.append(
                f"{name:<10}{self.precision[i]:>10.3f}{self.recall[i]:>8.3f}{self.f1[i]:>7.3f}{self.support[i]:>9}"
            )
        lines += ["", "confusion (rows true, columns predicted): " + " ".join(n[:3] for n in self.class_names)]
        lines += [
            f"  {self.class_names[i][:3]} " + " ".join(f"{v:>3}" for v in row) for i, row in enumerate(self.confusion)
        ]
        return "\n".join(lines)


def with_flip_tta(model):
    """Wrap a Keras image classifier in flip test-time augmentation: the mean of its softmax outputs for each
    face and its mirror image (``keras.ops.flip`` on the width axis), as one functional ``keras.Model`` that saves
    and loads like any other. Doubles the inference cost; training the wrapped model would train ``model``.

    Mirroring keeps the expression (faces are near-symmetric, FER2013 is trained with horizontal flips), so the
    two predictions are of the same face and their average has less variance (e.g. Simonyan & Zisserman 2015,
    who average over flips).
    """
    import keras

    inputs = keras.Input(shape=model.input_shape[1:])
    mirrored = keras.ops.flip(inputs, axis=2)  # (N, H, W, C): axis 2 is the width
    outputs = keras.layers.Average()([model(inputs), model(mirrored)])
    return keras.Model(inputs, outputs, name=f"{model.name}_flip_tta")


def evaluate_model(
    model_path: str | Path,
    data: ImageDataset,
    usage: str,
    input_size: int = 48,
    scale: Scale = "unit",
    batch_size: int = 512,
    flip_tta: bool = False,
) -> Evaluation:
    """Evaluate the model file at ``model_path`` on the ``usage`` rows of ``data``; ``flip_tta=True`` averages
    each prediction with that of the mirrored face (:func:`with_flip_tta`). Functional and Sequential models are
    run with their batch norms folded (:func:`course.inference.fold_batch_norms`: the same predictions to float
    rounding; on 2 cores 1.04-1.17× the faces/s in batches, 1.4× for one face: ``benchmarks/inference_speed.py``);
    ``images_per_second`` is timed over the whole split in batches of ``batch_size``.

    Raises:
        FileNotFoundError: no model file.
        ValueError: ``input_size`` < 1; ``data`` has no ``usage`` rows; the file is not a Keras model; the model
            does not take ``(input_size, input_size, 1)`` faces or its output is not 7 classes.
    """
    import keras
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    from .inference import fold_batch_norms, has_layer_graph

    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if input_size < 1:
        raise ValueError(f"input_size must be a positive number of pixels, got {input_size}")
    subset = data.subset(usage)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # Keras raises many kinds for a file that is not a model (OSError, ValueError, …)
        raise ValueError(f"{path}: not a Keras model file ({type(err).__name__}: {err})") from None
    wanted, takes = (input_size, input_size, 1), model.input_shape
    fits = isinstance(takes, tuple) and len(takes) == 4 and all(d in (None, w) for d, w in zip(takes[1:], wanted))
    if not fits:  # None: a side the model leaves open
        raise ValueError(
            f"{path} takes inputs {takes}; expected (None, {input_size}, {input_size}, 1), grey faces of "
            f"--input-size {input_size} (the mini-Xception peer: --input-size 64)"
        )
    if model.output_shape[-1] != len(EMOTIONS):
        raise ValueError(f"{path} outputs {model.output_shape[-1]} values; expected {len(EMOTIONS)} (FER2013)")
    parameters = int(model.count_params())  # of the model as saved, before folding
    if has_layer_graph(model):
        model = fold_batch_norms(model)
    if flip_tta:
        model = with_flip_tta(model)
    x = model_inputs(subset.images, input_size, scale)
    # warm-up on a full batch and on the last, partial one: tracing the graph for each shape is not inference
    model.predict(x[: batch_size + len(x) % batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    seconds = time.perf_counter() - start
    pred = probs.argmax(axis=1)
    labels = list(range(len(EMOTIONS)))
    p, r, f, s = precision_recall_fscore_support(subset.labels, pred, labels=labels, zero_division=0)
    return Evaluation(
        model=str(path) + (" + flip TTA" if flip_tta else ""),
        data=subset.source,
        usage=usage,
        n_images=len(subset),
        parameters=parameters,
        model_bytes=path.stat().st_size,
        accuracy=float(np.mean(pred == subset.labels)),
        macro_f1=float(f1_score(subset.labels, pred, labels=labels, average="macro", zero_division=0)),
        precision=p.tolist(),
        recall=r.tolist(),
        f1=f.tolist(),
        support=s.astype(int).tolist(),
        confusion=confusion_matrix(subset.labels, pred, labels=labels).tolist(),
        images_per_second=len(x) / max(seconds, 1e-9),
    )
