"""Cells of an nbgrader notebook by ``grade_id``: the one place the kit looks them up.

nbgrader names every graded, locked or answer cell with ``metadata.nbgrader.grade_id`` (unique within a
notebook; nbgrader's ``generate_assignment`` refuses duplicates). These helpers take a notebook as nbformat reads
it (``NotebookNode``) or as plain JSON (``dict`` with ``"cells"``; a cell's ``source`` a string or a list of
lines), or a path to an ``.ipynb`` file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Notebook = Mapping[str, Any] | str | os.PathLike


def grade_id(cell: Mapping[str, Any]) -> str | None:
    """The cell's ``metadata.nbgrader.grade_id``, or None for a cell nbgrader does not track."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or None


def cell_source(cell: Mapping[str, Any]) -> str:
    """The cell's text as one string (JSON notebooks store it as a list of lines)."""
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def _load(notebook: Notebook) -> tuple[Mapping[str, Any], str]:
    if isinstance(notebook, (str, os.PathLike)):
        path = Path(notebook)
        return json.loads(path.read_text(encoding="utf-8")), str(path)
    return notebook, "the notebook"


def cells_by_grade_id(notebook: Notebook) -> dict[str, Any]:
    """``{grade_id: cell}`` for every cell that has a ``grade_id``, in notebook order.

    The cells are the notebook's own objects: editing one edits the notebook.
    """
    nb, _ = _load(notebook)
    return {gid: cell for cell in nb["cells"] if (gid := grade_id(cell))}


def sources_by_grade_id(notebook: Notebook) -> dict[str, str]:
    """``{grade_id: cell text}`` for every cell that has a ``grade_id``, in notebook order."""
    return {gid: cell_source(cell) for gid, cell in cells_by_grade_id(notebook).items()}


def cell_by_grade_id(notebook: Notebook, gid: str) -> Any:
    """The cell whose ``grade_id`` is ``gid`` (the notebook's own object).

    Raises:
        KeyError: no cell has that ``grade_id``; the message names the notebook (its path when given one) and
            lists the ``grade_id`` s it has.
    """
    nb, where = _load(notebook)
    cells = cells_by_grade_id(nb)
    if gid not in cells:
        raise KeyError(f"{where} has no cell with grade_id {gid!r} (it has: {', '.join(cells) or 'none'})")
    return cells[gid]


_PS1 = "ps1_fer2013_cnn/fer2013_cnn.ipynb"
_MODEL_2 = ("config", "imports", "preprocess", "make_augmentation", "build_model_2")
_PS6 = "ps6_explain_compare/explain_compare.ipynb"

#: The solution cells that tests and benchmarks execute, by what they define: ``name: (notebook under
#: ``solutions/``, grade_ids in notebook order)``. One list, so that a cell renamed or added is changed here only.
SOLUTION_CELLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "build_model_2": (_PS1, _MODEL_2),
    "build_model_1_and_2": (_PS1, ("config", "imports", "preprocess", "build_model_1", *_MODEL_2[-2:])),
    "voxelize": ("ps3_iphonex_3dcnn/iphonex_3dcnn.ipynb", ("imports", "voxelize", "build_model_4")),
    "action_units": (
        "ps4_action_units/action_units.ipynb",
        (
            "imports",
            "build_au_cnn",
            "per_au_f1",
            "pick_thresholds",
            "build_au_transfer",
            "ccc",
            "build_va_model",
            "fit_au_to_emotion",
        ),
    ),
    "grad_cam": (_PS6, ("imports", "grad_cam")),
    "architectures": (
        _PS6,
        ("imports", "given_networks", "build_resnet_style", "build_mobilenet_style", "race_tools"),
    ),
}


def run_solution_cells(name: str, namespace: dict | None = None, root: str | os.PathLike | None = None) -> dict:
    """Execute the cells :data:`SOLUTION_CELLS` lists under ``name`` (``solutions/<notebook>`` of ``root``, the
    repository by default) in ``namespace`` and return it, so that a test or benchmark runs the very code the
    notebook defines. Solution markers are comments: the cells run as they are.

    Raises:
        KeyError: ``name`` is not in :data:`SOLUTION_CELLS`, or the notebook has no cell with one of its
            ``grade_id`` s (the message names the notebook and the cell).
    """
    from . import REPO_ROOT

    if name not in SOLUTION_CELLS:
        raise KeyError(f"no solution cells named {name!r}; expected one of {sorted(SOLUTION_CELLS)}")
    notebook, grade_ids = SOLUTION_CELLS[name]
    by_id = sources_by_grade_id(Path(root or REPO_ROOT) / "solutions" / notebook)
    ns = {} if namespace is None else namespace
    for gid in grade_ids:
        if gid not in by_id:
            raise KeyError(f"{notebook} has no cell with grade_id {gid!r}")
        exec(compile(by_id[gid], f"{notebook}#{gid}", "exec"), ns)  # noqa: S102 (the kit's own solution notebook)
    return ns
