"""iPhone X face point clouds (ARKit face meshes) as the course distributed them, and in common 3D formats.

Source: MIT 6.835 MiniProject 4, Part 3 (see ``shared/HANDOUT.md``). The course's ``faces.py`` holds one dict
literal ``face_samples = {sample_id: {emotion: {"x": [...], "y": [...], "z": [...]}}}``: sample ids are
recording timestamps (``"2018-03-11 18:48:11 +0000"``), emotions ``angry, disgust, fear, happy, neutral, sad,
surprise``, and every face has the 1220 vertices of ARKit's face mesh (``ARFaceGeometry``) in metres, in a
head-anchored frame (origin near the head centre, +y up, +z towards the camera).

Formats read by :func:`load_iphonex`:

* ``faces.py``: parsed as data, **never executed** (numeric lists are read with numpy, everything else with
  :func:`ast.literal_eval`; any other statement or expression is refused with its line number);
* ``.npz`` with ``points (N, P, 3)``, ``sample_id (N,)`` and ``emotion (N,)``;
* a folder ``<subject>/<emotion>.ply|.obj|.xyz|.pcd`` read with open3d (mesh files: their vertices).
"""

from __future__ import annotations

import ast
import os
import re
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from . import cache
from .dataset import (
    ARKIT_VERTICES,
    BadRow,
    PointCloudDataset,
    bad_rows_from_arrays,
    bad_rows_listing,
    bad_rows_to_arrays,
    check_on_bad_rows,
)
from .emotions import EMOTIONS, emotion_code
from .resolve import DataSource, resolve_source
from .settings import IPHONEX_PATH

_CLOUD_SUFFIXES = {".ply", ".obj", ".xyz", ".pcd", ".pts"}
_DEFAULT_NAMES = ("faces.py", "faces.npz")
#: A list of plain numbers: the only text read without ast (fast, and it cannot hold code).
_NUMBER_LIST = re.compile(r"\[((?:[-+0-9.eE,\s]|nan|NaN|inf|Infinity)*)\]")

HOW_TO_GET = (
    "The iPhone X face data (faces.py) comes with the course materials; put it at data/iphonex/faces.py "
    f"or set {IPHONEX_PATH.name}=/path/to/faces.py (also .npz, or a folder <subject>/<emotion>.ply)."
)


class IPhoneXFormatError(ValueError):
    """A point-cloud file or sample that does not match the expected format; the message names it."""


class Cloud(NamedTuple):
    """One cloud as a reader found it, before checking: its sample id, its emotion as spelled in the source, and
    its points (``float64 (P, 3)``) or, when they could not be read, the problem (a str)."""

    sample_id: str
    emotion: str
    points: np.ndarray | str


def iphonex_path(path: str | os.PathLike | None = None, *, synthetic_fallback: bool = True) -> Path:
    """Resolve the point clouds: ``path`` → ``$IPHONEX_PATH`` → ``<repo>/data/iphonex/`` → synthetic default.

    ``path`` or ``$IPHONEX_PATH`` may be the word ``synthetic``.

    Raises:
        FileNotFoundError: a given path does not exist, or nothing is found and ``synthetic_fallback`` is False.
    """
    return resolve_source(path, SOURCE, synthetic_fallback=synthetic_fallback)


def _in_default_folder(folder: Path) -> Path | None:
    """``faces.py`` or ``faces.npz`` in the folder, else the folder when it holds subject folders."""
    for name in _DEFAULT_NAMES:
        if (folder / name).is_file():
            return folder / name
    if folder.is_dir() and any(d.is_dir() for d in folder.iterdir()):
        return folder
    return None


def _synthetic_default() -> Path:
    from .synthetic import default_data

    return default_data("iphonex")


#: What the iPhone X data's resolution has of its own (:func:`data_loaders.resolve.resolve_source` does the rest).
SOURCE = DataSource(IPHONEX_PATH, "iphonex", "iPhone X data", HOW_TO_GET, _in_default_folder, _synthetic_default)


def load_iphonex(
    path: str | os.PathLike | None = None, *, on_bad_rows: Literal["raise", "skip"] = "raise", use_cache: bool = True
) -> PointCloudDataset:
    """Load face point clouds from ``faces.py``, an ``.npz`` or a folder of PLY/OBJ/XYZ files.

    Args:
        path: the file or folder, or ``"synthetic"``; default: see :func:`iphonex_path`.
        on_bad_rows: ``"raise"`` (default) stops with an error naming every bad sample id and emotion;
            ``"skip"`` leaves them out, lists them in ``dataset.bad_rows`` and warns.
        use_cache: reuse arrays cached for this exact file (same path, size and mtime).

    Returns:
        A :class:`~data_loaders.dataset.PointCloudDataset`: ``points float32 (N, P, 3)`` metres, ``labels
        int64 (N,)`` FER2013 codes, ``subjects`` and ``emotions`` ``str (N,)``, rows in source order.

    Raises:
        FileNotFoundError: a configured path that does not exist.
        IPhoneXFormatError: unreadable files, code in ``faces.py``, or bad samples (NaN/inf, unequal x/y/z
            lengths, a point count unlike the others, an unknown emotion, an empty cloud) with "raise".
    """
    check_on_bad_rows(on_bad_rows)
    source = iphonex_path(path)
    if use_cache and source.is_file():
        key = f"iphonex-{cache.file_key(source, extra=f'iphonex|{on_bad_rows}')}"
        arrays = cache.load_arrays(key)
        if arrays is None:
            dataset = _load(source, on_bad_rows)
            cache.save_arrays(
                key,
                points=dataset.points,
                subjects=dataset.subjects,
                emotions=dataset.emotions,
                description=np.array(dataset.description),
                **bad_rows_to_arrays(dataset.bad_rows),
            )
        else:
            dataset = _dataset(
                arrays["points"],
                arrays["subjects"],
                arrays["emotions"],
                source,
                str(arrays["description"]) + " (read from the cache)",
                bad_rows_from_arrays(arrays),
            )
    else:
        dataset = _load(source, on_bad_rows)
    from .synthetic import is_synthetic

    if is_synthetic(source):
        dataset = replace(
            dataset,
            description="SYNTHETIC FACS faces, not iPhone X recordings "
            f"({dataset.description}). "
            "To use real data, put faces.py in data/iphonex/ or set "
            "IPHONEX_PATH.",
        )
    if dataset.bad_rows:
        warnings.warn(f"{source}: skipped {len(dataset.bad_rows)} bad clouds; see dataset.bad_rows", stacklevel=2)
    return dataset


def _dataset(points, subjects, emotions, source, description, bad=()) -> PointCloudDataset:
    labels = np.array([emotion_code(e) for e in emotions], np.int64)
    return PointCloudDataset(
        np.asarray(points, np.float32),
        labels,
        np.asarray(subjects).astype(str),
        np.asarray(emotions).astype(str),
        EMOTIONS,
        str(source),
        description,
        tuple(bad),
    )


# ------------------------------------------------------------------------------------------- checking clouds


def _finite_in_float32(cloud: np.ndarray) -> np.ndarray:
    """Per point of a ``(P, 3)`` cloud, whether its coordinates are finite once stored as float32 (what the dataset
    holds: 1e39 is finite as float64 and inf as float32)."""
    with np.errstate(over="ignore"):
        return np.all(np.isfinite(cloud.astype(np.float32)), axis=1)


def _check_clouds(clouds: list[Cloud], label: str, on_bad: str) -> PointCloudDataset:
    """Validate the clouds the readers found and stack the good ones."""
    problems: dict[int, str] = {}
    arrays: dict[int, np.ndarray] = {}
    for i, found in enumerate(clouds):
        cloud = found.points
        try:
            emotion_code(found.emotion)
        except KeyError as exc:
            problems[i] = exc.args[0]
            continue
        if isinstance(cloud, str):
            problems[i] = cloud
        elif len(cloud) == 0:
            problems[i] = "empty cloud (0 points)"
        elif not (finite := _finite_in_float32(cloud)).all():
            bad = np.flatnonzero(~finite)
            problems[i] = (
                f"{len(bad)} point(s) with NaN or inf coordinates, or beyond float32's range (first: point {bad[0]})"
            )
        else:
            arrays[i] = cloud
    if arrays:
        sizes = np.array([len(a) for a in arrays.values()])
        counts = np.bincount(sizes)
        tied = np.flatnonzero(counts == counts.max())  # the most common size; on a tie ARKit's 1220, else the larger
        expected = ARKIT_VERTICES if ARKIT_VERTICES in tied else int(tied.max())
        for i, a in arrays.items():
            if len(a) != expected:
                problems[i] = (
                    f"{len(a)} points, expected {expected} like the other clouds (ARKit meshes: {ARKIT_VERTICES})"
                )
    bad = tuple(
        BadRow(f"{label}: sample {clouds[i].sample_id!r} emotion {clouds[i].emotion!r}", problems[i])
        for i in sorted(problems)
    )
    if bad and on_bad == "raise":
        raise IPhoneXFormatError(
            f"{label}: {len(bad)} bad cloud(s) out of {len(clouds)}:\n{bad_rows_listing(bad)}\n"
            "Fix the data, or pass on_bad_rows='skip' to leave them out."
        )
    keep = [i for i in range(len(clouds)) if i not in problems]
    if not keep:
        raise IPhoneXFormatError(f"{label}: no usable point clouds")
    points = np.stack([arrays[i] for i in keep]).astype(np.float32)
    description = (
        f"iPhone X point clouds from {label}: {len(keep)} clouds × {points.shape[1]} points, "
        f"{len({clouds[i].sample_id for i in keep})} subjects" + (f", {len(bad)} bad clouds skipped" if bad else "")
    )
    ids, emotions = [clouds[i].sample_id for i in keep], [clouds[i].emotion for i in keep]
    return _dataset(points, ids, emotions, label, description, bad)


def _load(source: Path, on_bad: str) -> PointCloudDataset:
    if source.is_dir():
        return _check_clouds(_read_folder(source), str(source), on_bad)
    if source.suffix.lower() == ".npz":
        return _check_clouds(_read_npz(source), str(source), on_bad)
    if source.suffix.lower() == ".py":
        return _check_clouds(_read_faces_py(source), str(source), on_bad)
    raise IPhoneXFormatError(f"{source}: expected faces.py, an .npz, or a folder of <subject>/<emotion>.ply files")


# ------------------------------------------------------------------------------------------------- faces.py


#: Marks a number list of faces.py stashed before parsing (a NUL byte: no literal of a real file starts with one).
_PLACEHOLDER = "\x00numbers:"


def _duplicate_keys(value: ast.expr) -> dict[tuple[str, str], str]:
    """``(sample_id, emotion)`` → why, for each key that faces.py's dict literals give twice (Python keeps the last
    one, so the first would be lost without a word). An emotion of ``"*"`` stands for a whole repeated sample."""
    found: dict[tuple[str, str], str] = {}

    def repeats(node: ast.Dict) -> list[tuple[object, int, int]]:
        first: dict[object, int] = {}
        twice = []
        for key in node.keys:
            if isinstance(key, ast.Constant):
                if key.value in first:
                    twice.append((key.value, first[key.value], key.lineno))
                first.setdefault(key.value, key.lineno)
        return twice

    if isinstance(value, ast.Dict):
        for sid, a, b in repeats(value):
            found[(str(sid), "*")] = f"sample {sid!r} is given twice (lines {a} and {b})"
        for key, inner in zip(value.keys, value.values):
            if isinstance(key, ast.Constant) and isinstance(inner, ast.Dict):
                for emotion, a, b in repeats(inner):
                    found[(str(key.value), str(emotion))] = f"given twice in its sample (lines {a} and {b})"
    return found


def _read_faces_py(path: Path) -> list[Cloud]:
    """Parse ``faces.py`` without executing it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IPhoneXFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise IPhoneXFormatError(f"{path}: cannot read ({exc})") from None
    numbers: list[str] = []

    def stash(match: re.Match) -> str:
        numbers.append(match.group(1))
        # a string placeholder, swapped back below: an int one would pass a nested list [[...]] off as coordinates
        return repr(f"{_PLACEHOLDER}{len(numbers) - 1}")

    skeleton = _NUMBER_LIST.sub(stash, text)
    try:
        tree = ast.parse(skeleton, filename=str(path))
    except SyntaxError as exc:
        raise IPhoneXFormatError(f"{path}:{exc.lineno}: not valid Python literal syntax ({exc.msg})") from None
    body = [
        node
        for node in tree.body
        if not (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        )
    ]  # docstrings are fine
    node = body[0] if len(body) == 1 else None
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        value = node.value
    elif isinstance(node, ast.Expr):
        value = node.value
    else:
        where = body[1].lineno if len(body) > 1 else (body[0].lineno if body else 1)
        raise IPhoneXFormatError(
            f"{path}:{where}: expected exactly one statement, face_samples = {{...}}; found "
            f"{len(body)} statement(s) ({', '.join(type(n).__name__ for n in body[:4]) or 'none'}). "
            "The file is data and is never executed."
        )
    try:
        samples = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        bad = next(
            (
                n
                for n in ast.walk(value)
                if not isinstance(
                    n, (ast.Dict, ast.List, ast.Tuple, ast.Constant, ast.UnaryOp, ast.USub, ast.UAdd, ast.Load)
                )
            ),
            value,
        )
        raise IPhoneXFormatError(
            f"{path}:{getattr(bad, 'lineno', '?')}: only literal values are allowed (found "
            f"{type(bad).__name__}: {ast.get_source_segment(skeleton, bad) or exc}). The file is never executed."
        ) from None
    if not isinstance(samples, dict):
        raise IPhoneXFormatError(
            f"{path}: expected a dict {{sample_id: {{emotion: {{'x', 'y', 'z'}}}}}}, found a {type(samples).__name__}"
        )
    twice = _duplicate_keys(value)
    clouds = []
    for sid, emotions in samples.items():
        if not isinstance(emotions, dict):
            found = type(emotions).__name__
            clouds.append(Cloud(str(sid), "?", f"expected {{emotion: {{'x': [...], ...}}}}, found {found}"))
            continue
        for emotion, xyz in emotions.items():
            # a repeated key leaves one of two clouds: which one was meant cannot be told, so neither is used
            repeated = twice.get((str(sid), str(emotion))) or twice.get((str(sid), "*"))
            clouds.append(Cloud(str(sid), str(emotion), repeated or _xyz_cloud(xyz, numbers)))
    return clouds


def _coordinates(value, numbers: list[str]) -> np.ndarray | str:
    if isinstance(value, str) and value.startswith(_PLACEHOLDER):
        text = numbers[int(value[len(_PLACEHOLDER) :])].strip().rstrip(",")
        if not text:
            return np.zeros(0, np.float64)
        parts = text.split(",")
        try:
            return np.array([float(p) for p in parts], np.float64)
        except ValueError:
            bad = next(p for p in parts if not _is_float(p))
            return f"{bad.strip()!r} is not a number"
    if isinstance(value, (list, tuple)):
        try:
            return np.array(value, np.float64).reshape(-1)
        except (TypeError, ValueError):
            return "coordinates must be numbers"
    return f"expected a list of numbers, found {type(value).__name__}"


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _xyz_cloud(xyz, numbers: list[str]) -> np.ndarray | str:
    if not isinstance(xyz, dict) or not {"x", "y", "z"} <= set(xyz):
        have = ", ".join(map(str, xyz)) if isinstance(xyz, dict) else type(xyz).__name__
        return f"expected keys 'x', 'y', 'z', found {have}"
    axes = [_coordinates(xyz[k], numbers) for k in "xyz"]
    for k, a in zip("xyz", axes):
        if isinstance(a, str):
            return f"{k}: {a}"
    lengths = [len(a) for a in axes]
    if len(set(lengths)) > 1:
        return f"x, y, z have different lengths ({lengths[0]}, {lengths[1]}, {lengths[2]})"
    return np.stack(axes, axis=1)


# ------------------------------------------------------------------------------------------- npz and folders


def _read_npz(path: Path) -> list[Cloud]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = {"points", "sample_id", "emotion"} - set(npz.files)
            if missing:
                raise IPhoneXFormatError(
                    f"{path}: missing arrays {sorted(missing)}; expected points (N, P, 3), "
                    "sample_id (N,) and emotion (N,)"
                )
            points, ids, emotions = npz["points"], npz["sample_id"], npz["emotion"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, IPhoneXFormatError):
            raise
        raise IPhoneXFormatError(f"{path}: not a readable .npz ({exc})") from None
    if points.ndim != 3 or points.shape[2] != 3 or len(ids) != len(points) or len(emotions) != len(points):
        raise IPhoneXFormatError(
            f"{path}: points {points.shape}, sample_id {ids.shape}, emotion {emotions.shape}; "
            "expected (N, P, 3), (N,), (N,)"
        )
    return [Cloud(str(s), str(e), p.astype(np.float64)) for s, e, p in zip(ids, emotions, points)]


#: Bytes of each scalar type of the PLY format (Bourke's specification, and the sized names rply accepts).
_PLY_SIZES = {
    **dict.fromkeys(("char", "uchar", "int8", "uint8"), 1),
    **dict.fromkeys(("short", "ushort", "int16", "uint16"), 2),
    **dict.fromkeys(("int", "uint", "float", "int32", "uint32", "float32"), 4),
    **dict.fromkeys(("double", "float64"), 8),
}


def _truncated_ply(path: Path) -> str | None:
    """Why the vertices of the PLY file ``path`` are incomplete, or None when its body holds every vertex its header
    declares (or the header is not one this check reads: open3d then judges the file). open3d reads a PLY cut short
    without an error, filling the missing vertices with zeros or leftover memory, hence this check."""
    with open(path, "rb") as f:
        head = f.read(65536)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        return None
    body_start = head.index(b"\n", end) + 1 if b"\n" in head[end:] else len(head)
    fmt, count, sizes, element = None, None, [], None
    for line in head[:end].decode("ascii", "replace").splitlines():
        words = line.split()
        if words[:1] == ["format"] and len(words) > 1:
            fmt = words[1]
        elif words[:1] == ["element"] and len(words) == 3:
            element = words[1]
            if element == "vertex" and words[2].isdigit():
                count = int(words[2])
        elif words[:1] == ["property"] and element == "vertex":
            sizes.append(_PLY_SIZES.get(words[1]) if len(words) == 3 else None)  # a list property: no fixed size
    if count is None:
        return None
    if fmt == "ascii":
        with open(path, "rb") as f:
            f.seek(body_start)
            lines = sum(1 for line in f if line.strip())
        if lines < count:
            return f"{path.name}: the file ends after {lines} of the {count} vertices its header declares"
    elif fmt in ("binary_little_endian", "binary_big_endian") and sizes and None not in sizes:
        need = body_start + count * sum(sizes)
        have = path.stat().st_size
        if have < need:
            whole = max(0, (have - body_start) // sum(sizes))
            return f"{path.name}: the file ends after {whole} of the {count} vertices its header declares"
    return None


def _read_folder(root: Path) -> list[Cloud]:
    import open3d as o3d

    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    clouds = []
    for subject in sorted(d for d in root.iterdir() if d.is_dir()):
        for file in sorted(f for f in subject.iterdir() if f.is_file()):
            if file.suffix.lower() not in _CLOUD_SUFFIXES:
                clouds.append(
                    Cloud(
                        subject.name,
                        file.stem,
                        f"{file.name}: not a point-cloud file (expected {', '.join(sorted(_CLOUD_SUFFIXES))})",
                    )
                )
                continue
            if file.stat().st_size == 0:
                clouds.append(Cloud(subject.name, file.stem, f"{file.name}: empty file (0 bytes)"))
                continue
            if file.suffix.lower() == ".ply" and (truncated := _truncated_ply(file)):
                clouds.append(Cloud(subject.name, file.stem, truncated))
                continue
            if file.suffix.lower() == ".obj":
                points = np.asarray(o3d.io.read_triangle_mesh(str(file)).vertices, np.float64)
            else:
                points = np.asarray(o3d.io.read_point_cloud(str(file)).points, np.float64)
            clouds.append(
                Cloud(
                    subject.name,
                    file.stem,
                    points if len(points) else f"{file.name}: no points read (empty or unreadable {file.suffix} file)",
                )
            )
    if not clouds:
        raise IPhoneXFormatError(f"{root}: no <subject>/<emotion>.ply|.obj|.xyz files found")
    return clouds
