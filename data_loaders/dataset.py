"""The dataset objects loaders return: arrays, class names and provenance, on one shared base.

One vocabulary for every dataset, held by two small bases here (:class:`RowDataset`, :class:`UsageDataset`) and
used by ``ImageDataset`` and ``PointCloudDataset`` here and ``ActionUnitDataset`` in
:mod:`data_loaders.action_units`: ``len(ds)``; ``ds.select(mask)`` keeps the items where a boolean ``(N,)`` mask
(or an index array) selects, in every per-row array the class declares in ``ROW_FIELDS``; ``ds.sample(n, seed)``
keeps a reproducible random ``n``; ``ds.subset(usage)`` and ``ds.usages`` exist only where the data has a ``Usage``
column (:class:`UsageDataset`: ``"Training"``, ``"PublicTest"`` … or ``"train"``/``"test"`` for personal photos;
point clouds are split by subject instead: ``select`` with a mask of subjects); ``ds.bad_rows`` lists what the
loader skipped with ``on_bad_rows="skip"`` (every loader takes ``on_bad_rows="raise" | "skip"``, checked by
:func:`check_on_bad_rows`; the error a loader raises lists the bad items with :func:`bad_rows_listing`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from .files import PHOTO_SPLITS

if TYPE_CHECKING:
    from typing import Self  # Python 3.11; the kit supports 3.10

#: The order :attr:`UsageDataset.usages` lists ``Usage`` values in: FER2013's, then the image folders' merged
#: ``Test``, then the photo-set splits (``train``, ``test``); anything else after them, by name.
USAGE_ORDER: dict[str, int] = {
    "Training": 0,
    "PublicTest": 1,
    "PrivateTest": 2,
    "Test": 3,
    **{split: 4 + i for i, split in enumerate(PHOTO_SPLITS)},
}


@dataclass(frozen=True)
class BadRow:
    """One input item a loader skipped (``on_bad_rows="skip"``): where it is and what was wrong."""

    where: str  #: file and line (``fer2013.csv:17``) or image file path
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def bad_rows_listing(bad: tuple[BadRow, ...] | list[BadRow], first: int = 10) -> str:
    """The first ``first`` bad items, one per indented line, then "… and N more": the body of a loader's error."""
    listed = "\n  ".join(str(b) for b in bad[:first])
    more = f"\n  … and {len(bad) - first} more" if len(bad) > first else ""
    return f"  {listed}{more}"


def check_on_bad_rows(on_bad_rows: str) -> None:
    """Refuse an ``on_bad_rows`` other than ``"raise"`` or ``"skip"`` (every loader calls this first).

    Raises:
        ValueError: ``on_bad_rows`` is anything else (the message shows it).
    """
    if on_bad_rows not in ("raise", "skip"):
        raise ValueError(f"on_bad_rows must be 'raise' or 'skip', got {on_bad_rows!r}")


def bad_rows_to_arrays(bad: tuple[BadRow, ...]) -> dict[str, np.ndarray]:
    """``bad_where`` and ``bad_reason`` string arrays, for storing skipped items beside cached arrays."""
    return {
        "bad_where": np.array([b.where for b in bad], dtype=str),
        "bad_reason": np.array([b.reason for b in bad], dtype=str),
    }


def bad_rows_from_arrays(arrays: dict[str, np.ndarray]) -> tuple[BadRow, ...]:
    """The inverse of :func:`bad_rows_to_arrays`."""
    return tuple(BadRow(str(w), str(r)) for w, r in zip(arrays["bad_where"], arrays["bad_reason"]))


class RowDataset:
    """The base of every dataset object: rows held in per-row arrays, selected together.

    A subclass is a frozen dataclass that names its per-row arrays (each with the rows along axis 0) in
    ``ROW_FIELDS`` and has ``source`` (str) and ``bad_rows`` (``tuple[BadRow, ...]``, the items the loader
    skipped with ``on_bad_rows="skip"``) fields. Everything else (class names, provenance, an attached report)
    is kept as it is by :meth:`select` and :meth:`sample`.
    """

    #: The fields holding one entry per row (axis 0), in the order the class declares them.
    ROW_FIELDS: ClassVar[tuple[str, ...]] = ()

    def __len__(self) -> int:
        return len(getattr(self, self.ROW_FIELDS[0]))

    def select(self, keep: np.ndarray) -> Self:
        """The rows where the boolean mask (or the index array) ``keep`` selects, in every per-row array."""
        return replace(self, **{name: getattr(self, name)[keep] for name in self.ROW_FIELDS})

    def sample(self, n: int | None, seed: int = 0) -> Self:
        """A random ``n`` rows (all rows, shuffled, when ``n`` is None or ≥ the size), reproducible by ``seed``."""
        order = np.random.default_rng(seed).permutation(len(self))
        return self.select(order if n is None else order[: max(0, int(n))])


class UsageDataset(RowDataset):
    """A :class:`RowDataset` whose rows have a ``Usage`` (a ``usage`` field, ``str (N,)``, among ``ROW_FIELDS``):
    adds :attr:`usages` and :meth:`subset`."""

    @property
    def usages(self) -> tuple[str, ...]:
        """The ``Usage`` values present, in FER2013 order (:data:`USAGE_ORDER`)."""
        return tuple(sorted(set(self.usage.tolist()), key=lambda u: (USAGE_ORDER.get(u, len(USAGE_ORDER)), u)))

    def subset(self, usage: str | Iterable[str]) -> Self:
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
        return self.select(np.isin(self.usage, wanted))


@dataclass(frozen=True)
class ImageDataset(UsageDataset):
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
        report: for photos read from a folder (:func:`data_loaders.load_personal`), a pandas DataFrame with one
            row per file (``file, split, emotion, face_found, box, width, height, used, problem``); else None.
            It describes the whole folder, also in a :meth:`subset` or :meth:`select` of the dataset.

    ``len``, ``select``, ``sample``, ``subset`` and ``usages`` come from :class:`UsageDataset`.
    """

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    class_names: tuple[str, ...]
    source: str
    description: str
    bad_rows: tuple[BadRow, ...] = field(default=())
    report: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    ROW_FIELDS: ClassVar[tuple[str, ...]] = ("images", "labels", "usage")

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 3:
            raise ValueError(f"images must be uint8 (N, H, W), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (n,) or self.usage.shape != (n,):
            raise ValueError(f"labels {self.labels.shape} and usage {self.usage.shape} must both have shape ({n},)")

    def counts(self) -> pd.DataFrame:
        """Images per class (rows) and ``Usage`` (columns), with totals."""
        names = [self.class_names[i] if i >= 0 else "(unlabelled)" for i in self.labels]
        table = pd.crosstab(
            pd.Series(names, name="emotion"), pd.Series(self.usage, name="Usage"), margins=True, margins_name="total"
        )
        order = [n for n in (*self.class_names, "(unlabelled)") if n in table.index] + ["total"]
        cols = [u for u in self.usages if u in table.columns] + ["total"]
        return table.loc[order, cols]

    def __repr__(self) -> str:
        per_usage = ", ".join(f"{u} {int((self.usage == u).sum())}" for u in self.usages)
        return f"ImageDataset({len(self)} images {self.images.shape[1:]} from {self.source}: {per_usage})"


#: Vertices of ARKit's face mesh (``ARFaceGeometry``; every iPhone X face cloud has them, in the same order).
ARKIT_VERTICES = 1220


@dataclass(frozen=True)
class PointCloudDataset(RowDataset):
    """Face point clouds with emotion labels and subject ids (one cloud per subject and expression).

    Attributes:
        points: ``float32 (N, P, 3)`` coordinates in metres (ARKit face frame: origin near the head centre,
            +y up, +z towards the camera); vertex i is the same facial location in every cloud.
        labels: ``int64 (N,)`` FER2013 emotion codes 0-6.
        subjects: ``str (N,)`` the subject (sample id) of each cloud, e.g. ``"2018-03-11 18:48:11 +0000"``.
        emotions: ``str (N,)`` the emotion names as spelled in the source (``"happy"``).
        class_names: names indexed by label code.
        source, description: where the data came from and how it was read.
        bad_rows: clouds skipped with ``on_bad_rows="skip"``, each naming the sample id, emotion and reason.

    The order of the rows is the order of the source (file order, then emotion order inside a sample). ``len``,
    ``select`` and ``sample`` come from :class:`RowDataset`; there is no ``subset`` (no ``Usage`` column).
    """

    points: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    emotions: np.ndarray
    class_names: tuple[str, ...]
    source: str
    description: str
    bad_rows: tuple[BadRow, ...] = field(default=())

    ROW_FIELDS: ClassVar[tuple[str, ...]] = ("points", "labels", "subjects", "emotions")

    def __post_init__(self) -> None:
        n = len(self.points)
        if self.points.dtype != np.float32 or self.points.ndim != 3 or self.points.shape[2:] != (3,):
            raise ValueError(f"points must be float32 (N, P, 3), got {self.points.dtype} {self.points.shape}")
        for name in ("labels", "subjects", "emotions"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected ({n},)")

    @property
    def subject_ids(self) -> tuple[str, ...]:
        """Distinct subjects in source order."""
        return tuple(dict.fromkeys(self.subjects.tolist()))

    def cloud(self, subject: str, emotion: str | int) -> np.ndarray:
        """The ``float32 (P, 3)`` cloud of one subject and emotion (a name or a FER2013 code).

        Raises:
            KeyError: no such cloud (the message lists what this subject has).
        """
        names = [c.lower() for c in self.class_names]
        code = (
            int(emotion)
            if isinstance(emotion, (int, np.integer))
            else (names.index(str(emotion).lower()) if str(emotion).lower() in names else -1)
        )
        hit = np.flatnonzero((self.subjects == subject) & (self.labels == code))
        if not len(hit):
            have = [self.class_names[c] for c in self.labels[self.subjects == subject]]
            raise KeyError(f"no {emotion!r} cloud for subject {subject!r}; it has: {', '.join(have) or 'nothing'}")
        return self.points[hit[0]]

    def counts(self) -> pd.DataFrame:
        """Clouds per emotion, with the number of subjects."""
        names = pd.Series([self.class_names[i] for i in self.labels], name="emotion")
        table = names.value_counts().reindex([c for c in self.class_names if c in set(names)]).to_frame("clouds")
        table["subjects"] = [len(set(self.subjects[self.labels == self.class_names.index(c)])) for c in table.index]
        return table

    def __repr__(self) -> str:
        return (
            f"PointCloudDataset({len(self)} clouds × {self.points.shape[1]} points from {self.source}: "
            f"{len(self.subject_ids)} subjects)"
        )
