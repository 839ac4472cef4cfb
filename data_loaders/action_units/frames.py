"""What the OpenFace and DISFA readers share: the named record of one labelled face, reading its crop, the
per-subject part of frames a reader returns, and how parts become one dataset, split by subject.

Real data without a ``Usage`` column is split **by subject** (Training / PublicTest / PrivateTest, the last
subjects in sorted order held out, about 10 % each), so no person is in two splits; with fewer than 3 subjects the
frames are split in order instead (80 / 10 / 10 %; identity then leaks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np

from ..dataset import BadRow, bad_rows_listing
from ..files import IMAGE_SUFFIXES
from .dataset import IMAGE_SIZE, ActionUnitDataset, ActionUnitFormatError


class FaceFrame(NamedTuple):
    """One usable labelled face as a reader found it.

    ``image`` ``uint8 (48, 48)``; ``intensity`` and ``presence`` one value per AU, in the reader's AU order
    (0-5 and bool); ``frame`` the frame number in the source; ``valence``, ``arousal`` in [-1, 1] or NaN;
    ``label`` a FER2013 code or -1; ``usage`` ``Training``/``PublicTest``/``PrivateTest`` or ``""`` (none given).
    """

    image: np.ndarray
    intensity: list[float]
    presence: list[bool]
    frame: int
    valence: float = np.nan
    arousal: float = np.nan
    label: int = -1
    usage: str = ""


@dataclass(frozen=True)
class FramesPart:
    """The frames a reader kept from one subject (or several, merged), as arrays, with what it left out.

    ``names`` the AU names (columns of ``intensity``/``presence``); ``source`` the file or folder read; ``bad``
    the items left out; then one array per :class:`FaceFrame` field plus ``subjects``, rows aligned:
    ``images uint8 (n, 48, 48)``, ``intensity float32 (n, K)``, ``presence bool (n, K)``, ``frames int64``,
    ``valence``/``arousal float32``, ``labels int64``, ``usage str``, ``subjects str``.
    """

    names: list[str]
    source: str
    bad: list[BadRow]
    images: np.ndarray
    intensity: np.ndarray
    presence: np.ndarray
    frames: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    subjects: np.ndarray

    ARRAYS: ClassVar[tuple[str, ...]] = (
        "images",
        "intensity",
        "presence",
        "frames",
        "valence",
        "arousal",
        "labels",
        "usage",
        "subjects",
    )


def frames_part(keep: list[FaceFrame], names: list[str], subject: str, source: str, bad: list[BadRow]) -> FramesPart:
    """The :class:`FramesPart` of one subject's kept frames (``names``: the AU order of their intensities)."""
    n, k = len(keep), len(names)
    return FramesPart(
        names=names,
        source=source,
        bad=list(bad),
        images=np.stack([f.image for f in keep]) if keep else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
        intensity=np.array([f.intensity for f in keep], np.float32).reshape(n, k),
        presence=np.array([f.presence for f in keep], bool).reshape(n, k),
        frames=np.array([f.frame for f in keep], np.int64),
        valence=np.array([f.valence for f in keep], np.float32),
        arousal=np.array([f.arousal for f in keep], np.float32),
        labels=np.array([f.label for f in keep], np.int64),
        usage=np.array([f.usage for f in keep], dtype=object).astype(str) if keep else np.zeros(0, str),
        subjects=np.full(n, subject),
    )


def merge_parts(parts: list[FramesPart], names: list[str]) -> FramesPart:
    """One part holding every part's rows in order (``source``: the first part's; ``bad``: all of them)."""
    arrays = {key: np.concatenate([getattr(p, key) for p in parts]) for key in FramesPart.ARRAYS}
    return FramesPart(names=names, source=parts[0].source, bad=[b for p in parts for b in p.bad], **arrays)


def find_image(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` with the first image suffix that exists (suffixes in sorted order), or None."""
    for suffix in sorted(IMAGE_SUFFIXES):  # a fixed order: a frozenset's order changes between runs
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def read_face(path: Path) -> tuple[np.ndarray | None, str | None]:
    """A face crop as ``uint8 (48, 48)`` grey (any mode and size, bilinear resize) and None, or None and a problem
    naming the file (``"x.bmp: not a readable image (…)"``)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            grey = img.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
            return np.asarray(grey, np.uint8), None
    except (OSError, UnidentifiedImageError) as err:
        return None, f"{path.name}: not a readable image ({err})"


def raise_if_bad(where: Path, bad: list[BadRow], on_bad: str, always_ok: tuple[str, ...] = ()) -> None:
    """Stop on the bad items of ``where`` when ``on_bad`` is ``"raise"``; items whose reason starts with one of
    ``always_ok`` are left out and listed even then (OpenFace's ``success = 0``).

    Raises:
        ActionUnitFormatError: with ``on_bad="raise"``, naming the count and listing the first items
            (:func:`data_loaders.dataset.bad_rows_listing`).
    """
    errors = [b for b in bad if not any(b.reason.startswith(ok) for ok in always_ok)]
    if errors and on_bad == "raise":
        raise ActionUnitFormatError(
            f"{where}: {len(errors)} bad rows (on_bad_rows='skip' leaves them out):\n{bad_rows_listing(errors)}"
        )


def combine(parts: list[FramesPart], source: Path) -> ActionUnitDataset:
    """One :class:`ActionUnitDataset` from the readers' parts, split by subject (see the module docstring) unless
    every row has its own ``Usage``.

    Raises:
        ActionUnitFormatError: the parts have different AU columns, or no frame at all is usable.
    """
    names = parts[0].names
    odd = [p.source for p in parts if p.names != names]
    if odd:
        raise ActionUnitFormatError(
            f"{source}: every csv needs the same AU columns; {parts[0].source} has "
            f"{', '.join(names)} but {', '.join(odd)} differ"
        )
    data = merge_parts(parts, names)
    if not len(data.images):
        raise ActionUnitFormatError(
            f"{source}: no usable frames ({len(data.bad)} left out; first: {data.bad[0] if data.bad else 'none'})"
        )
    usage = split_by_subject(data.usage, data.subjects)
    n_subjects = len(set(data.subjects.tolist()))
    description = (
        f"{len(usage):,} faces of {n_subjects} subject(s) × {len(names)} AUs ({', '.join(names)}) "
        f"from {source}" + (f"; {len(data.bad)} rows/frames left out" if data.bad else "")
    )
    return ActionUnitDataset(
        data.images,
        data.intensity,
        data.presence,
        data.valence,
        data.arousal,
        data.labels,
        usage,
        data.subjects.astype(str),
        data.frames,
        tuple(names),
        str(source),
        description,
        bad_rows=tuple(data.bad),
    )


def split_by_subject(given: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """``Usage`` per row, ``str (N,)``: ``given`` where every row has one, else a split by subject (see the
    module docstring)."""
    if len(given) and all(given):
        return given.astype(str)
    people = sorted(set(subjects.tolist()))
    if len(people) >= 3:
        n_test = max(1, round(0.1 * len(people)))
        public, private = set(people[-2 * n_test : -n_test]), set(people[-n_test:])
        return np.array(
            ["PublicTest" if s in public else "PrivateTest" if s in private else "Training" for s in subjects]
        )
    n = len(subjects)
    cut1, cut2 = int(round(0.8 * n)), int(round(0.9 * n))
    return np.array(["Training"] * cut1 + ["PublicTest"] * (cut2 - cut1) + ["PrivateTest"] * (n - cut2))
