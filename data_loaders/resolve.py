"""The shared steps of every source's data resolution: an explicit path, then an environment variable, then the
source's folder under the kit's data folder (:func:`repo_data_dir`), then (for most sources) the synthetic default.

One function does them all (:func:`resolve_source`); each loader declares only what is its own in a
:class:`DataSource` (its variable, folder name, what it finds in that folder, its synthetic default and its "how to
get it" text) and its ``*_path`` function calls :func:`resolve_source` with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class DataSource:
    """What one source's resolution needs besides the shared steps: only what is its own.

    Attributes:
        setting: its environment variable (a :class:`data_loaders.settings.Setting`).
        folder: its folder under :func:`repo_data_dir` (``"fer2013"``).
        what: what it is called in "… not found at" messages (``"FER2013"``).
        how_to_get: the sentences that end every "not found" message: where to get the data and where to put it.
        in_default_folder: given its (possibly missing) default folder, the file or folder to use there, or None
            when it holds nothing usable.
        synthetic: the synthetic default, called when asked for (the word ``synthetic``) or as the fallback.
        not_found: the message when nothing is found and the fallback is refused, with ``{what}``, ``{variable}``
            and ``{folder}`` placeholders; ``how_to_get`` is appended.
        must_exist: whether a configured path must exist (False for a folder the kit will create).
    """

    setting: Setting
    folder: str
    what: str
    how_to_get: str
    in_default_folder: Callable[[Path], Path | None]
    synthetic: Callable[[], Path]
    not_found: str = "{what} not found: {variable} is not set and {folder} is empty"
    must_exist: bool = True


def resolve_source(path: str | os.PathLike | None, source: DataSource, *, synthetic_fallback: bool = True) -> Path:
    """The shared resolution of every source: ``path`` → the source's variable (:func:`configured_path`; the word
    ``synthetic`` as either asks for the synthetic default) → what ``source.in_default_folder`` finds in
    ``<data>/<source.folder>`` (:func:`repo_data_dir`) → the synthetic default (when ``synthetic_fallback``).

    Raises:
        FileNotFoundError: a configured path that does not exist (with ``source.must_exist``), or nothing found
            with ``synthetic_fallback=False`` (the message is ``source.not_found`` then ``source.how_to_get``).
    """
    chosen = configured_path(path, source.setting, source.what, source.how_to_get, must_exist=source.must_exist)
    if chosen == SYNTHETIC:
        return source.synthetic()
    if chosen is not None:
        return chosen
    default = repo_data_dir() / source.folder
    found = source.in_default_folder(default)
    if found is not None:
        return found
    if synthetic_fallback:
        return source.synthetic()
    message = source.not_found.format(what=source.what, variable=source.setting.name, folder=default)
    raise FileNotFoundError(f"{message}. {source.how_to_get}")
