"""Benchmark the 3D assignment: voxelization throughput (the solution's vectorized ``voxelize`` beside open3d's
VoxelGrid), viewer payload bytes per cloud, and the solution's 3D CNN (``build_model_4``) time per epoch.

Usage: ``.venv/bin/python -m benchmarks.iphonex_3d [--clouds 20000]``. Uses synthetic 1220-point clouds.
Prints a table and writes ``benchmarks/results/iphonex_3d.json``. Goal: ≥ 20,000 clouds/s voxelized on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.results_file import write_results
from course.notebook_cells import run_solution_cells


def _best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def open3d_occupancy(points: np.ndarray, grid: int = 24):
    """open3d's VoxelGrid over the cloud's bounding cube (cubic cells: open3d has one voxel size)."""
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    low, high = points.min(axis=0), points.max(axis=0)
    size = float((high - low).max()) / grid * (1 + 1e-9)
    return o3d.geometry.VoxelGrid.create_from_point_cloud_within_bounds(cloud, size, low, low + size * grid)


def open3d_counts(points: np.ndarray, grid: int = 24) -> np.ndarray:
    """Counts per cell with open3d: the VoxelGrid above, then one ``get_voxel`` lookup per point."""
    voxels = open3d_occupancy(points, grid)
    counts = np.zeros((grid, grid, grid), np.int32)
    for p in points:
        i, j, k = np.clip(voxels.get_voxel(p), 0, grid - 1)
        counts[i, j, k] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clouds", type=int, default=20000)
    parser.add_argument("--open3d-clouds", type=int, default=200, help="open3d is per point in Python: fewer")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from data_loaders import synthetic
    from widgets.viewer3d import FaceViewer, export_html

    faces = synthetic.sample_faces(max(1, args.clouds // 7 + 1), seed=0)
    clouds = faces.points[: args.clouds]
    ns = run_solution_cells("voxelize", {"__name__": "solution", "SEED": 0})
    voxelize = ns["voxelize"]
    rows = []
    seconds = _best_of(lambda: voxelize(clouds))
    rows.append(
        {
            "step": f"voxelize (solution, vectorized): {len(clouds)} clouds × 1220 points → 24³",
            "seconds": round(seconds, 3),
            "per_second": round(len(clouds) / seconds),
            "unit": "clouds/s",
        }
    )
    few = clouds[: args.open3d_clouds]
    seconds = _best_of(lambda: [open3d_occupancy(c) for c in few], repeat=1)
    rows.append(
        {
            "step": f"open3d VoxelGrid (occupied cells only, no counts): {len(few)} clouds",
            "seconds": round(seconds, 3),
            "per_second": round(len(few) / seconds),
            "unit": "clouds/s",
        }
    )
    seconds = _best_of(lambda: [open3d_counts(c) for c in few], repeat=1)
    rows.append(
        {
            "step": f"open3d VoxelGrid + per-point get_voxel for counts: {len(few)} clouds",
            "seconds": round(seconds, 3),
            "per_second": round(len(few) / seconds),
            "unit": "clouds/s",
        }
    )

    viewer = FaceViewer(faces.points[:14], faces.labels[:14], faces.sample_ids[faces.subjects[:14]])
    import plotly.graph_objects as go
    import plotly.io as pio

    one = pio.to_json(go.Figure(viewer.figure.data[0]), engine="json")
    rows.append(
        {
            "step": "viewer widget: one cloud (x, y, z, colour) as plotly JSON, float32 base64",
            "seconds": 0.0,
            "per_second": len(one),
            "unit": "bytes/cloud",
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        small = (
            export_html(faces.points[:7], faces.labels[:7], faces.sample_ids[faces.subjects[:7]], Path(tmp) / "a.html")
            .stat()
            .st_size
        )
        n_big = min(len(faces.points), 350)
        big = (
            export_html(
                faces.points[:n_big],
                faces.labels[:n_big],
                faces.sample_ids[faces.subjects[:n_big]],
                Path(tmp) / "b.html",
            )
            .stat()
            .st_size
        )
    per_cloud = (big - small) / (n_big - 7)
    rows.append(
        {
            "step": f"HTML export: bytes per extra cloud ({n_big} clouds: {big / 1e6:.1f} MB)",
            "seconds": 0.0,
            "per_second": round(per_cloud),
            "unit": "bytes/cloud",
        }
    )

    import keras

    counts = voxelize(faces.points[:280])
    x = (counts / counts.max(axis=(1, 2, 3), keepdims=True)).astype("float32")[..., None]
    y = faces.labels[:280]
    model = ns["build_model_4"](24)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)  # warm-up: tracing
    seconds = _best_of(lambda: model.fit(x, y, epochs=1, batch_size=16, verbose=0), repeat=2)
    rows.append(
        {
            "step": f"model_4 (solution Conv3D, {model.count_params():,} params): one epoch, 280 clouds, batch 16",
            "seconds": round(seconds, 2),
            "per_second": round(280 / seconds),
            "unit": "clouds/s",
        }
    )

    print(f"3D assignment · {os.cpu_count()} CPU cores · goal: voxelize ≥ 20,000 clouds/s\n")
    print(f"{'step':<88}{'seconds':>9}{'rate':>14}")
    for r in rows:
        print(f"{r['step']:<88}{r['seconds']:>9.3f}{r['per_second']:>10,} {r['unit']}")
    write_results("iphonex_3d", keras=keras.__version__, results=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
