"""Personal photos: any image mode, EXIF orientation, Haar-cascade crops, no-face reports, deletion; capture."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from data_loaders.personal import (
    PersonalPhotoError,
    astronaut_photo,
    delete_photos,
    find_face,
    load_personal,
    read_grayscale,
)
from data_loaders.synthetic import standin_photos
from widgets.capture import PhotoCapture, save_photo


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    return np.asarray(Image.open(astronaut_photo(tmp_path_factory.mktemp("astro"))).convert("RGB"))


def _jpeg(array, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", **save)
    return buf.getvalue()


def _put(root, split, emotion, name, image: Image.Image):
    path = root / split / emotion / name
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "1", "I;16"])
def test_any_image_mode_reads_as_uint8_grey(tmp_path, astronaut, mode):
    rgb = Image.fromarray(astronaut)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)
    else:
        image = rgb.convert(mode)
    path = tmp_path / "photo.png"
    image.save(path)
    grey = read_grayscale(path)
    assert grey.dtype == np.uint8 and grey.shape == (512, 512)
    if mode != "1":
        assert abs(float(grey.mean()) - float(np.asarray(rgb.convert("L")).mean())) < 6


def test_exif_orientation_is_honoured(tmp_path):
    wide = np.zeros((40, 60), np.uint8)
    wide[:, :10] = 255  # a bright band on the left
    image = Image.fromarray(wide)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    grey = read_grayscale(path)
    assert grey.shape == (60, 40)  # displayed upright
    assert grey[:10].mean() > 200  # the left band is now at the top


def test_the_largest_face_is_cropped_and_no_face_photos_are_reported(tmp_path, astronaut):
    grey = np.asarray(Image.fromarray(astronaut).convert("L"))
    two = np.full((600, 1000), 128, np.uint8)
    two[40:552, 420:932] = grey  # big face
    small = np.asarray(Image.fromarray(grey).resize((256, 256)))
    two[300:556, 40:296] = small  # small face
    box = find_face(two)
    assert box is not None and box[0] > 420 and box[2] > 80  # the bigger one
    root = tmp_path / "photos"
    _put(root, "train", "happy", "1.png", Image.fromarray(two))
    _put(root, "test", "happy", "1.jpg", Image.fromarray(astronaut))
    _put(root, "test", "sad", "1.png", Image.fromarray(np.full((300, 300), 90, np.uint8)))  # no face
    with pytest.warns(UserWarning, match=r"1 of 3 photos not used: 1\.png \(no face found"):
        data = load_personal(root)
    report = data.report
    assert len(data) == 2 and data.images.shape == (2, 48, 48) and data.images.dtype == np.uint8
    assert list(report.columns) == [
        "file",
        "split",
        "emotion",
        "face_found",
        "box",
        "width",
        "height",
        "used",
        "problem",
    ]
    missing = report[~report.used].iloc[0]
    assert missing.file == "test/sad/1.png" and "light" in missing.problem and not missing.face_found
    assert report[report.file == "train/happy/1.png"].iloc[0].box[0] > 420
    assert [b.where.endswith("1.png") for b in data.bad_rows] == [True]


def test_flat_folders_bad_files_and_detect_false(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    face = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 50), dtype=np.uint8))
    face.save(root / "happy_1.png")
    face.save(root / "test_sad.png")
    (root / "empty_happy.jpg").write_bytes(b"")
    (root / "notes_happy.jpg").write_text("not an image")
    (root / "portrait.png").write_bytes(_jpeg(np.zeros((10, 10), np.uint8)))  # no emotion in the name
    with pytest.warns(UserWarning, match="3 of 5 photos not used"):
        data = load_personal(root, detect=False)
    report = data.report
    assert sorted(zip(data.usage, data.labels)) == [("test", 4), ("train", 3)]
    problems = dict(zip(report.file, report.problem))
    assert "empty file" in problems["empty_happy.jpg"] and "not a readable image" in problems["notes_happy.jpg"]
    assert "no emotion" in problems["portrait.png"]
    with pytest.raises(PersonalPhotoError, match="no photo folder"):
        load_personal(tmp_path / "nowhere")


def test_a_split_folder_of_another_name_and_a_missing_file_get_their_own_message(tmp_path):
    """Regressions: ``training/happy/1.png`` was reported as having no emotion in its path; a missing file raised
    a bare FileNotFoundError although the docstring promises PersonalPhotoError."""
    face = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 50), dtype=np.uint8))
    for split in ("train", "test", "training"):
        (tmp_path / split / "happy").mkdir(parents=True)
        face.save(tmp_path / split / "happy" / "1.png")
    with pytest.warns(UserWarning, match="1 of 3 photos not used"):
        data = load_personal(tmp_path, detect=False)
    problems = dict(zip(data.report.file, data.report.problem))
    assert "the split folder 'training' is neither train nor test" in problems["training/happy/1.png"], problems
    with pytest.raises(PersonalPhotoError, match="missing.jpg: no such file"):
        read_grayscale(tmp_path / "missing.jpg")


def test_standin_photos_cover_both_splits_and_every_emotion(tmp_path):
    root = standin_photos(tmp_path / "standin")
    data = load_personal(root, detect=False)
    report = data.report
    assert len(data) == 14 and report.used.all()
    for split in ("train", "test"):
        assert sorted(data.labels[data.usage == split]) == list(range(7))


def test_capture_saves_a_jpeg_in_the_right_folder(tmp_path, astronaut):
    widget = PhotoCapture(tmp_path / "personal", countdown=0)
    jpeg = _jpeg(astronaut, quality=90)
    widget.emotion.value, widget.split.value = "surprise", "test"
    widget._on_message(widget.camera, {"kind": "capture", "jpeg": base64.b64encode(jpeg).decode()}, [])
    saved = tmp_path / "personal" / "test" / "surprise" / "1.jpg"
    assert saved.read_bytes() == jpeg
    assert widget.handle_capture(jpeg, emotion="happy", split="train") == tmp_path / "personal/train/happy/1.jpg"
    assert widget.handle_capture(jpeg, emotion="happy", split="train").name == "2.jpg"
    assert "train: 1/7 expressions · test: 1/7 expressions · 3 photos" in widget.progress.value
    assert len(widget.gallery.children) == 3
    assert widget.handle_capture(b"garbage") is None and "Not saved" in widget.message.value
    widget.delete(saved)
    assert not saved.exists() and len(widget.photos()) == 2
    with pytest.raises(ValueError, match="not inside"):
        widget.delete(tmp_path / "elsewhere.jpg")
    assert not list((tmp_path / "personal").rglob("*.tmp"))  # atomic writes leave nothing behind


def test_a_photo_that_cannot_be_written_says_so_in_the_widget(tmp_path, astronaut):
    """Regression: a folder that cannot be written raised an OSError into the kernel log from the camera's
    callback, and the student saw no "Not saved"."""
    blocked = tmp_path / "a_file_not_a_folder"
    blocked.write_text("")
    widget = PhotoCapture(blocked)
    assert widget.handle_capture(_jpeg(astronaut)) is None, "expected no path for a photo that was not saved"
    assert "Not saved" in widget.message.value, f"expected the status to say so, found {widget.message.value!r}"
    with pytest.raises(ValueError, match="countdown must be ≥ 0 seconds, got -3"):
        PhotoCapture(tmp_path / "personal", countdown=-3)


def test_upload_fallback_when_the_camera_is_refused(tmp_path, astronaut):
    widget = PhotoCapture(tmp_path / "personal")
    widget.camera.camera_state = "denied or unavailable (NotAllowedError)"
    assert widget.upload_box.layout.display is None and "No camera" in widget.message.value
    png = io.BytesIO()
    Image.fromarray(astronaut).save(png, format="PNG")
    widget.emotion.value = "neutral"
    widget._on_upload({"new": ({"name": "me.png", "content": memoryview(png.getvalue())},)})
    assert (tmp_path / "personal" / "train" / "neutral" / "1.png").read_bytes() == png.getvalue()
    widget.camera.camera_state = "live"
    assert widget.upload_box.layout.display == "none"


def test_delete_all_removes_every_photo(tmp_path, astronaut):
    folder = tmp_path / "personal"
    for emotion in ("happy", "sad"):
        save_photo(folder, "train", emotion, _jpeg(astronaut))
    widget = PhotoCapture(folder)
    assert widget.remove_all() == 2 and not folder.exists() and widget.photos() == []
    assert delete_photos(folder) == 0
    with pytest.raises(ValueError, match="unknown emotion"):
        save_photo(folder, "train", "contempt", _jpeg(astronaut))
    with pytest.raises(ValueError, match="split"):
        save_photo(folder, "validation", "happy", _jpeg(astronaut))
