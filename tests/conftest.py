"""Shared fixtures: tiny FER2013 files written on the fly, an isolated cache, the real-data switch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from data_loaders import cache

REPO = Path(__file__).resolve().parent.parent


#: The environment's own cache (CI: the clone's ``grading/cache``), read before any test isolates its cache.
#: Session and module fixtures run before a test's ``isolated_cache``, so the graded synthetic course and the
#: browser's JupyterLab use this one; a test that runs a notebook needing the fallback ``model_2`` passes it on
#: (with the synthetic data) to reuse the model they trained instead of training another (about 20 s).
SHARED_CACHE = cache.cache_dir()


#: The longest test files, longest first. `make test` runs whole files on two workers (pytest-xdist,
#: ``--dist loadfile --no-loadscope-reorder``): starting the longest first keeps both workers busy to the end
#: (longest-processing-time-first scheduling). Measured in CI on 2 cores, beside the other worker: the demo course
#: 582 s, the sandbox attacks 359 s, the browser (the bundle's notebooks) 256 s, the files after them 18-94 s; the
#: files not named here take 16 s or less each.
LONGEST_FIRST = (
    "test_course_on_synthetic.py",
    "test_sandbox_attacks.py",
    "test_browser.py",
    "test_grading_roundtrip.py",
    "test_hub.py",
    "test_live_emotion_browser.py",
    "test_explain_compare_real.py",
    "test_fair_grading_ps45.py",
    "test_synthetic.py",
    "test_fair_grading_ps23.py",
    "test_accuracy_benchmark.py",
    "test_grading_integrity.py",
    "test_feedback_leaks.py",
    "test_sandbox_socket_dir.py",
    "test_release.py",
    "test_parallel_autograde.py",
)


def pytest_collection_modifyitems(config, items):
    """Order the longest files first (:data:`LONGEST_FIRST`; the rest keep their order), and keep every test of the
    session-wide demo course in one file: each parallel worker that needs it would run the demo again.

    Raises:
        pytest.UsageError: tests in more than one file use the ``synthetic_course`` fixture.
    """
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    users = sorted({item.path.name for item in items if "synthetic_course" in getattr(item, "fixturenames", ())})
    if len(users) > 1:
        raise pytest.UsageError(
            f"the synthetic_course fixture (the demo course, minutes) is used in {users}: expected one file "
            "(test_course_on_synthetic.py), so that parallel workers build it once"
        )


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets an empty parsed-data cache, so no test sees another's cached arrays."""
    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def tiny_faces():
    """14 deterministic faces (2 per class), uint8 (14, 48, 48), labels 0-6 twice."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(14, 48, 48), dtype=np.uint8)
    labels = np.tile(np.arange(7), 2)
    return images, labels


def pixels_string(image: np.ndarray) -> str:
    return " ".join(map(str, image.ravel()))


def write_fer_csv(path: Path, images, labels, usages, header="emotion,pixels,Usage", columns=("e", "p", "u")):
    """Write a FER2013-style csv; ``columns`` orders emotion (e), pixels (p), Usage (u)."""
    lines = [header]
    for img, lab, use in zip(images, labels, usages):
        fields = {"e": str(lab), "p": pixels_string(img), "u": use}
        lines.append(",".join(fields[c] for c in columns))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fer_csv(tmp_path, tiny_faces):
    images, labels = tiny_faces
    usages = ["Training"] * 7 + ["PublicTest"] * 4 + ["PrivateTest"] * 3
    return write_fer_csv(tmp_path / "fer2013.csv", images, labels, usages)


def real_fer2013() -> Path | None:
    value = os.environ.get("FER2013_PATH")
    return Path(value) if value and Path(value).exists() else None


requires_real_data = pytest.mark.skipif(
    real_fer2013() is None, reason="FER2013_PATH is not set (real FER2013 not available here)"
)


@pytest.fixture(scope="module")
def playwright():
    """playwright's sync API for the browser tests of one module (they launch Debian's Chromium with it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where browser tests write screenshots: ``$EXPRESSION_LAB_SCREENSHOTS`` (``docs/screenshots`` for the
    README), else a temporary folder."""
    folder = Path(os.environ.get("EXPRESSION_LAB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def synthetic_course(tmp_path_factory):
    """The demo course run once per test session on the synthetic data (what `make demo` does on a fresh machine).

    Every assignment is released, a sample student ("demo") runs each notebook in quick mode and hands it in with
    its models, then autograde, feedback and export. Returns ``(course root, score table)``. Tests that add
    students to this course must leave "demo" as it is, and live in ``test_course_on_synthetic.py`` (each parallel
    worker builds its own: :func:`pytest_collection_modifyitems` refuses a second file).
    """
    import shutil

    from course.demo import run_demo

    root = tmp_path_factory.mktemp("course-synthetic")
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "solutions", root / "solutions")
    with pytest.MonkeyPatch.context() as mp:
        for variable in ("FER2013_PATH", "IPHONEX_PATH", "VIDEO_PATH", "AU_DATA_PATH"):
            mp.setenv(variable, "synthetic")
        table = run_demo(None, student="demo", quick=True, root=root)
    return root, table


# ----------------------------------------------------------------------------- a tiny nbgrader assignment
TINY_ID, TINY_NOTEBOOK = "tiny", "tiny.ipynb"
#: A string only the tiny assignment's hidden test contains.
TINY_SECRET = "hidden_secret_4711"


def _nbgrader_meta(grade_id, *, grade=False, solution=False, locked=False, points=0):
    meta = {"grade_id": grade_id, "grade": grade, "solution": solution, "locked": locked, "schema_version": 3}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def tiny_source_notebook():
    """An nbgrader source notebook without TensorFlow: two answers (``double``, ``triple``), three test cells.

    ``test_double`` (2 points) has a public check and a hidden test naming :data:`TINY_SECRET`; ``test_triple``
    (2 points) and ``test_public`` (1 point) are public. 5 automatic points in all.
    """
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    return new_notebook(
        cells=[
            new_markdown_cell("Write `double(x)` and `triple(x)`.", metadata=_nbgrader_meta("intro", locked=True)),
            new_code_cell(
                "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                metadata=_nbgrader_meta("double", solution=True),
            ),
            new_code_cell(
                "print('public check: double(2) =', double(2))\n"
                "assert double(2) == 4, f'expected double(2) == 4, found {double(2)}'\n"
                f"### BEGIN HIDDEN TESTS\n{TINY_SECRET} = double(21)\n"
                f"assert {TINY_SECRET} == 42, f'expected 42, found {{{TINY_SECRET}}}'\n### END HIDDEN TESTS",
                metadata=_nbgrader_meta("test_double", grade=True, locked=True, points=2),
            ),
            new_code_cell(
                "def triple(x):\n    ### BEGIN SOLUTION\n    return 3 * x\n    ### END SOLUTION",
                metadata=_nbgrader_meta("triple", solution=True),
            ),
            new_code_cell(
                "assert triple(2) == 6, f'expected triple(2) == 6, found {triple(2)}'",
                metadata=_nbgrader_meta("test_triple", grade=True, locked=True, points=2),
            ),
            new_code_cell(
                "print('a public test cell keeps its output')\n"
                "assert double(0) == 0, f'expected double(0) == 0, found {double(0)}'",
                metadata=_nbgrader_meta("test_public", grade=True, locked=True, points=1),
            ),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )


def sandbox_or_skip() -> None:
    """Skip the calling test where the bubblewrap sandbox cannot start (the reason is bubblewrap's), or fail it
    when ``EXPRESSION_LAB_REQUIRE_SANDBOX=1`` (CI sets it)."""
    from course import sandbox

    try:
        sandbox.check_sandbox()
    except sandbox.SandboxError as err:
        if os.environ.get("EXPRESSION_LAB_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"EXPRESSION_LAB_REQUIRE_SANDBOX=1 but the sandbox cannot start: {err}")
        pytest.skip(f"bubblewrap sandbox not available: {err}")


def feedback_course(root: Path, student: str, handed_outputs: dict[str, list]):
    """The tiny source notebook and ``student``'s handed-in notebook (``handed_outputs`` by grade_id) under ``root``
    laid out as nbgrader would; return the ``(config, resources)`` nbgrader gives a feedback preprocessor."""
    import copy

    import nbformat
    from traitlets.config import Config

    from course.notebook_cells import cell_by_grade_id

    source = tiny_source_notebook()
    (root / "solutions" / TINY_ID).mkdir(parents=True)
    nbformat.write(source, root / "solutions" / TINY_ID / TINY_NOTEBOOK)
    handed = copy.deepcopy(source)
    for gid, outputs in handed_outputs.items():
        cell_by_grade_id(handed, gid).outputs = outputs
    folder = root / "grading" / "submitted" / student / TINY_ID
    folder.mkdir(parents=True)
    nbformat.write(handed, folder / TINY_NOTEBOOK)
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.source_directory = "solutions"
    config.CourseDirectory.submitted_directory = "grading/submitted"
    resources = {"nbgrader": {"student": student, "assignment": TINY_ID, "notebook": Path(TINY_NOTEBOOK).stem}}
    return config, resources


def make_tiny_course(root: Path, timeout: int = 120) -> tuple[Path, Path]:
    """Release the tiny assignment in a course folder ``root`` (the kit's nbgrader_config.py, cell timeout
    ``timeout`` s); return (release notebook, source notebook)."""
    import nbformat

    from course import nbgrader_steps as steps

    (root / "nbgrader_config.py").write_text(
        (REPO / "nbgrader_config.py").read_text() + f"\nc.Execute.timeout = {timeout}\n"
    )
    (root / "solutions" / TINY_ID).mkdir(parents=True)
    nbformat.write(tiny_source_notebook(), root / "solutions" / TINY_ID / TINY_NOTEBOOK)
    steps.release(TINY_ID, root)
    return root / "assignments" / TINY_ID / TINY_NOTEBOOK, root / "solutions" / TINY_ID / TINY_NOTEBOOK


def hand_in(root: Path, student: str, assignment: str, nb, name: str) -> Path:
    """Write ``nb`` as ``student``'s submission of ``assignment`` (with nbgrader's timestamp); return its folder.
    ``nb`` is a notebook, or a ``str`` written as the file's text as it is (a damaged file)."""
    import nbformat

    from course import nbgrader_steps as steps

    folder = steps.submission_folder(student, assignment, root)
    folder.mkdir(parents=True)
    if isinstance(nb, str):
        (folder / name).write_text(nb)
    else:
        nbformat.write(nb, folder / name)
    (folder / "timestamp.txt").write_text("2026-11-21 10:00:00.000000 UTC")
    return folder


@pytest.fixture
def pretend_bfloat16(monkeypatch):
    """``pretend_bfloat16(answer)`` makes ``course.cpu.cpu_has_bfloat16`` answer ``answer`` for the rest of the
    test (the reference ``build_model_2`` must not depend on it: tests/test_ps1_model_2.py)."""

    def pretend(answer: bool) -> None:
        monkeypatch.setattr("course.cpu.cpu_has_bfloat16", lambda *args, **kwargs: answer)

    return pretend


def fit_random_faces(model, epochs: int = 1, callbacks=()) -> np.ndarray:
    """Fit ``model`` (input 48x48x1, 7 classes) ``epochs`` epochs of 128 random faces in batches of 32 (4 steps an
    epoch), seeded; return the faces, float32 ``(128, 48, 48, 1)`` in [0, 1)."""
    import keras

    rng = np.random.default_rng(1)
    x = rng.random((128, 48, 48, 1), dtype=np.float32)
    model.fit(
        x,
        keras.utils.to_categorical(rng.integers(0, 7, 128), 7),
        batch_size=32,
        epochs=epochs,
        verbose=0,
        callbacks=list(callbacks),
    )
    return x


@pytest.fixture(scope="module")
def build_model_2():
    """The solution notebook's ``build_model_2(steps_per_epoch, epochs)``, with the cells it needs run."""
    from course.notebook_cells import run_solution_cells

    return run_solution_cells("build_model_2", {"__name__": "t"})["build_model_2"]
