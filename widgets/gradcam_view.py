"""Grad-CAM heatmaps face by face: a face, the model's probability bars, and the heatmap of the class you pick.

The widget never computes an explanation itself: it takes a function that does, ``explain(model, images,
class_index) -> maps``, e.g. the ``grad_cam`` a student writes in assignment 6 (``images`` float32 ``(N, 48, 48,
1)`` in [0, 1], ``class_index`` ``(N,)`` ints, ``maps`` ``(N, 48, 48)`` in [0, 1]). When a face is shown the kernel
calls it once with the face repeated for every class (one batched call, 7 maps), and sends the face, the maps and
the probabilities to the browser as bytes; picking a class repaints the heatmap there without a round trip, and
*next* / *previous* (or setting ``index``) shows another face. The model's probabilities for all faces come from one
batched call when the widget is made. Maps are cached per face (the last 64 faces).

Measured (``python -m benchmarks.gradcam_view``, 2 CPU cores shared with other jobs, load average about 2, the
kit's fallback ``model_2``, the reference ``grad_cam`` of assignment 6): 22-30 ms per face for the 7 maps and
their encoding (median of 39 faces in the best round of runs; 90th percentile 23-44 ms; the first face about
0.1-0.2 s, while TensorFlow builds its kernels); the budget is 50 ms. A ``grad_cam`` that records the whole model
on its tape instead of only the layers after the feature map takes about twice as long.

    view = GradCamView(faces, model_2, explain=grad_cam, labels=labels)
    view  # view.timings_ms: per face shown, milliseconds from the call to the bytes ready
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import anywidget
import numpy as np
import traitlets

from data_loaders.emotions import EMOTIONS

_HERE = Path(__file__).resolve().parent
#: Faces whose maps are kept (going back to one of them costs no new call).
CACHE_FACES = 64


def model_inputs(images) -> np.ndarray:
    """``float32 (N, 48, 48, 1)`` in [0, 1] from ``uint8 (N, H, W)`` grey levels or floats already in [0, 1]
    (``(N, H, W)`` or ``(N, H, W, 1)``).

    Raises:
        ValueError: not a stack of single-channel images.
    """
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(f"expected images (N, H, W) or (N, H, W, 1) with N >= 1, got shape {np.shape(images)}")
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return x[..., None]


def _bytes(values: np.ndarray) -> str:
    """``values`` in [0, 1] as base64 of uint8 0-255 (NaN as 0), row-major."""
    v = np.nan_to_num(np.asarray(values, np.float64), nan=0.0)
    return base64.b64encode((np.clip(v, 0.0, 1.0) * 255 + 0.5).astype(np.uint8).tobytes()).decode()


class GradCamView(anywidget.AnyWidget):
    """A face, the model's probability bars and the heatmap of a chosen class, one face at a time.

    Args:
        images: the faces, ``uint8 (N, 48, 48)`` or floats in [0, 1] (``(N, 48, 48, 1)`` as models take them).
        model: a Keras model ``(N, 48, 48, 1)`` → ``(N, K)`` class probabilities.
        explain: ``explain(model, images (M, 48, 48, 1), class_index (M,)) -> (M, 48, 48)`` maps in [0, 1];
            called with the shown face repeated K times and ``class_index = 0 … K-1``.
        labels: the true class of each face (optional; shown beside the prediction).
        class_names: K names in the model's output order.

    A map of another shape or with NaN values, or an ``explain`` that raises, is reported in the widget's status
    line (and :attr:`error`), not raised: the face and the bars still show. Raises ValueError for images, labels or
    predictions whose shapes do not agree.
    """

    _esm = _HERE / "gradcam_view.js"
    _css = _HERE / "gradcam_view.css"

    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    count = traitlets.Int(0).tag(sync=True)  #: number of faces
    index = traitlets.Int(0).tag(sync=True)  #: the face shown (set it, or press next / previous)
    selected = traitlets.Int(0).tag(sync=True)  #: the class whose heatmap is shown
    side = traitlets.Int(48).tag(sync=True)  #: image side in pixels
    face = traitlets.Unicode("").tag(sync=True)  #: the face, base64 uint8 (side × side)
    heatmaps = traitlets.Unicode("").tag(sync=True)  #: K maps, base64 uint8 (K × side × side); "" without maps
    probabilities = traitlets.List(traitlets.Float()).tag(sync=True)
    true_label = traitlets.Int(-1).tag(sync=True)  #: -1 when unknown
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        images,
        model,
        explain: Callable,
        labels: Sequence[int] | None = None,
        class_names: Sequence[str] = EMOTIONS,
    ):
        self.inputs = model_inputs(images)
        n, side = len(self.inputs), self.inputs.shape[1]
        if self.inputs.shape[2] != side:
            raise ValueError(f"expected square faces, got {self.inputs.shape[1:3]}")
        self.labels = None if labels is None else np.asarray(labels, int)
        if self.labels is not None and self.labels.shape != (n,):
            raise ValueError(f"expected {n} labels, got shape {self.labels.shape}")
        self.model, self.explain = model, explain
        self.probs = np.concatenate(
            [np.asarray(model(self.inputs[i : i + 256], training=False)) for i in range(0, n, 256)]
        )
        if self.probs.shape != (n, len(class_names)):
            raise ValueError(
                f"expected the model to give ({n}, {len(class_names)}) probabilities, got {self.probs.shape}"
            )
        self.error: str | None = None
        self.timings_ms: list[float] = []  #: per face explained: ms from the call to the bytes ready
        self._cache: dict[int, str] = {}
        super().__init__(
            class_names=list(class_names), count=n, side=side, selected=int(np.argmax(self.probs[0])), index=0
        )
        self.observe(lambda change: self.show(int(change["new"])), names="index")
        self.show(0)

    def maps(self, i: int) -> np.ndarray:
        """The K maps of face ``i`` from ``explain`` (one call, the face repeated K times), ``(K, side, side)``.

        Raises:
            ValueError: ``explain`` returned another shape, or NaN or infinite values (the message names the
                classes whose maps hold them).
        """
        k, side = len(self.class_names), self.side
        out = np.asarray(self.explain(self.model, np.repeat(self.inputs[i : i + 1], k, axis=0), np.arange(k)))
        if out.shape != (k, side, side):
            raise ValueError(f"expected explain to return ({k}, {side}, {side}) maps, got shape {out.shape}")
        broken = [self.class_names[c] for c in np.flatnonzero(~np.isfinite(out.astype(np.float64)).all(axis=(1, 2)))]
        if broken:  # drawn as a blank map with an empty status line before
            raise ValueError(f"explain returned NaN or infinite values in the maps of {', '.join(broken)}")
        return out

    def show(self, i: int) -> None:
        """Show face ``i``: its pixels, probabilities and the K maps (computed now unless cached)."""
        if not 0 <= i < self.count:
            raise IndexError(f"face {i} out of range 0..{self.count - 1}")
        status = ""
        if i not in self._cache:
            start = time.perf_counter()
            try:
                encoded = _bytes(self.maps(i))
            except Exception as exc:  # the student's function: say what went wrong, keep the face and bars
                encoded, status = "", f"explain failed: {type(exc).__name__}: {exc}"
            else:
                self.timings_ms.append(1000 * (time.perf_counter() - start))
                if len(self._cache) >= CACHE_FACES:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[i] = encoded
        self.error = status or None
        with self.hold_sync():
            if self.index != i:
                self.index = i
            self.face = _bytes(self.inputs[i, ..., 0])
            self.heatmaps = self._cache.get(i, "")
            self.probabilities = [float(p) for p in self.probs[i]]
            self.true_label = -1 if self.labels is None else int(self.labels[i])
            self.status = status

    def next(self) -> None:
        """Show the next face (after the last, the first)."""
        self.index = (self.index + 1) % self.count


__all__ = ["CACHE_FACES", "GradCamView", "model_inputs"]
