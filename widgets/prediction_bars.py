"""Per-class probability bars for one face, and an interactive browser over many faces."""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as ipw
import numpy as np
import plotly.graph_objects as go

from data_loaders.emotions import EMOTIONS, check_class_codes

_BAR = "#9aa5b1"
_PREDICTED = "#d1495b"
_TRUE_OUTLINE = "#2e7d32"


def _probabilities(pred, n_classes: int) -> np.ndarray:
    p = np.asarray(pred, dtype=np.float64).squeeze()
    if p.shape != (n_classes,):
        raise ValueError(
            f"pred must hold {n_classes} class probabilities (shape ({n_classes},) or (1, "
            f"{n_classes})), got shape {np.shape(pred)}"
        )
    if not np.all(np.isfinite(p)):
        raise ValueError("pred contains NaN or inf")
    return p


def bar_style(p: np.ndarray, true_label: int | None) -> tuple[list[str], list[str], list[float]]:
    """Bar colours (the argmax highlighted), outline colours and outline widths (the true class outlined) for the
    probabilities ``p`` of shape ``(classes,)``."""
    colours = [_PREDICTED if i == int(np.argmax(p)) else _BAR for i in range(len(p))]
    outline = [_TRUE_OUTLINE if i == true_label else "rgba(0,0,0,0)" for i in range(len(p))]
    widths = [3.0 if i == true_label else 0.0 for i in range(len(p))]
    return colours, outline, widths


def prediction_title(p: np.ndarray, true_label: int | None, class_names: Sequence[str]) -> str:
    """``"Predicted: Happy (83%) · true: Sad"``: the argmax of ``p`` with its probability, and the true class."""
    k = int(np.argmax(p))
    truth = "" if true_label is None or true_label < 0 else f" · true: {class_names[true_label]}"
    return f"Predicted: {class_names[k]} ({p[k]:.0%}){truth}"


def plot_emotion_prediction(
    pred, true_label: int | None = None, class_names: Sequence[str] = EMOTIONS, title: str | None = None
) -> go.Figure:
    """Bar chart of a model's class probabilities for one face (the handout's ``plot_emotion_prediction``).

    Args:
        pred: probabilities, shape ``(7,)`` or ``(1, 7)`` (a softmax output row), in FER2013 label order.
        true_label: the correct FER2013 code 0-6, outlined in green when given (-1: unlabelled, not shown).
        class_names: names in label order.
        title: figure title; default names the predicted class and its probability.

    Returns:
        A plotly ``Figure``: one ``Bar`` trace, the predicted (arg-max) class in red.

    Raises:
        ValueError: ``pred`` has the wrong shape or non-finite values, or ``true_label`` is not a class code.
    """
    p = _probabilities(pred, len(class_names))
    check_class_codes([] if true_label is None else [true_label], len(class_names), "true_label", unlabelled=True)
    colours, outline, widths = bar_style(p, true_label)
    fig = go.Figure(
        go.Bar(
            x=list(class_names),
            y=p,
            marker=dict(color=colours, line=dict(color=outline, width=widths)),
            hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or prediction_title(p, true_label, class_names),
        yaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
        height=300,
        width=460,
        margin=dict(l=50, r=10, t=40, b=40),
        template="simple_white",
    )
    return fig


class PredictionBars(ipw.VBox):
    """Pick a face with a slider; its image and its class-probability bars update through the kernel.

    Args:
        images: ``uint8 (N, 48, 48)`` faces, grey levels 0-255 (or floats in [0, 1]).
        probabilities: ``(N, 7)`` model outputs for those faces (e.g. ``model.predict(x)``).
        labels: optional true FER2013 codes ``(N,)``; shown and outlined in the bars (-1: unlabelled).
        class_names: names in label order.
        title: a heading shown above the slider (e.g. which model made the probabilities).

    Raises:
        ValueError: the arrays disagree in length or have the wrong shapes, a row of ``probabilities`` is not
            finite, or a label is not a class code (the message names the row or entry).
    """

    def __init__(
        self,
        images: np.ndarray,
        probabilities: np.ndarray,
        labels: np.ndarray | None = None,
        class_names: Sequence[str] = EMOTIONS,
        title: str | None = None,
    ):
        images = np.asarray(images)
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.ndim != 3 or probabilities.shape != (len(images), len(class_names)):
            raise ValueError(
                f"expected images (N, H, W) and probabilities (N, {len(class_names)}), got "
                f"{images.shape} and {probabilities.shape}"
            )
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"labels has {len(labels)} entries for {len(images)} images")
        finite = np.isfinite(probabilities).all(axis=1)  # every row: the slider shows them all, not only the first
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"probabilities row {row} has NaN or infinite values: {probabilities[row].tolist()}")
        if labels is not None:
            check_class_codes(labels, len(class_names), unlabelled=True)
        self.images = images if images.dtype == np.uint8 else np.clip(images * 255, 0, 255).astype(np.uint8)
        self.probabilities = probabilities
        self.labels = None if labels is None else np.asarray(labels, dtype=int)
        self.class_names = tuple(class_names)

        self.slider = ipw.IntSlider(value=0, min=0, max=len(images) - 1, description="example", continuous_update=False)
        self.image_figure = go.FigureWidget(
            go.Heatmap(z=self.images[0][::-1], colorscale="gray", showscale=False, zmin=0, zmax=255, hoverinfo="skip")
        )
        self.image_figure.update_layout(
            width=260,
            height=280,
            margin=dict(l=5, r=5, t=30, b=5),
            xaxis=dict(visible=False),
            yaxis=dict(visible=False, scaleanchor="x"),
        )
        self.bars_figure = go.FigureWidget(plot_emotion_prediction(probabilities[0], self._label(0), self.class_names))
        self.slider.observe(self._on_change, names="value")
        self._show(0)
        heading = [ipw.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        super().__init__([*heading, self.slider, ipw.HBox([self.image_figure, self.bars_figure])])

    def _label(self, i: int) -> int | None:
        return None if self.labels is None else int(self.labels[i])

    def _show(self, i: int) -> None:
        p = self.probabilities[i]
        colours, outline, widths = bar_style(p, self._label(i))
        with self.bars_figure.batch_update():
            bar = self.bars_figure.data[0]
            bar.y = p
            bar.marker.color = colours
            bar.marker.line.color = outline
            bar.marker.line.width = widths
            self.bars_figure.layout.title.text = prediction_title(p, self._label(i), self.class_names)
        self.image_figure.data[0].z = self.images[i][::-1]
        self.image_figure.layout.title.text = f"example {i}"

    def _on_change(self, change) -> None:
        self._show(int(change["new"]))
