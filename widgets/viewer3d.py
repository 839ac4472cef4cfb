"""An interactive 3D face viewer (the course's ``show_gui.py``, in JupyterLab) and a standalone HTML export.

Choose a subject and an expression, compare it with a second expression side by side, colour the points by
depth or by how far each vertex moved from the same subject's neutral face (millimetres: this is where FACS
Action Units become visible), switch to a 24³ voxel view (cells sized by count, using the voxelizer you pass
in), pick a camera preset and the point size. Plotly draws everything locally (no CDN, no WebRTC), so it works
offline in JupyterLab 4. Points travel to the browser as float32 (12 bytes a vertex).

    viewer = FaceViewer(clouds.points, clouds.labels, clouds.subjects, voxelize=voxelize)
    viewer

Command line: ``python -m widgets.viewer3d PATH --html faces.html`` writes one self-contained page.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import ipywidgets as ipw
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from data_loaders.emotions import EMOTIONS, check_class_codes

#: Camera presets (plotly scene cameras): front (+z towards the viewer), side (from the subject's left), top.
CAMERAS: dict[str, dict] = {
    "front": dict(eye=dict(x=0, y=0, z=1.9), up=dict(x=0, y=1, z=0)),
    "side": dict(eye=dict(x=1.9, y=0, z=0.2), up=dict(x=0, y=1, z=0)),
    "top": dict(eye=dict(x=0, y=1.9, z=0.3), up=dict(x=0, y=0, z=-1)),
}
_DEPTH_SCALE = "Viridis"
MOVEMENT_COLORSCALE = [[0, "#2c7bb6"], [0.5, "#ffffbf"], [1, "#d7191c"]]


def displacement_mm(points: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """Distance each vertex moved from the neutral face: ``float32 (P,)`` millimetres.

    Both clouds are ``(P, 3)`` metres with the same vertex order (ARKit meshes share their topology), each
    centred on its mean first so a small shift of the whole head does not count as movement.

    Raises:
        ValueError: the two clouds have different shapes.
    """
    points, neutral = np.asarray(points, np.float32), np.asarray(neutral, np.float32)
    if points.shape != neutral.shape:
        raise ValueError(f"clouds differ in shape: {points.shape} vs neutral {neutral.shape}")
    moved = (points - points.mean(axis=0)) - (neutral - neutral.mean(axis=0))
    return (np.linalg.norm(moved, axis=1) * 1000).astype(np.float32)


def face_colours(points: np.ndarray, neutral: np.ndarray | None = None) -> np.ndarray:
    """The viewer's colour values for one ``(P, 3)`` cloud in metres: ``float32 (P,)`` millimetres, the depth
    above the cloud's nearest point (``z - min z``) or, given the subject's ``neutral`` cloud, how far each vertex
    moved from it (:func:`displacement_mm`). The notebook widget and the HTML export both colour with this."""
    pts = np.asarray(points, np.float32)
    if neutral is not None:
        return displacement_mm(pts, neutral)
    return ((pts[:, 2] - pts[:, 2].min()) * 1000).astype(np.float32)


def cloud_trace(
    points: np.ndarray,
    colour: np.ndarray | None = None,
    size: int = 3,
    colour_title: str = "depth (mm)",
    colourscale=_DEPTH_SCALE,
    scene: str = "scene",
) -> go.Scatter3d:
    """A ``Scatter3d`` of one ``(P, 3)`` cloud in metres, coloured by ``colour (P,)`` (default: depth, mm)."""
    pts = np.asarray(points, np.float32)
    values = face_colours(pts) if colour is None else np.asarray(colour, np.float32)
    return go.Scatter3d(
        x=pts[:, 0],
        y=pts[:, 1],
        z=pts[:, 2],
        mode="markers",
        scene=scene,
        hoverinfo="skip",
        marker=dict(
            size=size, color=values, colorscale=colourscale, colorbar=dict(title=colour_title, len=0.6, thickness=12)
        ),
    )


def voxel_trace(counts: np.ndarray, scene: str = "scene", max_size: int = 12) -> go.Scatter3d:
    """Occupied cells of a voxel grid as markers sized (and coloured) by their point count.

    Args:
        counts: ``(D, H, W)`` non-negative counts, indexed ``[x, y, z]`` bins (e.g. ``(24, 24, 24)``).

    Raises:
        ValueError: ``counts`` is not a 3-D array of finite, non-negative numbers.
    """
    grid = np.asarray(counts)
    if grid.ndim != 3 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
        raise ValueError(f"counts must be a 3-D grid of non-negative numbers, got shape {grid.shape}")
    i, j, k = np.nonzero(grid)
    c = grid[i, j, k].astype(np.float32)
    peak = float(c.max()) if len(c) else 1.0
    return go.Scatter3d(
        x=i.astype(np.float32),
        y=j.astype(np.float32),
        z=k.astype(np.float32),
        mode="markers",
        scene=scene,
        hovertext=[f"cell ({a}, {b}, {d}): {int(n)} points" for a, b, d, n in zip(i, j, k, c)],
        hoverinfo="text",
        marker=dict(
            size=2 + (max_size - 2) * c / peak,
            color=c,
            colorscale="Hot",
            symbol="square",
            colorbar=dict(title="points per cell", len=0.6, thickness=12),
        ),
    )


def _check_clouds(points: np.ndarray, labels, subjects, class_names: Sequence[str]) -> None:
    """Raise ValueError unless ``points`` is ``(N, P, 3)`` with N ≥ 1, N labels that are class codes and N subjects,
    and no subject shows one expression twice (the viewer lists one cloud per subject and expression: a second
    would hide the first without a word)."""
    if points.ndim != 3 or points.shape[2] != 3 or not (len(points) == len(labels) == len(subjects)):
        raise ValueError(
            f"expected points (N, P, 3) with N labels and N subjects, got {points.shape}, {len(labels)}, "
            f"{len(subjects)}"
        )
    if len(points) == 0:
        raise ValueError("expected at least one cloud, got none")
    seen: dict[tuple[str, int], int] = {}
    check_class_codes(labels, len(class_names))
    for i, (subject, label) in enumerate(zip(np.asarray(subjects).astype(str), labels)):
        first = seen.setdefault((subject, int(label)), i)
        if first != i:
            raise ValueError(
                f"clouds {first} and {i} are both subject {subject!r} showing {class_names[int(label)]}: "
                "expected one cloud per subject and expression"
            )


class FaceViewer(ipw.VBox):
    """The 3D face viewer widget.

    Args:
        points: ``float32 (N, P, 3)`` clouds in metres (vertex i the same facial location in every cloud).
        labels: ``int (N,)`` FER2013 emotion codes. subjects: ``str (N,)`` subject ids.
        class_names: names by label code.
        voxelize: optional ``(P, 3) → (D, H, W)`` counts function (yours from the assignment); it enables the
            voxel view.

    Raises:
        ValueError: arrays of mismatched lengths, points not shaped ``(N, P, 3)``, no cloud, a label that is not a
            class code, or one subject showing one expression twice (the message names the clouds).
    """

    def __init__(
        self,
        points: np.ndarray,
        labels: np.ndarray,
        subjects: np.ndarray,
        class_names: Sequence[str] = EMOTIONS,
        voxelize: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        self.points = np.asarray(points, np.float32)
        self.labels, self.subjects = np.asarray(labels), np.asarray(subjects).astype(str)
        _check_clouds(self.points, self.labels, self.subjects, class_names)
        self.class_names, self.voxelize = tuple(class_names), voxelize
        ids = list(dict.fromkeys(self.subjects.tolist()))
        self.subject = ipw.Dropdown(options=ids, value=ids[0], description="subject")
        self.expression = ipw.Dropdown(description="expression")
        self.compare = ipw.Dropdown(description="compare with")
        self.colour = ipw.ToggleButtons(options=["depth", "movement from neutral"], value="depth", description="colour")
        self.view = ipw.ToggleButtons(
            options=["points", "voxels"],
            value="points",
            description="view",
            disabled=voxelize is None,
            tooltip="" if voxelize else "pass voxelize=… to enable the voxel view",
        )
        self.camera = ipw.ToggleButtons(options=list(CAMERAS), value="front", description="camera")
        self.size = ipw.IntSlider(value=3, min=1, max=8, description="point size")
        self.status = ipw.HTML()
        self.figure = go.FigureWidget(
            make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]], horizontal_spacing=0.02)
        )
        self.figure.add_trace(cloud_trace(self.points[0], scene="scene"))
        self.figure.add_trace(cloud_trace(self.points[0], scene="scene2"))
        self.figure.update_layout(height=480, margin=dict(l=0, r=0, t=30, b=0), showlegend=False, uirevision="faces")
        self._update_expressions()
        for control in (self.expression, self.compare, self.colour, self.view, self.camera, self.size):
            control.observe(lambda _: self.redraw(), names="value")
        self.subject.observe(lambda _: (self._update_expressions(), self.redraw()), names="value")
        controls = ipw.VBox(
            [
                ipw.HBox([self.subject, self.expression, self.compare]),
                ipw.HBox([self.colour, self.view]),
                ipw.HBox([self.camera, self.size]),
            ]
        )
        super().__init__([controls, self.figure, self.status])
        self.redraw()

    def _rows(self) -> dict[str, int]:
        """Expression name → row index for the current subject."""
        rows = np.flatnonzero(self.subjects == self.subject.value)
        return {self.class_names[int(self.labels[r])]: int(r) for r in rows}

    def _update_expressions(self) -> None:
        names = list(self._rows())
        first = next((n for n in names if n != "Neutral"), names[0])
        self._quiet = True  # one redraw after the subject change, not one per option change
        try:
            keep = self.expression.value if self.expression.value in names else first
            self.expression.options, self.compare.options = names, names
            self.expression.value = keep
            self.compare.value = "Neutral" if "Neutral" in names else names[0]
        finally:
            self._quiet = False

    def _panel(self, name: str, rows: dict[str, int]) -> tuple[np.ndarray, np.ndarray, str, object]:
        cloud = self.points[rows[name]]
        if self.colour.value == "movement from neutral" and "Neutral" in rows:
            return cloud, face_colours(cloud, self.points[rows["Neutral"]]), "moved (mm)", MOVEMENT_COLORSCALE
        return cloud, face_colours(cloud), "depth (mm)", _DEPTH_SCALE

    def redraw(self) -> None:
        """Draw the current choice (called on every control change)."""
        if getattr(self, "_quiet", False):
            return
        rows = self._rows()
        names = (self.expression.value, self.compare.value)
        # both panels share one colour range and one colour bar, so equal colours mean equal values
        voxels = self.view.value == "voxels" and self.voxelize is not None
        if voxels:
            panels = [
                voxel_trace(self.voxelize(self.points[rows[name]]), scene=scene)
                for name, scene in zip(names, ("scene", "scene2"))
            ]
            top = max(float(np.max(p.marker.color)) if len(p.marker.color) else 1.0 for p in panels)
        else:
            panels = [self._panel(name, rows) for name in names]
            top = max(float(values.max()) for _, values, _, _ in panels) or 1.0
        with self.figure.batch_update():
            for n, (trace, panel) in enumerate(zip(self.figure.data, panels)):
                if voxels:
                    trace.update(
                        x=panel.x,
                        y=panel.y,
                        z=panel.z,
                        hovertext=panel.hovertext,
                        hoverinfo="text",
                        marker=panel.marker,
                    )
                    trace.marker.update(cmin=1, cmax=top, showscale=n == 0)
                else:
                    cloud, values, title, scale = panel
                    trace.update(
                        x=cloud[:, 0],
                        y=cloud[:, 1],
                        z=cloud[:, 2],
                        hoverinfo="skip",
                        marker=dict(
                            size=self.size.value,
                            color=values,
                            colorscale=scale,
                            cmin=0,
                            cmax=top,
                            showscale=n == 0,
                            colorbar=dict(title=title),
                            symbol="circle",
                        ),
                    )
            for scene in ("scene", "scene2"):
                self.figure.layout[scene].update(
                    camera=CAMERAS[self.camera.value],
                    aspectmode="data",
                    xaxis_visible=False,
                    yaxis_visible=False,
                    zaxis_visible=False,
                )
            self.figure.layout.title = (
                f"{self.subject.value}: {self.expression.value} (left) · {self.compare.value} (right)"
            )
        note = (
            ""
            if self.colour.value == "depth" or "Neutral" in rows
            else "<i>this subject has no neutral face: showing depth</i>"
        )
        self.status.value = note


# ------------------------------------------------------------------------------------------ standalone HTML

_PAGE = Path(__file__).with_name("viewer3d_page.html")
_PAGE_JS = Path(__file__).with_name("viewer3d_page.js")


def _page_colours(points: np.ndarray, rows: dict[str, dict[str, int]]) -> np.ndarray:
    """``uint16 (N, 2, P)``: each cloud's depth and movement from its subject's neutral face, in hundredths of a
    millimetre, computed by :func:`face_colours` as the notebook widget colours them (depth where the subject has
    no neutral face)."""
    out = np.zeros((len(points), 2, points.shape[1]), np.uint16)
    for by_name in rows.values():
        neutral = points[by_name["Neutral"]] if "Neutral" in by_name else None
        for row in by_name.values():
            for k, moved in enumerate((False, True)):
                values = face_colours(points[row], neutral if moved else None)
                out[row, k] = np.clip(np.round(values * 100), 0, np.iinfo(np.uint16).max)
    return out


def export_html(
    points: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    path: str | Path,
    class_names: Sequence[str] = EMOTIONS,
    title: str = "Expression Lab · 3D faces",
    note: str = "",
) -> Path:
    """Write one self-contained HTML page (plotly.js and all clouds inline, no network) to explore the faces.

    Clouds are stored once as base64 float32 (12 bytes a vertex), and both colourings (depth, movement from
    neutral) as uint16 hundredths of a millimetre (4 bytes a vertex), computed here by :func:`face_colours`, the
    function the notebook widget colours with; the page's script (``viewer3d_page.js``) only draws them.

    Returns:
        The path written.

    Raises:
        ValueError: arrays of mismatched lengths, points not shaped ``(N, P, 3)``, no cloud, a label that is not a
            class code, or one subject showing one expression twice (the message names the clouds).
    """
    from plotly.offline import get_plotlyjs

    pts = np.ascontiguousarray(points, dtype="<f4")
    _check_clouds(pts, labels, subjects, class_names)
    rows: dict[str, dict[str, int]] = {}
    for r, (s, lab) in enumerate(zip(np.asarray(subjects).astype(str), labels)):
        rows.setdefault(s, {})[class_names[int(lab)]] = r
    meta = {
        "n_points": int(pts.shape[1]),
        "rows": rows,
        "cameras": CAMERAS,
        "depth_scale": _DEPTH_SCALE,
        "move_scale": MOVEMENT_COLORSCALE,
    }
    fields = {
        "__TITLE__": html.escape(title),
        "__NOTE__": html.escape(note),
        "__META__": json.dumps(meta),
        "__XYZ__": base64.b64encode(pts.tobytes()).decode(),
        "__COLOURS__": base64.b64encode(_page_colours(pts, rows).astype("<u2").tobytes()).decode(),
        "__PAGE_JS__": _PAGE_JS.read_text(encoding="utf-8"),
        "__PLOTLY_JS__": get_plotlyjs(),
    }
    # one pass over the template: text put in (plotly.js, a title) is never searched for placeholders itself
    page = re.sub("|".join(fields), lambda m: fields[m.group(0)], _PAGE.read_text(encoding="utf-8"))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _positive(text: str) -> int:
    """argparse type: a whole number ≥ 1."""
    import argparse

    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    """``python -m widgets.viewer3d [PATH] --html out.html``: 0 on success, 2 on unreadable or missing input."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m widgets.viewer3d", description="Export the 3D face viewer as one self-contained HTML page."
    )
    parser.add_argument(
        "path",
        nargs="?",
        help="faces.py, .npz or a folder (default: IPHONEX_PATH, then data/iphonex/, then synthetic faces)",
    )
    parser.add_argument("--html", required=True, help="the page to write")
    parser.add_argument("--subjects", type=_positive, default=None, help="only the first N subjects (N ≥ 1)")
    args = parser.parse_args(argv)

    from data_loaders import IPhoneXFormatError, load_iphonex  # the command line loads; the widget never does

    try:
        data = load_iphonex(args.path)
    except (FileNotFoundError, IPhoneXFormatError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.subjects is not None:
        data = data.select(np.isin(data.subjects, data.subject_ids[: args.subjects]))
    try:
        out = export_html(data.points, data.labels, data.subjects, args.html, note=data.description)
    except (OSError, ValueError) as err:  # e.g. --html names a folder, or the data holds a cloud twice
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {len(data)} clouds, {len(data.subject_ids)} subjects")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
