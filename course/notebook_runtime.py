"""What every assignment notebook does at run time and holds no answer: the run mode, the output folder, ``model_2``.

Each notebook's locked *config* cell asks this module for the run mode and where the run's files go, and keeps
its own sizes (``TRAIN_LIMIT = 512 if GRADING else None`` …) in the cell, where students read them::

    from course.notebook_runtime import output_folder, run_mode, silence_for_grading

    RUN = run_mode()
    GRADING, QUICK = RUN.grading, RUN.quick
    silence_for_grading(GRADING)
    MODEL_DIR = output_folder(GRADING)

Assignments 2, 4 and 5 start from the student's ``model_2`` of assignment 1 and find it with
:func:`find_model_2`. The run modes:

- **grading**: nbgrader is autograding the notebook (it sets ``NBGRADER_EXECUTION``): small workloads, the kit's
  fallback ``model_2``, no warning or log line (a line on a test cell's stderr would score it 0), and the run's
  models and run record go to ``autograde_outputs/`` so that they never overwrite what the student handed in;
- **quick**: grading, or ``EXPRESSION_LAB_QUICK=1`` (a short run; the demo course run uses it);
- **full**: neither.

Student-facing and bundle-safe: the student bundle carries this module (``course.bundle.COURSE_MODULES``), so it
imports only the standard library and the other bundled modules: :mod:`course.settings` (the declared variables)
and :mod:`course.fallback_model`. It holds nothing a student is graded on.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .fallback_model import fallback_model_2
from .settings import EXPRESSION_LAB_QUICK, MODEL_2_PATH

#: The folder a grading run writes its models and run record to, in the notebook's folder.
GRADING_OUTPUTS = "autograde_outputs"
#: Where :func:`find_model_2` looks for the student's ``model_2.keras`` after ``MODEL_2_PATH``, relative to the
#: notebook's folder, in order: assignment 1's folder beside this assignment's, then this assignment's.
MODEL_2_PLACES = ("../ps1_fer2013_cnn/model_2.keras", "model_2.keras")
#: What :func:`find_model_2` prints when the student has no ``model_2.keras`` (outside grading).
MODEL_2_NOT_FOUND = (
    f"model_2.keras not found (looked at {MODEL_2_PATH.name}, {MODEL_2_PLACES[0]}, ./{MODEL_2_PLACES[1]}).\n"
    f"Run assignment 1 to make it, or set {MODEL_2_PATH.name}. Using the kit's fallback model meanwhile."
)


def grading(env: Mapping[str, str] | None = None) -> bool:
    """Whether nbgrader is autograding this run: ``NBGRADER_EXECUTION`` set and not empty in ``env``
    (default: ``os.environ`` as it is now)."""
    env = os.environ if env is None else env
    return bool(env.get("NBGRADER_EXECUTION"))


def quick(env: Mapping[str, str] | None = None) -> bool:
    """Whether this is a short run: grading (:func:`grading`), or ``EXPRESSION_LAB_QUICK`` is ``1`` in ``env``
    (default: ``os.environ`` as it is now)."""
    return grading(env) or EXPRESSION_LAB_QUICK.read(env) == "1"


@dataclass(frozen=True)
class RunMode:
    """The run mode of a notebook: ``grading`` (nbgrader autogrades) and ``quick`` (a short run; grading implies
    it). ``name`` is the word the config cell prints: ``"grading"``, ``"quick"`` or ``"full"``."""

    grading: bool
    quick: bool

    @property
    def name(self) -> str:
        """``"grading"``, ``"quick"`` or ``"full"``."""
        return "grading" if self.grading else "quick" if self.quick else "full"


def run_mode(env: Mapping[str, str] | None = None) -> RunMode:
    """The run mode in ``env`` (default: ``os.environ`` as it is now): :func:`grading` and :func:`quick`."""
    return RunMode(grading=grading(env), quick=quick(env))


def silence_for_grading(grading: bool) -> None:
    """Keep the run quiet, as a grading run must be: a warning or log line that reaches a test cell's stderr would
    score the cell 0.

    In every mode it turns TensorFlow's C++ start-up messages off (``TF_CPP_MIN_LOG_LEVEL=2`` unless the variable
    is set; call it before TensorFlow is imported). When ``grading`` is true it also ignores every Python warning
    (``warnings.simplefilter("ignore")``) and disables every logger (TensorFlow's, absl's …) up to ``WARNING``
    (``logging.disable``), for the rest of the kernel's life. Raises nothing.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if grading:
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)


def notebook_folder() -> Path:
    """The folder of the running notebook: the Jupyter kernel's start directory, else the current directory.

    Jupyter, nbclient and nbgrader (the grading sandbox too) start a notebook's kernel in the notebook's own folder,
    and IPython records that directory when the kernel's shell starts (``starting_dir``); it stays the notebook's
    folder after a cell changes the current directory (``os.chdir``). Outside a Jupyter kernel (a test or a
    script that runs the cells with ``exec``, a plain Python prompt) the current directory stands for it. IPython
    is not imported here: a kernel has it loaded already. Raises nothing (the current directory's own errors
    aside: ``FileNotFoundError`` when it was deleted).
    """
    module = sys.modules.get("IPython.core.getipython")
    shell = module.get_ipython() if module is not None else None
    start = getattr(shell, "starting_dir", None) if getattr(shell, "kernel", None) is not None else None
    return Path(start) if start else Path.cwd()


def output_folder(grading: bool) -> Path:
    """Where a run saves its models, run record and other files.

    While grading, ``autograde_outputs/`` in the notebook's folder (:func:`notebook_folder`: the kernel's start
    directory, not whatever the current directory has become), created when missing, as an absolute path: the
    grading run never overwrites the files the student handed in beside the notebook, and the grader collects the
    run records from there. Otherwise ``Path(".")``: the student's run saves beside the notebook, where the files
    are handed in.

    Raises:
        OSError: ``autograde_outputs/`` cannot be created (a read-only folder, or a file of that name).
    """
    if not grading:
        return Path(".")
    folder = notebook_folder() / GRADING_OUTPUTS
    folder.mkdir(exist_ok=True)
    return folder


class FoundModel(NamedTuple):
    """A model file :func:`find_model_2` found: its ``path`` and a one-line ``description`` of where it came
    from, for the notebook to print (e.g. ``"your model_2 from assignment 1 (../ps1_fer2013_cnn/model_2.keras)"``)."""

    path: Path
    description: str


def find_model_2(grading: bool, env: Mapping[str, str] | None = None) -> FoundModel:
    """The ``model_2.keras`` assignments 2, 4 and 5 start from, and where it came from.

    Outside grading, the first file that exists of: ``MODEL_2_PATH`` in ``env`` (default: ``os.environ``; a
    relative path is relative to the current directory), ``../ps1_fer2013_cnn/model_2.keras`` and
    ``model_2.keras`` (both relative to the notebook's folder, :func:`notebook_folder`). When none exists it prints
    :data:`MODEL_2_NOT_FOUND` (how to make or name one) and uses the kit's fallback model. While grading it always
    uses the fallback model, so every submission is graded from the same ``model_2``
    (:func:`course.fallback_model.fallback_model_2`, which says what it does when it trains one outside grading).

    Raises:
        FileNotFoundError: the fallback model is needed and missing, and this installation cannot train one (a
            student bundle without its model file; the message says what to do).
    """
    if not grading:
        named = MODEL_2_PATH.read(env)
        folder = notebook_folder()
        places = [(Path(named), f"your model_2 ({MODEL_2_PATH.name}={named})")] if named else []
        places.append((folder / MODEL_2_PLACES[0], f"your model_2 from assignment 1 ({MODEL_2_PLACES[0]})"))
        places.append((folder / MODEL_2_PLACES[1], f"your model_2 ({MODEL_2_PLACES[1]} beside this notebook)"))
        for path, description in places:
            if path.is_file():
                return FoundModel(path, description)
        print(MODEL_2_NOT_FOUND)
    path = fallback_model_2(verbose=not grading)
    why = "grading always uses it" if grading else "none of yours found"
    return FoundModel(path, f"the kit's fallback model_2 ({why}): {path}")
