"""The data settings, declared once: each environment variable the loaders read, with its default and help.

A :class:`Setting` is one environment variable of the kit (in the spirit of an nbgrader configurable trait): its
name, what applies when it is unset, one sentence of help, where it is read, and whether the grading sandbox passes
it into a kernel. Readers use the declared constant (``FER2013_PATH.read()``, ``FER2013_PATH.name``), never the
name retyped. The data settings live here, at the lowest layer, because the loaders may import nothing from
``course/``; the instructor's settings and the function that collects every setting for the README's table are in
``course/settings.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

#: The value of a path argument or data variable that asks for the synthetic default data.
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class Setting:
    """One environment variable of the kit.

    ``name`` the variable; ``default`` what applies when it is unset or empty (the value the code uses, or words
    for a default the code works out); ``help`` what it does, one sentence for the README's table; ``readers``
    where it is read (repository paths, a folder or a glob, with an optional note in parentheses);
    ``passed_to_sandbox`` whether the grading sandbox passes it into a kernel unchanged; ``path`` whether its
    value names a file or folder (the sandbox binds a passed one read-only).
    """

    name: str
    default: object
    help: str
    readers: tuple[str, ...]
    passed_to_sandbox: bool = False
    path: bool = False

    def read(self, env: Mapping[str, str] | None = None) -> str | None:
        """The variable's value in ``env`` (default: ``os.environ`` as it is now), None when unset or empty."""
        env = os.environ if env is None else env
        return env.get(self.name) or None


FER2013_PATH = Setting(
    "FER2013_PATH",
    "`data/fer2013/`, else the synthetic faces",
    "FER2013 as a csv (`fer2013.csv`, `.csv.gz`, `.zip`, `fer2013.tar.gz`, Kaggle's csv files) or "
    "`train/`, `test/` image folders; `synthetic` forces the synthetic faces.",
    ("data_loaders/fer2013.py",),
    passed_to_sandbox=True,
    path=True,
)
IPHONEX_PATH = Setting(
    "IPHONEX_PATH",
    "`data/iphonex/`, else the synthetic point clouds",
    "The iPhone X point clouds: the course's `faces.py`, an `.npz` or `<subject>/<emotion>.ply` folders; "
    "`synthetic` forces the synthetic faces.",
    ("data_loaders/iphonex.py",),
    passed_to_sandbox=True,
    path=True,
)
PERSONAL_PHOTOS_PATH = Setting(
    "PERSONAL_PHOTOS_PATH",
    "`data/personal/`",
    "The student's photo folder (`<train|test>/<emotion>/*.jpg`), created by the capture widget when missing; "
    "`synthetic` means the stand-in photos.",
    ("data_loaders/personal.py",),
    passed_to_sandbox=True,
    path=True,
)
AU_DATA_PATH = Setting(
    "AU_DATA_PATH",
    "`data/action_units/`, else the synthetic faces",
    "Action Unit labels: an OpenFace 2.0 csv or a folder of them, or a DISFA-style folder; `synthetic` forces "
    "the synthetic faces with exact AU labels.",
    ("data_loaders/action_units/",),
    passed_to_sandbox=True,
    path=True,
)
VIDEO_PATH = Setting(
    "VIDEO_PATH",
    "the first clip in `data/video/`, else the synthetic clip",
    "A video clip (`.mp4`, `.avi`, `.mov`, …) or a folder of clips, with its ground truth `<clip>.csv` beside it; "
    "`synthetic` forces the synthetic clip.",
    ("data_loaders/video.py",),
    passed_to_sandbox=True,
    path=True,
)
EXPRESSION_LAB_DATA = Setting(
    "EXPRESSION_LAB_DATA",
    "the kit's `data/`",
    "A folder used instead of the kit's `data/` for every source's default location (e.g. a read-only "
    "course-wide copy on a hub).",
    ("data_loaders/resolve.py",),
    passed_to_sandbox=True,
    path=True,
)
EXPRESSION_LAB_CACHE = Setting(
    "EXPRESSION_LAB_CACHE",
    "`$XDG_CACHE_HOME/expression-lab`, else `~/.cache/expression-lab`",
    "Where parsed datasets, the synthetic data and the fallback `model_2` are cached (inside the grading "
    "sandbox: the grader's cache, read-only).",
    ("data_loaders/cache.py",),
    path=True,
)

#: The data settings, in the README's order.
DATA_SETTINGS: tuple[Setting, ...] = (
    FER2013_PATH,
    IPHONEX_PATH,
    PERSONAL_PHOTOS_PATH,
    AU_DATA_PATH,
    VIDEO_PATH,
    EXPRESSION_LAB_DATA,
    EXPRESSION_LAB_CACHE,
)

__all__ = [
    "AU_DATA_PATH",
    "DATA_SETTINGS",
    "EXPRESSION_LAB_CACHE",
    "EXPRESSION_LAB_DATA",
    "FER2013_PATH",
    "IPHONEX_PATH",
    "PERSONAL_PHOTOS_PATH",
    "SYNTHETIC",
    "Setting",
    "VIDEO_PATH",
]
