"""The shared steps of every source's data resolution: an explicit path, then an environment variable, then the
source's folder under the kit's data folder (:func:`repo_data_dir`), then (for most sources) the synthetic default.
"""

from __future__ import annotations

import os
from pathlib import Path

from .settings import EXPRESSION_LAB_DATA, SYNTHETIC, Setting


def repo_data_dir() -> Path:
    """The folder each source's default location is under (``fer2013/``, ``iphonex/``, ``action_units/``,
    ``video/``, ``personal/``): ``$EXPRESSION_LAB_DATA`` when set (e.g. a read-only course-wide copy on a hub),
    else the kit's git-ignored ``<repo>/data``. The folder need not exist."""
    value = EXPRESSION_LAB_DATA.read()
    return Path(value).expanduser() if value else Path(__file__).resolve().parent.parent / "data"


def configured_path(
    path: str | os.PathLike | None, setting: Setting, what: str, how_to_get: str, *, must_exist: bool = True
) -> Path | str | None:
    """``path`` if given, else the variable of ``setting`` (a :class:`data_loaders.settings.Setting`) if set: a
    :class:`~pathlib.Path`, or :data:`SYNTHETIC` when the value is the word ``synthetic``; None when neither is
    set. ``must_exist=False`` accepts a path that does not exist yet (a folder the kit will write into).

    Raises:
        FileNotFoundError: the configured path does not exist and ``must_exist`` (the message names it, where it
            came from, and ``how_to_get``).
    """
    origin = "the path given" if path is not None else setting.name
    value = path if path is not None else setting.read()
    if value is None:
        return None
    if str(value).strip().lower() == SYNTHETIC:
        return SYNTHETIC
    chosen = Path(value).expanduser()
    if must_exist and not chosen.exists():
        raise FileNotFoundError(f"{what} not found at {chosen} ({origin}). {how_to_get}")
    return chosen
