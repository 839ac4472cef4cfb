"""A fixed micro-benchmark of the host's arithmetic speed, so that timings from different machines compare.

Usage: ``.venv/bin/python -m benchmarks.host_speed``. Two numbers, each the best of 7 repeats after a warm-up:
a float32 1024×1024 matrix product in NumPy (GFLOP/s) and one Keras ``Conv2D`` (3×3, 64 → 64 channels) over a
batch of 64 feature maps of 24×24, the size model_2's middle layers work at (GFLOP/s, counting a multiply-add as
2 FLOP). Accuracy benchmarks store them beside their results: an epoch count per wall-clock minute follows
from them far more than from the model.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np


def _best_seconds(fn, repeats: int = 7) -> float:
    fn()  # warm-up: thread pools, kernel selection, tracing
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def host_speed() -> dict[str, float]:
    """``{"matmul_gflops": …, "conv2d_gflops": …}``: the host's float32 throughput on two fixed workloads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    matmul = 2 * 1024**3 / _best_seconds(lambda: a @ a) / 1e9

    x = rng.standard_normal((64, 24, 24, 64), dtype=np.float32)
    conv = keras.layers.Conv2D(64, 3, padding="same")
    conv.build(x.shape)
    run = keras.ops.convert_to_tensor(x)
    flops = 2 * 64 * 24 * 24 * 64 * 64 * 9
    conv_rate = flops / _best_seconds(lambda: keras.ops.convert_to_numpy(conv(run))) / 1e9
    return {"matmul_gflops": round(matmul, 1), "conv2d_gflops": round(conv_rate, 1)}


if __name__ == "__main__":
    from benchmarks.results_file import parse_no_options

    parse_no_options(__doc__)
    speed = host_speed()
    print(
        f"{os.cpu_count()} CPU cores · NumPy matmul {speed['matmul_gflops']:,} GFLOP/s · "
        f"Keras Conv2D {speed['conv2d_gflops']:,} GFLOP/s"
    )
    sys.exit(0)
