"""Confusion matrix heat map."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from sklearn.metrics import confusion_matrix

from data_loaders.emotions import EMOTIONS, check_class_codes


def confusion_counts(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``int64 (n_classes, n_classes)`` counts: row = true class, column = predicted class
    (``sklearn.metrics.confusion_matrix`` over the labels ``0 … n_classes-1``).

    Raises:
        ValueError: lengths differ, or an entry is not a class code ``0 … n_classes-1`` (a probability, say, or
            a label scikit-learn would drop from the counts without a word); the message names the entry.
    """
    t = np.asarray(y_true).ravel()
    p = np.asarray(y_pred).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    for name, v in (("y_true", t), ("y_pred", p)):
        check_class_codes(v.tolist(), n_classes, name)
    t, p = t.astype(np.int64), p.astype(np.int64)
    return confusion_matrix(t, p, labels=np.arange(n_classes)).astype(np.int64)


def plot_confusion_matrix(
    y_true, y_pred, class_names: Sequence[str] = EMOTIONS, normalize: bool = True, title: str | None = None
) -> go.Figure:
    """Heat map of true (rows) against predicted (columns) classes.

    Args:
        y_true, y_pred: integer labels ``(N,)`` (FER2013 codes), e.g. ``probabilities.argmax(1)``.
        class_names: names in label order.
        normalize: colour by the share of each true class (rows sum to 1; the diagonal is per-class recall);
            the counts are always in the hover text.
        title: figure title; default states the overall accuracy.

    Returns:
        A plotly ``Figure`` with one ``Heatmap``; ``fig.data[0].customdata`` holds the counts.
    """
    counts = confusion_counts(y_true, y_pred, len(class_names))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    z = shares if normalize else counts
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    text = [
        [f"{shares[i, j]:.0%}" if normalize else str(counts[i, j]) for j in range(len(class_names))]
        for i in range(len(class_names))
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(class_names),
            y=list(class_names),
            customdata=counts,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            hovertemplate="true %{y}, predicted %{x}: %{customdata} faces<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or f"Confusion matrix (accuracy {accuracy:.1%})",
        height=460,
        width=520,
        xaxis=dict(title="predicted", side="bottom"),
        yaxis=dict(title="true", autorange="reversed"),
        template="simple_white",
    )
    return fig
