"""Benchmark the AU assignment's reference solution: per-AU F1 and valence/arousal CCC on the synthetic test split,
and the training time of each model.

Usage: ``.venv/bin/python -m benchmarks.action_units [--epochs N] [--va-epochs N]`` (default: the notebook's
``AU_EPOCHS`` and ``VA_EPOCHS``). Runs the solution notebook's own functions (``build_au_cnn``,
``build_au_transfer``, ``pick_thresholds``, ``per_au_f1``, ``ccc``, ``build_va_model``, ``fit_au_to_emotion``)
on the synthetic default: all ``Training`` faces (a fifth for validation, stratified by emotion, as in the
notebook), tested on ``PublicTest``. The transfer detector starts from the kit's fallback ``model_2`` (what
the grader uses); the valence/arousal head sits on the better detector, as in the notebook. Prints a table and
writes ``benchmarks/results/action_units.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

import numpy as np

from benchmarks.results_file import write_results
from course.notebook_cells import run_solution_cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="AU detector epochs (default: AU_EPOCHS)")
    parser.add_argument("--va-epochs", type=int, default=None, help="valence/arousal epochs (default: VA_EPOCHS)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from sklearn.model_selection import train_test_split

    from course.fallback_model import fallback_model_2
    from data_loaders import load_action_units

    data = load_action_units("synthetic")
    ns = run_solution_cells("action_units", {"__name__": "solution", "SEED": 6835, "AU_NAMES": data.au_names})
    keras = ns["keras"]
    epochs = args.epochs or ns["AU_EPOCHS"]
    va_epochs = args.va_epochs or ns["VA_EPOCHS"]
    train_all, test = data.subset("Training"), data.subset("PublicTest")
    tr, val = train_test_split(np.arange(len(train_all)), test_size=0.2, random_state=6835, stratify=train_all.labels)
    train, valid = train_all.select(tr), train_all.select(val)
    x = {
        name: d.images[..., None].astype("float32") / 255.0
        for name, d in (("train", train), ("val", valid), ("test", test))
    }
    y = {name: d.presence.astype("float32") for name, d in (("train", train), ("val", valid), ("test", test))}
    model_2 = keras.models.load_model(fallback_model_2(), compile=False)

    rows, per_au, detectors, val_f1 = [], {}, {}, {}
    for name, build in (
        ("CNN from scratch", lambda: ns["build_au_cnn"](len(data.au_names))),
        ("fallback model_2 base, frozen", lambda: ns["build_au_transfer"](model_2, len(data.au_names))),
    ):
        keras.utils.set_random_seed(6835)
        model = build()
        start = time.perf_counter()
        model.fit(x["train"], y["train"], epochs=epochs, batch_size=32, verbose=0)
        seconds = time.perf_counter() - start
        val_probs = model.predict(x["val"], verbose=0)
        thresholds = ns["pick_thresholds"](y["val"], val_probs)
        detectors[name] = model
        val_f1[name] = float(ns["per_au_f1"](y["val"], val_probs >= thresholds).mean())
        f1 = ns["per_au_f1"](y["test"], model.predict(x["test"], verbose=0) >= thresholds)
        per_au[name] = {au: round(float(v), 3) for au, v in f1.items()}
        rows.append(
            {
                "step": f"AU detector, {name}: {epochs} epochs on {len(train):,} faces, batch 32 "
                f"({model.count_params():,} weights)",
                "seconds": round(seconds, 1),
                "note": f"PublicTest macro-F1 {f1.mean():.3f} (tuned thresholds); "
                + ", ".join(f"{au} {v:.2f}" for au, v in f1.items()),
            }
        )

    best = max(val_f1, key=val_f1.get)  # as the notebook does: the better detector becomes model_5
    keras.utils.set_random_seed(6835)
    va = ns["build_va_model"](detectors[best])
    targets = {n: np.stack([d.valence, d.arousal], 1) for n, d in (("train", train), ("test", test))}
    start = time.perf_counter()
    va.fit(x["train"], targets["train"], epochs=va_epochs, batch_size=32, verbose=0)
    seconds = time.perf_counter() - start
    pred = va.predict(x["test"], verbose=0)
    ccc_v, ccc_a = ns["ccc"](test.valence, pred[:, 0]), ns["ccc"](test.arousal, pred[:, 1])
    rows.append(
        {
            "step": f"valence/arousal head on the frozen AU detector ({best}): {va_epochs} epochs, MSE",
            "seconds": round(seconds, 1),
            "note": f"PublicTest CCC valence {ccc_v:.3f}, arousal {ccc_a:.3f}",
        }
    )

    clf = ns["fit_au_to_emotion"](valid.intensity / 5, valid.labels)
    oracle = float(np.mean(clf.predict(test.intensity / 5) == test.labels))
    cnn = float(np.mean(model_2.predict(x["test"], verbose=0).argmax(1) == test.labels))
    rows.append(
        {
            "step": "emotion from the true AU intensities (logistic regression) vs the fallback model_2 CNN",
            "seconds": 0.0,
            "note": f"accuracy {oracle:.1%} vs {cnn:.1%} on PublicTest",
        }
    )

    print(f"AU assignment · {os.cpu_count()} CPU cores · {data.description[:80]}\n")
    for r in rows:
        print(f"{r['step']}\n    {r['seconds']:.1f} s · {r['note']}")
    described = re.sub(r", from [^)]*", "", data.description)  # the data by what it holds, not where it lies
    write_results(
        "action_units",
        keras=keras.__version__,
        data=described,
        per_au_f1=per_au,
        ccc={"valence": round(ccc_v, 3), "arousal": round(ccc_a, 3)},
        results=rows,
        note="measured while other jobs shared the 2 cores (see the load average in the report); "
        "training times on an idle machine are shorter",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
