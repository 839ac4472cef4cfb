"""The trained stand-in for assignment 1's ``model_2``, so assignment 2 runs without it.

Student-facing: this module hands out a trained model **file** and nothing else (no architecture, no
augmentation to copy). Where the file comes from, in order:

1. ``course/models/fallback_model_2.keras`` beside this module: the copy ``python -m course bundle`` ships in the
   student bundle;
2. the per-machine cache, ``<cache>/fallback_model_2-v<VERSION>-<data key>.keras`` (the key names the default
   FER2013-format data it was trained on);
3. in the instructor kit only: trained once by ``course.fallback_training`` (about 20 s) and cached.

Graders use the instructor kit, so grading always uses the model trained on the instructor's default data.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import numpy as np

VERSION = 4
#: The file the student bundle ships (absent in the instructor repository).
SHIPPED = Path(__file__).resolve().parent / "models" / "fallback_model_2.keras"


def cached_path() -> Path:
    """The cache path of the fallback model trained on this machine's default FER2013-format data."""
    from data_loaders import cache, load_fer2013

    data = load_fer2013()
    # keyed on the data itself: its description reads differently once its parse is cached, and two keys meant two
    # fallback models (one for the first run on a machine, another for every run after it)
    digest = hashlib.sha256(data.source.encode())
    for array in (data.images, data.labels, data.usage.astype("U")):
        digest.update(np.ascontiguousarray(array).tobytes())
    return cache.cache_dir() / f"fallback_model_2-v{VERSION}-{digest.hexdigest()[:10]}.keras"


def fallback_model_2(verbose: bool = True) -> Path:
    """Path to the trained fallback ``model_2`` (see the module docstring for where it comes from).

    The model takes ``float32 (N, 48, 48, 1)`` in [0, 1] and returns 7 softmax probabilities in FER2013 order.

    Raises:
        FileNotFoundError: neither a shipped nor a cached file exists and this installation cannot train one
            (a student bundle made without its model file).
    """
    if SHIPPED.is_file():
        return SHIPPED
    path = cached_path()
    if path.is_file():
        return path
    try:
        from .fallback_training import train_fallback_model_2
    except ImportError:
        raise FileNotFoundError(
            f"the fallback model_2 is missing: expected {SHIPPED} (shipped with the course bundle) or {path}. "
            "Ask your instructor for the bundle's models/fallback_model_2.keras, or set MODEL_2_PATH to your "
            "own model_2.keras from assignment 1."
        ) from None
    from data_loaders import load_fer2013

    path.parent.mkdir(parents=True, exist_ok=True)
    with _one_trainer(path):  # parallel graders or test workers: one trains, the others wait for its file
        if path.is_file():
            return path
        return train_fallback_model_2(load_fer2013(), path, verbose=verbose)


@contextlib.contextmanager
def _one_trainer(path: Path):
    """Hold an exclusive lock on ``<path>.lock`` (POSIX ``flock``; where there is none, no lock: a second process
    trains too, and the atomic save keeps one whole file)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
