"""The reference build_model_2 (solution notebook) on a CPU with native bfloat16: the training step computes in
bfloat16 and the network is wider; prediction, evaluation and the saved model stay float32, so the file loads and
predicts the same on any CPU. On other CPUs: float32 throughout, at the narrower widths."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest


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
        rng = np.random.default_rng(1)
        x = rng.random((128, 48, 48, 1), dtype=np.float32)
        model.fit(x, keras.utils.to_categorical(rng.integers(0, 7, 128), 7), batch_size=32, epochs=1, verbose=0)
    finally:
        keras.Model.train_step = original
    assert seen, "expected the model's training step to call keras.Model.train_step, found no call"
    return model, seen, x


@pytest.mark.parametrize("epochs", [18, 30])  # without and with mixup
def test_on_a_bfloat16_cpu_training_is_bfloat16_and_the_model_float32(build_model_2, epochs, tmp_path):
    import keras

    from course.cpu import cpu_has_bfloat16

    if not cpu_has_bfloat16():
        pytest.skip("this CPU has no native bfloat16 (AVX-512 BF16 or AMX-BF16): the reference trains in float32")
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


def test_without_bfloat16_training_is_float32_and_narrower(build_model_2, monkeypatch):
    monkeypatch.setattr("course.cpu.cpu_has_bfloat16", lambda *args, **kwargs: False)
    narrow, seen, _ = _train_and_spy(build_model_2, 18)
    assert all(dtypes == {"float32"} for dtypes in seen), f"expected float32 convolutions in training, found {seen}"
    monkeypatch.setattr("course.cpu.cpu_has_bfloat16", lambda *args, **kwargs: True)
    wide = build_model_2(steps_per_epoch=4, epochs=18)  # built only: no bfloat16 arithmetic runs here
    assert narrow.count_params() < wide.count_params() <= 1.2e6, (
        f"expected the bfloat16 network wider than float32's and at most 1.2 M parameters, found "
        f"{wide.count_params():,} and {narrow.count_params():,}")
