"""A video's per-frame emotion probabilities over time, with a frame scrubber showing the frame, its face box
and its probability bars."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence

import ipywidgets as ipw
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from data_loaders.emotions import EMOTIONS

from .prediction_bars import bar_style, plot_emotion_prediction, prediction_title

#: One colour per emotion (FER2013 order), shared by the curves and nothing else.
COLOURS = ("#d1495b", "#66a182", "#8d6a9f", "#edae49", "#00798c", "#f08a4b", "#9aa5b1")


def _json_safe(values) -> list:
    """Plain floats with None for NaN: NaN is not JSON, and one NaN in a widget message stops the whole figure
    from drawing in the browser; None draws as a gap."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, np.float64)]


def _png(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class VideoTimeline(ipw.VBox):
    """Emotion probabilities over a clip's time, and a scrubber: the chosen frame with its face box and bars.

    Args:
        df: the DataFrame of :func:`course.video_analysis.analyze_video` (columns ``frame, time_s, face, x, y, w,
            h`` and one per emotion); with several faces in a frame, the curves and bars follow face 0.
        frames: where frame images come from: a function ``frame index → uint8 (H, W) or (H, W, 3)`` (e.g.
            ``lambda i: read_frame(path, i)``), or an array / sequence indexed by frame.
        class_names: probability columns to plot, in order.
        title: a heading above the timeline.
        extra: optional per-frame curves to add (e.g. ``{"smoothed smile": series indexed like df}``).

    Clicking a point on a curve moves the scrubber there. Raises ValueError when ``df`` lacks those columns or
    has no rows.
    """

    def __init__(
        self,
        df: pd.DataFrame,
        frames: Callable[[int], np.ndarray] | Sequence | np.ndarray,
        class_names: Sequence[str] = EMOTIONS,
        title: str | None = None,
        extra: dict[str, Sequence[float]] | None = None,
    ):
        needed = ["frame", "time_s", "face", "x", "y", "w", "h", *class_names]
        missing = [c for c in needed if c not in df.columns]
        if missing or len(df) == 0:
            raise ValueError(
                f"VideoTimeline needs the DataFrame of analyze_video (missing columns {missing}, {len(df)} rows)"
            )
        first = df.drop_duplicates("frame", keep="first").reset_index(drop=True)
        self.rows = first
        self.class_names = tuple(class_names)
        self._frame = frames if callable(frames) else (lambda i, _f=frames: _f[i])
        self._cache: dict[int, str] = {}

        self.timeline = go.FigureWidget()
        probs = first[list(self.class_names)].to_numpy(np.float64)
        for k, name in enumerate(self.class_names):
            self.timeline.add_scatter(
                x=_json_safe(first["time_s"]),
                y=_json_safe(probs[:, k]),
                name=name,
                mode="lines",
                line=dict(color=COLOURS[k % len(COLOURS)], width=1.6),
                hovertemplate=f"{name} %{{y:.0%}} at %{{x:.2f}} s<extra></extra>",
            )
        for name, values in (extra or {}).items():
            values = np.asarray(values, np.float64)
            if len(values) != len(df):
                raise ValueError(f"extra curve {name!r} has {len(values)} values for {len(df)} rows")
            self.timeline.add_scatter(
                x=_json_safe(df["time_s"]),
                y=_json_safe(values),
                name=name,
                mode="lines",
                line=dict(color="black", width=2.2, dash="dot"),
            )
        no_face = first.loc[~first["face"].astype(bool), "time_s"]
        if len(no_face):
            self.timeline.add_scatter(
                x=_json_safe(no_face),
                y=[0.0] * len(no_face),
                name="no face",
                mode="markers",
                marker=dict(color="black", symbol="x", size=5),
            )
        self.timeline.update_layout(
            height=300,
            width=900,
            template="simple_white",
            margin=dict(l=50, r=10, t=40, b=40),
            title=title or "Probabilities over time",
            xaxis_title="time (s)",
            yaxis=dict(range=[0, 1], tickformat=".0%"),
            shapes=[dict(type="line", x0=0, x1=0, y0=0, y1=1, yref="paper", line=dict(color="black", width=1))],
        )
        for trace in self.timeline.data:
            trace.on_click(self._on_click)

        self.slider = ipw.IntSlider(
            value=0,
            min=0,
            max=len(first) - 1,
            description="frame",
            continuous_update=False,
            layout=ipw.Layout(width="880px"),
        )
        self.frame_figure = go.FigureWidget(go.Image(source=""))
        self.frame_figure.update_layout(
            width=420,
            height=340,
            margin=dict(l=5, r=5, t=30, b=5),
            xaxis=dict(visible=False),
            yaxis=dict(visible=False),
        )
        self.bars_figure = go.FigureWidget(
            plot_emotion_prediction(
                np.full(len(self.class_names), 1 / len(self.class_names)), class_names=self.class_names
            )
        )
        self.slider.observe(lambda change: self.show(int(change["new"])), names="value")
        self.show(0)
        super().__init__([self.timeline, self.slider, ipw.HBox([self.frame_figure, self.bars_figure])])

    def _on_click(self, trace, points, state) -> None:
        if points.point_inds:
            t = trace.x[points.point_inds[0]]
            self.slider.value = int(np.argmin(np.abs(self.rows["time_s"].to_numpy() - t)))

    def show(self, position: int) -> None:
        """Show the ``position``-th analysed frame (a row of the DataFrame, not a frame index)."""
        row = self.rows.iloc[position]
        index = int(row["frame"])
        if index not in self._cache:
            image = np.asarray(self._frame(index))
            self._cache = {index: _png(image)} if len(self._cache) > 64 else {**self._cache, index: _png(image)}
        face = bool(row["face"])
        with self.frame_figure.batch_update():
            self.frame_figure.data[0].source = self._cache[index]
            box = (
                [
                    dict(
                        type="rect",
                        x0=int(row["x"]),
                        y0=int(row["y"]),
                        x1=int(row["x"]) + int(row["w"]),
                        y1=int(row["y"]) + int(row["h"]),
                        line=dict(color="#d1495b", width=3),
                    )
                ]
                if face
                else []
            )
            self.frame_figure.layout.shapes = box
            self.frame_figure.layout.title.text = f"frame {index} · {row['time_s']:.2f} s" + (
                "" if face else " · no face"
            )
        p = row[list(self.class_names)].to_numpy(np.float64)
        with self.bars_figure.batch_update():
            bar = self.bars_figure.data[0]
            if face:
                colours, outline, widths = bar_style(p, None)
                bar.y, bar.marker.color = _json_safe(p), colours
                self.bars_figure.layout.title.text = prediction_title(p, None, self.class_names)
            else:
                bar.y = [0.0] * len(p)
                self.bars_figure.layout.title.text = "no face in this frame"
        with self.timeline.batch_update():
            self.timeline.layout.shapes[0].x0 = self.timeline.layout.shapes[0].x1 = float(row["time_s"])
