"""Benchmark: the synthetic clip (render + MP4), ``analyze_video`` in frames per second, the annotated MP4.

Usage: ``.venv/bin/python -m benchmarks.video_analysis``
Prints a table and writes ``benchmarks/results/video_analysis.json``. The model is the kit's fallback
``model_2`` (trained once and cached, about a minute); the clip is the default synthetic one (16 s, 15 fps,
320×240), written to a temporary folder.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results_file import parse_no_options, write_results


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


def main(argv: list[str] | None = None) -> int:
    parse_no_options(__doc__, argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from course.fallback_model import fallback_model_2
    from course.video_analysis import analyze_video, write_annotated_video
    from data_loaders.synthetic.clips import DEFAULT_FPS, DEFAULT_SECONDS, write_clip

    model = keras.models.load_model(fallback_model_2(), compile=False)
    n = int(DEFAULT_SECONDS * DEFAULT_FPS)
    rows = []
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
            df, row = _timed(
                f"analyze_video, every {every}",
                lambda every=every: analyze_video(video, model, every=every, progress=False),
                (n + every - 1) // every,
                "frames",
            )
            row["note"] = f"face in {df.face.mean():.0%} of analysed frames"
            rows.append(row)
        _, row = _timed(
            "write_annotated_video",
            lambda: write_annotated_video(df, video, Path(tmp) / "out.mp4", progress=False),
            n,
            "frames",
        )
        rows.append(row)
    print(f"Video · {os.cpu_count()} CPU cores\n")
    print(f"{'step':<64}{'seconds':>9}{'per second':>14}")
    for r in rows:
        print(f"{r['step']:<64}{r['seconds']:>9.2f}{r['per_second']:>9,} {r['unit']}")
    write_results("video_analysis", keras=keras.__version__, results=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
