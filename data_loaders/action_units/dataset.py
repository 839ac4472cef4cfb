"""The Action Unit dataset object and the error every Action Unit reader raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from ..dataset import BadRow, UsageDataset
from ..emotions import EMOTIONS
from .facts import AU_FACTS

#: The side of every face crop, in pixels (FER2013's 48×48).
IMAGE_SIZE = 48


class ActionUnitFormatError(ValueError):
    """An Action Unit file, row or frame that does not match the expected format; the message names it."""


@dataclass(frozen=True)
class ActionUnitDataset(UsageDataset):
    """Faces with Action Unit labels, valence and arousal.

    Attributes:
        images: ``uint8 (N, 48, 48)`` grey levels 0-255, not normalised.
        intensity: ``float32 (N, K)`` AU intensity 0-5 (0 absent, 1-5 = FACS A-E; continuous for OpenFace and
            the synthetic faces, whole numbers for DISFA), columns in ``au_names`` order.
        presence: ``bool (N, K)`` whether each AU is present.
        valence, arousal: ``float32 (N,)`` in [-1, 1]; NaN where the source has none.
        labels: ``int64 (N,)`` FER2013 emotion codes 0-6, ``-1`` where the source has none.
        usage: ``str (N,)`` ``Training`` / ``PublicTest`` / ``PrivateTest``.
        subjects: ``str (N,)`` who the face belongs to (a DISFA subject, an OpenFace file, a synthetic identity).
        frames: ``int64 (N,)`` the frame number in the source (row number for the synthetic faces).
        au_names: ``("AU1", "AU2", …)``, the column order of ``intensity`` and ``presence``.
        class_names: emotion names indexed by label code. source, description: where the data came from.
        bad_rows: items left out, each naming the file/line or frame and the reason.

    ``len``, ``select``, ``sample``, ``subset`` and ``usages`` come from
    :class:`~data_loaders.dataset.UsageDataset` and keep every array of :attr:`ROW_FIELDS` aligned.

    Raises:
        ValueError: (on construction) images not ``uint8 (N, 48, 48)``, or an array whose shape does not match.
    """

    images: np.ndarray
    intensity: np.ndarray
    presence: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    subjects: np.ndarray
    frames: np.ndarray
    au_names: tuple[str, ...]
    source: str
    description: str
    class_names: tuple[str, ...] = EMOTIONS
    bad_rows: tuple[BadRow, ...] = field(default=())

    ROW_FIELDS: ClassVar[tuple[str, ...]] = (
        "images",
        "intensity",
        "presence",
        "valence",
        "arousal",
        "labels",
        "usage",
        "subjects",
        "frames",
    )

    def __post_init__(self) -> None:
        n, k = len(self.images), len(self.au_names)
        if self.images.dtype != np.uint8 or self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"images must be uint8 (N, 48, 48), got {self.images.dtype} {self.images.shape}")
        for name in ("intensity", "presence"):
            if getattr(self, name).shape != (n, k):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected ({n}, {k})")
        for name in ("valence", "arousal", "labels", "usage", "subjects", "frames"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected ({n},)")

    def au_table(self) -> pd.DataFrame:
        """One row per AU: FACS name, muscles (see :data:`~data_loaders.action_units.facts.AU_FACTS`), share of
        faces where it is present and mean intensity when present."""
        rows = []
        for j, au in enumerate(self.au_names):
            name, muscles = AU_FACTS.get(au, ("?", "?"))
            on = self.presence[:, j]
            rows.append(
                {
                    "AU": au,
                    "name": name,
                    "muscles": muscles,
                    "present": f"{on.mean():.0%}",
                    "mean intensity when present": round(float(self.intensity[on, j].mean()), 2) if on.any() else 0.0,
                }
            )
        return pd.DataFrame(rows).set_index("AU")

    def __repr__(self) -> str:
        per_usage = ", ".join(f"{u} {int((self.usage == u).sum())}" for u in self.usages)
        return f"ActionUnitDataset({len(self)} faces × {len(self.au_names)} AUs from {self.source}: {per_usage})"
