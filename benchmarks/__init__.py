"""Benchmarks of the kit: run one as ``.venv/bin/python -m benchmarks.NAME`` from the repository root."""
