"""Synthetic video clips with per-frame ground truth: one synthetic face moving through expressions.

AM-FED-style data (McDuff et al. 2013: webcam videos labelled frame by frame for smiles and AU12) cannot be
shipped, so the kit renders its own. A clip shows one synthetic identity (:mod:`.face_model`) in front of a
plain room; each expression is an episode with an onset → apex → offset envelope (smoothstep ramps), so Action
Unit 12 (lip corner puller, with AU6 cheek raiser in smiles) rises and falls as in real smiles. The head moves
(slow yaw, pitch, roll, drift and scale), the light changes direction and brightness (one stretch is dim), and
there are stretches with no face (the person left the frame).

Ground truth, one row per frame (:func:`render_clip`): ``frame, time_s, emotion`` (the episode's FER2013 name
while its envelope is at least half way up, else ``Neutral``; empty with no face), ``AU12, AU6`` (intensity
0-1), ``smile`` (1 when AU12 ≥ :data:`SMILE_AU12`, FACS intensity B "slight" and up on the kit's 0.2-1.0 scale),
``face_present`` (0/1) and the true face box ``face_x, face_y, face_w, face_h`` (pixels; -1 with no face).

:func:`write_clip` writes ``<name>.mp4`` (MPEG-4 Part 2, OpenCV's ``mp4v``, which every OpenCV wheel can write
and read) and ``<name>.csv`` beside it. The ground truth CSV is byte-identical for the same arguments; the MP4
is what OpenCV's encoder makes of the same frames. Rendering is vectorised: a 16 s clip at 15 fps takes a few
seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ..emotions import EMOTIONS
from ..files import atomic_write
from .face_model import rotation_matrices
from .facs import AUS, emotion_au_table
from .render import FACE_SPAN_M, face_albedo, face_grid, splat
from .sampling import draw_identities

#: AU12 intensity from which a frame counts as a smile (FACS "B", slight evidence, on the kit's 0.2-1 scale).
SMILE_AU12 = 0.4
DEFAULT_SECONDS = 16.0
DEFAULT_FPS = 15
DEFAULT_SIZE = (320, 240)  # width, height: a small webcam frame
CLIP_VERSION = 1  #: bump when clips change, so a cached default clip is rendered again
_PATCH = 128  # face patch side in pixels (the face spans about 0.85-1.0 of it)
GROUND_TRUTH_COLUMNS = (
    "frame",
    "time_s",
    "emotion",
    "AU12",
    "AU6",
    "smile",
    "face_present",
    "face_x",
    "face_y",
    "face_w",
    "face_h",
)


def _episodes(seconds: float, rng: np.random.Generator) -> list[tuple[str | None, float, float]]:
    """``[(emotion or None for "no face", duration s, strength 0-1)]`` covering ``seconds``: smiles of mixed
    strength alternate with other expressions and neutral pauses, with two stretches without a face."""
    others = [e for e in EMOTIONS if e not in ("Happy", "Neutral")]
    rng.shuffle(others)
    plan: list[tuple[str | None, float, float]] = [("Neutral", rng.uniform(0.8, 1.2), 0.0)]
    k = 0
    while sum(d for _, d, _ in plan) < seconds:
        k += 1
        plan.append(("Happy", rng.uniform(1.6, 2.8), rng.choice([rng.uniform(0.35, 0.55), rng.uniform(0.7, 1.0)])))
        if k % 3 == 2:
            plan.append((None, rng.uniform(0.8, 1.4), 0.0))
        plan.append((others[k % len(others)], rng.uniform(1.4, 2.2), rng.uniform(0.6, 1.0)))
        if k % 2:
            plan.append(("Neutral", rng.uniform(0.5, 1.0), 0.0))
    return plan


def _envelope(phase: np.ndarray) -> np.ndarray:
    """Onset (first 30 %), apex, offset (last 30 %) of an episode; ``phase`` in [0, 1] → intensity 0-1."""
    up = np.clip(phase / 0.3, 0, 1)
    down = np.clip((1 - phase) / 0.3, 0, 1)
    ramp = np.minimum(up, down)
    return ramp * ramp * (3 - 2 * ramp)  # smoothstep


def _timeline(n_frames: int, fps: float, rng: np.random.Generator):
    """Per frame: AU intensities ``(T, len(AUS))``, emotion names, face present."""
    table = emotion_au_table()
    plan = _episodes(n_frames / fps, rng)
    t = np.arange(n_frames) / fps
    aus = np.zeros((n_frames, len(AUS)), np.float32)
    emotion = np.full(n_frames, "Neutral", dtype=object)
    present = np.ones(n_frames, bool)
    start = 0.0
    for name, duration, strength in plan:
        inside = (t >= start) & (t < start + duration)
        if name is None:
            present[inside] = False
            emotion[inside] = ""
        elif name != "Neutral":
            level = _envelope((t[inside] - start) / duration)
            aus[inside] = table[EMOTIONS.index(name)] * strength * level[:, None]
            emotion[inside] = np.where(level >= 0.5, name, "Neutral")
        start += duration
    return np.clip(aus, 0, 1), emotion, present


def _render_patches(
    identity: np.ndarray, aus: np.ndarray, yaw, pitch, roll, scale, light, ambient, tone: float
) -> tuple[np.ndarray, np.ndarray]:
    """Face shading and coverage for each frame: ``(value, alpha)``, both ``float64 (T, _PATCH, _PATCH)``.

    The shading of :func:`~data_loaders.synthetic.render.render_faces` (same face grid, albedo, Lambertian light),
    with the light, pose and scale given per frame so that they change smoothly over a clip.
    """
    size, b = _PATCH, len(aus)
    g = face_grid(int(size * 1.25))  # ≈ 1.5 samples per pixel: enough for a 128-px face, half the work
    points = g.model.shapes(np.repeat(identity[None], b, 0), aus) * scale[:, None, None].astype(np.float32)
    points = points @ rotation_matrices(yaw, pitch, roll).transpose(0, 2, 1)
    cube = points.reshape(b, g.size, g.size, 3)
    du = np.gradient(cube, axis=2).reshape(b, -1, 3)[:, g.inside]
    dv = -np.gradient(cube, axis=1).reshape(b, -1, 3)[:, g.inside]
    points = points[:, g.inside]
    normal = np.cross(du, dv)
    normal /= np.sqrt(np.einsum("bpc,bpc->bp", normal, normal))[..., None] + np.float32(1e-12)
    shade = ambient[:, None] + (1 - ambient[:, None]) * np.maximum(np.einsum("bpc,bc->bp", normal, light), 0)
    value = face_albedo(g, aus, np.full(b, tone, np.float32)) * shade
    px = points[..., 0] * (size / FACE_SPAN_M) + size / 2
    py = size / 2 - points[..., 1] * (size / FACE_SPAN_M)
    return splat(px, py, value, normal[..., 2] > 0.05, size)


def _room(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A plain back wall with a door and a shelf, reflectance 0-1 ``(height, width)``."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    wall = 0.55 + 0.12 * (x - 0.5) - 0.08 * (y - 0.3) + rng.uniform(-0.05, 0.05)
    door_x = int(rng.uniform(0.02, 0.12) * width)
    wall[int(0.15 * height) :, door_x : door_x + int(0.16 * width)] -= 0.18
    shelf_y = int(rng.uniform(0.2, 0.3) * height)
    wall[shelf_y : shelf_y + max(2, height // 60), int(0.7 * width) :] += 0.2
    return np.clip(wall, 0, 1)


def render_clip(
    seconds: float = DEFAULT_SECONDS, fps: float = DEFAULT_FPS, size: tuple[int, int] = DEFAULT_SIZE, seed: int = 0
) -> tuple[np.ndarray, pd.DataFrame]:
    """Render a clip in memory.

    Args:
        seconds: length; fps: frames per second; size: ``(width, height)`` pixels (at least 160 × 144).
        seed: the random seed (identity, episode order, durations, strengths, motion, light).

    Returns:
        ``(frames, truth)``: ``uint8 (T, height, width)`` grey frames, and the per-frame ground truth (columns
        :data:`GROUND_TRUTH_COLUMNS`, see the module docstring).

    Raises:
        ValueError: fewer than 2 frames, or a frame smaller than 160 × 144 pixels.
    """
    width, height = int(size[0]), int(size[1])
    n = int(round(seconds * fps))
    if n < 2 or width < 160 or height < 144:
        raise ValueError(
            f"a clip needs at least 2 frames of at least 160×144 pixels, got {n} frames of {width}×{height}"
        )
    rng = np.random.default_rng([seed, 1812])
    identity = draw_identities(1, rng)[0]
    aus, emotion, present = _timeline(n, fps, rng)
    t = np.arange(n) / fps
    deg = np.pi / 180

    def wave(amplitude, period):
        return amplitude * np.sin(2 * np.pi * (t / period + rng.uniform()))

    yaw = (wave(9, rng.uniform(5, 8)) * deg).astype(np.float32)
    pitch = (wave(5, rng.uniform(4, 7)) * deg).astype(np.float32)
    roll = (wave(6, rng.uniform(6, 9)) * deg).astype(np.float32)
    scale = (0.93 + wave(0.06, rng.uniform(6, 10))).astype(np.float32)
    light = np.stack([wave(0.6, rng.uniform(8, 12)), 0.3 + wave(0.2, 7.0), np.ones(n)], -1).astype(np.float32)
    light /= np.linalg.norm(light, axis=1, keepdims=True)
    ambient = np.full(n, 0.35, np.float32)
    gain = 1.0 + wave(0.12, rng.uniform(5, 9))
    dim_start = rng.uniform(0.45, 0.6) * seconds  # a dim stretch: a cloud, a lamp switched off
    gain *= 1 - 0.45 * _envelope(np.clip((t - dim_start) / 2.5, 0, 1))
    tone = float(rng.uniform(0.85, 1.1))

    value, alpha = _render_patches(identity, aus, yaw, pitch, roll, scale, light, ambient, tone)
    room = _room(width, height, rng)
    cx = width / 2 + wave(0.18 * width, rng.uniform(7, 11))
    cy = height / 2 + wave(0.05 * height, rng.uniform(5, 8))
    frames = np.empty((n, height, width), np.uint8)
    boxes = np.full((n, 4), -1, np.int64)
    noise = rng.standard_normal((n, height, width)).astype(np.float32) * 0.012
    for i in range(n):
        image = room.copy()
        if present[i]:
            x0, y0 = int(round(cx[i] - _PATCH / 2)), int(round(cy[i] - _PATCH / 2))
            xs, ys = slice(max(x0, 0), min(x0 + _PATCH, width)), slice(max(y0, 0), min(y0 + _PATCH, height))
            a = alpha[i, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
            f = value[i, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
            image[ys, xs] = a * f + (1 - a) * image[ys, xs]
            rows, cols = np.nonzero(a > 0.5)
            boxes[i] = (
                xs.start + cols.min(),
                ys.start + rows.min(),
                cols.max() - cols.min() + 1,
                rows.max() - rows.min() + 1,
            )
        image = ndimage.gaussian_filter(image, 0.6) * gain[i] + noise[i]
        frames[i] = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)

    au12, au6 = aus[:, AUS.index("AU12")], aus[:, AUS.index("AU6")]
    truth = pd.DataFrame(
        {
            "frame": np.arange(n),
            "time_s": np.round(t, 4),
            "emotion": emotion.astype(str),
            "AU12": np.round(np.where(present, au12, 0.0), 3),
            "AU6": np.round(np.where(present, au6, 0.0), 3),
            "smile": (present & (au12 >= SMILE_AU12)).astype(np.int64),
            "face_present": present.astype(np.int64),
            "face_x": boxes[:, 0],
            "face_y": boxes[:, 1],
            "face_w": boxes[:, 2],
            "face_h": boxes[:, 3],
        }
    )
    return frames, truth


def write_clip(
    out: str | os.PathLike,
    seconds: float = DEFAULT_SECONDS,
    fps: float = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Render a clip and write ``out`` (an ``.mp4``, OpenCV's ``mp4v`` codec) and its ground truth beside it
    (the same name with ``.csv``). Both are written through temporary files, then renamed.

    Returns:
        ``(video path, ground truth csv path)``.

    Raises:
        ValueError: ``out`` does not end in ``.mp4``, or bad clip arguments (see :func:`render_clip`).
        OSError: OpenCV cannot write an MP4 here (its message names the file).
    """
    import cv2

    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"{out}: a synthetic clip is written as .mp4")
    frames, truth = render_clip(seconds, fps, size, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv = out.with_suffix(".csv")
    with atomic_write(csv) as tmp_csv, atomic_write(out, suffix=".mp4") as tmp_video:  # the video lands first
        writer = cv2.VideoWriter(
            str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (frames.shape[2], frames.shape[1]), True
        )
        if not writer.isOpened():
            raise OSError(f"{out}: OpenCV cannot write MPEG-4 (mp4v) video on this machine")
        try:
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        finally:
            writer.release()
        truth.to_csv(tmp_csv, index=False)
    return out, csv


def default_clip() -> Path:
    """The cached default synthetic clip (16 s, 15 fps, 320×240, seed 0), rendered once into the cache folder
    (a few seconds), with its ground truth ``clip.csv`` beside it."""
    from .. import cache

    folder = cache.cache_dir() / f"synthetic-clip-v{CLIP_VERSION}-seed0"
    video = folder / "clip.mp4"
    if not (video.is_file() and video.with_suffix(".csv").is_file()):
        write_clip(video)
    return video


__all__ = [
    "CLIP_VERSION",
    "DEFAULT_FPS",
    "DEFAULT_SECONDS",
    "DEFAULT_SIZE",
    "GROUND_TRUTH_COLUMNS",
    "SMILE_AU12",
    "default_clip",
    "render_clip",
    "write_clip",
]
