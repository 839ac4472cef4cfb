"""Benchmark: does alignment by the eyes help ``model_2`` on tilted faces? FER2013 PublicTest faces turned by known
angles, classified with and without :func:`data_loaders.alignment.align_face`.

Usage: ``.venv/bin/python -m benchmarks.alignment [--faces N]``
Prints a table and writes ``benchmarks/results/alignment.json``.

Faces: ``N`` (default 300) PublicTest rows drawn at random (seed 0) of the FER2013 the kit resolves
(``FER2013_PATH``; the result
says when that is the synthetic stand-in). Each 48×48 face is enlarged 4× (bicubic; MTCNN finds few landmarks on
48-pixel faces), given a 48-pixel border (edge repeated) and turned by 0°, ±15° and ±30° about its centre. *Not
aligned*: the centre of the turned image cropped back to the face's square and shrunk to 48×48 (what a perfect box
detector gives). *Aligned*: MTCNN's eye centres on the turned image, then :func:`~data_loaders.alignment.align_face`
(eyes level, placed as in FER2013); a face whose eyes MTCNN does not find is used not aligned, as
``load_personal(align=True)`` does. The model is the kit's fallback ``model_2``
(:func:`course.fallback_model.fallback_model_2`). The median eye positions on the unturned faces are the source of
:data:`~data_loaders.alignment.EYE_DISTANCE`, :data:`~data_loaders.alignment.EYE_X` and
:data:`~data_loaders.alignment.EYE_Y`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from benchmarks.results_file import fer2013_named, write_results

ANGLES = (0, 15, -15, 30, -30)
UP, PAD = 4, 48


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=300, help="PublicTest faces to use (default 300)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import cv2
    import keras

    from course.fallback_model import fallback_model_2
    from data_loaders import load_fer2013
    from data_loaders.alignment import align_face, find_eyes

    data = load_fer2013(usage="PublicTest")
    pick = np.sort(np.random.default_rng(0).permutation(len(data.labels))[: args.faces])  # rows may be sorted by label
    images, labels = data.images[pick], data.labels[pick]
    model_path = fallback_model_2(verbose=False)
    model = keras.models.load_model(model_path, compile=False)
    side = 48 * UP + 2 * PAD
    rows, medians = [], {}
    for theta in ANGLES:
        start = time.perf_counter()
        plain, aligned, found, corrected = [], [], 0, []
        eye_places = []
        for grey in images:
            big = cv2.copyMakeBorder(
                cv2.resize(grey, None, fx=UP, fy=UP, interpolation=cv2.INTER_CUBIC), PAD, PAD, PAD, PAD, 1
            )
            m = cv2.getRotationMatrix2D((side / 2, side / 2), theta, 1.0)
            turned = cv2.warpAffine(big, m, (side, side), borderMode=cv2.BORDER_REPLICATE)
            face = cv2.resize(turned[PAD:-PAD, PAD:-PAD], (48, 48), interpolation=cv2.INTER_AREA)
            plain.append(face)
            eyes = find_eyes(turned, source="mtcnn")
            if eyes is None:
                aligned.append(face)
                continue
            found += 1
            crop, angle = align_face(turned, eyes.left, eyes.right)
            aligned.append(crop)
            corrected.append(angle)
            if theta == 0:
                left, right = ((np.array(e) - PAD) / UP for e in (eyes.left, eyes.right))
                eye_places.append((np.hypot(*(right - left)) / 48, (left + right)[0] / 96, (left + right)[1] / 96))
        accuracy = {}
        for name, crops in (("not aligned", plain), ("aligned", aligned)):
            x = np.stack(crops)[..., None].astype("float32") / 255.0
            predicted = np.argmax(model.predict(x, verbose=0, batch_size=256), axis=1)
            accuracy[name] = float(np.mean(predicted == labels))
        rows.append(
            {
                "angle": theta,
                "faces": len(images),
                "eyes_found": found,
                "accuracy_not_aligned": accuracy["not aligned"],
                "accuracy_aligned": accuracy["aligned"],
                "median_correction_deg": float(np.median(corrected)) if corrected else None,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(rows[-1], flush=True)
        if eye_places:
            medians = dict(zip(("eye_distance", "eye_x", "eye_y"), np.median(np.array(eye_places), axis=0).tolist()))
    print(f"\n{data.description}\nmodel: {model_path.name} · {os.cpu_count()} CPU cores\n")
    print(f"{'turned':>7}{'eyes found':>12}{'not aligned':>13}{'aligned':>9}{'median correction':>19}")
    for r in rows:
        c = r["median_correction_deg"]
        print(
            f"{r['angle']:>6}°{r['eyes_found']:>7} / {r['faces']:<3}{r['accuracy_not_aligned']:>12.1%}"
            f"{r['accuracy_aligned']:>9.1%}{'' if c is None else f'{c:.1f}°':>19}"
        )
    print(f"\nmedian eye positions on the unturned faces (fractions of the side): {medians}")
    write_results(
        "alignment",
        data=fer2013_named(data),
        model=model_path.name,
        rows=rows,
        fer2013_eye_medians=medians,
        results=[
            {
                "step": f"turned {r['angle']}°",
                "seconds": r["seconds"],
                "note": f"eyes found {r['eyes_found']}/{r['faces']} · accuracy not aligned "
                f"{r['accuracy_not_aligned']:.1%} · aligned {r['accuracy_aligned']:.1%}",
            }
            for r in rows
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
