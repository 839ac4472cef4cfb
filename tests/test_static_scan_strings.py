"""The static scan reads code hidden in strings, and flags the modules that run code given as a string or a file.

The attack (a hostile submission): an answer cell runs ``timeit.timeit("<payload>", number=1,
globals=globals())`` where the payload finds the grading guard in ``sys.modules``, replaces its functions, sets a
custom exception handler and registers a ``post_run_cell`` hook, all inside a string. The scan visited names and
attributes only, so it reported nothing: not the import of ``timeit`` (nor of ``runpy``, ``cProfile``, ``pdb``,
``doctest``, …), not what the string holds. ``%timeit -n1 -r1 <payload>`` hid it the same way (the options made the
magic's argument unparsable).

Fast: :func:`course.static_scan.scan_source` on small sources, no kernel.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path

import nbformat
import pytest

from course import static_scan
from course.static_scan import scan_source

REPO = Path(__file__).resolve().parents[1]

#: The hostile payload (a guard found through sys.modules, its functions replaced, failures swallowed).
HIJACK_CODE = r"""
import sys as s
g = [m for n, m in list(s.modules.items()) if n.startswith("_expression_lab_guard_")][0]
S = g.SECRET
g.restore = lambda: repr({"secret": S, "undone": [], "notes": []})
g.check = lambda nonce, hidden: repr({"secret": S, "reached": True, "in_cell": [], "notes": []})
ip = get_ipython()
ip.set_custom_exc((BaseException,), lambda *a, **k: None)
def _clear(result):
    result.error_in_exec = None
ip.events.register("post_run_cell", _clear)
"""
HIJACK_CELL = (
    f"def double(x):\n    return x\n\nimport timeit\ntimeit.timeit({HIJACK_CODE!r}, number=1, globals=globals())\n"
)
MINIMAL_CELL = (
    "import timeit\n"
    "timeit.timeit(\"import sys; g = sys.modules['x']; get_ipython().set_custom_exc((Exception,), h)\", "
    "number=1, globals=globals())\n"
)


def _found(source: str) -> set[tuple[int, str]]:
    """{(line, what up to its explanation)} of the findings in ``source``."""
    return {(f.line, f.what.rsplit(": ", 1)[0]) for f in scan_source(source, "cell")}


def _whats(source: str) -> list[str]:
    return [str(f) for f in scan_source(source, "cell")]


# --- the attack --------------------------------------------------------------------------------------------------


def test_the_timeit_payload_is_flagged_for_its_import_and_its_string():
    found = _found(MINIMAL_CELL)
    expected = {
        (1, "imports timeit"),
        (2, "in a string: uses sys.modules"),
        (2, "in a string: uses get_ipython"),
        (2, "in a string: uses .set_custom_exc"),
    }
    assert expected <= found, f"expected {sorted(expected - found)} among the findings, found {sorted(found)}"


def test_the_red_team_cell_is_flagged_for_every_means_in_its_string():
    found = _found(HIJACK_CELL)
    expected = {
        (4, "imports timeit"),
        (5, "in a string: uses sys.modules"),
        (5, "in a string: uses get_ipython"),
        (5, "in a string: uses .set_custom_exc"),
        (5, "in a string: uses events.register"),
    }
    assert expected <= found, f"expected {sorted(expected - found)} among the findings, found {sorted(found)}"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("%timeit -n1 -r1 get_ipython().set_custom_exc((E,), h)", (1, "uses .set_custom_exc")),
        ("%timeit -n 1 -r 1 import sys; sys.modules['g'].check = f", (1, "uses sys.modules")),
        ("%prun -s cumulative -q import ctypes", (1, "imports ctypes")),
        ("%%timeit -n1 -r1 import ctypes\nx = 1\n", (2, "imports ctypes")),
    ],
)
def test_a_magics_code_is_scanned_past_its_options(source, expected):
    found = _found(source)
    assert expected in found, f"expected {expected} for {source!r}, found {sorted(found)}"


# --- the modules that run code given as a string or a file ---------------------------------------------------------

NEW_MODULES = [
    "timeit",
    "runpy",
    "profile",
    "cProfile",
    "_lsprof",
    "pdb",
    "bdb",
    "trace",
    "doctest",
    "pydoc",
    "site",
    "zipimport",
    "pkgutil",
    "rlcompleter",
    "idlelib",
]


@pytest.mark.parametrize("module", NEW_MODULES)
@pytest.mark.parametrize("form", ["import {m}", "import {m} as alias", "from {m} import run"])
def test_an_import_of_a_module_that_runs_code_from_a_string_or_file_is_flagged(module, form):
    source = form.format(m=module)
    whats = _whats(source)
    assert any(f"imports {module}" in w for w in whats), f"expected 'imports {module}' for {source!r}, found {whats}"


@pytest.mark.parametrize(
    "source", ["import logging.config", "from logging import config", "from logging.config import dictConfig"]
)
def test_logging_config_is_flagged_but_logging_is_not(source):
    whats = _whats(source)
    assert any("imports logging.config" in w for w in whats), f"expected logging.config for {source!r}, found {whats}"
    assert not _whats("import logging\nlogging.getLogger('x').info('loss %.3f', 0.5)\n"), (
        f"expected no finding for plain logging, found {_whats('import logging')}"
    )


@pytest.mark.parametrize(
    "source, expected",
    [
        ('import cProfile\ncProfile.run("import sys; sys.settrace(f)")\n', (2, "in a string: uses .settrace")),
        (
            "import profile\nprofile.runctx(\"get_ipython().events.register('post_run_cell', f)\", globals(), {})\n",
            (2, "in a string: uses events.register"),
        ),
        ('import pdb\npdb.run("import builtins; builtins.len = f")\n', (2, "in a string: imports builtins")),
        ('import runpy\nrunpy.run_path("helper.py")\n', (1, "imports runpy")),
        ('from runpy import run_module\nrun_module("helper")\n', (1, "imports runpy")),
        ("import doctest\ndoctest.run_docstring_examples(f, globals())\n", (1, "imports doctest")),
        ('import site\nsite.addsitedir(".")\n', (1, "imports site")),
    ],
)
def test_code_handed_to_a_runner_is_flagged(source, expected):
    found = _found(source)
    assert expected in found, f"expected {expected} for {source!r}, found {sorted(found)}"


# --- strings as code -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        ('x = b"import ctypes; ctypes.CDLL(None)"\n', (1, "in a string: imports ctypes")),
        (
            'def f():\n    """\n    import sys\n    sys.modules["g"].check = None\n    """\n',
            (2, "in a string: uses sys.modules"),
        ),
        ('def f():\n    """Double x.\n\n    >>> eval("2")\n    """\n', (2, "in a string: uses eval")),
        ('code = f"import ctypes; {x}"\n', (1, "in a string: imports ctypes")),
        ('import sys\nf = getattr(sys, "settrace")\n', (2, "in a string: names settrace")),
        ('b = globals()["__builtins__"]\n', (1, "in a string: names __builtins__")),
        ('import sys\nm = getattr(sys, "modules")\n', (2, 'calls getattr(…, "modules")')),
    ],
)
def test_code_in_a_string_is_scanned(source, expected):
    found = _found(source)
    assert expected in found, f"expected {expected} for {source!r}, found {sorted(found)}"


def test_a_string_inside_a_string_is_scanned_and_deeper_ones_are_a_finding():
    source = "import timeit\ntimeit.timeit(\"exec('import ctypes')\")\n"
    found = _found(source)
    expected = {(2, "in a string: uses exec"), (2, "in a string: in a string: imports ctypes")}
    assert expected <= found, f"expected {sorted(expected - found)} among the findings, found {sorted(found)}"
    code = "import ctypes"
    for _ in range(static_scan.MAX_STRING_DEPTH + 2):
        code = f"exec({code!r})"
    whats = _whats(code)
    assert any("nested more than" in w for w in whats), f"expected a finding for strings nested deep, found {whats}"


def _timed(source: str) -> tuple[list[str], float]:
    start = time.perf_counter()
    whats = _whats(source)
    return whats, time.perf_counter() - start


def test_pathological_strings_finish_quickly():
    big, seconds = _timed('x = "' + "a.b(" * 2_500_000 + '"\n')  # 10 MB that could hold code
    assert any("too long to scan as code" in w for w in big) and seconds < 20, (
        f"expected a 10 MB string flagged as too long within 20 s, found {big} in {seconds:.1f} s"
    )
    plain, seconds = _timed('x = "' + "a" * 10_000_000 + '"\n')  # 10 MB of no code
    assert not plain and seconds < 20, f"expected no finding within 20 s, found {plain} in {seconds:.1f} s"
    code = "x = 1"
    for _ in range(12):  # each repr doubles the backslashes: 12 deep is about 100 kB
        code = f"exec({code!r})"
    nested, seconds = _timed(code)
    assert any("nested more than" in w for w in nested) and seconds < 5, (
        f"expected strings 12 deep flagged within 5 s, found {nested[-1:]} in {seconds:.1f} s"
    )
    deep, seconds = _timed('x = "' + "a.b+" * 20_000 + 'a"\n')  # too deep for Python's parser
    assert any("nested too deeply" in w for w in deep) and seconds < 5, (
        f"expected a string too deep to parse flagged within 5 s, found {deep} in {seconds:.1f} s"
    )
    many, seconds = _timed("x = [" + ", ".join(['"a.b(c)"'] * 30_000) + "]\n")
    assert any("strings that hold code" in w for w in many) and seconds < 20, (
        f"expected 30,000 code strings cut at {static_scan.MAX_CODE_STRINGS:,} within 20 s, "
        f"found {many} in {seconds:.1f} s"
    )


def test_code_too_deep_for_the_parser_is_a_finding_not_a_crash():
    whats = _whats("x = " + "+".join(["a"] * 100_000) + "\n")
    assert any("nested too deeply" in w for w in whats), f"expected a finding, not an exception; found {whats}"


# --- fair code -------------------------------------------------------------------------------------------------

FAIR_CELL = '''
import numpy as np
from tensorflow import keras

def accuracy(y, p):
    """Share of faces whose predicted class is the label.

    >>> accuracy(np.array([1, 2]), np.array([1, 0]))
    0.5
    >>> f(2)
    4
    """
    return float(np.mean(y == p))

model = keras.Sequential([keras.layers.Dense(7, activation="relu", name="dense_1")], name="model_2")
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.save("model_2.keras")
path = "data/fer2013.csv"
x = 0.652
print(f"{x:.1%}", "{:.2f}".format(x), "eval", "compile", "exec", "compile and fit")
print("relu (capped or leaky)", "P(Happy)", "model_2 (CNN)", "a=1, b=2", "see model.fit(x, y)")
hint = "call model.compile(optimizer='adam') first"
%timeit -n3 -r2 np.mean(np.arange(10))
%time accuracy(np.array([1]), np.array([1]))
'''


def test_fair_strings_give_no_finding():
    whats = _whats(FAIR_CELL)
    assert not whats, f"expected no finding in fair code, found {whats}"


def test_no_string_in_the_solution_notebooks_is_flagged():
    """Every code cell of every solution notebook (answers, instructor and test cells) has no string flagged."""
    flagged, strings = [], 0
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        modules = static_scan.notebook_modules(nb)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse(static_scan._python(cell.source))
            except SyntaxError:
                continue
            strings += sum(isinstance(n, ast.Constant) and isinstance(n.value, str) for n in ast.walk(tree))
            flagged += [
                f"{path.name} cell {index + 1}: {f}"
                for f in scan_source(cell.source, "cell", modules=modules)
                if "string" in f.what
            ]
    assert strings > 500, f"expected the strings of six notebooks, found {strings}"
    assert not flagged, f"expected no string flagged in the solutions, found {flagged}"


@pytest.mark.parametrize(
    "code, expected",
    [
        ("import posix\nposix.system('id')\n", "imports posix"),
        ("import multiprocessing\n", "imports multiprocessing"),
        ("from concurrent.futures import ThreadPoolExecutor\n", "imports concurrent.futures"),
        ("import sys\nsys.addaudithook(print)\n", "addaudithook"),
        ("import sys\nsys.monitoring.use_tool_id(1, 'x')\n", "sys.monitoring"),
        ("import numpy as np\nlib = np.ctypeslib.load_library('libc', '/lib')\n", "ctypeslib"),
    ],
)
def test_other_routes_to_the_interpreter_and_the_system_are_flagged(code, expected):
    found = [f.what for f in scan_source(code, "cell")]
    assert any(expected in what for what in found), f"expected a finding naming {expected!r}, found {found}"


@pytest.mark.parametrize(
    "code",
    [
        "import sys\nmods = vars(sys)['modules']\n",
        "import sys\nmods = sys.__dict__['modules']\n",
        "import operator, sys\nmods = operator.attrgetter('modules')(sys)\n",
        "from operator import attrgetter\nimport sys\nmods = attrgetter('modules.numpy')(sys)\n",
    ],
)
def test_the_loaded_modules_reached_without_naming_sys_modules_are_flagged(code):
    found = [f.what for f in scan_source(code, "cell")]
    assert any("loaded modules" in what for what in found), f"expected a finding on the loaded modules, found {found}"
