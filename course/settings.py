"""Every setting of the kit, declared once, and the README's settings table generated from the declarations.

Each environment variable the kit reads is a :class:`~data_loaders.settings.Setting` (name, default, help, who
reads it, whether the grading sandbox passes it in): the data settings in ``data_loaders/settings.py`` (the
loaders may import nothing from ``course/``), the rest here. Readers use the constant (``Setting.read``,
``Setting.name``), never the name retyped; integer settings are parsed one way everywhere
(:func:`positive_setting`). :data:`OTHER_PROGRAMS_VARIABLES` lists the variables of other programs (Python,
TensorFlow, nbgrader, the locale) that the kit reads, sets or passes into the sandbox.

``tests/test_settings.py`` fails when the README's table differs from :func:`settings_table`, when a kit module
reads a variable declared nowhere, or when a name is retyped. After changing a declaration, regenerate the table::

    .venv/bin/python -m course.settings --write     # rewrites the table in README.md
    .venv/bin/python -m course.settings             # prints it

The student bundle carries this module (``course.bundle.COURSE_MODULES``): :mod:`course.notebook_runtime`, which
the notebooks import, reads the notebook settings through their declarations here. It therefore imports only the
standard library and ``data_loaders`` at the top (the kit's root only inside :func:`main`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from data_loaders.settings import DATA_SETTINGS, Setting

GIB = 1024**3
MIB = 1024**2


def positive_setting(env, name: str, default: int) -> int:
    """``env[name]`` as a positive integer, or ``default`` when unset or empty.

    Raises:
        ValueError: it is set but not a positive integer (the message names the variable).
    """
    if not env.get(name):
        return default
    try:
        value = int(env[name])
    except ValueError:
        raise ValueError(f"{name}={env[name]!r}: expected a positive integer") from None
    if value <= 0:
        raise ValueError(f"{name}={env[name]!r}: expected a positive integer")
    return value


# ------------------------------------------------------------------------------------------------- notebooks

EXPRESSION_LAB_QUICK = Setting(
    "EXPRESSION_LAB_QUICK",
    "unset: full runs",
    "`1` makes each notebook's training short (the sample submission of `make demo` sets it); grading mode "
    "(`NBGRADER_EXECUTION`) implies it.",
    ("course/notebook_runtime.py (each notebook's config cell)",),
    passed_to_sandbox=True,
)
MODEL_2_PATH = Setting(
    "MODEL_2_PATH",
    "`../ps1_fer2013_cnn/model_2.keras`, then `model_2.keras`, then the kit's fallback model",
    "The student's `model_2.keras` from assignment 1, which assignments 2, 4 and 5 start from (grading always "
    "uses the fallback model).",
    ("course/notebook_runtime.py (assignments 2, 4 and 5)",),
    passed_to_sandbox=True,
    path=True,
)

# ------------------------------------------------------------------------------------- grading: the sandbox

EXPRESSION_LAB_SANDBOX_MEMORY = Setting(
    "EXPRESSION_LAB_SANDBOX_MEMORY",
    8 * GIB,
    "Bytes of address space of each sandboxed kernel process (RLIMIT_AS; TensorFlow maps about 3 GiB at import).",
    ("course/sandbox.py",),
)
EXPRESSION_LAB_SANDBOX_PROCESSES = Setting(
    "EXPRESSION_LAB_SANDBOX_PROCESSES",
    512,
    "Processes and threads of the sandbox user (RLIMIT_NPROC; TensorFlow starts a few dozen).",
    ("course/sandbox.py",),
)
EXPRESSION_LAB_SANDBOX_CPU_SECONDS = Setting(
    "EXPRESSION_LAB_SANDBOX_CPU_SECONDS",
    3600,
    "CPU seconds per sandboxed process (RLIMIT_CPU), a backstop for code that ignores the cell timeout.",
    ("course/sandbox.py",),
)
EXPRESSION_LAB_SANDBOX_FILE_SIZE = Setting(
    "EXPRESSION_LAB_SANDBOX_FILE_SIZE",
    2 * GIB,
    "Bytes per file a sandboxed kernel writes (RLIMIT_FSIZE).",
    ("course/sandbox.py",),
)
EXPRESSION_LAB_SANDBOX_TMP_SIZE = Setting(
    "EXPRESSION_LAB_SANDBOX_TMP_SIZE",
    1 * GIB,
    "Bytes of each private memory file system of a sandboxed kernel (`/tmp`, `/dev/shm`, the home folder).",
    ("course/sandbox.py",),
)
EXPRESSION_LAB_SANDBOX_WORKDIR_SIZE = Setting(
    "EXPRESSION_LAB_SANDBOX_WORKDIR_SIZE",
    2 * GIB,
    "Bytes of the private working folder a grading kernel gets (a copy of the submission plus what the grading "
    "run writes).",
    ("course/sandbox.py",),
)
#: The sandbox's resource limits by :class:`course.sandbox.Limits` field.
SANDBOX_LIMITS: dict[str, Setting] = {
    "memory": EXPRESSION_LAB_SANDBOX_MEMORY,
    "processes": EXPRESSION_LAB_SANDBOX_PROCESSES,
    "cpu_seconds": EXPRESSION_LAB_SANDBOX_CPU_SECONDS,
    "file_size": EXPRESSION_LAB_SANDBOX_FILE_SIZE,
    "tmp_size": EXPRESSION_LAB_SANDBOX_TMP_SIZE,
    "workdir_size": EXPRESSION_LAB_SANDBOX_WORKDIR_SIZE,
}
EXPRESSION_LAB_SANDBOX_JOBS = Setting(
    "EXPRESSION_LAB_SANDBOX_JOBS",
    1,
    "The number of parallel grading workers the control groups share the machine between (the autograde "
    "command sets it from `--jobs`).",
    ("course/cgroups.py",),
)
EXPRESSION_LAB_SANDBOX_WORKER_CPU_PERCENT = Setting(
    "EXPRESSION_LAB_SANDBOX_WORKER_CPU_PERCENT",
    "`100 × cores / jobs`",
    "Hundredths of a core each grading worker may use at most (no cap when that is the whole machine).",
    ("course/cgroups.py",),
)
EXPRESSION_LAB_SANDBOX_WORKER_MEMORY = Setting(
    "EXPRESSION_LAB_SANDBOX_WORKER_MEMORY",
    6 * GIB,
    "Bytes of memory of all a grading worker's processes and memory file systems together.",
    ("course/cgroups.py",),
)
EXPRESSION_LAB_SANDBOX_GRADER_MEMORY = Setting(
    "EXPRESSION_LAB_SANDBOX_GRADER_MEMORY",
    GIB,
    "Bytes of memory of nbgrader's own process grading one sandboxed submission (it receives the kernel's "
    "messages and writes the notebook); past it that submission's grading fails and is flagged.",
    ("course/cgroups.py",),
)
EXPRESSION_LAB_SANDBOX_WORKER_PROCESSES = Setting(
    "EXPRESSION_LAB_SANDBOX_WORKER_PROCESSES",
    f"`{EXPRESSION_LAB_SANDBOX_PROCESSES.name}` ({EXPRESSION_LAB_SANDBOX_PROCESSES.default})",
    "Processes and threads of a grading worker's sandbox (bubblewrap's own are added).",
    ("course/cgroups.py",),
)
EXPRESSION_LAB_SANDBOX_BATCH = Setting(
    "EXPRESSION_LAB_SANDBOX_BATCH",
    "unset: groups `slot-<k>`",
    "A name for the batch in its workers' control groups (`<batch>-slot-<k>`; 1 to 64 letters, digits, `_`, "
    "`-`), so that two batches never share one; the autograde command sets it.",
    ("course/cgroups.py",),
)
EXPRESSION_LAB_SANDBOX_SLOT = Setting(
    "EXPRESSION_LAB_SANDBOX_SLOT",
    0,
    "The grading worker's number, which picks its sandbox user id and control group; the autograde command "
    "sets it for each worker.",
    ("course/sandbox.py",),
)
EXPRESSION_LAB_SANDBOX_UID = Setting(
    "EXPRESSION_LAB_SANDBOX_UID",
    f"62000 + `{EXPRESSION_LAB_SANDBOX_SLOT.name}`",
    "The user id sandboxed kernels run as when grading as root.",
    ("course/sandbox.py",),
)
EXPRESSION_LAB_SANDBOX_AUTOGRADED = Setting(
    "EXPRESSION_LAB_SANDBOX_AUTOGRADED",
    "unset: a folder holding course files is refused",
    "nbgrader's autograded folder: a sandboxed kernel then runs only in a submission's folder two levels below "
    "it, judged by its path alone; the autograde command sets it.",
    ("course/sandbox.py",),
)

# --------------------------------------------------------------------------------- grading: submission caps

EXPRESSION_LAB_SUBMISSION_MAX_FILES = Setting(
    "EXPRESSION_LAB_SUBMISSION_MAX_FILES",
    200,
    "Regular files one submission folder may hold; a folder over it is refused before nbgrader touches it.",
    ("course/submission_files.py",),
)
EXPRESSION_LAB_SUBMISSION_MAX_BYTES = Setting(
    "EXPRESSION_LAB_SUBMISSION_MAX_BYTES",
    256 * MIB,
    "Total bytes of the files of one submission folder.",
    ("course/submission_files.py",),
)
EXPRESSION_LAB_SUBMISSION_MAX_DEPTH = Setting(
    "EXPRESSION_LAB_SUBMISSION_MAX_DEPTH",
    8,
    "Folder levels below a submission folder.",
    ("course/submission_files.py",),
)
EXPRESSION_LAB_SUBMISSION_MAX_CELL_TEXT = Setting(
    "EXPRESSION_LAB_SUBMISSION_MAX_CELL_TEXT",
    500_000,
    "Characters of cell text (code, markdown, raw) one handed-in notebook may hold: the formgrader and feedback "
    "render it on the grader's side, about a minute per million characters; the longest reference notebook holds "
    "62,000.",
    ("course/submission_files.py",),
)
#: The caps of a submission folder by :class:`course.submission_files.Caps` field.
SUBMISSION_CAPS: dict[str, Setting] = {
    "files": EXPRESSION_LAB_SUBMISSION_MAX_FILES,
    "bytes": EXPRESSION_LAB_SUBMISSION_MAX_BYTES,
    "depth": EXPRESSION_LAB_SUBMISSION_MAX_DEPTH,
    "cell_text": EXPRESSION_LAB_SUBMISSION_MAX_CELL_TEXT,
}
EXPRESSION_LAB_FEEDBACK_TIMEOUT = Setting(
    "EXPRESSION_LAB_FEEDBACK_TIMEOUT",
    600,
    "Seconds `nbgrader generate_feedback` may run for one student before it is stopped and the feedback step "
    "fails naming that student (an honest notebook takes seconds).",
    ("course/nbgrader_steps.py",),
)

# ------------------------------------------------------------------------------ tests, CI and installation

EXPRESSION_LAB_REQUIRE_BROWSER = Setting(
    "EXPRESSION_LAB_REQUIRE_BROWSER",
    "unset: the browser tests skip without Chromium or playwright",
    "`1` turns a missing Chromium or playwright into an error (`.ci/run` sets it).",
    ("tests/lab_browser.py",),
)
EXPRESSION_LAB_REQUIRE_SANDBOX = Setting(
    "EXPRESSION_LAB_REQUIRE_SANDBOX",
    "unset: the sandbox tests skip without bubblewrap",
    "`1` turns a sandbox that cannot start into a failure (`.ci/run` sets it).",
    ("tests/test_sandbox_attacks.py",),
)
EXPRESSION_LAB_REQUIRE_HUB = Setting(
    "EXPRESSION_LAB_REQUIRE_HUB",
    "unset: the hub test skips without its tools",
    "`1` turns a missing piece of the hub test (root, `useradd`, `configurable-http-proxy`) into an error "
    "(`.ci/run` sets it).",
    ("tests/test_hub.py",),
)
EXPRESSION_LAB_SCREENSHOTS = Setting(
    "EXPRESSION_LAB_SCREENSHOTS",
    "a temporary folder",
    "Where the browser tests write their screenshots (`docs/screenshots` for the README).",
    ("tests/conftest.py",),
)
EXPRESSION_LAB_CHROMIUM = Setting(
    "EXPRESSION_LAB_CHROMIUM",
    "/usr/bin/chromium",
    "The Chromium the browser tests drive.",
    ("tests/lab_browser.py",),
)
EXPRESSION_LAB_CPU_ONLY = Setting(
    "EXPRESSION_LAB_CPU_ONLY",
    "0",
    "`1` installs the smaller CPU-only builds `tensorflow-cpu` and `open3d-cpu` (same imports) into a new virtual "
    "environment; to switch an existing one, remove it first.",
    ("scripts/bootstrap.sh",),
)
EXPRESSION_LAB_PYTHON_ONLY = Setting(
    "EXPRESSION_LAB_PYTHON_ONLY",
    "0",
    "`1`: the set-up installs only the virtual environment, the caller the system packages and the browser "
    "libraries (`.ci/run` does, beside it).",
    (".ci/run", "scripts/bootstrap.sh"),
)
EXPRESSION_LAB_VENV = Setting(
    "EXPRESSION_LAB_VENV",
    "`.venv`; on the hub `/opt/expression-lab/.venv`",
    "The kit's virtual environment: where `make` installs it and runs from (`make VENV=…` sets it too), and where "
    "the hub starts each user's JupyterLab from.",
    ("Makefile", "scripts/bootstrap.sh", "docs/deploy/jupyterhub_config.py"),
)
PYTHON = Setting(
    "PYTHON",
    "`python3`",
    "The Python (3.10 or newer) that creates the kit's virtual environment the first time.",
    ("scripts/bootstrap.sh",),
)

# ------------------------------------------------------------------- a course on JupyterHub (docs/deploy/)

_HUB = ("docs/deploy/jupyterhub_config.py",)
EXPRESSION_LAB_JUPYTER_CONFIG = Setting(
    "EXPRESSION_LAB_JUPYTER_CONFIG",
    "/etc/expression-lab/jupyter",
    "The folder holding the course-wide `nbgrader_config.py`, put on each user's Jupyter config path.",
    _HUB,
)
NBGRADER_EXCHANGE = Setting(
    "NBGRADER_EXCHANGE",
    "/srv/nbgrader/exchange",
    "nbgrader's exchange folder (mode 1777), where assignments are released and submissions collected.",
    ("docs/deploy/jupyterhub_config.py", "docs/deploy/nbgrader_config.py"),
)
EXPRESSION_LAB_HUB_STATE = Setting(
    "EXPRESSION_LAB_HUB_STATE", "/srv/jupyterhub", "The hub's database, cookie secret and proxy pid file.", _HUB
)
EXPRESSION_LAB_HUB_URL = Setting(
    "EXPRESSION_LAB_HUB_URL", "http://:8000", "The hub's public address (put it behind TLS).", _HUB
)
EXPRESSION_LAB_HUB_API_URL = Setting(
    "EXPRESSION_LAB_HUB_API_URL", "http://127.0.0.1:8081", "Where the hub listens for its users' servers.", _HUB
)
EXPRESSION_LAB_PROXY_API_URL = Setting(
    "EXPRESSION_LAB_PROXY_API_URL", "http://127.0.0.1:8001", "configurable-http-proxy's API address.", _HUB
)
EXPRESSION_LAB_KIT = Setting(
    "EXPRESSION_LAB_KIT",
    "unset: the kit is installed in the venv",
    "A kit checkout put on each user's `PYTHONPATH`.",
    _HUB,
)
EXPRESSION_LAB_HUB_GROUP = Setting(
    "EXPRESSION_LAB_HUB_GROUP", "expression-lab", "The Unix group whose members may log in to the hub.", _HUB
)

#: Every setting by section (title, where declared, settings), in the README's order.
SECTIONS: tuple[tuple[str, str, tuple[Setting, ...]], ...] = (
    ("Data", "data_loaders/settings.py", DATA_SETTINGS),
    ("Notebooks", "course/settings.py", (EXPRESSION_LAB_QUICK, MODEL_2_PATH)),
    (
        "Grading",
        "course/settings.py",
        (
            *SANDBOX_LIMITS.values(),
            EXPRESSION_LAB_SANDBOX_JOBS,
            EXPRESSION_LAB_SANDBOX_WORKER_CPU_PERCENT,
            EXPRESSION_LAB_SANDBOX_WORKER_MEMORY,
            EXPRESSION_LAB_SANDBOX_WORKER_PROCESSES,
            EXPRESSION_LAB_SANDBOX_GRADER_MEMORY,
            EXPRESSION_LAB_SANDBOX_BATCH,
            EXPRESSION_LAB_SANDBOX_SLOT,
            EXPRESSION_LAB_SANDBOX_UID,
            EXPRESSION_LAB_SANDBOX_AUTOGRADED,
            *SUBMISSION_CAPS.values(),
            EXPRESSION_LAB_FEEDBACK_TIMEOUT,
        ),
    ),
    (
        "Tests, CI and installation",
        "course/settings.py",
        (
            EXPRESSION_LAB_REQUIRE_BROWSER,
            EXPRESSION_LAB_REQUIRE_SANDBOX,
            EXPRESSION_LAB_REQUIRE_HUB,
            EXPRESSION_LAB_SCREENSHOTS,
            EXPRESSION_LAB_CHROMIUM,
            EXPRESSION_LAB_CPU_ONLY,
            EXPRESSION_LAB_PYTHON_ONLY,
            EXPRESSION_LAB_VENV,
            PYTHON,
        ),
    ),
    (
        "A course on JupyterHub",
        "course/settings.py",
        (
            EXPRESSION_LAB_JUPYTER_CONFIG,
            NBGRADER_EXCHANGE,
            EXPRESSION_LAB_HUB_STATE,
            EXPRESSION_LAB_HUB_URL,
            EXPRESSION_LAB_HUB_API_URL,
            EXPRESSION_LAB_PROXY_API_URL,
            EXPRESSION_LAB_KIT,
            EXPRESSION_LAB_HUB_GROUP,
        ),
    ),
)


def all_settings() -> tuple[Setting, ...]:
    """Every declared setting, in the README's order."""
    return tuple(s for _, _, settings in SECTIONS for s in settings)


# ------------------------------------------------------------------------------- other programs' variables


@dataclass(frozen=True)
class OtherProgramVariable:
    """A variable of another program that the kit reads, sets or passes on: ``why`` the kit touches it, and
    whether the grading sandbox passes it into a kernel unchanged."""

    name: str
    why: str
    passed_to_sandbox: bool = False


#: Variables of other programs the kit touches: passed into the sandbox so that a kernel behaves as the
#: grader's would (nbgrader's, the locale, Python's, TensorFlow's, Keras', OpenMP's, matplotlib's), read
#: (``course/cpu.py``, ``data_loaders/cache.py``) or set for a program the kit starts.
OTHER_PROGRAMS_VARIABLES: tuple[OtherProgramVariable, ...] = (
    OtherProgramVariable("NBGRADER_EXECUTION", "nbgrader sets it while grading: the notebooks' grading mode", True),
    OtherProgramVariable("NBGRADER_VALIDATING", "nbgrader sets it while validating a notebook", True),
    OtherProgramVariable("LANG", "the locale", True),
    OtherProgramVariable("LC_ALL", "the locale, overriding LANG", True),
    OtherProgramVariable("LC_CTYPE", "the locale's character encoding", True),
    OtherProgramVariable("TZ", "the time zone", True),
    OtherProgramVariable("PYTHONHASHSEED", "Python's hash seed", True),
    OtherProgramVariable("PYTHONDONTWRITEBYTECODE", "Python writes no __pycache__ (the sandbox sets it too)", True),
    OtherProgramVariable(
        "TF_CPP_MIN_LOG_LEVEL", "TensorFlow's C++ log level (the kit sets 2: no start-up noise)", True
    ),
    OtherProgramVariable(
        "TF_ENABLE_ONEDNN_OPTS", "TensorFlow's oneDNN kernels; 0: no fast bfloat16 (course/cpu.py)", True
    ),
    OtherProgramVariable("KERAS_BACKEND", "Keras' backend", True),
    OtherProgramVariable("OMP_NUM_THREADS", "OpenMP's thread count", True),
    OtherProgramVariable("MPLBACKEND", "matplotlib's backend", True),
    OtherProgramVariable(
        "ONEDNN_MAX_CPU_ISA", "oneDNN's instruction-set limit: no fast bfloat16 under some (course/cpu.py)"
    ),
    OtherProgramVariable("DNNL_MAX_CPU_ISA", "the older name of ONEDNN_MAX_CPU_ISA (course/cpu.py)"),
    OtherProgramVariable("XDG_CACHE_HOME", "the user's cache folder, the kit's cache's default parent"),
    OtherProgramVariable("PATH", "set for nbgrader with this environment's bin/ first (alembic, kernels)"),
    OtherProgramVariable("PYTHONPATH", "set with the kit first for the processes that score a model"),
    OtherProgramVariable("JUPYTER_PATH", "set for nbgrader when the sandbox kernelspec is installed outside the venv"),
)


def sandbox_variables() -> tuple[str, ...]:
    """The names of the variables the grading sandbox passes into a kernel unchanged (``passed_to_sandbox``)."""
    return tuple(v.name for v in (*all_settings(), *OTHER_PROGRAMS_VARIABLES) if v.passed_to_sandbox)


def sandbox_data_variables() -> tuple[str, ...]:
    """The passed variables that name a file or folder: the sandbox binds what they name read-only."""
    return tuple(s.name for s in all_settings() if s.passed_to_sandbox and s.path)


# ------------------------------------------------------------------------------------------ the README table

#: The lines that enclose the generated table in README.md.
README_BEGIN = "<!-- settings table: generated from the declarations by `python -m course.settings --write` -->"
README_END = "<!-- end of the generated settings table -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        for unit, size in (("GiB", GIB), ("MiB", MIB)):
            if value >= size and value % size == 0:
                return f"`{value}` ({value // size} {unit})"
    text = str(value)
    return f"`{text}`" if " " not in text and "`" not in text else text  # a plain value, not words


def _reader(reader: str) -> str:
    where, _, note = reader.partition(" ")
    return f"`{where}`" + (f" {note}" if note else "")


def _what(setting: Setting) -> str:
    if setting.passed_to_sandbox:
        return setting.help + (
            " Passed into the grading sandbox, which binds what it names read-only."
            if setting.path
            else " Passed into the grading sandbox."
        )
    return setting.help


def settings_table() -> str:
    """The README's settings table (Markdown, one table per section), from :data:`SECTIONS`."""
    parts = []
    for title, home, settings in SECTIONS:
        rows = [f"**{title}** (declared in `{home}`)", "", "| variable | default | what it does | read by |"]
        rows.append("|---|---|---|---|")
        for s in settings:
            cells = [f"`{s.name}`", _default(s.default), _what(s), ", ".join(_reader(r) for r in s.readers)]
            rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts) + "\n"


def readme_table(readme: str) -> str:
    """The text between the table's marker lines in ``readme`` (the README's text).

    Raises:
        ValueError: the marker lines are missing, or not in order.
    """
    begin, end = readme.find(README_BEGIN + "\n"), readme.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"expected the lines {README_BEGIN!r} and {README_END!r}, in that order, in the README")
    return readme[begin + len(README_BEGIN) + 1 : end]


def with_settings_table(readme: str) -> str:
    """``readme`` with the text between the marker lines replaced by :func:`settings_table`.

    Raises:
        ValueError: the marker lines are missing, or not in order.
    """
    old = readme_table(readme)
    start = readme.find(README_BEGIN + "\n") + len(README_BEGIN) + 1
    return readme[:start] + settings_table() + readme[start + len(old) :]


def main(argv: list[str] | None = None) -> int:
    """``python -m course.settings [--write] [--readme FILE]``: print the settings table, or rewrite it in the
    README (the kit's ``README.md`` by default; there is none in the student bundle). Returns the exit status, 0.

    Raises:
        ValueError: ``--write`` and the README lacks the table's marker lines.
    """
    parser = argparse.ArgumentParser(
        prog="python -m course.settings",
        description="Print the README's settings table, generated from the declared settings, or rewrite it there.",
    )
    parser.add_argument("--write", action="store_true", help="rewrite the table in the README instead of printing")
    parser.add_argument("--readme", type=Path, help="default: the kit's README.md")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(settings_table())
        return 0
    if args.readme is None:
        from . import REPO_ROOT  # the instructor kit's root: absent from the student bundle's course package

        args.readme = REPO_ROOT / "README.md"
    text = args.readme.read_text()
    new = with_settings_table(text)
    if new != text:
        args.readme.write_text(new)
    print(f"{args.readme}: settings table {'rewritten' if new != text else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
