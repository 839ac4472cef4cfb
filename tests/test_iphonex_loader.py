"""iPhone X point clouds: faces.py parsed without running it, .npz, PLY/OBJ/XYZ folders, every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_loaders import IPhoneXFormatError, load_iphonex, synthetic
from data_loaders.synthetic.writers import faces_py_text


@pytest.fixture(scope="module")
def small_faces():
    return synthetic.sample_faces(3, seed=4)


@pytest.fixture
def faces_py(tmp_path, small_faces):
    path = tmp_path / "faces.py"
    path.write_text(faces_py_text(small_faces))
    return path


def _faces_text(samples: dict) -> str:
    return "face_samples = " + json.dumps(samples) + "\n"


def _cloud(n=4, offset=0.0):
    return {"x": [0.01 * i + offset for i in range(n)], "y": [0.02 * i for i in range(n)], "z": [0.05] * n}


def test_faces_py_loads_as_float32_metres_in_file_order(faces_py, small_faces):
    data = load_iphonex(faces_py)
    assert data.points.shape == (21, 1220, 3) and data.points.dtype == np.float32
    assert np.allclose(data.points, small_faces.points, atol=1e-6)  # 6 decimals = 1 µm
    assert list(data.emotions[:7]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert list(data.labels[:7]) == list(range(7)) and data.subject_ids == tuple(small_faces.sample_ids)
    assert data.cloud(small_faces.sample_ids[1], "happy").shape == (1220, 3)
    with pytest.raises(KeyError, match="no 'contempt' cloud"):
        data.cloud(small_faces.sample_ids[1], "contempt")


def test_code_in_faces_py_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "faces.py"
    evil.write_text(
        f'face_samples = {{"s": {{"happy": {{"x": __import__("os").system("touch {marker}"), "y": [1], "z": [1]}}}}}}\n'
    )
    with pytest.raises(IPhoneXFormatError, match=r"faces\.py:1: only literal values.*Call.*never executed"):
        load_iphonex(evil)
    evil.write_text(f'import os\nos.system("touch {marker}")\nface_samples = {{}}\n')
    with pytest.raises(IPhoneXFormatError, match=r"exactly one statement.*Import"):
        load_iphonex(evil)
    evil.write_text(f'face_samples = {{"s": {{"happy": (lambda: open("{marker}", "w"))()}}}}\n')
    with pytest.raises(IPhoneXFormatError, match="only literal values"):
        load_iphonex(evil)
    assert not marker.exists()


def test_npz_and_ply_obj_xyz_folders_give_the_same_clouds(tmp_path, small_faces):
    import open3d as o3d

    paths = synthetic.generate(tmp_path / "syn", subjects=2, images=3, seed=1)
    from_py, from_npz = load_iphonex(paths["iphonex"]), load_iphonex(paths["iphonex_npz"])
    assert np.allclose(from_py.points, from_npz.points, atol=1e-6)
    assert list(from_py.subjects) == list(from_npz.subjects) and list(from_py.labels) == list(from_npz.labels)
    root = tmp_path / "folder"
    for i in range(7):
        sid, emotion = "subject-a", from_npz.emotions[i]
        (root / sid).mkdir(parents=True, exist_ok=True)
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(from_npz.points[i].astype(np.float64)))
        suffix = [".ply", ".xyz", ".pcd"][i % 3]
        o3d.io.write_point_cloud(str(root / sid / f"{emotion}{suffix}"), cloud)
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(from_npz.points[7].astype(np.float64)),
        o3d.utility.Vector3iVector(np.stack([np.arange(1218) + k for k in range(3)], 1)),
    )
    (root / "subject-b").mkdir()
    o3d.io.write_triangle_mesh(str(root / "subject-b" / "angry.obj"), mesh)
    folder = load_iphonex(root)
    assert len(folder) == 8 and folder.subject_ids == ("subject-a", "subject-b")
    order = np.argsort(from_npz.emotions[:7])  # files are read in name order
    assert np.allclose(folder.points[:7], from_npz.points[:7][order], atol=1e-5)
    assert np.allclose(folder.points[7], from_npz.points[7], atol=1e-5)


@pytest.mark.parametrize(
    "cloud, problem",
    [
        ({"x": [0.1, float("nan")], "y": [0, 0], "z": [0, 0]}, "NaN or inf"),
        ({"x": [0.1, 0.2], "y": [0, 0], "z": [0]}, "different lengths"),
        ({"x": [], "y": [], "z": []}, "empty cloud"),
        ({"x": [0.1], "y": [0]}, "expected keys 'x', 'y', 'z'"),
        ({"x": [0.1, 0.2, 0.3], "y": [0, 0, 0], "z": [0, 0, 0]}, "3 points, expected 4"),
    ],
)
def test_bad_clouds_are_named_by_sample_and_emotion(tmp_path, cloud, problem):
    path = tmp_path / "faces.py"
    text = _faces_text(
        {
            "2018-03-11 18:48:11 +0000": {"happy": _cloud(), "sad": _cloud()},
            "2018-03-12 09:00:00 +0000": {"angry": _cloud(), "fear": cloud},
        }
    )
    path.write_text(text.replace("NaN", "nan"))  # json writes NaN; Python's repr (and so a faces.py) says nan
    with pytest.raises(IPhoneXFormatError) as err:
        load_iphonex(path)
    message = str(err.value)
    assert "'2018-03-12 09:00:00 +0000'" in message and "'fear'" in message and problem.split(",")[0] in message
    with pytest.warns(UserWarning, match="skipped 1 bad clouds"):
        kept = load_iphonex(path, on_bad_rows="skip")
    assert len(kept) == 3 and len(kept.bad_rows) == 1 and "fear" in kept.bad_rows[0].where


def test_unknown_emotion_and_non_numbers_are_reported(tmp_path):
    path = tmp_path / "faces.py"
    path.write_text(_faces_text({"s1": {"happy": _cloud(), "contempt": _cloud()}}))
    with pytest.raises(IPhoneXFormatError, match="'s1' emotion 'contempt'.*unknown emotion"):
        load_iphonex(path)
    path.write_text('face_samples = {"s1": {"happy": {"x": [0.1, "a"], "y": [0, 0], "z": [0, 0]}}}\n')
    with pytest.raises(IPhoneXFormatError, match="x: coordinates must be numbers"):
        load_iphonex(path)
    path.write_text("face_samples = {'s1': {'happy': ")
    with pytest.raises(IPhoneXFormatError, match=r"faces\.py:1: not valid Python literal syntax"):
        load_iphonex(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(IPhoneXFormatError, match="not UTF-8"):
        load_iphonex(path)


def test_bad_npz_and_folder_files(tmp_path):
    bad = tmp_path / "faces.npz"
    np.savez(bad, points=np.zeros((2, 5, 3), np.float32))
    with pytest.raises(IPhoneXFormatError, match="missing arrays.*emotion.*sample_id"):
        load_iphonex(bad)
    bad.write_bytes(b"not a zip")
    with pytest.raises(IPhoneXFormatError, match="not a readable .npz"):
        load_iphonex(bad)
    root = tmp_path / "clouds" / "subject-1"
    root.mkdir(parents=True)
    (root / "happy.ply").write_bytes(b"")
    (root / "sad.txt").write_text("hello")
    with pytest.raises(IPhoneXFormatError) as err:
        load_iphonex(tmp_path / "clouds")
    assert "happy.ply: empty file (0 bytes)" in str(err.value) and "sad.txt: not a point-cloud file" in str(err.value)


@pytest.mark.parametrize("ascii_format", [True, False], ids=["ascii", "binary"])
def test_a_ply_cut_short_is_a_bad_cloud_not_a_face_padded_with_garbage(tmp_path, ascii_format):
    """open3d reads a PLY cut short without an error and fills the missing vertices with zeros or leftover
    memory; the loader reports it instead (regression: it loaded as a whole 1220-point face)."""
    import open3d as o3d

    rng = np.random.default_rng(0)
    root = tmp_path / "clouds" / "s0"
    root.mkdir(parents=True)
    for emotion in ("happy", "sad"):
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(rng.normal(size=(1220, 3)) * 0.05))
        o3d.io.write_point_cloud(str(root / f"{emotion}.ply"), cloud, write_ascii=ascii_format)
    whole = (root / "happy.ply").read_bytes()
    (root / "happy.ply").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(IPhoneXFormatError, match=r"happy\.ply: the file ends after \d+ of the 1220 vertices"):
        load_iphonex(tmp_path / "clouds")
    with pytest.warns(UserWarning, match="skipped 1 bad clouds"):
        kept = load_iphonex(tmp_path / "clouds", on_bad_rows="skip")
    assert list(kept.emotions) == ["sad"], f"expected only the whole cloud kept, found {list(kept.emotions)}"


def test_on_a_tie_of_cloud_sizes_the_arkit_size_is_the_expected_one(tmp_path):
    """One 1220-point cloud and one 1000-point cloud: the 1000-point one is the odd one out (regression: a tie
    picked the smaller size and flagged the ARKit mesh)."""
    import open3d as o3d

    clouds = tmp_path / "clouds" / "s0"
    clouds.mkdir(parents=True)

    for emotion, n in (("happy", 1220), ("sad", 1000)):
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.random.default_rng(n).normal(size=(n, 3))))
        o3d.io.write_point_cloud(str(clouds / f"{emotion}.ply"), cloud)
    with pytest.raises(IPhoneXFormatError, match=r"emotion 'sad'.*1000 points, expected 1220 like the other clouds"):
        load_iphonex(tmp_path / "clouds")


def test_a_sample_or_emotion_given_twice_and_nested_lists_are_reported(tmp_path):
    """Regressions: a dict literal keeps the last of two equal keys, so a cloud was lost without a word; a nested
    list [[...]] loaded the placeholders of the number lists as coordinates."""
    path = tmp_path / "faces.py"
    cloud = "{'x': [0.1, 0.2], 'y': [0.0, 0.1], 'z': [0.3, 0.3]}"
    path.write_text(
        "face_samples = {\n"
        f" 'a': {{'happy': {cloud}, 'sad': {cloud}, 'happy': {cloud}}},\n"
        f" 'b': {{'angry': {cloud}}},\n"
        f" 'b': {{'fear': {cloud}}},\n"
        f" 'c': {{'sad': {cloud}, 'fear': {{'x': [[0.1, 0.2]], 'y': [[0.0, 0.1]], 'z': [[0.3, 0.3]]}}}},\n"
        "}\n"
    )
    with pytest.warns(UserWarning, match="skipped 3 bad clouds"):
        data = load_iphonex(path, on_bad_rows="skip")
    reasons = {row.where.split(": ", 1)[1]: row.reason for row in data.bad_rows}
    assert "given twice in its sample (lines 2 and 2)" in reasons["sample 'a' emotion 'happy'"], reasons
    assert "sample 'b' is given twice (lines 3 and 4)" in reasons["sample 'b' emotion 'fear'"], reasons
    assert "must be numbers" in reasons["sample 'c' emotion 'fear'"], reasons
    assert sorted(zip(data.subjects, data.emotions)) == [("a", "sad"), ("c", "sad")], list(
        zip(data.subjects, data.emotions)
    )


def test_coordinates_beyond_float32_are_reported_not_stored_as_inf(tmp_path):
    path = tmp_path / "faces.npz"
    points = np.zeros((2, 4, 3))
    points[1, 2] = 1e39  # finite in float64, inf in the float32 the dataset stores
    np.savez(path, points=points, sample_id=np.array(["a", "b"]), emotion=np.array(["happy", "sad"]))
    with pytest.raises(
        IPhoneXFormatError,
        match=r"'b' emotion 'sad'.*1 point\(s\) with NaN or inf coordinates, or "
        r"beyond float32's range \(first: point 2\)",
    ):
        load_iphonex(path)


def test_resolution_env_default_folder_and_synthetic(tmp_path, faces_py, monkeypatch):
    monkeypatch.setenv("IPHONEX_PATH", str(faces_py))
    assert load_iphonex().source == str(faces_py)
    monkeypatch.setenv("IPHONEX_PATH", str(tmp_path / "nowhere.py"))
    with pytest.raises(FileNotFoundError, match=r"nowhere\.py \(IPHONEX_PATH\).*data/iphonex/faces\.py"):
        load_iphonex()
    monkeypatch.delenv("IPHONEX_PATH")
    monkeypatch.setenv("EXPRESSION_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(synthetic, "DEFAULT_IMAGES", 30)
    monkeypatch.setattr(synthetic, "DEFAULT_SUBJECTS", 2)
    data = load_iphonex()
    assert data.description.startswith("SYNTHETIC FACS faces") and len(data) == 14
    (tmp_path / "data" / "iphonex").mkdir(parents=True)
    faces_py.rename(tmp_path / "data" / "iphonex" / "faces.py")
    assert len(load_iphonex()) == 21
    monkeypatch.setenv("IPHONEX_PATH", "synthetic")
    assert len(load_iphonex()) == 14


def test_input_files_are_never_modified(faces_py):
    before = (faces_py.read_bytes(), faces_py.stat().st_mtime_ns)
    load_iphonex(faces_py)
    load_iphonex(faces_py)  # cached
    assert (faces_py.read_bytes(), faces_py.stat().st_mtime_ns) == before
