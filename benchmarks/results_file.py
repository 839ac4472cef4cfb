"""Where benchmark results go, and the fields every result file carries (benchmark name, CPU cores, Python)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def fer2013_named(data) -> str:
    """A FER2013-format dataset named by what it holds, never by where it lies on this machine (results are
    committed): ``"SYNTHETIC FACS faces"`` or ``"FER2013, 32,298 rows"``."""
    return "SYNTHETIC FACS faces" if data.description.startswith("SYNTHETIC") else f"FER2013, {len(data):,} rows"


def write_results(benchmark: str, out: str | Path | None = None, **fields) -> Path:
    """Write ``results/<benchmark>.json`` (or ``out``) with ``fields`` and the machine facts; print and return its
    path."""
    RESULTS.mkdir(exist_ok=True)
    out = Path(out) if out else RESULTS / f"{benchmark}.json"
    out.write_text(
        json.dumps(
            {"benchmark": benchmark, "cpu_count": os.cpu_count(), "python": platform.python_version(), **fields},
            indent=2,
        )
    )
    print(f"\nwrote {out}")
    return out


def parse_no_options(doc: str | None, argv: list[str] | None = None) -> None:
    """For a benchmark without options: ``--help`` prints the first paragraph of ``doc`` (its module docstring)
    and exits, and an unknown argument is an error, instead of starting a run."""
    import argparse

    description = (doc or "").strip().split("\n\n")[0]
    argparse.ArgumentParser(description=description).parse_args(argv)
