"""Benchmark set-up: time and disk size of a fresh virtual environment with the kit installed, for the default
packages (``tensorflow``, ``open3d``) and the lighter CPU-only builds (``tensorflow-cpu``, ``open3d-cpu``).

Usage::

    .venv/bin/python -m benchmarks.install_size [--variants default,cpu] [--no-cache]

Each variant: ``python -m venv`` in a temporary folder, then ``pip install`` of the kit's dependencies from
``pyproject.toml`` (with the test extra), then the kit itself (``--no-deps -e .``); measured: wall time of the
whole install, size of the environment on disk, and its three largest packages. The CPU-only variant swaps
``tensorflow`` → ``tensorflow-cpu`` and ``open3d`` → ``open3d-cpu`` (same import names; what
``EXPRESSION_LAB_CPU_ONLY=1 make …`` installs). pip's cache and any local wheel folder make later runs faster
than a first install on a new machine: ``--no-cache`` turns pip's cache off. Writes
``benchmarks/results/install_size.json``. Needs the package index (network).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results_file import write_results
from scripts.requirements import requirements

REPO = Path(__file__).resolve().parents[1]


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def largest_packages(site: Path, n: int = 3) -> list[tuple[str, int]]:
    sizes = [(p.name, folder_bytes(p)) for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info")]
    return sorted(sizes, key=lambda kv: -kv[1])[:n]


def install(variant: str, no_cache: bool) -> dict:
    venv = Path(tempfile.mkdtemp(prefix=f"expression-lab-venv-{variant}-"))
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    if no_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    start = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(pip + requirements(variant == "cpu"), check=True, env=env)
        subprocess.run(pip + ["--no-deps", "-e", str(REPO)], check=True, env=env)
        seconds = time.perf_counter() - start
        site = next((venv / "lib").glob("python3*/site-packages"))
        return {
            "step": f"fresh venv + kit ({variant})",
            "seconds": round(seconds, 1),
            "size_mb": round(folder_bytes(venv) / 1e6),
            "largest": [[name, round(size / 1e6)] for name, size in largest_packages(site)],
        }
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="default,cpu", help="comma-separated: default, cpu")
    parser.add_argument("--no-cache", action="store_true", help="turn pip's download cache off")
    args = parser.parse_args(argv)
    rows = []
    for variant in args.variants.split(","):
        if variant not in ("default", "cpu"):
            parser.error(f"unknown variant {variant!r}: use default or cpu")
        rows.append(install(variant, args.no_cache))
        print(f"{rows[-1]['step']}: {rows[-1]['seconds']:.0f} s, {rows[-1]['size_mb']:,} MB", flush=True)
    print(f"\n{'variant':<34}{'seconds':>9}{'MB':>8}  largest packages (MB)")
    for r in rows:
        print(
            f"{r['step']:<34}{r['seconds']:>9.0f}{r['size_mb']:>8,}  "
            + ", ".join(f"{name} {mb:,}" for name, mb in r["largest"])
        )
    for r in rows:  # the summary table's columns
        r["note"] = f"{r['size_mb']:,} MB on disk; largest: " + ", ".join(f"{n} {mb:,} MB" for n, mb in r["largest"])
    write_results("install_size", pip_cache=not args.no_cache, results=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
