"""Stand-in "personal" photos: synthetic faces in the layout of a student's photo folder (assignment 2)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import cache
from ..emotions import EMOTIONS
from ..files import PHOTO_SPLITS, atomic_write
from .render import render_faces
from .sampling import draw_expressions, draw_identities, draw_poses


def standin_photos(folder: str | os.PathLike | None = None, size: int = 48, seed: int = 2) -> Path:
    """Write 14 stand-in "personal" photos: one synthetic face of a held-out identity (not in the default data)
    showing each emotion once for ``train`` and once for ``test``, as ``<folder>/<split>/<emotion>/1.png``.

    They are already face crops, rendered like the synthetic FER2013-format images (read them with
    ``detect=False``): tests, the demo and autograding have no person in front of a camera. Default folder:
    ``<cache>/standin-photos-seed<seed>-<size>px``. Deterministic.

    Returns:
        The folder.
    """
    from PIL import Image

    root = Path(folder) if folder is not None else cache.cache_dir() / f"standin-photos-seed{seed}-{size}px"
    if all((root / s / e.lower() / "1.png").is_file() for s in PHOTO_SPLITS for e in EMOTIONS):
        return root
    rng = np.random.default_rng([seed, 77])
    labels = np.tile(np.arange(7), 2)
    identity = np.repeat(draw_identities(1, rng), 14, axis=0)
    images = render_faces(identity, draw_expressions(labels, rng), rng, size, draw_poses(14, rng))
    for i, (code, image) in enumerate(zip(labels, images)):
        target = root / PHOTO_SPLITS[i // 7] / EMOTIONS[code].lower() / "1.png"
        with atomic_write(target) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
    return root
