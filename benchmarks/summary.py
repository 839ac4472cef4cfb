"""Collect every benchmark's JSON (``benchmarks/results/*.json``) into one table: ``benchmarks/README.md``.

Usage: ``.venv/bin/python -m benchmarks.summary`` after running the benchmarks you want in the table
(``fer2013_loading.py``, ``synthetic_generation.py``, ``iphonex_3d.py``). Result files are committed; a benchmark
whose result file is absent keeps the section it has on the page.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.results_file import RESULTS, parse_no_options

HERE = Path(__file__).resolve().parent
SCRIPTS = {
    "fer2013_accuracy": (
        "FER2013 accuracy per CPU-minute: reference model_2 vs the mini-Xception peer",
        "fer2013_accuracy.py --minutes 30 --baseline-epochs 0",
    ),
    "fer2013_accuracy_avx2": (
        "FER2013 accuracy per CPU-minute with oneDNN limited to AVX2 (the laptop case): reference model_2",
        "ONEDNN_MAX_CPU_ISA=AVX2 fer2013_accuracy.py --minutes 30 --baseline-epochs 0 "
        "--out benchmarks/results/fer2013_accuracy_avx2.json",
    ),
    "fer2013_loading": ("FER2013 loading: first parse vs cached (goal: cached ≤ 3 s)", "fer2013_loading.py"),
    "model_contamination": (
        "Contaminated models: PrivateTest − PublicTest gap of honest models and of models trained on the graded faces",
        "model_contamination.py",
    ),
    "synthetic_generation": (
        "Synthetic FACS faces: 1,000 subjects × 7 in 3D + 30,000 images in 2D (goal ≤ 60 s)",
        "synthetic_generation.py",
    ),
    "iphonex_3d": (
        "3D assignment: voxelization (goal ≥ 20,000 clouds/s), viewer payload, Conv3D epoch",
        "iphonex_3d.py",
    ),
    "inference_speed": (
        "Inference: reference model_2 at 48×48, faces/s in batches (goal ≥ 2,000) and one face",
        "inference_speed.py",
    ),
    "autograde_class": (
        "Autograding: one submission of each assignment (goal ≤ 120 s) and a class of 30",
        "autograde_class.py",
    ),
    "serve_load": (
        "REST service on 127.0.0.1: one face per request (goal ≥ 200 requests/s, p95 ≤ 20 ms on 2 cores) and photos",
        "serve_load.py",
    ),
    "export_parity": (
        "Exports: a model_2-like network as ONNX and SavedModel against Keras (goal max |Δp| ≤ 1e-4), size, "
        "load time, speed",
        "export_parity.py",
    ),
    "parallel_autograde": (
        "Parallel autograding: a class of 60 with --jobs 1 vs 2, sandbox off vs on",
        "parallel_autograde.py",
    ),
    "install_size": ("Set-up: a fresh virtual environment, default packages vs the CPU-only builds", "install_size.py"),
    "live_webcam": (
        "Live webcam: frame → bars in JupyterLab + Chromium (goal ≥ 15 frames/s, ≤ 100 ms)",
        "live_webcam.py",
    ),
    "alignment": (
        "Alignment by the eyes: FER2013 PublicTest faces turned 0°, ±15°, ±30°, the fallback model_2 with and "
        "without align_face",
        "alignment.py",
    ),
    "face_detection": (
        "Face detection: recall and false positives on lfw_subset, single cascade vs the kit's detector",
        "face_detection.py",
    ),
    "video_analysis": (
        "Video: rendering the synthetic clip, analyze_video frames/s, the annotated MP4",
        "video_analysis.py",
    ),
    "action_units": (
        "AU assignment: per-AU F1 and valence/arousal CCC of the reference solution (synthetic "
        "PublicTest), training time",
        "action_units.py",
    ),
    "gradcam_view": (
        "Grad-CAM widget: kernel milliseconds per face shown, 7 maps (goal ≤ 50 ms on 2 cores)",
        "gradcam_view.py",
    ),
    "architectures": (
        "Assignment 6's race: AlexNet-, VGG-, ResNet-, MobileNet-style at 48×48, the same minutes each",
        "architectures.py",
    ),
    "architectures_5min": (
        "Assignment 6's race, 5 minutes a network (a shorter run of the same benchmark: ``--minutes 5``)",
        "architectures.py --minutes 5 --out benchmarks/results/architectures_5min.json",
    ),
}


def _command(script: str) -> str:
    """The command line that writes a section's result file, as the page shows it: ``script`` is the script's file
    name with the options (and any environment variables before it) that section was run with."""
    words = script.split()
    at = next(i for i, w in enumerate(words) if w.endswith(".py"))
    module = f"benchmarks.{words[at].removesuffix('.py')}"
    return "`" + " ".join([*words[:at], ".venv/bin/python", "-m", module, *words[at + 1 :]]) + "`"


def _rate(row: dict) -> str:
    parts = []
    if "per_second" in row:
        parts.append(f"{row['per_second']:,} {row.get('unit', '/s')}")
    elif "rows" in row:
        parts.append(f"{row['rows']:,} rows")
    if "peak_mb" in row:
        parts.append(f"peak {row['peak_mb']:,} MB")
    if row.get("note"):
        parts.append(row["note"])
    return " · ".join(parts)


def _accuracy_table(data: dict) -> list[str]:
    batch = f", batch {data['batch_size']}" if "batch_size" in data else ""
    speed = data.get("host_speed")
    host = (
        f"; host speed: matmul {speed['matmul_gflops']:,} GFLOP/s, Conv2D {speed['conv2d_gflops']:,} GFLOP/s"
        if speed
        else ""
    )
    lines = [
        f"{data['cpu_count']} CPU cores, Keras {data['keras']}, budget {data['budget_minutes']:g} min "
        f"({data['epochs']} epochs{batch}); data: {data['data'][:100]}{host}"
        + (f"; trained in {data['training_dtype']}" if "training_dtype" in data else "")
        + (f" (oneDNN limited to {data['onednn_max_cpu_isa']})" if "onednn_max_cpu_isa" in data else "")
        + (f"; faces/s folded, in {data['inference_dtype']}" if "inference_dtype" in data else ""),
        "",
        "| model | PublicTest accuracy | macro-F1 | parameters | MB | training min | faces/s | ms/face |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in data["models"]:
        minutes = "–" if m["train_minutes"] is None else f"{m['train_minutes']:.1f}"
        lines.append(
            f"| {m['model']} | {m['accuracy']:.2%} | {m['macro_f1']:.3f} | {m['parameters']:,} | "
            f"{m['size_mb']:.1f} | {minutes} | {m['faces_per_second']:,} | {m['latency_ms']:.1f} |"
        )
    lines += [
        "",
        "model_2 after "
        + ", ".join(
            f"{c['minutes']:g} min: {c['accuracy']:.2%}"
            + (f" ({c['accuracy_flip_tta']:.2%} with flip TTA)" if "accuracy_flip_tta" in c else "")
            for c in data["checkpoints"]
        ),
        "",
    ]
    if any("accuracy_statistics_reestimated" in c for c in data["checkpoints"]):
        lines += [
            "model_2 with its batch-norm statistics re-estimated over real Training faces, as the end of a run "
            "sets them: "
            + ", ".join(
                f"{c['minutes']:g} min: {c['accuracy_statistics_reestimated']:.2%}"
                for c in data["checkpoints"]
                if "accuracy_statistics_reestimated" in c
            ),
            "",
        ]
    if data.get("per_epoch"):
        lines += [
            "model_2 per epoch (PublicTest): "
            + ", ".join(f"{e['epoch']}: {e['accuracy']:.2%} ({e['minutes']:.0f} min)" for e in data["per_epoch"]),
            "",
        ]
    return lines


def _steps_table(data: dict) -> list[str]:
    lines = [
        f"{data.get('cpu_count', '?')} CPU cores, Python {data.get('python', '?')}"
        + (f", Keras {data['keras']}" if "keras" in data else ""),
        "",
        "| step | seconds | rate / size |",
        "|---|---:|---:|",
    ]
    for row in data["results"]:
        seconds = f"{row['seconds']:.2f}" if row.get("seconds") else "–"
        lines.append(f"| {row['step']} | {seconds} | {_rate(row)} |")
    return lines + [""]


def _sections_now(page: Path) -> dict[str, list[str]]:
    """The body of each ``## title`` section of the page as it is now (title → lines after the heading)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in page.read_text().splitlines() if page.is_file() else []:
        if line.startswith("## "):
            current = sections.setdefault(line[3:], [])
        elif current is not None:
            current.append(line)
    return sections


NOT_RUN = "*(not run yet on this machine)*"


def render(page: Path | None = None) -> str:
    """The page, from ``results/*.json``; a benchmark without a result file keeps its section of ``page``."""
    kept = _sections_now(page or HERE / "README.md")
    lines = [
        "# Benchmarks",
        "",
        "Scripts here print a table and write JSON to `results/`; `summary.py` rebuilds this page from those",
        "files (a benchmark with no result file here keeps its section as it was). Timings are measurements on",
        "the machine named in each section, never test assertions.",
        "",
    ]
    for name, (title, script) in SCRIPTS.items():
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            body = kept.get(title, [])
            if any(line.strip() and line.strip() != NOT_RUN for line in body[3:]):
                lines += [f"## {title}", *body]
            else:
                lines += [f"## {title}", "", _command(script), "", NOT_RUN, ""]
            continue
        lines += [f"## {title}", "", _command(script), ""]
        data = json.loads(path.read_text())
        if name.startswith("fer2013_accuracy"):
            lines += _accuracy_table(data)
        else:
            lines += _steps_table(data)
        if data.get("note"):
            lines += [f"Note: {data['note']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parse_no_options(__doc__, argv)
    out = HERE / "README.md"
    out.write_text(render())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
