"""FACS Action Units and the AU combinations of the seven FER2013 emotions.

Sources:
* Action Unit numbers and names: Ekman, P. & Friesen, W. V. (1978), *Facial Action Coding System*; Ekman,
  Friesen & Hager (2002), *FACS Investigator's Guide*.
* The AU combinations of the basic emotions (EMFACS prototypes as restated in ``shared/HANDOUT.md``):
  Happiness 6+12 · Sadness 1+4+15 · Surprise 1+2+5B+26 · Fear 1+2+4+5+7+20+26 · Anger 4+5+7+23 ·
  Disgust 9+15+16 · Neutral: none.

The intensity letters A (trace) … E (maximum) are FACS's; mapping them to evenly spaced numbers 0.2 … 1.0 is
this kit's convention (the FACS manual's intensity ranges are not equally wide). Letters other than the
handout's "5B" for surprise are the kit's choice of a typical intensity, not data.
"""

from __future__ import annotations

import numpy as np

#: Action Units the synthetic face can show, with their FACS names. Intensity vectors follow this order.
AU_NAMES: dict[str, str] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer",
    "AU5": "upper lid raiser",
    "AU6": "cheek raiser",
    "AU7": "lid tightener",
    "AU9": "nose wrinkler",
    "AU12": "lip corner puller",
    "AU15": "lip corner depressor",
    "AU16": "lower lip depressor",
    "AU20": "lip stretcher",
    "AU23": "lip tightener",
    "AU26": "jaw drop",
}
AUS: tuple[str, ...] = tuple(AU_NAMES)

#: FACS intensity letters mapped to 0-1 (the kit's evenly spaced convention; see the module docstring).
FACS_INTENSITY: dict[str, float] = {"A": 0.2, "B": 0.4, "C": 0.6, "D": 0.8, "E": 1.0}

#: The prototype AUs of each FER2013 emotion with a typical FACS intensity letter.
EMOTION_AUS: dict[str, dict[str, str]] = {
    "Angry": {"AU4": "D", "AU5": "B", "AU7": "C", "AU23": "C"},
    "Disgust": {"AU9": "D", "AU15": "B", "AU16": "B"},
    "Fear": {"AU1": "C", "AU2": "B", "AU4": "B", "AU5": "D", "AU7": "B", "AU20": "C", "AU26": "B"},
    "Happy": {"AU6": "C", "AU12": "D"},
    "Sad": {"AU1": "C", "AU4": "B", "AU15": "C"},
    "Surprise": {"AU1": "D", "AU2": "D", "AU5": "B", "AU26": "D"},
    "Neutral": {},
}


def au_vector(aus: dict[str, float | str] | None = None) -> np.ndarray:
    """Turn ``{"AU12": 0.8, "AU6": "C"}`` into a ``float32 (len(AUS),)`` intensity vector in :data:`AUS` order.

    Intensities are numbers in [0, 1] or FACS letters A-E.

    Raises:
        KeyError: an Action Unit the face model does not have (the message lists those it has).
        ValueError: an intensity outside [0, 1] or a letter other than A-E.
    """
    vector = np.zeros(len(AUS), np.float32)
    for name, value in (aus or {}).items():
        key = name.upper().replace(" ", "")
        key = key if key.startswith("AU") else f"AU{key}"
        if key not in AU_NAMES:
            raise KeyError(f"unknown Action Unit {name!r}: the face model has {', '.join(AUS)}")
        if isinstance(value, str):
            if value.upper() not in FACS_INTENSITY:
                raise ValueError(f"{key}: intensity {value!r} is not a FACS letter A-E")
            value = FACS_INTENSITY[value.upper()]
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{key}: intensity {value} is outside [0, 1]")
        vector[AUS.index(key)] = float(value)
    return vector


def emotion_au_table() -> np.ndarray:
    """The prototype intensities as ``float32 (7, len(AUS))``, rows in FER2013 emotion-code order."""
    from ..emotions import EMOTIONS

    return np.stack([au_vector(EMOTION_AUS[e]) for e in EMOTIONS])
