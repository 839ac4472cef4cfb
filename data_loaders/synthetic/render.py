"""Render synthetic faces to small grayscale images like FER2013's 48×48 crops.

A shaded-surface renderer in numpy: the face model is evaluated on a dense canonical grid, posed, lit with a
Lambertian light from a random direction (ambient 25-45 %), coloured by a simple albedo (brows, eyes, lips, an
open mouth, the wrinkles some AUs make), splatted into pixels, then composited over a random background with
blur and noise. No z-buffer: head rotations are a few degrees, so self-occlusion is negligible.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from .face_model import MOUTH_V, FaceModel, bump_pair, gaussian_bump, rotation_matrices
from .facs import AUS

_GRID = 80  # canonical grid points per side (≈ 4 samples per face pixel at 48×48)
FACE_SPAN_M = 0.19  # metres of face shown across a 48-pixel crop at zoom 1


#: Darkening of the albedo by each Action Unit (wrinkles, an open mouth), as canonical maps.
_AU_DARKEN = {
    "AU26": lambda u, v: 0.8 * gaussian_bump(u, v, 0, MOUTH_V, 0.2, 0.03),  # the open mouth (×1.6, capped)
    "AU4": lambda u, v: 0.35 * bump_pair(u, v, 0.05, 0.35, 0.02, 0.06),  # frown lines
    "AU9": lambda u, v: 0.35 * bump_pair(u, v, 0.10, 0.05, 0.03, 0.05),  # nose wrinkles
    "AU12": lambda u, v: 0.30 * bump_pair(u, v, 0.25, -0.30, 0.035, 0.09),  # nasolabial folds
    "AU6": lambda u, v: 0.25 * bump_pair(u, v, 0.56, 0.22, 0.03, 0.05),  # crow's feet
    "AU1": lambda u, v: 0.20 * gaussian_bump(u, v, 0, 0.62, 0.3, 0.03),  # forehead wrinkle
}


class _Grid:
    """The face model on a dense canonical grid, with the albedo maps that do not change between faces."""

    def __init__(self, grid: int) -> None:
        axis = np.linspace(-1.0, 1.0, grid)
        u, v = np.meshgrid(axis, axis[::-1])  # row 0 is the top of the face
        self.size = grid
        self.model = FaceModel(u.ravel(), v.ravel())
        self.inside = np.flatnonzero((u**2 + v**2 <= 1.0).ravel())
        u, v = u.ravel()[self.inside], v.ravel()[self.inside]
        self.static_darken = (
            0.5 * bump_pair(u, v, 0.31, 0.41, 0.16, 0.03)  # brows
            + 0.15 * gaussian_bump(u, v, 0, -0.455, 0.22, 0.06)  # lips
            + 0.35 * gaussian_bump(u, v, 0, MOUTH_V, 0.26, 0.012)  # line between the lips
        ).astype(np.float32)
        self.au_index = [AUS.index(name) for name in _AU_DARKEN]
        self.au_darken = np.stack([f(u, v) for f in _AU_DARKEN.values()]).astype(np.float32)
        self.eye = np.flatnonzero((np.abs(np.abs(u) - 0.36) < 0.14) & (np.abs(v - 0.225) < 0.16))
        self.eye_u, self.eye_v = np.abs(u[self.eye]) - 0.36, v[self.eye] - 0.225
        self.iris = (0.9 - 0.75 * gaussian_bump(self.eye_u, self.eye_v, 0, 0, 0.045, 0.05)).astype(np.float32)


@lru_cache(maxsize=4)
def face_grid(grid: int) -> _Grid:
    """The face model sampled on a ``grid`` × ``grid`` canonical grid, with the albedo maps that do not change
    between faces (built once per size and kept)."""
    return _Grid(grid)


def splat(px: np.ndarray, py: np.ndarray, value: np.ndarray, facing: np.ndarray, size: int):
    """Average the shaded surface points of ``b`` faces into ``size``×``size`` pixels.

    Args:
        px, py: ``(b, P)`` pixel coordinates of each surface point (x right, y down).
        value: ``(b, P)`` grey value of each point.
        facing: ``(b, P)`` bool, the points that face the camera (the others are hidden).
        size: the image side in pixels.

    Returns:
        ``(face, alpha)``, each ``float64 (b, size, size)``: the mean value per pixel, and how much of the pixel
        the face covers (0 outside it), for compositing on a background.
    """
    b = len(px)
    ix, iy = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
    keep = (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size) & facing
    index = (np.arange(b)[:, None] * size * size + iy * size + ix)[keep]
    total = np.bincount(index, value[keep], minlength=b * size * size).reshape(b, size, size)
    count = np.bincount(index, minlength=b * size * size).reshape(b, size, size).astype(np.float64)
    # normalised convolution fills the odd empty pixel inside the face and softens its outline
    total3 = ndimage.uniform_filter(total, size=(1, 3, 3), mode="constant")
    count3 = ndimage.uniform_filter(count, size=(1, 3, 3), mode="constant")
    face = np.where(count > 0, total / np.maximum(count, 1e-9), total3 / np.maximum(count3, 1e-9))
    alpha = np.clip(count3 / 0.8, 0, 1) * (count3 > 0)
    return face, alpha


def face_albedo(g: _Grid, aus: np.ndarray, tone: np.ndarray) -> np.ndarray:
    """Reflectance 0-1 per face point of the grid: ``float32 (B, len(g.inside))``."""
    scaled = aus[:, g.au_index].copy()
    scaled[:, 0] = np.clip(1.6 * scaled[:, 0], 0, 1)  # the mouth shows dark well before the jaw is fully open
    darken = np.clip(g.static_darken[None, :] + scaled @ g.au_darken, 0, 0.9)
    albedo = 0.72 * tone[:, None] * (1 - darken)
    # eyes: an opening whose height follows AU5 (wider) and AU6/AU7 (narrower), with a dark iris inside
    a5, a6, a7 = (aus[:, AUS.index(n), None] for n in ("AU5", "AU6", "AU7"))
    opening = 0.045 * np.clip(1 + 0.7 * a5 - 0.55 * a7 - 0.35 * a6, 0.1, None)
    ellipse = (g.eye_u / 0.11) ** 2 + (g.eye_v / opening) ** 2
    open_eye = 1 / (1 + np.exp(np.minimum((ellipse - 1) * 6, 50)))
    albedo[:, g.eye] = albedo[:, g.eye] * (1 - open_eye) + g.iris * open_eye
    return albedo.astype(np.float32)


def render_faces(
    identity: np.ndarray,
    aus: np.ndarray,
    rng: np.random.Generator,
    size: int = 48,
    poses: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Render faces to grayscale images.

    Args:
        identity: ``(B, len(IDENTITY_NAMES))`` identity coefficients.
        aus: ``(B, len(AUS))`` Action Unit intensities 0-1.
        rng: the random generator for light, framing, background, skin tone and noise.
        size: image side in pixels (48 for FER2013-like crops).
        poses: head poses as from :func:`~data_loaders.synthetic.sampling.draw_poses` (default: drawn here).

    Returns:
        ``uint8 (B, size, size)`` grey levels 0-255.
    """
    from .sampling import draw_poses

    b = len(aus)
    g = face_grid(max(_GRID, int(size * 1.7)))
    poses = poses if poses is not None else draw_poses(b, rng)
    f32 = np.float32
    light = np.stack([rng.uniform(-0.7, 0.7, b), rng.uniform(-0.3, 0.7, b), np.ones(b)], -1).astype(f32)
    light /= np.linalg.norm(light, axis=1, keepdims=True)
    ambient = rng.uniform(0.25, 0.45, b).astype(f32)
    tone = rng.uniform(0.75, 1.15, b).astype(f32)
    zoom = rng.uniform(0.92, 1.12, b).astype(f32)
    offset = (rng.uniform(-0.04, 0.04, (b, 2)) * size).astype(f32)
    background = rng.uniform(0.05, 0.95, b)
    gradient = rng.uniform(-0.25, 0.25, (b, 2))
    noise_level = rng.uniform(0.01, 0.035, b)

    points = g.model.shapes(identity, aus) * poses["scale"][:, None, None]
    points = points @ rotation_matrices(poses["yaw"], poses["pitch"], poses["roll"]).transpose(0, 2, 1)
    cube = points.reshape(b, g.size, g.size, 3)
    du = np.gradient(cube, axis=2).reshape(b, -1, 3)[:, g.inside]
    dv = -np.gradient(cube, axis=1).reshape(b, -1, 3)[:, g.inside]  # rows run top → bottom, v bottom → top
    points = points[:, g.inside]
    normal = np.cross(du, dv)
    normal /= np.sqrt(np.einsum("bpc,bpc->bp", normal, normal))[..., None] + f32(1e-12)
    shade = ambient[:, None] + (1 - ambient[:, None]) * np.maximum(np.einsum("bpc,bc->bp", normal, light), 0)
    value = face_albedo(g, aus, tone) * shade

    scale = size * zoom / FACE_SPAN_M
    px = points[..., 0] * scale[:, None] + size / 2 + offset[:, :1]
    py = size / 2 - points[..., 1] * scale[:, None] + offset[:, 1:]
    face, alpha = splat(px, py, value, normal[..., 2] > 0.05, size)

    ramp = np.linspace(-0.5, 0.5, size)
    back = (
        background[:, None, None]
        + gradient[:, 0, None, None] * ramp[None, None, :]
        + gradient[:, 1, None, None] * ramp[None, :, None]
    )
    image = alpha * face + (1 - alpha) * back
    image = ndimage.gaussian_filter(image, sigma=(0, 0.5, 0.5))
    image += rng.standard_normal(image.shape) * noise_level[:, None, None]
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
