"""The 3D face viewer: the right cloud for the chosen subject/expression, movement in mm, voxels, HTML export."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import plotly.graph_objects as go
import pytest

from data_loaders import synthetic
from data_loaders.emotions import EMOTIONS
from widgets.viewer3d import CAMERAS, FaceViewer, displacement_mm, export_html, face_colours, main, voxel_trace


@pytest.fixture(scope="module")
def faces():
    return synthetic.sample_faces(3, seed=2)


def _counts(points):
    return np.histogramdd(points, bins=6)[0].astype(np.int32)  # a stand-in voxelizer for the widget


def test_viewer_shows_the_chosen_subject_and_expressions(faces):
    viewer = FaceViewer(faces.points, faces.labels, faces.sample_ids[faces.subjects])
    left, right = viewer.figure.data
    assert isinstance(left, go.Scatter3d) and len(left.x) == 1220
    viewer.subject.value = faces.sample_ids[2]
    viewer.expression.value = "Happy"
    viewer.compare.value = "Surprise"

    def row(code):
        return np.flatnonzero((faces.subjects == 2) & (faces.labels == code))[0]

    assert np.allclose(viewer.figure.data[0].x, faces.points[row(3), :, 0])
    assert np.allclose(viewer.figure.data[1].z, faces.points[row(5), :, 2])
    assert "Happy (left)" in viewer.figure.layout.title.text and faces.sample_ids[2] in viewer.figure.layout.title.text


def test_movement_colouring_is_millimetres_from_the_same_subjects_neutral(faces):
    viewer = FaceViewer(faces.points, faces.labels, faces.sample_ids[faces.subjects])
    viewer.expression.value = "Surprise"
    viewer.colour.value = "movement from neutral"
    surprise = faces.points[(faces.subjects == 0) & (faces.labels == 5)][0]
    neutral = faces.points[(faces.subjects == 0) & (faces.labels == 6)][0]
    colour = np.asarray(viewer.figure.data[0].marker.color)
    assert np.allclose(colour, displacement_mm(surprise, neutral), atol=1e-3)
    assert colour.max() > 5  # the jaw drop moves the chin by centimetres
    assert np.allclose(viewer.figure.data[1].marker.color, 0, atol=1e-3)  # neutral vs itself


def test_both_panels_share_one_colour_range_and_one_colour_bar(faces):
    """Neutral beside Happy, coloured by movement: the unmoved neutral must not get a scale of its own."""
    viewer = FaceViewer(faces.points, faces.labels, faces.sample_ids[faces.subjects])
    viewer.expression.value, viewer.compare.value = "Happy", "Neutral"
    for colour in ("movement from neutral", "depth"):
        viewer.colour.value = colour
        left, right = (trace.marker for trace in viewer.figure.data)
        assert (left.cmin, left.cmax) == (right.cmin, right.cmax) and left.cmin == 0
        assert left.cmax == pytest.approx(max(np.max(left.color), np.max(right.color)))
        assert left.showscale and not right.showscale


def test_displacement_ignores_a_shift_and_checks_shapes():
    cloud = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    assert np.allclose(displacement_mm(cloud + 0.01, cloud), 0, atol=1e-3)
    with pytest.raises(ValueError, match="differ in shape"):
        displacement_mm(cloud, cloud[:10])


def test_voxel_view_uses_the_given_voxelizer_and_sizes_cells_by_count(faces):
    no_voxels = FaceViewer(faces.points, faces.labels, faces.sample_ids[faces.subjects])
    assert no_voxels.view.disabled
    viewer = FaceViewer(faces.points, faces.labels, faces.sample_ids[faces.subjects], voxelize=_counts)
    viewer.view.value = "voxels"
    counts = _counts(faces.points[0 * 7 + 0])  # subject 0, Angry: the first expression shown
    trace = viewer.figure.data[0]
    assert len(trace.x) == np.count_nonzero(counts)
    assert np.allclose(sorted(trace.marker.color), sorted(counts[counts > 0]))
    sizes = np.asarray(trace.marker.size)
    assert sizes.max() == pytest.approx(12) and sizes.min() >= 2
    with pytest.raises(ValueError, match="3-D grid"):
        voxel_trace(np.ones((4, 4)))


def test_camera_presets_and_point_size(faces):
    viewer = FaceViewer(faces.points, faces.labels, faces.sample_ids[faces.subjects])
    viewer.camera.value = "side"
    assert viewer.figure.layout.scene.camera.eye.x == CAMERAS["side"]["eye"]["x"]
    assert viewer.figure.layout.scene2.camera.eye.x == CAMERAS["side"]["eye"]["x"]
    viewer.size.value = 6
    assert viewer.figure.data[0].marker.size == 6


def test_mismatched_arrays_are_refused(faces):
    with pytest.raises(ValueError, match="N labels and N subjects"):
        FaceViewer(faces.points, faces.labels[:-1], faces.sample_ids[faces.subjects])


def test_a_label_out_of_range_a_repeated_expression_or_no_cloud_is_refused(faces, tmp_path):
    """Regressions: label -1 showed as Neutral, a subject's second Happy cloud hid its first without a word, label 7
    and an empty set ended in IndexErrors."""
    subjects = faces.sample_ids[faces.subjects]
    for bad, expected in [(-1, "labels entry 0 is -1"), (7, "labels entry 0 is 7: expected a class code 0-6")]:
        labels = faces.labels.copy()
        labels[0] = bad
        with pytest.raises(ValueError, match=re.escape(expected)):
            FaceViewer(faces.points, labels, subjects)
    labels = faces.labels.copy()
    same = np.flatnonzero(subjects == subjects[0])
    labels[same[1]] = labels[same[0]]
    with pytest.raises(ValueError, match=rf"clouds {same[0]} and {same[1]} are both subject"):
        export_html(faces.points, labels, subjects, tmp_path / "v.html")
    with pytest.raises(ValueError, match="at least one cloud"):
        FaceViewer(faces.points[:0], faces.labels[:0], subjects[:0])


def test_html_export_is_one_self_contained_file(tmp_path, faces):
    out = export_html(faces.points, faces.labels, faces.sample_ids[faces.subjects], tmp_path / "faces.html")
    page = out.read_text()
    assert list(tmp_path.iterdir()) == [out]
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?http", page)  # nothing fetched from the network
    assert "Plotly.react" in page and "plotly.js" in page.lower()
    meta = json.loads(re.search(r"const META = (\{.*?\});", page).group(1))
    assert meta["n_points"] == 1220 and set(meta["rows"]) == set(faces.sample_ids)
    blob = base64.b64decode(re.search(r'const XYZ_B64 = "([A-Za-z0-9+/=]+)"', page).group(1))
    assert len(blob) == faces.points.nbytes  # float32: 12 bytes a vertex
    assert np.array_equal(np.frombuffer(blob, "<f4").reshape(faces.points.shape), faces.points)


def test_html_export_colours_as_the_widget_does(tmp_path, faces):
    """The page draws colours computed in Python by the widget's own function, to 0.01 mm."""
    out = export_html(faces.points, faces.labels, faces.sample_ids[faces.subjects], tmp_path / "faces.html")
    blob = base64.b64decode(re.search(r'const COLOUR_B64 = "([A-Za-z0-9+/=]+)"', out.read_text()).group(1))
    colours = np.frombuffer(blob, "<u2").reshape(len(faces.points), 2, -1) / 100
    subjects = faces.sample_ids[faces.subjects]
    happy = int(np.flatnonzero(faces.labels == EMOTIONS.index("Happy"))[0])
    neutral = int(np.flatnonzero((faces.labels == EMOTIONS.index("Neutral")) & (subjects == subjects[happy]))[0])
    assert np.allclose(colours[happy, 0], face_colours(faces.points[happy]), atol=0.006), "depth colours differ"
    moved = face_colours(faces.points[happy], faces.points[neutral])
    assert np.allclose(colours[happy, 1], moved, atol=0.006), (
        f"expected the page's movement colours to match the widget's (max {moved.max():.2f} mm); "
        f"found max {colours[happy, 1].max():.2f} mm"
    )


def test_cli_exports_from_a_faces_file(tmp_path, capsys):
    paths = synthetic.generate(tmp_path / "syn", subjects=2, images=3)
    assert main([str(paths["iphonex"]), "--html", str(tmp_path / "v.html")]) == 0
    assert (tmp_path / "v.html").stat().st_size > 1_000_000 and "14 clouds" in capsys.readouterr().out
    assert main([str(tmp_path / "missing.py"), "--html", str(tmp_path / "x.html")]) == 2
    # regressions: --subjects -1 wrote all subjects but one, an existing folder as --html ended in a traceback
    with pytest.raises(SystemExit):
        main([str(paths["iphonex"]), "--html", str(tmp_path / "w.html"), "--subjects", "-1"])
    assert "expected a whole number ≥ 1, got '-1'" in capsys.readouterr().err
    assert main([str(paths["iphonex"]), "--html", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err
