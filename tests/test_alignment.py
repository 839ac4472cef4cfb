"""Alignment by the eyes (data_loaders.alignment) and MTCNN in the kit's detector: tilted faces come back level."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from data_loaders.alignment import EYE_DISTANCE, EYE_X, EYE_Y, align_face, eye_angle, eye_source, find_eyes
from data_loaders.face_detection import detect_faces, landmark_faces, mtcnn_available
from data_loaders.personal import astronaut_photo, load_personal, read_grayscale

ANGLES = (-30, 30)
needs_mtcnn = pytest.mark.skipif(not mtcnn_available(), reason="the mtcnn package is not installed")


def _dots(left, right, shape=(200, 200)) -> np.ndarray:
    """A grey image with two bright dots (the eyes) at ``left`` and ``right``."""
    image = np.full(shape, 60, np.uint8)
    for x, y in (left, right):
        cv2.circle(image, (int(round(x)), int(round(y))), 3, 255, -1, cv2.LINE_AA)
    return image


def _centres(crop: np.ndarray) -> list[tuple[float, float]]:
    """Centroids of the two brightest blobs of ``crop``, left to right."""
    _, _, stats, centroids = cv2.connectedComponentsWithStats((crop > 150).astype(np.uint8))
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:2] + 1
    return sorted((float(cx), float(cy)) for cx, cy in centroids[order])


@pytest.mark.parametrize("theta", [-30, -10, 0, 20, 30])
def test_eyes_come_back_level_at_the_fixed_distance_and_place(theta):
    """Eyes 50 px apart turned by θ° counter-clockwise: the crop has them level, EYE_DISTANCE × 48 apart, centred
    at (EYE_X, EYE_Y) × 48, and the angle applied is -θ."""
    c, s = np.cos(np.radians(theta)), np.sin(np.radians(theta))
    half = np.array([25 * c, -25 * s])  # counter-clockwise on screen: y points down
    left, right = np.array([100.0, 110.0]) - half, np.array([100.0, 110.0]) + half
    crop, angle = align_face(_dots(left, right), tuple(left), tuple(right), size=48)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8, (
        f"expected uint8 (48, 48), found {crop.dtype} {crop.shape}"
    )
    assert angle == pytest.approx(-theta, abs=0.01), f"expected the applied rotation {-theta}°, found {angle}°"
    (lx, ly), (rx, ry) = _centres(crop)
    assert abs(eye_angle((lx, ly), (rx, ry))) < 3, f"expected level eyes, found {(lx, ly)} and {(rx, ry)}"
    assert np.hypot(rx - lx, ry - ly) == pytest.approx(EYE_DISTANCE * 48, abs=1.0), (
        f"expected the eyes {EYE_DISTANCE * 48:.1f} px apart, found {np.hypot(rx - lx, ry - ly):.1f}"
    )
    assert ((lx + rx) / 2, (ly + ry) / 2) == pytest.approx((EYE_X * 48, EYE_Y * 48), abs=1.0), (
        f"expected the eyes' midpoint at {(EYE_X * 48, EYE_Y * 48)}, found {((lx + rx) / 2, (ly + ry) / 2)}"
    )


def test_bad_input_is_refused():
    grey = np.zeros((60, 60), np.uint8)
    with pytest.raises(ValueError, match="1.0 px apart"):
        align_face(grey, (10, 10), (11, 10))
    with pytest.raises(ValueError, match="size must be at least 8"):
        align_face(grey, (10, 10), (30, 10), size=4)
    with pytest.raises(ValueError, match="grayscale uint8"):
        align_face(grey.astype(np.float32), (10, 10), (30, 10))
    with pytest.raises(ValueError, match="source must be"):
        find_eyes(grey, source="dlib")


def test_without_mtcnn_the_haar_eye_cascade_finds_the_astronauts_eyes(tmp_path, monkeypatch):
    import data_loaders.alignment as alignment

    monkeypatch.setattr(alignment, "mtcnn_available", lambda: False)
    assert eye_source("auto") == "haar", "expected the eye cascade where mtcnn is absent"
    grey = read_grayscale(astronaut_photo(tmp_path))
    eyes = find_eyes(grey)
    assert eyes is not None and eyes.source == "haar", f"expected two eyes by the eye cascade, found {eyes}"
    x, y, w, h = eyes.box
    # Eileen Collins' eyes lie near (205, 100) and (245, 102) in the 512×512 photo (MTCNN's landmarks)
    assert eyes.left[0] < eyes.right[0] and all(
        x <= ex <= x + w and y <= ey <= y + h * 0.6 for ex, ey in (eyes.left, eyes.right)
    ), f"expected the eyes in the upper box {eyes.box}, left first; found {eyes.left}, {eyes.right}"
    assert abs(eye_angle(eyes.left, eyes.right)) < 8, f"an upright face: found {eye_angle(eyes.left, eyes.right)}°"


def _rotated(grey: np.ndarray, theta: float, centre: tuple[float, float]) -> np.ndarray:
    m = cv2.getRotationMatrix2D(centre, theta, 1.0)
    return cv2.warpAffine(grey, m, grey.shape[::-1], borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def mtcnn_runs(tmp_path_factory):
    """Every MTCNN result the tests below check, computed once (TensorFlow's import takes seconds): the
    astronaut and the first lfw_subset face turned by ±30°, aligned, and the eye line measured again on the output."""
    if not mtcnn_available():
        pytest.skip("the mtcnn package is not installed")
    astronaut = read_grayscale(astronaut_photo(tmp_path_factory.mktemp("astronaut")))
    crops = np.clip(np.rint(data.lfw_subset()[:1] * 255), 0, 255).astype(np.uint8)  # MTCNN finds its eyes at ±30°
    faces = {"astronaut": (astronaut, (224.0, 118.0))}
    for k, crop in enumerate(crops):
        big = cv2.copyMakeBorder(cv2.resize(crop, (100, 100), interpolation=cv2.INTER_CUBIC), 50, 50, 50, 50, 1)
        faces[f"lfw {k}"] = (big, (100.0, 100.0))
    runs = {}
    for name, (grey, centre) in faces.items():
        upright = find_eyes(grey, source="mtcnn")
        for theta in ANGLES:
            eyes = find_eyes(_rotated(grey, theta, centre), source="mtcnn")
            crop, angle = align_face(_rotated(grey, theta, centre), eyes.left, eyes.right) if eyes else (None, None)
            big = None if crop is None else cv2.resize(crop, (192, 192), interpolation=cv2.INTER_CUBIC)
            again = None if big is None else find_eyes(big, source="mtcnn")
            runs[name, theta] = (upright, angle, again)
    non_faces = [
        len(detect_faces(cv2.resize(g, (200, 200)), method="mtcnn"))
        for g in (data.coins(), data.moon(), data.text(), data.brick())
    ]
    return {"runs": runs, "astronaut": landmark_faces(astronaut), "non_faces": non_faces}


@needs_mtcnn
@pytest.mark.slow
def test_faces_turned_by_30_degrees_come_back_level_within_3_degrees(mtcnn_runs):
    for (name, theta), (upright, angle, again) in mtcnn_runs["runs"].items():
        assert upright is not None and angle is not None, f"{name} turned {theta}°: expected its eyes to be found"
        expected = eye_angle(upright.left, upright.right) - theta  # the face's own tilt plus the turn
        assert abs(angle - expected) < 3, (
            f"{name} turned {theta}°: expected a correction of {expected:.1f}°, {angle:.1f}°"
        )
        assert again is not None, f"{name} turned {theta}°: expected MTCNN to find the eyes on the aligned crop"
        level = eye_angle(again.left, again.right)
        assert abs(level) < 3, f"{name} turned {theta}°: expected a level eye line on the output, found {level:.1f}°"


@needs_mtcnn
@pytest.mark.slow
def test_mtcnn_finds_the_astronaut_with_landmarks_and_no_face_in_textures(mtcnn_runs):
    faces = mtcnn_runs["astronaut"]
    assert len(faces) == 1, f"expected one face in the astronaut photo, found {faces}"
    (x, y, w, h), eyes = faces[0].box, (faces[0].left_eye, faces[0].right_eye)
    assert 150 < x + w / 2 < 260 and 80 < y + h / 2 < 170, f"expected the face near (224, 118), found {faces[0].box}"
    assert all(x < ex < x + w and y < ey < y + h / 2 for ex, ey in eyes), f"expected eyes in the upper box: {eyes}"
    assert mtcnn_runs["non_faces"] == [0, 0, 0, 0], f"expected no face in coins, moon, text, brick: {mtcnn_runs}"


@needs_mtcnn
@pytest.mark.slow
def test_load_personal_aligns_on_request_and_says_which_detector_ran(tmp_path, mtcnn_runs):
    root = tmp_path / "photos" / "test" / "happy"
    root.mkdir(parents=True)
    grey = read_grayscale(astronaut_photo(tmp_path))
    cv2.imwrite(str(root / "1.png"), _rotated(grey, 30, (224.0, 118.0)))
    plain = load_personal(tmp_path / "photos")  # method="auto": MTCNN where it is installed
    aligned = load_personal(tmp_path / "photos", method="mtcnn", align=True)
    assert plain.report.attrs["method"] == "mtcnn", f"expected MTCNN by default, found {plain.report.attrs}"
    angle = aligned.report.attrs["angle"][0]
    assert -33 < angle < -20, f"expected a correction near -30° (plus the face's own tilt), found {angle}"
    assert aligned.images.shape == (1, 48, 48) and not np.array_equal(aligned.images, plain.images)
    cv2.imwrite(str(root / "1.png"), grey)  # the Haar cascades find upright faces only
    haar = load_personal(tmp_path / "photos", method="haar")
    assert haar.report.attrs["method"] == "haar" and np.isnan(haar.report.attrs["angle"][0]), (
        f"expected the Haar vote when asked and no alignment, found {haar.report.attrs}"
    )
    with pytest.raises(ValueError, match="method must be"):
        load_personal(tmp_path / "photos", method="dlib")
