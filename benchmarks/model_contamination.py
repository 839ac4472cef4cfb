"""Benchmark: the PrivateTest − PublicTest accuracy gap of honest FER2013 models, and of models trained on the faces
they are graded on: the numbers behind the contamination flag of ``course.model_scoring``.

Usage::

    FER2013_PATH=../shared/data/fer2013/fer2013.csv.gz .venv/bin/python -m benchmarks.model_contamination \
        [--model-2-epochs 10] [--long-epochs 20] [--finetune 2x1e-4,10x1e-3] [--models DIR]

Kaggle's ``fer2013.csv`` labels ``PrivateTest``, the faces ps1 grades a handed-in ``model_2`` on, so a model can
be trained on them. The shared FER2013 copy has ``Training`` and ``PublicTest`` only, so two disjoint, stratified
hold-outs of 3,589 ``Training`` faces each (as many as ``PrivateTest`` has), A and B, drawn among the faces the
kit's fallback model never saw, stand in for unseen test sets; no model here trains on B, and only the
contaminated ones train on A (A plays the ``PrivateTest`` they were trained on). Every model is scored by the
separate scorer's own code (``course.model_scoring.load_submitted_model`` and ``measure_fer_accuracy``), and the
flag's rule (``contamination_reason``) says whether the A − PublicTest gap would be flagged. Models:

- honest: the kit's fallback ``model_2`` (``course.fallback_model``: 8,000 Training faces, 5 epochs); the fallback
  recipe (``course.fallback_training.train_fallback_model_2``) on Training outside A and B, 5 and ``--long-epochs``
  epochs; the solution notebook's ``build_model_2`` trained ``--model-2-epochs`` epochs on Training outside A and
  B, as the notebook trains it (batches of 64, its own schedule and augmentation). For each, three honest gaps:
  A − PublicTest, B − PublicTest and A − B;
- contaminated: the fallback recipe on 8,000 faces that include all of A (5 and ``--long-epochs`` epochs);
  ``build_model_2`` trained on Training outside B, A included (a student who adds PrivateTest to the training
  set); the honest ``build_model_2`` fine-tuned on A alone (one who fine-tunes on PrivateTest at the end), for
  each ``EPOCHSxLEARNING_RATE`` of ``--finetune`` (Adam, batches of 64). Their gap is A − PublicTest;
  B − PublicTest is measured as a control.

For each honest model it also measures the spread chance alone gives the A − PublicTest gap: its right and wrong
answers on the two sets pooled and split at random into two sets of the same sizes, 2,000 times (the standard
deviation of the difference). ``--models DIR`` keeps the trained models (and their training times) there and
reuses them on a later run.
Prints a table and writes ``benchmarks/results/model_contamination.json``. About an hour on 2 CPU cores (the two
``build_model_2`` runs take most of it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.results_file import write_results

HOLDOUT_FACES = 3589  # PrivateTest's size in fer2013.csv
PERMUTATIONS = 2000


def _stratified(data, pool: np.ndarray, seed: int) -> np.ndarray:
    """A stratified sample of HOLDOUT_FACES rows of ``pool`` (indices into ``data``), sorted."""
    from sklearn.model_selection import train_test_split

    _, held = train_test_split(pool, test_size=HOLDOUT_FACES, random_state=seed, stratify=data.labels[pool])
    return np.sort(held)


def _with_training(data, rows: np.ndarray):
    """``data`` whose ``Training`` rows are exactly ``rows`` (the other Training rows become ``Unused``)."""
    usage = data.usage.copy()
    usage[usage == "Training"] = "Unused"
    usage[rows] = "Training"
    return dataclasses.replace(data, usage=usage)


def _record_seconds(path: Path, seconds: float) -> float:
    """Keep the training time beside the model file (``<model>.seconds.json``), for a later run that reuses it."""
    path.with_name(path.name + ".seconds.json").write_text(json.dumps({"seconds": seconds}))
    return seconds


def _recorded_seconds(path: Path) -> float | None:
    """The training time kept beside a reused model file, None when none was kept."""
    record = path.with_name(path.name + ".seconds.json")
    return json.loads(record.read_text())["seconds"] if record.is_file() else None


def _train_fallback(data, path: Path, epochs: int) -> float | None:
    """The kit's fallback recipe on ``data``'s Training rows (8,000 of them, sampled by the recipe), ``epochs``
    epochs; seconds taken (those kept beside ``path`` when it already exists and is reused, else None)."""
    from course import fallback_training

    if path.is_file():
        return _recorded_seconds(path)
    start = time.perf_counter()
    saved = fallback_training.EPOCHS
    fallback_training.EPOCHS = epochs
    try:
        fallback_training.train_fallback_model_2(data, path, verbose=False)
    finally:
        fallback_training.EPOCHS = saved
    return _record_seconds(path, time.perf_counter() - start)


def _train_model_2(data, rows: np.ndarray, path: Path, epochs: int) -> float | None:
    """The solution notebook's ``build_model_2`` trained ``epochs`` epochs on ``rows`` as the notebook trains it
    (shuffled batches of ``MODEL_2_BATCH_SIZE``, one-hot labels); seconds taken (as :func:`_train_fallback`)."""
    import keras
    import tensorflow as tf

    from course.notebook_cells import run_solution_cells

    if path.is_file():
        return _recorded_seconds(path)
    ns = run_solution_cells("build_model_2", {"__name__": "benchmark"})
    batch = ns["MODEL_2_BATCH_SIZE"]
    x = ns["preprocess"](data.images[rows])
    y = keras.utils.to_categorical(data.labels[rows], 7)
    keras.utils.set_random_seed(0)
    steps = int(np.ceil(len(x) / batch))
    model = ns["build_model_2"](steps_per_epoch=steps, epochs=epochs)
    batches = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=0, reshuffle_each_iteration=True)
        .batch(batch)
        .prefetch(tf.data.AUTOTUNE)
    )
    start = time.perf_counter()
    model.fit(batches, epochs=epochs, verbose=2, shuffle=False)
    seconds = time.perf_counter() - start
    model.save(path)
    return _record_seconds(path, seconds)


def _finetune(
    source: Path, images: np.ndarray, labels: np.ndarray, path: Path, epochs: int, learning_rate: float
) -> float | None:
    """``source`` fitted ``epochs`` more epochs on ``images`` alone (Adam at ``learning_rate``, batches of 64,
    one-hot labels)."""
    import keras

    if path.is_file():
        return _recorded_seconds(path)
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    model = keras.models.load_model(source, compile=False)
    model.compile(keras.optimizers.Adam(learning_rate), "categorical_crossentropy")
    model.fit(
        images[..., None].astype("float32") / 255.0,
        keras.utils.to_categorical(labels, 7),
        batch_size=64,
        epochs=epochs,
        verbose=0,
    )
    model.save(path)
    return _record_seconds(path, time.perf_counter() - start)


def _chance_sd(right_a: np.ndarray, right_b: np.ndarray, seed: int = 0) -> float:
    """SD (points) of the accuracy difference of two random sets of the pooled answers, sizes kept."""
    pooled = np.concatenate([right_a, right_b]).astype(float)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(PERMUTATIONS):
        order = rng.permutation(len(pooled))
        diffs.append(pooled[order[: len(right_a)]].mean() - pooled[order[len(right_a) :]].mean())
    return 100 * float(np.std(diffs))


def evaluate(path: Path, data, sets: dict[str, np.ndarray], *, honest: bool) -> dict:
    """Score the model file on each set (``{"A": rows, "B": rows, "PublicTest": rows}``) as the separate scorer
    does; the gaps in points, the flag's verdict on A − PublicTest and, for an honest model, the spread chance
    alone gives that gap."""
    from course.model_scoring import contamination_reason, load_submitted_model, measure_fer_accuracy

    model = load_submitted_model(path, path.name)
    right = {}
    for name, rows in sets.items():
        probs = model.predict(data.images[rows][..., None].astype("float32") / 255.0, batch_size=512, verbose=0)
        right[name] = np.argmax(probs, axis=1) == data.labels[rows]
    arrays = {
        "images": data.images[sets["A"]],
        "labels": data.labels[sets["A"]],
        "public_images": data.images[sets["PublicTest"]],
        "public_labels": data.labels[sets["PublicTest"]],
    }
    measured = measure_fer_accuracy(model, arrays, path.name)  # the scorer's own numbers for the flag
    acc = {name: float(r.mean()) for name, r in right.items()}
    assert abs(measured["accuracy"] - acc["A"]) < 1e-9, "the scorer's accuracy and this one must agree"

    def se(a, b):
        return 100 * np.sqrt(acc[a] * (1 - acc[a]) / len(right[a]) + acc[b] * (1 - acc[b]) / len(right[b]))

    out = {
        "accuracy": {k: round(v, 4) for k, v in acc.items()},
        "gaps": {
            f"{a} - {b}": {"points": round(100 * (acc[a] - acc[b]), 2), "se_points": round(float(se(a, b)), 2)}
            for a, b in (
                [("A", "PublicTest"), ("B", "PublicTest"), ("A", "B")]
                if honest
                else [("A", "PublicTest"), ("B", "PublicTest")]
            )
        },
        "flagged": bool(contamination_reason(measured, {"usage": "hold-out A"}, path.name)),
    }
    if honest:
        out["chance_sd_points"] = round(_chance_sd(right["A"], right["PublicTest"]), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-2-epochs", type=int, default=10, help="epochs of the build_model_2 runs (0: none)")
    parser.add_argument("--long-epochs", type=int, default=20, help="epochs of the long fallback runs (0: none)")
    parser.add_argument(
        "--finetune",
        default="2x1e-4,10x1e-3",
        help="fine-tunings of model_2 on hold-out A, EPOCHSxLEARNING_RATE, comma-separated ('': none)",
    )
    parser.add_argument("--models", type=Path, default=None, help="folder to keep (and reuse) the trained models")
    args = parser.parse_args(argv)

    import keras

    from course import fallback_training
    from course.fallback_model import fallback_model_2
    from course.model_scoring import CONTAMINATION_MIN_POINTS, CONTAMINATION_Z
    from data_loaders import load_fer2013

    data = load_fer2013()
    if "PublicTest" not in data.usages:
        print(
            f"{data.description[:120]}: no PublicTest; set FER2013_PATH to FER2013 (e.g. "
            "../shared/data/fer2013/fer2013.csv.gz)",
            file=sys.stderr,
        )
        return 2
    public = np.flatnonzero((data.usage == "PublicTest") & (data.labels >= 0))
    training = np.flatnonzero((data.usage == "Training") & (data.labels >= 0))
    # the faces the kit's fallback model trained on: Training.sample(8000, seed=0), as train_fallback_model_2 draws
    kit_faces = training[np.random.default_rng(0).permutation(len(training))[:8000]]
    held_a = _stratified(data, np.setdiff1d(training, kit_faces), seed=0)
    held_b = _stratified(data, np.setdiff1d(training, np.concatenate([kit_faces, held_a])), seed=1)
    pool = np.setdiff1d(training, np.concatenate([held_a, held_b]))  # what honest models train on
    sets = {"A": held_a, "B": held_b, "PublicTest": public}
    models = args.models or Path(tempfile.mkdtemp(prefix="model-contamination-"))
    models.mkdir(parents=True, exist_ok=True)
    kit_model = fallback_model_2(verbose=False)
    mixed = np.concatenate([held_a, np.random.default_rng(0).permutation(pool)[: 8000 - len(held_a)]])

    rows = []

    def add(step: str, kind: str, faces: int, epochs: int, seconds: float | None, path: Path) -> None:
        result = evaluate(path, data, sets, honest=kind == "honest")
        row = {
            "step": step,
            "seconds": round(seconds, 1) if seconds else None,
            "kind": kind,
            "trained_faces": faces,
            "epochs": epochs,
            **result,
        }
        acc, gaps = row["accuracy"], row["gaps"]
        row["note"] = (
            f"A {acc['A']:.2%}, B {acc['B']:.2%}, PublicTest {acc['PublicTest']:.2%}; gaps "
            + ", ".join(f"{k} {g['points']:+.2f}" for k, g in gaps.items())
            + f" points (SE {gaps['A - PublicTest']['se_points']:.2f})"
            + (f", chance alone SD {row['chance_sd_points']:.2f}" if "chance_sd_points" in row else "")
            + (" · FLAGGED" if row["flagged"] else " · not flagged")
        )
        rows.append(row)
        print(f"{step}\n    {row['note']}", flush=True)

    add(
        "honest: the kit's fallback model_2 (8,000 Training faces, 5 epochs)",
        "honest",
        8000,
        fallback_training.EPOCHS,
        None,
        kit_model,
    )
    honest = _with_training(data, pool)
    leaked = _with_training(data, mixed)
    for epochs in [fallback_training.EPOCHS] + ([args.long_epochs] if args.long_epochs else []):
        path = models / f"fallback-honest-{epochs}.keras"
        seconds = _train_fallback(honest, path, epochs)
        add(
            f"honest: fallback recipe, 8,000 faces of Training outside A and B, {epochs} epochs",
            "honest",
            8000,
            epochs,
            seconds,
            path,
        )
        path = models / f"fallback-leaked-{epochs}.keras"
        seconds = _train_fallback(leaked, path, epochs)
        add(
            f"contaminated: fallback recipe, 8,000 faces including all {len(held_a):,} of A, {epochs} epochs",
            "contaminated",
            8000,
            epochs,
            seconds,
            path,
        )
    if args.model_2_epochs:
        e = args.model_2_epochs
        path = models / f"model_2-honest-{e}.keras"
        seconds = _train_model_2(data, pool, path, e)
        add(
            f"honest: build_model_2, Training outside A and B ({len(pool):,} faces), {e} epochs",
            "honest",
            len(pool),
            e,
            seconds,
            path,
        )
        for spec in filter(None, args.finetune.split(",")):
            epochs, rate = int(spec.split("x")[0]), float(spec.split("x")[1])
            tuned = models / f"model_2-finetuned-{e}-{epochs}x{rate:g}.keras"
            seconds = _finetune(path, data.images[held_a], data.labels[held_a], tuned, epochs, rate)
            add(
                f"contaminated: that model_2 fine-tuned {epochs} epochs on A alone (Adam {rate:g})",
                "contaminated",
                len(held_a),
                epochs,
                seconds,
                tuned,
            )
        with_a = np.concatenate([pool, held_a])
        path = models / f"model_2-leaked-{e}.keras"
        seconds = _train_model_2(data, with_a, path, e)
        add(
            f"contaminated: build_model_2, Training outside B, A included ({len(with_a):,} faces), {e} epochs",
            "contaminated",
            len(with_a),
            e,
            seconds,
            path,
        )

    honest_gaps = [g["points"] for r in rows if r["kind"] == "honest" for g in r["gaps"].values()]
    leaked_gaps = [r["gaps"]["A - PublicTest"]["points"] for r in rows if r["kind"] == "contaminated"]
    controls = [r["gaps"]["B - PublicTest"]["points"] for r in rows if r["kind"] == "contaminated"]
    chance = [r["chance_sd_points"] for r in rows if "chance_sd_points" in r]
    ses = [r["gaps"]["A - PublicTest"]["se_points"] for r in rows]
    print(f"\n{'model':<100} {'A':>7} {'B':>7} {'Public':>7} {'A-Pub':>7} flagged")
    for r in rows:
        a = r["accuracy"]
        print(
            f"{r['step'][:100]:<100} {a['A']:>7.2%} {a['B']:>7.2%} {a['PublicTest']:>7.2%} "
            f"{r['gaps']['A - PublicTest']['points']:>+7.2f} {'yes' if r['flagged'] else 'no'}"
        )
    summary = (
        f"honest gaps {min(honest_gaps):+.2f} to {max(honest_gaps):+.2f} points over {len(honest_gaps)} "
        f"measurements of {len(chance)} models (mean {np.mean(honest_gaps):+.2f}, SD "
        f"{np.std(honest_gaps, ddof=1):.2f}); chance alone SD {np.mean(chance):.2f} points (binomial SE "
        f"{np.mean(ses):.2f}); contaminated A - PublicTest {min(leaked_gaps):+.2f} to {max(leaked_gaps):+.2f} "
        f"(their B - PublicTest control {min(controls):+.2f} to {max(controls):+.2f}); flag above "
        f"max({CONTAMINATION_MIN_POINTS:g} points, {CONTAMINATION_Z:g} SE): "
        f"{sum(r['flagged'] for r in rows if r['kind'] == 'honest')} of {len(chance)} honest and "
        f"{sum(r['flagged'] for r in rows if r['kind'] == 'contaminated')} of {len(leaked_gaps)} "
        "contaminated models flagged"
    )
    print("\n" + summary)
    described = (
        f"{'synthetic faces' if data.description.startswith('SYNTHETIC') else 'FER2013'}, "
        f"{len(training):,} Training and {len(public):,} PublicTest faces"
    )  # no path of this machine
    write_results(
        "model_contamination",
        keras=keras.__version__,
        data=described,
        holdout_faces=HOLDOUT_FACES,
        public_faces=int(len(public)),
        threshold={"min_points": CONTAMINATION_MIN_POINTS, "z": CONTAMINATION_Z},
        results=rows,
        note=f"Stand-ins for unseen test sets: two disjoint, stratified {HOLDOUT_FACES:,}-face "
        f"hold-outs of Training (A, B) the kit's fallback model never saw. {summary}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
