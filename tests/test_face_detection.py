"""The kit's face detector (several Haar cascades merged by vote) against the single cascade it replaced."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from data_loaders.face_detection import detect_faces, largest_face, single_cascade_face
from data_loaders.personal import astronaut_photo, find_face, read_grayscale


@pytest.fixture(scope="module")
def lfw():
    """scikit-image's lfw_subset, 25×25 crops enlarged 4×: 100 faces, 100 non-faces."""
    crops = np.clip(np.rint(data.lfw_subset() * 255), 0, 255).astype(np.uint8)
    big = np.stack([cv2.resize(c, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC) for c in crops])
    return big[:100], big[100:]


def test_the_astronaut_is_found(tmp_path):
    grey = read_grayscale(astronaut_photo(tmp_path))
    boxes = detect_faces(grey)
    assert len(boxes) == 1, f"one face expected, found {len(boxes)}: {boxes.tolist()}"
    x, y, w, h = boxes[0]
    # Eileen Collins' face lies around x 170-280, y 60-170 in the 512×512 photo
    assert 150 < x + w / 2 < 260 and 80 < y + h / 2 < 170 and 70 < w < 160, f"box {boxes[0].tolist()}"
    assert find_face(grey) == tuple(int(v) for v in boxes[0])
    rgb = np.asarray(Image.open(astronaut_photo(tmp_path)).convert("RGB"))
    assert largest_face(rgb) is not None, "an RGB image is converted to grey"


@pytest.mark.parametrize("value", [0, 128, 255])
def test_a_blank_image_has_no_face(value):
    assert detect_faces(np.full((240, 320), value, np.uint8)).shape == (0, 4)
    assert largest_face(np.full((48, 48), value, np.uint8)) is None


def test_noise_has_no_face():
    noise = np.random.default_rng(0).integers(0, 256, (240, 320), dtype=np.uint8)
    assert len(detect_faces(noise)) == 0


@pytest.mark.slow  # 100 LFW photos through the detector: seconds
def test_recall_on_lfw_faces_is_at_least_the_single_cascades(lfw):
    faces, _ = lfw
    before = sum(single_cascade_face(g) is not None for g in faces)
    now = sum(largest_face(g) is not None for g in faces)
    assert now >= before, f"the kit's detector found {now} of 100 faces, the single cascade {before}"
    assert now >= 95, f"tightly cropped LFW faces: found {now} of 100, expected at least 95"


@pytest.mark.slow  # 100 LFW crops through the detector: seconds
def test_few_false_positives_on_lfw_non_faces(lfw):
    _, others = lfw
    false = sum(largest_face(g) is not None for g in others[:50])
    assert false <= 2, f"{false} of 50 non-face crops got a face box (expected at most 2)"


def test_boxes_are_inside_the_image_and_bad_input_is_refused():
    scene = np.full((240, 320), 110, np.uint8)
    crops = np.clip(np.rint(data.lfw_subset()[:1] * 255), 0, 255).astype(np.uint8)
    scene[0:100, 220:320] = cv2.resize(crops[0], (100, 100), interpolation=cv2.INTER_CUBIC)  # at the corner
    boxes = detect_faces(scene)
    assert len(boxes) >= 1 and boxes.dtype == np.int64
    x, y, w, h = boxes[0]
    assert x >= 0 and y >= 0 and x + w <= 320 and y + h <= 240
    with pytest.raises(ValueError, match="grayscale uint8"):
        detect_faces(np.zeros((10, 10), np.float32))
