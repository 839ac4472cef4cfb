"""The student bundle (``python -m course bundle``): what students get, and that it works on its own.

The tests here build bundles with a stand-in model file: their contents, and that one installs in a fresh virtual
environment where the kit is NOT installed (``tests/bundle_venv.py``) and resolves the kit from itself alone.
Running every notebook from the bundle is part of the browser tests (``tests/test_browser.py``): JupyterLab runs
each one with the bundle's kernel, so one run checks both the bundle and the widgets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from bundle_venv import KERNEL, install_bundle
from conftest import REPO
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


@pytest.mark.slow  # a venv and a pip install: about 5 s
def test_the_bundle_installs_alone_in_a_fresh_venv_and_imports_the_kit_from_itself(tmp_path):
    model = tmp_path / "stand-in.keras"
    model.write_bytes(b"a trained model file")
    installed = install_bundle(build_bundle(tmp_path / "student.zip", fallback_model=model), tmp_path)
    env = installed.env(dict(os.environ))
    probe = subprocess.run(
        [str(installed.python), "-c", "import course.demo"], env=env, cwd=installed.root, capture_output=True, text=True
    )
    assert probe.returncode != 0 and "No module named 'course.demo'" in probe.stderr, (
        f"expected the instructor's course.demo missing from the bundle, found: {probe.stderr[-500:]}"
    )
    check = subprocess.run(
        [str(installed.python), "-c", installed.origin_check() + "import data_loaders, widgets\nprint('ok')"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert check.stdout.strip() == "ok", f"expected the kit imported from the bundle alone, found: {check.stderr}"
    spec = json.loads((installed.jupyter_path / "kernels" / KERNEL / "kernel.json").read_text())
    assert spec["argv"][0] == str(installed.python), f"expected the bundle's python in its kernelspec, found {spec}"


@pytest.mark.slow  # generates the synthetic faces into a fresh cache (about 15 s)
def test_the_fallback_model_has_one_cache_path_before_and_after_its_data_is_cached(tmp_path, monkeypatch):
    """Regression: the key hashed the data's description, which reads differently once the parsed data is cached,
    so a machine's first run trained one fallback model and every later run another."""
    import course.fallback_model as fm

    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FER2013_PATH", "synthetic")
    first, again = fm.cached_path(), fm.cached_path()  # the first parses (and caches) the data, the second reads it
    assert first == again, f"expected one cache path for the same data, found {first.name} and then {again.name}"


def test_one_process_trains_the_fallback_model_while_the_others_wait(tmp_path, monkeypatch):
    import threading

    import course.fallback_model as fm
    import course.fallback_training as ft

    path = tmp_path / "fallback.keras"
    monkeypatch.setattr(fm, "SHIPPED", tmp_path / "absent.keras")
    monkeypatch.setattr(fm, "cached_path", lambda: path)
    trained = []

    def slow_training(data, out, verbose=True):
        trained.append(out)
        threading.Event().wait(0.5)  # long enough for the other caller to arrive while this one trains
        out.write_bytes(b"trained")
        return out

    monkeypatch.setattr(ft, "train_fallback_model_2", slow_training)
    monkeypatch.setattr("data_loaders.load_fer2013", lambda: None)
    found = []
    callers = [threading.Thread(target=lambda: found.append(fm.fallback_model_2(verbose=False))) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert trained == [path] and found == [path, path], (
        f"expected one training and both callers given its file, found trainings {trained} and answers {found}"
    )
