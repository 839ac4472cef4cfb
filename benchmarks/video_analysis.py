"""Benchmark: ``analyze_video`` in frames per second on the synthetic clip and on 960×540 clips with and without a
face; the annotated MP4.

Usage: ``.venv/bin/python -m benchmarks.video_analysis``
Prints a table and writes ``benchmarks/results/video_analysis.json``. The model is the kit's fallback ``model_2``
(trained once and cached, about 20 s). The clips are written to a temporary folder, none is kept: the default
synthetic one (16 s, 15 fps, 320×240); a 960×540 clip at 30 fps with no face (5 s: scikit-image's photos without
a face, coffee, a cat, coins, textures, text, the moon …, each panned slowly for half a second); and the same size
and rate with a face (scikit-image's ``astronaut`` moving across a grey background). While no face is tracked, the
default runs the kit's whole Haar vote once a second and screens the frames between
(:func:`data_loaders.face_detection.screen_faces`); ``search_every=1`` votes on every such frame (the most faces,
the slowest) and ``screen=False`` leaves the frames between votes unsearched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.results_file import parse_no_options, write_results

SIZE = (960, 540)
FPS = 30.0
FRAMES = 150


def _timed(label, fn, count, unit):
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    return value, {
        "step": label,
        "seconds": round(seconds, 2),
        "count": count,
        "unit": f"{unit}/s",
        "per_second": round(count / seconds, 1),
    }


def _write(path: Path, frames) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE, True)
    for grey in frames:
        writer.write(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def no_face_clip(path: Path) -> Path:
    """A 960×540, 30 fps clip of :data:`FRAMES` frames with no face: scikit-image photos panned slowly."""
    import cv2

    from benchmarks.face_detection import non_face_photos

    photos = [
        cv2.resize(p, (SIZE[0] + 60, SIZE[1] + 40), interpolation=cv2.INTER_AREA) for p in non_face_photos().values()
    ]

    def frames():
        for i in range(FRAMES):
            photo, step = photos[(i // 15) % len(photos)], i % 15
            yield np.ascontiguousarray(photo[2 * step : 2 * step + SIZE[1], 4 * step : 4 * step + SIZE[0]])

    return _write(path, frames())


def face_clip(path: Path) -> Path:
    """A 960×540, 30 fps clip of :data:`FRAMES` frames with scikit-image's astronaut (face about 110 px) moving."""
    import cv2
    from skimage import data

    face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (400, 400), interpolation=cv2.INTER_AREA)

    def frames():
        for i in range(FRAMES):
            frame = np.full(SIZE[::-1], 120, np.uint8)
            x = 100 + 3 * i
            frame[70:470, x : x + 400] = face
            yield frame

    return _write(path, frames())


def main(argv: list[str] | None = None) -> int:
    parse_no_options(__doc__, argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from course.fallback_model import fallback_model_2
    from course.video_analysis import analyze_video, write_annotated_video
    from data_loaders.synthetic.clips import DEFAULT_FPS, DEFAULT_SECONDS, write_clip
    from data_loaders.video import iter_frames

    model = keras.models.load_model(fallback_model_2(), compile=False)
    n = int(DEFAULT_SECONDS * DEFAULT_FPS)
    rows = []

    def analyse(label, clip, count, **options):
        df, row = _timed(label, lambda: analyze_video(clip, model, progress=False, **options), count, "frames")
        row["note"] = (
            f"face in {df.face.mean():.0%} of analysed frames; search_every {df.attrs['search_every']}, "
            f"screen {df.attrs['screen']}"
        )
        rows.append(row)
        return df

    with tempfile.TemporaryDirectory() as tmp:
        (video, _), row = _timed(
            f"render + write the synthetic clip ({DEFAULT_SECONDS:g} s, {DEFAULT_FPS} fps, 320×240)",
            lambda: write_clip(Path(tmp) / "clip.mp4"),
            n,
            "frames",
        )
        rows.append(row)
        analyze_video(video, model, every=8, progress=False)  # warm-up: TensorFlow's first call, the cascades
        for every in (1, 2):
            df = analyse(
                f"synthetic 320×240: analyze_video, every {every}", video, (n + every - 1) // every, every=every
            )
        _, row = _timed(
            "write_annotated_video",
            lambda: write_annotated_video(df, video, Path(tmp) / "out.mp4", progress=False),
            n,
            "frames",
        )
        rows.append(row)
        empty, face = no_face_clip(Path(tmp) / "no_face.mp4"), face_clip(Path(tmp) / "face.mp4")
        _, row = _timed(
            "960×540, no face: decoding only (grey)",
            lambda: sum(1 for _ in iter_frames(empty, grey=True)),
            FRAMES,
            "frames",
        )
        rows.append(row)
        analyse("960×540, no face: default (vote once a second, screen between)", empty, FRAMES)
        analyse("960×540, no face: screen=False (vote once a second only)", empty, FRAMES, screen=False)
        analyse("960×540, no face: search_every=1 (vote on every frame)", empty, FRAMES, search_every=1)
        analyse("960×540, face: default", face, FRAMES)
        analyse("960×540, face: search_every=1", face, FRAMES, search_every=1)
    print(f"Video · {os.cpu_count()} CPU cores\n")
    print(f"{'step':<64}{'seconds':>9}{'per second':>14}  note")
    for r in rows:
        print(f"{r['step']:<64}{r['seconds']:>9.2f}{r['per_second']:>9,} {r['unit']}  {r.get('note', '')}")
    write_results("video_analysis", keras=keras.__version__, results=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
