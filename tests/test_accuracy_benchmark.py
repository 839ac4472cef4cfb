"""benchmarks/fer2013_accuracy.py scores mid-run checkpoints with the weights ``fit`` would leave at its end, and
with their batch-norm statistics re-estimated over real faces."""

from __future__ import annotations

import numpy as np
import pytest


def _tiny_classifier(use_ema: bool):
    """A softmax layer on 6 features, compiled with AdamW (with or without EMA), and 64 random
    samples (x float32 (64, 6), one-hot y (64, 7)) to fit it on."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(7, activation="softmax")])
    model.compile(
        optimizer=keras.optimizers.AdamW(0.1, use_ema=use_ema, ema_momentum=0.9), loss="categorical_crossentropy"
    )
    rng = np.random.default_rng(0)
    return model, rng.random((64, 6), dtype=np.float32), keras.utils.to_categorical(rng.integers(0, 7, 64), 7)


def test_checkpoints_use_the_moving_average_and_restore_the_raw_weights():
    import keras

    from benchmarks.fer2013_accuracy import _averaged_weights

    model, x, y = _tiny_classifier(use_ema=True)
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:  # mid-run: raw weights and their moving average differ
                seen["raw"] = self.model.layers[-1].kernel.numpy().copy()
                seen["average"] = self.model.optimizer._model_variables_moving_average[0].numpy().copy()
                with _averaged_weights(self.model):
                    seen["inside"] = self.model.layers[-1].kernel.numpy().copy()
                seen["after"] = self.model.layers[-1].kernel.numpy().copy()

    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[Probe()])
    assert not np.allclose(seen["raw"], seen["average"]), "expected the raw weights to differ from their average"
    np.testing.assert_allclose(
        seen["inside"], seen["average"], err_msg="expected the moving average inside the block, found other weights"
    )
    np.testing.assert_allclose(
        seen["after"], seen["raw"], err_msg="expected the raw weights back after the block, found other weights"
    )


def test_without_a_moving_average_the_weights_are_left_alone():
    from benchmarks.fer2013_accuracy import _averaged_weights

    model, x, y = _tiny_classifier(use_ema=False)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    before = model.layers[-1].kernel.numpy().copy()
    with _averaged_weights(model):
        inside = model.layers[-1].kernel.numpy().copy()
    np.testing.assert_array_equal(inside, before, err_msg="expected the weights unchanged without EMA")


def _two_batch_norms():
    """Conv -> BN -> ReLU -> Conv -> BN on (8, 8, 1) inputs, with stale running statistics (mean 0, variance 1),
    and 40 faces whose statistics are far from those: float32 (40, 8, 8, 1) around 3."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization(name="first")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(2, 3, padding="same")(x)
    outputs = keras.layers.BatchNormalization(name="second")(x)
    faces = 3 + np.random.default_rng(0).normal(size=(40, 8, 8, 1)).astype("float32")
    return keras.Model(inputs, outputs), faces


def test_reestimated_statistics_are_those_of_each_batch_norms_input_over_the_faces():
    import keras

    from benchmarks.fer2013_accuracy import reestimate_batch_norm_statistics

    model, faces = _two_batch_norms()
    reestimate_batch_norm_statistics(model, faces, batch_size=16)  # 16 + 16 + 8: the last batch is smaller
    for name in ("first", "second"):  # the second's input is computed with the first's new statistics
        layer = model.get_layer(name)
        x = keras.Model(model.input, layer.input).predict(faces, verbose=0)
        np.testing.assert_allclose(
            layer.moving_mean.numpy(),
            x.mean(axis=(0, 1, 2)),
            rtol=1e-4,
            atol=1e-5,
            err_msg=f"expected {name}'s running mean = its input's mean over the faces",
        )
        np.testing.assert_allclose(
            layer.moving_variance.numpy(),
            x.var(axis=(0, 1, 2)),
            rtol=1e-4,
            atol=1e-5,
            err_msg=f"expected {name}'s running variance = its input's variance over the faces",
        )


def test_reestimating_statistics_of_no_faces_is_refused():
    from benchmarks.fer2013_accuracy import reestimate_batch_norm_statistics

    model, faces = _two_batch_norms()
    with pytest.raises(ValueError, match="at least one face"):
        reestimate_batch_norm_statistics(model, faces[:0])
