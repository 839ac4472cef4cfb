"""Synthetic FACS faces: the kit's offline default data, written in the real file formats.

A hand-made parametric 3D face (:mod:`.face_model`) shows Action Units (:mod:`.facs`) composed into the seven
FER2013 emotions; :mod:`.samples` samples subjects and expressions as ARKit-like point clouds and renders
FER2013-like 48×48 images (:mod:`.render`); :mod:`.writers` writes them as the course's ``faces.py``, an
``.npz`` and a FER2013-schema ``fer2013.csv``, so the same loaders read synthetic and real data.
:func:`sample_image_aus` returns the AU intensities each image was rendered with (no rendering needed) and
:mod:`.affect` their valence/arousal; :mod:`data_loaders.action_units` serves them as AU labels.

These faces are not people and not a statistical face model: they exist so that every notebook, the demo and
the tests run on a machine without FER2013 or the iPhone X data, and to make visible how AUs build expressions.

Command line: ``python -m data_loaders synth --out data/synthetic [--subjects N --images N --seed S]``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from .. import cache
from .affect import EMOTION_ANGLES, valence_arousal
from .face_model import ARKIT_POINTS, IDENTITY_NAMES, FaceModel
from .facs import AU_NAMES, AUS, EMOTION_AUS, FACS_INTENSITY, au_vector
from .photos import standin_photos
from .samples import IPHONEX_EMOTIONS, SyntheticFaces, make_face, sample_faces, sample_image_aus, sample_images
from .writers import MARKER, openface_csv_text, write_faces_npz, write_faces_py, write_fer2013_csv, write_marker

#: Bump whenever the generator's output changes, so cached default data is generated again.
GENERATOR_VERSION = 1
DEFAULT_SUBJECTS = 50  # the course's iPhone X data had 50 subjects
DEFAULT_IMAGES = 10_000  # enough to train on in minutes; FER2013 has 35,887
DEFAULT_SEED = 0

FILES = {"fer2013": "fer2013.csv", "iphonex": "faces.py", "iphonex_npz": "faces.npz"}


def generate(
    out: str | Path,
    subjects: int = DEFAULT_SUBJECTS,
    images: int = DEFAULT_IMAGES,
    seed: int = DEFAULT_SEED,
    verbose: bool = False,
) -> dict[str, Path]:
    """Write ``fer2013.csv``, ``faces.py``, ``faces.npz`` and ``SYNTHETIC.json`` into ``out``.

    Deterministic: the same arguments give byte-identical files.

    Returns:
        ``{"fer2013": path, "iphonex": path, "iphonex_npz": path, "marker": path}``.

    Raises:
        ValueError: ``subjects`` < 1, ``images`` < 3 or ``seed`` < 0.
    """
    if subjects < 1 or images < 3:
        raise ValueError(f"need at least 1 subject and 3 images (one per Usage), got {subjects} and {images}")
    if seed < 0:  # numpy's own message ("expected non-negative integer") names no option
        raise ValueError(f"seed must be a whole number ≥ 0, got {seed}")
    out = Path(out)
    say = print if verbose else (lambda *a, **k: None)
    start = time.perf_counter()
    faces = sample_faces(subjects, seed=seed)
    paths = {
        "iphonex": write_faces_py(faces, out / FILES["iphonex"]),
        "iphonex_npz": write_faces_npz(faces, out / FILES["iphonex_npz"]),
    }
    say(
        f"{subjects} subjects × 7 expressions as point clouds → {paths['iphonex']} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    start = time.perf_counter()
    pixels, labels, usage = sample_images(images, seed=seed)
    paths["fer2013"] = write_fer2013_csv(pixels, labels, usage, out / FILES["fer2013"])
    say(f"{images} images 48×48 → {paths['fer2013']} ({time.perf_counter() - start:.1f} s)")
    paths["marker"] = write_marker(out, version=GENERATOR_VERSION, seed=seed, subjects=subjects, images=images)
    return paths


def is_synthetic(path: str | Path) -> bool:
    """Whether ``path`` (a file or folder) was written by :func:`generate` (its folder holds ``SYNTHETIC.json``)."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    return (folder / MARKER).is_file()


def default_data(kind: str = "fer2013") -> Path:
    """The cached default synthetic file of ``kind`` (``"fer2013"``, ``"iphonex"``, ``"iphonex_npz"``).

    Generated once (about 15 s) into the cache folder (see :func:`data_loaders.cache.cache_dir`), then reused.

    Raises:
        KeyError: an unknown ``kind``.
    """
    if kind not in FILES:
        raise KeyError(f"unknown synthetic data kind {kind!r}: expected one of {', '.join(FILES)}")
    folder = cache.cache_dir() / (
        f"synthetic-v{GENERATOR_VERSION}-seed{DEFAULT_SEED}-{DEFAULT_SUBJECTS}x{DEFAULT_IMAGES}"
    )
    if not (folder / MARKER).is_file():
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + "."))
        try:
            print(f"Generating the synthetic default data once (about 15 s) into {folder} …", flush=True)
            generate(tmp, DEFAULT_SUBJECTS, DEFAULT_IMAGES, DEFAULT_SEED)
            try:
                tmp.rename(folder)
            except OSError:  # another process finished first: use its copy
                if not (folder / MARKER).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder / FILES[kind]


__all__ = [
    "ARKIT_POINTS",
    "AUS",
    "AU_NAMES",
    "DEFAULT_IMAGES",
    "DEFAULT_SEED",
    "DEFAULT_SUBJECTS",
    "EMOTION_AUS",
    "FACS_INTENSITY",
    "FaceModel",
    "GENERATOR_VERSION",
    "IDENTITY_NAMES",
    "IPHONEX_EMOTIONS",
    "SyntheticFaces",
    "au_vector",
    "default_data",
    "generate",
    "is_synthetic",
    "make_face",
    "sample_faces",
    "sample_images",
    "EMOTION_ANGLES",
    "openface_csv_text",
    "sample_image_aus",
    "standin_photos",
    "valence_arousal",
]
