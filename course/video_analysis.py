"""Per-frame expression analysis of a video: one pandas row per analysed frame and face; an annotated MP4.

:func:`analyze_video` decodes a clip with OpenCV (:mod:`data_loaders.video`), finds faces with the kit's detector
(:mod:`data_loaders.face_detection`), crops each face like the kit's photos (square, 20 % margin, 48×48 grey,
:func:`data_loaders.personal.crop_face`), and runs a kit model on the crops in batches. The result is a
DataFrame, never a path or a widget: the timeline widget (:class:`widgets.VideoTimeline`) and the students'
evaluation take that frame.

The model contract is the kit's: input ``float32 (N, 48, 48, 1)`` in [0, 1] (another square input size is read
from ``model.input_shape``), output 7 softmax probabilities in FER2013 order.

**Smile score.** ``smile`` is the model's probability of *Happy*, P(Happy) ∈ [0, 1]: in FACS a smile is AU12
(lip corner puller, often with AU6), the Action Units of the Happy prototype, and FER2013 has no separate smile
class. It is a score, not a decision: choose a threshold (or an ROC curve) against per-frame labels.

Speed (``python -m benchmarks.video_analysis`` measures it): after a frame with exactly one face, the next analysed
frame is first searched near that face only (:func:`data_loaders.face_detection.faces_near`: the box grown by half,
sizes 0.7-1.5×, shrunk so that face is about 80 pixels wide). While no face is tracked, the whole frame is searched
with the kit's vote once a second of video (``search_every``) and right after a face is lost; the frames in between
are screened (``screen``: :func:`data_loaders.face_detection.screen_faces`, one cascade on a shrunk frame proposes
and the vote confirms near each candidate). At 960×540 the vote takes a third of a second and the screen a thirtieth,
so frames without a face go at 27.5 frames/s instead of 3.1 with the vote on every frame
(``search_every=1``, the highest recall: the screen alone missed the benchmark's moving astronaut, which the vote
finds within a second and then tracks). ``method="mtcnn"`` searches every analysed frame with MTCNN instead (no
tracking: slower, for turned and tilted faces), and ``align=True`` crops each face aligned by its eyes
(:mod:`data_loaders.alignment`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from data_loaders.emotions import EMOTIONS
from data_loaders.face_detection import Method, detect_faces, faces_near, screen_faces
from data_loaders.personal import crop_face
from data_loaders.video import ShortVideoWarning, iter_frames, video_info

BOX_COLUMNS = ("x", "y", "w", "h")
#: Columns of :func:`analyze_video`'s DataFrame, in order.
COLUMNS = ("frame", "time_s", "face", "face_index", *BOX_COLUMNS, *EMOTIONS, "smile", "label")


#: Whole-frame votes per second of video while no face is tracked (``analyze_video``'s default ``search_every``).
SEARCHES_PER_SECOND = 1


def _crop(grey: np.ndarray, box: tuple[int, int, int, int], margin: float, size: int, align: bool) -> np.ndarray:
    """The model's crop of ``box``: aligned by the eyes with ``align`` (when they are found), else square."""
    if align:
        from data_loaders.alignment import aligned_face

        found = aligned_face(grey, box, size)
        if found is not None:
            return found.crop
    return crop_face(grey, box, margin, size)


def smile_score(probabilities: np.ndarray) -> np.ndarray:
    """The kit's smile score from 7-class probabilities ``(N, 7)`` (FER2013 order): P(Happy), ``float64 (N,)``."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(EMOTIONS):
        raise ValueError(f"expected probabilities of shape (N, {len(EMOTIONS)}), got {p.shape}")
    return p[:, EMOTIONS.index("Happy")]


def _input_size(model) -> int:
    shape = getattr(model, "input_shape", None)
    if shape is None or len(shape) != 4 or shape[1] != shape[2] or shape[3] != 1:
        raise ValueError(f"the model must take grey square images (N, S, S, 1), its input shape is {shape}")
    return int(shape[1])


def analyze_video(
    path: str | os.PathLike,
    model,
    every: int = 1,
    batch_size: int = 64,
    margin: float = 0.2,
    min_face: float = 0.1,
    profile: bool = False,
    progress: bool = True,
    *,
    method: Method = "haar",
    search_every: int | None = None,
    screen: bool = True,
    align: bool = False,
) -> pd.DataFrame:
    """Find and classify the faces of every ``every``-th frame of a clip.

    Args:
        path: a clip OpenCV can decode (``.mp4``, ``.avi``, ``.mov`` …).
        model: a Keras model (or anything with ``predict`` and ``input_shape``) taking ``float32 (N, S, S, 1)``
            in [0, 1] and giving 7 probabilities in FER2013 order.
        every: analyse every ``every``-th frame (1 = all).
        batch_size: face crops per ``model.predict`` call (memory stays bounded: frames are not kept).
        margin: border around a detected face, as a fraction of its size, before the square crop.
        min_face: smallest face side, as a fraction of the frame's shorter side.
        profile: also look for faces in profile (slower; see :func:`~data_loaders.face_detection.detect_faces`).
        progress: show a tqdm progress bar over frames.
        method: ``"haar"`` (default: the kit's Haar vote with tracking, the faster) or ``"mtcnn"`` (MTCNN on
            every analysed frame: higher recall on turned and tilted faces, about 0.1-0.2 s per frame).
        search_every: with ``"haar"``, while no face is tracked the whole frame is searched with the kit's vote on
            every ``search_every``-th analysed frame (and on the frame after a face is lost); default None: once
            a second of video, ``round(fps / every)``, at least 1; 1: every analysed frame (slowest, most faces).
        screen: with ``"haar"``, screen the analysed frames between two votes with the quicker
            :func:`~data_loaders.face_detection.screen_faces` (default); False: those frames are not searched
            (one row each, ``face`` False). Not used with ``profile=True`` (the screen looks for frontal faces).
        align: crop each face aligned by its eyes (:func:`data_loaders.alignment.aligned_face`, eyes from MTCNN
            when installed, else OpenCV's eye cascade); a face whose eyes are not found is cropped as usual.

    Returns:
        A DataFrame with columns :data:`COLUMNS`: ``frame`` (int), ``time_s`` (seconds, frame / fps), ``face``
        (bool), ``face_index`` (0 for the largest face of a frame), ``x, y, w, h`` (face box in pixels, nullable
        ``Int64``), one probability column per emotion (``Angry`` … ``Neutral``), ``smile`` (P(Happy)) and
        ``label`` (the most probable emotion). One row per analysed frame and face; a frame with no face has one
        row with ``face`` False, no box, NaN probabilities and an empty label: nothing is dropped. ``df.attrs``
        holds the clip's ``path, fps, frame_count`` (what the container reports), ``frames_decoded``, ``width,
        height``, ``every``, ``method``, ``search_every``, ``screen`` and ``align``.

    Raises:
        ValueError: ``every``, ``batch_size`` or ``search_every`` < 1, an unknown ``method``, or a model with the
            wrong input or output shape.
        FaceDetectorError: ``method="mtcnn"`` without the ``mtcnn`` package.
        VideoError: the clip is missing, not a video, in a codec OpenCV cannot decode, or no frame of it decodes.

    Warns:
        UserWarning: no face was found in any analysed frame.
        ShortVideoWarning: the clip decodes fewer frames than its container reports (every decoded frame is
            analysed; ``df.attrs`` holds both counts).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if every < 1:
        raise ValueError(f"every must be ≥ 1, got {every}")
    if method not in ("haar", "mtcnn"):
        raise ValueError(f"method must be 'haar' or 'mtcnn', got {method!r}")
    if search_every is not None and search_every < 1:
        raise ValueError(f"search_every must be ≥ 1, got {search_every}")
    path = Path(path)
    size = _input_size(model)
    info = video_info(path)
    smallest = max(20, int(min_face * min(info.width, info.height)))
    if search_every is None:
        search_every = max(1, round((info.fps or 30.0) / every / SEARCHES_PER_SECOND))
    if method == "mtcnn":
        search_every = 1
    rows: list[dict] = []
    crops: list[np.ndarray] = []
    owners: list[int] = []  # the row of each pending crop
    probabilities: dict[int, np.ndarray] = {}

    def flush():
        if not crops:
            return
        x = np.stack(crops)[..., None].astype("float32") / 255.0
        p = np.asarray(model.predict(x, verbose=0, batch_size=len(x)), dtype=np.float64)
        if p.shape != (len(x), len(EMOTIONS)):
            raise ValueError(
                f"the model returned shape {p.shape} for {len(x)} faces, expected "
                f"({len(x)}, {len(EMOTIONS)}) probabilities"
            )
        probabilities.update(zip(owners, p))
        crops.clear()
        owners.clear()

    total = (info.frame_count + every - 1) // every if info.frame_count > 0 else None
    bar = tqdm(total=total, desc=f"analysing {path.name}", unit="frame", disable=not progress)
    previous, last_index = None, -1
    since_search, had_face = search_every, False  # analysed frames since the last whole-frame search
    # a short clip's counts are read from its warning; every warning caught here is issued again after
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            for index, time_s, grey in iter_frames(path, every=every, grey=True):
                last_index = index
                tracked = previous is not None and method == "haar"
                boxes = faces_near(grey, previous) if tracked else np.zeros((0, 4), np.int64)
                # the whole vote is skipped only while the frames before had no face at all
                if len(boxes) == 0 and (had_face or since_search + 1 >= search_every):
                    since_search = 0
                    boxes = detect_faces(grey, min_size=smallest, profile=profile, method=method)
                else:
                    since_search += 1
                    if len(boxes) == 0 and screen and method == "haar" and not profile:
                        boxes = screen_faces(grey, smallest)
                previous = tuple(int(v) for v in boxes[0]) if len(boxes) == 1 else None
                had_face = len(boxes) > 0
                if len(boxes) == 0:
                    rows.append({"frame": index, "time_s": time_s, "face": False, "face_index": 0})
                for k, box in enumerate(boxes):
                    owners.append(len(rows))
                    crops.append(_crop(grey, tuple(int(v) for v in box), margin, size, align))
                    rows.append(
                        {
                            "frame": index,
                            "time_s": time_s,
                            "face": True,
                            "face_index": k,
                            **dict(zip(BOX_COLUMNS, (int(v) for v in box))),
                        }
                    )
                if len(crops) >= batch_size:
                    flush()
                bar.update(1)
            flush()
        finally:
            bar.close()
    short = None
    for w in seen:
        short = w.message if isinstance(w.message, ShortVideoWarning) else short
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    df = pd.DataFrame(rows, columns=["frame", "time_s", "face", "face_index", *BOX_COLUMNS])
    p = np.full((len(df), len(EMOTIONS)), np.nan)
    for row, probs in probabilities.items():
        p[row] = probs
    for k, name in enumerate(EMOTIONS):
        df[name] = p[:, k]
    df["smile"] = smile_score(p)
    df["label"] = [EMOTIONS[int(np.argmax(r))] if np.isfinite(r).all() else "" for r in p]
    df = df.astype(
        {
            "frame": "int64",
            "time_s": "float64",
            "face": "bool",
            "face_index": "int64",
            **{c: "Int64" for c in BOX_COLUMNS},
        }
    )
    df.attrs.update(
        path=str(path),
        fps=info.fps,
        frame_count=info.frame_count,
        # a header can also undercount: the stream is decoded to its end
        frames_decoded=short.decoded if short else max(info.frame_count, last_index + 1),
        width=info.width,
        height=info.height,
        every=every,
        method=method,
        search_every=search_every,
        screen=screen,
        align=align,
    )
    if not df["face"].any():
        warnings.warn(
            f"{path}: no face found in any of the {len(df)} analysed frames (every {every}); the rows "
            "are marked face=False. Is the face frontal, lit and at least "
            f"{smallest} px tall?",
            stacklevel=2,
        )
    return df


def _bars_panel(height: int, probs: np.ndarray | None, width: int = 170) -> np.ndarray:
    """An RGB panel of 7 horizontal probability bars, ``uint8 (height, width, 3)``."""
    import cv2

    panel = np.full((height, width, 3), 250, np.uint8)
    step = max(14, min(28, (height - 10) // len(EMOTIONS)))
    top = max(5, (height - step * len(EMOTIONS)) // 2)
    best = -1 if probs is None else int(np.nanargmax(probs))
    for k, name in enumerate(EMOTIONS):
        y = top + k * step
        cv2.putText(panel, name[:8], (4, y + step - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (40, 40, 40), 1, cv2.LINE_AA)
        length = 0 if probs is None else int(round(float(probs[k]) * (width - 74)))
        colour = (209, 73, 91) if k == best else (154, 165, 177)
        cv2.rectangle(panel, (68, y + 3), (68 + max(length, 1), y + step - 4), colour, -1)
    if probs is None:
        cv2.putText(
            panel, "no face", (60, top - 0 + 4 * step), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (120, 0, 0), 1, cv2.LINE_AA
        )
    return panel


def write_annotated_video(
    df: pd.DataFrame, path_in: str | os.PathLike, path_out: str | os.PathLike, progress: bool = True
) -> Path:
    """Write a copy of a clip with each face's box, its top label and probability bars drawn on every frame.

    Args:
        df: the result of :func:`analyze_video` for ``path_in``. Frames it skipped (``every`` > 1) show the
            last analysed frame's annotations.
        path_in: the clip that was analysed. path_out: the ``.mp4`` to write (MPEG-4 Part 2, ``mp4v``).

    Returns:
        ``path_out``. The output is the input's size plus a 170-pixel panel of bars on the right.

    Raises:
        ValueError: ``df`` lacks the columns of :func:`analyze_video`, or ``path_out`` is not ``.mp4``.
        VideoError: the input cannot be decoded. OSError: OpenCV cannot write the output.
    """
    import cv2
    from tqdm.auto import tqdm

    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"df lacks the columns {missing}: pass the DataFrame analyze_video returned")
    path_out = Path(path_out)
    if path_out.suffix.lower() != ".mp4":
        raise ValueError(f"{path_out}: the annotated video is written as .mp4")
    info = video_info(path_in)
    by_frame = {frame: rows for frame, rows in df.groupby("frame")}
    path_out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(path_out), cv2.VideoWriter_fourcc(*"mp4v"), info.fps or 30.0, (info.width + 170, info.height), True
    )
    if not writer.isOpened():
        raise OSError(f"{path_out}: OpenCV cannot write MPEG-4 (mp4v) video here")
    current = None
    try:
        for index, _, rgb in tqdm(
            iter_frames(path_in),
            total=info.frame_count or None,
            disable=not progress,
            desc=f"writing {path_out.name}",
            unit="frame",
        ):
            current = by_frame.get(index, current)
            image = rgb.copy()
            probs = None
            if current is not None:
                for _, row in current[current["face"]].iterrows():
                    x, y, w, h = (int(row[c]) for c in BOX_COLUMNS)
                    p = row[list(EMOTIONS)].to_numpy(np.float64)
                    probs = p if probs is None else probs
                    cv2.rectangle(image, (x, y), (x + w, y + h), (209, 73, 91), 2)
                    text = f"{row['label']} {np.nanmax(p):.0%}"
                    cv2.putText(
                        image, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (209, 73, 91), 1, cv2.LINE_AA
                    )
            frame = np.concatenate([image, _bars_panel(info.height, probs)], axis=1)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path_out


__all__ = ["BOX_COLUMNS", "COLUMNS", "SEARCHES_PER_SECOND", "analyze_video", "smile_score", "write_annotated_video"]
