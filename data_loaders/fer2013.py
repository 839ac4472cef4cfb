"""FER2013: 48×48 grayscale faces labelled with seven emotions, in every format users meet.

Source: Goodfellow et al. 2013, "Challenges in Representation Learning: A report on three machine learning
contests" (ICML 2013 workshop), distributed by Kaggle ("Challenges in Representation Learning: Facial
Expression Recognition Challenge"). The original file ``fer2013.csv`` has columns ``emotion`` (0-6, see
:mod:`data_loaders.emotions`), ``pixels`` (2304 space-separated integers 0-255, row-major 48×48) and
``Usage`` (``Training`` 28,709 rows, ``PublicTest`` 3,589, ``PrivateTest`` 3,589).

Formats read by :func:`load_fer2013`:

* ``fer2013.csv`` (also ``.csv.gz``, a ``.zip`` holding it, or the original ``fer2013.tar.gz``);
* Kaggle's competition files: ``icml_face_data.csv`` (header names with leading spaces, e.g. ``" Usage"``),
  ``train.csv`` (``emotion,pixels``: the Training rows) and ``test.csv`` (``pixels`` only: PublicTest then
  PrivateTest, unlabelled, label ``-1``);
* image-folder mirrors: ``train/<emotion>/*.png|jpg`` and ``test/<emotion>/*.png|jpg`` (``test`` merges
  PublicTest and PrivateTest, so its rows get ``Usage`` ``"Test"``).

Every format has a test set: :func:`fer2013_splits` gives train / validation / test sets (test: ``PublicTest``,
else the folders' ``Test``, else a stratified hold-out of ``Training``) and :func:`grading_test_set` the faces a
submitted model is graded on (``PrivateTest`` first).

FER2013 is Kaggle competition data and cannot be redistributed: the kit never downloads or ships it.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from . import cache
from .dataset import (
    BadRow,
    ImageDataset,
    bad_rows_from_arrays,
    bad_rows_listing,
    bad_rows_to_arrays,
    check_on_bad_rows,
)
from .emotions import EMOTIONS, emotion_code
from .files import IMAGE_SUFFIXES
from .resolve import DataSource, resolve_source
from .settings import FER2013_PATH

USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
IMAGE_SIZE = 48
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE
#: Kaggle ``test.csv`` holds PublicTest then PrivateTest, 3,589 rows each (dataset description).
_TEST_HALF = 3589

_CSV_NAMES = (
    "fer2013.csv",
    "fer2013.csv.gz",
    "fer2013.zip",
    "fer2013.tar.gz",
    "icml_face_data.csv",
    "icml_face_data.csv.gz",
)

HOW_TO_GET = (
    "FER2013 is not redistributable, so the kit does not ship it. Download it from Kaggle "
    "(https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data: "
    "fer2013.tar.gz or icml_face_data.csv; or a mirror of train/ and test/ image folders), then either put it at "
    f"data/fer2013/ in the kit (e.g. data/fer2013/fer2013.csv) or set {FER2013_PATH.name}=/path/to/fer2013.csv."
)


class FER2013FormatError(ValueError):
    """A FER2013 file, row or image that does not match the expected format; the message names it."""


def fer2013_path(path: str | os.PathLike | None = None, *, synthetic_fallback: bool = True) -> Path:
    """Resolve where FER2013 is: ``path`` → ``$FER2013_PATH`` → ``<repo>/data/fer2013/`` → synthetic default.

    The synthetic default (:func:`data_loaders.synthetic.default_data`, generated once and cached) is used when
    nothing is configured, or when ``path`` or ``$FER2013_PATH`` is the word ``synthetic``.

    Raises:
        FileNotFoundError: ``path`` or ``$FER2013_PATH`` names a missing file, or nothing is found and
            ``synthetic_fallback`` is False; the message says where to get FER2013 and where to put it.
    """
    return resolve_source(path, SOURCE, synthetic_fallback=synthetic_fallback)


def _is_synthetic(target: Path) -> bool:
    from .synthetic import is_synthetic

    return is_synthetic(target)


def _synthetic_default() -> Path:
    from .synthetic import default_data

    return default_data("fer2013")


def _in_default_folder(folder: Path) -> Path | None:
    return folder if folder.is_dir() and _pick_in_folder(folder, required=False) is not None else None


#: What FER2013's resolution has of its own (:func:`data_loaders.resolve.resolve_source` does the rest).
SOURCE = DataSource(
    FER2013_PATH,
    "fer2013",
    "FER2013",
    HOW_TO_GET,
    _in_default_folder,
    _synthetic_default,
    not_found="FER2013 not found: {variable} is not set and {folder} holds no FER2013 file",
)


def load_fer2013(
    path: str | os.PathLike | None = None,
    usage: str | Iterable[str] | None = None,
    *,
    on_bad_rows: Literal["raise", "skip"] = "raise",
    use_cache: bool = True,
) -> ImageDataset:
    """Load FER2013 from any of the formats in the module docstring.

    Args:
        path: a csv/``.csv.gz``/``.zip``/``.tar.gz`` file or a folder, or ``"synthetic"``; default:
            ``$FER2013_PATH``, then ``<repo>/data/fer2013/``, then the synthetic default (see :func:`fer2013_path`).
        usage: keep only these ``Usage`` rows (``"Training"``, ``"PublicTest"``, ``"PrivateTest"``, or a list).
        on_bad_rows: ``"raise"`` (default) stops at bad rows with an error naming the file and line numbers;
            ``"skip"`` leaves them out, lists them in ``dataset.bad_rows`` and warns with their count and lines.
        use_cache: reuse the parsed arrays cached for this exact file (same path, size and mtime).

    Returns:
        An :class:`ImageDataset`: ``images`` ``uint8 (N, 48, 48)`` with grey levels 0-255, ``labels`` ``int64
        (N,)`` in FER2013 order (0=Angry … 6=Neutral; ``-1`` unlabelled), ``usage`` ``str (N,)``,
        ``class_names`` :data:`~data_loaders.emotions.EMOTIONS`.

    Raises:
        FileNotFoundError: a configured path that does not exist (says where to get FER2013).
        FER2013FormatError: an unreadable file, missing columns, bad rows with ``on_bad_rows="raise"``, or no
            usable row at all (a header only, or every row bad; names the file, the line numbers and what was
            expected).
        ValueError: ``usage`` names a ``Usage`` the file does not have, or ``on_bad_rows`` is not valid.
    """
    check_on_bad_rows(on_bad_rows)
    source = fer2013_path(path)
    target = _pick_in_folder(source) if source.is_dir() else source
    dataset = _load_cached(target, on_bad_rows) if use_cache else _parse(target, on_bad_rows)
    if _is_synthetic(target):
        dataset = replace(
            dataset,
            description=f"SYNTHETIC FACS faces, not FER2013 ({dataset.description}). "
            "To use real data, put FER2013 in data/fer2013/ or set FER2013_PATH.",
        )
    if dataset.bad_rows:
        shown = ", ".join(b.where.rsplit(":", 1)[-1] if ":" in b.where else b.where for b in dataset.bad_rows[:10])
        more = " …" if len(dataset.bad_rows) > 10 else ""
        warnings.warn(
            f"{target}: skipped {len(dataset.bad_rows)} bad rows ({shown}{more}); see dataset.bad_rows", stacklevel=2
        )
    return dataset if usage is None else dataset.subset(usage)


# --------------------------------------------------------------------------------------------------- resolution


def _pick_in_folder(folder: Path, required: bool = True) -> Path | None:
    """The file or image-folder root to read inside a FER2013 folder."""
    for name in _CSV_NAMES:
        if (folder / name).is_file():
            return folder / name
    if (folder / "train").is_dir() or (folder / "test").is_dir():
        return folder
    if (folder / "train.csv").is_file():
        return folder / "train.csv"
    if required:
        raise FileNotFoundError(
            f"{folder} holds no FER2013 data: expected one of {', '.join(_CSV_NAMES)}, train.csv, or train/ and "
            f"test/ image folders. {HOW_TO_GET}"
        )
    return None


# ------------------------------------------------------------------------------------------------------ caching


def _load_cached(target: Path, on_bad_rows: str) -> ImageDataset:
    # An image folder is keyed by every file in it, so adding, removing or editing an image parses again.
    files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else []
    name = f"fer2013-{cache.file_key(target, *files, extra=f'fer2013|{on_bad_rows}')}"
    arrays = cache.load_arrays(name)
    if arrays is not None:
        return ImageDataset(
            arrays["images"],
            arrays["labels"],
            arrays["usage"],
            EMOTIONS,
            str(target),
            str(arrays["description"]) + " (parsed arrays read from the cache)",
            bad_rows_from_arrays(arrays),
        )
    dataset = _parse(target, on_bad_rows)
    cache.save_arrays(
        name,
        images=dataset.images,
        labels=dataset.labels,
        usage=dataset.usage,
        description=np.array(dataset.description),
        **bad_rows_to_arrays(dataset.bad_rows),
    )
    return dataset


def _parse(target: Path, on_bad_rows: str) -> ImageDataset:
    if target.is_dir():
        return _read_image_folders(target, on_bad_rows)
    label, frame = _read_table(target)
    return _frame_to_dataset(frame, label, str(target), on_bad_rows)


# --------------------------------------------------------------------------------------------------- csv files


def _read_table(path: Path) -> tuple[str, pd.DataFrame]:
    """Read a csv (plain, gzip, zip or tar.gz) into strings; return (name for messages, frame)."""
    name = path.name.lower()
    try:
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(path) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(".csv")]
                member = _choose_csv(path, [m.name for m in members])
                raw = tar.extractfile(member).read()
            return f"{path}:{member}", _csv_frame(io.BytesIO(raw), f"{path}:{member}")
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                member = _choose_csv(path, [n for n in zf.namelist() if n.lower().endswith((".csv", ".csv.gz"))])
                raw = zf.read(member)
            compression = "gzip" if member.lower().endswith(".gz") else None
            return f"{path}:{member}", _csv_frame(io.BytesIO(raw), f"{path}:{member}", compression)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # zlib: corrupt deflate data
        raise FER2013FormatError(f"{path}: cannot read the archive ({exc})") from exc
    compression = "gzip" if name.endswith(".gz") else None
    return str(path), _csv_frame(path, str(path), compression)


def _choose_csv(archive: Path, names: list[str]) -> str:
    by_base = {Path(n).name.lower(): n for n in names}
    for preferred in ("fer2013.csv", "icml_face_data.csv", "train.csv"):
        if preferred in by_base:
            return by_base[preferred]
    if len(names) == 1:
        return names[0]
    raise FER2013FormatError(
        f"{archive}: expected fer2013.csv, icml_face_data.csv or train.csv inside, found {names or 'no csv file'}"
    )


def _csv_frame(source, label: str, compression: str | None = None) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            source, dtype=str, keep_default_na=False, compression=compression, skipinitialspace=False, engine="c"
        )
    except UnicodeDecodeError as exc:
        where = _first_undecodable_line(source, compression)
        raise FER2013FormatError(
            f"{label}{f':{where}' if where else ''}: not a UTF-8/ASCII csv file ({exc.reason})"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, zlib.error, EOFError, OSError) as exc:
        raise FER2013FormatError(f"{label}: not a readable FER2013 csv ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if "pixels" not in frame.columns:
        raise FER2013FormatError(
            f"{label}: no 'pixels' column; expected the FER2013 header 'emotion,pixels,Usage' "
            f"(found {', '.join(frame.columns) or 'no header'})"
        )
    return frame


def _first_undecodable_line(source, compression: str | None) -> int | None:
    """The number of the first line of a csv that is not UTF-8 (pandas reports a byte offset within its own read
    buffer, which names no place in the file), or None when it cannot be found."""
    try:
        if hasattr(source, "seek"):
            source.seek(0)
            raw = source.read()
        else:
            raw = Path(source).read_bytes()
        if compression == "gzip":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error):
        return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return raw.count(b"\n", 0, exc.start) + 1
    return None


def _frame_to_dataset(frame: pd.DataFrame, label: str, source: str, on_bad_rows: str) -> ImageDataset:
    n = len(frame)
    line = np.arange(n) + 2  # line 1 is the header; FER2013 rows hold no embedded newlines
    reasons: dict[int, str] = {}

    pixels = frame["pixels"].str.strip()
    # [0-9], not \d: \d also matches other scripts' digits ("٣"), which numpy's parser cannot read
    well_formed = pixels.str.fullmatch(r"[0-9]+(?: [0-9]+)*") & (pixels.str.count(" ") == N_PIXELS - 1)
    for i in np.flatnonzero(~well_formed.to_numpy()):
        reasons[i] = _pixel_problem(pixels.iat[i])

    if "emotion" in frame.columns:
        codes = frame["emotion"].str.strip()
        valid = codes.isin([str(k) for k in range(len(EMOTIONS))]).to_numpy()
        for i in np.flatnonzero(~valid):
            reasons.setdefault(i, f"emotion {codes.iat[i]!r} is not a FER2013 label code 0-6")
        labels = np.where(valid, pd.to_numeric(codes.where(valid, "-1")), -1).astype(np.int64)
    else:
        labels = np.full(n, -1, dtype=np.int64)

    assumed = ""  # what the description says of a Usage the file does not give
    if "Usage" in frame.columns:
        usage = frame["Usage"].str.strip().to_numpy(dtype=str)
        valid = np.isin(usage, USAGES)
        for i in np.flatnonzero(~valid):
            reasons.setdefault(i, f"Usage {str(usage[i])!r} is not one of {', '.join(USAGES)}")
    elif "emotion" in frame.columns:  # Kaggle train.csv
        usage = np.full(n, "Training")
        assumed = " (no Usage column: every row taken as Training, as in Kaggle's train.csv)"
    elif n == 2 * _TEST_HALF:  # Kaggle test.csv: PublicTest rows, then PrivateTest rows
        usage = np.where(np.arange(n) < _TEST_HALF, "PublicTest", "PrivateTest")
        assumed = f" (no Usage column: the first {_TEST_HALF} rows taken as PublicTest, the rest as PrivateTest)"
    else:
        usage = np.full(n, "PublicTest")
        assumed = " (no Usage column and no emotion: every row taken as unlabelled PublicTest)"

    good = well_formed.to_numpy().copy()
    images = np.zeros((0, N_PIXELS), np.uint8)
    if good.any():
        flat = np.fromstring(" ".join(pixels[good].tolist()), dtype=np.int64, sep=" ")  # C parser: fast
        values = flat.reshape(-1, N_PIXELS)
        good_index = np.flatnonzero(good)
        for j in np.flatnonzero(values.max(axis=1) > 255):
            i = good_index[j]
            col = int(np.argmax(values[j] > 255))
            reasons.setdefault(i, f"pixel {col + 1} is {values[j, col]}, expected an integer 0-255")
        images = values.astype(np.uint8)

    bad_index = np.array(sorted(reasons), dtype=np.int64)
    bad = tuple(BadRow(f"{label}:{line[i]}", reasons[i]) for i in bad_index)
    if bad and on_bad_rows == "raise":
        raise FER2013FormatError(
            f"{label}: {len(bad)} bad row(s) out of {n}:\n{bad_rows_listing(bad)}\n"
            "Fix the file, or pass on_bad_rows='skip' to leave them out (they are then listed in dataset.bad_rows)."
        )
    keep = np.ones(n, bool)
    keep[bad_index] = False
    if not keep.any():  # nothing to learn from: say so here rather than hand back an empty dataset
        raise FER2013FormatError(
            f"{label}: no data rows (only a header)"
            if n == 0
            else f"{label}: no usable rows, all {n} are bad:\n{bad_rows_listing(bad)}"
        )
    images = images[keep[good]] if good.any() else images
    description = (
        f"FER2013 from {label}: {int(keep.sum())} rows" + (f", {len(bad)} bad rows skipped" if bad else "") + assumed
    )
    return ImageDataset(
        images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        labels[keep],
        usage[keep].astype(str),
        EMOTIONS,
        source,
        description,
        bad,
    )


def _pixel_problem(text: str) -> str:
    """Say exactly what is wrong with one ``pixels`` field."""
    tokens = text.split()
    if len(tokens) != N_PIXELS:
        return f"has {len(tokens)} pixel values, expected {N_PIXELS} (48×48)"
    for k, tok in enumerate(tokens):
        if not (tok.isascii() and tok.isdigit()):
            return f"pixel {k + 1} is {tok!r}, expected an integer 0-255"
    return "pixel values must be separated by single spaces"


# ------------------------------------------------------------------------------------------------ image folders


def _read_image_folders(root: Path, on_bad_rows: str) -> ImageDataset:
    from PIL import Image, UnidentifiedImageError

    split_usage = {
        "train": "Training",
        "training": "Training",
        "test": "Test",
        "validation": "PublicTest",
        "val": "PublicTest",
        "publictest": "PublicTest",
        "privatetest": "PrivateTest",
    }
    images, labels, usage, bad = [], [], [], []
    splits = sorted(d for d in root.iterdir() if d.is_dir() and d.name.lower() in split_usage)

    def unused(path: Path, why: str) -> None:  # a file or folder the layout has no place for: listed, never dropped
        problem = BadRow(str(path), why)
        if on_bad_rows == "raise":
            raise FER2013FormatError(f"{problem}. Move or remove it, or pass on_bad_rows='skip'.")
        bad.append(problem)

    if splits:  # beside train/ and test/: a split folder of another name holds faces that would be lost
        others = (d for d in root.iterdir() if d.is_dir() and d not in splits and not d.name.startswith((".", "__")))
        for other in sorted(others):  # (hidden folders and zip leftovers such as __MACOSX are not data)
            unused(other, f"not a split folder (expected one of {', '.join(sorted(split_usage))})")
    for split in splits:
        for stray in sorted(f for f in split.iterdir() if f.is_file() and not f.name.startswith(".")):
            unused(stray, "a file outside the emotion folders (expected <split>/<emotion>/<image>)")
        for folder in sorted(d for d in split.iterdir() if d.is_dir()):
            for deeper in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
                unused(deeper, "a folder inside an emotion folder (its images are not read)")
            try:
                code = emotion_code(folder.name)
            except KeyError as exc:
                raise FER2013FormatError(f"{folder}: folder name is not an emotion ({exc.args[0]})") from None
            for file in sorted(f for f in folder.iterdir() if f.is_file()):
                try:
                    if file.suffix.lower() not in IMAGE_SUFFIXES:
                        raise ValueError(f"not an image file (expected {', '.join(sorted(IMAGE_SUFFIXES))})")
                    with Image.open(file) as im:
                        grey = np.asarray(im.convert("L"))
                    if grey.shape != (IMAGE_SIZE, IMAGE_SIZE):
                        raise ValueError(f"image is {grey.shape[1]}×{grey.shape[0]}, expected 48×48")
                except (ValueError, OSError, UnidentifiedImageError) as exc:
                    problem = BadRow(
                        str(file),
                        str(exc)
                        if isinstance(exc, ValueError) and not isinstance(exc, UnidentifiedImageError)
                        else f"unreadable image ({exc})",
                    )
                    if on_bad_rows == "raise":
                        raise FER2013FormatError(f"{problem}. Fix or remove it, or pass on_bad_rows='skip'.") from None
                    bad.append(problem)
                    continue
                images.append(grey)
                labels.append(code)
                usage.append(split_usage[split.name.lower()])
    if not images:
        raise FER2013FormatError(f"{root}: no images found under train/<emotion>/ or test/<emotion>/")
    description = (
        f"FER2013 image folders at {root}: {len(images)} images"
        + (f", {len(bad)} bad files skipped" if bad else "")
        + ("; test/ merges PublicTest and PrivateTest, so its Usage is 'Test'" if "Test" in usage else "")
    )
    return ImageDataset(
        np.stack(images).astype(np.uint8),
        np.array(labels, np.int64),
        np.array(usage, str),
        EMOTIONS,
        str(root),
        description,
        tuple(bad),
    )


# ------------------------------------------------------------------------------------------------------ splits

#: Share of ``Training`` held out for validation (model selection), stratified by emotion.
VALIDATION_FRACTION = 0.1
#: Share of ``Training`` held out as the test set when a copy has neither ``PublicTest`` nor ``Test``.
HOLDOUT_FRACTION = 0.1
#: The name of that test set (what a run record's ``test.usage`` says).
TRAINING_HOLDOUT = "Training hold-out"


@dataclass(frozen=True)
class FER2013Splits:
    """Train, validation and test sets of one FER2013 copy, whatever its format.

    Attributes:
        train: labelled ``Training`` rows to fit on (without the validation and any test hold-out rows).
        validation: a stratified, seeded share of ``Training`` (:data:`VALIDATION_FRACTION`) for model selection.
        test: ``PublicTest``; else the image folders' ``Test`` (PublicTest and PrivateTest merged); else a
            stratified, seeded :data:`HOLDOUT_FRACTION` of ``Training`` that is never trained on.
        test_name: ``"PublicTest"``, ``"Test"`` or :data:`TRAINING_HOLDOUT`.
        note: one sentence for a notebook's banner saying what each set is, and which fallback was used.
    """

    train: ImageDataset
    validation: ImageDataset
    test: ImageDataset
    test_name: str
    note: str


def _labelled(dataset: ImageDataset, usage: str) -> np.ndarray:
    return (dataset.usage == usage) & (dataset.labels >= 0)


def _stratified_split(
    index: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) subsets of ``index``: stratified by label where every class has two rows, else random."""
    from sklearn.model_selection import train_test_split

    if len(index) < 2:
        return index, index[:0]
    try:
        kept, held = train_test_split(index, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError:  # a class with a single row (tiny or unusual copies) cannot be stratified
        kept, held = train_test_split(index, test_size=fraction, random_state=seed)
    return np.sort(kept), np.sort(held)


def _training_holdout(dataset: ImageDataset, seed: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    index = np.flatnonzero(_labelled(dataset, "Training"))
    return _stratified_split(index, dataset.labels[index], fraction, seed)


def fer2013_splits(
    dataset: ImageDataset,
    *,
    seed: int = 0,
    validation_fraction: float = VALIDATION_FRACTION,
    holdout_fraction: float = HOLDOUT_FRACTION,
) -> FER2013Splits:
    """Split any FER2013 copy into train, validation and test sets (see :class:`FER2013Splits`).

    ``PublicTest`` is the test set when present; a copy without it (image folders: ``Test``; Kaggle's
    ``train.csv`` alone: a hold-out of ``Training``) gets the documented fallback, and ``note`` says so.
    ``PrivateTest`` is never used here: it is kept for grading (:func:`grading_test_set`). Same data and seed,
    same split. Unlabelled rows (Kaggle ``test.csv``) are left out.

    Raises:
        ValueError: the copy has no labelled ``Training`` rows (nothing to train on); the message lists the
            ``Usage`` values it has.
    """
    if not _labelled(dataset, "Training").any():
        raise ValueError(
            f"{dataset.source} has no labelled Training rows to train on (it has: "
            f"{', '.join(dataset.usages) or 'no rows'}); Kaggle's test.csv alone is unlabelled"
        )
    if _labelled(dataset, "PublicTest").any():
        test_name, test_index = "PublicTest", np.flatnonzero(_labelled(dataset, "PublicTest"))
        pool = np.flatnonzero(_labelled(dataset, "Training"))
        how = "test: PublicTest"
    elif _labelled(dataset, "Test").any():
        test_name, test_index = "Test", np.flatnonzero(_labelled(dataset, "Test"))
        pool = np.flatnonzero(_labelled(dataset, "Training"))
        how = (
            "this copy has no PublicTest, so the test set is its test/ folder (Usage 'Test': PublicTest and "
            "PrivateTest merged)"
        )
    else:
        test_name = TRAINING_HOLDOUT
        pool, test_index = _training_holdout(dataset, seed, holdout_fraction)
        how = (
            f"this copy has no PublicTest or test/ folder, so the test set is a stratified {holdout_fraction:.0%} "
            f"hold-out of Training (seed {seed}), never trained on"
        )
    train_index, val_index = _stratified_split(pool, dataset.labels[pool], validation_fraction, seed)
    note = (
        f"Training {len(train_index):,} · validation {len(val_index):,} (a stratified {validation_fraction:.0%} "
        f"of Training, seed {seed}, for model selection) · {how} ({len(test_index):,} faces)"
    )
    return FER2013Splits(
        dataset.select(train_index), dataset.select(val_index), dataset.select(test_index), test_name, note
    )


def grading_test_set(
    dataset: ImageDataset, *, seed: int = 0, holdout_fraction: float = HOLDOUT_FRACTION
) -> tuple[ImageDataset, str]:
    """The faces a submitted model is graded on, and their name.

    ``PrivateTest`` when the copy has it (the full Kaggle file), else the test set of :func:`fer2013_splits`
    with the same ``seed``: ``PublicTest``, else ``Test``, else the same hold-out of ``Training``, which a
    model trained by the notebook has never seen.

    Raises:
        ValueError: as :func:`fer2013_splits`.
    """
    if _labelled(dataset, "PrivateTest").any():
        return dataset.select(np.flatnonzero(_labelled(dataset, "PrivateTest"))), "PrivateTest"
    splits = fer2013_splits(dataset, seed=seed, holdout_fraction=holdout_fraction)
    return splits.test, splits.test_name
