"""Benchmark: FER2013 first parse vs cached load (goal: cached ≤ 3 s).

Usage: ``FER2013_PATH=/path/to/fer2013.csv[.gz] .venv/bin/python -m benchmarks.fer2013_loading``
Prints a table and writes ``benchmarks/results/fer2013_loading.json``. Uses a fresh cache folder so the first
load really parses.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results_file import parse_no_options, write_results


def main(argv: list[str] | None = None) -> int:
    parse_no_options(__doc__, argv)
    path = os.environ.get("FER2013_PATH")
    if not path:
        print("set FER2013_PATH to a FER2013 file to run this benchmark", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as cache:
        os.environ["EXPRESSION_LAB_CACHE"] = cache
        from data_loaders import load_fer2013

        rows = []
        for label in ("first load (parse + validate + cache)", "cached load", "cached load again"):
            start = time.perf_counter()
            data = load_fer2013(path)
            rows.append({"step": label, "seconds": round(time.perf_counter() - start, 3), "rows": len(data)})
    size_mb = Path(path).stat().st_size / 1e6
    print(f"FER2013 loading · {path} ({size_mb:.0f} MB on disk) · {os.cpu_count()} CPU cores\n")
    print(f"{'step':<42}{'seconds':>9}{'rows':>9}")
    for r in rows:
        print(f"{r['step']:<42}{r['seconds']:>9.2f}{r['rows']:>9,}")
    write_results("fer2013_loading", file=path, file_mb=round(size_mb, 1), results=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
