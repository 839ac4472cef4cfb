"""The seven FER2013 emotion classes and their label codes.

Source: the FER2013 dataset description (Goodfellow et al. 2013, "Challenges in Representation Learning:
A report on three machine learning contests", ICML 2013 workshop; Kaggle csv column ``emotion``):
0=Angry, 1=Disgust, 2=Fear, 3=Happy, 4=Sad, 5=Surprise, 6=Neutral.
"""

from __future__ import annotations

#: Class names indexed by the FER2013 ``emotion`` code (0-6).
EMOTIONS: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")

# Spellings met in image-folder mirrors, the iPhone X data and photo file names.
_ALIASES = {
    "angry": 0,
    "anger": 0,
    "disgust": 1,
    "disgusted": 1,
    "fear": 2,
    "fearful": 2,
    "afraid": 2,
    "happy": 3,
    "happiness": 3,
    "sad": 4,
    "sadness": 4,
    "surprise": 5,
    "surprised": 5,
    "neutral": 6,
}


def emotion_code(name: str) -> int:
    """Return the FER2013 code (0-6) of an emotion name such as ``"happy"`` or ``"Surprised"``.

    Raises:
        KeyError: the name is not one of the seven FER2013 emotions (the message lists them).
    """
    key = name.strip().lower()
    if key not in _ALIASES:
        raise KeyError(f"unknown emotion {name!r}: expected one of {', '.join(e.lower() for e in EMOTIONS)}")
    return _ALIASES[key]


def check_class_codes(labels, classes: int, name: str = "labels", *, unlabelled: bool = False) -> None:
    """Check that every entry of ``labels`` is a class code ``0 … classes-1`` (or -1, the kit's mark of an unlabelled
    face such as Kaggle's test.csv rows, where ``unlabelled``).

    Raises:
        ValueError: names the first entry that is not (its index and value) and the codes expected.
    """
    lowest = -1 if unlabelled else 0
    for i, label in enumerate(labels):
        if isinstance(label, bool) or not float(label).is_integer() or not lowest <= int(label) < classes:
            shown = repr(label) if isinstance(label, str) else label
            also = " (-1: unlabelled)" if unlabelled else ""
            raise ValueError(f"{name} entry {i} is {shown}: expected a class code 0-{classes - 1}{also}")
