"""The notebooks' run-time helpers (``course/notebook_runtime.py``): the run mode, the output folder and finding
``model_2``, each with a made-up environment and scratch folders; that the student bundle can import them; and
that no notebook still carries its own copy of what they do."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

from conftest import REPO
from course import ASSIGNMENTS, bundle
from course import notebook_runtime as runtime

# ----------------------------------------------------------------------------------------------- the run mode


@pytest.mark.parametrize(
    "env, grading, quick, name",
    [
        ({}, False, False, "full"),
        ({"NBGRADER_EXECUTION": "autograde"}, True, True, "grading"),
        ({"NBGRADER_EXECUTION": "validate", "EXPRESSION_LAB_QUICK": "0"}, True, True, "grading"),
        ({"NBGRADER_EXECUTION": ""}, False, False, "full"),
        ({"EXPRESSION_LAB_QUICK": "1"}, False, True, "quick"),
        ({"EXPRESSION_LAB_QUICK": "0"}, False, False, "full"),
        ({"EXPRESSION_LAB_QUICK": "yes"}, False, False, "full"),
    ],
)
def test_the_run_mode_is_read_from_the_environment(env, grading, quick, name):
    found = (runtime.grading(env), runtime.quick(env), runtime.run_mode(env))
    assert found == (grading, quick, runtime.RunMode(grading, quick)), (
        f"{env}: expected grading={grading}, quick={quick}; found {found}"
    )
    assert runtime.run_mode(env).name == name, (
        f"{env}: expected the mode {name!r}, found {runtime.run_mode(env).name!r}"
    )


def test_the_run_mode_reads_os_environ_by_default(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("EXPRESSION_LAB_QUICK", "1")
    assert runtime.run_mode() == runtime.RunMode(False, True), f"expected quick mode, found {runtime.run_mode()}"
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert runtime.run_mode() == runtime.RunMode(True, True), f"expected grading mode, found {runtime.run_mode()}"


#: A logger no library configures (the level of TensorFlow's depends on whether it was imported).
LOGGER = "expression-lab.test-notebook-runtime"


@pytest.fixture
def quiet_state(monkeypatch):
    """Undo what silence_for_grading changes process-wide: TF_CPP_MIN_LOG_LEVEL, the warning filters, logging."""
    logging.disable(logging.NOTSET)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")  # recorded, so the variable is removed again afterwards
    with warnings.catch_warnings():
        yield
    logging.disable(logging.NOTSET)


def test_silence_for_grading_quiets_tensorflow_always_and_everything_else_only_while_grading(quiet_state):
    runtime.silence_for_grading(False)
    assert os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "2", (
        f"expected TF_CPP_MIN_LOG_LEVEL=2 in every mode, found {os.environ.get('TF_CPP_MIN_LOG_LEVEL')!r}"
    )
    assert logging.getLogger(LOGGER).isEnabledFor(logging.WARNING), "expected logging left on outside grading"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.warn("still shown", UserWarning, stacklevel=1)
    assert len(caught) == 1, f"expected warnings shown outside grading, found {caught}"

    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # a value the user chose is kept
    runtime.silence_for_grading(True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0", (
        f"expected the user's 0 kept, found {os.environ['TF_CPP_MIN_LOG_LEVEL']}"
    )
    assert not logging.getLogger(LOGGER).isEnabledFor(logging.WARNING), "expected WARNING disabled while grading"
    assert logging.getLogger(LOGGER).isEnabledFor(logging.ERROR), "expected errors still logged while grading"
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("hidden", UserWarning, stacklevel=1)
    assert caught == [], f"expected every warning ignored while grading, found {[str(w.message) for w in caught]}"


# ------------------------------------------------------------------------------------------- the output folder


def _kernel_shell(monkeypatch, starting_dir: Path | None, *, kernel: bool = True):
    """Make notebook_folder() see a running IPython shell (a Jupyter kernel's when ``kernel``) started in
    ``starting_dir``, without starting one."""
    shell = types.SimpleNamespace(starting_dir=str(starting_dir) if starting_dir else None)
    if kernel:
        shell.kernel = object()
    module = types.ModuleType("IPython.core.getipython")
    module.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython.core.getipython", module)


def _no_shell(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython.core.getipython", None)


def test_outside_grading_the_output_folder_is_the_current_one_and_nothing_is_created(tmp_path, monkeypatch):
    _no_shell(monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert runtime.output_folder(False) == Path("."), f"expected Path('.'), found {runtime.output_folder(False)!r}"
    assert list(tmp_path.iterdir()) == [], f"expected nothing created outside grading, found {list(tmp_path.iterdir())}"


def test_while_grading_outside_a_kernel_the_output_folder_is_made_in_the_current_folder(tmp_path, monkeypatch):
    _no_shell(monkeypatch)
    monkeypatch.chdir(tmp_path)
    folder = runtime.output_folder(True)
    assert folder == tmp_path / "autograde_outputs" and folder.is_dir(), (
        f"expected {tmp_path / 'autograde_outputs'} created, found {folder} (is a folder: {folder.is_dir()})"
    )
    assert runtime.output_folder(True) == folder, "expected a second call to find the folder it made"


def test_while_grading_in_a_kernel_the_output_folder_is_beside_the_notebook_wherever_the_cwd_went(
    tmp_path, monkeypatch
):
    notebook, elsewhere = tmp_path / "ps1_fer2013_cnn", tmp_path / "elsewhere"
    notebook.mkdir()
    elsewhere.mkdir()
    _kernel_shell(monkeypatch, notebook)
    monkeypatch.chdir(elsewhere)  # a cell ran os.chdir
    assert runtime.notebook_folder() == notebook, f"expected {notebook}, found {runtime.notebook_folder()}"
    folder = runtime.output_folder(True)
    assert folder == notebook / "autograde_outputs" and folder.is_dir(), (
        f"expected it beside the notebook, found {folder}"
    )
    assert list(elsewhere.iterdir()) == [], f"expected nothing in the current folder, found {list(elsewhere.iterdir())}"


def test_a_shell_that_is_not_a_kernel_or_knows_no_start_leaves_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _kernel_shell(monkeypatch, tmp_path / "where the terminal started", kernel=False)
    assert runtime.notebook_folder() == tmp_path, f"expected the current folder, found {runtime.notebook_folder()}"
    _kernel_shell(monkeypatch, None)
    assert runtime.notebook_folder() == tmp_path, f"expected the current folder, found {runtime.notebook_folder()}"


def test_an_output_folder_that_cannot_be_made_raises(tmp_path, monkeypatch):
    _no_shell(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "autograde_outputs").write_text("a file, not a folder")
    with pytest.raises(OSError):
        runtime.output_folder(True)


# -------------------------------------------------------------------------------------------------- model_2

#: What the notebooks printed before the helper, word for word: the helper must print the same.
OLD_NOT_FOUND = (
    "model_2.keras not found (looked at MODEL_2_PATH, ../ps1_fer2013_cnn/model_2.keras, ./model_2.keras).\n"
    "Run assignment 1 to make it, or set MODEL_2_PATH. Using the kit's fallback model meanwhile.\n"
)


@pytest.fixture
def course_folders(tmp_path, monkeypatch):
    """A student's course folder: assignment 2's folder (the notebook's and the current one) and assignment 1's
    beside it; the kit's fallback model replaced by a file that records how it was asked for."""
    ps1, ps2 = tmp_path / "ps1_fer2013_cnn", tmp_path / "ps2_personal_transfer"
    ps1.mkdir()
    ps2.mkdir()
    fallback = tmp_path / "fallback_model_2.keras"
    fallback.write_bytes(b"fallback")
    calls = []

    def fake_fallback(verbose=True):
        calls.append(verbose)
        return fallback

    monkeypatch.setattr(runtime, "fallback_model_2", fake_fallback)
    monkeypatch.delenv("MODEL_2_PATH", raising=False)
    _no_shell(monkeypatch)
    monkeypatch.chdir(ps2)
    return types.SimpleNamespace(ps1=ps1, ps2=ps2, fallback=fallback, calls=calls, root=tmp_path)


def test_find_model_2_looks_at_the_variable_then_assignment_1_then_here(course_folders, monkeypatch, capsys):
    c = course_folders
    (c.ps1 / "model_2.keras").write_bytes(b"from ps1")
    (c.ps2 / "model_2.keras").write_bytes(b"here")
    named = c.root / "mine.keras"
    named.write_bytes(b"named")
    monkeypatch.setenv("MODEL_2_PATH", str(named))
    steps = []
    for remove in (named, c.ps1 / "model_2.keras", c.ps2 / "model_2.keras"):
        found = runtime.find_model_2(False)
        steps.append((found.path.read_bytes(), found.description))
        remove.unlink()
    assert [s[0] for s in steps] == [b"named", b"from ps1", b"here"], f"expected that order, found {steps}"
    assert "MODEL_2_PATH=" in steps[0][1] and "assignment 1 (../ps1_fer2013_cnn/model_2.keras)" in steps[1][1], (
        f"expected each description to say where the model came from, found {steps}"
    )
    assert "beside this notebook" in steps[2][1], f"found {steps[2][1]!r}"
    assert capsys.readouterr().out == "" and c.calls == [], "expected no message and no fallback while one is found"


def test_find_model_2_without_one_prints_what_the_notebooks_printed_and_uses_the_fallback(course_folders, capsys):
    found = runtime.find_model_2(False, env={"MODEL_2_PATH": str(course_folders.root / "absent.keras")})
    assert found.path == course_folders.fallback, f"expected the fallback model, found {found}"
    assert "fallback" in found.description and str(found.path) in found.description, f"found {found.description!r}"
    assert capsys.readouterr().out == OLD_NOT_FOUND, "expected the notebooks' message, word for word"
    assert course_folders.calls == [True], f"expected the fallback asked for verbosely, found {course_folders.calls}"


def test_grading_always_uses_the_fallback_and_prints_nothing(course_folders, monkeypatch, capsys):
    (course_folders.ps2 / "model_2.keras").write_bytes(b"here")
    (course_folders.ps1 / "model_2.keras").write_bytes(b"from ps1")
    monkeypatch.setenv("MODEL_2_PATH", str(course_folders.ps2 / "model_2.keras"))
    found = runtime.find_model_2(True)
    assert found.path == course_folders.fallback and "grading" in found.description, f"found {found}"
    assert capsys.readouterr().out == "", "expected nothing printed while grading"
    assert course_folders.calls == [False], f"expected the fallback asked for quietly, found {course_folders.calls}"


def test_find_model_2_looks_beside_the_notebook_not_in_the_current_folder(course_folders, monkeypatch):
    (course_folders.ps2 / "model_2.keras").write_bytes(b"here")
    _kernel_shell(monkeypatch, course_folders.ps2)
    monkeypatch.chdir(course_folders.root)  # a cell ran os.chdir("..")
    found = runtime.find_model_2(False)
    assert found.path == course_folders.ps2 / "model_2.keras", f"expected the notebook's model_2.keras, found {found}"


def test_a_bundle_without_its_fallback_model_says_what_to_do(course_folders, monkeypatch):
    def missing(verbose=True):
        raise FileNotFoundError("the fallback model_2 is missing: ... set MODEL_2_PATH")

    monkeypatch.setattr(runtime, "fallback_model_2", missing)
    with pytest.raises(FileNotFoundError, match="MODEL_2_PATH"):
        runtime.find_model_2(True)


# ----------------------------------------------------------------------------------------- the student bundle


def test_the_runtime_and_the_settings_it_reads_are_bundled_and_import_from_a_bundle_alone(tmp_path):
    assert {"notebook_runtime.py", "settings.py"} <= set(bundle.COURSE_MODULES), (
        f"expected notebook_runtime.py and settings.py in COURSE_MODULES, found {bundle.COURSE_MODULES}"
    )
    model = tmp_path / "stand-in.keras"
    model.write_bytes(b"a trained model file")
    root = bundle.build_bundle(tmp_path / "expression-lab", fallback_model=model)  # its course/ has no REPO_ROOT
    probe = (
        f"import sys; sys.path.insert(0, {str(root)!r}); "
        "import course.notebook_runtime as m, course.settings as s; "
        "print(m.__file__, s.__file__, m.run_mode({'NBGRADER_EXECUTION': 'autograde'}).name, "
        "sorted(n for n in ('IPython', 'tensorflow', 'keras') if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"expected the helpers to import from the bundle alone, found:\n{out.stderr[-2000:]}"
    runtime_file, settings_file, mode, heavy = out.stdout.split(maxsplit=3)
    assert Path(runtime_file).is_relative_to(root) and Path(settings_file).is_relative_to(root), (
        f"expected the bundle's copies imported, found {runtime_file}, {settings_file}"
    )
    assert mode == "grading" and heavy.strip() == "[]", (
        f"expected grading mode and neither IPython nor TensorFlow imported, found {mode}, {heavy.strip()}"
    )


# ---------------------------------------------------------------------------------- no copies in the notebooks

#: Lines the config cells and the model_2 lookups carried before the helpers; none may come back.
COPIED = (
    'os.environ.get("NBGRADER_EXECUTION")',
    'os.environ.get("EXPRESSION_LAB_QUICK")',
    'os.environ.get("MODEL_2_PATH")',
    'os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL"',
    'Path("autograde_outputs")',
    'warnings.simplefilter("ignore")',
    "logging.disable(",
    "_candidates = [",
    "fallback_model_2(",
    "model_2.keras not found",
    "'grading' if GRADING else",
)


def _code_cells(path: Path) -> dict[str, str]:
    """``{grade_id or position: source}`` of the notebook's code cells."""
    cells = json.loads(path.read_text())["cells"]
    return {
        (c["metadata"].get("nbgrader", {}).get("grade_id") or f"cell {i}"): "".join(c["source"])
        for i, c in enumerate(cells)
        if c["cell_type"] == "code"
    }


@pytest.mark.parametrize("folder", ["solutions", "assignments"])
def test_no_notebook_carries_a_copy_of_the_runtime_helpers(folder):
    found = [
        f"{aid}#{gid}: {line}"
        for aid, name in ASSIGNMENTS.items()
        for gid, source in _code_cells(REPO / folder / aid / f"{name}.ipynb").items()
        for line in COPIED
        if line in source
    ]
    assert not found, f"expected {folder}/ to use course.notebook_runtime instead of copies; found {found}"


def test_every_config_cell_and_every_model_2_lookup_uses_the_helpers():
    wrong = []
    for aid, name in ASSIGNMENTS.items():
        cells = _code_cells(REPO / "solutions" / aid / f"{name}.ipynb")
        config = cells.get("config", "")
        for call in ("RUN = run_mode()", "silence_for_grading(GRADING)", "= output_folder(GRADING)"):
            if call not in config:
                wrong.append(f"{aid}#config lacks {call!r}")
        lookups = [gid for gid, source in cells.items() if "find_model_2(GRADING)" in source]
        expected = (
            1
            if aid in ("ps2_personal_transfer", "ps4_action_units", "ps5_faces_in_motion", "ps6_explain_compare")
            else 0
        )
        if len(lookups) != expected:
            wrong.append(f"{aid}: expected {expected} cell calling find_model_2(GRADING), found {lookups}")
    assert not wrong, f"expected the config cells and model_2 lookups to call course.notebook_runtime; found {wrong}"


# ------------------------------------------------------------------------------------------- a real kernel


@pytest.mark.slow
def test_in_a_real_kernel_the_output_folder_is_beside_the_notebook_after_a_chdir(tmp_path):
    """A Jupyter kernel (nbclient, as nbgrader runs one) started in the notebook's folder: a cell moves away
    (``os.chdir``); the grading run's folder is still made beside the notebook."""
    import nbformat
    from nbclient import NotebookClient

    notebook, elsewhere = tmp_path / "notebook", tmp_path / "elsewhere"
    notebook.mkdir()
    elsewhere.mkdir()
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                f"import os\nos.environ['NBGRADER_EXECUTION'] = 'autograde'\nos.chdir({str(elsewhere)!r})"
            ),
            nbformat.v4.new_code_cell("from course.notebook_runtime import output_folder\nprint(output_folder(True))"),
        ]
    )
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(notebook)}}).execute()
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs).strip()
    assert printed == str(notebook / "autograde_outputs"), f"expected the folder beside the notebook, found {printed!r}"
    assert (notebook / "autograde_outputs").is_dir() and not (elsewhere / "autograde_outputs").exists(), (
        f"expected autograde_outputs/ made in {notebook} only, found {sorted(tmp_path.rglob('autograde_outputs'))}"
    )
