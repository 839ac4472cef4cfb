"""Faces labelled with Action Units (intensity and presence) and valence/arousal, in the formats users meet.

Labels follow FACS (Ekman, Friesen & Hager 2002, *Facial Action Coding System: The Manual*): each Action Unit
(AU) is scored absent (0) or at intensity A (trace) … E (maximum), written here as the numbers **0-5**
(1 = A … 5 = E), the scale OpenFace's ``AUxx_r`` columns and DISFA's label files use. Presence is a separate
boolean per AU. Valence (unpleasant … pleasant) and arousal (calm … excited) are in [-1, 1] as in Russell's
circumplex (Russell 1980).

Formats read by :func:`load_action_units`:

* **OpenFace 2.0 output** (Baltrušaitis et al. 2018; ``FeatureExtraction -aus -simalign``): a csv with
  ``frame``, ``face_id``, ``timestamp``, ``confidence``, ``success`` and per AU ``AU01_r`` (intensity 0-5) and
  ``AU01_c`` (presence 0/1) columns — the file py-feat's ``read_openface`` reads; header names may carry a
  leading space (``" AU01_r"``). Face images are OpenFace's aligned crops beside it,
  ``<name>_aligned/frame_det_<face_id:02d>_<frame:06d>.bmp`` (``.png``/``.jpg`` too). Rows with
  ``success = 0`` (no face tracked) are left out and listed in ``bad_rows``. Optional extra columns
  ``valence``, ``arousal`` ([-1, 1]), ``emotion`` (FER2013 code or name) and ``Usage`` are used when present.
  A folder of such csv files is read file by file (one subject per file).
* **DISFA-style folders** (Mavadati et al. 2013): ``<subject>/<subject>_au<N>.txt`` with one line
  ``frame,intensity`` (intensity 0-5) per frame and AU — DISFA's ``ActionUnit_Labels`` layout — plus the face
  crops of the frames in ``<subject>/frames/<frame>.png|jpg|bmp`` (any zero padding). Presence is
  intensity ≥ 1 (A or more; many DISFA papers use ≥ 2 instead). DISFA has no valence/arousal (NaN).
* **Synthetic FACS faces** (the default): the kit's synthetic ``fer2013.csv`` images with the AU intensities
  each face was rendered with (:func:`data_loaders.synthetic.sample_image_aus`; the kit's 0-1 scale × 5, so
  continuous like OpenFace's ``_r``), presence = intensity ≥ 0.5 (rounds to A or more), and valence/arousal
  from the emotion's circumplex position × expression strength (:mod:`data_loaders.synthetic.affect`).

Images are converted to grey and resized to 48×48. Real data without a ``Usage`` column is split **by
subject** (Training / PublicTest / PrivateTest, the last subjects in sorted order held out), so no person is
in two splits; with fewer than 3 subjects the frames are split in order instead (identity then leaks).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from . import cache
from .dataset import BadRow, bad_rows_from_arrays, bad_rows_to_arrays
from .emotions import EMOTIONS, emotion_code
from .files import IMAGE_SUFFIXES
from .resolve import configured_path, repo_data_dir
from .settings import AU_DATA_PATH, SYNTHETIC

IMAGE_SIZE = 48
MAX_INTENSITY = 5.0

#: FACS names and muscular basis of the Action Units the kit's sources code. Sources: Ekman, Friesen & Hager
#: (2002), *Facial Action Coding System: The Manual*; the same table in iMotions (2016), *Facial Action Coding
#: System (FACS) – A Visual Guidebook* (the guide the course handout cites).
AU_FACTS: dict[str, tuple[str, str]] = {
    "AU1": ("inner brow raiser", "frontalis, pars medialis"),
    "AU2": ("outer brow raiser", "frontalis, pars lateralis"),
    "AU4": ("brow lowerer", "depressor glabellae, depressor supercilii, corrugator supercilii"),
    "AU5": ("upper lid raiser", "levator palpebrae superioris"),
    "AU6": ("cheek raiser", "orbicularis oculi, pars orbitalis"),
    "AU7": ("lid tightener", "orbicularis oculi, pars palpebralis"),
    "AU9": ("nose wrinkler", "levator labii superioris alaeque nasi"),
    "AU10": ("upper lip raiser", "levator labii superioris"),
    "AU12": ("lip corner puller", "zygomaticus major"),
    "AU14": ("dimpler", "buccinator"),
    "AU15": ("lip corner depressor", "depressor anguli oris (triangularis)"),
    "AU16": ("lower lip depressor", "depressor labii inferioris"),
    "AU17": ("chin raiser", "mentalis"),
    "AU20": ("lip stretcher", "risorius with platysma"),
    "AU23": ("lip tightener", "orbicularis oris"),
    "AU25": ("lips part", "depressor labii inferioris, or relaxation of mentalis or orbicularis oris"),
    "AU26": ("jaw drop", "masseter relaxed; temporalis and internal pterygoid relaxed"),
    "AU28": ("lip suck", "orbicularis oris"),
    "AU45": ("blink", "relaxation of levator palpebrae superioris; orbicularis oculi, pars palpebralis"),
}

HOW_TO_GET = (
    "Action Unit labels come from OpenFace 2.0 (FeatureExtraction -aus -simalign: a csv with AU01_r/AU01_c columns "
    "and a <name>_aligned/ folder of face crops) or a DISFA-style folder (<subject>/<subject>_au<N>.txt lines "
    "'frame,intensity' and <subject>/frames/<frame>.png). Put it at data/action_units/ in the kit or set "
    f"{AU_DATA_PATH.name}=/path/to/it; set {AU_DATA_PATH.name}={SYNTHETIC} for the synthetic FACS faces."
)
_OPENFACE_R = re.compile(r"^AU(\d+)_r$")
_DISFA_FILE = re.compile(r"^(?P<subject>.+)_au(?P<au>\d+)\.txt$", re.IGNORECASE)


class ActionUnitFormatError(ValueError):
    """An Action Unit file, row or frame that does not match the expected format; the message names it."""


def au_name(number: int | str) -> str:
    """``"AU12"`` from ``12``, ``"12"``, ``"AU12"`` or ``"AU012"``."""
    text = str(number).upper().removeprefix("AU")
    return f"AU{int(text)}"


@dataclass(frozen=True)
class ActionUnitDataset:
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

    _ROW_ARRAYS = ("images", "intensity", "presence", "valence", "arousal", "labels", "usage", "subjects", "frames")

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

    def __len__(self) -> int:
        return len(self.images)

    @property
    def usages(self) -> tuple[str, ...]:
        """The ``Usage`` values present, in FER2013 order."""
        order = {"Training": 0, "PublicTest": 1, "PrivateTest": 2}
        return tuple(sorted(set(self.usage.tolist()), key=lambda u: order.get(u, 9)))

    def select(self, keep: np.ndarray) -> ActionUnitDataset:
        """The rows a boolean mask or an index array selects."""
        return replace(self, **{name: getattr(self, name)[keep] for name in self._ROW_ARRAYS})

    def subset(self, usage: str | Iterable[str]) -> ActionUnitDataset:
        """Rows whose ``Usage`` is ``usage`` (a name or several).

        Raises:
            ValueError: a requested ``Usage`` has no rows (the message lists those present).
        """
        wanted = [usage] if isinstance(usage, str) else list(usage)
        missing = [u for u in wanted if u not in self.usages]
        if missing:
            raise ValueError(f"{self.source} has no {'/'.join(missing)} rows; it has: {', '.join(self.usages)}")
        return self.select(np.isin(self.usage, wanted))

    def sample(self, n: int | None, seed: int = 0) -> ActionUnitDataset:
        """A random ``n`` rows (all, shuffled, when ``n`` is None or ≥ the size), reproducible by ``seed``."""
        order = np.random.default_rng(seed).permutation(len(self))
        return self.select(order if n is None else order[: max(0, int(n))])

    def au_table(self) -> pd.DataFrame:
        """One row per AU: FACS name, muscles (see :data:`AU_FACTS`), share of faces where it is present and
        mean intensity when present."""
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


# --------------------------------------------------------------------------------------------------- resolution


def action_units_path(path: str | os.PathLike | None = None, *, synthetic_fallback: bool = True) -> Path:
    """Resolve the AU data: ``path`` → ``$AU_DATA_PATH`` → ``<repo>/data/action_units/`` → synthetic default
    (the folder of the kit's cached synthetic faces; also when ``path`` or the variable is ``synthetic``).

    Raises:
        FileNotFoundError: a configured path that does not exist, or nothing found with
            ``synthetic_fallback=False`` (the message says what to put where).
    """
    chosen = configured_path(path, AU_DATA_PATH, "Action Unit data", HOW_TO_GET)
    if chosen == SYNTHETIC:
        return _synthetic_default()
    if chosen is not None:
        return chosen
    default = repo_data_dir() / "action_units"
    if default.is_dir() and any(default.iterdir()):
        return default
    if synthetic_fallback:
        return _synthetic_default()
    raise FileNotFoundError(f"no Action Unit data: {AU_DATA_PATH.name} is not set and {default} is empty. {HOW_TO_GET}")


def _synthetic_default() -> Path:
    from .synthetic import default_data

    return default_data("fer2013").parent


def load_action_units(
    path: str | os.PathLike | None = None, *, on_bad_rows: Literal["raise", "skip"] = "raise", use_cache: bool = True
) -> ActionUnitDataset:
    """Load faces with AU labels from any format in the module docstring.

    Args:
        path: an OpenFace csv, a folder of them, a DISFA-style folder, a synthetic folder, or ``"synthetic"``;
            default: see :func:`action_units_path`.
        on_bad_rows: ``"raise"`` (default) stops with an error naming each bad file/line/frame; ``"skip"``
            leaves them out, lists them in ``dataset.bad_rows`` and warns. OpenFace rows with ``success = 0`` are
            always left out and listed.
        use_cache: reuse arrays cached for these exact files (same paths, sizes and mtimes).

    Returns:
        An :class:`ActionUnitDataset`.

    Raises:
        FileNotFoundError: a configured path that does not exist.
        ActionUnitFormatError: no known format at the path, missing columns, unequal AU sets, or bad rows with
            ``on_bad_rows="raise"``.
        ValueError: ``on_bad_rows`` is not ``"raise"`` or ``"skip"``.
    """
    if on_bad_rows not in ("raise", "skip"):
        raise ValueError(f"on_bad_rows must be 'raise' or 'skip', got {on_bad_rows!r}")
    source = action_units_path(path)
    from .synthetic import is_synthetic

    if is_synthetic(source):
        return _load_synthetic(source if source.is_dir() else source.parent)
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    key = f"action-units-{cache.file_key(source, *files, extra=f'au|{on_bad_rows}')}"
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
    csvs = [p for p in files if p.suffix.lower() == ".csv"]
    disfa = [p for p in files if _DISFA_FILE.match(p.name) and p.parent.name == _DISFA_FILE.match(p.name)["subject"]]
    if disfa:
        parts = [_read_disfa(source, disfa, on_bad)]
    elif csvs:
        parts = [_read_openface(p, on_bad) for p in csvs]
    else:
        raise ActionUnitFormatError(
            f"{source} holds no Action Unit data: expected an OpenFace csv (AU01_r … "
            f"columns) or DISFA-style <subject>/<subject>_au<N>.txt files. {HOW_TO_GET}"
        )
    return _combine(parts, source)


# ------------------------------------------------------------------------------------------------- synthetic


def _load_synthetic(folder: Path) -> ActionUnitDataset:
    from .fer2013 import load_fer2013
    from .synthetic import MARKER, sample_image_aus
    from .synthetic.affect import valence_arousal

    facts = json.loads((folder / MARKER).read_text())
    faces = load_fer2013(folder / "fer2013.csv")
    labels, usage, aus = sample_image_aus(int(facts["images"]), int(facts["seed"]))
    if not (np.array_equal(labels, faces.labels) and np.array_equal(usage, faces.usage)):
        raise ActionUnitFormatError(
            f"{folder}: fer2013.csv does not match the generator's draws for seed "
            f"{facts['seed']} (edited by hand, or written by another generator version)"
        )
    from .synthetic import AUS

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


# ---------------------------------------------------------------------------------------------------- OpenFace


def _read_openface(path: Path, on_bad: str) -> dict:
    try:
        frame = pd.read_csv(path, skipinitialspace=True, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ActionUnitFormatError(f"{path}: not a readable csv ({err})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    r_cols = [c for c in frame.columns if _OPENFACE_R.match(c)]
    missing = [c for c in ("frame", "success") if c not in frame.columns]
    if missing or not r_cols:
        raise ActionUnitFormatError(
            f"{path}: not OpenFace output: missing column(s) {', '.join(missing + ([] if r_cols else ['AU01_r …']))}"
            f" (found {', '.join(frame.columns[:8])}{' …' if len(frame.columns) > 8 else ''})"
        )
    names = [au_name(_OPENFACE_R.match(c)[1]) for c in r_cols]
    aligned = path.with_name(f"{path.stem}_aligned")
    bad: list[BadRow] = []
    keep: list[tuple] = []
    for i, values in enumerate(frame.to_dict("records")):
        where = f"{path.name}:{i + 2}"  # header is line 1
        problem, parsed = _openface_row(values, r_cols, aligned)
        if problem:
            bad.append(BadRow(where, problem))
        else:
            keep.append(parsed)
    _raise_if_bad(path, bad, on_bad, always_ok=("success = 0",))
    subject = path.stem
    return _part(keep, names, subject, str(path), bad)


def _openface_row(values: dict, r_cols: list[str], aligned: Path) -> tuple[str | None, tuple | None]:
    try:
        frame_no = int(float(values["frame"]))
        face_id = int(float(values.get("face_id", 0) or 0))
    except ValueError:
        return f"frame {values['frame']!r} / face_id {values.get('face_id')!r} is not a whole number", None
    if values["success"].strip() not in ("0", "1"):
        return f"success must be 0 or 1, got {values['success']!r}", None
    if values["success"].strip() == "0":
        return f"success = 0 (OpenFace tracked no face in frame {frame_no})", None
    intensity, presence = [], []
    for col in r_cols:
        try:
            value = float(values[col])
        except ValueError:
            return f"{col} = {values[col]!r} is not a number", None
        if not 0.0 <= value <= MAX_INTENSITY:
            return f"{col} = {value} is outside the intensity range 0-5", None
        intensity.append(value)
        c_col = col[:-2] + "_c"
        if c_col in values:
            if values[c_col].strip() not in ("0", "1", "0.0", "1.0"):
                return f"{c_col} must be 0 or 1, got {values[c_col]!r}", None
            presence.append(float(values[c_col]) == 1.0)
        else:
            presence.append(value >= 0.5)
    extras, problem = _extras(values)
    if problem:
        return problem, None
    image = _find_image(aligned, f"frame_det_{face_id:02d}_{frame_no:06d}")
    if image is None:
        return f"no aligned face image {aligned.name}/frame_det_{face_id:02d}_{frame_no:06d}.bmp|png|jpg", None
    pixels, problem = _read_face(image)
    if problem:
        return problem, None
    return None, (pixels, intensity, presence, frame_no, *extras)


def _extras(values: dict) -> tuple[tuple, str | None]:
    """Optional ``valence``, ``arousal``, ``emotion`` and ``Usage`` columns."""
    out = []
    for col in ("valence", "arousal"):
        text = str(values.get(col, "")).strip()
        if not text:
            out.append(np.nan)
            continue
        try:
            value = float(text)
        except ValueError:
            return (), f"{col} = {text!r} is not a number"
        if not -1.0 <= value <= 1.0:
            return (), f"{col} = {value} is outside [-1, 1]"
        out.append(value)
    emotion = str(values.get("emotion", "")).strip()
    try:
        code = -1 if not emotion else (int(emotion) if emotion.lstrip("-").isdigit() else emotion_code(emotion))
    except KeyError as err:
        return (), str(err.args[0])
    if not -1 <= code <= 6:
        return (), f"emotion = {code} is not a FER2013 code 0-6"
    usage = str(values.get("Usage", "")).strip()
    if usage and usage not in ("Training", "PublicTest", "PrivateTest"):
        return (), f"Usage = {usage!r} is not Training, PublicTest or PrivateTest"
    return (*out, code, usage), None


# ------------------------------------------------------------------------------------------------------- DISFA


def _read_disfa(root: Path, label_files: list[Path], on_bad: str) -> dict:
    by_subject: dict[str, dict[str, Path]] = {}
    for p in label_files:
        m = _DISFA_FILE.match(p.name)
        by_subject.setdefault(m["subject"], {})[au_name(m["au"])] = p
    au_sets = {s: tuple(sorted(aus, key=lambda a: int(a[2:]))) for s, aus in by_subject.items()}
    names = next(iter(au_sets.values()))
    odd = {s: a for s, a in au_sets.items() if a != names}
    if odd:
        raise ActionUnitFormatError(
            f"{root}: every subject needs the same AU files; {next(iter(au_sets))} has "
            f"{', '.join(names)} but " + "; ".join(f"{s} has {', '.join(a)}" for s, a in odd.items())
        )
    parts, all_bad = [], []
    for subject in sorted(by_subject):
        labels: dict[str, dict[int, int]] = {}
        bad: list[BadRow] = []
        for au in names:
            labels[au] = _disfa_file(by_subject[subject][au], bad)
        frames = sorted(set().union(*[set(v) for v in labels.values()]))
        folder = by_subject[subject][names[0]].parent / "frames"
        if not folder.is_dir():
            raise ActionUnitFormatError(
                f"{folder}: missing; DISFA-style data needs the face crops of the "
                f"labelled frames as {subject}/frames/<frame>.png|jpg|bmp"
            )
        images = {}
        for p in folder.iterdir():
            if p.suffix.lower() in IMAGE_SUFFIXES and p.stem.isdigit():
                images[int(p.stem)] = p
        keep = []
        for f in frames:
            lacking = [au for au in names if f not in labels[au]]
            if lacking:
                bad.append(BadRow(f"{subject} frame {f}", f"no label for {', '.join(lacking)}"))
                continue
            if f not in images:
                bad.append(BadRow(f"{subject} frame {f}", f"no face image {subject}/frames/{f}.png|jpg|bmp"))
                continue
            pixels, problem = _read_face(images[f])
            if problem:
                bad.append(BadRow(f"{subject} frame {f}", problem))
                continue
            intensity = [float(labels[au][f]) for au in names]
            keep.append((pixels, intensity, [v >= 1 for v in intensity], f, np.nan, np.nan, -1, ""))
        all_bad += bad
        parts.append(_part(keep, list(names), subject, str(root), bad))
    _raise_if_bad(root, all_bad, on_bad)
    return _merge_parts(parts, list(names))


def _disfa_file(path: Path, bad: list[BadRow]) -> dict[int, int]:
    out: dict[int, int] = {}
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ActionUnitFormatError(f"{path}: unreadable ({err})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path.parent.name}/{path.name}:{n}"
        parts = [t.strip() for t in line.split(",")]
        if len(parts) != 2 or not all(t.lstrip("-").isdigit() for t in parts):
            bad.append(BadRow(where, f"expected 'frame,intensity' (two whole numbers), got {line.strip()!r}"))
            continue
        frame_no, value = int(parts[0]), int(parts[1])
        if frame_no < 0 or not 0 <= value <= MAX_INTENSITY:
            bad.append(BadRow(where, f"frame {frame_no} intensity {value}: expected frame ≥ 0 and intensity 0-5"))
        elif frame_no in out:
            bad.append(BadRow(where, f"frame {frame_no} labelled twice"))
        else:
            out[frame_no] = value
    return out


# ------------------------------------------------------------------------------------------------------ shared


def _find_image(folder: Path, stem: str) -> Path | None:
    for suffix in sorted(IMAGE_SUFFIXES):  # a fixed order: a frozenset's order changes between runs
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def _read_face(path: Path) -> tuple[np.ndarray | None, str | None]:
    """A face crop as ``uint8 (48, 48)`` grey, or a problem naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            grey = img.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
            return np.asarray(grey, np.uint8), None
    except (OSError, UnidentifiedImageError) as err:
        return None, f"{path.name}: not a readable image ({err})"


def _raise_if_bad(where: Path, bad: list[BadRow], on_bad: str, always_ok: tuple[str, ...] = ()) -> None:
    errors = [b for b in bad if not any(b.reason.startswith(ok) for ok in always_ok)]
    if errors and on_bad == "raise":
        listed = "\n  ".join(str(b) for b in errors[:10])
        more = f"\n  … and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ActionUnitFormatError(
            f"{where}: {len(errors)} bad rows (on_bad_rows='skip' leaves them out):\n  {listed}{more}"
        )


def _part(keep: list[tuple], names: list[str], subject: str, source: str, bad: list[BadRow]) -> dict:
    n, k = len(keep), len(names)
    return {
        "names": names,
        "source": source,
        "bad": list(bad),
        "images": np.stack([r[0] for r in keep]) if keep else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
        "intensity": np.array([r[1] for r in keep], np.float32).reshape(n, k),
        "presence": np.array([r[2] for r in keep], bool).reshape(n, k),
        "frames": np.array([r[3] for r in keep], np.int64),
        "valence": np.array([r[4] for r in keep], np.float32),
        "arousal": np.array([r[5] for r in keep], np.float32),
        "labels": np.array([r[6] for r in keep], np.int64),
        "usage": np.array([r[7] for r in keep], dtype=object).astype(str) if keep else np.zeros(0, str),
        "subjects": np.full(n, subject),
    }


def _merge_parts(parts: list[dict], names: list[str]) -> dict:
    out = {"names": names, "source": parts[0]["source"], "bad": [b for p in parts for b in p["bad"]]}
    for key in ("images", "intensity", "presence", "frames", "valence", "arousal", "labels", "usage", "subjects"):
        out[key] = np.concatenate([p[key] for p in parts])
    return out


def _combine(parts: list[dict], source: Path) -> ActionUnitDataset:
    names = parts[0]["names"]
    odd = [p["source"] for p in parts if p["names"] != names]
    if odd:
        raise ActionUnitFormatError(
            f"{source}: every csv needs the same AU columns; {parts[0]['source']} has "
            f"{', '.join(names)} but {', '.join(odd)} differ"
        )
    data = _merge_parts(parts, names)
    if not len(data["images"]):
        raise ActionUnitFormatError(
            f"{source}: no usable frames ({len(data['bad'])} left out; first: "
            f"{data['bad'][0] if data['bad'] else 'none'})"
        )
    usage = _split(data["usage"], data["subjects"])
    n_subjects = len(set(data["subjects"].tolist()))
    description = (
        f"{len(usage):,} faces of {n_subjects} subject(s) × {len(names)} AUs ({', '.join(names)}) "
        f"from {source}" + (f"; {len(data['bad'])} rows/frames left out" if data["bad"] else "")
    )
    return ActionUnitDataset(
        data["images"],
        data["intensity"],
        data["presence"],
        data["valence"],
        data["arousal"],
        data["labels"],
        usage,
        data["subjects"].astype(str),
        data["frames"],
        tuple(names),
        str(source),
        description,
        bad_rows=tuple(data["bad"]),
    )


def _split(given: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """``Usage`` per row: the source's own where every row has one, else a split by subject (see the module)."""
    if len(given) and all(given):
        return given.astype(str)
    people = sorted(set(subjects.tolist()))
    if len(people) >= 3:
        n_test = max(1, round(0.1 * len(people)))
        public, private = set(people[-2 * n_test : -n_test]), set(people[-n_test:])
        return np.array(
            ["PublicTest" if s in public else "PrivateTest" if s in private else "Training" for s in subjects]
        )
    n = len(subjects)
    cut1, cut2 = int(round(0.8 * n)), int(round(0.9 * n))
    return np.array(["Training"] * cut1 + ["PublicTest"] * (cut2 - cut1) + ["PrivateTest"] * (n - cut2))


def _to_arrays(d: ActionUnitDataset) -> dict[str, np.ndarray]:
    return {
        **{name: getattr(d, name) for name in ActionUnitDataset._ROW_ARRAYS},
        "au_names": np.array(d.au_names),
        "description": np.array(d.description),
        **bad_rows_to_arrays(d.bad_rows),
    }


def _from_arrays(a: dict[str, np.ndarray], source: str) -> ActionUnitDataset:
    return ActionUnitDataset(
        **{name: a[name] for name in ActionUnitDataset._ROW_ARRAYS},
        au_names=tuple(str(x) for x in a["au_names"]),
        source=source,
        description=str(a["description"]) + " (read from the cache)",
        bad_rows=bad_rows_from_arrays(a),
    )


__all__ = [
    "AU_FACTS",
    "ActionUnitDataset",
    "ActionUnitFormatError",
    "action_units_path",
    "au_name",
    "load_action_units",
]
