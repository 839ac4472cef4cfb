"""Benchmark: assignment 6's race at full length: AlexNet-, VGG-, ResNet- and MobileNet-style networks at 48×48,
each trained for the same wall-clock budget (default 30 minutes), then test accuracy, macro-F1, faces/s and
parameters.

Usage: ``.venv/bin/python -m benchmarks.architectures [--minutes 30] [--train-limit N] [--out FILE]``

The networks are the solution notebook's own (``course.notebook_cells.run_solution_cells("architectures")``: the
two given builders and the reference ResNet- and MobileNet-style answers), trained as the notebook's locked race
cell trains them, with its locked tools (``TimeBudget``: a Keras callback that stops after the first batch ending
past the budget; ``faces_per_second``: batches of 256 after a warm-up call): from the same seed, on the same
FER2013 ``Training`` faces (the synthetic faces unless ``FER2013_PATH`` is set; ``fer2013_splits``, as in
assignment 1), Adam 0.001, batches of 64 (budgets under 10 s train eagerly, as in the notebook). Then each is
measured on the test set (``PublicTest``): accuracy, macro-F1, inference faces/s and parameters. Four networks ×
30 minutes is two hours: run it alone. A run with a budget under 5 minutes is labelled a smoke run in its results
(it checks the script, it compares nothing). Prints a table and writes ``benchmarks/results/architectures.json``
(or ``--out``; the committed 5-minute race is ``architectures_5min.json``).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from benchmarks.results_file import fer2013_named, write_results

NETWORKS = {
    "AlexNet-style": "build_alexnet_style",
    "VGG-style": "build_vgg_style",
    "ResNet-style": "build_resnet_style",
    "MobileNet-style": "build_mobilenet_style",
}
SEED = 6835
SMOKE_MINUTES = 5


def race(ns: dict, data, seconds: float, train_limit: int | None) -> list[dict]:
    """Train each network for ``seconds`` of wall-clock time and measure it: the notebook's race at any length, with
    its networks and its tools (``TimeBudget``, ``faces_per_second``) from the namespace ``ns`` of its cells."""
    import keras
    from sklearn.metrics import f1_score

    from data_loaders import fer2013_splits

    builders = {name: ns[function] for name, function in NETWORKS.items()}
    splits = fer2013_splits(data, seed=SEED)
    train = splits.train.sample(train_limit, seed=SEED)
    x, y = train.images[..., None].astype("float32") / 255.0, train.labels
    x_test, y_test = splits.test.images[..., None].astype("float32") / 255.0, splits.test.labels
    rows = []
    for name, builder in builders.items():
        keras.utils.set_random_seed(SEED)
        net = builder()
        net.compile(
            keras.optimizers.Adam(1e-3),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=False,
            run_eagerly=seconds < 10,
        )
        budget = ns["TimeBudget"](seconds)
        net.fit(x, y, batch_size=64, epochs=100_000, verbose=0, callbacks=[budget])
        probs, speed = ns["faces_per_second"](net, x_test)
        predicted = probs.argmax(axis=1)
        rows.append(
            {
                "network": name,
                "accuracy": round(float(np.mean(predicted == y_test)), 4),
                "macro_f1": round(float(f1_score(y_test, predicted, average="macro", zero_division=0)), 4),
                "faces_per_second": round(speed),
                "parameters": int(net.count_params()),
                "train_seconds": round(budget.elapsed, 1),
                "faces_seen": budget.batches * 64,
                "epochs": round(budget.batches * 64 / len(x), 2),
            }
        )
        print(
            f"{name:<16} {rows[-1]['accuracy']:>8.2%} {rows[-1]['macro_f1']:>8.3f} {rows[-1]['faces_per_second']:>9,} "
            f"{rows[-1]['parameters']:>11,} {rows[-1]['train_seconds']:>8.1f} {rows[-1]['epochs']:>7}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget per network (default 30)")
    parser.add_argument("--train-limit", type=int, default=None, help="training faces used (default: all)")
    parser.add_argument("--out", default=None, help="the JSON to write (default benchmarks/results/architectures.json)")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras

    from course.notebook_cells import run_solution_cells
    from data_loaders import load_fer2013

    ns = run_solution_cells("architectures", {"__name__": "benchmark", "SEED": SEED, "print": lambda *a, **k: None})
    data = load_fer2013()
    print(f"{len(NETWORKS)} networks × {args.minutes:g} min on {data.description[:80]}")
    print(
        f"{'network':<16} {'accuracy':>8} {'macro-F1':>8} {'faces/s':>9} {'parameters':>11} "
        f"{'train s':>8} {'epochs':>7}"
    )
    rows = race(ns, data, 60 * args.minutes, args.train_limit)
    smoke = args.minutes < SMOKE_MINUTES
    write_results(
        "architectures",
        args.out,
        keras=keras.__version__,
        data=fer2013_named(data),
        budget_minutes=args.minutes,
        smoke_run=smoke,
        results=[
            {
                "step": f"{r['network']}: {args.minutes:g} min, {r['epochs']} epochs",
                "seconds": r["train_seconds"],
                "note": f"accuracy {r['accuracy']:.2%}, macro-F1 {r['macro_f1']:.3f}, {r['faces_per_second']:,} "
                f"faces/s, {r['parameters']:,} parameters",
            }
            for r in rows
        ],
        networks=rows,
        **(
            {"note": f"smoke run ({args.minutes:g} min per network): it checks the script, it compares nothing"}
            if smoke
            else {}
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
