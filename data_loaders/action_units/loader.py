"""Where the Action Unit data is, and :func:`load_action_units`: format detection, caching, the warning.

Resolution like every source (:func:`data_loaders.resolve.resolve_source`): an explicit path → ``$AU_DATA_PATH``
→ ``<data>/action_units/`` when it holds anything → the synthetic FACS faces. A path is read as DISFA-style when
it holds ``<subject>/<subject>_au<N>.txt`` files (:mod:`.disfa`), else as OpenFace csv files (:mod:`.openface`),
or as the synthetic faces when it is the generator's folder (:mod:`.synthetic_faces`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from .. import cache
from ..dataset import bad_rows_from_arrays, bad_rows_to_arrays, check_on_bad_rows
from ..resolve import DataSource, resolve_source
from ..settings import AU_DATA_PATH, SYNTHETIC
from .dataset import ActionUnitDataset, ActionUnitFormatError
from .disfa import DISFA_FILE, is_disfa_label_file, read_disfa
from .frames import combine
from .openface import read_openface
from .synthetic_faces import load_synthetic

HOW_TO_GET = (
    "Action Unit labels come from OpenFace 2.0 (FeatureExtraction -aus -simalign: a csv with AU01_r/AU01_c columns "
    "and a <name>_aligned/ folder of face crops) or a DISFA-style folder (<subject>/<subject>_au<N>.txt lines "
    "'frame,intensity' and <subject>/frames/<frame>.png). Put it at data/action_units/ in the kit or set "
    f"{AU_DATA_PATH.name}=/path/to/it; set {AU_DATA_PATH.name}={SYNTHETIC} for the synthetic FACS faces."
)


def _in_default_folder(folder: Path) -> Path | None:
    return folder if folder.is_dir() and any(folder.iterdir()) else None


def _synthetic_default() -> Path:
    from ..synthetic import default_data

    return default_data("fer2013").parent


#: What the AU data's resolution has of its own (:func:`data_loaders.resolve.resolve_source` does the rest).
SOURCE = DataSource(
    AU_DATA_PATH,
    "action_units",
    "Action Unit data",
    HOW_TO_GET,
    _in_default_folder,
    _synthetic_default,
    not_found="no Action Unit data: {variable} is not set and {folder} is empty",
)


def action_units_path(path: str | os.PathLike | None = None, *, synthetic_fallback: bool = True) -> Path:
    """Resolve the AU data: ``path`` → ``$AU_DATA_PATH`` → ``<repo>/data/action_units/`` → synthetic default
    (the folder of the kit's cached synthetic faces; also when ``path`` or the variable is ``synthetic``).

    Raises:
        FileNotFoundError: a configured path that does not exist, or nothing found with
            ``synthetic_fallback=False`` (the message says what to put where).
    """
    return resolve_source(path, SOURCE, synthetic_fallback=synthetic_fallback)


def load_action_units(
    path: str | os.PathLike | None = None, *, on_bad_rows: Literal["raise", "skip"] = "raise", use_cache: bool = True
) -> ActionUnitDataset:
    """Load faces with AU labels from any format in :mod:`data_loaders.action_units`.

    Args:
        path: an OpenFace csv, a folder of them, a DISFA-style folder, a synthetic folder, or ``"synthetic"``;
            default: see :func:`action_units_path`.
        on_bad_rows: ``"raise"`` (default) stops with an error naming each bad file/line/frame; ``"skip"``
            leaves them out, lists them in ``dataset.bad_rows`` and warns. OpenFace rows with ``success = 0`` are
            always left out and listed.
        use_cache: reuse arrays cached for these exact files (same paths, sizes and mtimes).

    Returns:
        An :class:`~data_loaders.action_units.dataset.ActionUnitDataset`.

    Raises:
        FileNotFoundError: a configured path that does not exist.
        ActionUnitFormatError: no known format at the path, missing columns, unequal AU sets, or bad rows with
            ``on_bad_rows="raise"``.
        ValueError: ``on_bad_rows`` is not ``"raise"`` or ``"skip"``.
    """
    check_on_bad_rows(on_bad_rows)
    source = action_units_path(path)
    from ..synthetic import is_synthetic

    if is_synthetic(source):
        return load_synthetic(source if source.is_dir() else source.parent)
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    # a single OpenFace csv reads its face crops from <stem>_aligned/ beside it: they are part of the cached data
    crops = source.with_name(f"{source.stem}_aligned")
    beside = sorted(p for p in crops.rglob("*") if p.is_file()) if source.is_file() and crops.is_dir() else []
    key = f"action-units-{cache.file_key(source, *files, *beside, extra=f'au|{on_bad_rows}')}"
    arrays = cache.load_arrays(key) if use_cache else None
    if arrays is not None:
        dataset = _from_arrays(arrays, str(source))
    else:
        dataset = _read(source, files, on_bad_rows)
        if use_cache:
            cache.save_arrays(key, **_to_arrays(dataset))
    if dataset.bad_rows:
        warnings.warn(
            f"{source}: left out {len(dataset.bad_rows)} rows/frames (first: {dataset.bad_rows[0]}); "
            "see dataset.bad_rows",
            stacklevel=2,
        )
    return dataset


def _read(source: Path, files: list[Path], on_bad: str) -> ActionUnitDataset:
    """Detect the format (DISFA-style label files first, then csv files) and read it."""
    csvs = [p for p in files if p.suffix.lower() == ".csv"]
    disfa = [p for p in files if is_disfa_label_file(p)]
    misplaced = [p for p in files if DISFA_FILE.match(p.name) and not is_disfa_label_file(p)]
    if misplaced:  # a subject whose files do not match its folder would vanish from the dataset without a word
        listing = "; ".join(f"{p.parent.name}/{p.name}" for p in misplaced[:5]) + (" …" if len(misplaced) > 5 else "")
        raise ActionUnitFormatError(
            f"{source}: {len(misplaced)} DISFA label file(s) whose name does not match their subject folder "
            f"({listing}); expected <subject>/<subject>_au<N>.txt: rename the file or its folder"
        )
    if disfa:
        parts = [read_disfa(source, disfa, on_bad)]
    elif csvs:
        parts = [read_openface(p, on_bad) for p in csvs]
    else:
        raise ActionUnitFormatError(
            f"{source} holds no Action Unit data: expected an OpenFace csv (AU01_r … "
            f"columns) or DISFA-style <subject>/<subject>_au<N>.txt files. {HOW_TO_GET}"
        )
    return combine(parts, source)


# ------------------------------------------------------------------------------------------------------ caching


def _to_arrays(d: ActionUnitDataset) -> dict[str, np.ndarray]:
    """The arrays a dataset is cached as (its row arrays, AU names, description and bad rows)."""
    return {
        **{name: getattr(d, name) for name in ActionUnitDataset.ROW_FIELDS},
        "au_names": np.array(d.au_names),
        "description": np.array(d.description),
        **bad_rows_to_arrays(d.bad_rows),
    }


def _from_arrays(a: dict[str, np.ndarray], source: str) -> ActionUnitDataset:
    """The inverse of :func:`_to_arrays`; the description says it was read from the cache."""
    return ActionUnitDataset(
        **{name: a[name] for name in ActionUnitDataset.ROW_FIELDS},
        au_names=tuple(str(x) for x in a["au_names"]),
        source=source,
        description=str(a["description"]) + " (read from the cache)",
        bad_rows=bad_rows_from_arrays(a),
    )
