"""Every setting declared once (``data_loaders/settings.py``, ``course/settings.py``): the README's table is the
one generated from the declarations, the kit reads no variable declared nowhere and never retypes a declared name,
and what the declarations say (readers, defaults, what the sandbox passes) matches the code."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO
from course import sandbox, settings, submission_files
from data_loaders import settings as data_settings
from data_loaders.settings import Setting

KIT_PACKAGES = ("course", "data_loaders", "widgets")
SETTINGS_MODULES = ("data_loaders/settings.py", "course/settings.py")
DECLARED = {s.name: s for s in settings.all_settings()}
OTHER_PROGRAMS = {v.name for v in settings.OTHER_PROGRAMS_VARIABLES}
#: Words that look like settings but are not: (word, what it is).
NOT_SETTINGS = {"EXPRESSION_LAB_MODEL_SCORE": "the prefix of course.model_scoring's result line"}


def _kit_files() -> list[Path]:
    return sorted(p for package in KIT_PACKAGES for p in (REPO / package).rglob("*.py"))


def _repository_files() -> list[Path]:
    """The files git tracks or would track (untracked, not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [REPO / name for name in sorted(set(out.split("\0"))) if name and (REPO / name).is_file()]


def _is_environ(node: ast.AST) -> bool:
    """``os.environ``, or ``env`` (the kit's name for an environment passed in, ``os.environ`` by default)."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "env"
    )


def _key(node: ast.AST) -> str | None:
    """The variable a read names: a string constant, or a declared constant's ``.name``; None for a variable."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and node.attr == "name" and isinstance(node.value, ast.Name):
        return f"<constant {node.value.id}>" if node.value.id.isupper() else None
    return None


def environment_reads(path: Path) -> list[tuple[int, str]]:
    """(line, variable) of each read of an environment variable in ``path``: ``os.environ[K]``,
    ``os.environ.get(K)`` (also ``setdefault``, ``pop``), ``os.getenv(K)``, the same on ``env``, and
    ``SETTING.read()``; K as written (a string, or ``<constant NAME>`` for ``NAME.name``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        key = None
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            key = _key(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func, receiver = node.func, node.func.value
            if func.attr in ("get", "setdefault", "pop") and _is_environ(receiver) and node.args:
                key = _key(node.args[0])
            elif func.attr == "getenv" and isinstance(receiver, ast.Name) and receiver.id == "os" and node.args:
                key = _key(node.args[0])
            elif func.attr == "read" and isinstance(receiver, ast.Name) and receiver.id.isupper():
                key = f"<constant {receiver.id}>"
        if key is not None:
            found.append((node.lineno, key))
    return found


def test_the_readme_table_is_the_one_generated_from_the_declarations():
    readme = (REPO / "README.md").read_text()
    assert settings.readme_table(readme) == settings.settings_table(), (
        "expected README.md's settings table to be the one generated from data_loaders/settings.py and "
        "course/settings.py; found it differs: run `.venv/bin/python -m course.settings --write`"
    )


def test_the_table_is_rewritten_between_its_markers(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Kit\n\n{settings.README_BEGIN}\n| stale |\n{settings.README_END}\n\n## Tests\n")
    assert settings.main(["--write", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert settings.readme_table(text) == settings.settings_table(), f"expected the table rewritten, found {text!r}"
    assert text.startswith("# Kit\n\n") and text.endswith(f"{settings.README_END}\n\n## Tests\n"), (
        f"expected the text around the markers kept, found {text!r}"
    )
    readme.write_text("# Kit without markers\n")
    with pytest.raises(ValueError, match="settings table"):
        settings.main(["--write", "--readme", str(readme)])
    settings.main([])
    assert "| `FER2013_PATH` |" in capsys.readouterr().out, "expected the table printed without --write"


def test_every_variable_a_kit_module_reads_is_declared():
    """A kit module reads only declared settings (through their constants) and the listed variables of other
    programs; a declared name written out as a string would drift from its declaration."""
    constants = {
        name
        for module in (settings, data_settings)
        for name, value in vars(module).items()
        if isinstance(value, Setting)
    }
    reads, wrong = {}, []
    for path in _kit_files():
        where = str(path.relative_to(REPO))
        for line, key in environment_reads(path):
            reads.setdefault(where, set()).add(key)
            if key.startswith("<constant "):
                if key[len("<constant ") : -1] not in constants:
                    wrong.append(f"{where}:{line}: {key} is not a declared setting")
            elif key in DECLARED and where not in SETTINGS_MODULES:
                wrong.append(f"{where}:{line}: {key!r} retyped; use the declared constant")
            elif key not in DECLARED and key not in OTHER_PROGRAMS:
                wrong.append(f"{where}:{line}: {key!r} is declared nowhere")
    assert not wrong, (
        "expected every environment variable the kit reads declared (data_loaders/settings.py, course/settings.py, "
        f"or course.settings.OTHER_PROGRAMS_VARIABLES) and read through its constant; found {wrong}"
    )
    for where, key in [
        ("data_loaders/cache.py", "<constant EXPRESSION_LAB_CACHE>"),
        ("course/cpu.py", "TF_ENABLE_ONEDNN_OPTS"),
        ("course/sandbox.py", "<constant EXPRESSION_LAB_SANDBOX_SLOT>"),
    ]:
        assert key in reads.get(where, set()), f"expected the scan to find {key} read in {where}; found {reads}"


def test_no_kit_module_writes_out_a_declared_name():
    """Setting or passing on a variable uses the constant too (``env[EXPRESSION_LAB_SANDBOX_SLOT.name] = …``)."""
    wrong = []
    for path in _kit_files():
        where = str(path.relative_to(REPO))
        if where in SETTINGS_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text(), where)):
            if isinstance(node, ast.Constant) and node.value in DECLARED:
                wrong.append(f"{where}:{node.lineno}: {node.value!r}")
            elif isinstance(node, ast.keyword) and node.arg in DECLARED:
                wrong.append(f"{where}:{node.lineno}: {node.arg}=…")
    assert not wrong, f"expected declared names only through their constants in the kit; found {wrong}"


def test_each_declaration_is_complete_and_its_readers_exist():
    declared = [s.name for s in settings.all_settings()]
    assert len(declared) == len(set(declared)), f"expected each setting declared once, found {sorted(declared)}"
    for module, path in ((data_settings, "data_loaders/settings.py"), (settings, "course/settings.py")):
        for name, value in vars(module).items():
            if isinstance(value, Setting):
                assert value.name == name, f"{path}: expected the constant {name} to declare {name}, found {value.name}"
                assert DECLARED.get(name) is value, f"{path}: expected {name} in course.settings.all_settings()"
    for s in settings.all_settings():
        assert s.help.endswith(".") and s.readers, f"{s.name}: expected a sentence of help and readers, found {s}"
        # a reader names the setting, or the collection it reads it from (``SANDBOX_LIMITS``)
        names = [s.name, *(k for k, v in vars(settings).items() if isinstance(v, dict) and s in v.values())]
        for reader in s.readers:
            where = reader.partition(" ")[0]
            matches = [p for p in REPO.glob(where)] if "*" in where else [REPO / where]
            files = [f for m in matches for f in ([m] if m.is_file() else sorted(m.rglob("*")) if m.is_dir() else [])]
            assert any(n in f.read_text(errors="ignore") for f in files if f.is_file() for n in names), (
                f"{s.name}: expected its reader {reader!r} to exist and mention it; found {[str(m) for m in matches]}"
            )


def test_the_classes_built_from_settings_match_their_declarations():
    for cls, declared in ((sandbox.Limits, settings.SANDBOX_LIMITS), (submission_files.Caps, settings.SUBMISSION_CAPS)):
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        assert fields == {k: s.default for k, s in declared.items()}, (
            f"expected {cls.__name__}'s fields and defaults to be the declared {declared}; found {fields}"
        )
    uid = settings.EXPRESSION_LAB_SANDBOX_UID.default
    assert str(sandbox.SANDBOX_UID) in uid, f"expected the sandbox's first user id in {uid!r}"


def test_the_sandbox_passes_exactly_the_variables_marked_so():
    passed = set(sandbox.PASSED_VARIABLES)
    marked = {v.name for v in (*settings.all_settings(), *settings.OTHER_PROGRAMS_VARIABLES) if v.passed_to_sandbox}
    assert passed == marked, f"expected the sandbox to pass {sorted(marked)}; found {sorted(passed)}"
    loaders = {s.name for s in data_settings.DATA_SETTINGS if s.passed_to_sandbox}
    assert loaders | {settings.MODEL_2_PATH.name} <= set(sandbox.DATA_VARIABLES), (
        f"expected every data path a notebook reads bound into the sandbox; found {sandbox.DATA_VARIABLES}"
    )
    kept_out = [
        s.name for title, _, group in settings.SECTIONS if title != "Data" and title != "Notebooks" for s in group
    ]
    assert not passed & set(kept_out), f"expected the grader's own settings kept out of the sandbox; found {passed}"
    assert data_settings.EXPRESSION_LAB_CACHE.name not in passed, "expected the sandbox to set its own cache"


def test_every_expression_lab_name_in_the_repository_is_declared():
    """Docs, tests, scripts and notebooks name only declared settings (a typo or a new variable fails here)."""
    wrong = []
    for path in _repository_files():
        if path.suffix in (".png", ".jpg", ".gz", ".zip", ".keras", ".npz", ".mp4", ".db") or path.stat().st_size > 5e6:
            continue
        for word in set(re.findall(r"\bEXPRESSION_LAB_[A-Z0-9_]+", path.read_text(errors="ignore"))):
            known = (
                any(name.startswith(word) for name in DECLARED) if word.endswith("_") else word in DECLARED
            ) or word in NOT_SETTINGS
            if not known:
                wrong.append(f"{path.relative_to(REPO)}: {word}")
    assert not wrong, f"expected only declared settings named in the repository; found {sorted(wrong)}"


def test_readers_outside_the_kit_use_the_declared_defaults():
    """Files that cannot import the kit (the hub's config, shell scripts) or do not (tests) spell a default out;
    it must be the declared one."""
    wrong = []
    for path in _repository_files():
        where = str(path.relative_to(REPO))
        if path.suffix == ".py":
            for node in ast.walk(ast.parse(path.read_text(), where)):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("get", "getenv")
                    and len(node.args) == 2
                    and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
                    and node.args[0].value in DECLARED
                ):
                    name, default = node.args[0].value, node.args[1].value
                    if default not in str(DECLARED[name].default):
                        wrong.append(f"{where}:{node.lineno}: {name} defaults to {default!r}")
        elif path.suffix == ".sh":
            for name, default in re.findall(r"\$\{([A-Z0-9_]+):-([^}]*)\}", path.read_text()):
                if name in DECLARED and default not in str(DECLARED[name].default):
                    wrong.append(f"{where}: {name} defaults to {default!r}")
    assert not wrong, f"expected the declared defaults (course/settings.py) wherever one is spelt out; found {wrong}"
