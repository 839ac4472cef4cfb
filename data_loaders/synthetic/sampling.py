"""Random draws for synthetic faces: identities, emotion → Action Unit intensities, head pose and scale."""

from __future__ import annotations

import numpy as np

from .face_model import IDENTITY_NAMES
from .facs import AUS, emotion_au_table

#: FER2013 ``Training`` images per class (Angry … Neutral; dataset counts), used for FER2013-like class shares.
FER2013_TRAINING_COUNTS = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965])
#: FER2013 rows per ``Usage``: Training, PublicTest, PrivateTest (dataset description).
FER2013_USAGE_COUNTS = {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}


def draw_identities(n: int, rng: np.random.Generator) -> np.ndarray:
    """``float32 (n, len(IDENTITY_NAMES))`` standard-normal identity coefficients, clipped to ±2.5."""
    return np.clip(rng.standard_normal((n, len(IDENTITY_NAMES))), -2.5, 2.5).astype(np.float32)


def draw_expressions(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """AU intensities ``float32 (N, len(AUS))`` in [0, 1] for FER2013 emotion codes ``labels (N,)``.

    Starts from the emotion's prototype AUs (:data:`~data_loaders.synthetic.facs.EMOTION_AUS`), scales them by
    an overall expression strength (0.45-1), jitters each intensity (log-normal, σ = 0.25), drops each
    prototype AU with probability 0.12 and adds one random extra AU (0.1-0.45) with probability 0.25, so
    classes overlap as real ones do (e.g. fear and surprise share AU1+2+5+26). Neutral starts with no AU.
    """
    labels = np.asarray(labels)
    base = emotion_au_table()[labels]
    n, k = base.shape
    strength = rng.uniform(0.45, 1.0, (n, 1))
    aus = base * strength * rng.lognormal(0.0, 0.25, (n, k))
    aus[(rng.random((n, k)) < 0.12) & (base > 0)] = 0.0
    extra = rng.random(n) < 0.25
    which = rng.integers(0, k, n)
    amount = rng.uniform(0.1, 0.45, n)
    aus[np.flatnonzero(extra), which[extra]] += amount[extra]
    return np.clip(aus, 0.0, 1.0).astype(np.float32)


def draw_poses(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Small head rotations (radians; yaw σ 3°, pitch σ 3°, roll σ 2°), scale (σ 3 %), shift (σ 2 mm)."""
    deg = np.pi / 180
    return {
        "yaw": (rng.standard_normal(n) * 3 * deg).astype(np.float32),
        "pitch": (rng.standard_normal(n) * 3 * deg).astype(np.float32),
        "roll": (rng.standard_normal(n) * 2 * deg).astype(np.float32),
        "scale": (1 + 0.03 * rng.standard_normal(n)).astype(np.float32),
        "shift": (0.002 * rng.standard_normal((n, 3))).astype(np.float32),
    }


def usage_counts(n_images: int) -> dict[str, int]:
    """Split ``n_images`` into Training/PublicTest/PrivateTest in FER2013's proportions (80 / 10 / 10 %)."""
    total = sum(FER2013_USAGE_COUNTS.values())
    public = round(n_images * FER2013_USAGE_COUNTS["PublicTest"] / total)
    return {"Training": n_images - 2 * public, "PublicTest": public, "PrivateTest": public}


def draw_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """``int64 (n,)`` emotion codes drawn with FER2013's Training class shares (Happy 25 %, Disgust 1.5 %)."""
    shares = FER2013_TRAINING_COUNTS / FER2013_TRAINING_COUNTS.sum()
    return rng.choice(len(shares), size=n, p=shares).astype(np.int64)


__all__ = [
    "AUS",
    "FER2013_TRAINING_COUNTS",
    "FER2013_USAGE_COUNTS",
    "draw_expressions",
    "draw_identities",
    "draw_labels",
    "draw_poses",
    "usage_counts",
]
