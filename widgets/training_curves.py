"""Loss and accuracy per epoch from a Keras ``History``."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def plot_training_curves(history, title: str = "Training curves") -> go.Figure:
    """Plot loss and accuracy per epoch, training and validation side by side.

    Args:
        history: a ``keras.callbacks.History`` (what ``model.fit`` returns) or its ``.history`` dict, mapping
            metric names (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` …) to one value per epoch.
        title: figure title.

    Returns:
        A plotly ``Figure`` with two panels (loss, accuracy); one line per metric found, epochs from 1.

    Raises:
        ValueError: no ``loss`` entry, or entries of different lengths.
    """
    logs: Mapping[str, list] = getattr(history, "history", history)
    if "loss" not in logs:
        raise ValueError(f"history has no 'loss' entry (found: {', '.join(logs) or 'nothing'})")
    n = len(logs["loss"])
    if any(len(v) != n for v in logs.values()):
        raise ValueError(
            "history entries have different lengths: " + ", ".join(f"{k} {len(v)}" for k, v in logs.items())
        )
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    epochs = list(range(1, n + 1))
    for col, base in ((1, "loss"), (2, "accuracy")):
        for name, dash in ((base, "solid"), (f"val_{base}", "dash")):
            if name in logs:
                fig.add_trace(
                    go.Scatter(
                        x=epochs, y=list(map(float, logs[name])), name=name, mode="lines+markers", line=dict(dash=dash)
                    ),
                    row=1,
                    col=col,
                )
    fig.update_xaxes(title_text="epoch", dtick=1 if n <= 20 else None)
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(title=title, height=320, width=760, template="simple_white")
    return fig
