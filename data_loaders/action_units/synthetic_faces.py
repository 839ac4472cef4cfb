"""The synthetic FACS faces with exact Action Unit labels: the offline default of :func:`load_action_units`.

The kit's synthetic ``fer2013.csv`` images (:mod:`data_loaders.synthetic`) with the AU intensities each face was
rendered with (:func:`data_loaders.synthetic.sample_image_aus`; the kit's 0-1 scale × 5, so continuous like
OpenFace's ``_r``), presence = intensity ≥ 0.5 (rounds to A or more), and valence/arousal from the emotion's
circumplex position × expression strength (:mod:`data_loaders.synthetic.affect`; Russell 1980).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..settings import AU_DATA_PATH
from .dataset import ActionUnitDataset, ActionUnitFormatError
from .facts import MAX_INTENSITY


def load_synthetic(folder: Path) -> ActionUnitDataset:
    """The synthetic faces in ``folder`` (written by :func:`data_loaders.synthetic.generate`) with their AU labels.

    Raises:
        ActionUnitFormatError: the folder's ``fer2013.csv`` is not what the generator draws for its seed.
    """
    from ..fer2013 import load_fer2013
    from ..synthetic import AUS, MARKER, sample_image_aus
    from ..synthetic.affect import valence_arousal

    facts = json.loads((folder / MARKER).read_text())
    faces = load_fer2013(folder / "fer2013.csv")
    labels, usage, aus = sample_image_aus(int(facts["images"]), int(facts["seed"]))
    if not (np.array_equal(labels, faces.labels) and np.array_equal(usage, faces.usage)):
        raise ActionUnitFormatError(
            f"{folder}: fer2013.csv does not match the generator's draws for seed "
            f"{facts['seed']} (edited by hand, or written by another generator version)"
        )
    intensity = (aus * MAX_INTENSITY).astype(np.float32)
    valence, arousal = valence_arousal(labels, aus)
    n = len(labels)
    return ActionUnitDataset(
        faces.images,
        intensity,
        intensity >= 0.5,
        valence,
        arousal,
        labels,
        usage,
        np.array([f"synthetic-{i}" for i in range(n)]),
        np.arange(n, dtype=np.int64),
        tuple(AUS),
        str(folder),
        f"SYNTHETIC FACS faces with exact AU labels, not real people ({n:,} faces, "
        f"{len(AUS)} AUs, from {folder / 'fer2013.csv'}). To use real data, put OpenFace or DISFA-style labels "
        f"in data/action_units/ or set {AU_DATA_PATH.name}.",
    )
