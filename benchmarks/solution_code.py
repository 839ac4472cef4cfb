"""Run cells of a solution notebook so that benchmarks measure the very code the notebook defines.

One definition, not two copies: a benchmark names the ``grade_id`` of the cells it needs and gets their
functions in a namespace. Solution markers are comments, so the cells run as they are.
"""

from __future__ import annotations

from pathlib import Path

from course.notebook_cells import sources_by_grade_id

REPO = Path(__file__).resolve().parent.parent


def solution_namespace(notebook: str, grade_ids: list[str], namespace: dict | None = None) -> dict:
    """Execute the cells with these ``grade_id`` s of ``solutions/<notebook>`` in ``namespace``; return it.

    Raises:
        KeyError: a ``grade_id`` the notebook does not have.
    """
    by_id = sources_by_grade_id(REPO / "solutions" / notebook)
    ns = {} if namespace is None else namespace
    for gid in grade_ids:
        if gid not in by_id:
            raise KeyError(f"{notebook} has no cell with grade_id {gid!r}")
        exec(compile(by_id[gid], f"{notebook}#{gid}", "exec"), ns)  # noqa: S102 (our own solution notebook)
    return ns
