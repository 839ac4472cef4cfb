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

``detect_faces(image, method="mtcnn")`` uses MTCNN instead (Zhang et al. 2016, multi-task cascaded CNNs, from the
``mtcnn`` package: MIT licence, TensorFlow, its weights inside the wheel; nothing is downloaded). It finds more
faces (turned, tilted, small) and gives five landmarks per face (:func:`landmark_faces`: eyes, nose, mouth
corners), at about 0.1-0.2 s per photo on 2 cores and a few seconds to import TensorFlow the first time: the photo
path (:func:`data_loaders.personal.load_personal`) uses it when it is installed, video keeps the Haar vote (speed
first) with tracking, and :func:`screen_faces` is the quick whole-frame search video uses while no face is tracked.

``python -m benchmarks.face_detection`` measures recall, false positives and time of the single cascade, this
detector and MTCNN on scikit-image's ``lfw_subset`` (in frames, rotated, small) and ``astronaut``.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache, lru_cache
from typing import Literal, NamedTuple

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


#: The detectors :func:`detect_faces` knows: the Haar vote of this module, and MTCNN (the ``mtcnn`` package).
METHODS = ("haar", "mtcnn")
Method = Literal["haar", "mtcnn"]
#: MTCNN faces below this confidence (its output network's face probability) are dropped; the package's own
#: threshold is 0.8. 0.9 keeps every lfw_subset face the benchmark finds and drops its few non-face hits.
MTCNN_MIN_CONFIDENCE = 0.9
_MTCNN_FACE = 20  # the smallest face side MTCNN looks for (its default ``min_face_size``), pixels
_MTCNN_MAX_SIDE = 1024  # larger images are shrunk first (time grows with the area)


class FaceDetectorError(RuntimeError):
    """A detector cannot run: OpenCV's cascade files are missing (an OpenCV build without ``cv2.data``), or
    ``method="mtcnn"`` without the ``mtcnn`` package (and ``lz4``, which reads its weights)."""


class Face(NamedTuple):
    """One face of :func:`landmark_faces`: ``box`` ``(x, y, w, h)`` in pixels (ints), ``confidence`` in [0, 1],
    and the eye centres ``left_eye``, ``right_eye`` as ``(x, y)`` pixels (floats), *left* meaning the image's
    left (the person's right eye on a frontal face)."""

    box: tuple[int, int, int, int]
    confidence: float
    left_eye: tuple[float, float]
    right_eye: tuple[float, float]


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
    method: Method = "haar",
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
        method: ``"haar"`` (this module's vote of Haar cascades, the default: fast, no TensorFlow) or ``"mtcnn"``
            (:func:`landmark_faces`: higher recall on turned, tilted and small faces, slower; ``profile`` and
            ``border`` do not apply). ``python -m benchmarks.face_detection`` compares them.

    Returns:
        ``int64 (K, 4)`` boxes ``(x, y, w, h)`` in pixels of ``image``, clipped to it; ``(0, 4)`` when none.

    Raises:
        ValueError: not a 2-D ``uint8`` (or RGB) image, or an unknown ``method``.
        FaceDetectorError: OpenCV's cascade files are missing, or ``method="mtcnn"`` without ``mtcnn``.
    """
    import cv2

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "mtcnn":
        faces = landmark_faces(image, min_size=min_size, max_size=max_size)
        return np.array([f.box for f in faces], np.int64).reshape(-1, 4)
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
    image: np.ndarray, min_size: int | None = None, profile: bool = True, method: Method = "haar"
) -> tuple[int, int, int, int] | None:
    """The largest face of :func:`detect_faces` as ``(x, y, w, h)`` pixels, or None when there is none."""
    faces = detect_faces(image, min_size=min_size, profile=profile, method=method)
    return None if len(faces) == 0 else tuple(int(v) for v in faces[0])


def faces_near(grey: np.ndarray, box: tuple[int, int, int, int], work_width: int = 80) -> np.ndarray:
    """Faces of :func:`detect_faces` near ``box`` (grown by half its size on each side, face sides 0.7-1.5× its
    width; frontal cascades only, no border): how a video follows a face from frame to frame, and how
    :func:`screen_faces` confirms a candidate.

    The region is shrunk so that ``box`` is about ``work_width`` pixels wide (plenty for 24-pixel cascades), which
    makes the search a few milliseconds.

    Args:
        grey: ``uint8 (H, W)`` image. box: ``(x, y, w, h)`` pixels of ``grey``.

    Returns:
        ``int64 (K, 4)`` boxes ``(x, y, w, h)`` in pixels of ``grey``, largest first; ``(0, 4)`` when none.
    """
    import cv2

    grey = _as_grey(grey)
    x, y, w, h = (int(v) for v in box)
    x0, y0 = max(0, int(x - w / 2)), max(0, int(y - h / 2))
    x1, y1 = min(grey.shape[1], int(x + 1.5 * w)), min(grey.shape[0], int(y + 1.5 * h))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return np.zeros((0, 4), np.int64)
    region = grey[y0:y1, x0:x1]
    scale = min(1.0, work_width / max(w, 1))
    if scale < 1.0:
        region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    boxes = detect_faces(
        region, min_size=max(20, int(0.7 * w * scale)), max_size=int(1.5 * w * scale) + 1, profile=False, border=False
    )
    if len(boxes) == 0:
        return boxes
    return np.rint(boxes / scale).astype(np.int64) + np.array([x0, y0, 0, 0])


#: :func:`screen_faces` keeps at most this many candidates (most neighbouring windows first) to confirm.
SCREEN_CANDIDATES = 6
_SCREEN_WINDOW = 24  # haarcascade_frontalface_default's window side, pixels


def screen_faces(grey: np.ndarray, min_size: int, max_candidates: int = SCREEN_CANDIDATES) -> np.ndarray:
    """A quick search of a whole (video) frame: one cascade on a shrunk copy proposes, :func:`faces_near` confirms.

    OpenCV's ``haarcascade_frontalface_default`` runs once, with few neighbours required (2) and a coarse scale
    step (1.2), on the histogram-equalised frame shrunk so that a face of ``min_size`` pixels is 24 pixels (the
    cascade's window). Each of the ``max_candidates`` strongest candidates is then checked by the full vote
    (:func:`detect_faces`) on its neighbourhood only. A frame with no face costs one cascade pass on a small
    image instead of six on a large one (``python -m benchmarks.video_analysis`` measures it); faces turned to
    profile are not proposed (use :func:`detect_faces` with ``profile=True`` for them).

    Args:
        grey: ``uint8 (H, W)`` frame (RGB is converted). min_size: smallest face side, pixels of ``grey``.
        max_candidates: how many candidates are confirmed at most.

    Returns:
        ``int64 (K, 4)`` boxes ``(x, y, w, h)`` in pixels of ``grey``, largest first; ``(0, 4)`` when none.

    Raises:
        ValueError: not a 2-D ``uint8`` (or RGB) image. FaceDetectorError: OpenCV's cascade files are missing.
    """
    import cv2

    grey = _as_grey(grey)
    scale = min(1.0, _SCREEN_WINDOW / max(int(min_size), 1))
    small = grey if scale == 1.0 else cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found, counts = cascade("haarcascade_frontalface_default").detectMultiScale2(
        cv2.equalizeHist(small), scaleFactor=1.2, minNeighbors=2, minSize=(_SCREEN_WINDOW, _SCREEN_WINDOW)
    )
    found, counts = np.reshape(found, (-1, 4)), np.ravel(counts)
    kept: list[np.ndarray] = []
    for i in np.argsort(-counts, kind="stable")[:max_candidates]:
        candidate = np.rint(found[i] / scale).astype(np.int64)
        if any(_iou(candidate.astype(np.float64), k[None].astype(np.float64))[0] > _NMS_IOU for k in kept):
            continue  # already confirmed as a face
        for box in faces_near(grey, tuple(candidate)):
            if not any(_iou(box.astype(np.float64), k[None].astype(np.float64))[0] > _NMS_IOU for k in kept):
                kept.append(box)
    kept.sort(key=lambda b: -int(b[2]) * int(b[3]))
    return np.array(kept, np.int64).reshape(-1, 4)


def mtcnn_available() -> bool:
    """Whether ``method="mtcnn"`` can run: the ``mtcnn`` package and ``lz4`` (which reads its weights) are
    installed. Nothing is imported (TensorFlow takes seconds)."""
    return all(importlib.util.find_spec(name) is not None for name in ("mtcnn", "lz4"))


@cache
def mtcnn_detector():
    """The MTCNN detector of the ``mtcnn`` package (PNet, RNet, ONet with landmarks), built once per process.

    Its weights are read from the files inside the installed package, named by their full path (the package
    would otherwise look in the working folder first); nothing is downloaded. Imports TensorFlow (seconds).

    Raises:
        FaceDetectorError: ``mtcnn`` or ``lz4`` is not installed.
    """
    if not mtcnn_available():
        raise FaceDetectorError(
            "method='mtcnn' needs the mtcnn package and lz4: pip install 'mtcnn>=1.0' lz4 (or use method='haar')"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from importlib.resources import files

    from mtcnn import MTCNN
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    weights = files("mtcnn.assets.weights")
    return MTCNN(
        stages=[
            StagePNet(weights=str(weights / "pnet.lz4")),
            StageRNet(weights=str(weights / "rnet.lz4")),
            StageONet(weights=str(weights / "onet.lz4")),
        ]
    )


def landmark_faces(
    image: np.ndarray,
    min_size: int | None = None,
    max_size: int | None = None,
    min_confidence: float = MTCNN_MIN_CONFIDENCE,
) -> list[Face]:
    """Faces and their eye centres by MTCNN (Zhang et al. 2016; the ``mtcnn`` package), largest first.

    MTCNN looks for faces of 20 pixels and more (the package's own ``min_face_size`` above 20 can find nothing at
    all: its image pyramid then ends below the 12-pixel input of its first network), so an image is enlarged when
    ``min_size`` is below 20, faces smaller than ``min_size`` are dropped, and images are shrunk to at most 1024
    pixels on their longer side. Grey images are given to MTCNN as three equal channels.

    Args:
        image: ``uint8 (H, W)`` grey or ``(H, W, 3)`` RGB.
        min_size: smallest face side in pixels of ``image`` (default 20). max_size: largest (default: no limit).
        min_confidence: faces MTCNN is less sure of are dropped.

    Returns:
        A list of :class:`Face` (box, confidence, eye centres), coordinates in pixels of ``image``.

    Raises:
        ValueError: not a 2-D ``uint8`` image or an RGB ``uint8`` image.
        FaceDetectorError: ``mtcnn`` or ``lz4`` is not installed.
    """
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"expected a grayscale uint8 image (H, W) (or RGB (H, W, 3)), got {image.dtype} {image.shape}")
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else np.ascontiguousarray(image[..., :3])
    h, w = rgb.shape[:2]
    smallest = min_size if min_size is not None else _MTCNN_FACE
    scale = min(max(1.0, _MTCNN_FACE / max(1, smallest)), _MTCNN_MAX_SIDE / max(h, w))
    if min(h, w) * scale < 2 * _MTCNN_FACE:
        return []
    if scale != 1.0:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    found = mtcnn_detector().detect_faces(rgb, box_format="xywh")
    faces = []
    for f in found:
        if float(f["confidence"]) < min_confidence:
            continue
        x, y, bw, bh = (float(v) / scale for v in f["box"])
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(w), x + bw), min(float(h), y + bh)
        box = (int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)))
        if max(box[2], box[3]) < smallest or (max_size is not None and max(box[2], box[3]) > max_size):
            continue
        eyes = [tuple(float(v) / scale for v in f["keypoints"][k]) for k in ("left_eye", "right_eye")]
        faces.append(Face(box, float(f["confidence"]), eyes[0], eyes[1]))
    faces.sort(key=lambda f: -f.box[2] * f.box[3])
    return faces


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
    "FRONTAL_CASCADES",
    "METHODS",
    "MIN_VOTES",
    "MTCNN_MIN_CONFIDENCE",
    "PROFILE_CASCADE",
    "SCREEN_CANDIDATES",
    "STRONG_NEIGHBOURS",
    "Face",
    "FaceDetectorError",
    "Method",
    "cascade",
    "detect_faces",
    "faces_near",
    "landmark_faces",
    "largest_face",
    "mtcnn_available",
    "mtcnn_detector",
    "screen_faces",
    "single_cascade_face",
]
