"""The dataset object every image loader returns: arrays, class names and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class BadRow:
    """One input item a loader skipped (``on_bad_rows="skip"``): where it is and what was wrong."""

    where: str  #: file and line (``fer2013.csv:17``) or image file path
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class ImageDataset:
    """Face images with labels, like scikit-learn's ``Bunch`` but typed.

    Attributes:
        images: ``uint8`` array ``(N, 48, 48)``, grey levels 0-255, not normalised (that is the student's job).
        labels: ``int64`` array ``(N,)`` of FER2013 emotion codes 0-6; ``-1`` where the source has no label
            (Kaggle ``test.csv``).
        usage: ``str`` array ``(N,)``, the FER2013 ``Usage`` of each row (``Training``, ``PublicTest``,
            ``PrivateTest``; ``Test`` for image-folder mirrors, whose test folder merges the two test sets).
        class_names: names indexed by label code.
        source: the file or folder the data came from.
        description: where the data came from and how it was read (shown in notebooks).
        bad_rows: items skipped with ``on_bad_rows="skip"``, each naming the file/line and the reason.
    """

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    class_names: tuple[str, ...]
    source: str
    description: str
    bad_rows: tuple[BadRow, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 3:
            raise ValueError(f"images must be uint8 (N, H, W), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (n,) or self.usage.shape != (n,):
            raise ValueError(
                f"labels {self.labels.shape} and usage {self.usage.shape} must both have shape ({n},)"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def usages(self) -> tuple[str, ...]:
        """The ``Usage`` values present, in FER2013 order."""
        order = {"Training": 0, "PublicTest": 1, "PrivateTest": 2, "Test": 3}
        return tuple(sorted(set(self.usage.tolist()), key=lambda u: order.get(u, 9)))

    def subset(self, usage: str | Iterable[str]) -> "ImageDataset":
        """Rows whose ``Usage`` is ``usage`` (a name or several).

        Raises:
            ValueError: a requested ``Usage`` has no rows in this dataset (the message lists those present).
        """
        wanted = [usage] if isinstance(usage, str) else list(usage)
        missing = [u for u in wanted if u not in self.usages]
        if missing:
            raise ValueError(
                f"{self.source} has no {'/'.join(missing)} rows; it has: {', '.join(self.usages) or 'no rows'}"
            )
        keep = np.isin(self.usage, wanted)
        return replace(self, images=self.images[keep], labels=self.labels[keep], usage=self.usage[keep])

    def sample(self, n: int | None, seed: int = 0) -> "ImageDataset":
        """A random ``n`` rows (all rows, shuffled, when ``n`` is None or ≥ the size), reproducible by ``seed``."""
        order = np.random.default_rng(seed).permutation(len(self))
        keep = order if n is None else order[: max(0, int(n))]
        return replace(self, images=self.images[keep], labels=self.labels[keep], usage=self.usage[keep])

    def counts(self) -> pd.DataFrame:
        """Images per class (rows) and ``Usage`` (columns), with totals."""
        names = [self.class_names[i] if i >= 0 else "(unlabelled)" for i in self.labels]
        table = pd.crosstab(pd.Series(names, name="emotion"), pd.Series(self.usage, name="Usage"),
                            margins=True, margins_name="total")
        order = [n for n in (*self.class_names, "(unlabelled)") if n in table.index] + ["total"]
        cols = [u for u in self.usages if u in table.columns] + ["total"]
        return table.loc[order, cols]

    def __repr__(self) -> str:
        per_usage = ", ".join(f"{u} {int((self.usage == u).sum())}" for u in self.usages)
        return f"ImageDataset({len(self)} images {self.images.shape[1:]} from {self.source}: {per_usage})"
