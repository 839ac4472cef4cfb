"""Regenerate the README's pictures of the synthetic faces: ``docs/synthetic_faces.png`` (48×48 images, one row
per emotion) and ``docs/synthetic_3d.png`` (one subject's point clouds, each expression beside neutral, coloured
by displacement in millimetres).

Usage: ``.venv/bin/python scripts/docs_figures.py``. Deterministic (seed 0); uses Pillow only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from data_loaders import EMOTIONS
from data_loaders.synthetic import make_face, sample_images
from data_loaders.synthetic.facs import EMOTION_AUS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def image_grid(per_class: int = 8, zoom: int = 2) -> Image.Image:
    images, labels, _ = sample_images(1500, seed=0)
    label_w = 70
    sheet = Image.new("L", (label_w + per_class * 48 * zoom, 7 * 48 * zoom), 255)
    draw = ImageDraw.Draw(sheet)
    for code, name in enumerate(EMOTIONS):
        draw.text((4, code * 48 * zoom + 40), name, fill=0)
        for k, i in enumerate(np.flatnonzero(labels == code)[:per_class]):
            tile = Image.fromarray(images[i]).resize((48 * zoom, 48 * zoom), Image.NEAREST)
            sheet.paste(tile, (label_w + k * 48 * zoom, code * 48 * zoom))
    return sheet


def displacement_views(size: int = 220) -> Image.Image:
    """Front views of the average face showing each emotion's prototype AUs, points coloured by mm moved."""
    neutral = make_face()
    sheet = Image.new("RGB", (7 * size, size + 24), "white")
    draw = ImageDraw.Draw(sheet)
    order = np.argsort(neutral[:, 2])  # far points first, near points drawn on top
    for k, name in enumerate(EMOTIONS):
        face = make_face(aus=EMOTION_AUS[name])
        mm = np.linalg.norm(face - neutral, axis=1) * 1000
        heat = np.clip(mm / 10, 0, 1)
        for i in order:
            x = k * size + size / 2 + face[i, 0] / 0.2 * size
            y = size / 2 - face[i, 1] / 0.2 * size + 12
            colour = (int(40 + 215 * heat[i]), int(90 * (1 - heat[i]) + 40), int(200 * (1 - heat[i]) + 30))
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        aus = "+".join(a[2:] for a in EMOTION_AUS[name]) or "no AU"
        draw.text((k * size + 6, 2), f"{name}: {aus}", fill="black")
    draw.text((6, size + 8), "colour: displacement from neutral, blue 0 mm to red 10 mm or more", fill="black")
    return sheet


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    image_grid().save(DOCS / "synthetic_faces.png", optimize=True)
    displacement_views().save(DOCS / "synthetic_3d.png", optimize=True)
    print(f"wrote {DOCS / 'synthetic_faces.png'} and {DOCS / 'synthetic_3d.png'}")


if __name__ == "__main__":
    main()
