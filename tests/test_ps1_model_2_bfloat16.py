"""The reference build_model_2 (solution notebook) on a CPU with native bfloat16: the training step computes in
bfloat16 and the network is wider; prediction, evaluation and the saved model stay float32, so the file loads and
predicts the same on any CPU. On other CPUs: float32 throughout, at the narrower widths. On both, long runs end on a
moving average of the weights, short runs on the last step's weights."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from conftest import fit_random_faces

pytestmark = pytest.mark.slow  # each test trains model_2 on a few batches


def _skip_without_bfloat16() -> None:
    from course.cpu import cpu_has_bfloat16

    if not cpu_has_bfloat16():
        pytest.skip("this CPU has no native bfloat16 (AVX-512 BF16 or AMX-BF16): the reference trains in float32")


def _train_and_spy(build_model_2, epochs: int):
    """Build for ``epochs``, fit one epoch of 128 random faces; return the model, the compute dtypes of its
    convolutions while Keras traced its training step, and the faces."""
    import keras

    seen = []
    original = keras.Model.train_step

    def spy(self, data):
        seen.append({layer.compute_dtype for layer in self.layers if isinstance(layer, keras.layers.Conv2D)})
        return original(self, data)

    keras.utils.set_random_seed(0)
    keras.Model.train_step = spy  # before the build: the reference keeps the training step it finds
    try:
        model = build_model_2(steps_per_epoch=4, epochs=epochs)
        x = fit_random_faces(model)
    finally:
        keras.Model.train_step = original
    assert seen, "expected the model's training step to call keras.Model.train_step, found no call"
    return model, seen, x


@pytest.mark.parametrize("epochs", [18, 30])  # without and with mixup
def test_on_a_bfloat16_cpu_training_is_bfloat16_and_the_model_float32(build_model_2, epochs, tmp_path):
    import keras

    _skip_without_bfloat16()
    model, seen, x = _train_and_spy(build_model_2, epochs)
    assert all(dtypes == {"bfloat16"} for dtypes in seen), f"expected bfloat16 convolutions in training, found {seen}"
    policies = {layer.dtype_policy.name for layer in model.layers}
    assert policies == {"float32"}, f"expected every layer float32 after training, found {policies}"
    model.save(tmp_path / "model_2.keras")
    config = zipfile.ZipFile(tmp_path / "model_2.keras").read("config.json").decode()
    assert "bfloat16" not in config, "expected a saved model in float32 (it must load on any CPU), found bfloat16"
    reloaded = keras.models.load_model(tmp_path / "model_2.keras", compile=False)
    difference = np.abs(reloaded.predict(x[:16], verbose=0) - model.predict(x[:16], verbose=0)).max()
    assert difference < 1e-5, f"expected the reloaded model to predict the same, found a difference of {difference:.2g}"


def test_without_bfloat16_training_is_float32_and_narrower(build_model_2, pretend_bfloat16):
    pretend_bfloat16(False)
    narrow, seen, _ = _train_and_spy(build_model_2, 18)
    assert all(dtypes == {"float32"} for dtypes in seen), f"expected float32 convolutions in training, found {seen}"
    pretend_bfloat16(True)
    wide = build_model_2(steps_per_epoch=4, epochs=18)  # built only: no bfloat16 arithmetic runs here
    assert narrow.count_params() < wide.count_params() <= 1.2e6, (
        f"expected the bfloat16 network wider than float32's and at most 1.2 M parameters, found "
        f"{wide.count_params():,} and {narrow.count_params():,}"
    )


def _weights_before_after_and_last_step(build_model_2, epochs: int):
    """Fit one epoch of 4 steps on random faces (:func:`fit_random_faces`); return the trainable weights before
    fit, after it, and as the last training step left them (before fit ended)."""
    import keras

    keras.utils.set_random_seed(0)
    model = build_model_2(steps_per_epoch=4, epochs=epochs)
    snapshot = {}

    class LastStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            snapshot["last"] = [w.numpy() for w in self.model.trainable_weights]

    before = [w.numpy() for w in model.trainable_weights]
    fit_random_faces(model, callbacks=[LastStep()])
    after = [w.numpy() for w in model.trainable_weights]
    return before, after, snapshot["last"]


def _distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b))))


@pytest.mark.parametrize("bfloat16", [False, True])
def test_long_runs_end_on_a_slow_moving_average_of_the_weights(build_model_2, pretend_bfloat16, bfloat16):
    """In runs of 30 epochs or more, in float32 and in bfloat16, fit leaves a moving average of the weights in the
    model: after 4 steps a slow average still lies nearer the starting weights than the last step's."""
    if bfloat16:
        _skip_without_bfloat16()
    else:
        pretend_bfloat16(False)
    before, after, last = _weights_before_after_and_last_step(build_model_2, epochs=30)
    to_start, to_last = _distance(after, before), _distance(after, last)
    assert to_start < to_last, (
        f"expected the weights after fit (a slow moving average) nearer the starting weights than the last step's, "
        f"found distances {to_start:.3g} to the start and {to_last:.3g} to the last step"
    )


@pytest.mark.parametrize("bfloat16, epochs", [(False, 18), (True, 18)])
def test_short_runs_end_on_the_last_steps_weights(build_model_2, pretend_bfloat16, bfloat16, epochs):
    if bfloat16:
        _skip_without_bfloat16()
    else:
        pretend_bfloat16(False)
    _, after, last = _weights_before_after_and_last_step(build_model_2, epochs=epochs)
    apart = _distance(after, last)
    assert apart == 0, (
        f"expected a {epochs}-epoch run in {'bfloat16' if bfloat16 else 'float32'} to end on its last step's "
        f"weights, found them {apart:.3g} apart"
    )
