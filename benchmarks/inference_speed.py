"""Benchmark: inference speed of the reference ``model_2`` (the solution notebook's ``build_model_2``) at 48×48:
faces/s in batches (goal ≥ 2,000 on 2 cores) and single-face latency, as built and with batch norms folded, and
on a CPU that computes bfloat16 natively also folded and in bfloat16 (``course.inference.in_bfloat16``).

Usage: ``.venv/bin/python -m benchmarks.inference_speed [--batch-sizes 32,128,512] [--faces 3589] [--rounds 5]``

Speed does not depend on the weights, so the network is built untrained (no data needed); ``--model`` measures a
saved ``.keras`` file instead. Each rate is the best of ``--rounds`` ``model.predict`` passes over ``--faces``
random faces (PublicTest has 3,589) after a warm-up; a round times every model and batch size once, so a stall of
the machine costs one pass of one row, not all the passes of a row (the median is kept in the row's note).
Latency is the median of 50 single-face calls. Prints a table and writes
``benchmarks/results/inference_speed.json``. Run it alone: other work on the CPU skews it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.reference_model import untrained_model_2
from benchmarks.results_file import write_results


def warm_up(model, x: np.ndarray, batch_size: int) -> None:
    """Trace ``model.predict`` for a full and the last partial batch (one graph per batch shape)."""
    model.predict(x[: batch_size + len(x) % batch_size], batch_size=batch_size, verbose=0)


def predict_seconds(model, x: np.ndarray, batch_size: int) -> float:
    """Wall seconds of one ``model.predict`` pass over ``x``."""
    start = time.perf_counter()
    model.predict(x, batch_size=batch_size, verbose=0)
    return time.perf_counter() - start


def faces_per_second(model, x: np.ndarray, batch_size: int, repeat: int = 3) -> float:
    """Faces/s of the best of ``repeat`` ``model.predict`` passes over ``x``, after a warm-up."""
    warm_up(model, x, batch_size)
    return len(x) / min(predict_seconds(model, x, batch_size) for _ in range(repeat))


def latency_ms(model, x: np.ndarray, calls: int = 50) -> float:
    """Median milliseconds of one face through ``model.predict_on_batch`` (what a webcam loop calls)."""
    one = x[:1]
    model.predict_on_batch(one)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model.predict_on_batch(one)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="32,128,512", help="comma-separated batch sizes")
    parser.add_argument("--faces", type=int, default=3589, help="faces per timed pass (default: PublicTest's 3,589)")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes per row, interleaved (default 5)")
    parser.add_argument("--model", help="a saved .keras model to measure instead of an untrained build_model_2")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras

    from course.cpu import cpu_has_bfloat16
    from course.evaluate import with_flip_tta
    from course.inference import fold_batch_norms, in_bfloat16

    if args.model:
        model, name = keras.models.load_model(args.model, compile=False), Path(args.model).name
    else:
        model, name = untrained_model_2(), "model_2"
    folded = fold_batch_norms(model)
    x = np.random.default_rng(0).random((args.faces, 48, 48, 1), dtype=np.float32)
    variants = [
        (name, model),
        (f"{name}, batch norms folded", folded),
        (f"{name}, batch norms folded + flip TTA", with_flip_tta(folded)),
    ]
    if cpu_has_bfloat16():
        variants.insert(2, (f"{name}, batch norms folded, bfloat16", in_bfloat16(folded)))
    batches = [int(b) for b in args.batch_sizes.split(",")]
    passes = {(label, batch): [] for label, _ in variants for batch in batches}
    for _label, m in variants:
        for batch in batches:
            warm_up(m, x, batch)
    for _ in range(args.rounds):
        for label, m in variants:
            for batch in batches:
                passes[label, batch].append(predict_seconds(m, x, batch))
    rows = []
    for label, m in variants:
        for batch in batches:
            best, median = min(passes[label, batch]), float(np.median(passes[label, batch]))
            rows.append(
                {
                    "step": f"{label}, batch {batch}",
                    "seconds": round(best, 3),
                    "per_second": round(len(x) / best),
                    "unit": "faces/s",
                    "note": f"median of {args.rounds}: {len(x) / median:,.0f}",
                }
            )
            print(f"{rows[-1]['step']:<54}{len(x) / best:>9,.0f} faces/s  (median {len(x) / median:,.0f})", flush=True)
        ms = latency_ms(m, x)
        rows.append(
            {
                "step": f"{label}, one face",
                "seconds": round(ms / 1000, 4),
                "per_second": round(1000 / ms),
                "unit": "faces/s",
                "note": f"latency {ms:.1f} ms",
            }
        )
        print(f"{rows[-1]['step']:<54}{ms:>9.1f} ms", flush=True)
    write_results(
        "inference_speed",
        keras=keras.__version__,
        model=name,
        parameters=int(model.count_params()),
        faces=len(x),
        rounds=args.rounds,
        results=rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
