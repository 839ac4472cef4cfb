"""OpenFace 2.0 output (Baltrušaitis et al. 2018, "OpenFace 2.0: Facial Behavior Analysis Toolkit", FG 2018;
``FeatureExtraction -aus -simalign``).

A csv with ``frame``, ``face_id``, ``timestamp``, ``confidence``, ``success`` and per AU ``AU01_r`` (intensity
0-5) and ``AU01_c`` (presence 0/1) columns — the file py-feat's ``read_openface`` reads; header names may carry a
leading space (``" AU01_r"``). Face images are OpenFace's aligned crops beside it,
``<name>_aligned/frame_det_<face_id:02d>_<frame:06d>.bmp`` (``.png``/``.jpg`` too). Rows with ``success = 0``
(no face tracked) are left out and listed in ``bad_rows``. Optional extra columns ``valence``, ``arousal``
([-1, 1]), ``emotion`` (FER2013 code or name) and ``Usage`` are used when present. Without ``AU01_c``, presence
is intensity ≥ 0.5. One file is one subject (named by the file). A frame number (with its ``face_id``) given twice,
or one that is not a whole number, is a bad row.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..dataset import BadRow
from ..emotions import emotion_code
from .dataset import ActionUnitFormatError
from .facts import MAX_INTENSITY, au_name
from .frames import FaceFrame, FramesPart, find_image, frames_part, raise_if_bad, read_face

#: An OpenFace intensity column (``AU01_r``), its AU number as group 1.
OPENFACE_R = re.compile(r"^AU(\d+)_r$")


class OptionalColumns(NamedTuple):
    """The optional columns of one row: ``valence``, ``arousal`` (NaN when empty), ``label`` (FER2013 code, -1
    when empty) and ``usage`` (``""`` when empty)."""

    valence: float
    arousal: float
    label: int
    usage: str


def read_openface(path: Path, on_bad: str) -> FramesPart:
    """The usable frames of one OpenFace csv, as a :class:`~data_loaders.action_units.frames.FramesPart`.

    Raises:
        ActionUnitFormatError: an unreadable csv, missing ``frame``/``success``/``AUxx_r`` columns, or bad rows
            (other than ``success = 0``) with ``on_bad="raise"``; each bad row is named ``<file>:<line>``.
    """
    try:
        frame = pd.read_csv(path, skipinitialspace=True, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ActionUnitFormatError(f"{path}: not a readable csv ({err})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    r_cols = [c for c in frame.columns if OPENFACE_R.match(c)]
    missing = [c for c in ("frame", "success") if c not in frame.columns]
    if missing or not r_cols:
        raise ActionUnitFormatError(
            f"{path}: not OpenFace output: missing column(s) {', '.join(missing + ([] if r_cols else ['AU01_r …']))}"
            f" (found {', '.join(frame.columns[:8])}{' …' if len(frame.columns) > 8 else ''})"
        )
    names = [au_name(OPENFACE_R.match(c)[1]) for c in r_cols]
    aligned = path.with_name(f"{path.stem}_aligned")
    bad: list[BadRow] = []
    keep: list[FaceFrame] = []
    first_line: dict[tuple[int, int], int] = {}  # (frame, face_id) → the line that holds it
    for i, values in enumerate(frame.to_dict("records")):
        where = f"{path.name}:{i + 2}"  # header is line 1
        problem, parsed = _openface_row(values, r_cols, aligned)
        if not problem:
            frame_no, face_id = key = (parsed.frame, _face_id(values))
            seen = first_line.setdefault(key, i + 2)
            if seen != i + 2:
                problem = f"frame {frame_no} face_id {face_id} appears twice (first on line {seen})"
        if problem:
            bad.append(BadRow(where, problem))
        else:
            keep.append(parsed)
    raise_if_bad(path, bad, on_bad, always_ok=("success = 0",))
    subject = path.stem
    return frames_part(keep, names, subject, str(path), bad)


def _whole(text) -> int:
    """A whole number written as ``"12"`` or ``"12.0"`` (OpenFace writes both), else ValueError."""
    value = float(text)
    if not value.is_integer():  # 2.7, inf and nan are not frame numbers
        raise ValueError(text)
    return int(value)


def _face_id(values: dict) -> int:
    return _whole(values.get("face_id", 0) or 0)


def _openface_row(values: dict, r_cols: list[str], aligned: Path) -> tuple[str | None, FaceFrame | None]:
    """(None, the frame) for a usable row, else (the problem, None)."""
    try:
        frame_no = _whole(values["frame"])
        face_id = _face_id(values)
    except ValueError:
        return f"frame {values['frame']!r} / face_id {values.get('face_id')!r} is not a whole number", None
    if values["success"].strip() not in ("0", "1"):
        return f"success must be 0 or 1, got {values['success']!r}", None
    if values["success"].strip() == "0":
        return f"success = 0 (OpenFace tracked no face in frame {frame_no})", None
    intensity, presence = [], []
    for col in r_cols:
        try:
            value = float(values[col])
        except ValueError:
            return f"{col} = {values[col]!r} is not a number", None
        if not 0.0 <= value <= MAX_INTENSITY:
            return f"{col} = {value} is outside the intensity range 0-5", None
        intensity.append(value)
        c_col = col[:-2] + "_c"
        if c_col in values:
            if values[c_col].strip() not in ("0", "1", "0.0", "1.0"):
                return f"{c_col} must be 0 or 1, got {values[c_col]!r}", None
            presence.append(float(values[c_col]) == 1.0)
        else:
            presence.append(value >= 0.5)
    extras, problem = _optional_columns(values)
    if problem:
        return problem, None
    image = find_image(aligned, f"frame_det_{face_id:02d}_{frame_no:06d}")
    if image is None:
        return f"no aligned face image {aligned.name}/frame_det_{face_id:02d}_{frame_no:06d}.bmp|png|jpg", None
    pixels, problem = read_face(image)
    if problem:
        return problem, None
    return None, FaceFrame(
        image=pixels,
        intensity=intensity,
        presence=presence,
        frame=frame_no,
        valence=extras.valence,
        arousal=extras.arousal,
        label=extras.label,
        usage=extras.usage,
    )


def _optional_columns(values: dict) -> tuple[OptionalColumns | None, str | None]:
    """The optional ``valence``, ``arousal``, ``emotion`` and ``Usage`` columns of a row, or a problem."""
    affect = []
    for col in ("valence", "arousal"):
        text = str(values.get(col, "")).strip()
        if not text:
            affect.append(np.nan)
            continue
        try:
            value = float(text)
        except ValueError:
            return None, f"{col} = {text!r} is not a number"
        if not -1.0 <= value <= 1.0:
            return None, f"{col} = {value} is outside [-1, 1]"
        affect.append(value)
    emotion = str(values.get("emotion", "")).strip()
    try:
        code = -1 if not emotion else (int(emotion) if emotion.lstrip("-").isdigit() else emotion_code(emotion))
    except KeyError as err:
        return None, str(err.args[0])
    if not -1 <= code <= 6:
        return None, f"emotion = {code} is not a FER2013 code 0-6"
    usage = str(values.get("Usage", "")).strip()
    if usage and usage not in ("Training", "PublicTest", "PrivateTest"):
        return None, f"Usage = {usage!r} is not Training, PublicTest or PrivateTest"
    return OptionalColumns(valence=affect[0], arousal=affect[1], label=code, usage=usage), None
