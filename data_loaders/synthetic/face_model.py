"""A small parametric 3D face written for this kit: a mean surface, identity shapes and Action Unit shapes.

It is a linear blend-shape model, the same idea as ARKit's blend shapes and 3D morphable models (Blanz &
Vetter 1999), but drawn by hand from smooth bumps rather than fitted to scans, so it is a teaching toy and not a
statistical model of real faces. Every point is a fixed location ``(u, v)`` on a canonical face disc
(``u`` left → right, ``v`` chin → forehead, both in [-1, 1]); the same ``(u, v)`` gives the same facial
location in every face, which is the vertex correspondence of ARKit's face mesh.

Geometry follows ARKit face meshes (see ``shared/HANDOUT.md``): metres, origin near the centre of the head,
+x to the subject's left as seen by the camera (image right), +y up, +z towards the camera; a face spans about
0.15 m (x) × 0.19 m (y) × 0.10 m (z).

    points = mean(u, v) + Σ_j identity_j · I_j(u, v) + Σ_k intensity_k · AU_k(u, v)

Action Unit shapes are displacements (metres at intensity 1) placed where FACS describes the movement: e.g.
AU12 pulls the lip corners up and out, AU26 lowers everything below the lips.
"""

from __future__ import annotations

import numpy as np

from ..dataset import ARKIT_VERTICES
from .facs import AUS

#: Number of vertices of ARKit's face mesh (ARFaceGeometry), the default point count.
ARKIT_POINTS = ARKIT_VERTICES

#: Identity parameters; each is a standard-normal coefficient of one identity shape.
IDENTITY_NAMES: tuple[str, ...] = (
    "face_width",
    "face_height",
    "face_depth",
    "nose_size",
    "eye_spacing",
    "mouth_width",
    "brow_height",
    "jaw_width",
    "chin_length",
    "lip_fullness",
)

_HALF_WIDTH, _HALF_HEIGHT = 0.075, 0.095  # metres: the face spans ~0.15 m × 0.19 m
MOUTH_V = -0.45  # canonical height of the line between the lips


def sunflower_disc(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` evenly spread canonical points ``(u, v)`` on the unit disc (Vogel's sunflower spiral).

    Deterministic: point i is always at the same place, which gives vertex correspondence.
    """
    i = np.arange(n, dtype=np.float64)
    r = np.sqrt((i + 0.5) / n)
    theta = i * np.pi * (3.0 - np.sqrt(5.0))
    return r * np.cos(theta), r * np.sin(theta)


def gaussian_bump(u, v, cu, cv, su, sv):
    """An axis-aligned Gaussian bump (peak 1) centred at ``(cu, cv)`` with widths ``(su, sv)``, on canonical
    face coordinates ``u, v`` (arrays of one shape, the result has it too)."""
    return np.exp(-0.5 * (((u - cu) / su) ** 2 + ((v - cv) / sv) ** 2))


def bump_pair(u, v, cu, cv, su, sv):
    """A bump on both sides of the face (at ±cu)."""
    return gaussian_bump(np.abs(u), v, cu, cv, su, sv)


def _nose(u, v):
    """Height (m) of the nose above the base surface."""
    ridge = (
        0.022
        * np.exp(-0.5 * (u / 0.075) ** 2)
        * np.clip((0.28 - v) / 0.4, 0, 1) ** 1.3
        * (1 / (1 + np.exp((-0.16 - v) / 0.025)))
    )
    tip = 0.008 * gaussian_bump(u, v, 0, -0.13, 0.09, 0.07)
    wings = 0.006 * bump_pair(u, v, 0.12, -0.17, 0.06, 0.05)
    return ridge + tip + wings


def mean_shape(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The average face at canonical points ``(u, v)``: ``float64 (P, 3)`` in metres."""
    jaw = np.maximum(0.0, -v) ** 1.6
    x = u * _HALF_WIDTH * (1 - 0.28 * jaw)
    y = v * _HALF_HEIGHT
    z = 0.05 - 0.052 * u**2 - 0.014 * v**2 - 0.018 * u**4 - 0.01 * np.maximum(0, -v - 0.55)
    z = z - 0.010 * np.maximum(0, v - 0.55) ** 2  # forehead slopes back
    z = z - 0.011 * bump_pair(u, v, 0.36, 0.23, 0.15, 0.09)  # eye sockets
    z = z + 0.0055 * bump_pair(u, v, 0.36, 0.23, 0.08, 0.05)  # eyeballs
    z = z + 0.005 * np.exp(-0.5 * ((v - 0.37) / 0.06) ** 2) * np.exp(-((u / 0.62) ** 4))  # brow ridge
    z = z + _nose(u, v)
    z = z - 0.002 * gaussian_bump(u, v, 0, -0.30, 0.05, 0.05)  # philtrum
    z = z + 0.006 * gaussian_bump(u, v, 0, -0.40, 0.24, 0.045)  # upper lip
    z = z + 0.0065 * gaussian_bump(u, v, 0, -0.51, 0.21, 0.05)  # lower lip
    z = z - 0.003 * gaussian_bump(u, v, 0, MOUTH_V, 0.27, 0.013)  # line between the lips
    z = z - 0.003 * gaussian_bump(u, v, 0, -0.64, 0.18, 0.05)  # hollow under the lower lip
    z = z + 0.007 * gaussian_bump(u, v, 0, -0.80, 0.22, 0.10)  # chin
    z = z + 0.005 * bump_pair(u, v, 0.46, -0.08, 0.17, 0.15)  # cheeks
    return np.stack([x, y, z], axis=-1)


def identity_shapes(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Identity displacements per unit coefficient: ``float64 (len(IDENTITY_NAMES), P, 3)`` in metres."""
    mean = mean_shape(u, v)
    zero = np.zeros_like(u)
    side = np.sign(u)
    mouth = gaussian_bump(u, v, 0, MOUTH_V, 0.3, 0.11)
    shapes = {
        "face_width": (0.06 * mean[:, 0], zero, zero),
        "face_height": (zero, 0.05 * mean[:, 1], zero),
        "face_depth": (zero, zero, 0.08 * mean[:, 2]),
        "nose_size": (zero, zero, 0.22 * _nose(u, v)),
        "eye_spacing": (0.0025 * side * bump_pair(u, v, 0.36, 0.24, 0.2, 0.14), zero, zero),
        "mouth_width": (0.012 * u * mouth, zero, zero),
        "brow_height": (zero, 0.003 * bump_pair(u, v, 0.3, 0.40, 0.3, 0.08), zero),
        "jaw_width": (0.1 * _HALF_WIDTH * u * np.maximum(0.0, -v) ** 1.6, zero, zero),
        "chin_length": (zero, -0.005 * np.clip((-v - 0.55) / 0.45, 0, 1), zero),
        "lip_fullness": (
            zero,
            zero,
            0.0018 * (gaussian_bump(u, v, 0, -0.40, 0.24, 0.045) + gaussian_bump(u, v, 0, -0.51, 0.21, 0.05)),
        ),
    }
    return np.stack([np.stack(shapes[name], axis=-1) for name in IDENTITY_NAMES])


def au_shapes(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Action Unit displacements at intensity 1: ``float64 (len(AUS), P, 3)`` in metres, :data:`AUS` order.

    Each follows the appearance changes in the FACS manual (Ekman, Friesen & Hager 2002): AU1 raises the inner
    brows, AU2 the outer brows, AU4 lowers and draws the brows together, AU5 raises the upper lids, AU6 lifts the
    cheeks, AU7 tightens the lower lids, AU9 wrinkles the nose and lifts the upper lip, AU12 pulls the lip
    corners up and out, AU15 pulls them down, AU16 lowers the lower lip, AU20 stretches the lips sideways,
    AU23 tightens and narrows the lips, AU26 drops the jaw.
    """
    side = np.sign(u)
    below_mouth = 1 / (1 + np.exp((v - MOUTH_V) / 0.02))
    corners = bump_pair(u, v, 0.27, MOUTH_V, 0.10, 0.07)
    lips = gaussian_bump(u, v, 0, MOUTH_V, 0.25, 0.07)
    upper_lid = bump_pair(u, v, 0.36, 0.27, 0.13, 0.035)
    lower_lid = bump_pair(u, v, 0.36, 0.16, 0.13, 0.035)

    def d(dx=0.0, dy=0.0, dz=0.0):
        return np.stack(np.broadcast_arrays(dx, dy, dz), axis=-1).astype(np.float64)

    shapes = {
        "AU1": d(
            dy=0.008 * bump_pair(u, v, 0.13, 0.42, 0.14, 0.11), dz=0.001 * bump_pair(u, v, 0.13, 0.42, 0.14, 0.11)
        ),
        "AU2": d(dy=0.008 * bump_pair(u, v, 0.50, 0.40, 0.15, 0.10)),
        "AU4": d(
            dx=-0.004 * side * bump_pair(u, v, 0.2, 0.37, 0.18, 0.09),
            dy=-0.006 * bump_pair(u, v, 0.22, 0.37, 0.2, 0.09),
            dz=0.002 * bump_pair(u, v, 0.22, 0.37, 0.2, 0.09) - 0.0015 * gaussian_bump(u, v, 0, 0.36, 0.06, 0.06),
        ),
        "AU5": d(dy=0.0035 * upper_lid, dz=0.001 * upper_lid),
        "AU6": d(
            dy=0.005 * bump_pair(u, v, 0.40, 0.02, 0.17, 0.12) + 0.0025 * lower_lid,
            dz=0.004 * bump_pair(u, v, 0.40, 0.02, 0.17, 0.12),
        ),
        "AU7": d(dy=0.003 * lower_lid - 0.0015 * upper_lid, dz=0.001 * lower_lid),
        "AU9": d(
            dy=0.004 * bump_pair(u, v, 0.10, 0.0, 0.08, 0.10)
            + 0.003 * gaussian_bump(u, v, 0, -0.37, 0.2, 0.06)
            - 0.003 * bump_pair(u, v, 0.15, 0.38, 0.1, 0.08),
            dz=0.002 * bump_pair(u, v, 0.10, 0.0, 0.08, 0.10),
        ),
        "AU12": d(dx=0.007 * side * corners, dy=0.008 * corners, dz=-0.003 * corners),
        "AU15": d(dx=0.001 * side * corners, dy=-0.007 * corners, dz=-0.001 * corners),
        "AU16": d(
            dy=-0.005 * gaussian_bump(u, v, 0, -0.52, 0.18, 0.06), dz=0.002 * gaussian_bump(u, v, 0, -0.52, 0.18, 0.06)
        ),
        "AU20": d(
            dx=0.009 * side * bump_pair(u, v, 0.27, -0.47, 0.12, 0.08),
            dy=-0.002 * bump_pair(u, v, 0.27, -0.47, 0.12, 0.08),
            dz=-0.002 * bump_pair(u, v, 0.27, -0.47, 0.12, 0.08),
        ),
        "AU23": d(dx=-0.012 * u * lips, dz=0.002 * lips),
        "AU26": d(dy=-0.014 * below_mouth * (1 - 0.3 * u**2), dz=-0.005 * below_mouth),
    }
    return np.stack([shapes[name] for name in AUS])


class FaceModel:
    """The face model evaluated at a fixed set of canonical points (vertex i ↔ ``(u[i], v[i])``).

    Args:
        u, v: canonical coordinates, ``float (P,)``; default: :data:`ARKIT_POINTS` sunflower points.

    Attributes:
        mean: ``float32 (P, 3)`` metres. identity: ``float32 (len(IDENTITY_NAMES), P, 3)``.
        aus: ``float32 (len(AUS), P, 3)``.
    """

    def __init__(self, u: np.ndarray | None = None, v: np.ndarray | None = None) -> None:
        if u is None or v is None:
            u, v = sunflower_disc(ARKIT_POINTS)
        self.u, self.v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        self.mean = mean_shape(self.u, self.v).astype(np.float32)
        self.identity = identity_shapes(self.u, self.v).astype(np.float32)
        self.aus = au_shapes(self.u, self.v).astype(np.float32)
        self._basis = np.concatenate([self.identity, self.aus]).reshape(len(IDENTITY_NAMES) + len(AUS), -1)

    @property
    def n_points(self) -> int:
        return len(self.u)

    def shapes(self, identity: np.ndarray, aus: np.ndarray) -> np.ndarray:
        """Faces for a batch: ``identity (B, n_id)`` and ``aus (B, n_aus)`` → ``float32 (B, P, 3)`` metres."""
        coeffs = np.concatenate([np.atleast_2d(identity), np.atleast_2d(aus)], axis=1).astype(np.float32)
        return (self.mean.reshape(1, -1) + coeffs @ self._basis).reshape(len(coeffs), -1, 3)


def rotation_matrices(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Rotations about y (yaw), x (pitch) and z (roll), angles in radians: ``float32 (B, 3, 3)``."""
    cy, sy, cp, sp, cr, sr = (f(a) for a in (yaw, pitch, roll) for f in (np.cos, np.sin))
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(-1, 3, 3)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return (rz @ rx @ ry).astype(np.float32)
