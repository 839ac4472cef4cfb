"""Instructor side of the fallback ``model_2``: how the kit trains it (not shipped to students).

Trained on the default FER2013-format data (real FER2013 when configured, else the synthetic faces): 8,000
``Training`` faces, 5 epochs with augmentation, about 20 s on 2 CPU cores. It is deliberately plain (three conv
blocks on 24, 12 and 6-pixel maps, global pooling) and weaker than a good ``model_2``: it only keeps assignment 2
runnable. The augmentation is applied by a separate model during training and is not part of the saved file, so the file
students receive holds only the trained network (see :mod:`course.fallback_model`).
"""

from __future__ import annotations

from pathlib import Path

EPOCHS = 5


def train_fallback_model_2(data, path: Path, verbose: bool = True) -> Path:
    """Train the fallback ``model_2`` on ``data`` (a FER2013 ``ImageDataset``) and save it atomically to ``path``.

    The saved model takes ``float32 (N, 48, 48, 1)`` in [0, 1] and returns 7 softmax probabilities in FER2013
    order (0 Angry … 6 Neutral).

    Raises:
        ValueError: ``data`` has no ``Training`` rows.
    """
    import keras
    from keras import layers

    if verbose:
        print(f"Training the fallback model once (about 20 s) on: {data.description[:120]}", flush=True)
    train = data.subset("Training").sample(8000, seed=0)
    x = train.images[..., None].astype("float32") / 255.0
    keras.utils.set_random_seed(0)
    inputs = keras.Input((48, 48, 1))
    h = inputs
    # a stride-2 first convolution and no pooling after the last: maps of 24, 12 and 6 pixels, a quarter of the
    # multiply-adds of full-resolution maps (synthetic PublicTest: 38.4 % against 36.6 %, 33 s of CPU against 127)
    for filters, stride, pool in ((32, 2, True), (64, 1, True), (128, 1, False)):
        h = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization(momentum=0.9)(h)
        h = layers.Activation("relu")(h)
        if pool:
            h = layers.MaxPooling2D(2)(h)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dropout(0.3)(h)
    outputs = layers.Dense(7, activation="softmax")(h)
    model = keras.Model(inputs, outputs, name="fallback_model_2")
    # augmentation during training only (its features then tolerate the small shifts, zooms and interpolation
    # blur that fine-tuning on 7 augmented photos brings); a wrapper model, so the saved file stays plain
    augmentation = keras.Sequential(
        [
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.04),
            layers.RandomTranslation(0.1, 0.1),
            layers.RandomZoom(0.1),
        ]
    )
    trainer = keras.Sequential([keras.Input((48, 48, 1)), augmentation, model])
    trainer.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    trainer.fit(x, train.labels, batch_size=128, epochs=EPOCHS, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.keras")
    model.save(tmp)
    tmp.replace(path)
    return path
