"""The dataset contract (``data_loaders/dataset.py``), run against every loader on tiny inputs written here.

Every loader returns one dataset object built on :class:`data_loaders.dataset.RowDataset`: ``len``, a ``repr``
naming its class and size, ``select`` and ``sample`` keeping every per-row array (``ROW_FIELDS``) aligned,
``bad_rows``, and ``subset``/``usages`` exactly where the data has a ``Usage`` column. Every loader takes
``on_bad_rows="raise" | "skip"``: "raise" stops with the loader's error naming the bad item, "skip" leaves it
out, lists it in ``bad_rows`` and warns. Video is not in the contract: ``data_loaders.video.load_ground_truth``
returns a pandas DataFrame of per-frame ground truth, not a dataset object.
"""

from __future__ import annotations

import inspect
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data_loaders
from conftest import write_fer_csv
from data_loaders import (
    FER2013FormatError,
    IPhoneXFormatError,
    PersonalPhotoError,
    load_fer2013,
    load_iphonex,
    load_personal,
)
from data_loaders.action_units import ActionUnitFormatError, load_action_units
from data_loaders.dataset import BadRow, RowDataset, UsageDataset
from data_loaders.synthetic import standin_photos


@dataclass(frozen=True)
class Case:
    """One loader on tiny input: ``write(folder, bad)`` writes clean (or, with ``bad``, one-bad-item) input and
    returns the path to load; ``load(path, on_bad_rows)`` loads it; ``error`` is what "raise" raises, naming
    ``bad_where``; ``has_usage`` whether the data has a ``Usage`` column."""

    loader: str
    write: Callable[[Path, bool], Path]
    load: Callable[[Path, str], RowDataset]
    error: type[Exception]
    bad_where: str
    has_usage: bool


def _fer2013(folder: Path, bad: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, size=(14, 48, 48), dtype=np.uint8), np.tile(np.arange(7), 2)
    path = write_fer_csv(
        folder / "fer2013.csv", images, labels, ["Training"] * 7 + ["PublicTest"] * 4 + ["PrivateTest"] * 3
    )
    if bad:
        with open(path, "a") as f:
            f.write("3,1 2 3,Training\n")  # line 16: 3 pixels instead of 2304
    return path


def _iphonex(folder: Path, bad: bool) -> Path:
    rng = np.random.default_rng(1)
    emotions = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"] * 2
    points, ids = rng.normal(0, 0.05, size=(14, 10, 3)), ["s0"] * 7 + ["s1"] * 7
    if bad:  # and a third subject's happy cloud with NaN coordinates
        points, ids, emotions = (
            np.concatenate([points, np.full((1, 10, 3), np.nan)]),
            ids + ["s2"],
            emotions + ["happy"],
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "faces.npz"
    np.savez(path, points=points, sample_id=np.array(ids), emotion=np.array(emotions))
    return path


def _personal(folder: Path, bad: bool) -> Path:
    root = folder / "photos"
    shutil.copytree(standin_photos(folder / "standin"), root)
    if bad:
        (root / "train" / "happy" / "2.png").write_bytes(b"not an image")
    return root


def _action_units(folder: Path, bad: bool) -> Path:
    rng = np.random.default_rng(2)
    root = folder / "disfa"
    for subject in ("SN001", "SN002", "SN003"):
        (root / subject / "frames").mkdir(parents=True)
        for au in (1, 12):
            lines = "".join(f"{f},{rng.integers(0, 6)}\n" for f in range(1, 6))
            (root / subject / f"{subject}_au{au}.txt").write_text(lines)
        for f in range(1, 6):
            image = rng.integers(0, 255, (64, 64), dtype=np.uint8)
            Image.fromarray(image).save(root / subject / "frames" / f"{f:04d}.png")
    if bad:
        with open(root / "SN001" / "SN001_au12.txt", "a") as f:
            f.write("6,9\n")  # intensity 9 is off the 0-5 scale
    return root


CASES = [
    Case(
        "load_fer2013",
        _fer2013,
        lambda p, on_bad: load_fer2013(p, on_bad_rows=on_bad, use_cache=False),
        FER2013FormatError,
        "fer2013.csv:16",
        True,
    ),
    Case(
        "load_iphonex",
        _iphonex,
        lambda p, on_bad: load_iphonex(p, on_bad_rows=on_bad, use_cache=False),
        IPhoneXFormatError,
        "sample 's2' emotion 'happy'",
        False,
    ),
    Case(
        "load_personal",
        _personal,
        lambda p, on_bad: load_personal(p, detect=False, on_bad_rows=on_bad),
        PersonalPhotoError,
        "2.png",
        True,
    ),
    Case(
        "load_action_units",
        _action_units,
        lambda p, on_bad: load_action_units(p, on_bad_rows=on_bad, use_cache=False),
        ActionUnitFormatError,
        "SN001/SN001_au12.txt:6",
        True,
    ),
]
IDS = [c.loader for c in CASES]


def _original_rows(original: RowDataset, derived: RowDataset) -> np.ndarray:
    """The index in ``original`` of each row of ``derived``, found by its first row array (unique per row here)."""
    first = type(original).ROW_FIELDS[0]
    where = {np.ascontiguousarray(row).tobytes(): i for i, row in enumerate(getattr(original, first))}
    assert len(where) == len(original), f"expected every {first} row unique in the test data, found {len(where)}"
    return np.array([where[np.ascontiguousarray(row).tobytes()] for row in getattr(derived, first)], np.int64)


def _assert_aligned(original: RowDataset, derived: RowDataset, what: str) -> np.ndarray:
    """Every per-row array of ``derived`` holds the same original rows; return their indices in ``original``."""
    rows = _original_rows(original, derived)
    for name in type(original).ROW_FIELDS:
        mine, theirs = getattr(derived, name), getattr(original, name)[rows]
        assert len(mine) == len(derived), f"{what}: expected {name} to have {len(derived)} rows, found {len(mine)}"
        same = np.array_equal(mine, theirs, equal_nan=mine.dtype.kind == "f")
        assert same, f"{what}: expected {name} aligned with the other row arrays, found rows that differ"
    for name in ("source", "bad_rows"):
        assert getattr(derived, name) == getattr(original, name), f"{what}: expected {name} kept, found it changed"
    return rows


@pytest.fixture(params=CASES, ids=IDS)
def loaded(request, tmp_path):
    """(case, the dataset its loader returns on clean input with on_bad_rows="raise")."""
    case = request.param
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # clean input: no warning
        return case, case.load(case.write(tmp_path / "clean", False), "raise")


def test_every_loader_is_in_the_contract():
    loaders = sorted(n for n in data_loaders.__all__ if n.startswith("load_"))
    assert loaders == sorted(IDS), f"expected the contract to cover every loader {loaders}, found {sorted(IDS)}"
    for name in loaders:
        parameter = inspect.signature(getattr(data_loaders, name)).parameters.get("on_bad_rows")
        assert parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY, (
            f"expected {name} to take on_bad_rows as a keyword, found {parameter}"
        )
        assert parameter.default in ("raise", "skip"), f"{name}: expected a default of raise/skip, found {parameter}"


def test_one_dataset_object_with_the_shared_vocabulary(loaded):
    case, data = loaded
    assert isinstance(data, RowDataset), f"{case.loader}: expected a RowDataset, found {type(data).__mro__}"
    assert len(data) > 0 and data.bad_rows == (), f"{case.loader}: expected rows and no bad rows, found {data!r}"
    for name in type(data).ROW_FIELDS:
        assert len(getattr(data, name)) == len(data), f"{case.loader}: expected {name} to have {len(data)} rows"
    assert repr(data).startswith(f"{type(data).__name__}({len(data)} "), f"{case.loader}: found repr {data!r}"
    has_usage = isinstance(data, UsageDataset)
    assert has_usage == case.has_usage, f"{case.loader}: expected a Usage column {case.has_usage}, found {has_usage}"
    assert has_usage == hasattr(data, "subset") == hasattr(data, "usages"), (
        f"{case.loader}: expected subset and usages exactly where the data has a Usage column, found "
        f"subset {hasattr(data, 'subset')}, usages {hasattr(data, 'usages')}"
    )


def test_select_keeps_every_row_array_aligned(loaded):
    case, data = loaded
    mask = np.arange(len(data)) % 3 != 1
    chosen = data.select(mask)
    assert type(chosen) is type(data) and len(chosen) == int(mask.sum()), f"{case.loader}: found {chosen!r}"
    rows = _assert_aligned(data, chosen, f"{case.loader} select(mask)")
    assert list(rows) == list(np.flatnonzero(mask)), f"{case.loader}: expected the masked rows in order, found {rows}"
    index = np.array([len(data) - 1, 0])
    rows = _assert_aligned(data, data.select(index), f"{case.loader} select(index)")
    assert list(rows) == list(index), f"{case.loader}: expected rows {index} from an index array, found {rows}"
    assert len(data.select(np.zeros(len(data), bool))) == 0, f"{case.loader}: expected an empty selection"


def test_sample_is_reproducible_and_aligned(loaded):
    case, data = loaded
    few = data.sample(5, seed=3)
    rows = _assert_aligned(data, few, f"{case.loader} sample(5)")
    assert len(set(rows)) == 5, f"{case.loader}: expected 5 distinct rows, found {rows}"
    again = _original_rows(data, data.sample(5, seed=3))
    assert list(again) == list(rows), f"{case.loader}: expected the same rows for the same seed, found {again}"
    every = _assert_aligned(data, data.sample(None, seed=1), f"{case.loader} sample(None)")
    assert sorted(every) == list(range(len(data))), f"{case.loader}: expected all rows shuffled, found {every}"
    assert len(data.sample(10_000)) == len(data), f"{case.loader}: expected n ≥ size to give every row"


def test_subset_keeps_one_usage_aligned(loaded):
    case, data = loaded
    if not case.has_usage:  # point clouds are split by subject, with select
        assert not hasattr(data, "subset"), f"{case.loader}: expected no subset without a Usage column"
        return
    assert data.usages and set(data.usages) == set(data.usage.tolist()), f"{case.loader}: found {data.usages}"
    for usage in data.usages:
        part = data.subset(usage)
        rows = _assert_aligned(data, part, f"{case.loader} subset({usage!r})")
        assert list(rows) == list(np.flatnonzero(data.usage == usage)), (
            f"{case.loader}: expected every {usage} row in order, found {rows}"
        )
        assert part.usages == (usage,), f"{case.loader}: expected only {usage}, found {part.usages}"
    assert len(data.subset(list(data.usages))) == len(data), f"{case.loader}: expected every row for every Usage"
    with pytest.raises(ValueError, match="has no Nowhere rows; it has: ") as err:
        data.subset("Nowhere")
    assert all(u in str(err.value) for u in data.usages), f"expected the Usages present listed, found {err.value}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_on_bad_rows_raise_names_the_item_and_skip_lists_it(tmp_path, case):
    clean = case.load(case.write(tmp_path / "clean", False), "raise")
    bad = case.write(tmp_path / "bad", True)
    with pytest.raises(case.error) as err:
        case.load(bad, "raise")
    assert case.bad_where in str(err.value), (
        f"{case.loader}: expected the error to name {case.bad_where!r}: {err.value}"
    )
    with pytest.warns(UserWarning):
        skipped = case.load(bad, "skip")
    assert len(skipped) == len(clean), f"{case.loader}: expected {len(clean)} good rows kept, found {len(skipped)}"
    assert len(skipped.bad_rows) == 1 and isinstance(skipped.bad_rows[0], BadRow), (
        f"{case.loader}: expected the one bad item in bad_rows, found {skipped.bad_rows}"
    )
    assert case.bad_where in str(skipped.bad_rows[0]), f"{case.loader}: found bad_rows {skipped.bad_rows}"
    assert len(skipped.select(np.ones(len(skipped), bool)).bad_rows) == 1, "expected bad_rows kept by select"
    with pytest.raises(ValueError, match="on_bad_rows must be 'raise' or 'skip', got 'ignore'"):
        case.load(bad, "ignore")
