"""Benchmark: FER2013 accuracy after a wall-clock training budget of the reference ``model_2`` (the solution
notebook's own ``build_model_2``), beside the mini-Xception peer and the handout baseline ``model_1``.

Usage::

    FER2013_PATH=/path/to/fer2013.csv .venv/bin/python -m benchmarks.fer2013_accuracy \
        [--minutes 30] [--checkpoints 5,10,15,20,30] [--baseline-epochs 5] [--peer ../shared/peers/...hdf5] \
        [--train-faces N] [--test-faces N] [--out FILE]

It runs what the notebook runs, the way a student does: the notebook's solution cells
(``course.notebook_cells.run_solution_cells``), then the timing of *Your training budget* (a network built for one
epoch, two batches to build its training step, then up to ``PROBE_BATCHES`` batches timed, their mean), then
``build_model_2(steps_per_epoch, epochs)`` for the epochs that fit what is left of the budget, fitted as the
notebook's ``train_model_2`` cell fits it: shuffled batches of ``MODEL_2_BATCH_SIZE``, the model's own
augmentation, learning-rate schedule and moving average, and ``fit`` leaving what it leaves. It trains on all of
``Training`` (the notebook trains on 90 % of it and validates on the rest). The budget counts from the start of the
run, data loading and timing included; should the epochs run slower than timed, training stops when the budget is
spent, mid-schedule, and the JSON says so (``schedule_finished``).

At each checkpoint (minutes) and at the end it saves the model as ``fit`` would leave it had training ended there
(``optimizer.finalize_variable_values``: the moving average of the weights where the optimizer keeps one) and
evaluates it on ``PublicTest``, plain and with flip test-time augmentation; it also scores ``PublicTest`` after every
epoch, so that runs on hosts of different speeds compare per epoch as well as per minute (evaluation time is not
counted against the budget). It measures the host's speed first (``host_speed.py``: a fixed matmul and Conv2D).
Then it evaluates the final model, the peer and (optionally) model_1 on the same split and prints one table:
accuracy, macro-F1, parameters, model size, training wall time, inference faces/s (batch 512, best of three
passes, batch norms folded as ``course evaluate`` runs models, and in bfloat16 where the CPU computes it natively:
``course.inference.in_bfloat16``) and single-face latency (median of 50). Writes
``benchmarks/results/fer2013_accuracy.json`` (or ``--out``). Run it alone: other work on the CPU skews it.

The network and its training are float32 on every CPU. oneDNN's instruction-set limit (``ONEDNN_MAX_CPU_ISA``,
e.g. ``AVX2`` to measure a laptop CPU without AVX-512 on a server) changes only the kernels that compute it; the
JSON records the limit and the arithmetic of inference.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.host_speed import host_speed
from benchmarks.inference_speed import faces_per_second, latency_ms
from benchmarks.results_file import RESULTS
from course.notebook_cells import run_solution_cells

PROBE_BATCHES = 50  # batches timed before training (at most one epoch), to plan the number of epochs
#: The share of the remaining budget the planned epochs fill: epochs on a shared 2-core host run up to a third
#: slower than the timed batches (53 s timed, 57-75 s run), and a run stopped mid-schedule ends at a high learning
#: rate. A student who plans from the notebook's timing has the same choice to make.
PLAN_SHARE = 0.8
PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "mini_xception" / "fer2013_mini_xception.hdf5"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget, wall clock (default 30)")
    parser.add_argument("--checkpoints", default="5,10,15,20,30", help="minutes at which to evaluate")
    parser.add_argument("--baseline-epochs", type=int, default=5, help="model_1 epochs (0: skip the baseline)")
    parser.add_argument("--peer", default=str(PEER), help="the peer model (64×64, [-1, 1] inputs; none: skip)")
    parser.add_argument(
        "--train-faces", type=int, default=None, help="train on this many Training faces, seeded (default: all)"
    )
    parser.add_argument(
        "--test-faces",
        type=int,
        default=None,
        help="score on this many PublicTest faces, seeded (default: all; fewer for a quick check of the script)",
    )
    parser.add_argument("--out", default=None, help="the JSON to write (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error(f"--minutes must be positive, got {args.minutes:g}")
    return args


@dataclass
class Clock:
    """The run's wall clock: seconds since ``start`` (``time.perf_counter``), less the ``paused`` seconds spent
    evaluating, against a budget of ``budget`` seconds."""

    budget: float
    start: float = field(default_factory=time.perf_counter)
    paused: float = 0.0

    def elapsed(self) -> float:
        """Seconds of the budget spent so far."""
        return time.perf_counter() - self.start - self.paused

    @contextlib.contextmanager
    def pause(self):
        """Within the block, time does not count against the budget."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.paused += time.perf_counter() - t0


@contextlib.contextmanager
def as_fit_leaves(model):
    """Within the block, ``model`` holds the weights ``fit`` leaves when it ends: ``fit`` calls
    ``optimizer.finalize_variable_values`` on the trainable weights (with ``use_ema=True``, their moving average;
    otherwise nothing changes). All weights, batch-norm statistics included, are restored after the block.

    Raises:
        ValueError: the optimizer keeps a moving average but has not taken a step yet (Keras has no average then).
    """
    optimizer = model.optimizer
    if getattr(optimizer, "use_ema", False) and not optimizer.built:
        raise ValueError("the optimizer keeps a moving average but has taken no step: train before scoring")
    saved = model.get_weights()
    optimizer.finalize_variable_values(model.trainable_variables)
    try:
        yield
    finally:
        model.set_weights(saved)


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """The notebook's training pipeline for model_2 (its ``make_dataset`` with ``shuffle=True``): shuffled each
    epoch, batched, prefetched. ``x`` float32 (N, 48, 48, 1), ``y`` one-hot float32 (N, 7)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def plan_epochs(build_model_2, batches, steps: int, seconds_left: float) -> tuple[float, int]:
    """Time ``build_model_2(steps_per_epoch=steps, epochs=1)`` as the notebook's *Your training budget* cell does
    (two batches to build the training step, untimed; then up to ``PROBE_BATCHES`` batches, at most an epoch,
    timed from the first timed batch's end to the last's, so that ``fit``'s set-up is not counted) and return
    (seconds an epoch, the epochs that fit in ``PLAN_SHARE`` of ``seconds_left`` seconds, at least 1)."""
    import keras

    probe = build_model_2(steps_per_epoch=steps, epochs=1)
    probe.fit(batches.take(2), epochs=1, verbose=0, shuffle=False)
    ends: list[float] = []
    timer = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    timed = max(2, min(PROBE_BATCHES, steps))
    probe.fit(batches.repeat().take(timed), epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    seconds_per_epoch = (ends[-1] - ends[0]) / (len(ends) - 1) * steps
    return seconds_per_epoch, max(1, int(PLAN_SHARE * seconds_left // seconds_per_epoch))


def _score(model, path: Path, data) -> dict:
    """Save ``model`` as ``fit`` would leave it to ``path`` and score it on PublicTest, plain and with flip TTA."""
    from course.evaluate import evaluate_model

    with as_fit_leaves(model):
        model.save(path)
    plain = evaluate_model(path, data, "PublicTest")
    tta = evaluate_model(path, data, "PublicTest", flip_tta=True)
    return {
        "accuracy": round(plain.accuracy, 4),
        "macro_f1": round(plain.macro_f1, 4),
        "accuracy_flip_tta": round(tta.accuracy, 4),
    }


def _training_callback(clock: Clock, steps: int, marks: list[float], score, x_test, test_labels):
    """A Keras callback that scores PublicTest after every epoch (``per_epoch``) and the model at each of ``marks``
    (seconds of the budget; ``score(model, epoch, elapsed)`` records it), stops training once the budget is spent,
    and counts the batches trained (``batches``). Scoring time is paused on ``clock``."""
    import keras

    class Training(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches, self.per_epoch, self.stopped_by_budget = 0, [], False

        def on_epoch_end(self, epoch, logs=None):
            with clock.pause(), as_fit_leaves(self.model):
                predicted = self.model.predict(x_test, batch_size=512, verbose=0).argmax(axis=1)
            accuracy = round(float((predicted == test_labels).mean()), 4)
            minutes = round(clock.elapsed() / 60, 2)
            self.per_epoch.append({"epoch": epoch + 1, "minutes": minutes, "accuracy": accuracy})
            print(f"  epoch {epoch + 1}: {accuracy:.2%} PublicTest after {minutes:.1f} min", flush=True)

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            if marks and clock.elapsed() >= marks[0]:
                with clock.pause():
                    score(self.model, self.batches / steps, marks.pop(0))
            if clock.elapsed() >= clock.budget:
                self.stopped_by_budget = self.model.stop_training = True

    return Training()


def _model_row(name: str, path, data, test, minutes, bfloat16: bool, **kw) -> dict:
    """One row of the table: ``evaluate_model``'s accuracy and macro-F1 on PublicTest, the model's size, and its
    faces/s and single-face latency with batch norms folded (in bfloat16 where ``bfloat16``)."""
    import keras

    from course.evaluate import evaluate_model, model_inputs, with_flip_tta
    from course.inference import fold_batch_norms, in_bfloat16

    result = evaluate_model(path, data, "PublicTest", **kw)
    model = fold_batch_norms(keras.models.load_model(path, compile=False))  # as evaluate_model runs it
    if bfloat16:  # deployed on this CPU, it would compute in bfloat16 (accuracy above: float32, as saved)
        model = in_bfloat16(model)
    if kw.get("flip_tta"):
        model = with_flip_tta(model)
    x = model_inputs(test.images, kw.get("input_size", 48), kw.get("scale", "unit"))
    return {
        "model": name,
        "accuracy": round(result.accuracy, 4),
        "macro_f1": round(result.macro_f1, 4),
        "parameters": result.parameters,
        "size_mb": round(result.model_bytes / 1e6, 2),
        "train_minutes": minutes,
        "faces_per_second": round(faces_per_second(model, x, 512)),  # best of three passes: a pass can stall
        "latency_ms": round(latency_ms(model, x), 1),
    }


def _train_baseline(ns: dict, x_train, y_train, epochs: int, path: Path) -> float:
    """Train the handout's ``model_1`` (its augmentation, batches of ``BATCH_SIZE``) for ``epochs``, save it to
    ``path``; return the training minutes."""
    import keras

    keras.utils.set_random_seed(0)
    model_1, augmentation = ns["build_model_1"](), ns["make_augmentation"]()
    batches = _batches(x_train, y_train, ns["BATCH_SIZE"], ns["SEED"])
    t = time.perf_counter()
    model_1.fit(batches.map(lambda a, b: (augmentation(a, training=True), b)), epochs=epochs, verbose=2)
    minutes = (time.perf_counter() - t) / 60
    model_1.save(path)
    return minutes


def _print_table(rows: list[dict], checkpoints: list[dict], test_faces: int, bfloat16: bool) -> None:
    print(f"\nFER2013 PublicTest ({test_faces:,} faces) · {os.cpu_count()} CPU cores · training on Training only\n")
    print(
        f"{'model':<32}{'accuracy':>9}{'macro-F1':>9}{'params':>11}{'MB':>7}{'train min':>10}{'faces/s':>9}"
        f"{'ms/face':>8}"
    )
    for r in rows:
        minutes = "–" if r["train_minutes"] is None else f"{r['train_minutes']:.1f}"
        print(
            f"{r['model']:<32}{r['accuracy']:>9.2%}{r['macro_f1']:>9.3f}{r['parameters']:>11,}{r['size_mb']:>7.1f}"
            f"{minutes:>10}{r['faces_per_second']:>9,}{r['latency_ms']:>8.1f}"
        )
    print(f"\nfaces/s: batch norms folded, {'bfloat16' if bfloat16 else 'float32'} arithmetic")
    scores = (f"{c['minutes']:g} min {c['accuracy']:.2%} (flip TTA {c['accuracy_flip_tta']:.2%})" for c in checkpoints)
    print("\ncheckpoints: " + ", ".join(scores))


def _write(out: str | None, fields: dict) -> Path:
    """Write the results JSON (``benchmarks/results/fer2013_accuracy.json`` unless ``out``), with the machine facts
    every result file carries; print and return its path."""
    path = Path(out) if out else RESULTS / "fer2013_accuracy.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    facts = {"benchmark": "fer2013_accuracy", "cpu_count": os.cpu_count(), "python": platform.python_version()}
    path.write_text(json.dumps({**facts, **fields}, indent=2))
    print(f"\nwrote {path}")
    return path


@dataclass
class Faces:
    """The notebook's data for the benchmark: ``x_*`` float32 (N, 48, 48, 1) in [0, 1] (the notebook's
    ``preprocess``), ``y_train`` one-hot float32 (N, 7), ``train``/``test`` the ``ImageDataset`` s they come from."""

    data: object
    train: object
    test: object
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray


def _faces(ns: dict, train_faces: int | None, test_faces: int | None = None) -> Faces:
    """FER2013 (``FER2013_PATH``; else the synthetic faces, with a warning): ``Training`` (a seeded sample of
    ``train_faces`` of it when given) and ``PublicTest`` (a seeded sample of ``test_faces`` when given: the data
    scored everywhere holds only those), prepared by the notebook's ``preprocess``."""
    import keras

    from data_loaders import load_fer2013

    data = load_fer2013()
    if data.description.startswith("SYNTHETIC"):
        print("warning: no FER2013 configured, measuring on the synthetic faces (set FER2013_PATH)", file=sys.stderr)
    if test_faces is not None:
        keep = data.usage != "PublicTest"
        keep[np.random.default_rng(ns["SEED"]).permutation(np.flatnonzero(~keep))[:test_faces]] = True
        data = data.select(keep)
    train, test = data.subset("Training").sample(train_faces, seed=ns["SEED"]), data.subset("PublicTest")
    y_train = keras.utils.to_categorical(train.labels, 7).astype("float32")
    return Faces(data, train, test, ns["preprocess"](train.images), y_train, ns["preprocess"](test.images))


def train_model_2(ns: dict, faces: Faces, clock: Clock, checkpoint_minutes: list[float], folder: Path) -> dict:
    """Plan the epochs that fit what is left of ``clock``'s budget (:func:`plan_epochs`), build the notebook's
    ``model_2`` for them and fit it as the notebook does, scoring it at ``checkpoint_minutes``, after every epoch
    and at the end; save the final model as ``folder/model_2.keras``. Returns the run's facts for the JSON."""
    import keras

    batch_size, seed = ns["MODEL_2_BATCH_SIZE"], ns["SEED"]
    steps = int(np.ceil(len(faces.x_train) / batch_size))
    batches = _batches(faces.x_train, faces.y_train, batch_size, seed)
    seconds_per_epoch, planned = plan_epochs(ns["build_model_2"], batches, steps, clock.budget - clock.elapsed())
    keras.utils.set_random_seed(seed)
    model_2 = ns["build_model_2"](steps_per_epoch=steps, epochs=planned)
    print(
        f"{len(faces.x_train):,} training faces · ready after {clock.elapsed():.0f} s · about "
        f"{seconds_per_epoch:.0f} s an epoch, so model_2 is built and trained for {planned} epochs · "
        f"batch {batch_size}",
        flush=True,
    )
    checkpoints = []

    def score(model, epoch: float, mark: float) -> None:
        scores = _score(model, folder / f"model_2_{mark / 60:.1f}min.keras", faces.data)
        minutes = {"minutes": round(mark / 60, 2), "elapsed_minutes": round(clock.elapsed() / 60, 2)}
        checkpoints.append({**minutes, "epochs": round(epoch, 2), **scores})
        print(f"  {checkpoints[-1]}", flush=True)

    marks = sorted(m * 60 for m in checkpoint_minutes if m * 60 < clock.budget - 1)
    training = _training_callback(clock, steps, marks, score, faces.x_test, faces.test.labels)
    model_2.fit(batches, epochs=planned, verbose=2, shuffle=False, callbacks=[training])  # the notebook's fit
    minutes, epochs = clock.elapsed() / 60, round(training.batches / steps, 2)
    score(model_2, epochs, minutes * 60)  # fit has left its final weights: scored as they are
    model_2.save(folder / "model_2.keras")
    return {
        "batch_size": batch_size,
        "planned_epochs": planned,
        "epochs": epochs,
        "train_minutes": round(minutes, 1),
        "schedule_finished": not training.stopped_by_budget,
        "checkpoints": checkpoints,
        "per_epoch": training.per_epoch,
    }


def _rows(args: argparse.Namespace, ns: dict, faces: Faces, minutes_2: float, folder: Path, bfloat16: bool):
    """The table's rows: model_2 (``folder/model_2.keras``) plain and with flip TTA, the peer where its file is,
    and model_1 trained for ``--baseline-epochs`` unless 0."""
    data, test, model_2 = faces.data, faces.test, folder / "model_2.keras"
    rows = [
        _model_row("model_2 (solution notebook)", model_2, data, test, minutes_2, bfloat16),
        _model_row("model_2 + flip TTA", model_2, data, test, minutes_2, bfloat16, flip_tta=True),
    ]
    if args.peer and Path(args.peer).is_file():
        peer = {"input_size": 64, "scale": "symmetric"}
        rows.append(_model_row("mini-Xception peer", args.peer, data, test, None, bfloat16, **peer))
    if args.baseline_epochs:
        path = folder / "model_1.keras"
        minutes_1 = round(_train_baseline(ns, faces.x_train, faces.y_train, args.baseline_epochs, path), 1)
        rows.append(
            _model_row(f"model_1 baseline ({args.baseline_epochs} epochs)", path, data, test, minutes_1, bfloat16)
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    speed = host_speed()  # before the clock starts: it is a fact about the host, not part of the budget
    print(
        f"host: {os.cpu_count()} CPU cores · matmul {speed['matmul_gflops']:,} GFLOP/s · "
        f"Conv2D {speed['conv2d_gflops']:,} GFLOP/s",
        flush=True,
    )
    clock = Clock(budget=args.minutes * 60)

    import keras

    from course.cpu import cpu_has_bfloat16, onednn_isa_limit

    ns = run_solution_cells("build_model_1_and_2", {"__name__": "benchmark"})
    faces = _faces(ns, args.train_faces, args.test_faces)
    folder = Path(tempfile.mkdtemp())
    run = train_model_2(ns, faces, clock, [float(m) for m in args.checkpoints.split(",")], folder)
    bfloat16 = cpu_has_bfloat16()
    rows = _rows(args, ns, faces, run["train_minutes"], folder, bfloat16)
    _print_table(rows, run["checkpoints"], len(faces.test), bfloat16)
    # The data is named by what it holds, never by where it lies on this machine.
    described = (
        faces.data.description.split(" (")[0]
        if faces.data.description.startswith("SYNTHETIC")
        else f"FER2013, {len(faces.train):,} Training and {len(faces.test):,} PublicTest faces"
    )
    facts = {
        "keras": keras.__version__,
        "data": described,
        "test_faces": len(faces.test),
        "budget_minutes": args.minutes,
        "host_speed": speed,
    }
    run.pop("train_minutes")
    dtypes = {"training_dtype": "float32", "inference_dtype": "bfloat16" if bfloat16 else "float32"}
    limit = {"onednn_max_cpu_isa": isa} if (isa := onednn_isa_limit()) else {}  # e.g. AVX2: a laptop's CPU
    _write(args.out, {**facts, **run, "models": rows, **dtypes, **limit})
    return 0


if __name__ == "__main__":
    sys.exit(main())
