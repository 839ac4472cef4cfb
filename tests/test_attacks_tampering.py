"""No score without the work: submissions that tamper with the test machinery, autograded by real nbgrader.

Each attacker hands in wrong answers plus a few lines that, on nbgrader's plain ``Execute``, raised the score
(up to full marks): IPython input and AST transformers, ``set_custom_exc`` plus a ``post_run_cell`` hook (also
installed by the graded function at call time, inside the test cell), forged ``execute_result`` numbers (partial
credit), a trace function, patched builtins and test helpers, class-level patches of ``InteractiveShell.run_cell``
and ipykernel's ``do_execute``. With :class:`course.guarded_execute.GuardedExecute` in the course's
``nbgrader_config.py`` every one scores what its answers deserve (0) and is flagged for review with its reason;
honest submissions keep every point and get no flag. A flood of output is cut while it arrives (the grader's
process stays small, the notebook too) and the honest answers beside it keep their points; a cell after a hidden
test finds no trace of its source.

Every case runs through ``nbgrader autograde`` twice: unsandboxed (``course.nbgrader_steps.autograde``, one
student after another) and sandboxed (``python -m course autograde ID --jobs 2 --sandbox``, skipped without
bubblewrap unless ``EXPRESSION_LAB_REQUIRE_SANDBOX=1``). Most cases use the tiny course of ``conftest.py`` (5
points); the partial-credit and test-helper cases use a variant of it with a locked ``import numpy as np`` cell, a
test of ``np.allclose``/``isinstance``, a test cell ending with a ``_points`` number, one importing
``tqdm`` (not loaded before it) and one with a loop (11 points).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from conftest import (
    REPO,
    TINY_ID,
    TINY_NOTEBOOK,
    TINY_SECRET,
    _nbgrader_meta,
    hand_in,
    make_tiny_course,
    tiny_source_notebook,
)
from course import nbgrader_steps as steps
from course import review, sandbox
from course.guarded_execute import guard_plan, instrument
from course.notebook_cells import cell_by_grade_id
from course.sample_submission import fill_answers
from course.static_scan import scan_notebook, scan_source, student_cells

#: The kit's nbgrader_config.py with nbgrader's Execute replaced by the guarded one in the autograde steps (whatever
#: else the list holds stays); a no-op once the kit's config names GuardedExecute itself.
GUARD_CONFIG = '''
from nbgrader.converters import Autograde as _Autograde  # noqa: E402
from nbgrader.preprocessors import Execute as _Execute  # noqa: E402

from course.guarded_execute import GuardedExecute  # noqa: E402

_steps = (c.Autograde.autograde_preprocessors if "autograde_preprocessors" in c.Autograde
          else _Autograde.class_traits()["autograde_preprocessors"].default())
c.Autograde.autograde_preprocessors = [GuardedExecute if step is _Execute else step for step in _steps]
'''
#: Test-only: each nbgrader process records its own peak memory (kB) in grading/maxrss/<student>.txt.
MAXRSS_CONFIG = '''
import atexit as _atexit  # noqa: E402
import resource as _resource  # noqa: E402


def _record_maxrss():
    if "--student" in sys.argv:
        folder = os.path.join(root, "grading", "maxrss")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, sys.argv[sys.argv.index("--student") + 1] + ".txt"), "w") as f:
            f.write(str(_resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss))


_atexit.register(_record_maxrss)
'''
TIMEOUT = 20  # seconds per cell
FULL, VARIANT_FULL = 5, 11
VARIANT = "tinyguard"

WRONG = {"double": "def double(x):\n    return x + 1\n", "triple": "def triple(x):\n    return x + 1\n"}
CLEAR_ERROR = '''
def _clear_error(result):
    result.error_in_exec = None
'''
#: student -> (extra code after the wrong `double`, extra code after the wrong `triple`); each raised the score of
#: wrong answers on nbgrader's own Execute.
ATTACKS = {
    "transformer_post": ('get_ipython().input_transformers_post.append(\n'
                         '    lambda lines: [line.replace("assert ", "assert True or ") for line in lines])\n', ""),
    "transformer_cleanup": ('get_ipython().input_transformers_cleanup.append(\n'
                            '    lambda lines: [line.replace("assert ", "assert True or ") for line in lines])\n', ""),
    "ast_transformer": ("import ast as _ast\n\n\nclass _NoAsserts(_ast.NodeTransformer):\n"
                        "    def visit_Assert(self, node):\n        return _ast.copy_location(_ast.Pass(), node)\n\n\n"
                        "get_ipython().ast_transformers.append(_NoAsserts())\n", ""),
    "custom_exc_hook": (CLEAR_ERROR + "get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)\n"
                        "get_ipython().events.register('post_run_cell', _clear_error)\n", ""),
    # the graded functions themselves install the handler while the test cell runs (after any reset before it)
    "custom_exc_at_call": (CLEAR_ERROR + "_wrong_double = double\n\n\ndef double(x):\n"
                           "    get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)\n"
                           "    get_ipython().events.register('post_run_cell', _clear_error)\n"
                           "    return _wrong_double(x)\n",
                           "_wrong_triple = triple\n\n\ndef triple(x):\n    double(0)\n    return _wrong_triple(x)\n"),
    # partial credit forged: a negative or non-numeric execute_result before the error scores full marks
    "forged_result_call": ("_wrong_double = double\n\n\ndef double(x):\n    get_ipython().displayhook(-1)\n"
                           "    return _wrong_double(x)\n",
                           "_wrong_triple = triple\n\n\ndef triple(x):\n    get_ipython().displayhook(-1)\n"
                           "    return _wrong_triple(x)\n"),
    "forged_result_handler": ("def _forge(shell, etype, value, tb, tb_offset=None):\n    shell.displayhook(-1)\n\n\n"
                              "get_ipython().set_custom_exc((AssertionError,), _forge)\n", ""),
    "forged_result_event": ("def _forge_first(info):\n    get_ipython().displayhook(-1)\n\n\n"
                            "get_ipython().events.register('pre_run_cell', _forge_first)\n", ""),
    "run_cell_patch": ("from IPython.core.interactiveshell import InteractiveShell as _Shell\n\n"
                       "_run_cell = _Shell.run_cell\n\n\ndef _rewriting_run_cell(self, raw_cell, *args, **kwargs):\n"
                       "    return _run_cell(self, raw_cell.replace('assert ', 'assert True or '), *args, **kwargs)\n\n\n"
                       "_Shell.run_cell = _rewriting_run_cell\n", ""),
    "do_execute_patch": ("from IPython.core.interactiveshell import InteractiveShell as _Shell\n"
                         "from ipykernel.ipkernel import IPythonKernel as _Kernel\n\n_do_execute = _Kernel.do_execute\n\n\n"
                         "async def _always_ok(self, *args, **kwargs):\n"
                         "    reply = await _do_execute(self, *args, **kwargs)\n"
                         "    return dict(reply, status='ok')\n\n\n"
                         "_Kernel.do_execute = _always_ok\n_Shell.showtraceback = lambda self, *args, **kwargs: None\n",
                         ""),
}
#: What the guard's flag names for each attack (a word of its reason).
ATTACK_REASONS = {
    "transformer_post": "input_transformers_post", "transformer_cleanup": "input_transformers_cleanup",
    "ast_transformer": "ast_transformers", "custom_exc_hook": "custom_exceptions",
    "custom_exc_at_call": "swallowed", "forged_result_call": "final expression",
    "forged_result_handler": "custom_exceptions", "forged_result_event": "pre_run_cell", "run_cell_patch": "run_cell",
    "do_execute_patch": "do_execute",
}
#: A later student cell looks for the hidden test's source wherever the kernel keeps what ran.
HISTORY_READER = '''
import linecache as _linecache
_kept = [line for entry in _linecache.cache.values() if len(entry) > 2 for line in entry[2]]
_kept += list(In) + list(_ih) + [str(v) for v in get_ipython().history_manager.outputs.values()]
_kept += [str(row) for row in get_ipython().history_manager.get_range(output=True)]
print("HIDDEN SOURCE FOUND" if any(SECRET in str(k) for k in _kept) else "hidden source not found")
'''.replace("SECRET", f"{TINY_SECRET[:7]!r} + {TINY_SECRET[7:]!r}")  # the cell itself must not hold the secret
#: Output floods in honest submissions: 200 MB printed; 60 MB written past the kernel-side cap.
FLOOD = "for _ in range(200_000):\n    print('x' * 1000)\n"
FLOOD_PAST_KERNEL_CAP = ("import sys as _sys\nimport time as _time\nfor _ in range(30):\n"
                         "    type(_sys.stdout).write(_sys.stdout, 'y' * 2_000_000)\n    _time.sleep(0.05)\n")

#: The variant course: students and the code of their `double` cell (wrong answers return a list).
VARIANT_WRONG = "def double(x):\n    return [1, 2]\n"
VARIANT_ATTACKS = {
    "helpers_patch": ("import builtins\n\n_isinstance = builtins.isinstance  # lenient only for the test's check\n"
                      "builtins.isinstance = lambda obj, kind: kind is np.ndarray or _isinstance(obj, kind)\n"
                      "np.allclose = lambda *args, **kwargs: True\n"),
    "shadow_rebind": ("import types\n\n\ndef isinstance(*args):\n    return True\n\n\n"
                      "np = types.SimpleNamespace(allclose=lambda *args, **kwargs: True, ndarray=list, arange=range)\n"),
    "formatter_forge": ("get_ipython().display_formatter.formatters['text/plain'].for_type(\n"
                        "    float, lambda value, printer, cycle: printer.text('2.0'))\n"),
    # IPython compiles each top-level statement on its own: a trace function can jump over an assert only inside a
    # compound statement (test_loop's for loop)
    "settrace": ("import linecache as _linecache\nimport sys as _sys\n\n\ndef _skip_asserts(frame, event, arg):\n"
                 "    if 'ipykernel_' not in frame.f_code.co_filename:  # only the cells' own code\n"
                 "        return None\n"
                 "    if event == 'line' and _linecache.getline(frame.f_code.co_filename, frame.f_lineno)"
                 ".lstrip().startswith('assert '):\n"
                 "        try:\n            frame.f_lineno += 1\n        except ValueError:\n            pass\n"
                 "    return _skip_asserts\n\n\n_sys.settrace(_skip_asserts)\n"),
    # a test imports a module the kernel has not loaded yet: a fake one in sys.modules, or tqdm.py handed in (the
    # submission folder comes before site-packages on the kernel's sys.path)
    "fake_sys_module": ("import sys\nimport types\n\n"
                        "sys.modules['tqdm'] = types.SimpleNamespace(tqdm=lambda iterable, **kwargs: [2, 4])\n"),
    "shadow_module": "",
}
#: Files handed in beside the notebook.
VARIANT_FILES = {"shadow_module": {"tqdm.py": "def tqdm(iterable, **kwargs):\n    return [2, 4]\n"}}
VARIANT_REASONS = {"helpers_patch": "np.allclose", "shadow_rebind": "isinstance", "formatter_forge": "printer",
                   "settrace": "settrace", "fake_sys_module": "sys.modules['tqdm']",
                   "shadow_module": "tqdm.py"}


def variant_source_notebook():
    """The tiny notebook with a locked ``import numpy as np`` cell, ``test_helpers`` (2 points: ``isinstance``
    and ``np.allclose``), ``test_partial`` (2 points, partial credit from its final ``_points``), ``test_import``
    (1 point, imports ``tqdm``) and ``test_loop`` (1 point, an assert inside a loop)."""
    nb = tiny_source_notebook()
    nb.cells.insert(1, new_code_cell("import numpy as np", metadata=_nbgrader_meta("setup", locked=True)))
    nb.cells.append(new_code_cell(
        "_d = double(np.arange(3))\n"
        "assert isinstance(_d, np.ndarray), f'expected an array, found {type(_d).__name__}'\n"
        "assert np.allclose(_d, [0, 2, 4]), f'expected [0, 2, 4], found {_d}'",
        metadata=_nbgrader_meta("test_helpers", grade=True, locked=True, points=2)))
    nb.cells.append(new_code_cell(
        "# partial credit: 2 points if double(5) is 10\n_points = 2.0 * (double(5) == 10)\n_points",
        metadata=_nbgrader_meta("test_partial", grade=True, locked=True, points=2)))
    nb.cells.append(new_code_cell(
        "import tqdm\n\nassert list(tqdm.tqdm(map(double, [1, 2]), disable=True)) == [2, 4], 'expected [2, 4]'",
        metadata=_nbgrader_meta("test_import", grade=True, locked=True, points=1)))
    nb.cells.append(new_code_cell(
        "_checked = []\nfor _x in range(3):\n"
        "    assert double(_x) == 2 * _x, f'expected double({_x}) == {2 * _x}, found {double(_x)}'\n"
        "    _checked.append(_x)",
        metadata=_nbgrader_meta("test_loop", grade=True, locked=True, points=1)))
    return nb


def make_course(root: Path) -> dict[str, tuple[Path, Path]]:
    """The tiny course and its variant in ``root``, with the guard configured; {assignment: (release, source)}."""
    release, source = make_tiny_course(root, timeout=TIMEOUT)
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text() + GUARD_CONFIG + MAXRSS_CONFIG)
    (root / "solutions" / VARIANT).mkdir(parents=True)
    nbformat.write(variant_source_notebook(), root / "solutions" / VARIANT / TINY_NOTEBOOK)
    steps.release(VARIANT, root)
    return {TINY_ID: (release, source),
            VARIANT: (root / "assignments" / VARIANT / TINY_NOTEBOOK, root / "solutions" / VARIANT / TINY_NOTEBOOK)}


def hand_in_cases(root: Path) -> dict[str, list[str]]:
    """Release both courses in ``root`` and hand in every case; returns {assignment: [students]}."""
    courses = make_course(root)
    release, source = courses[TINY_ID]
    cases = {"honest": fill_answers(release, source)}
    for student, (after_double, after_triple) in ATTACKS.items():
        nb = fill_answers(release, source)
        cell_by_grade_id(nb, "double").source = WRONG["double"] + "\n\n" + after_double
        cell_by_grade_id(nb, "triple").source = WRONG["triple"] + "\n\n" + after_triple
        cases[student] = nb
    nb = fill_answers(release, source)
    cell_by_grade_id(nb, "triple").source += "\n" + HISTORY_READER
    cases["history_reader"] = nb
    nb = fill_answers(release, source)
    cell_by_grade_id(nb, "double").source += "\n" + FLOOD_PAST_KERNEL_CAP
    cell_by_grade_id(nb, "triple").source += "\n" + FLOOD
    cases["flood"] = nb
    for student, nb in cases.items():
        hand_in(root, student, TINY_ID, nb, TINY_NOTEBOOK)

    release, source = courses[VARIANT]
    variant_cases = {"honest": fill_answers(release, source)}
    for student, code in VARIANT_ATTACKS.items():
        nb = fill_answers(release, source)
        cell_by_grade_id(nb, "double").source = VARIANT_WRONG + "\n\n" + code
        cell_by_grade_id(nb, "triple").source = WRONG["triple"]
        variant_cases[student] = nb
    for student, nb in variant_cases.items():
        folder = hand_in(root, student, VARIANT, nb, TINY_NOTEBOOK)
        for name, text in VARIANT_FILES.get(student, {}).items():
            (folder / name).write_text(text)
    return {TINY_ID: list(cases), VARIANT: list(variant_cases)}


def _sandbox_or_skip() -> None:
    try:
        sandbox.check_sandbox()
    except sandbox.SandboxError as err:
        if os.environ.get("EXPRESSION_LAB_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"EXPRESSION_LAB_REQUIRE_SANDBOX=1 but the sandbox cannot start: {err}")
        pytest.skip(f"bubblewrap sandbox not available: {err}")


@pytest.fixture(scope="module", params=["unsandboxed", "sandboxed"])
def graded(request, tmp_path_factory):
    """Every case autograded one way: ``nbgrader_steps.autograde`` per student, or ``python -m course autograde
    ID --jobs 2 --sandbox``. Returns dict(route, root, cases, seconds)."""
    route = request.param
    if route == "sandboxed":
        _sandbox_or_skip()
    root = tmp_path_factory.mktemp(f"tampering-{route}")
    cases = hand_in_cases(root)
    start, failed = time.perf_counter(), {}
    if route == "unsandboxed":
        for assignment, students in cases.items():
            for student in students:
                try:
                    steps.autograde(assignment, student, root)
                except steps.GradingError as err:
                    failed[(assignment, student)] = str(err)[-3000:]
    else:
        for assignment in cases:
            proc = subprocess.run([sys.executable, "-m", "course", "autograde", assignment, "--jobs", "2",
                                   "--sandbox"], cwd=root, capture_output=True, text=True)
            assert proc.returncode == 0, f"{assignment}: the batch failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            rows = json.loads((root / "grading" / "autograde" / f"{assignment}.json").read_text())
            failed.update({(assignment, r["student"]): r["reason"] for r in rows if r["status"] != "graded"})
    return dict(route=route, root=root, cases=cases, seconds=time.perf_counter() - start, failed=failed)


def _scores(graded, assignment, student) -> dict[str, float]:
    """Automatic points per test cell (after checking that the submission was graded at all)."""
    reason = graded["failed"].get((assignment, student))
    assert reason is None, f"{graded['route']}: expected {student}'s {assignment} graded, found it failed: {reason}"
    return {s.cell: s.score for s in steps.cell_scores(assignment, student, graded["root"]) if s.kind == "auto"}


def _flags(graded, assignment, student, source=None) -> list[str]:
    return [f.reason for f in review.read(assignment, student, graded["root"]) if source in (None, f.source)]


def _autograded(graded, assignment, student) -> Path:
    return graded["root"] / "grading" / "autograded" / student / assignment / TINY_NOTEBOOK


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


# --- autograded by nbgrader ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_honest_submissions_keep_every_point_and_get_no_flag(graded):
    for assignment, full in ((TINY_ID, FULL), (VARIANT, VARIANT_FULL)):
        scores = _scores(graded, assignment, "honest")
        assert sum(scores.values()) == full, f"{graded['route']}: expected {full} points for {assignment}, found {scores}"
        flags = _flags(graded, assignment, "honest")
        assert not flags, f"{graded['route']}: expected no flag for the honest {assignment}, found {flags}"
    assert _scores(graded, VARIANT, "honest")["test_partial"] == 2, (
        "expected the partial-credit cell's final _points (2.0) to score 2 with the guard's statement before it, "
        f"found {_scores(graded, VARIANT, 'honest')}")


@pytest.mark.slow
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_tampering_with_the_test_machinery_scores_nothing_and_is_flagged(graded, attack):
    scores = _scores(graded, TINY_ID, attack)
    assert sum(scores.values()) == 0, f"{graded['route']}: expected 0 points for wrong answers, found {scores}"
    reasons = _flags(graded, TINY_ID, attack, "guard")
    assert any(ATTACK_REASONS[attack] in r for r in reasons), (
        f"{graded['route']}: expected a guard flag naming {ATTACK_REASONS[attack]!r}, found {reasons}")
    assert _flags(graded, TINY_ID, attack, "static-scan"), (
        f"{graded['route']}: expected the static scan to flag {attack}, found {_flags(graded, TINY_ID, attack)}")


@pytest.mark.slow
@pytest.mark.parametrize("attack", sorted(VARIANT_ATTACKS))
def test_patched_helpers_builtins_and_forged_partial_credit_score_nothing(graded, attack):
    scores = _scores(graded, VARIANT, attack)
    assert sum(scores.values()) == 0, f"{graded['route']}: expected 0 points for wrong answers, found {scores}"
    reasons = _flags(graded, VARIANT, attack, "guard")
    assert any(VARIANT_REASONS[attack] in r for r in reasons), (
        f"{graded['route']}: expected a guard flag naming {VARIANT_REASONS[attack]!r}, found {reasons}")


@pytest.mark.slow
def test_a_later_cell_finds_no_trace_of_a_hidden_tests_source(graded):
    nb = nbformat.read(_autograded(graded, TINY_ID, "history_reader"), as_version=4)
    text = _text(cell_by_grade_id(nb, "triple"))
    assert "hidden source not found" in text, f"{graded['route']}: expected no hidden source in reach, found {text!r}"
    scores = _scores(graded, TINY_ID, "history_reader")
    assert sum(scores.values()) == FULL, f"{graded['route']}: expected {FULL} points, found {scores}"


@pytest.mark.slow
def test_an_output_flood_is_cut_while_it_arrives(graded):
    """200 MB printed (cut in the kernel) and 60 MB written past the kernel's cap (cut by the grader as the
    messages arrive): the grader's process stays within 150 MB of the honest run's, the notebook stays small, each
    cut cell says so, and the honest answers keep their points."""
    root = graded["root"]
    scores = _scores(graded, TINY_ID, "flood")
    assert sum(scores.values()) == FULL, f"{graded['route']}: expected {FULL} points, found {scores}"
    path = _autograded(graded, TINY_ID, "flood")
    size = path.stat().st_size
    assert size < 12 * 2 ** 20, f"{graded['route']}: expected an autograded notebook under 12 MiB, found {size:,} bytes"
    nb = nbformat.read(path, as_version=4)
    for grade_id in ("double", "triple"):
        notes = [o.data["text/plain"] for o in cell_by_grade_id(nb, grade_id).outputs if o.output_type == "display_data"]
        assert any("[grader:" in n for n in notes), (
            f"{graded['route']}: expected a note on what was cut in {grade_id}, found {notes}")
    peak = {s: int((root / "grading" / "maxrss" / f"{s}.txt").read_text()) // 1024 for s in ("honest", "flood")}
    assert peak["flood"] < peak["honest"] + 150, (
        f"{graded['route']}: expected the grader's peak memory within 150 MB of the honest run's "
        f"({peak['honest']} MB), found {peak['flood']} MB")


# --- the pieces, without nbgrader -----------------------------------------------------------------------------


def test_the_reference_solutions_scan_clean():
    """No false flag on honest work: every answer cell of every solution notebook scans clean."""
    scanned = 0
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        scanned += len(student_cells(nb))
        findings = scan_notebook(nb)
        assert not findings, f"{path.relative_to(REPO)}: expected no finding, found {[str(f) for f in findings]}"
    assert scanned >= 20, f"expected the answer cells of five notebooks scanned, found {scanned} cells"


def test_the_static_scan_names_the_cell_line_and_means():
    release = nbformat.v4.new_notebook(cells=[
        new_code_cell("import numpy as np", metadata=_nbgrader_meta("setup", locked=True)),
        new_code_cell("def double(x):\n    return x\n\n" + ATTACKS["custom_exc_hook"][0],
                      metadata=_nbgrader_meta("double", solution=True)),
        new_code_cell("%%capture\n%matplotlib inline\nx = 1\n", metadata={}),
        new_code_cell("x = 1\nnp.allclose = lambda *a, **k: True\n!curl example.org\n%run helper.py\n"
                      "import sys, pickle\nsys._getframe(1).f_back\npickle.loads(b'')\nsetattr(np, name, 1)\n"),
    ])
    found = {(f.where, f.line, f.what.split(":")[0]) for f in scan_notebook(release, {"import numpy as np"})}
    expected = {('cell "double" (cell 2)', 7, "uses .set_custom_exc"), ('cell "double" (cell 2)', 8,
                                                                          "uses events.register"),
                ("cell 4", 2, "assigns np.allclose"), ("cell 4", 3, "runs a shell command (!curl example.org)"),
                ("cell 4", 4, "runs the magic %run"), ("cell 4", 5, "imports pickle"),
                ("cell 4", 6, "uses ._getframe"), ("cell 4", 6, "uses .f_back"), ("cell 4", 7, "calls pickle.loads"),
                ("cell 4", 8, "calls setattr on a module")}
    assert expected <= found, f"expected {sorted(expected - found)} among the findings, found {sorted(found)}"
    assert not [f for f in found if f[0].startswith("cell 1") or f[0] == "cell 3"], (
        f"expected no finding in the instructor's cell or harmless magics, found {sorted(found)}")
    assert scan_source("%%time\nimport ctypes\n", "c")[0].line == 2, "expected a cell magic's body scanned in place"


@pytest.mark.parametrize("source, expected, ends_with_value", [
    ("assert f(1)\n_points", "assert f(1)\nMARK\n_points\n", True),
    ("x = 1; x", "x = 1;\nMARK\nx\n", True),
    ("for i in range(2):\n    print(i)\n# done\n", "for i in range(2):\n    print(i)\n# done\nMARK\n", False),
    ("%time y = 2\ny", "get_ipython().run_line_magic('time', 'y = 2')\nMARK\ny\n", True),
])
def test_the_guard_statement_goes_last_but_before_a_final_expression(source, expected, ends_with_value):
    assert instrument(source, "MARK") == (expected, ends_with_value), (
        f"expected {expected!r} for {source!r}, found {instrument(source, 'MARK')!r}")
    assert instrument("def broken(:\n", "MARK") is None, "expected an unparsable cell left as it is"


def test_the_plan_lists_the_helpers_the_tests_use():
    cells = [new_code_cell("from sklearn.metrics import roc_auc_score\nassert np.allclose(keras.models.load_model(p)"
                           ".predict(x), y)")]
    plan = guard_plan(cells)
    for chain in (["np", "allclose"], ["keras", "models", "load_model"], ["sklearn.metrics", "roc_auc_score"]):
        assert chain in plan["chains"], f"expected {chain} in the plan, found {plan['chains']}"
    assert plan["imports"] == ["sklearn.metrics"], f"expected the test's import, found {plan['imports']}"
