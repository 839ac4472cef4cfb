"""Benchmark: face detection recall, false positives and time: the single Haar cascade, the kit's Haar vote, MTCNN.

Usage: ``.venv/bin/python -m benchmarks.face_detection [--faces N]`` (N lfw_subset faces and N non-face crops per
condition, default 100)
Prints a table and writes ``benchmarks/results/face_detection.json``.

Images that can be shipped: scikit-image's ``lfw_subset`` (100 face crops from Labeled Faces in the Wild and 100
non-face crops, 25×25 grayscale; Huang et al. 2007), ``astronaut`` (Eileen Collins, NASA, public domain; one face)
and scikit-image's photos without a face (coffee, a cat, a rocket, coins, textures, text, the moon, …). The 25×25
crops are enlarged 4× (bicubic) and shown tightly cropped (the hard case for a cascade), dimmed to low contrast,
lit from one side, placed in a 320×240 frame (at 100 px, and small: 40, 32 and 24 px) and rotated by ±15° and ±30°
in a 200×200 frame. Every condition is applied alike to faces and non-face crops. Recall: faces with a box whose
centre lies on the face; false positives: non-face crops with any box (and boxes on the photos without a face).
MTCNN is the ``mtcnn`` package (skipped when it is not installed); its first call (TensorFlow) is not timed.
Times are per image on this machine.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from benchmarks.results_file import write_results

NON_FACE_PHOTOS = (
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "brick",
    "grass",
    "gravel",
    "text",
    "page",
    "horse",
    "moon",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "logo",
)


def _conditions() -> dict[str, callable]:
    """name → make(crop uint8 (25, 25)) → (image, face box (x, y, w, h) in it)."""
    import cv2

    def tight(g):
        return cv2.resize(g, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC), (0, 0, 100, 100)

    def dim(g):
        return (tight(g)[0].astype(np.float32) * 0.3 + 20).astype(np.uint8), (0, 0, 100, 100)

    def side_light(g):
        ramp = np.linspace(0.15, 1.0, 100, dtype=np.float32)[None, :]
        return (tight(g)[0].astype(np.float32) * ramp).astype(np.uint8), (0, 0, 100, 100)

    def in_frame(side):
        def make(g):
            scene = np.full((240, 320), 110, np.uint8)
            x, y = 180, 120 - side // 2
            scene[y : y + side, x : x + side] = cv2.resize(g, (side, side), interpolation=cv2.INTER_CUBIC)
            return scene, (x, y, side, side)

        return make

    def rotated(angle):
        def make(g):
            big = cv2.copyMakeBorder(tight(g)[0], 50, 50, 50, 50, cv2.BORDER_REPLICATE)
            m = cv2.getRotationMatrix2D((100, 100), angle, 1.0)
            return cv2.warpAffine(big, m, (200, 200), borderMode=cv2.BORDER_REPLICATE), (50, 50, 100, 100)

        return make

    return {
        "tight crop, 100×100": tight,
        "dim, low contrast": dim,
        "lit from one side": side_light,
        "100 px face, 320×240 frame": in_frame(100),
        "40 px face, 320×240 frame": in_frame(40),
        "32 px face, 320×240 frame": in_frame(32),
        "24 px face, 320×240 frame": in_frame(24),
        "rotated +15°": rotated(15),
        "rotated -15°": rotated(-15),
        "rotated +30°": rotated(30),
        "rotated -30°": rotated(-30),
    }


def _hit(boxes: np.ndarray, face: tuple[int, int, int, int]) -> bool:
    x, y, w, h = face
    return any(x <= bx + bw / 2 <= x + w and y <= by + bh / 2 <= y + h for bx, by, bw, bh in boxes)


def _detectors() -> dict[str, callable]:
    """name → detect(image) → boxes int (K, 4)."""
    from data_loaders.face_detection import detect_faces, mtcnn_available, single_cascade_face

    def single(g):
        box = single_cascade_face(g)
        return np.zeros((0, 4)) if box is None else np.array([box])

    found = {"single cascade": single, "Haar vote (kit)": detect_faces}
    if mtcnn_available():
        found["MTCNN"] = lambda g: detect_faces(g, method="mtcnn")
    return found


def non_face_photos() -> dict[str, np.ndarray]:
    import cv2
    from skimage import data, img_as_ubyte

    photos = {}
    for name in NON_FACE_PHOTOS:
        image = getattr(data, name)()
        if image.ndim == 3:
            image = cv2.cvtColor(img_as_ubyte(image[..., :3]), cv2.COLOR_RGB2GRAY)
        photos[name] = img_as_ubyte(image) if image.dtype != np.uint8 else image
    return photos


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=100, help="faces and non-face crops per condition (≤ 100)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from skimage import data

    from data_loaders.face_detection import mtcnn_available
    from data_loaders.personal import astronaut_photo, read_grayscale

    crops = np.clip(np.rint(data.lfw_subset() * 255), 0, 255).astype(np.uint8)
    faces, others = crops[: min(100, args.faces)], crops[100 : 100 + min(100, args.faces)]
    detectors = _detectors()
    if mtcnn_available():
        detectors["MTCNN"](np.zeros((100, 100), np.uint8))  # TensorFlow's import and first call, not timed
    rows = []
    for condition, make in _conditions().items():
        face_images, other_images = [make(g) for g in faces], [make(g)[0] for g in others]
        for name, detect in detectors.items():
            start = time.perf_counter()
            hits = sum(_hit(detect(image), box) for image, box in face_images)
            false = sum(len(detect(image)) > 0 for image in other_images)
            ms = (time.perf_counter() - start) / (len(face_images) + len(other_images)) * 1000
            rows.append(
                {
                    "condition": condition,
                    "detector": name,
                    "recall": hits / len(faces),
                    "false_positives": false / len(others),
                    "ms_per_image": round(ms, 1),
                }
            )
            print(f"{condition:<30}{name:<18}{hits / len(faces):>7.0%}{false / len(others):>7.0%}{ms:>8.1f} ms")
    photos = non_face_photos()
    photo_rows = []
    for name, detect in detectors.items():
        start = time.perf_counter()
        boxes = {photo: len(detect(image)) for photo, image in photos.items()}
        ms = (time.perf_counter() - start) / len(photos) * 1000
        photo_rows.append(
            {
                "detector": name,
                "photos_with_a_box": sum(v > 0 for v in boxes.values()),
                "boxes": sum(boxes.values()),
                "per_photo": boxes,
                "ms_per_image": round(ms, 1),
            }
        )
    astronaut = read_grayscale(astronaut_photo())
    astro = {}
    for name, detect in detectors.items():
        start = time.perf_counter()
        boxes = detect(astronaut)
        astro[name] = {
            "boxes": [[int(v) for v in b] for b in boxes],
            "found": _hit(boxes, (170, 60, 110, 110)),
            "ms": round((time.perf_counter() - start) * 1000, 1),
        }

    print(f"\nlfw_subset: {len(faces)} faces, {len(others)} non-face crops per condition · {os.cpu_count()} cores\n")
    print(f"{'condition':<30}{'detector':<18}{'recall':>8}{'false pos.':>12}{'ms/image':>10}")
    for r in rows:
        print(
            f"{r['condition']:<30}{r['detector']:<18}{r['recall']:>8.0%}{r['false_positives']:>12.0%}"
            f"{r['ms_per_image']:>10.1f}"
        )
    mean = {d: float(np.mean([r["recall"] for r in rows if r["detector"] == d])) for d in detectors}
    fp = {d: float(np.mean([r["false_positives"] for r in rows if r["detector"] == d])) for d in detectors}
    ms = {d: float(np.mean([r["ms_per_image"] for r in rows if r["detector"] == d])) for d in detectors}
    print(f"\n{'mean over conditions':<30}")
    for d in detectors:
        print(f"{'':<30}{d:<18}{mean[d]:>8.0%}{fp[d]:>12.0%}{ms[d]:>10.1f}")
    print(f"\n{len(photos)} scikit-image photos without a face (512-ish px):")
    for r in photo_rows:
        print(
            f"  {r['detector']:<18} {r['photos_with_a_box']} photos with a box ({r['boxes']} boxes), "
            f"{r['ms_per_image']:.0f} ms/photo"
        )
    print("astronaut (512×512, one face):")
    for name, a in astro.items():
        print(f"  {name:<18} found={a['found']} boxes={a['boxes']} ({a['ms']:.0f} ms)")
    results = [
        {
            "step": f"{r['condition']}: {r['detector']}",
            "seconds": None,
            "note": f"recall {r['recall']:.0%} · false positives {r['false_positives']:.0%} · "
            f"{r['ms_per_image']:.1f} ms/image",
        }
        for r in rows
    ]
    results += [
        {
            "step": f"{len(photos)} photos without a face: {r['detector']}",
            "seconds": None,
            "note": f"{r['photos_with_a_box']} photos with a box · {r['ms_per_image']:.0f} ms/photo",
        }
        for r in photo_rows
    ]
    write_results(
        "face_detection",
        rows=rows,
        non_face_photos=photo_rows,
        astronaut=astro,
        mean_recall=mean,
        mean_false_positives=fp,
        mean_ms_per_image=ms,
        results=results,
        note="mean over conditions: "
        + ", ".join(f"{d} recall {mean[d]:.0%}, false positives {fp[d]:.0%}, {ms[d]:.0f} ms/image" for d in detectors),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
