"""Benchmark: a ``model_2``-like network exported to every format of ``python -m course export`` (ONNX, SavedModel;
TensorFlow.js is refused, with its reason), each run in its own runtime against Keras on the same faces: max |Δp|,
agreement of the top label, size on disk, load time, milliseconds for one face (batch 1) and faces/s in batches of
256, on 2 cores.

Usage: ``.venv/bin/python -m benchmarks.export_parity [--model PATH ...] [--faces 256] [--rounds 5]``

The models: the kit's fallback ``model_2`` (trained on this machine's default FER2013-format data, so its
probabilities are peaked and the parity check means something; trained once and cached if absent) and the
reference ``model_2`` of assignment 1 (the solution notebook's ``build_model_2``, 0.7 M parameters, untrained:
speed does not depend on the weights); ``--model`` measures saved ``.keras`` files instead. The faces are
:func:`course.export.parity_faces`: real FER2013 PublicTest faces when ``FER2013_PATH`` is set (or
``data/fer2013/`` holds it), else the kit's synthetic faces. The Keras row is the model as the kit serves it
(:func:`course.serve.compiled_forward`: one ``tf.function``, no batch-norm folding). onnxruntime gets 2 threads;
the process is pinned to 2 cores where the machine has more. Each rate is the best of ``--rounds`` passes over
2,048 faces; one-face latency the median of 100 calls. Prints a table and writes
``benchmarks/results/export_parity.json``. Run it alone: other work on the CPU skews it.
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

CORES = 2
FORMATS = ("keras", "onnx", "savedmodel", "tfjs")


def pin_cores(cores: int = CORES) -> list[int]:
    """Run this process on its first ``cores`` CPUs (where the machine has more); returns the CPUs used."""
    if hasattr(os, "sched_getaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) > cores:
            os.sched_setaffinity(0, allowed[:cores])
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def measure(model_path: Path, label: str, faces: np.ndarray, source: str, folder: Path, rounds: int) -> list[dict]:
    """One row per format for the model in ``model_path``: parity against Keras, size, load time and speed."""
    from course import export
    from course.serve import compiled_forward

    start = time.perf_counter()
    model = export.load_for_export(model_path)
    keras_load = time.perf_counter() - start
    reference = export.keras_probabilities(model, faces)
    many = np.concatenate([faces] * -(-2048 // len(faces)))[:2048]
    rows = []
    for fmt in FORMATS:
        row = {"model": label, "format": fmt, "parameters": int(model.count_params())}
        try:
            if fmt == "keras":
                run, path, load = compiled_forward(model), model_path, keras_load
            else:
                path = folder / f"{model_path.stem}.onnx" if fmt == "onnx" else folder / f"{model_path.stem}_{fmt}"
                writer = {
                    "onnx": export.export_onnx,
                    "savedmodel": export.export_savedmodel,
                    "tfjs": export.export_tfjs,
                }
                start = time.perf_counter()
                writer[fmt](model, path)
                row["export_seconds"] = round(time.perf_counter() - start, 2)
                start = time.perf_counter()
                run = export.load_export(path, fmt, threads=CORES)
                load = time.perf_counter() - start
        except export.ExportUnavailable as err:
            rows.append({**row, "available": False, "why": str(err)})
            print(f"{label:<34}{fmt:<12}refused: {str(err)[:90]}…", flush=True)
            continue
        parity = export.check_parity(reference, run, faces, source)
        ms, rate = export.time_runner(run, many, batch=256, calls=100, passes=rounds)
        row.update(
            available=True,
            max_abs_diff=parity.max_abs_diff,
            argmax_agreement=parity.argmax_agreement,
            parity_passed=parity.passed,
            size_mb=round(export.size_on_disk(Path(path)) / 2**20, 3),
            load_seconds=round(load, 3),
            ms_per_face=round(ms, 3),
            faces_per_second=round(rate),
        )
        rows.append(row)
        print(
            f"{label:<34}{fmt:<12}{parity.max_abs_diff:>11.2e}{parity.argmax_agreement:>9.1%}{row['size_mb']:>9.2f}"
            f"{load * 1000:>9.0f}{ms:>10.2f}{rate:>11,.0f}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="a .keras file to measure (repeatable; default: see above)")
    parser.add_argument("--faces", type=int, default=256, help="faces of the parity check (default 256)")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes per rate (default 5)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cpus = pin_cores()

    import keras
    import onnxruntime
    import tf2onnx

    from course import export

    faces, source = export.parity_faces(args.faces)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.model:
            models = [(Path(m), Path(m).name) for m in args.model]
        else:
            from benchmarks.reference_model import saved_model_2
            from course.fallback_model import fallback_model_2

            models = [
                (fallback_model_2(), "fallback model_2 (trained)"),
                (saved_model_2(folder), "reference model_2 (untrained)"),
            ]
        print(f"{len(faces)} {source}; CPUs {cpus}\n")
        header = f"{'max |Δp|':>11}{'top =':>9}{'MB':>9}{'load ms':>9}{'ms/face':>10}{'faces/s':>11}"
        print(f"{'model':<34}{'format':<12}{header}")
        rows = [row for path, label in models for row in measure(path, label, faces, source, folder, args.rounds)]
    results = [
        {
            "step": f"{r['model']}: {r['format']}, batches of 256",
            "seconds": r["load_seconds"],
            "per_second": r["faces_per_second"],
            "unit": "faces/s",
            "note": f"largest Δp {r['max_abs_diff']:.1e}, top label {r['argmax_agreement']:.0%} the same, "
            f"{r['size_mb']:.2f} MB, one face {r['ms_per_face']:.2f} ms; seconds: load",
        }
        for r in rows
        if r["available"]
    ]
    refused = sorted({r["format"] for r in rows if not r["available"]})
    write_results(
        "export_parity",
        keras=keras.__version__,
        onnxruntime=onnxruntime.__version__,
        tf2onnx=tf2onnx.__version__,
        cpus=cpus,
        load_average=[round(v, 2) for v in os.getloadavg()],
        faces=len(faces),
        faces_source=source,
        tolerance=export.PARITY_TOLERANCE,
        rows=rows,
        results=results,
        note=f"not exported: {', '.join(refused)} ({export.TFJS_UNAVAILABLE.split(': ', 1)[1].split('. ')[0]})"
        if refused
        else "",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
