"""Video clips: find one, read its frames (OpenCV's ``VideoCapture``), read its per-frame ground truth.

Resolution like the kit's other data: an explicit path → ``$VIDEO_PATH`` → the first clip in ``<repo>/data/video/``
→ the synthetic default clip (:func:`data_loaders.synthetic.clips.default_clip`, rendered once and cached). A
path may be a clip (``.mp4``, ``.avi``, ``.mov``, ``.mkv``, ``.m4v``, ``.webm``) or a folder holding clips.

Ground truth, when a clip has it, is a CSV beside the clip with the same name (``clip.mp4`` → ``clip.csv``), one
row per frame with at least ``frame``; the synthetic clips add ``time_s, emotion, AU12, AU6, smile,
face_present`` and the true face box. Decoding errors name the file and the frame.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .resolve import DataSource, resolve_source
from .settings import SYNTHETIC, VIDEO_PATH

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


class ShortVideoWarning(UserWarning):
    """A clip decodes fewer frames than its container reports: the decoded frames are used.

    Real encoders often write a frame count in the header that the stream does not hold (a phone clip whose
    header says 98 frames decodes 95), and a truncated file stops early too; both keep their decoded frames.
    ``decoded`` and ``reported`` are the two counts.
    """

    def __init__(self, message: str, decoded: int, reported: int):
        super().__init__(message)
        self.decoded, self.reported = decoded, reported


class VideoError(ValueError):
    """A clip cannot be read: not a video, an unsupported codec, or corrupt (the message names file and frame)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a clip: ``fps`` (frames per second), ``frame_count`` (as the container
    reports it; some formats only estimate it), ``width`` and ``height`` in pixels, ``codec`` (FourCC text)."""

    path: Path
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str

    @property
    def seconds(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else float("nan")


def video_path(path: str | os.PathLike | None = None) -> Path:
    """The clip to use: ``path`` → ``$VIDEO_PATH`` → the first clip in ``<repo>/data/video/`` → the synthetic
    default clip. ``synthetic`` as path or variable forces the synthetic clip.

    Raises:
        FileNotFoundError: a configured path does not exist, or a configured folder holds no clip.
    """
    chosen = resolve_source(path, SOURCE)
    if chosen.is_dir():
        clips = _clips_in(chosen)
        if not clips:
            raise FileNotFoundError(f"no clip ({', '.join(VIDEO_SUFFIXES)}) in {chosen}. {SOURCE.how_to_get}")
        return clips[0]
    return chosen


def _first_clip(folder: Path) -> Path | None:
    clips = _clips_in(folder) if folder.is_dir() else []
    return clips[0] if clips else None


def _default_clip() -> Path:
    from .synthetic.clips import default_clip

    return default_clip()


#: What the clips' resolution has of its own (:func:`data_loaders.resolve.resolve_source` does the rest; a
#: configured folder is then narrowed to its first clip by :func:`video_path`).
SOURCE = DataSource(
    VIDEO_PATH,
    "video",
    "video",
    f"Set {VIDEO_PATH.name} to an .mp4/.avi/.mov file or a folder of clips, or to '{SYNTHETIC}'.",
    _first_clip,
    _default_clip,
)


def _clips_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))


def is_synthetic_clip(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the kit's cached synthetic clip (or a clip written by ``write_clip`` into the cache)."""
    from . import cache

    try:
        Path(path).resolve().relative_to(cache.cache_dir().resolve())
        return Path(path).parent.name.startswith("synthetic-clip-")
    except ValueError:
        return False


def _open(path: Path):
    import cv2

    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(
            f"{path}: OpenCV cannot open it as a video (not a video file, or a codec this OpenCV "
            f"build cannot decode; re-encode it, e.g. `ffmpeg -i {path.name} -c:v libx264 out.mp4`)"
        )
    return capture


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, frame count, size and codec of a clip.

    Raises:
        VideoError: the file is missing, empty, not a video, or its codec cannot be decoded.
    """
    import cv2

    path = Path(path)
    capture = _open(path)
    try:
        code = int(capture.get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)).strip("\x00 ")
        info = VideoInfo(
            path,
            float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
            int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            codec,
        )
    finally:
        capture.release()
    return info


def iter_frames(
    path: str | os.PathLike, every: int = 1, grey: bool = False, stop: int | None = None
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode a clip frame by frame.

    Args:
        path: the clip. every: keep every ``every``-th frame (1 = all; skipped frames are grabbed, not decoded).
        grey: yield ``uint8 (H, W)`` grey frames instead of ``uint8 (H, W, 3)`` RGB.
        stop: stop before this frame index (default: the end of the stream, decoded to its last frame whatever
            frame count the container reports: headers can over- or undercount).

    Yields:
        ``(frame index, time in seconds, image)``; the time is ``index / fps`` (the container's fps; 30 when it
        reports none).

    Raises:
        ValueError: ``every`` < 1, or ``stop`` < 0.
        VideoError: the clip cannot be opened or yields no frame.

    Warns:
        ShortVideoWarning: decoding stopped before the frame count the container reports (a header that counts
            frames the stream does not hold, or a truncated file); the frames decoded up to there were yielded.
    """
    import cv2

    if every < 1:
        raise ValueError(f"every must be ≥ 1, got {every}")
    if stop is not None and stop < 0:
        raise ValueError(f"stop must be ≥ 0 (a frame index), got {stop}")
    path = Path(path)
    capture = _open(path)
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0
        expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # only for the warning: never the truth
        index = 0
        while stop is None or index < stop:
            if index % every:
                ok = capture.grab()
                image = None
            else:
                ok, image = capture.read()
            if not ok:
                if index == 0:
                    raise VideoError(f"{path}: no frame could be decoded (corrupt file or unsupported codec)")
                if expected > 0 and index < expected - 1 and (stop is None or index < stop):
                    warnings.warn(
                        ShortVideoWarning(
                            f"{path}: {index} frames decoded, {expected} reported by the container (its header "
                            f"counts frames the stream does not hold, or the file is truncated); the {index} "
                            "decoded frames are used",
                            decoded=index,
                            reported=expected,
                        ),
                        stacklevel=2,
                    )
                return
            if image is not None:
                code = cv2.COLOR_BGR2GRAY if grey else cv2.COLOR_BGR2RGB
                yield index, index / fps, cv2.cvtColor(image, code)
            index += 1
    finally:
        capture.release()


def read_frame(path: str | os.PathLike, index: int, grey: bool = False) -> np.ndarray:
    """One frame of a clip (seeking), ``uint8 (H, W, 3)`` RGB or ``(H, W)`` grey.

    Raises:
        ValueError: ``index`` < 0.
        VideoError: the clip cannot be opened or frame ``index`` cannot be decoded.
    """
    import cv2

    if index < 0:
        raise ValueError(f"index must be ≥ 0 (frames count from 0), got {index}")
    path = Path(path)
    capture = _open(path)
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, image = capture.read()
    finally:
        capture.release()
    if not ok:
        raise VideoError(f"{path}: frame {index} cannot be decoded (past the end, or a corrupt file)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if grey else cv2.COLOR_BGR2RGB)


def ground_truth_path(path: str | os.PathLike) -> Path:
    """Where a clip's per-frame ground truth lives: the same name with ``.csv``."""
    return Path(path).with_suffix(".csv")


def _shown(value) -> str:
    """A csv value as an error message shows it: text quoted, numbers as written."""
    return repr(value) if isinstance(value, str) else str(value)


def load_ground_truth(path: str | os.PathLike) -> pd.DataFrame | None:
    """The per-frame ground truth of a clip (``<clip>.csv``), or None when the clip has none.

    Returns:
        A DataFrame with one row per frame, sorted by ``frame`` (int64), as written (see the module docstring).

    Raises:
        VideoError: the CSV cannot be read, has no ``frame`` column, has a ``frame`` that is not a whole number
            ≥ 0 or a ``smile`` that is not 0, 1 or empty (unlabelled: NaN), or repeats a frame (the message names
            the file and the line).
    """
    csv = ground_truth_path(path)
    if not csv.is_file():
        return None
    try:
        truth = pd.read_csv(csv, keep_default_na=False, na_values={"AU12": [""], "AU6": [""]})
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise VideoError(f"{csv}: not a readable ground-truth csv ({err})") from None
    if "frame" not in truth.columns:
        raise VideoError(f"{csv}: ground truth needs a 'frame' column (found {', '.join(truth.columns)})")
    frames = pd.to_numeric(truth["frame"], errors="coerce")
    bad = ~(frames.notna() & (frames >= 0) & (frames == frames.round()))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        shown = _shown(truth["frame"].iloc[i])
        raise VideoError(f"{csv}:{i + 2}: frame {shown} is not a frame number (a whole number ≥ 0)")
    truth["frame"] = frames.astype(np.int64)
    if "smile" in truth.columns:
        smile = pd.to_numeric(truth["smile"], errors="coerce")
        unlabelled = truth["smile"].astype(str).str.strip().eq("")  # an empty cell: a frame nobody labelled (NaN)
        bad = ~(smile.isin([0, 1]) | unlabelled)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise VideoError(f"{csv}:{i + 2}: smile {_shown(truth['smile'].iloc[i])} is not 0 or 1 (or empty)")
        truth["smile"] = smile.astype(np.int64) if not unlabelled.any() else smile
    repeated = truth["frame"][truth["frame"].duplicated()]
    if len(repeated):
        raise VideoError(f"{csv}: frame {int(repeated.iloc[0])} appears more than once")
    return truth.sort_values("frame", ignore_index=True)


__all__ = [
    "VIDEO_SUFFIXES",
    "ShortVideoWarning",
    "VideoError",
    "VideoInfo",
    "ground_truth_path",
    "is_synthetic_clip",
    "iter_frames",
    "load_ground_truth",
    "read_frame",
    "video_info",
    "video_path",
]
