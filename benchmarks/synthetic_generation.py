"""Benchmark: synthetic FACS faces, 1,000 subjects × 7 expressions in 3D and 30,000 images in 2D (goal ≤ 60 s).

Usage: ``.venv/bin/python -m benchmarks.synthetic_generation [--subjects 1000 --images 30000]``
Prints a table and writes ``benchmarks/results/synthetic_generation.json``. Generation is timed in memory; the
default data set's files (50 subjects, 10,000 images) are timed separately, as a first notebook run makes them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results_file import write_results


def _timed(label, fn, count, unit):
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return {
        "step": label,
        "seconds": round(seconds, 2),
        "count": count,
        "unit": f"{unit}/s",
        "per_second": round(count / seconds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--images", type=int, default=30000)
    args = parser.parse_args(argv)

    from data_loaders import synthetic

    synthetic.sample_faces(2)  # build the face model once, outside the timings
    rows = [
        _timed(
            f"3D: {args.subjects} subjects × 7 expressions",
            lambda: synthetic.sample_faces(args.subjects),
            args.subjects * 7,
            "clouds",
        ),
        _timed(f"2D: {args.images} images 48×48", lambda: synthetic.sample_images(args.images), args.images, "images"),
    ]
    generation = sum(r["seconds"] for r in rows)
    with tempfile.TemporaryDirectory() as out:
        rows.append(
            _timed(
                f"default files ({synthetic.DEFAULT_SUBJECTS} subjects, {synthetic.DEFAULT_IMAGES} "
                "images): faces.py + npz + csv",
                lambda: synthetic.generate(out),
                synthetic.DEFAULT_IMAGES,
                "images",
            )
        )
        sizes = {p.name: round(p.stat().st_size / 1e6, 1) for p in Path(out).iterdir()}

    print(f"Synthetic FACS faces · {os.cpu_count()} CPU cores · goal: 3D + 2D generation ≤ 60 s\n")
    print(f"{'step':<72}{'seconds':>9}{'per second':>13}")
    for r in rows:
        print(f"{r['step']:<72}{r['seconds']:>9.2f}{r['per_second']:>9,} {r['unit']}")
    print(f"\n3D + 2D generation: {generation:.1f} s · default files (MB): {sizes}")
    write_results(
        "synthetic_generation", generation_seconds=round(generation, 2), goal_seconds=60, file_mb=sizes, results=rows
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
