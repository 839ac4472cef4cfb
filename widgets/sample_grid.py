"""A grid of example faces, one row per class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from data_loaders.emotions import EMOTIONS


def plot_sample_grid(
    images, labels, per_class: int = 6, class_names: Sequence[str] = EMOTIONS, seed: int = 0, title: str | None = None
) -> go.Figure:
    """Show ``per_class`` random faces for each class as one grey image, rows labelled by class.

    Args:
        images: ``uint8 (N, 48, 48)`` (grey levels 0-255) or floats in [0, 1]; a trailing channel axis is allowed.
        labels: FER2013 codes ``(N,)``.
        per_class: faces per row; a class with fewer faces leaves blank cells.
        class_names: names in label order.
        seed: which faces are drawn (reproducible).
        title: figure title (default: none).

    Returns:
        A plotly ``Figure`` with one grey ``Heatmap`` mosaic; ``fig.layout.meta["indices"]`` lists the index of
        each face shown, row by row (``-1`` for a blank cell).
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"expected images (N, H, W) and N labels, got {images.shape} and {len(labels)} labels")
    if images.dtype != np.uint8:
        images = np.clip(np.asarray(images, float) * 255, 0, 255).astype(np.uint8)
    labels = np.asarray(labels)
    h, w = images.shape[1:]
    rng = np.random.default_rng(seed)
    mosaic = np.full((len(class_names) * (h + 2), per_class * (w + 2)), 255, np.uint8)
    chosen = []
    for row in range(len(class_names)):
        pool = np.flatnonzero(labels == row)
        picks = rng.choice(pool, size=min(per_class, len(pool)), replace=False) if len(pool) else []
        picks = list(picks) + [-1] * (per_class - len(picks))
        chosen.append([int(i) for i in picks])
        for col, i in enumerate(picks):
            if i >= 0:
                mosaic[row * (h + 2) : row * (h + 2) + h, col * (w + 2) : col * (w + 2) + w] = images[i]
    fig = go.Figure(go.Heatmap(z=mosaic, colorscale="gray", showscale=False, zmin=0, zmax=255, hoverinfo="skip"))
    fig.update_layout(
        height=70 * len(class_names) + 40,
        width=70 * per_class + 110,
        margin=dict(l=90, r=5, t=30, b=5),
        title=title or "Examples per class",
        template="simple_white",
        meta={"indices": chosen},
        xaxis=dict(visible=False),
        yaxis=dict(
            autorange="reversed",
            scaleanchor="x",
            tickmode="array",
            showgrid=False,
            tickvals=[r * (h + 2) + h / 2 for r in range(len(class_names))],
            ticktext=list(class_names),
        ),
    )
    return fig
