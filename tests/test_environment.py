"""pyproject.toml and environment.yml declare the same dependencies."""

from __future__ import annotations

import tomllib
import yaml

from conftest import REPO


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    declared = {d for d in pip_section if not d.startswith("-e")}
    assert declared == wanted, (
        f"only in environment.yml: {sorted(declared - wanted)}; only in pyproject.toml: {sorted(wanted - declared)}"
    )
    assert "-e ." in pip_section, "environment.yml must install the kit itself"


def test_gitignore_keeps_data_and_grading_state_out():
    ignored = (REPO / ".gitignore").read_text().split()
    for entry in ("data/", "grading/", ".venv/", "*.keras"):
        assert entry in ignored
