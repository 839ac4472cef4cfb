"""The layers of docs/architecture.md, checked on the source: what each package may import from the kit."""

from __future__ import annotations

import ast

import pytest

from conftest import REPO


def _kit_imports(package: str) -> list[tuple[str, str]]:
    """(module file, imported kit module) for every import of data_loaders/widgets/course inside ``package``."""
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [])
            found += [(str(path.relative_to(REPO)), n) for n in names
                      if n.split(".")[0] in ("data_loaders", "widgets", "course")]
    return found


@pytest.mark.parametrize("package, forbidden", [("data_loaders", ("widgets", "course")), ("widgets", ("course",))])
def test_lower_layers_never_import_higher_ones(package, forbidden):
    wrong = [(f, m) for f, m in _kit_imports(package) if m.split(".")[0] in forbidden]
    assert not wrong, f"expected {package}/ to import nothing from {forbidden}; found {wrong}"
