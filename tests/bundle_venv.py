"""The student bundle as a student installs it: unpacked, ``pip install -e .`` in a fresh virtual environment where
the kit is NOT installed, and a Jupyter kernel of that environment.

The venv borrows the third-party packages of the running environment through a ``.pth`` path line (which does not
run the kit's editable-install hook), so nothing is downloaded. ``tests/test_browser.py`` runs every notebook in
JupyterLab with this kernel: the notebooks then prove, in one run, that the bundle works on its own and that
their widgets work in a browser.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

#: The kernelspec name of the bundle's environment.
KERNEL = "bundle"


@dataclass(frozen=True)
class InstalledBundle:
    """``root``: the unpacked bundle (``expression-lab/``); ``python``: the venv's interpreter; ``jupyter_path``: a
    folder to put on ``JUPYTER_PATH`` (it holds the :data:`KERNEL` kernelspec)."""

    root: Path
    python: Path
    jupyter_path: Path

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with the bundle's kernelspec found and without ``PYTHONPATH`` (the kernel must not see the kit)."""
        env = {k: v for k, v in base.items() if k != "PYTHONPATH"}
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, (str(self.jupyter_path), base.get("JUPYTER_PATH"))))
        return env

    def origin_check(self) -> str:
        """The source of a cell that fails unless the kernel imports the kit from this bundle and finds no
        instructor module."""
        return (
            "import importlib.util, course\n"
            f"assert course.__file__.startswith({str(self.root)!r}), "
            "f'expected the kit imported from the bundle, found {course.__file__}'\n"
            "_instructor = [m for m in ('course.demo', 'course.evaluate') if importlib.util.find_spec(m)]\n"
            "assert not _instructor, f'expected no instructor module in the bundle, found {_instructor}'\n"
        )


def fresh_venv(tmp: Path) -> Path:
    """A new venv in ``tmp/venv`` that sees the running environment's third-party packages but not the kit."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    # a path line: that folder's own .pth files (the kit's editable finder among them) are not processed
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin" / "python"


def install_bundle(archive: Path, tmp: Path) -> InstalledBundle:
    """Unpack the bundle ``archive`` (a ``.zip`` from :func:`course.bundle.build_bundle`) into ``tmp``, install it
    in a fresh venv and write the kernelspec. Raises ``subprocess.CalledProcessError`` when pip fails."""
    shutil.unpack_archive(archive, tmp / "unpacked")
    root = tmp / "unpacked" / "expression-lab"
    python = fresh_venv(tmp)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-e", str(root)],
        check=True,
        env=env,
        cwd=tmp,
    )
    kernels = tmp / "jupyter" / "kernels" / KERNEL
    kernels.mkdir(parents=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "student bundle",
        "language": "python",
    }
    (kernels / "kernel.json").write_text(json.dumps(spec))
    return InstalledBundle(root, python, tmp / "jupyter")
