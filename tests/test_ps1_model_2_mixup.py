"""The reference build_model_2 (solution notebook): mixup in long runs only, off at the end of the schedule, and
a saved model that is the plain network; batch-norm statistics averaged over the last steps, on faces neither
mirrored nor shifted."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # each test trains model_2 on a few batches


@pytest.fixture(autouse=True)
def _float32(pretend_bfloat16):
    """These tests follow the float32 arithmetic exactly; on a CPU with bfloat16 the reference would train in
    bfloat16 (tests/test_ps1_model_2_bfloat16.py), so they ask for float32 whatever the CPU."""
    pretend_bfloat16(False)


def _faces_seen_in_training(model, iteration: int, faces: np.ndarray | None = None) -> np.ndarray:
    """Run one eager training step at optimizer step ``iteration`` on 8 faces (by default face i filled with the
    value (i + 1) / 10) and return the faces the underlying Keras training step received, (8, 48, 48, 1)."""
    import keras

    if faces is None:
        faces = np.repeat(np.arange(1, 9, dtype=np.float32) / 10, 48 * 48).reshape(8, 48, 48, 1)
    labels = keras.utils.to_categorical(np.arange(8) % 7, 7).astype(np.float32)
    seen = []
    original = keras.Model.train_step

    def spy(self, data):
        seen.append(np.asarray(data[0]))
        return original(self, data)

    model.run_eagerly = True
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(iteration)
    keras.Model.train_step = spy
    try:
        model.train_step((keras.ops.convert_to_tensor(faces), keras.ops.convert_to_tensor(labels)))
    finally:
        keras.Model.train_step = original
    assert seen, "expected the model's training step to call keras.Model.train_step, found no call"
    return seen[0]


def _is_unblended(faces: np.ndarray) -> bool:
    return bool(np.allclose(faces[:, 0, 0, 0], np.arange(1, 9) / 10, atol=1e-6))


def test_long_runs_train_on_blended_faces_until_the_learning_rate_is_low(build_model_2):
    import keras

    keras.utils.set_random_seed(0)
    steps, epochs = 10, 30
    model = build_model_2(steps_per_epoch=steps, epochs=epochs)
    mid = _faces_seen_in_training(model, steps * epochs // 2)
    assert not _is_unblended(mid), f"expected blended faces mid-run (mixup), found the originals {mid[:, 0, 0, 0]}"
    # each blend is lam * a + (1 - lam) * b with lam in [0.5, 1]: it lies between a and b, nearer to a
    original = np.arange(1, 9) / 10
    partner = original[::-1]
    values = mid[:, 0, 0, 0]
    assert np.all(np.abs(values - original) <= np.abs(values - partner) + 1e-6), (
        f"expected each blend nearer its own face {original} than its partner {partner}, found {values}"
    )
    end = _faces_seen_in_training(model, steps * epochs - 1)
    assert _is_unblended(end), f"expected real faces at the end of the schedule, found {end[:, 0, 0, 0]}"


def test_short_runs_train_on_real_faces(build_model_2):
    import keras

    keras.utils.set_random_seed(0)
    model = build_model_2(steps_per_epoch=10, epochs=18)
    faces = _faces_seen_in_training(model, 90)
    assert _is_unblended(faces), f"expected the real faces in an 18-epoch run, found {faces[:, 0, 0, 0]}"


def test_a_mixup_model_saves_as_the_plain_network(build_model_2, tmp_path):
    import keras

    from course.inference import has_layer_graph

    keras.utils.set_random_seed(0)
    model = build_model_2(steps_per_epoch=4, epochs=30)
    rng = np.random.default_rng(1)
    x = rng.random((128, 48, 48, 1), dtype=np.float32)
    model.fit(x, keras.utils.to_categorical(rng.integers(0, 7, 128), 7), batch_size=32, epochs=1, verbose=0)
    model.save(tmp_path / "model_2.keras")
    reloaded = keras.models.load_model(tmp_path / "model_2.keras", compile=False)
    assert type(reloaded).__name__ == "Functional" and has_layer_graph(reloaded), (
        f"expected a plain functional model, found {type(reloaded).__name__}"
    )
    difference = np.abs(reloaded.predict(x[:16], verbose=0) - model.predict(x[:16], verbose=0)).max()
    assert difference < 1e-5, f"expected the reloaded model to predict the same, found a difference of {difference:.2g}"


def test_the_last_steps_average_the_batch_norm_statistics(build_model_2):
    """Past the peak and below 1.5 % of it, each batch norm's running statistics are the plain average of the
    batches' statistics: checked on the frozen stem's batch norm, whose input the faces alone decide."""
    import keras

    keras.utils.set_random_seed(0)
    steps, epochs = 10, 30
    model = build_model_2(steps_per_epoch=steps, epochs=epochs)
    _faces_seen_in_training(model, steps * epochs // 2)  # mid-run, at a high learning rate: mixup
    stem = model.get_layer("cosine_stem")
    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    # Faces of one grey level each are unchanged by the mirror and the shifts (nearest fill) and by blending
    # within the batch, so the batch statistics are those of the stem's output on the faces themselves.
    labels = keras.utils.to_categorical(np.arange(8) % 7, 7).astype(np.float32)
    expected_means, expected_variances = [], []
    for iteration, grey in zip(range(steps * epochs - 3, steps * epochs), (0.2, 0.9, 0.5)):
        faces = np.full((8, 48, 48, 1), grey, dtype=np.float32)
        features = np.asarray(stem(faces))
        expected_means.append(features.mean(axis=(0, 1, 2)))
        expected_variances.append(features.var(axis=(0, 1, 2)))
        model.optimizer.iterations.assign(iteration)
        model.train_step((keras.ops.convert_to_tensor(faces), keras.ops.convert_to_tensor(labels)))
    found_mean, found_variance = np.asarray(norm.moving_mean), np.asarray(norm.moving_variance)
    expected_mean, expected_variance = np.mean(expected_means, axis=0), np.mean(expected_variances, axis=0)
    assert np.allclose(found_mean, expected_mean, atol=1e-4), (
        f"expected the running mean to be the average of the last three batches' means {expected_mean[:4]}..., "
        f"found {found_mean[:4]}..."
    )
    assert np.allclose(found_variance, expected_variance, atol=1e-4), (
        f"expected the running variance to be the average of the last three batches' variances "
        f"{expected_variance[:4]}..., found {found_variance[:4]}..."
    )


def _ramps() -> np.ndarray:
    """8 identical faces, a left-to-right ramp from 0.1 to 0.9: a blend of two of them is the ramp again, a mirror
    or a shift is not."""
    return np.broadcast_to(np.linspace(0.1, 0.9, 48, dtype=np.float32)[None, None, :, None], (8, 48, 48, 1)).copy()


def test_long_runs_augment_in_their_training_step_except_in_the_last_steps(build_model_2):
    """The augmentation (mirror, shifts) moves into the training step of long runs, so that the last steps, whose
    batch statistics become the running ones, see the faces as the test does; short runs keep it in the network."""
    import keras

    keras.utils.set_random_seed(0)
    steps, epochs = 10, 30
    model = build_model_2(steps_per_epoch=steps, epochs=epochs)
    ramps = _ramps()
    mid = _faces_seen_in_training(model, steps * epochs // 2, faces=ramps)
    changed = int(np.sum(np.abs(mid - ramps).max(axis=(1, 2, 3)) > 1e-3))
    assert changed, "expected mirrored or shifted faces mid-run, found all 8 faces as given"
    end = _faces_seen_in_training(model, steps * epochs - 1, faces=ramps)
    difference = float(np.abs(end - ramps).max())
    assert difference < 1e-6, f"expected the faces as given in the last steps, found a difference of {difference:.3g}"
    short = build_model_2(steps_per_epoch=steps, epochs=18)
    names = [layer.name for layer in short.layers]
    assert "augmentation" in names, f"expected the augmentation inside an 18-epoch run's network, found {names}"
