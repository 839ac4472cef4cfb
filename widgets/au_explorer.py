"""The AU face explorer: one slider per Action Unit deforms a 3D face, renders its 48×48 image, and shows what
your models make of it.

Each slider sets one AU's intensity 0-5 (0 absent, 1-5 = FACS A-E); presets set an emotion's prototype AUs.
The face is ``neutral + Σ intensity/5 · au_basis[k]`` (the kit's synthetic face is linear in its AUs), drawn
as points coloured by millimetres moved from neutral; ``render`` turns the intensities into the 48×48 image a
model sees; an AU model's probabilities (bars solid past its thresholds) and an emotion model's probabilities
update with every change, through the kernel. Plotly draws locally (no CDN), so it works offline.

    explorer = AUExplorer(neutral, basis, AUS, render=lambda a: render_face(a / 5), presets=presets,
                          au_model=model_5, au_thresholds=thresholds, emotion_model=model_2)
    explorer

``explorer.export_html("au_explorer.html")`` writes one self-contained page with the face and the sliders
(the models stay in Python, so the page has no predictions).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ipywidgets as ipw
import numpy as np
import plotly.graph_objects as go

from data_loaders.emotions import EMOTIONS

from .viewer3d import CAMERAS, MOVEMENT_COLORSCALE

MAX_INTENSITY = 5
_JS = Path(__file__).with_name("au_explorer.js")


class AUExplorer(ipw.VBox):
    """Sliders per AU and emotion presets → a 3D face, its 48×48 image, and model predictions.

    Args:
        neutral: ``(P, 3)`` the neutral face, metres.
        au_basis: ``(K, P, 3)`` how far each vertex moves for each AU at full intensity (E), metres.
        au_names: K names (``"AU1"`` …), one slider each.
        render: intensities ``float32 (K,)`` 0-5 → ``uint8 (48, 48)`` image (what the models see).
        presets: emotion name → ``{"AU6": 3, "AU12": 4}`` intensities 0-5 (AUs not named are 0).
        au_model: a Keras model ``(N, 48, 48, 1)`` in [0, 1] → ``(N, K)`` AU probabilities (optional).
        au_thresholds: ``(K,)`` thresholds for ``au_model`` (default 0.5 each).
        emotion_model: a Keras model → ``(N, 7)`` emotion probabilities in FER2013 order (optional).
        class_names: emotion names for ``emotion_model``'s outputs.

    Raises:
        ValueError: shapes that do not agree (the message gives them), a preset naming an AU without a slider or an
            intensity outside 0-5, or an ``emotion_model`` whose outputs are not one per class name.
    """

    def __init__(
        self,
        neutral: np.ndarray,
        au_basis: np.ndarray,
        au_names: Sequence[str],
        render: Callable[[np.ndarray], np.ndarray],
        presets: Mapping[str, Mapping[str, float]] | None = None,
        au_model=None,
        au_thresholds: np.ndarray | None = None,
        emotion_model=None,
        class_names: Sequence[str] = EMOTIONS,
    ):
        self.neutral = np.asarray(neutral, np.float32)
        self.au_basis = np.asarray(au_basis, np.float32)
        self.au_names = tuple(au_names)
        k = len(self.au_names)
        if self.neutral.ndim != 2 or self.neutral.shape[1] != 3 or self.au_basis.shape != (k, *self.neutral.shape):
            raise ValueError(
                f"expected neutral (P, 3) and au_basis (K={k}, P, 3), got {self.neutral.shape} and "
                f"{self.au_basis.shape}"
            )
        self.render, self.au_model, self.emotion_model = render, au_model, emotion_model
        self.presets = {name: dict(aus) for name, aus in (presets or {}).items()}
        for name, aus in self.presets.items():  # checked here: a bad preset failed only when its button was clicked
            for au, value in aus.items():
                if au not in self.au_names:
                    known = ", ".join(self.au_names)
                    raise ValueError(f"preset {name!r}: no slider for {au!r}; the explorer has {known}")
                if not (isinstance(value, (int, float, np.number)) and 0 <= float(value) <= MAX_INTENSITY):
                    raise ValueError(f"preset {name!r}: {au} = {value!r}, expected an intensity 0-{MAX_INTENSITY}")
        outputs = getattr(emotion_model, "output_shape", None)  # a Keras model says; any callable is taken too
        if outputs is not None and outputs[-1] != len(class_names):
            raise ValueError(
                f"emotion_model gives {outputs[-1]} outputs; expected {len(class_names)}, one per class name"
            )
        self.thresholds = np.full(k, 0.5) if au_thresholds is None else np.asarray(au_thresholds, float)
        if self.thresholds.shape != (k,):
            raise ValueError(f"expected {k} thresholds, got shape {self.thresholds.shape}")
        self.class_names = tuple(class_names)

        self.sliders = [
            ipw.IntSlider(
                value=0,
                min=0,
                max=MAX_INTENSITY,
                description=name,
                layout=ipw.Layout(width="260px"),
                style={"description_width": "48px"},
            )
            for name in self.au_names
        ]
        self.preset = ipw.ToggleButtons(
            options=["Neutral", *[p for p in self.presets if p != "Neutral"]],
            value=None,
            description="preset",
            style={"button_width": "84px"},
        )
        self.status = ipw.HTML()
        self.face = go.FigureWidget(
            go.Scatter3d(
                x=self.neutral[:, 0], y=self.neutral[:, 1], z=self.neutral[:, 2], mode="markers", hoverinfo="skip"
            )
        )
        self.face.update_layout(
            height=380,
            width=420,
            margin=dict(l=0, r=0, t=30, b=0),
            uirevision="face",
            title="3D face · colour: mm moved from neutral",
            scene=dict(
                camera=CAMERAS["front"],
                aspectmode="data",
                xaxis_visible=False,
                yaxis_visible=False,
                zaxis_visible=False,
            ),
        )
        self.image = go.FigureWidget(
            go.Heatmap(z=np.zeros((48, 48)), colorscale="gray", zmin=0, zmax=255, showscale=False)
        )
        self.image.update_layout(
            height=250,
            width=200,
            margin=dict(l=0, r=0, t=30, b=0),
            title="48×48 image",
            yaxis=dict(autorange="reversed", scaleanchor="x", visible=False),
            xaxis=dict(visible=False),
        )
        self.emotion_bars = go.FigureWidget(go.Bar(x=list(self.class_names), y=[0.0] * len(self.class_names)))
        self.emotion_bars.update_layout(
            height=250,
            width=300,
            margin=dict(l=30, r=0, t=30, b=0),
            yaxis_range=[0, 1],
            title="emotion_model" if emotion_model is not None else "no emotion model",
        )
        self.au_bars = go.FigureWidget(go.Bar(x=list(self.au_names), y=[0.0] * k))
        self.au_bars.update_layout(
            height=250,
            width=400,
            margin=dict(l=30, r=0, t=30, b=0),
            yaxis_range=[0, 1],
            showlegend=False,
            title="au_model (solid: past its threshold)" if au_model is not None else "no AU model",
        )
        self.au_bars.add_scatter(
            x=list(self.au_names),
            y=list(self.thresholds),
            mode="markers",
            name="threshold",
            marker=dict(symbol="line-ew-open", size=18, color="black"),
            showlegend=False,
        )

        self._quiet = False
        for slider in self.sliders:
            slider.observe(lambda _: self.redraw(), names="value")
        self.preset.observe(
            lambda change: change["new"] and self.set_aus(self.presets.get(change["new"], {})), names="value"
        )
        columns = [ipw.VBox(self.sliders[i::2]) for i in range(2)]
        super().__init__(
            [
                self.preset,
                ipw.HBox([ipw.HBox(columns), self.face]),
                ipw.HBox([self.image, self.emotion_bars, self.au_bars]),
                self.status,
            ]
        )
        self.redraw()

    # ------------------------------------------------------------------------------------------------ state

    @property
    def intensities(self) -> np.ndarray:
        """The sliders' values: ``float32 (K,)`` 0-5."""
        return np.array([s.value for s in self.sliders], np.float32)

    def set_aus(self, aus: Mapping[str, float]) -> None:
        """Set the sliders to ``{"AU12": 4, …}`` (others 0) and redraw once.

        Raises:
            KeyError: an AU without a slider (the message lists those there are).
        """
        unknown = [a for a in aus if a not in self.au_names]
        if unknown:
            raise KeyError(f"no slider for {unknown}; the explorer has {', '.join(self.au_names)}")
        self._quiet = True
        try:
            for name, slider in zip(self.au_names, self.sliders):
                slider.value = int(round(float(aus.get(name, 0))))
        finally:
            self._quiet = False
        self.redraw()

    def shape(self, intensities: np.ndarray | None = None) -> np.ndarray:
        """The face for intensities ``(K,)`` 0-5 (default: the sliders): ``float32 (P, 3)`` metres."""
        a = self.intensities if intensities is None else np.asarray(intensities, np.float32)
        return self.neutral + np.tensordot(a / MAX_INTENSITY, self.au_basis, axes=1)

    def predictions(self, image: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(emotion probabilities (7,), AU probabilities (K,))`` for one ``uint8 (48, 48)`` image; None for a
        model not given."""
        x = (np.asarray(image, np.float32) / 255.0)[None, :, :, None]
        emotion = None if self.emotion_model is None else np.asarray(self.emotion_model(x, training=False))[0]
        aus = None if self.au_model is None else np.asarray(self.au_model(x, training=False))[0]
        return emotion, aus

    def redraw(self) -> None:
        """Redraw the face, the image and the bars for the sliders' values (called on every change)."""
        if self._quiet:
            return
        a = self.intensities
        points = self.shape(a)
        moved = np.linalg.norm(points - self.neutral, axis=1) * 1000
        image = np.asarray(self.render(a))
        emotion, aus = self.predictions(image)
        with self.face.batch_update():
            self.face.data[0].update(
                x=points[:, 0],
                y=points[:, 1],
                z=points[:, 2],
                marker=dict(
                    size=3,
                    color=moved,
                    colorscale=MOVEMENT_COLORSCALE,
                    cmin=0,
                    cmax=max(float(moved.max()), 1.0),
                    colorbar=dict(title="moved (mm)", len=0.6, thickness=12),
                ),
            )
        self.image.data[0].z = image
        if emotion is not None:
            self.emotion_bars.data[0].y = [float(p) for p in emotion]
            self.emotion_bars.layout.title = f"emotion_model: {self.class_names[int(np.argmax(emotion))]}"
        if aus is not None:
            with self.au_bars.batch_update():
                self.au_bars.data[0].y = [float(p) for p in aus]
                self.au_bars.data[0].marker.color = [
                    "#1f77b4" if p >= t else "#c6dbef" for p, t in zip(aus, self.thresholds)
                ]
        shown = [f"{n} {'·ABCDE'[int(v)]}" for n, v in zip(self.au_names, a) if v > 0]
        self.status.value = (
            f"<b>AUs:</b> {', '.join(shown) or 'none (neutral)'} · largest movement {moved.max():.1f} mm"
        )

    # ------------------------------------------------------------------------------------------- HTML export

    def export_html(self, path: str | Path, title: str = "Expression Lab · AU face explorer") -> Path:
        """Write one self-contained page (plotly.js, the face and the AU shapes inline; no network) with a
        slider per AU and the presets. The models stay in Python, so the page shows no predictions.

        Returns:
            The path written.
        """
        return export_html(self.neutral, self.au_basis, self.au_names, path, presets=self.presets, title=title)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:12px}} .row{{display:flex;gap:16px}} label{{display:block;width:260px}}
input[type=range]{{width:150px;vertical-align:middle}} button{{margin:2px}}</style>
<script>{plotly_js}</script></head><body>
<h3>{title}</h3><p>Each slider sets one Action Unit's intensity (0 absent, 1-5 = FACS A-E); colour = millimetres
moved from the neutral face. Predictions need the notebook (the models are not in this page).</p>
<div id="presets"></div><div class="row"><div id="sliders"></div><div id="face" style="width:520px;height:480px">
</div></div>
<script>const FACE = {meta}; const BLOB = "{blob}"; const MOVE_SCALE = {move_scale};</script>
<script>{page_js}</script></body></html>
"""


def export_html(
    neutral: np.ndarray,
    au_basis: np.ndarray,
    au_names: Sequence[str],
    path: str | Path,
    presets: Mapping[str, Mapping[str, float]] | None = None,
    title: str = "Expression Lab · AU face explorer",
) -> Path:
    """The page of :meth:`AUExplorer.export_html` from arrays: ``neutral (P, 3)`` and ``au_basis (K, P, 3)``
    metres stored as base64 float32; the browser sums the AU shapes as the sliders move (``au_explorer.js``).

    Raises:
        ValueError: shapes that do not agree.
    """
    from plotly.offline import get_plotlyjs

    neutral = np.ascontiguousarray(neutral, dtype="<f4")
    basis = np.ascontiguousarray(au_basis, dtype="<f4")
    if basis.shape != (len(au_names), *neutral.shape) or neutral.shape[1:] != (3,):
        raise ValueError(
            f"expected neutral (P, 3) and au_basis ({len(au_names)}, P, 3), got {neutral.shape} and {basis.shape}"
        )
    meta = {
        "n_points": int(neutral.shape[0]),
        "aus": list(au_names),
        "presets": dict(presets or {}),
        "max": MAX_INTENSITY,
        "camera": CAMERAS["front"],
    }
    blob = base64.b64encode(neutral.tobytes() + basis.tobytes()).decode()
    page = _PAGE.format(
        title=title,
        plotly_js=get_plotlyjs(),
        meta=json.dumps(meta),
        blob=blob,
        move_scale=json.dumps(MOVEMENT_COLORSCALE),
        page_js=_JS.read_text(),
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


__all__ = ["AUExplorer", "export_html"]
