"""DISFA-style folders (Mavadati et al. 2013, "DISFA: A Spontaneous Facial Action Intensity Database", IEEE
Trans. Affective Computing 4(2)).

``<subject>/<subject>_au<N>.txt`` with one line ``frame,intensity`` (intensity 0-5) per frame and AU — DISFA's
``ActionUnit_Labels`` layout — plus the face crops of the frames in ``<subject>/frames/<frame>.png|jpg|bmp`` (any
zero padding). Every subject needs the same AU files. Presence is intensity ≥ 1 (A or more; many DISFA papers use
≥ 2 instead). DISFA has no valence/arousal (NaN) and no emotion labels (-1).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..dataset import BadRow
from ..files import IMAGE_SUFFIXES
from .dataset import ActionUnitFormatError
from .facts import MAX_INTENSITY, au_name
from .frames import FaceFrame, FramesPart, frames_part, merge_parts, raise_if_bad, read_face

#: A DISFA label file name, ``<subject>_au<N>.txt`` (any case).
DISFA_FILE = re.compile(r"^(?P<subject>.+)_au(?P<au>\d+)\.txt$", re.IGNORECASE)


def is_disfa_label_file(path: Path) -> bool:
    """Whether ``path`` is a DISFA label file in its subject's folder (``SN001/SN001_au12.txt``)."""
    match = DISFA_FILE.match(path.name)
    return match is not None and path.parent.name == match["subject"]


def read_disfa(root: Path, label_files: list[Path], on_bad: str) -> FramesPart:
    """The usable frames of a DISFA-style folder (all subjects, in sorted order), as one
    :class:`~data_loaders.action_units.frames.FramesPart`.

    Raises:
        ActionUnitFormatError: subjects with different AU files, a subject without ``frames/``, an unreadable
            label file, or bad lines/frames with ``on_bad="raise"`` (each named ``<subject>/<file>:<line>`` or
            ``<subject> frame <n>``).
    """
    by_subject: dict[str, dict[str, Path]] = {}
    for p in label_files:
        m = DISFA_FILE.match(p.name)
        by_subject.setdefault(m["subject"], {})[au_name(m["au"])] = p
    au_sets = {s: tuple(sorted(aus, key=lambda a: int(a[2:]))) for s, aus in by_subject.items()}
    names = next(iter(au_sets.values()))
    odd = {s: a for s, a in au_sets.items() if a != names}
    if odd:
        raise ActionUnitFormatError(
            f"{root}: every subject needs the same AU files; {next(iter(au_sets))} has "
            f"{', '.join(names)} but " + "; ".join(f"{s} has {', '.join(a)}" for s, a in odd.items())
        )
    parts, all_bad = [], []
    for subject in sorted(by_subject):
        labels: dict[str, dict[int, int]] = {}
        bad: list[BadRow] = []
        for au in names:
            labels[au] = _disfa_file(by_subject[subject][au], bad)
        frames = sorted(set().union(*[set(v) for v in labels.values()]))
        folder = by_subject[subject][names[0]].parent / "frames"
        if not folder.is_dir():
            raise ActionUnitFormatError(
                f"{folder}: missing; DISFA-style data needs the face crops of the "
                f"labelled frames as {subject}/frames/<frame>.png|jpg|bmp"
            )
        images = {}
        for p in folder.iterdir():
            if p.suffix.lower() in IMAGE_SUFFIXES and p.stem.isdigit():
                images[int(p.stem)] = p
        keep: list[FaceFrame] = []
        for f in frames:
            lacking = [au for au in names if f not in labels[au]]
            if lacking:
                bad.append(BadRow(f"{subject} frame {f}", f"no label for {', '.join(lacking)}"))
                continue
            if f not in images:
                bad.append(BadRow(f"{subject} frame {f}", f"no face image {subject}/frames/{f}.png|jpg|bmp"))
                continue
            pixels, problem = read_face(images[f])
            if problem:
                bad.append(BadRow(f"{subject} frame {f}", problem))
                continue
            intensity = [float(labels[au][f]) for au in names]
            keep.append(
                FaceFrame(
                    image=pixels,
                    intensity=intensity,
                    presence=[v >= 1 for v in intensity],
                    frame=f,
                    valence=np.nan,
                    arousal=np.nan,
                    label=-1,
                    usage="",
                )
            )
        all_bad += bad
        parts.append(frames_part(keep, list(names), subject, str(root), bad))
    raise_if_bad(root, all_bad, on_bad)
    return merge_parts(parts, list(names))


def _disfa_file(path: Path, bad: list[BadRow]) -> dict[int, int]:
    """``{frame: intensity}`` of one label file; bad lines are appended to ``bad``."""
    out: dict[int, int] = {}
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ActionUnitFormatError(f"{path}: unreadable ({err})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path.parent.name}/{path.name}:{n}"
        parts = [t.strip() for t in line.split(",")]
        if len(parts) != 2 or not all(t.lstrip("-").isdigit() for t in parts):
            bad.append(BadRow(where, f"expected 'frame,intensity' (two whole numbers), got {line.strip()!r}"))
            continue
        frame_no, value = int(parts[0]), int(parts[1])
        if frame_no < 0 or not 0 <= value <= MAX_INTENSITY:
            bad.append(BadRow(where, f"frame {frame_no} intensity {value}: expected frame ≥ 0 and intensity 0-5"))
        elif frame_no in out:
            bad.append(BadRow(where, f"frame {frame_no} labelled twice"))
        else:
            out[frame_no] = value
    return out
