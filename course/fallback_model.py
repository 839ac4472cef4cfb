"""A small stand-in for assignment 1's ``model_2``, so assignment 2 runs without it.

Trained by the kit on the default FER2013-format data (real FER2013 when configured, else the synthetic
faces): 8,000 ``Training`` faces, 5 epochs with augmentation, about a minute on 2 CPU cores; cached as
``<cache>/fallback_model_2-v1-<data key>.keras``. It is deliberately plain (three conv blocks, global pooling)
and weaker than a good ``model_2``: it only keeps the notebook runnable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

VERSION = 2
EPOCHS = 5


def fallback_model_2(verbose: bool = True) -> Path:
    """Path to the cached fallback model (trained on first use). Input ``float32 (N, 48, 48, 1)`` in [0, 1],
    output 7 softmax probabilities in FER2013 order."""
    from data_loaders import cache, load_fer2013

    data = load_fer2013()
    key = hashlib.sha256(data.description.split(" (parsed")[0].encode()).hexdigest()[:10]
    path = cache.cache_dir() / f"fallback_model_2-v{VERSION}-{key}.keras"
    if path.is_file():
        return path
    import keras
    from keras import layers

    if verbose:
        print(f"Training the fallback model once (about a minute) on: {data.description[:120]}", flush=True)
    train = data.subset("Training").sample(8000, seed=0)
    x = train.images[..., None].astype("float32") / 255.0
    keras.utils.set_random_seed(0)
    inputs = keras.Input((48, 48, 1))
    # augmentation inside the model (active only in training), so its features tolerate the small shifts,
    # zooms and the interpolation blur that fine-tuning on 7 augmented photos brings
    h = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.04),
                          layers.RandomTranslation(0.1, 0.1), layers.RandomZoom(0.1)], name="augmentation")(inputs)
    for filters in (32, 64, 128):
        h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization(momentum=0.9)(h)
        h = layers.Activation("relu")(h)
        h = layers.MaxPooling2D(2)(h)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dropout(0.3)(h)
    outputs = layers.Dense(7, activation="softmax")(h)
    model = keras.Model(inputs, outputs, name="fallback_model_2")
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, train.labels, batch_size=128, epochs=EPOCHS, verbose=0)
    tmp = path.with_name(path.name + ".tmp.keras")
    model.save(tmp)
    tmp.replace(path)
    return path
