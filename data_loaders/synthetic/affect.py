"""Valence and arousal of the synthetic faces, from their emotion and how strongly they show it.

Source of the positions: Russell, J. A. (1980). A circumplex model of affect. *Journal of Personality and Social
Psychology*, 39(6), 1161-1178. Russell places affect words on a circle whose horizontal axis is pleasure
(valence, 0°) and vertical axis is arousal (90°): pleasure 0°, excitement 45°, arousal 90°, distress 135°,
displeasure 180°, depression 225°, sleepiness 270°, relaxation 315° (the paper's abstract). The angles below
are the positions the paper's direct circular scaling (Ross's technique, 28 affect words) gives the words
*happy* (7.8°), *astonished* (69.8°), *angry* (99.1°), *afraid* (116.9°) and *sad* (207.5°), as the paper's
table is widely reproduced, rounded to whole degrees; the kit uses them only to give synthetic faces plausible
labels. Disgust is not among Russell's 28 words: the kit places it at 140°, beside *distressed* and
*frustrated* (unpleasant, moderately aroused) — the kit's choice, not data. Neutral sits at the centre.

A face's point is its emotion's direction scaled by its expression strength (0 = no movement, 1 = the
prototype at full intensity): ``valence = s·cos θ``, ``arousal = s·sin θ``, both in [-1, 1].
"""

from __future__ import annotations

import numpy as np

from ..emotions import EMOTIONS
from .facs import emotion_au_table

#: Angle of each FER2013 emotion on Russell's circumplex, degrees (see the module docstring); Neutral has none.
EMOTION_ANGLES: dict[str, float | None] = {
    "Angry": 99.0,  # "angry"
    "Disgust": 140.0,  # not in Russell (1980): the kit's choice, near "distressed"/"frustrated"
    "Fear": 117.0,  # "afraid"
    "Happy": 8.0,  # "happy"
    "Sad": 208.0,  # "sad"
    "Surprise": 70.0,  # "astonished"
    "Neutral": None,  # the centre
}


def expression_strength(labels: np.ndarray, aus: np.ndarray) -> np.ndarray:
    """How strongly each face shows its emotion's prototype: ``float32 (N,)`` in [0, 1].

    The least-squares scale of the prototype AU vector that best fits the face's AUs (``aus`` in the kit's 0-1
    scale, ``(N, len(AUS))``), clipped to [0, 1]; 0 for Neutral (no prototype AUs).
    """
    proto = emotion_au_table()[np.asarray(labels)]
    norm = (proto**2).sum(axis=1)
    scale = np.where(norm > 0, (np.asarray(aus) * proto).sum(axis=1) / np.maximum(norm, 1e-9), 0.0)
    return np.clip(scale, 0.0, 1.0).astype(np.float32)


def valence_arousal(labels: np.ndarray, aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valence and arousal ``float32 (N,)`` each in [-1, 1] for FER2013 codes ``labels (N,)`` and AU
    intensities ``aus (N, len(AUS))`` (0-1): the emotion's circumplex direction × :func:`expression_strength`."""
    labels = np.asarray(labels)
    angle = np.array([np.nan if EMOTION_ANGLES[e] is None else np.deg2rad(EMOTION_ANGLES[e]) for e in EMOTIONS])
    theta = angle[labels]
    strength = expression_strength(labels, aus)
    valence = np.where(np.isnan(theta), 0.0, strength * np.cos(np.nan_to_num(theta)))
    arousal = np.where(np.isnan(theta), 0.0, strength * np.sin(np.nan_to_num(theta)))
    return valence.astype(np.float32), arousal.astype(np.float32)


def circumplex_points() -> dict[str, tuple[float, float]]:
    """Each emotion's prototype point (valence, arousal) at full strength; Neutral at (0, 0)."""
    return {
        e: (0.0, 0.0) if a is None else (float(np.cos(np.deg2rad(a))), float(np.sin(np.deg2rad(a))))
        for e, a in EMOTION_ANGLES.items()
    }


__all__ = ["EMOTION_ANGLES", "circumplex_points", "expression_strength", "valence_arousal"]
