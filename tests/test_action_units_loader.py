"""The Action Unit loader: synthetic default, OpenFace csv, DISFA-style folders, resolution order, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_CACHE
from data_loaders import EMOTIONS, load_fer2013
from data_loaders.action_units import ActionUnitFormatError, load_action_units
from data_loaders.synthetic import AUS, openface_csv_text, sample_image_aus, sample_images, valence_arousal
from data_loaders.synthetic.affect import EMOTION_ANGLES, expression_strength


@pytest.mark.slow
def test_synthetic_default_has_exact_labels_for_the_fer2013_faces(monkeypatch):
    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(SHARED_CACHE))  # the synthetic default, generated once
    monkeypatch.setenv("AU_DATA_PATH", "synthetic")
    data = load_action_units()
    fer = load_fer2013("synthetic")
    assert data.description.startswith("SYNTHETIC") and "AU_DATA_PATH" in data.description
    assert np.array_equal(data.images, fer.images) and np.array_equal(data.labels, fer.labels)
    assert data.au_names == AUS and data.intensity.shape == (len(fer), len(AUS))
    assert data.intensity.min() >= 0 and data.intensity.max() <= 5
    assert np.array_equal(data.presence, data.intensity >= 0.5)
    happy = data.labels == EMOTIONS.index("Happy")
    smile = data.presence[:, [AUS.index("AU6"), AUS.index("AU12")]].all(axis=1)
    assert smile[happy].mean() > 0.6 and smile[~happy].mean() < 0.1  # AU6+AU12: the smile
    assert np.all(np.abs(data.valence) <= 1) and np.all(np.abs(data.arousal) <= 1)
    assert data.valence[happy].mean() > 0.3 and data.valence[data.labels == EMOTIONS.index("Sad")].mean() < -0.3
    assert data.arousal[data.labels == EMOTIONS.index("Surprise")].mean() > 0.3
    neutral = data.labels == EMOTIONS.index("Neutral")
    assert np.all(data.valence[neutral] == 0) and np.all(data.arousal[neutral] == 0)
    assert set(data.au_table().index) == set(AUS) and data.au_table().loc["AU12", "muscles"] == "zygomaticus major"
    assert len(data.subset("PublicTest")) == int((fer.usage == "PublicTest").sum())


def test_sample_image_aus_describes_the_rendered_images_without_rendering():
    _, labels, usage = sample_images(40, seed=3)
    labels2, usage2, aus = sample_image_aus(40, seed=3)
    assert np.array_equal(labels, labels2) and np.array_equal(usage, usage2)
    assert aus.shape == (40, len(AUS)) and aus.dtype == np.float32


def test_valence_arousal_follow_the_circumplex_and_scale_with_intensity():
    from data_loaders.synthetic.facs import emotion_au_table

    proto = emotion_au_table()
    labels = np.arange(7)
    v, a = valence_arousal(labels, proto)
    for code, emotion in enumerate(EMOTIONS):
        angle = EMOTION_ANGLES[emotion]
        if angle is None:
            assert v[code] == 0 and a[code] == 0
        else:
            assert np.isclose(v[code], np.cos(np.deg2rad(angle)), atol=1e-5)
            assert np.isclose(a[code], np.sin(np.deg2rad(angle)), atol=1e-5)
    v_half, a_half = valence_arousal(labels, proto * 0.5)
    assert np.allclose(v_half, v / 2, atol=1e-5) and np.allclose(a_half, a / 2, atol=1e-5)
    assert np.allclose(expression_strength(labels, proto * 2), [1, 1, 1, 1, 1, 1, 0])


def _openface(folder, rows=4, spaces=True, extra_lines=()):
    """An OpenFace-style csv with aligned face crops (112×112 colour bmp, as OpenFace writes them)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    intensity = rng.uniform(0, 5, (rows, 3)).round(2)
    text = openface_csv_text(intensity, ["AU1", "AU6", "AU12"], valence=np.linspace(-1, 1, rows))
    if spaces:  # OpenFace 2.0 writes ", " between fields: header names with a leading space
        text = "\n".join(", ".join(line.split(",")) for line in text.splitlines()) + "\n"
    text += "".join(line + "\n" for line in extra_lines)
    (folder / "clip.csv").write_text(text)
    aligned = folder / "clip_aligned"
    aligned.mkdir(exist_ok=True)
    for f in range(1, rows + 1):
        Image.fromarray(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)).save(aligned / f"frame_det_00_{f:06d}.bmp")
    return folder / "clip.csv", intensity


def test_openface_csv_with_leading_spaces_and_aligned_faces(tmp_path):
    path, intensity = _openface(tmp_path / "of")
    data = load_action_units(path, use_cache=False)
    assert data.au_names == ("AU1", "AU6", "AU12") and data.images.shape == (4, 48, 48)
    assert np.allclose(data.intensity, intensity, atol=0.006)
    assert np.array_equal(data.presence, intensity >= 0.5)
    assert np.allclose(data.valence, np.linspace(-1, 1, 4), atol=1e-6) and np.isnan(data.arousal).all()
    assert list(data.frames) == [1, 2, 3, 4] and set(data.subjects) == {"clip"} and (data.labels == -1).all()
    assert set(data.usage) <= {"Training", "PublicTest", "PrivateTest"}
    again = load_action_units(path)  # cached on the second read
    assert np.array_equal(again.images, load_action_units(path).images)


def test_the_cache_sees_a_changed_face_crop_beside_the_csv(tmp_path, monkeypatch):
    """A single OpenFace csv reads its crops from clip_aligned/ beside it: a crop replaced after the first read must
    not come back from the cache (regression: the key held only the csv)."""
    import os

    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(tmp_path / "cache"))
    path, _ = _openface(tmp_path / "of")
    first = load_action_units(path)
    crop = path.parent / "clip_aligned" / "frame_det_00_000001.bmp"
    Image.fromarray(np.zeros((112, 112, 3), np.uint8)).save(crop)
    os.utime(crop, ns=(crop.stat().st_atime_ns, crop.stat().st_mtime_ns + 10**9))  # a later mtime on any file system
    again = load_action_units(path)
    assert "read from the cache" not in again.description, f"expected a fresh parse, found {again.description!r}"
    assert first.images[0].mean() > 0 and again.images[0].max() == 0, (
        f"expected the replaced crop (black) read again, found a mean of {again.images[0].mean():.1f}"
    )


def test_openface_frames_without_a_face_are_left_out_and_listed(tmp_path):
    path, _ = _openface(tmp_path / "of", spaces=False, extra_lines=["5,0,0.133,0.0,0,0,0,0,0,0,0,0.5"])
    with pytest.warns(UserWarning, match="left out 1"):
        data = load_action_units(path, use_cache=False)
    assert len(data) == 4 and data.bad_rows[0].where == "clip.csv:6" and "success = 0" in data.bad_rows[0].reason


@pytest.mark.parametrize(
    "line, message",
    [
        ("5,0,0.1,0.9,1,7.5,0,0,0,0,0,0", "AU01_r = 7.5 is outside the intensity range 0-5"),
        ("5,0,0.1,0.9,1,x,0,0,0,0,0,0", "AU01_r = 'x' is not a number"),
        ("5,0,0.1,0.9,2,1,0,0,0,0,0,0", "success must be 0 or 1"),
        ("5,0,0.1,0.9,1,1,0,0,3,0,0,0", "AU01_c must be 0 or 1"),
        ("5,0,0.1,0.9,1,1,0,0,1,0,0,1.5", "valence = 1.5 is outside"),
        ("5,0,0.1,0.9,1,1,0,0,1,0,0,0", "no aligned face image clip_aligned/frame_det_00_000005"),
        # regressions: a duplicated frame was kept twice, 2.7 read as frame 2, inf raised an OverflowError
        ("2,0,0.1,0.9,1,1,0,0,1,0,0,0", "frame 2 face_id 0 appears twice (first on line 3)"),
        ("2.7,0,0.1,0.9,1,1,0,0,1,0,0,0", "frame '2.7' / face_id '0' is not a whole number"),
        ("inf,0,0.1,0.9,1,1,0,0,1,0,0,0", "frame 'inf' / face_id '0' is not a whole number"),
    ],
)
def test_openface_bad_rows_name_the_file_line_and_problem(tmp_path, line, message):
    path, _ = _openface(tmp_path / "of", spaces=False, extra_lines=[line])
    with pytest.raises(ActionUnitFormatError, match="clip.csv:6") as err:
        load_action_units(path, use_cache=False)
    assert message in str(err.value)
    with pytest.warns(UserWarning):
        assert len(load_action_units(path, on_bad_rows="skip", use_cache=False)) == 4


def test_openface_csv_without_au_columns_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("frame,success,pose_Tx\n1,1,0.5\n")
    with pytest.raises(ActionUnitFormatError, match=r"x.csv: not OpenFace output: missing column\(s\) AU01_r"):
        load_action_units(path, use_cache=False)


def _disfa(root, subjects=("SN001", "SN002", "SN003"), frames=5, aus=(1, 12)):
    rng = np.random.default_rng(1)
    for s in subjects:
        (root / s / "frames").mkdir(parents=True)
        for au in aus:
            (root / s / f"{s}_au{au}.txt").write_text(
                "".join(f"{f},{rng.integers(0, 6)}\n" for f in range(1, frames + 1))
            )
        for f in range(1, frames + 1):
            Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(root / s / "frames" / f"{f:04d}.png")
    return root


def test_disfa_label_files_that_do_not_match_their_folder_are_named(tmp_path):
    """Regression: SN002/SN02_au1.txt (a typo in the name) made subject SN002 vanish with no bad row."""
    root = _disfa(tmp_path / "disfa")
    for au in (1, 12):
        (root / "SN002" / f"SN002_au{au}.txt").rename(root / "SN002" / f"SN02_au{au}.txt")
    with pytest.raises(
        ActionUnitFormatError, match=r"2 DISFA label file\(s\) whose name does not match .*SN002/SN02_au1"
    ):
        load_action_units(root, use_cache=False)


def test_disfa_style_folder_is_split_by_subject(tmp_path):
    root = _disfa(tmp_path / "disfa")
    data = load_action_units(root, use_cache=False)
    assert data.au_names == ("AU1", "AU12") and len(data) == 15
    assert data.intensity.max() <= 5 and np.array_equal(data.presence, data.intensity >= 1)
    expected = (root / "SN002" / "SN002_au12.txt").read_text().splitlines()[2]
    row = np.flatnonzero((data.subjects == "SN002") & (data.frames == 3))[0]
    assert data.intensity[row, 1] == float(expected.split(",")[1])
    per_subject = {s: set(data.usage[data.subjects == s]) for s in set(data.subjects)}
    assert all(len(u) == 1 for u in per_subject.values()), "one split per subject: no identity leakage"
    assert per_subject["SN001"] == {"Training"} and per_subject["SN003"] == {"PrivateTest"}
    assert np.isnan(data.valence).all() and (data.labels == -1).all()


def test_disfa_bad_lines_missing_labels_and_images(tmp_path):
    root = _disfa(tmp_path / "disfa")
    with open(root / "SN001" / "SN001_au12.txt", "a") as f:
        f.write("6,9\n")
    (root / "SN002" / "frames" / "0004.png").unlink()
    with pytest.raises(ActionUnitFormatError) as err:
        load_action_units(root, use_cache=False)
    text = str(err.value)
    assert "SN001/SN001_au12.txt:6" in text and "intensity 9" in text
    assert "SN002 frame 4: no face image" in text
    with pytest.warns(UserWarning):
        assert len(load_action_units(root, on_bad_rows="skip", use_cache=False)) == 14


def test_disfa_subjects_need_the_same_aus_and_their_frames(tmp_path):
    root = _disfa(tmp_path / "a")
    (root / "SN003" / "SN003_au12.txt").unlink()
    with pytest.raises(ActionUnitFormatError, match="same AU files.*SN003 has AU1"):
        load_action_units(root, use_cache=False)
    root = _disfa(tmp_path / "b", subjects=("SN001",))
    for p in (root / "SN001" / "frames").iterdir():
        p.unlink()
    (root / "SN001" / "frames").rmdir()
    with pytest.raises(ActionUnitFormatError, match="frames: missing"):
        load_action_units(root, use_cache=False)


def test_resolution_order_and_missing_data(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRESSION_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("AU_DATA_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="AU_DATA_PATH"):
        load_action_units()
    root = _disfa(tmp_path / "data" / "action_units")
    monkeypatch.delenv("AU_DATA_PATH")
    assert load_action_units(use_cache=False).source == str(root)  # data/action_units/ before the default
    assert load_action_units(tmp_path / "data" / "action_units" / "SN001", use_cache=False).subjects[0] == "SN001"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing here")
    with pytest.raises(ActionUnitFormatError, match="holds no Action Unit data"):
        load_action_units(empty, use_cache=False)
    with pytest.raises(ValueError, match="on_bad_rows"):
        load_action_units(root, on_bad_rows="ignore")
