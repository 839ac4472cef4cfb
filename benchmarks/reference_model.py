"""The reference ``model_2`` that the speed benchmarks measure: the solution notebook's own ``build_model_2``,
untrained (speed does not depend on the weights)."""

from __future__ import annotations

from pathlib import Path


def untrained_model_2():
    """The ps1 solution notebook's ``build_model_2(steps_per_epoch=1, epochs=1)``, weights drawn with seed 0: a
    compiled ``keras.Model``, float32 input (N, 48, 48, 1) in [0, 1], 7 softmax outputs."""
    import keras

    from course.notebook_cells import run_solution_cells

    ns = run_solution_cells("build_model_2", {"__name__": "benchmark"})
    keras.utils.set_random_seed(0)
    return ns["build_model_2"](steps_per_epoch=1, epochs=1)


def saved_model_2(folder: Path) -> Path:
    """:func:`untrained_model_2` saved as ``folder/model_2.keras``; returns that path."""
    path = Path(folder) / "model_2.keras"
    untrained_model_2().save(path)
    return path
