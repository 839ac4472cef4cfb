"""Find faces in grayscale images with the Haar cascades that ship in ``opencv-python-headless``.

One cascade (OpenCV's ``haarcascade_frontalface_default.xml``, Viola & Jones 2001) misses faces that are dim,
low in contrast, turned or tightly framed. :func:`detect_faces` raises recall with what the wheel already holds,
and keeps false positives low by asking several detectors to agree:

* three frontal cascades (``frontalface_default``, ``frontalface_alt``, ``frontalface_alt2``) and the profile
  cascade (``profileface``, which only finds faces turned to one side, so it also runs on the mirrored image);
* two contrast normalisations: global histogram equalisation and CLAHE (contrast-limited adaptive histogram
  equalisation, Zuiderveld 1994), which rescues faces lit from one side;
* a border added around the image (a tightly cropped face fills the whole picture, and a cascade window must
  contain the whole face) and small images enlarged, so faces of a few dozen pixels are seen at a scale the
  24×24 / 20×20 cascades were trained for;
* every candidate box from every pass is merged with non-maximum suppression (``cv2.dnn.NMSBoxes``); a merged
  face is kept when at least :data:`MIN_VOTES` passes found it, or one pass found it with many neighbouring
  windows (``detectMultiScale2``'s count, at least :data:`STRONG_NEIGHBOURS`).

``python -m benchmarks.face_detection`` measures recall and false positives of this detector and of the single
cascade on scikit-image's ``lfw_subset`` and ``astronaut``.
"""

from __future__ import annotations

import os
from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np

#: Frontal cascades (file stem, minNeighbors) and the profile cascade, all from ``cv2.data.haarcascades``.
FRONTAL_CASCADES: tuple[tuple[str, int], ...] = (
    ("haarcascade_frontalface_default", 4),
    ("haarcascade_frontalface_alt", 3),
    ("haarcascade_frontalface_alt2", 3),
)
PROFILE_CASCADE: tuple[str, int] = ("haarcascade_profileface", 4)
#: Passes (cascade × contrast normalisation × mirror) that must agree on a face…
MIN_VOTES = 2
#: …unless one pass alone found it with at least this many neighbouring windows.
STRONG_NEIGHBOURS = 12
_NMS_IOU = 0.3  # boxes overlapping more than this are one face
_SCALE_FACTOR = 1.1  # OpenCV's default step between window scales
_PAD = 0.12  # border added on each side, as a fraction of the longer side
_ENLARGE_BELOW = 160  # images whose shorter side is smaller are enlarged to this before detection
_SHRINK_ABOVE = 480  # …and those whose longer side is bigger are shrunk to this (faces ≥ 8 % stay ≥ 24 px)
_FIRST_PASSES = {("haarcascade_frontalface_default", 0), ("haarcascade_frontalface_alt2", 1)}


class FaceDetectorError(RuntimeError):
    """OpenCV's cascade files are missing (an OpenCV build without ``cv2.data``)."""


class DetectionPass(NamedTuple):
    """One pass of :func:`detect_faces`: a cascade (file stem and ``minNeighbors``) on one contrast normalisation
    of the image (``contrast`` 0: histogram equalised, 1: CLAHE; ``image`` ``uint8 (H, W)``), mirrored or not.
    ``run`` numbers the (cascade, mirror) runs; a candidate's pass id is ``2 * run + contrast``."""

    run: int
    cascade: str
    neighbours: int
    mirrored: bool
    contrast: int
    image: np.ndarray


@cache
def cascade(name: str):
    """The OpenCV cascade ``<name>.xml`` from ``cv2.data.haarcascades``, loaded once per process.

    Raises:
        FaceDetectorError: the file is missing or unreadable (install ``opencv-python-headless<5``).
    """
    import cv2

    path = os.path.join(cv2.data.haarcascades, f"{name}.xml")
    loaded = cv2.CascadeClassifier(path)
    if loaded.empty():
        raise FaceDetectorError(f"OpenCV's cascade {path} is missing: install opencv-python-headless<5")
    return loaded


@lru_cache(maxsize=1)
def _clahe():
    import cv2

    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))


def _as_grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        import cv2

        image = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected a grayscale uint8 image (H, W) (or RGB (H, W, 3)), got {image.dtype} {image.shape}")
    return image


def detect_faces(
    image: np.ndarray,
    min_size: int | None = None,
    profile: bool = True,
    max_size: int | None = None,
    border: bool = True,
) -> np.ndarray:
    """Every face found in ``image``, largest first.

    Args:
        image: ``uint8 (H, W)`` grey levels (an ``(H, W, 3)`` RGB image is converted).
        min_size: smallest face side in pixels of ``image`` (default: 8 % of the shorter side, at least 20).
        profile: also run the profile cascade (on the image and its mirror); False is about a third faster.
        max_size: largest face side in pixels of ``image`` (default: no limit). A narrow size range is much
            faster (e.g. searching near the face of the previous video frame).
        border: add a border first (a face filling the whole image needs it); False is faster where the image
            already has room around the face.

    Returns:
        ``int64 (K, 4)`` boxes ``(x, y, w, h)`` in pixels of ``image``, clipped to it; ``(0, 4)`` when none.

    Raises:
        ValueError: not a 2-D ``uint8`` (or RGB) image.
        FaceDetectorError: OpenCV's cascade files are missing.
    """
    import cv2

    grey = _as_grey(image)
    h0, w0 = grey.shape
    if min(h0, w0) < 8:
        return np.zeros((0, 4), np.int64)
    enlarge = max(1.0, _ENLARGE_BELOW / min(h0, w0))
    enlarge = min(enlarge, _SHRINK_ABOVE / max(h0, w0)) if enlarge == 1.0 else enlarge
    work = (
        grey
        if enlarge == 1.0
        else cv2.resize(
            grey, None, fx=enlarge, fy=enlarge, interpolation=(cv2.INTER_CUBIC if enlarge > 1 else cv2.INTER_AREA)
        )
    )
    pad = int(round(_PAD * max(work.shape))) if border else 0
    work = cv2.copyMakeBorder(work, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    smallest = int(round((min_size if min_size is not None else max(20, 0.08 * min(h0, w0))) * enlarge))
    largest = (0, 0) if max_size is None else (int(round(max_size * enlarge)),) * 2
    equalised, clahe = cv2.equalizeHist(work), _clahe().apply(work)
    runs = [(name, n, False) for name, n in FRONTAL_CASCADES]
    if profile:
        runs += [(PROFILE_CASCADE[0], PROFILE_CASCADE[1], False), (PROFILE_CASCADE[0], PROFILE_CASCADE[1], True)]
    passes = [
        DetectionPass(k, name, n, mirrored, v, version)
        for k, (name, n, mirrored) in enumerate(runs)
        for v, version in enumerate((equalised, clahe))
    ]
    # the two passes that find most faces run first; when they agree on a face, the rest are not needed
    is_first = [(p.cascade, p.contrast) in _FIRST_PASSES for p in passes]
    found = _run_passes([p for p, f in zip(passes, is_first) if f], smallest, largest)
    keep = _merge(*found) if found[0].size else []
    if not any(votes >= MIN_VOTES for _, votes in keep):
        later = _run_passes([p for p, f in zip(passes, is_first) if not f], smallest, largest)
        found = tuple(np.concatenate([a, b]) for a, b in zip(found, later))
        keep = _merge(*found) if found[0].size else []
    keep = [box for box, _ in keep]
    out = []
    for x, y, w, h in keep:
        x0, y0 = max(0.0, (x - pad) / enlarge), max(0.0, (y - pad) / enlarge)
        x1, y1 = min(float(w0), (x + w - pad) / enlarge), min(float(h0), (y + h - pad) / enlarge)
        if x1 - x0 >= 4 and y1 - y0 >= 4:
            out.append((int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0))))
    out.sort(key=lambda b: -b[2] * b[3])
    return np.array(out, np.int64).reshape(-1, 4)


def _run_passes(
    passes: list[DetectionPass], smallest: int, largest: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes float64 (K, 4), neighbour counts (K,), pass ids (K,))`` of every candidate of ``passes``."""
    boxes, scores, ids = [], [], []
    for p in passes:
        src = np.ascontiguousarray(p.image[:, ::-1]) if p.mirrored else p.image
        found, counts = cascade(p.cascade).detectMultiScale2(
            src, scaleFactor=_SCALE_FACTOR, minNeighbors=p.neighbours, minSize=(smallest, smallest), maxSize=largest
        )
        for (x, y, w, h), c in zip(np.reshape(found, (-1, 4)), np.ravel(counts)):
            boxes.append((src.shape[1] - x - w if p.mirrored else x, y, w, h))
            scores.append(float(c))
            ids.append(2 * p.run + p.contrast)
    return np.array(boxes, np.float64).reshape(-1, 4), np.array(scores), np.array(ids, np.int64)


def _merge(boxes: np.ndarray, scores: np.ndarray, passes: np.ndarray) -> list[tuple[tuple, int]]:
    """Non-maximum suppression over all passes: ``[(box, votes)]``. A kept box is the mean of its group
    (steadier than one pass's box), kept when enough distinct passes voted for it or one vote was strong."""
    import cv2

    order = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), 0.0, _NMS_IOU)
    kept = []
    for i in np.ravel(order):
        group = _iou(boxes[i], boxes) > _NMS_IOU
        votes = len(set(passes[group].tolist()))
        if votes >= MIN_VOTES or scores[i] >= STRONG_NEIGHBOURS:
            kept.append((tuple(boxes[group].mean(axis=0)), votes))
    return kept


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y1 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    return inter / (box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter)


def largest_face(
    image: np.ndarray, min_size: int | None = None, profile: bool = True
) -> tuple[int, int, int, int] | None:
    """The largest face of :func:`detect_faces` as ``(x, y, w, h)`` pixels, or None when there is none."""
    faces = detect_faces(image, min_size=min_size, profile=profile)
    return None if len(faces) == 0 else tuple(int(v) for v in faces[0])


def single_cascade_face(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """The kit's earlier detector, kept as the benchmark's baseline: ``haarcascade_frontalface_default`` alone on
    the histogram-equalised image (scale factor 1.1, 5 neighbours, faces ≥ 30 px or 8 % of the shorter side);
    the largest face as ``(x, y, w, h)``, or None."""
    import cv2

    grey = _as_grey(image)
    smallest = max(30, int(0.08 * min(grey.shape)))
    faces = cascade("haarcascade_frontalface_default").detectMultiScale(
        cv2.equalizeHist(grey), scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest)
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    return int(x), int(y), int(w), int(h)


__all__ = [
    "FaceDetectorError",
    "FRONTAL_CASCADES",
    "MIN_VOTES",
    "PROFILE_CASCADE",
    "STRONG_NEIGHBOURS",
    "cascade",
    "detect_faces",
    "largest_face",
    "single_cascade_face",
]
