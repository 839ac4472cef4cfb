"""Benchmark: face detection recall and false positives, the single Haar cascade vs the kit's detector.

Usage: ``.venv/bin/python -m benchmarks.face_detection``
Prints a table and writes ``benchmarks/results/face_detection.json``.

Images that can be shipped: scikit-image's ``lfw_subset`` (100 face crops from Labeled Faces in the Wild and 100
non-face crops, 25×25 grayscale; Huang et al. 2007) and ``astronaut`` (Eileen Collins, NASA, public domain; one
face). The 25×25 crops are enlarged 4× (bicubic) and then shown as they are (tightly cropped, the hard case for a
cascade), dimmed to low contrast, lit from one side, rotated 15°, and placed at half size in a bigger scene.
Every condition is applied alike to faces and non-faces. Recall: faces with a box found; false positives:
non-face crops with a box found (and extra boxes on the astronaut photo). Times are per image on this machine.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from benchmarks.results_file import parse_no_options, write_results


def _conditions() -> dict[str, callable]:
    import cv2

    def tight(g):
        return cv2.resize(g, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)

    def dim(g):
        return (tight(g).astype(np.float32) * 0.3 + 20).astype(np.uint8)

    def side_light(g):
        ramp = np.linspace(0.15, 1.0, 100, dtype=np.float32)[None, :]
        return (tight(g).astype(np.float32) * ramp).astype(np.uint8)

    def rotated(g):
        big = tight(g)
        m = cv2.getRotationMatrix2D((50, 50), 15, 1.0)
        return cv2.warpAffine(big, m, (100, 100), borderMode=cv2.BORDER_REFLECT)

    def in_scene(g):
        scene = np.full((240, 320), 110, np.uint8)
        scene[95:145, 180:230] = cv2.resize(g, (50, 50), interpolation=cv2.INTER_CUBIC)
        return scene

    return {
        "tight crop, 100×100": tight,
        "dim, low contrast": dim,
        "lit from one side": side_light,
        "rotated 15°": rotated,
        "50 px face in a 320×240 scene": in_scene,
    }


def _evaluate(detect, images: list[np.ndarray]) -> tuple[int, float]:
    start = time.perf_counter()
    found = sum(detect(g) is not None for g in images)
    return found, (time.perf_counter() - start) / len(images) * 1000


def main(argv: list[str] | None = None) -> int:
    parse_no_options(__doc__, argv)
    from skimage import data

    from data_loaders.face_detection import detect_faces, largest_face, single_cascade_face
    from data_loaders.personal import astronaut_photo, read_grayscale

    crops = np.clip(np.rint(data.lfw_subset() * 255), 0, 255).astype(np.uint8)
    faces, others = crops[:100], crops[100:]
    detectors = {"single cascade (before)": single_cascade_face, "kit detector (now)": largest_face}
    rows = []
    for condition, make in _conditions().items():
        face_images, other_images = [make(g) for g in faces], [make(g) for g in others]
        for name, detect in detectors.items():
            hits, ms_faces = _evaluate(detect, face_images)
            false, ms_others = _evaluate(detect, other_images)
            rows.append(
                {
                    "condition": condition,
                    "detector": name,
                    "recall": hits / len(faces),
                    "false_positives": false / len(others),
                    "ms_per_image": round((ms_faces + ms_others) / 2, 1),
                }
            )
    astronaut = read_grayscale(astronaut_photo())
    start = time.perf_counter()
    boxes_now = detect_faces(astronaut)
    ms_now = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    before = single_cascade_face(astronaut)
    ms_before = (time.perf_counter() - start) * 1000
    astro = {
        "before": {"found": before is not None, "ms": round(ms_before, 1)},
        "now": {
            "found": len(boxes_now) > 0,
            "boxes": len(boxes_now),
            "box": [int(v) for v in boxes_now[0]] if len(boxes_now) else None,
            "ms": round(ms_now, 1),
        },
    }

    print(f"Face detection on lfw_subset (100 faces, 100 non-faces) · {os.cpu_count()} CPU cores\n")
    print(f"{'condition':<32}{'detector':<26}{'recall':>8}{'false pos.':>12}{'ms/image':>10}")
    for r in rows:
        print(
            f"{r['condition']:<32}{r['detector']:<26}{r['recall']:>8.0%}{r['false_positives']:>12.0%}"
            f"{r['ms_per_image']:>10.1f}"
        )
    print(
        f"\nastronaut (512×512, one face): before found={before is not None} ({ms_before:.0f} ms); now "
        f"{len(boxes_now)} box(es) {astro['now']['box']} ({ms_now:.0f} ms)"
    )
    mean = {d: float(np.mean([r["recall"] for r in rows if r["detector"] == d])) for d in detectors}
    fp = {d: float(np.mean([r["false_positives"] for r in rows if r["detector"] == d])) for d in detectors}
    results = [
        {
            "step": f"{r['condition']}: {r['detector']}",
            "seconds": None,
            "note": f"recall {r['recall']:.0%} · false positives {r['false_positives']:.0%} · "
            f"{r['ms_per_image']:.1f} ms/image",
        }
        for r in rows
    ]
    results.append(
        {
            "step": "astronaut (512×512, one face)",
            "seconds": None,
            "note": f"before: found {before is not None}, {ms_before:.0f} ms · now: {len(boxes_now)} box, "
            f"{ms_now:.0f} ms",
        }
    )
    write_results(
        "face_detection",
        rows=rows,
        astronaut=astro,
        mean_recall=mean,
        mean_false_positives=fp,
        results=results,
        note="recall over all conditions: "
        + ", ".join(f"{d} {mean[d]:.0%} (false positives {fp[d]:.0%})" for d in detectors),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
