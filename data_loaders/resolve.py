"""The first steps of every source's data resolution: an explicit path, then an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

#: The value of a path argument or variable that asks for the synthetic default data.
SYNTHETIC = "synthetic"


def configured_path(path: str | os.PathLike | None, env_var: str, what: str, how_to_get: str) -> Path | str | None:
    """``path`` if given, else ``$env_var`` if set: a :class:`~pathlib.Path`, or :data:`SYNTHETIC` when the value
    is the word ``synthetic``; None when neither is set.

    Raises:
        FileNotFoundError: the configured path does not exist (the message names it, where it came from, and
            ``how_to_get``).
    """
    origin = "the path given" if path is not None else env_var
    value = path if path is not None else (os.environ.get(env_var) or None)
    if value is None:
        return None
    if str(value).strip().lower() == SYNTHETIC:
        return SYNTHETIC
    chosen = Path(value).expanduser()
    if not chosen.exists():
        raise FileNotFoundError(f"{what} not found at {chosen} ({origin}). {how_to_get}")
    return chosen
