"""Your own face photos for assignment 2: read, orient, find the face, crop to 48×48 grayscale.

Layout (what the capture widget writes): ``<root>/<train|test>/<emotion>/<n>.jpg``. A flat folder also works,
with the emotion in each file name (``happy.jpg``, ``2_sad.png``, ``test_surprise.jpg``); a ``test`` token in
the name puts a photo in the test split, otherwise it is a training photo.

Faces are found with the kit's Haar vote (:mod:`data_loaders.face_detection`: OpenCV's Haar cascades, Viola &
Jones 2001, which ship with ``opencv-python-headless`` < 5, run on equalised images and merged by vote), or with
MTCNN (Zhang et al. 2016, the ``mtcnn`` package) when asked: ``method="mtcnn"``, or ``"auto"`` for MTCNN where it
is installed, which :func:`load_personal` uses by default (:func:`photo_method`). In
``python -m benchmarks.face_detection`` MTCNN finds more small (24–40 px) and turned faces, the Haar vote more dim
and side-lit ones; :func:`find_face` on its own defaults to the Haar vote.
The largest face is kept, a margin is added, and a square crop is resized to 48×48 like FER2013's faces;
``align=True`` instead rotates and scales the face so that its eyes are level and placed as in FER2013
(:mod:`data_loaders.alignment`). Photos where no face is found are listed in the report with a hint, never dropped
silently (``on_bad_rows="raise"`` makes them an error instead).

Photos stay on your machine: ``data/`` is git-ignored, and :func:`delete_photos` removes them all.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .dataset import BadRow, ImageDataset, bad_rows_listing, check_on_bad_rows
from .emotions import EMOTIONS, emotion_code
from .face_detection import Method, largest_face, mtcnn_available
from .files import IMAGE_SUFFIXES, PHOTO_SPLITS
from .resolve import DataSource, resolve_source
from .settings import PERSONAL_PHOTOS_PATH, SYNTHETIC

_MAX_SIDE = 1024  # photos are shrunk to this before detection: faster, and the cascade needs no more
NO_FACE_HINT = (
    "no face found: face the camera in even, frontal light, fill about a third of the frame, "
    "and keep hair and hands off the face"
)


class PersonalPhotoError(ValueError):
    """The photo folder cannot be used (missing, empty, or no usable photo); the message says why."""


def personal_path(path: str | os.PathLike | None = None) -> Path:
    """The photo folder: ``path`` → ``$PERSONAL_PHOTOS_PATH`` → ``<data>/personal`` (:func:`resolve.repo_data_dir`).

    The folder need not exist yet (the capture widget creates it). ``synthetic`` as path or variable means the
    stand-in photos (:func:`data_loaders.synthetic.standin_photos`).
    """
    return resolve_source(path, SOURCE)


def _standin_photos() -> Path:
    from .synthetic.photos import standin_photos

    return standin_photos()


#: What the photo folder's resolution has of its own (:func:`data_loaders.resolve.resolve_source` does the rest):
#: the default folder is used even before it exists, and a configured one need not exist yet.
SOURCE = DataSource(
    PERSONAL_PHOTOS_PATH,
    "personal",
    "the personal photo folder",
    f"Set {PERSONAL_PHOTOS_PATH.name} to your photo folder, or to '{SYNTHETIC}'.",
    in_default_folder=lambda folder: folder,
    synthetic=_standin_photos,
    must_exist=False,
)


def grey_levels(image) -> np.ndarray:
    """An open ``PIL.Image`` as ``uint8 (H, W)`` grey levels 0-255, EXIF orientation applied: RGB, RGBA
    (composited on white), palette, 1-bit and 16-bit images (scaled from 0-65535 when any value exceeds 255).

    Raises:
        OSError, ValueError: the image data cannot be decoded (PIL's errors, e.g. a truncated file).
    """
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(image, dtype=np.float64)
        top = 65535.0 if grey.max() > 255 else 255.0
        return np.clip(np.rint(grey / top * 255), 0, 255).astype(np.uint8)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.uint8)


def read_grayscale(path: str | os.PathLike) -> np.ndarray:
    """Read any image as ``uint8 (H, W)`` grey levels 0-255, EXIF orientation applied.

    Handles RGB, RGBA (composited on white), palette, 1-bit and 16-bit images.

    Raises:
        PersonalPhotoError: a missing, empty, unreadable or non-image file (the message names it).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise PersonalPhotoError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise PersonalPhotoError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            return grey_levels(im)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PersonalPhotoError(f"{path}: not a readable image ({exc})") from None


def photo_method(method: Method | Literal["auto"] = "auto") -> Method:
    """The detector ``method="auto"`` means for photos: ``"mtcnn"`` when the ``mtcnn`` package is installed (more
    small and turned faces found: ``python -m benchmarks.face_detection``), else ``"haar"``.

    Raises:
        ValueError: ``method`` is not ``"auto"``, ``"haar"`` or ``"mtcnn"``.
    """
    if method not in ("auto", "haar", "mtcnn"):
        raise ValueError(f"method must be 'auto', 'haar' or 'mtcnn', got {method!r}")
    return ("mtcnn" if mtcnn_available() else "haar") if method == "auto" else method


def find_face(grey: np.ndarray, method: Method = "haar") -> tuple[int, int, int, int] | None:
    """The largest face in a ``uint8 (H, W)`` image as ``(x, y, w, h)`` pixels, or None.

    ``method="haar"`` (default): the kit's detector (:func:`data_loaders.face_detection.largest_face`: OpenCV's
    frontal and profile Haar cascades on equalised images, merged by vote); ``"mtcnn"``: MTCNN. Faces of at least
    30 px or 8 % of the shorter side.
    """
    return largest_face(grey, min_size=max(30, int(0.08 * min(grey.shape))), method=method)


def crop_face(
    grey: np.ndarray, box: tuple[int, int, int, int] | None, margin: float = 0.2, size: int = 48
) -> np.ndarray:
    """A square crop around ``box`` (grown by ``margin`` of its size on each side; the whole image when
    ``box`` is None), clamped to the image and resized to ``uint8 (size, size)``."""
    from PIL import Image

    h_img, w_img = grey.shape
    if box is None:
        x, y, w, h = 0, 0, w_img, h_img
    else:
        x, y, w, h = box
    side = int(round(max(w, h) * (1 + 2 * margin))) if box is not None else min(w_img, h_img)
    side = max(1, min(side, w_img, h_img))
    cx, cy = x + w / 2, y + h / 2
    left = int(round(min(max(cx - side / 2, 0), w_img - side)))
    top = int(round(min(max(cy - side / 2, 0), h_img - side)))
    crop = grey[top : top + side, left : left + side]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def _label_of(file: Path, root: Path) -> tuple[str, str]:
    """(split, emotion name) from the layout, or from tokens of a flat file name."""
    parts = file.relative_to(root).parts
    if len(parts) == 3 and parts[0].lower() in PHOTO_SPLITS:
        return parts[0].lower(), parts[1]
    tokens = [t for t in re.split(r"[^a-zA-Z]+", file.stem.lower()) if t]
    emotion = next((t for t in tokens if _is_emotion(t)), None)
    if emotion is None:
        if len(parts) == 3 and _is_emotion(parts[1]):  # the layout, but a split folder of another name
            raise PersonalPhotoError(
                f"{file}: the split folder {parts[0]!r} is neither train nor test "
                f"(expected <train|test>/<emotion>/<n>.jpg)"
            )
        raise PersonalPhotoError(
            f"{file}: no emotion in the path or file name (expected "
            f"<train|test>/<emotion>/<n>.jpg or a name like happy_1.jpg)"
        )
    split = "test" if "test" in tokens or (len(parts) > 1 and parts[0].lower() == "test") else "train"
    return split, emotion


def _is_emotion(token: str) -> bool:
    try:
        emotion_code(token)
        return True
    except KeyError:
        return False


def load_personal(
    path: str | os.PathLike | None = None,
    detect: bool = True,
    margin: float = 0.2,
    size: int = 48,
    *,
    on_bad_rows: Literal["raise", "skip"] = "skip",
    method: Method | Literal["auto"] = "auto",
    align: bool = False,
) -> ImageDataset:
    """Read a folder of face photos, crop each face to ``size`` × ``size`` grayscale.

    Args:
        path: the folder (default: ``$PERSONAL_PHOTOS_PATH``, then ``<repo>/data/personal``).
        detect: find the face with the kit's detector; False takes each image as an existing face crop.
        margin: extra border around a detected face, as a fraction of its size.
        size: output side in pixels (48 for FER2013 models).
        method: the face detector: ``"auto"`` (default: MTCNN where installed, :func:`photo_method`; on photos
            it finds more faces: 87 % against 79 % for the Haar vote over the conditions of
            ``python -m benchmarks.face_detection``, and no box on 15 photos without a face, where the vote put 2),
            ``"mtcnn"`` or ``"haar"`` (the kit's Haar vote; better on dim or side-lit tight crops).
        align: rotate and scale each face so that its eyes are level and placed as in FER2013
            (:mod:`data_loaders.alignment`); ``report.attrs["angle"]`` holds each photo's correction in degrees.
        on_bad_rows: what to do with a photo that cannot be used (a bad row): a file that is not an image, is
            empty or unreadable, has no emotion in its path or name, or (with ``detect``) where no face is found.
            ``"skip"`` (the default here, unlike the other loaders: a student's own photos are expected to
            include a few misses, and the notebook shows the report) leaves them out, lists them in
            ``dataset.bad_rows`` and the report, and warns naming them; ``"raise"`` stops with a
            :class:`PersonalPhotoError` naming every such file and its problem.

    Returns:
        An :class:`~data_loaders.dataset.ImageDataset` of the usable photos (``images uint8 (N, size, size)``,
        ``labels`` FER2013 codes, ``usage`` ``"train"``/``"test"``, so ``subset("train")`` works) with its
        ``report`` attached: a pandas DataFrame with one row per file, ``file, split, emotion, face_found,
        box (x, y, w, h), width, height, used, problem``. Photos with no face or unreadable files are in the
        report (``used`` False, ``problem`` says why and what to try) and in ``dataset.bad_rows``, and a warning
        names them.

    Raises:
        PersonalPhotoError: the folder is missing or holds no usable photo, or a photo cannot be used with
            ``on_bad_rows="raise"``.
        ValueError: ``on_bad_rows`` is not ``"raise"`` or ``"skip"``, or ``method`` is unknown.
        FaceDetectorError: ``method="mtcnn"`` without the ``mtcnn`` package.
    """
    check_on_bad_rows(on_bad_rows)
    method = photo_method(method)
    angles: list[float] = []
    root = personal_path(path)
    if not root.is_dir():
        raise PersonalPhotoError(
            f"no photo folder at {root}: take photos with the capture widget, or put them in "
            "<folder>/<train|test>/<emotion>/<n>.jpg"
        )
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    rows, images, labels, usage, bad = [], [], [], [], []
    for file in files:
        row = {
            "file": str(file.relative_to(root)),
            "split": None,
            "emotion": None,
            "face_found": False,
            "box": None,
            "width": None,
            "height": None,
            "used": False,
            "problem": "",
        }
        try:
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                raise PersonalPhotoError(f"{file}: not an image file (expected {', '.join(sorted(IMAGE_SUFFIXES))})")
            split, emotion = _label_of(file, root)
            code = emotion_code(emotion)
            row.update(split=split, emotion=EMOTIONS[code])
            grey = read_grayscale(file)
            row.update(height=grey.shape[0], width=grey.shape[1])
            scale = min(1.0, _MAX_SIDE / max(grey.shape))
            small = grey if scale == 1.0 else _shrink(grey, scale)
            box = None
            if detect:
                found = find_face(small, method)
                if found is None:
                    raise PersonalPhotoError(f"{file}: {NO_FACE_HINT}")
                box = tuple(int(round(v / scale)) for v in found)
                row.update(face_found=True, box=box)
            aligned = _aligned(grey, box, size) if detect and align else None
            images.append(aligned.crop if aligned is not None else crop_face(grey, box, margin, size))
            angles.append(aligned.angle if aligned is not None else float("nan"))
            labels.append(code)
            usage.append(split)
            row["used"] = True
        except (PersonalPhotoError, KeyError) as exc:
            row["problem"] = str(exc.args[0] if isinstance(exc, KeyError) else exc).replace(f"{file}: ", "")
            bad.append(BadRow(str(file), row["problem"]))
        rows.append(row)
    report = pd.DataFrame(
        rows, columns=["file", "split", "emotion", "face_found", "box", "width", "height", "used", "problem"]
    )
    report.attrs.update(method=method if detect else None, align=bool(detect and align), angle=angles)
    if bad and on_bad_rows == "raise":
        raise PersonalPhotoError(
            f"{root}: {len(bad)} of {len(files)} photos cannot be used:\n{bad_rows_listing(bad)}\n"
            "Retake or remove them, or pass on_bad_rows='skip' to leave them out (they are then listed in "
            "dataset.bad_rows and the report)."
        )
    if bad:
        warnings.warn(
            f"{len(bad)} of {len(files)} photos not used: "
            + "; ".join(f"{Path(b.where).name} ({b.reason})" for b in bad[:5])
            + (" …" if len(bad) > 5 else "")
            + ". See the report.",
            stacklevel=2,
        )
    if not images:
        raise PersonalPhotoError(
            f"{root}: no usable photo among {len(files)} files" + (f" (first problem: {bad[0]})" if bad else "")
        )
    dataset = ImageDataset(
        np.stack(images),
        np.array(labels, np.int64),
        np.array(usage, str),
        EMOTIONS,
        str(root),
        f"personal photos in {root}: {len(images)} faces "
        f"({usage.count('train')} train, {usage.count('test')} test)"
        + (f", {len(bad)} photos not used" if bad else ""),
        tuple(bad),
        report,
    )
    return dataset


def _aligned(grey: np.ndarray, box: tuple[int, int, int, int], size: int):
    """The eye-aligned crop of the face in ``box`` (:func:`data_loaders.alignment.aligned_face`), or None."""
    from .alignment import AlignedFace, align_face, aligned_face

    scale = min(1.0, _MAX_SIDE / max(grey.shape))  # landmarks on a photo shrunk like the detector's
    if scale == 1.0:
        return aligned_face(grey, box, size)
    small = _shrink(grey, scale)
    found = aligned_face(small, tuple(int(round(v * scale)) for v in box), size)
    if found is None:
        return None
    eyes = found.eyes
    crop, angle = align_face(grey, tuple(v / scale for v in eyes.left), tuple(v / scale for v in eyes.right), size)
    return AlignedFace(crop, angle, eyes)


def _shrink(grey: np.ndarray, scale: float) -> np.ndarray:
    """``grey`` scaled by ``scale`` (area averaging), ``uint8``."""
    from PIL import Image

    h, w = grey.shape
    return np.asarray(
        Image.fromarray(grey).resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.BOX),
        dtype=np.uint8,
    )


def delete_photos(path: str | os.PathLike | None = None) -> int:
    """Delete every photo under the folder (default ``data/personal``); return how many files were removed."""
    root = personal_path(path)
    if not root.exists():
        return 0
    count = sum(1 for p in root.rglob("*") if p.is_file())
    shutil.rmtree(root)
    return count


def astronaut_photo(folder: str | os.PathLike | None = None) -> Path:
    """A real face photo to exercise the face detector: scikit-image's ``astronaut`` (Eileen Collins, NASA,
    public domain), written as ``<folder>/astronaut.png`` (default: the cache folder) and returned."""
    from PIL import Image
    from skimage import data

    from . import cache

    root = Path(folder) if folder is not None else cache.cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    target = root / "astronaut.png"
    if not target.is_file():
        Image.fromarray(data.astronaut()).save(target)
    return target
