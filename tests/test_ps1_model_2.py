"""The reference ``build_model_2`` (ps1 solution notebook): one float32 network whatever the CPU and the length of
the run, saved as a plain model that loads in safe mode, a moving average of the weights that a short run does not
leave near its initial weights, a cell short enough to learn from; and no module of the kit reaching into Keras's
private attributes."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import REPO

#: Keras private attributes the kit once reached into (the optimizer's moving average, a layer's call graph).
PRIVATE_KERAS = ("optimizer._", "_averaged_weights", "_overwrite_model_variables", "_inbound_nodes")
#: Where the kit's code lives: Python modules and the notebooks' cells (the solutions and their release).
KIT_FOLDERS = ("course", "data_loaders", "widgets", "benchmarks", "solutions", "assignments")
CELL_LINES = 60  # the limit for the whole build_model_2 cell, comments included


def _architecture(model) -> list[tuple]:
    """Every layer's class, output shape, weight shapes and dtype policy, in order: what makes the network."""
    return [
        (
            type(layer).__name__,
            tuple(layer.output.shape),
            [tuple(w.shape) for w in layer.weights],
            layer.dtype_policy.name,
        )
        for layer in model.layers
    ]


def test_the_network_is_the_same_float32_one_whatever_the_cpu_or_the_run_length(build_model_2, pretend_bfloat16):
    pretend_bfloat16(False)
    plain = build_model_2(steps_per_epoch=32, epochs=1)
    pretend_bfloat16(True)  # a CPU with native bfloat16, as course.cpu would answer there
    for steps, epochs in ((1, 1), (32, 1), (450, 4), (450, 18), (449, 60)):  # (1, 1): the speed benchmarks
        model = build_model_2(steps_per_epoch=steps, epochs=epochs)
        assert _architecture(model) == _architecture(plain), (
            f"expected the network built for {epochs} epochs of {steps} steps on a bfloat16 CPU to be the float32 "
            f"one built for a 1-epoch run without bfloat16, found {_architecture(model)} against "
            f"{_architecture(plain)}"
        )
    assert model.count_params() == plain.count_params() <= 1_000_000, (
        f"expected the same parameter count for every build, at most 1 M, found {model.count_params():,} and "
        f"{plain.count_params():,}"
    )
    policies = {layer.dtype_policy.name for layer in model.layers}
    assert policies == {"float32"}, f"expected every layer float32, found the dtype policies {policies}"
    assert model.optimizer.use_ema, "expected the optimizer to keep a moving average of the weights, found none"


def _faces(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic faces, float32 (n, 48, 48, 1) in [0, 1], and their one-hot labels float32 (n, 7)."""
    import keras

    from data_loaders.synthetic import sample_images

    images, labels, _ = sample_images(n, seed=3)
    return images[..., None].astype("float32") / 255, keras.utils.to_categorical(labels, 7).astype("float32")


def _distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b))))


@pytest.mark.slow  # renders 1,024 faces and trains model_2 for 16 steps (about 20 s on 2 cores)
def test_a_grading_length_run_ends_near_its_last_weights_and_saves_a_plain_float32_model(build_model_2, tmp_path):
    """A one-epoch run of 16 steps (a grading run has 8): Keras' moving average has no bias
    correction and starts from the first step's weights, so a fixed slow average (0.998) would end within a few
    percent of there; the reference's average follows the last ~10 % of the steps."""
    import keras

    x, y = _faces(1024)
    keras.utils.set_random_seed(0)
    model = build_model_2(steps_per_epoch=16, epochs=1)
    start = [w.numpy() for w in model.trainable_weights]
    last = {}

    class LastStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            last["weights"] = [w.numpy() for w in self.model.trainable_weights]

    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[LastStep()])
    after = [w.numpy() for w in model.trainable_weights]
    moved, trained = _distance(after, start), _distance(last["weights"], start)
    assert moved > 0.5 * trained, (
        f"expected fit to leave weights at least half as far from the initial ones as the last step's, found "
        f"{moved:.3g} against {trained:.3g}: the moving average still holds the initial weights"
    )
    model.save(tmp_path / "model_2.keras")
    reloaded = keras.models.load_model(tmp_path / "model_2.keras", compile=False, safe_mode=True)
    assert type(reloaded).__name__ == "Functional", f"expected a functional model, found {type(reloaded).__name__}"
    probabilities = reloaded.predict(x[:16], verbose=0)
    assert probabilities.dtype == np.float32 and probabilities.shape == (16, 7), (
        f"expected float32 probabilities (16, 7), found {probabilities.dtype} {probabilities.shape}"
    )
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4), (
        f"expected softmax rows summing to 1, found sums {probabilities.sum(axis=1)}"
    )
    difference = np.abs(probabilities - model.predict(x[:16], verbose=0)).max()
    assert difference < 1e-5, f"expected the reloaded model to predict the same, found a difference of {difference:.2g}"


def _build_model_2_cell() -> str:
    from course.notebook_cells import cell_by_grade_id, cell_source

    return cell_source(cell_by_grade_id(REPO / "solutions" / "ps1_fer2013_cnn" / "fer2013_cnn.ipynb", "build_model_2"))


def test_the_reference_cell_is_short_and_uses_public_keras_only():
    source = _build_model_2_cell()
    lines = len(source.splitlines())
    assert lines <= CELL_LINES, f"expected the build_model_2 cell in at most {CELL_LINES} lines, found {lines}"
    private = sorted(set(re.findall(r"\.\_[A-Za-z]\w*", source)))
    assert not private, f"expected no private attribute in the build_model_2 cell, found {private}"
    for machinery in ("train_step", "dtype_policy", "cpu_has_bfloat16", "course.cpu", "epochs >", "epochs <"):
        assert machinery not in source, f"expected no {machinery!r} in the build_model_2 cell, found it"


def _kit_texts():
    """(path relative to the repository, text) of every Python module and notebook of the kit's folders."""
    for folder in KIT_FOLDERS:
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in (".py", ".ipynb") and ".ipynb_checkpoints" not in path.parts:
                yield path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8")


def test_no_module_of_the_kit_uses_private_keras_attributes():
    found = [(name, attribute) for name, text in _kit_texts() for attribute in PRIVATE_KERAS if attribute in text]
    assert not found, f"expected no Keras private attribute in the kit, found (file, attribute) {found}"
