"""benchmarks/fer2013_accuracy.py scores mid-run checkpoints with the weights ``fit`` would leave at its end."""

from __future__ import annotations

import numpy as np


def _tiny_classifier(use_ema: bool):
    """A softmax layer on 6 features, compiled with AdamW (with or without EMA), and 64 random
    samples (x float32 (64, 6), one-hot y (64, 7)) to fit it on."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(7, activation="softmax")])
    model.compile(optimizer=keras.optimizers.AdamW(0.1, use_ema=use_ema, ema_momentum=0.9),
                  loss="categorical_crossentropy")
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
    np.testing.assert_allclose(seen["inside"], seen["average"],
                               err_msg="expected the moving average inside the block, found other weights")
    np.testing.assert_allclose(seen["after"], seen["raw"],
                               err_msg="expected the raw weights back after the block, found other weights")


def test_without_a_moving_average_the_weights_are_left_alone():
    from benchmarks.fer2013_accuracy import _averaged_weights

    model, x, y = _tiny_classifier(use_ema=False)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    before = model.layers[-1].kernel.numpy().copy()
    with _averaged_weights(model):
        inside = model.layers[-1].kernel.numpy().copy()
    np.testing.assert_array_equal(inside, before, err_msg="expected the weights unchanged without EMA")
