"""Shared fixtures: tiny FER2013 files written on the fly, an isolated cache, the real-data switch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets an empty parsed-data cache, so no test sees another's cached arrays."""
    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def tiny_faces():
    """14 deterministic faces (2 per class), uint8 (14, 48, 48), labels 0-6 twice."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(14, 48, 48), dtype=np.uint8)
    labels = np.tile(np.arange(7), 2)
    return images, labels


def pixels_string(image: np.ndarray) -> str:
    return " ".join(map(str, image.ravel()))


def write_fer_csv(path: Path, images, labels, usages, header="emotion,pixels,Usage", columns=("e", "p", "u")):
    """Write a FER2013-style csv; ``columns`` orders emotion (e), pixels (p), Usage (u)."""
    lines = [header]
    for img, lab, use in zip(images, labels, usages):
        fields = {"e": str(lab), "p": pixels_string(img), "u": use}
        lines.append(",".join(fields[c] for c in columns))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fer_csv(tmp_path, tiny_faces):
    images, labels = tiny_faces
    usages = ["Training"] * 7 + ["PublicTest"] * 4 + ["PrivateTest"] * 3
    return write_fer_csv(tmp_path / "fer2013.csv", images, labels, usages)


def real_fer2013() -> Path | None:
    value = os.environ.get("FER2013_PATH")
    return Path(value) if value and Path(value).exists() else None


requires_real_data = pytest.mark.skipif(real_fer2013() is None,
                                        reason="FER2013_PATH is not set (real FER2013 not available here)")


@pytest.fixture(scope="module")
def playwright():
    """playwright's sync API for the browser tests of one module (they launch Debian's Chromium with it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where browser tests write screenshots: ``$EXPRESSION_LAB_SCREENSHOTS`` (``docs/screenshots`` for the
    README), else a temporary folder."""
    folder = Path(os.environ.get("EXPRESSION_LAB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
