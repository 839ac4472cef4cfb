"""The student bundle: what students receive instead of the instructor repository (``python -m course bundle``).

A bundle holds the release notebooks (``assignments/``), the packages they import at run time
(``data_loaders``, ``widgets`` and the student-facing modules of ``course``: the notebooks' run-time helpers, the
settings they read, the run record, the fallback ``model_2`` file …), the trained fallback model itself, an
install file (``pyproject.toml`` and ``requirements.txt``) and a README for students. It holds nothing from
``solutions/`` and no instructor tooling (demo, release, evaluation, autograding …): :func:`bundle_problems` checks
that before a bundle is written.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

from . import ASSIGNMENTS, REPO_ROOT

#: Packages copied whole: the notebooks import them.
PACKAGES = ("data_loaders", "widgets")
#: The only ``course`` modules a notebook imports, and what they import (``settings``, the declarations
#: ``notebook_runtime`` reads). Everything else in ``course/`` is instructor-only.
COURSE_MODULES = (
    "notebook_runtime.py",
    "settings.py",
    "run_record.py",
    "fallback_model.py",
    "video_analysis.py",
)
#: Requirements of the kit that only instructors need (grading, notebook execution from scripts).
INSTRUCTOR_REQUIREMENTS = ("nbgrader", "nbclient", "nbconvert", "nbformat")
#: Text that must never reach students.
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
_SKIP = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".ipynb_checkpoints", "*.keras", "*.run.json", "autograde_outputs"
)

_INIT = '''"""Student-facing modules of Expression Lab: the notebooks' run mode, output folder and ``model_2``
(``notebook_runtime``), the settings they read (``settings``), the run record (``run_record``), the fallback
``model_2`` file (``fallback_model``) and per-frame video analysis (``video_analysis``). The course's instructor
tooling is not part of the student bundle."""
'''

README = """# Expression Lab: student bundle

Graded notebooks on facial expression recognition (after MIT 6.835 MiniProject 4):

| notebook | what you do |
|---|---|
| `assignments/ps1_fer2013_cnn/fer2013_cnn.ipynb` | a Keras CNN on FER2013 (48×48 faces, 7 expressions) |
| `assignments/ps2_personal_transfer/personal_transfer.ipynb` | fine-tune your `model_2` on photos of your own face |
| `assignments/ps3_iphonex_3dcnn/iphonex_3dcnn.ipynb` | iPhone X face point clouds, voxels and a 3D CNN |
| `assignments/ps4_action_units/action_units.ipynb` | Action Units (one sigmoid per AU), valence and arousal (CCC) |
| `assignments/ps5_faces_in_motion/faces_in_motion.ipynb` | smiles frame by frame in a video, smoothing, ROC |
| `assignments/ps6_explain_compare/explain_compare.ipynb` | four network families in a race, Grad-CAM, slices |

## Install (once)

Python 3.10 or newer. In this folder:

```bash
python3 -m venv .venv
.venv/bin/python -m pip install -e .          # the packages the notebooks import, and their requirements
.venv/bin/python -m widgets.kernel_websocket   # faster live webcam: TCP_NODELAY on kernel websockets
.venv/bin/jupyter lab
```

(`requirements.txt` lists the same third-party packages, for a conda or a shared environment; the notebooks
also need this folder installed, as above, or on `PYTHONPATH`.) open3d needs the system library libusb-1.0
(`sudo apt-get install libusb-1.0-0` on Debian/Ubuntu). A machine without a GPU can install `tensorflow-cpu`
instead of `tensorflow`.

## Data

Without data the notebooks run on **synthetic FACS faces** the kit generates once (about 15 s): fine to learn
the workflow, but they are not people. For the real data, put FER2013 (`fer2013.csv`, from Kaggle's *Challenges
in Representation Learning* page) in `data/fer2013/` or set `FER2013_PATH`, and the course's `faces.py` in
`data/iphonex/` or set `IPHONEX_PATH`; Action Unit labels (OpenFace csv or DISFA-style folders) go in
`data/action_units/` or `AU_DATA_PATH`, and your own video clips in `data/video/` or `VIDEO_PATH`. A banner in
each notebook says which data is in use. Your photos
(assignment 2) are saved in `data/personal/` on this machine only.

## Working and handing in

Cells saying *YOUR CODE HERE* / *YOUR ANSWER HERE* are yours; the test cell after each checks your work
(silence means it passed; the grader adds hidden tests of the same behaviour). Locked cells are restored by the
grader. Each notebook ends with a *Before you submit* checklist. Hand in the notebook, the model it saves
(`model_2.keras` … `model_5.keras`) and the run record written beside it (`model_2.run.json` …; ps5 and ps6 save
no model and write `faces_in_motion.run.json` and `explain_compare.run.json`): the grader re-runs your notebook
on a small subset and reads your own results from that record.
"""


def _kit_project(root: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from pip._vendor import tomli as tomllib
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]


def _pyproject(root: Path) -> str:
    kit = _kit_project(root)
    deps = [d for d in kit["dependencies"] if re.split(r"[<>=!~ \[]", d)[0] not in INSTRUCTOR_REQUIREMENTS]
    listed = ",\n".join(f'    "{d}"' for d in deps)
    return f"""[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "{kit["name"]}"
version = "{kit["version"]}"
description = "Expression Lab, student bundle: the assignment notebooks and the packages they import."
requires-python = "{kit["requires-python"]}"
dependencies = [
{listed},
]

[tool.setuptools.packages.find]
include = ["data_loaders*", "widgets*", "course*"]
"""


def _requirements(root: Path) -> str:
    deps = _kit_project(root)["dependencies"]
    keep = [d for d in deps if re.split(r"[<>=!~ \[]", d)[0] not in INSTRUCTOR_REQUIREMENTS]
    return (
        "# Third-party packages the notebooks need (install this folder too: pip install -e .)\n"
        + "\n".join(keep)
        + "\n"
    )


def hidden_lines(root: Path = REPO_ROOT, min_length: int = 16) -> set[str]:
    """Lines of the source notebooks that students must never see: those inside solution regions and hidden-test
    blocks that appear nowhere else in the notebook (stripped, at least ``min_length`` characters)."""
    secret, public = set(), set()
    for aid, name in ASSIGNMENTS.items():
        nb = json.loads((root / "solutions" / aid / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            text = "".join(cell["source"])
            if cell["cell_type"] == "markdown" and meta.get("solution"):
                secret.update(line.strip() for line in text.splitlines())
                continue
            inside = False
            for line in text.splitlines():
                s = line.strip()
                if s.startswith("### BEGIN"):
                    inside = True
                elif s.startswith("### END"):
                    inside = False
                (secret if inside else public).add(s)
    return {s for s in secret - public if len(s) >= min_length and not s.startswith("###")}


def bundle_problems(folder: Path, root: Path = REPO_ROOT) -> list[str]:
    """Every way the unpacked bundle in ``folder`` leaks what students must not get (empty when clean):
    a ``solutions/`` folder, an instructor-only ``course`` module, a solution or hidden-test marker, or a line
    of a solution or hidden test of the source notebooks."""
    problems = []
    if (folder / "solutions").exists():
        problems.append("a solutions/ folder")
    extra = sorted(p.name for p in (folder / "course").glob("*.py") if p.name not in ("__init__.py", *COURSE_MODULES))
    if extra:
        problems.append(f"instructor-only course modules: {extra}")
    secret = hidden_lines(root)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            text = path.read_text()
        except UnicodeDecodeError:  # model files and images: binary
            continue
        if path.suffix == ".ipynb":  # the cells' text, not its JSON encoding
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        rel = path.relative_to(folder)
        found = [m for m in MARKERS if m in text]
        if found:
            problems.append(f"{rel}: {found}")
        lines = {line.strip() for line in text.splitlines()}
        leaked = sorted(lines & secret)
        # a module may share an idiom with a solution (``rng = np.random.default_rng(seed)``); a copied answer is
        # several lines, so modules are flagged from 3 shared lines, everything else (notebooks) from 1
        if len(leaked) >= (3 if path.suffix == ".py" else 1):
            problems.append(f"{rel}: {len(leaked)} solution/hidden-test lines, e.g. {leaked[0]!r}")
    return problems


def build_bundle(out: str | Path, root: Path = REPO_ROOT, fallback_model: str | Path | None = None) -> Path:
    """Write the student bundle to ``out``: a folder, or a ``.zip`` file. Returns the path written.

    Args:
        out: a folder (created; it must not exist or be empty) or a path ending in ``.zip``.
        root: the kit's repository (its committed release ``assignments/`` is what students get).
        fallback_model: the trained fallback ``model_2`` file to ship (default: the kit's, trained once and
            cached by :func:`course.fallback_model.fallback_model_2`).

    Raises:
        FileExistsError: ``out`` is a non-empty folder or an existing file.
        FileNotFoundError: a release notebook is missing (run ``python -m course release``).
        RuntimeError: the bundle would leak solution or hidden-test text or instructor tooling (listed).
    """
    out = Path(out)
    if out.exists() and (out.is_file() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not empty: choose a new folder or .zip path")
    for aid, name in ASSIGNMENTS.items():
        if not (root / "assignments" / aid / f"{name}.ipynb").is_file():
            raise FileNotFoundError(f"assignments/{aid}/{name}.ipynb is missing: run python -m course release")
    if fallback_model is None:
        from .fallback_model import fallback_model_2

        fallback_model = fallback_model_2()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "expression-lab"
        for aid in ASSIGNMENTS:
            shutil.copytree(root / "assignments" / aid, stage / "assignments" / aid, ignore=_SKIP)
        for package in PACKAGES:
            shutil.copytree(root / package, stage / package, ignore=_SKIP)
        (stage / "course" / "models").mkdir(parents=True)
        (stage / "course" / "__init__.py").write_text(_INIT)
        for module in COURSE_MODULES:
            shutil.copy2(root / "course" / module, stage / "course" / module)
        shutil.copy2(fallback_model, stage / "course" / "models" / "fallback_model_2.keras")
        (stage / "pyproject.toml").write_text(_pyproject(root))
        (stage / "requirements.txt").write_text(_requirements(root))
        (stage / "README.md").write_text(README)
        (stage / ".gitignore").write_text("data/\n*.egg-info/\n__pycache__/\n.ipynb_checkpoints/\n")
        problems = bundle_problems(stage, root)
        if problems:
            raise RuntimeError("the student bundle would leak: " + "; ".join(problems))
        if out.suffix == ".zip":
            out.parent.mkdir(parents=True, exist_ok=True)
            return Path(shutil.make_archive(str(out.with_suffix("")), "zip", Path(tmp), "expression-lab"))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(stage, out, dirs_exist_ok=True)
    return out
