"""The kit installs as a wheel: every package and subpackage is in it, and it works without the repository.

The wheel is built from a copy of the tracked sources (nothing is written into the checkout), installed with
``--no-deps`` into a fresh virtual environment, and imported from a folder outside the repository. The fresh
environment reaches the kit's dependencies through a ``.pth`` line naming this environment's site-packages: a
path line in a ``.pth`` file does not run that folder's own ``.pth`` files, so the editable install of the
checkout is not visible there and every import must come from the wheel.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bundle_venv import fresh_venv
from conftest import REPO

pytestmark = pytest.mark.slow

PACKAGES = ("data_loaders", "widgets", "course")


def _tracked_sources(dest: Path) -> Path:
    """Copy the files git tracks that a wheel build reads (pyproject, README, the packages) into ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "pyproject.toml", "README.md", *PACKAGES],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name).read_bytes())
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = _tracked_sources(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    (built,) = out.glob("expression_lab-*.whl")
    return built


def test_the_wheel_holds_every_package_and_subpackage(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", *PACKAGES], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    missing = [f for f in tracked if f.endswith((".py", ".js", ".css", ".html")) and f not in names]
    assert not missing, f"expected every tracked module and front-end file in {wheel.name}; missing: {missing}"


@pytest.fixture(scope="module")
def fresh_python(wheel, tmp_path_factory) -> Path:
    python = fresh_venv(tmp_path_factory.mktemp("fresh"))  # the kit's dependencies borrowed, the kit not installed
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"installing {wheel.name} failed:\n{proc.stdout}\n{proc.stderr}"
    return python


IMPORT_ALL = """
import importlib, pkgutil, sys
failed = []
for top in ("data_loaders", "widgets", "course"):
    package = importlib.import_module(top)
    assert "site-packages" in package.__file__, f"{top} imported from {package.__file__}, not the wheel"
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        try:
            importlib.import_module(info.name)
        except Exception as err:  # report every module that fails, not just the first
            failed.append(f"{info.name}: {type(err).__name__}: {err}")
        print(info.name)
if failed:
    sys.exit("modules that do not import from the wheel:\\n" + "\\n".join(failed))
"""


def test_every_module_imports_from_the_installed_wheel(fresh_python, tmp_path):
    proc = subprocess.run(
        [str(fresh_python), "-c", IMPORT_ALL],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, f"expected every module to import; found:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    imported = proc.stdout.split()
    assert "data_loaders.synthetic.face_model" in imported, f"subpackage modules missing: {imported}"


def test_the_command_line_runs_from_the_installed_wheel(fresh_python, tmp_path):
    proc = subprocess.run(
        [str(fresh_python), "-m", "course", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0 and "demo" in proc.stdout, (
        f"expected `python -m course --help` to list the commands; exit {proc.returncode}:\n"
        f"{proc.stdout}\n{proc.stderr}"
    )


def test_every_subcommand_shows_examples_that_parse():
    """``python -m course SUB --help`` ends with examples, and each example is a valid command line."""
    import shlex

    from course.__main__ import COMMANDS, parser

    cli = parser()
    for name, (run, _, _, examples) in COMMANDS.items():
        assert examples, f"expected examples for {name}, found none"
        for example in examples:
            words = shlex.split(example)
            assert words[:3] == ["python", "-m", "course"], f"expected {example!r} to start with python -m course"
            args = cli.parse_args(words[3:])
            assert args.run is run, f"expected {example!r} to run {run.__name__}, found {args.run.__name__}"
