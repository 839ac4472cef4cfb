"""Synthetic subjects × expressions as 3D point clouds, and synthetic FER2013-like images."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from ..emotions import EMOTIONS
from .face_model import IDENTITY_NAMES, FaceModel, rotation_matrices
from .facs import AUS, au_vector
from .render import render_faces
from .sampling import draw_expressions, draw_identities, draw_labels, draw_poses, usage_counts

#: Emotion names as spelled in the course's ``faces.py`` (iPhone X data), in FER2013 code order.
IPHONEX_EMOTIONS: tuple[str, ...] = tuple(e.lower() for e in EMOTIONS)
SENSOR_NOISE_M = 0.0007  #: σ of the simulated depth-sensor noise per coordinate, metres
_RENDER_CHUNK = 256  # images rendered per batch (fixed, so output does not depend on memory)


@dataclass(frozen=True)
class SyntheticFaces:
    """Point clouds of synthetic subjects, one per (subject, expression).

    Attributes:
        points: ``float32 (N, P, 3)`` metres (ARKit-like frame: +y up, +z towards the camera).
        labels: ``int64 (N,)`` FER2013 emotion codes. subjects: ``int64 (N,)`` subject index.
        sample_ids: ``str (n_subjects,)`` ARKit-style timestamps, one per subject (the ``faces.py`` keys).
        aus: ``float32 (N, len(AUS))`` the Action Unit intensities used. identity: ``float32 (n_subjects, 10)``.
    """

    points: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    sample_ids: np.ndarray
    aus: np.ndarray
    identity: np.ndarray


def make_face(
    identity: np.ndarray | None = None,
    aus: dict[str, float | str] | np.ndarray | None = None,
    model: FaceModel | None = None,
) -> np.ndarray:
    """One face, without pose, scale or noise: ``float32 (n_points, 3)`` metres.

    Args:
        identity: ``(len(IDENTITY_NAMES),)`` standard-normal identity coefficients (default: the average face).
        aus: ``{"AU12": 0.8, "AU6": "C"}`` (0-1 or FACS letters A-E) or a ``(len(AUS),)`` vector; default none.
        model: the face model (default: 1,220 ARKit-like vertices).

    Raises:
        KeyError / ValueError: an unknown Action Unit or an intensity outside [0, 1] (see ``au_vector``).
    """
    model = model or _default_model()
    identity = np.zeros(len(IDENTITY_NAMES), np.float32) if identity is None else np.asarray(identity, np.float32)
    vector = aus if isinstance(aus, np.ndarray) else au_vector(aus)
    return model.shapes(identity[None], vector[None])[0]


_MODEL: FaceModel | None = None


def _default_model() -> FaceModel:
    global _MODEL
    if _MODEL is None:
        _MODEL = FaceModel()
    return _MODEL


def sample_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """ARKit-style recording timestamps (``"2018-03-11 18:48:11 +0000"``), increasing, one per subject."""
    start = dt.datetime(2018, 3, 5, 9, 0, 0)
    seconds = np.cumsum(rng.integers(60, 3 * 3600, n))
    return np.array([(start + dt.timedelta(seconds=int(s))).strftime("%Y-%m-%d %H:%M:%S +0000") for s in seconds])


def sample_faces(n_subjects: int = 50, emotions: tuple[str, ...] = EMOTIONS, seed: int = 0) -> SyntheticFaces:
    """``n_subjects`` subjects, each showing every emotion once, as point clouds with pose, scale and noise.

    Each expression is the emotion's prototype AUs with jittered intensities (see
    :func:`~data_loaders.synthetic.sampling.draw_expressions`); each cloud gets a small head rotation, a
    per-sample scale, a millimetre shift and sensor noise (σ 0.7 mm). Deterministic for a seed.

    Returns:
        :class:`SyntheticFaces` with ``N = n_subjects × len(emotions)`` clouds, subject-major order.

    Raises:
        ValueError: ``n_subjects`` < 1, or an emotion that is not a FER2013 class.
    """
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be at least 1, got {n_subjects}")
    unknown = [e for e in emotions if e not in EMOTIONS]
    if unknown:
        raise ValueError(f"unknown emotions {unknown}: expected names from {', '.join(EMOTIONS)}")
    rng = np.random.default_rng([seed, 3])
    ids = sample_ids(n_subjects, rng)
    identity = draw_identities(n_subjects, rng)
    labels = np.tile([EMOTIONS.index(e) for e in emotions], n_subjects).astype(np.int64)
    subjects = np.repeat(np.arange(n_subjects), len(emotions)).astype(np.int64)
    aus = draw_expressions(labels, rng)
    poses = draw_poses(len(labels), rng)
    model = _default_model()
    points = model.shapes(identity[subjects], aus) * poses["scale"][:, None, None]
    points = points @ rotation_matrices(poses["yaw"], poses["pitch"], poses["roll"]).transpose(0, 2, 1)
    points += poses["shift"][:, None, :]
    points += (rng.standard_normal(points.shape) * SENSOR_NOISE_M).astype(np.float32)
    return SyntheticFaces(points.astype(np.float32), labels, subjects, ids, aus, identity)


def sample_images(n_images: int = 10_000, seed: int = 0, size: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rendered synthetic faces with FER2013's class shares and ``Usage`` split (80/10/10 %).

    Every image is a new identity, so no person appears in two splits.

    Returns:
        ``images uint8 (n, size, size)`` grey levels 0-255, ``labels int64 (n,)`` FER2013 codes, ``usage str (n,)``
        (``Training`` rows first, then ``PublicTest``, then ``PrivateTest``, as in ``fer2013.csv``).

    Raises:
        ValueError: ``n_images`` < 3 (one row per ``Usage`` is the least that makes a split).
    """
    labels, usage, identity, aus, poses = _image_draws(n_images, seed)
    images = np.empty((n_images, size, size), np.uint8)
    for chunk, start in enumerate(range(0, n_images, _RENDER_CHUNK)):
        part = slice(start, start + _RENDER_CHUNK)
        images[part] = render_faces(
            identity[part],
            aus[part],
            np.random.default_rng([seed, 1, chunk]),
            size,
            {k: v[part] for k, v in poses.items()},
        )
    return images, labels, usage


def _image_draws(n_images: int, seed: int) -> tuple[np.ndarray, ...]:
    """Everything :func:`sample_images` draws before rendering: labels, usage, identities, AUs, poses."""
    if n_images < 3:
        raise ValueError(f"n_images must be at least 3, got {n_images}")
    rng = np.random.default_rng([seed, 2])
    counts = usage_counts(n_images)
    usage = np.repeat(list(counts), list(counts.values()))
    labels = draw_labels(n_images, rng)
    identity = draw_identities(n_images, rng)
    aus = draw_expressions(labels, rng)
    poses = draw_poses(n_images, rng)
    return labels, usage, identity, aus, poses


def sample_image_aus(n_images: int = 10_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ground truth behind :func:`sample_images` with the same arguments, without rendering (fast).

    Row i describes image i of ``sample_images(n_images, seed)``: the random draws are the same, only the
    rendering is skipped.

    Returns:
        ``labels int64 (n,)`` FER2013 codes, ``usage str (n,)``, ``aus float32 (n, len(AUS))`` the Action Unit
        intensities in [0, 1] (the kit's scale: FACS A-E = 0.2-1.0, see :mod:`.facs`) the face was rendered with.

    Raises:
        ValueError: ``n_images`` < 3.
    """
    labels, usage, _, aus, _ = _image_draws(n_images, seed)
    return labels, usage, aus


__all__ = [
    "AUS",
    "IPHONEX_EMOTIONS",
    "SyntheticFaces",
    "make_face",
    "render_face",
    "sample_faces",
    "sample_image_aus",
    "sample_images",
]


def render_face(
    aus: np.ndarray | dict[str, float | str] | None = None,
    identity: np.ndarray | None = None,
    size: int = 48,
    seed: int = 0,
) -> np.ndarray:
    """One face rendered frontally with a fixed light (the same for a seed): ``uint8 (size, size)``.

    For showing how Action Units change the 48×48 image (the AU explorer): no head rotation, scale 1, and
    the light, framing, background and noise drawn from ``seed``, so only the AUs change between calls.

    Args:
        aus: ``(len(AUS),)`` intensities 0-1 or ``{"AU12": "C", …}`` (default: none). identity: as in
            :func:`make_face` (default: the average face).

    Raises:
        KeyError / ValueError: an unknown Action Unit or an intensity outside [0, 1].
    """
    vector = np.asarray(aus, np.float32) if isinstance(aus, np.ndarray) else au_vector(aus)
    if vector.shape != (len(AUS),) or np.any(vector < 0) or np.any(vector > 1):
        raise ValueError(f"aus must be {len(AUS)} intensities in [0, 1], got shape {vector.shape}")
    identity = np.zeros(len(IDENTITY_NAMES), np.float32) if identity is None else np.asarray(identity, np.float32)
    poses = {
        "yaw": np.zeros(1, np.float32),
        "pitch": np.zeros(1, np.float32),
        "roll": np.zeros(1, np.float32),
        "scale": np.ones(1, np.float32),
        "shift": np.zeros((1, 3), np.float32),
    }
    return render_faces(identity[None], vector[None], np.random.default_rng([seed, 7]), size, poses)[0]
