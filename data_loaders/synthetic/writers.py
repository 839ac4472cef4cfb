"""Write synthetic faces in the real file formats: the course's ``faces.py``, an ``.npz``, ``fer2013.csv``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..emotions import EMOTIONS
from ..files import atomic_write
from .facs import AUS
from .samples import IPHONEX_EMOTIONS, SyntheticFaces

#: Marker file in every folder the generator writes; loaders use it to label the data as synthetic.
MARKER = "SYNTHETIC.json"
_PIXEL_TEXT = np.array([str(i) for i in range(256)], dtype=object)


def _atomic_write(path: Path, write) -> Path:
    """Write through a temporary file in the same folder, then rename (no half-written file is ever seen)."""
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return path


def faces_py_text(faces: SyntheticFaces) -> str:
    """The course's ``faces.py`` schema: ``face_samples = {sample_id: {emotion: {"x": [...], ...}}}``.

    Coordinates are written in metres with 6 decimals (1 µm); emotions are spelled as in the course file
    (``angry``, ``disgust``, ``fear``, ``happy``, ``neutral``, ``sad``, ``surprise``).
    """
    lines = [
        "# Synthetic iPhone X face point clouds written by data_loaders.synthetic (not real people).",
        "# Schema of MIT 6.835 MiniProject 4's faces.py: metres, 1220 ARKit-like vertices per face.",
        "face_samples = {",
    ]
    for s, sample_id in enumerate(faces.sample_ids):
        lines.append(f"    {json.dumps(str(sample_id))}: {{")
        for i in np.flatnonzero(faces.subjects == s):
            coords = ", ".join(
                f'"{axis}": [' + ", ".join(f"{c:.6f}" for c in faces.points[i, :, k].tolist()) + "]"
                for k, axis in enumerate("xyz")
            )
            lines.append(f'        "{IPHONEX_EMOTIONS[faces.labels[i]]}": {{{coords}}},')
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_faces_py(faces: SyntheticFaces, path: Path) -> Path:
    """Write :func:`faces_py_text` to ``path`` atomically."""
    return _atomic_write(Path(path), lambda f: f.write(faces_py_text(faces).encode()))


def write_faces_npz(faces: SyntheticFaces, path: Path) -> Path:
    """The same clouds as an ``.npz``: ``points float32 (N, P, 3)`` metres, ``sample_id`` and ``emotion``
    (``str (N,)``, one row per cloud), plus the ground truth ``aus float32 (N, 13)`` and ``au_names``."""
    return _atomic_write(
        Path(path),
        lambda f: np.savez_compressed(
            f,
            points=faces.points,
            sample_id=faces.sample_ids[faces.subjects],
            emotion=np.array(IPHONEX_EMOTIONS)[faces.labels],
            aus=faces.aus,
            au_names=np.array(AUS),
        ),
    )


def write_fer2013_csv(images: np.ndarray, labels: np.ndarray, usage: np.ndarray, path: Path) -> Path:
    """Write images in the FER2013 schema ``emotion,pixels,Usage`` (pixels: 2304 space-separated 0-255)."""
    flat = images.reshape(len(images), -1)
    pixels = [" ".join(_PIXEL_TEXT[row]) for row in flat]
    frame = pd.DataFrame({"emotion": labels.astype(np.int64), "pixels": pixels, "Usage": usage})
    return _atomic_write(Path(path), lambda f: frame.to_csv(f, index=False, lineterminator="\n"))


def write_marker(folder: Path, **facts) -> Path:
    """Write :data:`MARKER` describing how the folder was generated (seed, counts, generator version)."""
    text = json.dumps(
        {"generator": "data_loaders.synthetic", "classes": list(EMOTIONS), **facts}, indent=2, sort_keys=True
    )
    return _atomic_write(Path(folder) / MARKER, lambda f: f.write(text.encode() + b"\n"))


def openface_csv_text(intensity: np.ndarray, au_names: tuple[str, ...] | list[str], **columns) -> str:
    """AU labels in OpenFace 2.0's csv layout: ``frame, face_id, timestamp, confidence, success``, then
    ``AU01_r`` … (intensity 0-5) and ``AU01_c`` … (presence, intensity ≥ 0.5), then any extra ``columns``
    (e.g. ``valence``, ``arousal``, ``emotion``, ``Usage``; arrays of length N). Frames are numbered from 1 at
    30 frames per second, as OpenFace numbers a video's frames.

    Args:
        intensity: ``(N, K)`` intensities 0-5. au_names: ``("AU1", …)``, K names.
    """
    n = len(intensity)
    tags = [f"AU{int(name.upper().removeprefix('AU')):02d}" for name in au_names]
    frame = pd.DataFrame(
        {
            "frame": np.arange(1, n + 1),
            "face_id": 0,
            "timestamp": np.round(np.arange(n) / 30, 3),
            "confidence": 0.98,
            "success": 1,
        }
    )
    for j, tag in enumerate(tags):
        frame[f"{tag}_r"] = np.round(intensity[:, j], 2)
    for j, tag in enumerate(tags):
        frame[f"{tag}_c"] = (intensity[:, j] >= 0.5).astype(int)
    for name, values in columns.items():
        frame[name] = values
    return frame.to_csv(index=False, lineterminator="\n")
