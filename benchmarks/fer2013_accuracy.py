"""Benchmark: FER2013 accuracy per CPU-minute of the reference ``model_2`` (the solution notebook's own
``build_model_2``), beside the mini-Xception peer and the handout baseline ``model_1``.

Usage::

    FER2013_PATH=/path/to/fer2013.csv .venv/bin/python -m benchmarks.fer2013_accuracy \
        [--minutes 30] [--checkpoints 5,10,15,20,30] [--baseline-epochs 5] [--peer ../shared/peers/...hdf5]

Trains on ``Training`` only, within a wall-clock budget that includes data loading. Like a student, it first
times the network on a few batches (their median, so that a passing stall does not skew the plan) and builds it
(``build_model_2(steps_per_epoch, epochs)``) for the number of epochs that fit; then it trains the notebook's
network, optimizer and loss, with its warm-up + cosine learning-rate schedule laid over the budget's minutes
instead of an epoch count, so that the schedule ends when the budget does however fast the epochs run. At each
checkpoint (and at the end) it saves the model and evaluates it on ``PublicTest``, plain and with flip test-time
augmentation (evaluation time is not counted against the budget); checkpoints before the end are mid-schedule
and, when the optimizer keeps a moving average of the weights (``use_ema``), score that average, as ``fit`` would
leave it. Each checkpoint is also scored with its batch norms' statistics re-estimated over 2,000 real Training
faces (``reestimate_batch_norm_statistics``; about 5 s on 2 cores, not counted either), as the end of a run
sets them: mid-run, the running statistics are those of the last batches of mixup blends, computed with the raw
weights, and they cost a 15-minute checkpoint up to 2.7 points (more earlier in the run).
It also evaluates on ``PublicTest`` after every epoch, so that runs on hosts of different speeds compare per
epoch as well as per minute, and it measures the host's speed first (``host_speed.py``: a fixed matmul and
Conv2D), which goes into the table.
Then it evaluates the final model, the peer and (optionally) model_1 on the same split and prints one table:
accuracy, macro-F1, parameters, model size, training wall time, inference faces/s (batch 512, best of three
passes, batch norms folded as ``course evaluate`` runs models, and in bfloat16 where the CPU computes it natively:
``course.inference.in_bfloat16``) and single-face latency (median of 50). Writes
``benchmarks/results/fer2013_accuracy.json``. Run it alone: other work on the CPU skews it.

On a CPU with bfloat16 instructions, ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI`` (oneDNN's instruction-set limit) measures
the reference as a CPU without them runs it: ``course.cpu.cpu_has_bfloat16`` then answers False, so the notebook
builds its float32 network, and TensorFlow's kernels compute float32 with the same AVX-512 instructions as before.
The JSON records the arithmetic of training and inference and that limit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.host_speed import host_speed
from benchmarks.inference_speed import faces_per_second, latency_ms
from benchmarks.results_file import write_results
from course.notebook_cells import run_solution_cells

PROBE_BATCHES = 50  # batches timed before training, to plan the number of epochs
# Training faces over which a checkpoint's batch-norm statistics are re-estimated (about 5 s on 2 cores). On
# three 15-minute checkpoints, 2,000 faces and 8,000 gave PublicTest within 0.1 point of each other.
CLEAN_FACES = 2000
PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "mini_xception" / "fer2013_mini_xception.hdf5"


def _peak_learning_rate(optimizer) -> float:
    """The highest learning rate of an optimizer's schedule (a warm-up target, else the initial rate)."""
    schedule = optimizer._learning_rate
    for name in ("warmup_target", "initial_learning_rate", "maximal_learning_rate"):
        value = getattr(schedule, name, None)
        if value:
            return float(value)
    return float(optimizer.learning_rate)


@contextlib.contextmanager
def _averaged_weights(model):
    """Within the block, the model holds its optimizer's moving average of the weights (``use_ema=True``),
    which is what ``fit`` leaves in the model when it ends; without EMA the model is left as it is."""
    optimizer = model.optimizer
    if not getattr(optimizer, "use_ema", False) or not getattr(optimizer, "built", False):
        yield
        return
    variables = optimizer._trainable_variables
    current = [v.numpy() for v in variables]
    optimizer._overwrite_model_variables_with_average_value(variables)
    try:
        yield
    finally:
        for variable, value in zip(variables, current):
            variable.assign(value)


def reestimate_batch_norm_statistics(model, faces: np.ndarray, batch_size: int = 500) -> None:
    """Set every batch norm's running mean and variance in ``model`` (in place) to the mean and variance of its
    input over ``faces``: what a checkpoint taken mid-run would hold had its run ended there.

    Mid-run, a batch norm's running statistics are an exponential average (momentum 0.9) of the last batches'
    statistics: batches of mixup blends, mirrored and shifted, computed with the raw weights, while a checkpoint
    holds the moving average of the weights where the optimizer keeps one. The last steps of a run of 30 epochs
    or more replace them with the average over real faces (the solution notebook's ``build_model_2``); this
    does the same for a checkpoint, with the weights it holds. Layer by layer in the network's order, so that
    each batch norm's input is computed with the statistics before it already re-estimated. (PyTorch's
    ``torch.optim.swa_utils.update_bn`` serves the same end in one pass in training mode, where each batch norm
    normalises by the batch's own statistics.)

    Args:
        model: a functional or Sequential Keras model (float32 weights).
        faces: float32 (N, ...) model inputs, as the test sees them (neither mirrored nor shifted).
        batch_size: faces per forward pass.

    Raises:
        ValueError: if ``faces`` is empty.
    """
    import keras

    if len(faces) == 0:
        raise ValueError("reestimate_batch_norm_statistics needs at least one face, got an empty array")
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        features = keras.Model(model.input, layer.input)
        total, squares, count = 0.0, 0.0, 0
        for start in range(0, len(faces), batch_size):
            x = np.asarray(features.predict_on_batch(faces[start : start + batch_size]), dtype=np.float64)
            x = x.reshape(-1, x.shape[-1])  # every position of every face: one sample per channel
            total, squares, count = total + x.sum(axis=0), squares + (x * x).sum(axis=0), count + x.shape[0]
        mean = total / count
        layer.moving_mean.assign(mean.astype("float32"))
        layer.moving_variance.assign(np.maximum(squares / count - mean * mean, 0.0).astype("float32"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget, wall clock (default 30)")
    parser.add_argument("--checkpoints", default="5,10,15,20,30", help="minutes at which to evaluate")
    parser.add_argument("--baseline-epochs", type=int, default=5, help="model_1 epochs (0: skip the baseline)")
    parser.add_argument("--peer", default=str(PEER), help="the peer model (64×64, [-1, 1] inputs)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    speed = host_speed()  # before the clock starts: it is a fact about the host, not part of the budget
    print(
        f"host: {os.cpu_count()} CPU cores · matmul {speed['matmul_gflops']:,} GFLOP/s · "
        f"Conv2D {speed['conv2d_gflops']:,} GFLOP/s",
        flush=True,
    )
    start = time.perf_counter()

    import keras

    from course.cpu import cpu_has_bfloat16, onednn_isa_limit
    from course.evaluate import evaluate_model, model_inputs, with_flip_tta
    from course.inference import fold_batch_norms, in_bfloat16
    from data_loaders import load_fer2013

    data = load_fer2013()
    if data.description.startswith("SYNTHETIC"):
        print("warning: no FER2013 configured, measuring on the synthetic faces (set FER2013_PATH)", file=sys.stderr)
    ns = run_solution_cells("build_model_1_and_2", {"__name__": "benchmark"})
    batch = ns.get("MODEL_2_BATCH_SIZE", ns["BATCH_SIZE"])  # the notebook's batch size for model_2
    train, test = data.subset("Training"), data.subset("PublicTest")
    x_train, x_test = ns["preprocess"](train.images), ns["preprocess"](test.images)
    y_train = keras.utils.to_categorical(train.labels, 7)
    steps = int(np.ceil(len(x_train) / batch))
    import tensorflow as tf

    def dataset(batch_size):
        return (
            tf.data.Dataset.from_tensor_slices((x_train, y_train))
            .shuffle(len(x_train), seed=0)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

    # The learning rate follows the wall clock, not an epoch count: an epoch here takes 80-170 s depending on
    # what else the machine does, so an epoch plan made up front ends the schedule too early or too late.
    # build_model_2's network, optimizer and loss are kept; its schedule is replaced by the same shape in time
    # (warm-up to its peak over the first 5 % of the budget, then cosine down to 1 % of the peak), and training
    # stops when the budget, counted from the start of this script, is spent.
    budget = args.minutes * 60
    # First, as a student does under "Your training budget": time the network on a few batches and build it for
    # the number of epochs that fit in what is left of the budget (build_model_2 may set its regularisation by
    # the length of the run). The probe's time counts against the budget.
    probe = ns["build_model_2"](steps_per_epoch=steps, epochs=1)
    probe.fit(dataset(batch).take(2), epochs=1, verbose=0, shuffle=False)  # builds the training step: not timed
    ends = [time.perf_counter()]
    timer = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    probe.fit(dataset(batch).take(PROBE_BATCHES), epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    # The median batch, not the mean: with the mean, a stall of a few seconds in the probe (a busy host, a cold
    # cache) can plan 19 epochs where about 27 fit, and the plan decides build_model_2's regularisation.
    seconds_per_epoch = float(np.median(np.diff(ends))) * steps
    del probe
    planned_epochs = max(1, int((budget - (time.perf_counter() - start)) // seconds_per_epoch))
    keras.utils.set_random_seed(0)
    model_2 = ns["build_model_2"](steps_per_epoch=steps, epochs=planned_epochs)
    peak = _peak_learning_rate(model_2.optimizer)
    config = model_2.optimizer.get_config()
    config["learning_rate"] = peak / 100
    model_2.compile(optimizer=type(model_2.optimizer).from_config(config), loss=model_2.loss, metrics=["accuracy"])
    marks = sorted(float(m) * 60 for m in args.checkpoints.split(",") if float(m) * 60 < budget - 1)
    checkpoints, per_epoch, paused = [], [], [0.0]
    tmp = Path(tempfile.mkdtemp())
    # Real Training faces (no PublicTest face), neither mirrored nor shifted, for the checkpoints' statistics.
    clean_faces = x_train[np.random.default_rng(0).choice(len(x_train), min(CLEAN_FACES, len(x_train)), replace=False)]
    train_start = time.perf_counter() - start
    print(
        f"{len(x_train):,} training faces · data and model ready after {train_start:.0f} s · about "
        f"{seconds_per_epoch:.0f} s an epoch, so model_2 is built for {planned_epochs} epochs · training until "
        f"{args.minutes:g} min · batch {batch} · peak learning rate {peak:g}",
        flush=True,
    )

    def checkpoint(model, epoch: float, elapsed: float, minutes: float) -> None:
        path = tmp / f"model_2_{minutes:.1f}min.keras"
        with _averaged_weights(model):  # what fit() would leave if training ended here
            model.save(path)
        result = evaluate_model(path, data, "PublicTest")
        tta = evaluate_model(path, data, "PublicTest", flip_tta=True)
        # The same weights with their batch norms' statistics over real faces, as the end of the run sets them.
        t0 = time.perf_counter()
        finished = keras.models.load_model(path, compile=False)
        reestimate_batch_norm_statistics(finished, clean_faces)
        finish_seconds = time.perf_counter() - t0
        finished.save(path.with_name(path.stem + "_statistics.keras"))
        clean = evaluate_model(path.with_name(path.stem + "_statistics.keras"), data, "PublicTest")
        checkpoints.append(
            {
                "minutes": round(minutes, 2),
                "epochs": round(epoch, 2),
                "elapsed_minutes": round(elapsed / 60, 2),
                "accuracy": round(result.accuracy, 4),
                "macro_f1": round(result.macro_f1, 4),
                "accuracy_flip_tta": round(tta.accuracy, 4),
                "accuracy_statistics_reestimated": round(clean.accuracy, 4),
                "reestimate_seconds": round(finish_seconds, 1),
            }
        )
        print(f"  {checkpoints[-1]}", flush=True)

    class WallClock(keras.callbacks.Callback):
        batches = 0

        def on_epoch_end(self, epoch, logs=None):
            t0 = time.perf_counter()
            elapsed = t0 - start - paused[0]
            with _averaged_weights(self.model):
                predicted = self.model.predict(x_test, batch_size=512, verbose=0).argmax(axis=1)
            per_epoch.append(
                {
                    "epoch": epoch + 1,
                    "minutes": round(elapsed / 60, 2),
                    "accuracy": round(float((predicted == test.labels).mean()), 4),
                }
            )
            print(
                f"  epoch {epoch + 1}: {per_epoch[-1]['accuracy']:.2%} PublicTest after "
                f"{per_epoch[-1]['minutes']:.1f} min",
                flush=True,
            )
            paused[0] += time.perf_counter() - t0

        def on_train_batch_begin(self, batch, logs=None):
            elapsed = time.perf_counter() - start - paused[0]
            done = (elapsed - train_start) / (budget - train_start)
            warm = 0.05
            cosine = 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * (done - warm) / (1 - warm)))
            factor = done / warm if done < warm else cosine
            self.model.optimizer.learning_rate = peak * float(np.clip(factor, 0.01, 1.0))

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            elapsed = time.perf_counter() - start - paused[0]
            if marks and elapsed >= marks[0]:
                t0 = time.perf_counter()
                checkpoint(self.model, self.batches / steps, elapsed, marks.pop(0) / 60)
                paused[0] += time.perf_counter() - t0
            if elapsed >= budget:
                self.model.stop_training = True

    clock = WallClock()
    model_2.fit(dataset(batch), epochs=1000, verbose=2, shuffle=False, callbacks=[clock])
    train_minutes = (time.perf_counter() - start - paused[0]) / 60
    epochs = round(clock.batches / steps, 2)  # the last epoch is cut where the budget ends
    final = tmp / "model_2.keras"
    checkpoint(model_2, epochs, train_minutes * 60, train_minutes)
    model_2.save(final)

    rows = []
    bfloat16 = cpu_has_bfloat16()

    def row(name, path, minutes, **kw):
        result = evaluate_model(path, data, "PublicTest", **kw)
        model = fold_batch_norms(keras.models.load_model(path, compile=False))  # as evaluate_model runs it
        if bfloat16:  # deployed on this CPU, it would compute in bfloat16 (accuracy above: float32, as saved)
            model = in_bfloat16(model)
        if kw.get("flip_tta"):
            model = with_flip_tta(model)
        x = model_inputs(test.images, kw.get("input_size", 48), kw.get("scale", "unit"))
        rate = faces_per_second(model, x, 512)  # best of three passes: one pass can meet a stall of the host
        rows.append(
            {
                "model": name,
                "accuracy": round(result.accuracy, 4),
                "macro_f1": round(result.macro_f1, 4),
                "parameters": result.parameters,
                "size_mb": round(result.model_bytes / 1e6, 2),
                "train_minutes": minutes,
                "faces_per_second": round(rate),
                "latency_ms": round(latency_ms(model, x), 1),
            }
        )

    row("model_2 (solution notebook)", final, round(train_minutes, 1))
    row("model_2 + flip TTA", final, round(train_minutes, 1), flip_tta=True)
    if Path(args.peer).is_file():
        row("mini-Xception peer", args.peer, None, input_size=64, scale="symmetric")
    if args.baseline_epochs:
        keras.utils.set_random_seed(0)
        model_1 = ns["build_model_1"]()
        aug = ns["make_augmentation"]()
        t = time.perf_counter()
        model_1.fit(
            dataset(ns["BATCH_SIZE"]).map(lambda a, b: (aug(a, training=True), b)),  # the handout's 256
            epochs=args.baseline_epochs,
            verbose=2,
            shuffle=False,
        )
        minutes_1 = (time.perf_counter() - t) / 60
        model_1.save(tmp / "model_1.keras")
        row(f"model_1 baseline ({args.baseline_epochs} epochs)", tmp / "model_1.keras", round(minutes_1, 1))

    print(f"\nFER2013 PublicTest ({len(test):,} faces) · {os.cpu_count()} CPU cores · training on Training only\n")
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
    print(
        "\ncheckpoints: "
        + ", ".join(
            f"{c['minutes']:g} min {c['accuracy']:.2%} "
            f"(flip TTA {c['accuracy_flip_tta']:.2%}, batch-norm statistics "
            f"re-estimated {c['accuracy_statistics_reestimated']:.2%})"
            for c in checkpoints
        )
    )
    # The data is named by what it holds, never by where it lies on this machine.
    described = (
        data.description.split(" (")[0]
        if data.description.startswith("SYNTHETIC")
        else f"FER2013, {len(train):,} Training and {len(test):,} PublicTest faces"
    )
    write_results(
        "fer2013_accuracy",
        keras=keras.__version__,
        data=described,
        budget_minutes=args.minutes,
        batch_size=batch,
        planned_epochs=planned_epochs,
        epochs=epochs,
        host_speed=speed,
        checkpoints=checkpoints,
        per_epoch=per_epoch,
        models=rows,
        inference_dtype="bfloat16" if bfloat16 else "float32",
        # what the notebook's build_model_2 chose by course.cpu.cpu_has_bfloat16 ...
        training_dtype="bfloat16" if bfloat16 else "float32",
        # ... and a oneDNN limit that made it choose float32 on a CPU with bfloat16 (a CPU without it,
        # as far as TensorFlow's kernels go)
        **({"onednn_max_cpu_isa": limit} if (limit := onednn_isa_limit()) else {}),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
