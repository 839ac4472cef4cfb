"""course.inference.fold_batch_norms: the folded copy computes the same function with fewer layers."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import fit_random_faces


def _trained_bn_net(sequential: bool = False):
    """A small CNN with conv → BN, conv(bias) → BN, pool → BN (not foldable), residual add, dense → BN, and
    batch-norm statistics moved away from their initial values by a short fit."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    if sequential:
        model = keras.Sequential(
            [
                keras.Input((12, 12, 1)),
                layers.Conv2D(4, 3, use_bias=False),
                layers.BatchNormalization(),
                layers.ReLU(),
                layers.GlobalAveragePooling2D(),
                layers.Dense(7, activation="softmax"),
            ]
        )
    else:
        inputs = keras.Input((12, 12, 1))
        x = layers.RandomFlip("horizontal")(inputs)
        x = layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
        x = layers.Activation("relu")(layers.BatchNormalization(momentum=0.5)(x))
        y = layers.Conv2D(8, 3, padding="same")(x)
        y = layers.BatchNormalization(momentum=0.5, scale=False)(y)
        x = layers.Add()([x, y])
        x = layers.BatchNormalization(momentum=0.5)(layers.MaxPooling2D(2)(x))  # after a pool: stays
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.BatchNormalization(momentum=0.5)(layers.Dense(16)(x))
        model = keras.Model(inputs, layers.Dense(7, activation="softmax")(layers.ReLU()(x)))
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((64, 12, 12, 1), dtype=np.float32) * 3 + 1
    model.fit(x, rng.integers(0, 7, 64), epochs=3, batch_size=16, verbose=0)
    return model, x


@pytest.mark.parametrize("sequential", [False, True])
def test_folded_copy_predicts_the_same_with_the_foldable_batch_norms_gone(sequential):
    from course.inference import fold_batch_norms

    model, x = _trained_bn_net(sequential)
    folded = fold_batch_norms(model)
    expected = model.predict(x, verbose=0)
    difference = np.abs(folded.predict(x, verbose=0) - expected).max()
    assert difference < 1e-5, f"expected the folded copy to predict the same, found a difference of {difference:.2g}"
    spread = np.abs(expected - expected.mean(axis=0)).max()  # the check is not vacuous: outputs vary
    assert spread > 1e-3, f"expected predictions that differ from face to face, found a spread of {spread:.2g}"

    def kinds(m):
        return [type(layer).__name__ for layer in m.layers]

    remaining, before = kinds(folded).count("BatchNormalization"), kinds(model).count("BatchNormalization")
    assert remaining == (0 if sequential else 1), (  # only the batch norm after the pooling is left
        f"expected {0 if sequential else 1} batch norm left after folding, found {remaining}"
    )
    assert before == (1 if sequential else 4), f"expected {1 if sequential else 4} batch norms before, found {before}"
    assert folded.input_shape == model.input_shape and folded.output_shape == model.output_shape, (
        f"expected the shapes {model.input_shape} -> {model.output_shape}, found "
        f"{folded.input_shape} -> {folded.output_shape}"
    )
    assert np.array_equal(model.predict(x, verbose=0), expected), "expected the original model untouched, it changed"


@pytest.mark.slow
def test_folding_the_kit_model_2_keeps_its_predictions(build_model_2):
    """The solution notebook's model_2, as the accuracy benchmark measures it (the same network on every CPU),
    trained for two epochs so that its batch-norm statistics and moving average of the weights have moved."""
    import keras

    from course.inference import fold_batch_norms

    keras.utils.set_random_seed(0)
    model = build_model_2(steps_per_epoch=4, epochs=2)
    x = fit_random_faces(model, epochs=2)
    folded = fold_batch_norms(model)
    difference = np.abs(folded.predict(x, verbose=0) - model.predict(x, verbose=0)).max()
    assert difference < 1e-5, f"expected the folded model to predict the same, found a difference of {difference:.2g}"
    left = [layer.name for layer in folded.layers if type(layer).__name__ == "BatchNormalization"]
    assert not left, f"expected every batch norm of model_2 folded away, found {left}"


@pytest.mark.parametrize("copier", ["fold_batch_norms", "in_bfloat16"])
def test_subclassed_models_are_refused(copier):
    import keras

    import course.inference

    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="functional or Sequential"):
        getattr(course.inference, copier)(Net())


def test_bfloat16_copy_predicts_nearly_the_same_in_float32():
    from course.cpu import cpu_has_bfloat16
    from course.inference import fold_batch_norms, in_bfloat16

    if not cpu_has_bfloat16():
        pytest.skip("this CPU has no native bfloat16 (AVX-512 BF16 or AMX-BF16): in_bfloat16 is not for it")
    for sequential in (False, True):
        model, x = _trained_bn_net(sequential)
        folded = fold_batch_norms(model)
        copy = in_bfloat16(folded)
        expected, found = folded.predict(x, verbose=0), copy.predict(x, verbose=0)
        assert found.dtype == np.float32, f"expected float32 probabilities, found {found.dtype}"
        difference = np.abs(found - expected).max()
        assert difference < 2e-2, (
            f"expected probabilities within 2e-2 of float32's, found a difference of {difference:.2g}"
        )
        policies = {layer.name: layer.dtype_policy.name for layer in copy.layers if layer.weights}
        output = copy.layers[-1].name
        assert policies.pop(output) == "float32", f"expected the output layer {output} in float32, found {policies}"
        assert set(policies.values()) == {"mixed_bfloat16"}, f"expected the other layers in bfloat16, found {policies}"
