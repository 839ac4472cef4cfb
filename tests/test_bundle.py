"""The student bundle (``python -m course bundle``): what students get, and that it works on its own.

The fast tests build a bundle with a stand-in model file and check its contents; the slow one unpacks a real
bundle, makes a fresh virtual environment where the kit is NOT installed (it borrows the third-party packages
of the running environment through a ``.pth`` path line, which does not run the kit's editable-install hook),
installs the bundle there with its own ``pyproject.toml``, and runs every notebook, answers filled in, with a
kernel of that environment in grading-size mode on the synthetic default.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, SHARED_CACHE
from course import ASSIGNMENTS
from course.bundle import COURSE_MODULES, build_bundle, bundle_problems, hidden_lines

INSTRUCTOR_ONLY = (
    "demo",
    "nbgrader_steps",
    "sample_submission",
    "evaluate",
    "autograde",
    "sandbox",
    "report",
    "bundle",
    "inference",
    "notebook_run",
    "fallback_training",
    "__main__",
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundle")
    model = tmp / "stand-in.keras"
    model.write_bytes(b"a trained model file")
    return build_bundle(tmp / "expression-lab", fallback_model=model)


def test_the_bundle_holds_the_release_notebooks_the_runtime_packages_and_an_install_file(bundle):
    for aid, name in ASSIGNMENTS.items():
        assert (bundle / "assignments" / aid / f"{name}.ipynb").read_bytes() == (
            REPO / "assignments" / aid / f"{name}.ipynb"
        ).read_bytes()
    for package in ("data_loaders", "data_loaders/synthetic", "widgets", "course"):
        assert (bundle / package / "__init__.py").is_file(), f"{package} missing from the bundle"
    assert (bundle / "course" / "models" / "fallback_model_2.keras").read_bytes() == b"a trained model file"
    requirements = (bundle / "requirements.txt").read_text()
    assert "tensorflow" in requirements and "open3d" in requirements and "nbgrader" not in requirements
    assert 'include = ["data_loaders*", "widgets*", "course*"]' in (bundle / "pyproject.toml").read_text()
    assert "pip install -e ." in (bundle / "README.md").read_text()


def test_no_solution_hidden_test_or_instructor_module_is_in_the_bundle(bundle):
    assert not (bundle / "solutions").exists() and not (bundle / "tests").exists()
    assert not (bundle / "nbgrader_config.py").exists()
    assert sorted(p.name for p in (bundle / "course").glob("*.py")) == sorted(("__init__.py", *COURSE_MODULES))
    for module in INSTRUCTOR_ONLY:
        assert not list(bundle.rglob(f"course/{module}.py")), f"instructor-only course/{module}.py in the bundle"
    secret = hidden_lines()
    assert len(secret) > 100, f"expected the source notebooks' solution and hidden-test lines, found {len(secret)}"
    assert bundle_problems(bundle) == []
    text = "\n".join(p.read_text(errors="ignore") for p in bundle.rglob("*") if p.is_file())
    for marker in ("### BEGIN SOLUTION", "BEGIN HIDDEN TESTS", '_check_model_4("model_4.keras")'):
        assert marker not in text, f"{marker!r} reached the bundle"


def test_every_course_module_a_release_notebook_imports_is_bundled():
    imported = set()
    for aid, name in ASSIGNMENTS.items():
        nb = nbformat.read(REPO / "assignments" / aid / f"{name}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                imported |= set(re.findall(r"\bcourse\.(\w+)", cell.source))
    missing = sorted(f"{m}.py" for m in imported if f"{m}.py" not in COURSE_MODULES)
    assert not missing, f"expected every course module the notebooks import in COURSE_MODULES; missing {missing}"


def test_the_leak_check_catches_a_solution_notebook_and_an_instructor_module(bundle, tmp_path):
    copy = shutil.copytree(bundle, tmp_path / "copy")
    shutil.copy(REPO / "solutions" / "ps3_iphonex_3dcnn" / "iphonex_3dcnn.ipynb", copy / "assignments" / "x.ipynb")
    shutil.copy(REPO / "course" / "evaluate.py", copy / "course" / "evaluate.py")
    problems = " ".join(bundle_problems(copy))
    assert "assignments/x.ipynb" in problems and "evaluate.py" in problems
    with pytest.raises(FileExistsError):
        build_bundle(bundle, fallback_model=bundle / "course" / "models" / "fallback_model_2.keras")


def test_the_bundle_can_be_a_zip(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"model")
    out = build_bundle(tmp_path / "out" / "student.zip", fallback_model=model)
    assert out.suffix == ".zip"
    names = set(zipfile.ZipFile(out).namelist())
    assert "expression-lab/assignments/ps1_fer2013_cnn/fer2013_cnn.ipynb" in names
    assert "expression-lab/course/models/fallback_model_2.keras" in names
    assert not any("solutions/" in n or n.endswith("course/demo.py") for n in names)


def test_the_student_facing_fallback_module_hands_out_only_a_file(tmp_path, monkeypatch):
    import course.fallback_model as fm

    source = Path(fm.__file__).read_text()
    for construct in ("layers.", "Sequential", "Conv2D", "Random", "keras.Model("):
        assert construct not in source, f"course/fallback_model.py holds model code ({construct!r})"
    shipped = tmp_path / "models" / "fallback_model_2.keras"
    shipped.parent.mkdir()
    shipped.write_bytes(b"trained")
    monkeypatch.setattr(fm, "SHIPPED", shipped)
    assert fm.fallback_model_2() == shipped
    # a bundle without its model file and without the instructor's training code says what is missing
    monkeypatch.setattr(fm, "SHIPPED", tmp_path / "absent.keras")
    monkeypatch.setattr(fm, "cached_path", lambda: tmp_path / "not-cached.keras")
    monkeypatch.setitem(sys.modules, "course.fallback_training", None)
    with pytest.raises(FileNotFoundError, match="MODEL_2_PATH"):
        fm.fallback_model_2()


def _fresh_venv(tmp: Path) -> Path:
    """A new venv that sees the running environment's third-party packages but not the kit."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    # a path line: that folder's own .pth files (the kit's editable finder among them) are not processed
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin" / "python"


@pytest.mark.slow
def test_every_bundled_notebook_runs_from_the_bundle_alone_in_a_fresh_venv(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    from course.sample_submission import fill_answers

    # the session's shared cache and the synthetic data: the bundle ships the fallback model_2 that the session's
    # other notebook runs trained there (browser tests, graded course) instead of training another
    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(SHARED_CACHE))
    for key in ("FER2013_PATH", "IPHONEX_PATH"):
        monkeypatch.setenv(key, "synthetic")
    archive = build_bundle(tmp_path / "expression-lab-student.zip")
    shutil.unpack_archive(archive, tmp_path / "unpacked")
    root = tmp_path / "unpacked" / "expression-lab"
    python = _fresh_venv(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-e", str(root)],
        check=True,
        env=env,
        cwd=tmp_path,
    )

    probe = subprocess.run(
        [str(python), "-c", "import course.demo"], env=env, cwd=root / "assignments", capture_output=True, text=True
    )
    assert probe.returncode != 0 and "No module named 'course.demo'" in probe.stderr, probe.stderr[-500:]
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import course, data_loaders, widgets; print(course.__file__, data_loaders.__file__, widgets.__file__)",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(root) for p in where), f"expected the bundle's packages, found {where}"

    kernels = tmp_path / "jupyter" / "kernels" / "bundle"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "student bundle",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    check = nbformat.v4.new_code_cell(
        "import importlib.util, course\n"
        f"assert course.__file__.startswith({str(root)!r}), course.__file__\n"
        "assert importlib.util.find_spec('course.demo') is None and importlib.util.find_spec('course.evaluate') is None\n"
    )
    for aid, name in ASSIGNMENTS.items():
        path = root / "assignments" / aid / f"{name}.ipynb"
        nb = fill_answers(path, REPO / "solutions" / aid / f"{name}.ipynb")
        nb.cells.insert(0, check)
        NotebookClient(
            nb,
            timeout=600,
            kernel_name="bundle",
            resources={"metadata": {"path": str(path.parent)}},
            extra_arguments=["--IPKernelApp.capture_fd_output=False"],
        ).execute()
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{aid}: {errors[0]['ename']}: {errors[0]['evalue']}"
