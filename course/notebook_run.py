"""Executing notebooks cell by cell with a progress bar (the demo's "student" run, tests, benchmarks)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from tqdm.auto import tqdm


@contextmanager
def _environ(extra: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute_notebook(
    path: Path, env: Mapping[str, str] | None = None, cell_timeout: int = 3600, progress: bool = True, save: bool = True
) -> nbformat.NotebookNode:
    """Run every cell of ``path`` in its own folder, as a student would (stops at the first error).

    Args:
        path: the notebook; it runs with its folder as the working directory.
        env: extra environment variables for the kernel (e.g. ``{"EXPRESSION_LAB_QUICK": "1"}``).
        cell_timeout: seconds one cell may run.
        progress: show a tqdm bar over the cells.
        save: write the executed notebook (with outputs) back to ``path``.

    Returns:
        The executed notebook.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; the message names the cell and the error.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=cell_timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    )
    with _environ(env or {}), client.setup_kernel():
        code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        bar = tqdm(code_cells, desc=f"running {path.name}", unit="cell", disable=not progress)
        try:
            for index, cell in bar:
                client.execute_cell(cell, index)
        finally:
            bar.close()
            if save:
                nbformat.write(nb, path)
    return nb
