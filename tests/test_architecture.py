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
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                else []
            )
            found += [
                (str(path.relative_to(REPO)), n)
                for n in names
                if n.split(".")[0] in ("data_loaders", "widgets", "course")
            ]
    return found


@pytest.mark.parametrize("package, forbidden", [("data_loaders", ("widgets", "course")), ("widgets", ("course",))])
def test_lower_layers_never_import_higher_ones(package, forbidden):
    wrong = [(f, m) for f, m in _kit_imports(package) if m.split(".")[0] in forbidden]
    assert not wrong, f"expected {package}/ to import nothing from {forbidden}; found {wrong}"


def _defined_names(tree: ast.AST) -> set[str]:
    """Names a module defines itself: functions, classes, assigned names and attributes (``self._x = …``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return names


#: Standard-library names that start with an underscore but are documented public API: ``os._exit`` is how a
#: forked child ends without running its parent's clean-up (Python's ``os`` documentation).
DOCUMENTED_UNDERSCORE_NAMES = {"os._exit"}


def _private_uses(path) -> list[str]:
    """Private names (``_x``) of other modules that ``path`` imports or reads: ``from m import _x`` and
    ``obj._x`` where this module does not define ``_x`` itself (``self``/``cls``/``super()`` excepted)."""
    tree = ast.parse(path.read_text(), str(path))
    own = _defined_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [f"line {node.lineno}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own:
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue  # an override calling the library method it overrides
            if ast.unparse(node) in DOCUMENTED_UNDERSCORE_NAMES:
                continue
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@pytest.mark.parametrize("package", ["data_loaders", "widgets", "course"])
def test_no_private_name_of_another_module_is_used(package):
    """Modules use each other's (and Keras') public names only: a private name may change without notice."""
    wrong = {
        str(path.relative_to(REPO)): uses
        for path in sorted((REPO / package).rglob("*.py"))
        if (uses := _private_uses(path))
    }
    assert not wrong, f"expected no private names of other modules used in {package}/; found {wrong}"


def _module_name(path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(packages=("data_loaders", "widgets", "course")) -> dict[str, set[str]]:
    """{kit module: the kit modules it imports anywhere in its file (at the top or inside a function)}."""
    paths = {_module_name(p): p for package in packages for p in (REPO / package).rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in paths}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                for alias in node.names:
                    found |= {f"{base}.{alias.name}"} & paths.keys() or {base} & paths.keys()
        graph[name] = found - {name}
    return graph


def test_no_import_cycles():
    """Kit modules import each other in one direction only (a cycle, even through an import inside a function,
    means two modules that cannot be understood or changed apart)."""
    import graphlib

    graph = _import_graph()
    assert graph.keys() >= {"course.autograde", "data_loaders.personal", "widgets.capture"}, (
        f"expected the kit's modules in the import graph, found {sorted(graph)}"
    )
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        pytest.fail(f"expected no import cycle between the kit's modules; found {' -> '.join(err.args[1])}")


def test_every_registered_solution_cell_exists():
    """The cells tests and benchmarks run (``course.notebook_cells.SOLUTION_CELLS``) are the notebooks' own."""
    from course.notebook_cells import SOLUTION_CELLS, sources_by_grade_id

    for name, (notebook, grade_ids) in SOLUTION_CELLS.items():
        have = list(sources_by_grade_id(REPO / "solutions" / notebook))
        missing = [g for g in grade_ids if g not in have]
        assert not missing, f"{name}: expected cells {missing} in solutions/{notebook}; it has {have}"
        order = [have.index(g) for g in grade_ids]
        assert order == sorted(order), f"{name}: expected {grade_ids} in the notebook's order; it has {have}"


def test_the_sandbox_launcher_starts_without_the_data_stack():
    """The grading sandbox's launcher (``python -P -m course.sandbox``, one per kernel nbgrader starts) needs only
    ``data_loaders.settings`` of the data loaders; the package imports its loaders on first use, so the launcher
    never loads pandas or numpy (they took it from 20 MB to 70 MB and added half a second to each kernel's start)."""
    import subprocess
    import sys

    code = (
        "import sys\nimport course.sandbox\nfrom course import cgroups, review, submission_files\n"
        "print(sorted(m for m in ('pandas', 'numpy', 'tensorflow', 'nbformat') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-P", "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"expected the launcher to import none of the data stack, found {out.stdout}"


def test_the_data_loaders_package_still_offers_every_public_name():
    import data_loaders

    missing = [name for name in data_loaders.__all__ if getattr(data_loaders, name, None) is None]
    assert not missing, f"expected every name of data_loaders.__all__ importable, found missing {missing}"
    assert set(data_loaders.__all__) <= set(dir(data_loaders)), "expected dir(data_loaders) to list __all__"
