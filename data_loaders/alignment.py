"""Align a face by its eyes: rotate and scale so that the eyes are level, at a fixed distance and position.

FER2013's 48×48 faces are roughly centred and upright; a tilted head in a photo or a video frame is not. Given the
two eye centres, :func:`align_face` rotates about their midpoint so that the eye line is level, scales so that
they are :data:`EYE_DISTANCE` of the crop's side apart, and places their midpoint at (:data:`EYE_X`,
:data:`EYE_Y`) of the side: where MTCNN finds them, as a median, on FER2013's own PublicTest faces (measured by
``python -m benchmarks.alignment``), so an aligned crop is framed like the faces the models were trained on. The
warp is OpenCV's (``cv2.getRotationMatrix2D`` and ``cv2.warpAffine``).

Eyes come from :func:`find_eyes`: MTCNN's landmarks (:func:`data_loaders.face_detection.landmark_faces`) when the
``mtcnn`` package is installed, else OpenCV's eye cascade (``haarcascade_eye.xml``) inside the face box, which
finds eyes on upright and slightly tilted faces only (it is trained on upright eyes, and the Haar face cascades
that give the box miss most faces tilted by 30°).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np

from .face_detection import Face, cascade, detect_faces, landmark_faces, mtcnn_available

#: Distance between the eye centres, as a fraction of the crop's side (median on FER2013 PublicTest: 0.365).
EYE_DISTANCE = 0.365
#: Where the midpoint of the eyes goes, as fractions of the crop's side (FER2013 PublicTest median: 0.50, 0.38).
EYE_X, EYE_Y = 0.5, 0.38

EyeSource = Literal["auto", "mtcnn", "haar"]


class Eyes(NamedTuple):
    """Eye centres ``left``, ``right`` as ``(x, y)`` pixels (*left*: the image's left), the face ``box``
    ``(x, y, w, h)`` they belong to, and the detector that found them (``source``: ``"mtcnn"`` or ``"haar"``)."""

    left: tuple[float, float]
    right: tuple[float, float]
    box: tuple[int, int, int, int]
    source: str


class AlignedFace(NamedTuple):
    """:func:`aligned_face`'s answer: ``crop`` ``uint8 (size, size)``, ``angle`` (the rotation applied, degrees
    counter-clockwise as seen on screen, OpenCV's convention) and the ``eyes`` it was aligned on."""

    crop: np.ndarray
    angle: float
    eyes: Eyes


def eye_source(source: EyeSource = "auto") -> str:
    """``"mtcnn"`` or ``"haar"``: what ``source="auto"`` means here (MTCNN when the package is installed).

    Raises:
        ValueError: ``source`` is not ``"auto"``, ``"mtcnn"`` or ``"haar"``.
    """
    if source not in ("auto", "mtcnn", "haar"):
        raise ValueError(f"source must be 'auto', 'mtcnn' or 'haar', got {source!r}")
    return ("mtcnn" if mtcnn_available() else "haar") if source == "auto" else source


def _grey(image: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4) and image.dtype == np.uint8:
        return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected a grayscale uint8 image (H, W) (or RGB (H, W, 3)), got {image.dtype} {image.shape}")
    return image


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / max(1, a[2] * a[3] + b[2] * b[3] - inter)


def find_eyes(
    image: np.ndarray, box: tuple[int, int, int, int] | None = None, source: EyeSource = "auto"
) -> Eyes | None:
    """The eye centres of the face in ``box`` (default: the largest face found), or None when none are found.

    Args:
        image: ``uint8 (H, W)`` grey or ``(H, W, 3)`` RGB.
        box: ``(x, y, w, h)`` pixels of the face (from any detector); None: the largest face ``source`` finds.
        source: ``"mtcnn"`` (MTCNN's landmarks; with ``box``, the MTCNN face overlapping it most), ``"haar"``
            (OpenCV's eye cascade in the upper part of the box: upright and slightly tilted faces only) or
            ``"auto"`` (:func:`eye_source`).

    Returns:
        :class:`Eyes` in pixels of ``image``, or None.

    Raises:
        ValueError: not a ``uint8`` grey or RGB image, or an unknown ``source``.
        FaceDetectorError: ``source="mtcnn"`` without the ``mtcnn`` package.
    """
    source = eye_source(source)
    if source == "mtcnn":
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(
                f"expected a grayscale uint8 image (H, W) (or RGB (H, W, 3)), got {image.dtype} {image.shape}"
            )
        if box is None:
            faces = landmark_faces(image)
        else:  # look a little beyond the box, for faces larger than 20 px
            x, y, w, h = (int(v) for v in box)
            x0, y0 = max(0, x - w // 2), max(0, y - h // 2)
            region = image[y0 : y + h + h // 2, x0 : x + w + w // 2]
            faces = [
                Face(
                    (f.box[0] + x0, f.box[1] + y0, f.box[2], f.box[3]),
                    f.confidence,
                    (f.left_eye[0] + x0, f.left_eye[1] + y0),
                    (f.right_eye[0] + x0, f.right_eye[1] + y0),
                )
                for f in landmark_faces(region, min_size=max(12, int(0.5 * min(w, h))))
            ]
            faces = sorted((f for f in faces if _overlap(f.box, tuple(box)) > 0.2), key=lambda f: -_overlap(f.box, box))
        if not faces:
            return None
        return Eyes(faces[0].left_eye, faces[0].right_eye, faces[0].box, "mtcnn")
    return _haar_eyes(_grey(image), box)


def _haar_eyes(grey: np.ndarray, box: tuple[int, int, int, int] | None) -> Eyes | None:
    """Eyes by OpenCV's ``haarcascade_eye`` in the upper 60 % of the face box: the strongest detection in each
    half of the box."""
    import cv2

    if box is None:
        boxes = detect_faces(grey)
        if len(boxes) == 0:
            return None
        box = tuple(int(v) for v in boxes[0])
    x, y, w, h = (int(v) for v in box)
    top = grey[max(0, y) : y + int(0.6 * h), max(0, x) : x + w]
    if min(top.shape) < 12:
        return None
    scale = 120 / w if w > 120 else 1.0  # eyes of a large face need no more than ~25 px
    work = cv2.resize(top, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale != 1.0 else top
    found, counts = cascade("haarcascade_eye").detectMultiScale2(
        cv2.equalizeHist(work), scaleFactor=1.1, minNeighbors=3, minSize=(max(8, int(0.12 * w * scale)),) * 2
    )
    best: dict[int, tuple[float, tuple[float, float]]] = {}
    for (ex, ey, ew, eh), c in zip(np.reshape(found, (-1, 4)), np.ravel(counts)):
        cx, cy = (ex + ew / 2) / scale + max(0, x), (ey + eh / 2) / scale + max(0, y)
        side = 0 if cx < x + w / 2 else 1
        if side not in best or c > best[side][0]:
            best[side] = (float(c), (float(cx), float(cy)))
    if len(best) < 2:
        return None
    return Eyes(best[0][1], best[1][1], (x, y, w, h), "haar")


def eye_angle(left: tuple[float, float], right: tuple[float, float]) -> float:
    """The eye line's slope in degrees, clockwise positive as seen on screen (image y points down): 0 when level.

    Rotating the image by this angle with ``cv2.getRotationMatrix2D`` (counter-clockwise positive) levels it."""
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


def align_face(
    image: np.ndarray, left_eye: tuple[float, float], right_eye: tuple[float, float], size: int = 48
) -> tuple[np.ndarray, float]:
    """Rotate and scale ``image`` so that the eyes are level, :data:`EYE_DISTANCE` × ``size`` apart, their
    midpoint at (:data:`EYE_X`, :data:`EYE_Y`) × ``size``; crop ``size`` × ``size``.

    Args:
        image: ``uint8 (H, W)`` grey (RGB is converted). left_eye, right_eye: eye centres ``(x, y)`` in pixels
            of ``image`` (*left*: the image's left). size: the crop's side in pixels.

    Returns:
        ``(crop uint8 (size, size), angle)``: ``angle`` is the rotation applied in degrees, counter-clockwise as
        seen on screen (OpenCV's convention): a face turned θ° counter-clockwise comes back with about -θ.
        Pixels from beyond the image repeat its edge (``cv2.BORDER_REPLICATE``).

    Raises:
        ValueError: not a ``uint8`` grey or RGB image, the eyes closer than 2 pixels, or ``size`` < 8.
    """
    import cv2

    grey = _grey(image)
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    left, right = np.asarray(left_eye, np.float64), np.asarray(right_eye, np.float64)
    distance = float(np.hypot(*(right - left)))
    if distance < 2:
        raise ValueError(f"the eyes {tuple(left)} and {tuple(right)} are {distance:.1f} px apart; expected ≥ 2 px")
    angle = eye_angle(tuple(left), tuple(right))
    scale = EYE_DISTANCE * size / distance
    if scale < 0.5:  # shrink by area first: warpAffine's bilinear sampling would alias
        shrink = min(1.0, 2 * scale)
        grey = cv2.resize(grey, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        left, right, scale = left * shrink, right * shrink, scale / shrink
    centre = (left + right) / 2
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    matrix[:, 2] += np.array([EYE_X * size, EYE_Y * size]) - centre
    crop = cv2.warpAffine(grey, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, angle


def aligned_face(
    image: np.ndarray, box: tuple[int, int, int, int] | None = None, size: int = 48, source: EyeSource = "auto"
) -> AlignedFace | None:
    """:func:`find_eyes` then :func:`align_face`: the aligned ``size`` × ``size`` crop of the face in ``box``
    (default: the largest face), or None when its eyes are not found.

    Raises:
        ValueError, FaceDetectorError: as :func:`find_eyes` and :func:`align_face`.
    """
    eyes = find_eyes(image, box, source)
    if eyes is None:
        return None
    crop, angle = align_face(image, eyes.left, eyes.right, size)
    return AlignedFace(crop, angle, eyes)


__all__ = [
    "EYE_DISTANCE",
    "EYE_X",
    "EYE_Y",
    "AlignedFace",
    "Eyes",
    "align_face",
    "aligned_face",
    "eye_angle",
    "eye_source",
    "find_eyes",
]
