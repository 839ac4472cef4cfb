"""A sample student submission: the released notebook with every answer cell filled from the solution.

This is what a perfect student hands in: locked and test cells are the released ones (hidden tests absent),
answer cells hold the reference answers without nbgrader's solution markers.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from .notebook_cells import cells_by_grade_id

_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)


def fill_answers(release_nb: Path, source_nb: Path) -> nbformat.NotebookNode:
    """The release notebook with each solution cell's text taken from the source notebook.

    Raises:
        KeyError: an answer cell of the release has no counterpart (same ``grade_id``) in the source.
    """
    release = nbformat.read(release_nb, as_version=4)
    source = cells_by_grade_id(nbformat.read(source_nb, as_version=4))
    for cell in release.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            gid = meta["grade_id"]
            if gid not in source:
                raise KeyError(f"{release_nb}: answer cell {gid!r} has no counterpart in {source_nb}")
            cell.source = _MARKER.sub("", source[gid].source)
    return release


def write_submission(release_nb: Path, source_nb: Path, folder: Path) -> Path:
    """Write the filled notebook into ``folder`` (created), with nbgrader's ``timestamp.txt``; return its path."""
    from datetime import datetime, timezone

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / release_nb.name
    nbformat.write(fill_answers(release_nb, source_nb), out)
    (folder / "timestamp.txt").write_text(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
    return out
