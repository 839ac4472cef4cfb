"""Print the kit's pip requirements (dependencies + test extra from pyproject.toml), one per line.

``--cpu-only`` swaps in the lighter CPU-only builds with the same import names: ``tensorflow`` →
``tensorflow-cpu``, ``open3d`` → ``open3d-cpu``. Used by ``scripts/bootstrap.sh`` when
``EXPRESSION_LAB_CPU_ONLY=1`` and by ``benchmarks/install_size.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: pip's vendored copy of the same parser
    from pip._vendor import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
CPU_ONLY = {"tensorflow": "tensorflow-cpu", "open3d": "open3d-cpu"}


def requirements(cpu_only: bool = False) -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["test"]
    if not cpu_only:
        return reqs
    out = []
    for req in reqs:
        name = re.match(r"[A-Za-z0-9_.-]+", req).group(0)
        out.append(CPU_ONLY[name] + req[len(name) :] if name in CPU_ONLY else req)
    return out


if __name__ == "__main__":
    print("\n".join(requirements("--cpu-only" in sys.argv[1:])))
