"""Grading under attack: every attack class a hostile student can try, and what it gets (the one home for them).

Sections, in order:

- **one command in the sandbox**: each wall of the sandbox the grading kernel gets
  (:func:`course.sandbox.run_sandboxed`): files, network, environment, memory, processes, CPU time, file size;
- **a crafted submission graded with an honest one**: a ps3 notebook carrying every sandbox attack, graded beside an
  honest classmate by ``python -m course autograde --jobs 2 --sandbox``; checksums show nothing outside changed;
- **what a submission leaves behind**: links, hard links, FIFOs, pages and too many files, handed in or made while
  graded; a link named like a second notebook; folders named like the course's; flags in the csv and the report;
- **no score without the work**: input transformers, custom exception handlers, event hooks, trace functions,
  patched builtins, helpers and classes, forged partial credit, an output flood, hidden tests read from history
  (:mod:`course.guarded_execute`, :mod:`course.static_scan`);
- **handed-in model files scored outside the kernel** (:mod:`course.model_scoring`) and the contamination flag;
- **what instructors and students see**: script in outputs and markdown on the formgrader and feedback pages (in
  Chromium), hidden tests through later cells (:mod:`course.html_safety`, :mod:`course.feedback`);
- **fair shares**: one worker's submission cannot take another's CPU, memory or processes (:mod:`course.cgroups`).

Needs bubblewrap; skipped without it unless ``EXPRESSION_LAB_REQUIRE_SANDBOX=1`` (CI sets it). The browser tests
need Chromium (``EXPRESSION_LAB_REQUIRE_BROWSER=1`` in CI).
"""

from __future__ import annotations

import ast
import base64
import codecs
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
import urllib.request
import zlib
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from conftest import (
    REPO,
    SHARED_CACHE,
    TINY_ID,
    TINY_NOTEBOOK,
    TINY_SECRET,
    _nbgrader_meta,
    feedback_course,
    hand_in,
    make_tiny_course,
    sandbox_or_skip,
    tiny_source_notebook,
    write_fer_csv,
)
from course import cgroups, html_safety, review, sandbox
from course import model_scoring as ms
from course import nbgrader_steps as steps
from course.autograde import prepare_data
from course.feedback import NOTE, HiddenMaterial, hidden_regions, without_hidden_regions
from course.guarded_execute import KEPT_WHEN_CUT, GuardedExecute, guard_plan, instrument
from course.notebook_cells import cell_by_grade_id, cells_by_grade_id, sources_by_grade_id
from course.sample_submission import fill_answers
from course.static_scan import scan_notebook, scan_source, student_cells
from lab_browser import JupyterApp, browser_test_marks, launch

pytestmark = pytest.mark.sandbox

AID, NOTEBOOK = "ps3_iphonex_3dcnn", "iphonex_3dcnn.ipynb"
#: Automatic points of a ps3 notebook with every answer right but no model_4.keras handed in (the hidden test
#: of the handed-in model scores 0): what both students below earn.
POINTS_WITHOUT_MODEL = 10


@pytest.fixture(scope="module")
def sandbox_ready():
    sandbox_or_skip()


def _python(code: str, workdir: Path, **limits) -> subprocess.CompletedProcess:
    return sandbox.run_sandboxed(
        [str(sandbox.venv_python()), "-c", code],
        workdir,
        limits=sandbox.Limits(**limits) if limits else None,
        timeout=90,
    )


class _Listener:
    """A TCP server on the grader's 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


# --- one command in the sandbox -------------------------------------------------------------------------------


def test_only_the_submission_folder_and_private_tmp_are_writable(sandbox_ready, tmp_path):
    code = f"""
import json, os, pathlib
report = {{}}
for name, path in {{"workdir": "ok.txt", "tmp": "/tmp/ok.txt", "home": os.path.expanduser("~/ok.txt"),
                    "kit": {str(REPO / "course" / "pwned.py")!r}, "repo_root": {str(REPO / "pwned.txt")!r},
                    "venv": {str(Path(sys.prefix).resolve() / "pwned.txt")!r}, "usr": "/usr/pwned"}}.items():
    try:
        pathlib.Path(path).write_text("x")
        report[name] = "written"
    except OSError as err:
        report[name] = type(err).__name__
for name, path in {{"solutions": {str(REPO / "solutions")!r}, "grading": {str(REPO / "grading")!r},
                    "home_of_grader": {str(Path.home())!r} + "/.bashrc", "shadow": "/etc/shadow"}}.items():
    report["see_" + name] = os.path.exists(path)
print(json.dumps(report))
"""
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["workdir"] == report["tmp"] == report["home"] == "written", report
    for name in ("kit", "repo_root", "venv", "usr"):
        assert report[name] != "written", f"{name}: the sandbox could write there ({report})"
    assert not any(v for k, v in report.items() if k.startswith("see_")), report
    assert (tmp_path / "ok.txt").read_text() == "x"
    assert not (REPO / "course" / "pwned.py").exists() and not Path("/tmp/ok.txt").exists()


def test_the_notebook_being_graded_cannot_be_read(sandbox_ready, tmp_path):
    """nbgrader's copy of the notebook it executes holds the hidden tests; the kernel gets its code over the
    socket and never needs the file."""
    (tmp_path / "iphonex_3dcnn.ipynb").write_text("### BEGIN HIDDEN TESTS\nassert secret\n")
    code = (
        "try:\n    print(repr(open('iphonex_3dcnn.ipynb').read()))\n"
        "except OSError as err:\n    print(type(err).__name__)"
    )
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("''", "PermissionError"), proc.stdout
    assert "HIDDEN" in (tmp_path / "iphonex_3dcnn.ipynb").read_text()  # the grader's file is untouched


def test_the_cache_is_read_only_and_a_cache_write_fails_soft(sandbox_ready, tmp_path):
    code = (
        "import warnings, numpy as np\nfrom data_loaders import cache\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    print(cache.save_arrays('sandbox-probe', a=np.zeros(2)), [str(w.message) for w in caught])"
    )
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("None [") and "not writable" in proc.stdout, proc.stdout
    from data_loaders import cache

    assert not (cache.cache_dir() / "sandbox-probe.npz").exists()


def test_no_network_not_even_the_graders_loopback(sandbox_ready, tmp_path):
    listener = _Listener()
    try:
        code = f"""
import socket
for host, port in (("127.0.0.1", {listener.port}), ("1.1.1.1", 80), ("pypi.org", 443)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        print("connected", host)
    except OSError as err:
        print("refused", host, type(err).__name__)
"""
        proc = _python(code, tmp_path)
    finally:
        listener.close()
    assert proc.returncode == 0, proc.stderr
    assert "connected" not in proc.stdout and proc.stdout.count("refused") == 3, proc.stdout
    assert listener.accepted == 0


def test_the_graders_environment_stays_outside(sandbox_ready, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret-token-4711")
    monkeypatch.setenv("JPY_PARENT_PID", "1")
    proc = _python("import os; print(sorted(os.environ.items()))", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "secret-token-4711" not in proc.stdout and "JPY_PARENT_PID" not in proc.stdout


def test_memory_beyond_the_limit_is_refused(sandbox_ready, tmp_path):
    code = "b = bytearray(30 * 1024 ** 3)\nprint('allocated 30 GB')"
    proc = _python(code, tmp_path, memory=2 * sandbox.GIB)
    assert proc.returncode != 0 and "MemoryError" in proc.stderr and "allocated" not in proc.stdout


def test_a_fork_bomb_stops_at_the_process_limit(sandbox_ready, tmp_path):
    code = FORK_BOMB  # defined with the fair-share tests below
    proc = _python(code, tmp_path, processes=40)
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"refused after (\d+) BlockingIOError", proc.stdout)
    assert found and int(found.group(1)) < 40, proc.stdout


def test_cpu_time_beyond_the_limit_ends_the_process(sandbox_ready, tmp_path):
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    proc = _python(code, tmp_path, cpu_seconds=2)
    assert proc.returncode != 0  # SIGXCPU at the soft limit


def test_a_file_beyond_the_size_limit_is_refused(sandbox_ready, tmp_path):
    code = """
chunk = b"x" * 2 ** 20
try:
    with open("big.bin", "wb") as f:
        for _ in range(10 * 1024):  # 10 GB
            f.write(chunk)
            f.flush()
    print("wrote 10 GB")
except OSError as err:
    print("refused", err.errno)
"""
    proc = _python(code, tmp_path, file_size=8 * 2**20)
    assert proc.returncode == 0, proc.stderr
    assert "refused 27" in proc.stdout  # EFBIG
    assert (tmp_path / "big.bin").stat().st_size <= 8 * 2**20


def test_the_course_root_is_never_the_writable_folder(tmp_path):
    (tmp_path / "grading" / "autograded" / "s").mkdir(parents=True)
    (tmp_path / "grading" / "gradebook.db").write_bytes(b"")
    (tmp_path / "nbgrader_config.py").write_text("")
    for folder in (REPO, tmp_path, tmp_path / "grading", tmp_path / "grading" / "autograded", Path("/")):
        with pytest.raises(sandbox.SandboxError, match="submission's folder"):
            sandbox.bwrap_command(["true"], folder)


def test_without_bubblewrap_grading_refuses_unless_told(monkeypatch, tmp_path, capsys):
    from course.__main__ import main

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    monkeypatch.chdir(tmp_path)
    assert main(["autograde", AID]) == 2
    err = capsys.readouterr().err
    assert "bubblewrap" in err and "--no-sandbox" in err


# --- a crafted submission graded with an honest one -------------------------------------------------------------

ATTACKS = r"""
# ---- attacks (each wrapped so that the rest of the notebook still runs) ----
import os as _os, pathlib as _pl, socket as _socket, sqlite3 as _sqlite3, time as _time

_ROOT = _pl.Path.cwd().parents[3]  # grading/autograded/<student>/<assignment>

def _attack(name, action):
    try:
        detail = action()
        print(f"ATTACK {name}: SUCCEEDED {str(detail)[:120]!r}")
    except BaseException as err:
        print(f"ATTACK {name}: blocked ({type(err).__name__})")

_attack("read_source_notebook", lambda: (_ROOT / "solutions" / "ps3_iphonex_3dcnn" / "iphonex_3dcnn.ipynb").read_text())
_attack("read_hidden_tests", lambda: next(p.read_text() for p in (_ROOT / "grading" / "source_with_tests").rglob("*.ipynb")))
def _search_hidden_tests():
    marker = "BEGIN HIDDEN" + " TESTS"
    found = [p for p in _ROOT.rglob("*") if p.is_file() and marker in p.read_text(errors="ignore")]
    if not found:
        raise FileNotFoundError("no file with hidden tests in reach")
    return found
_attack("search_hidden_tests", _search_hidden_tests)
_attack("read_gradebook", lambda: (_ROOT / "grading" / "gradebook.db").read_bytes()[:16])
def _write_gradebook():
    con = _sqlite3.connect(_ROOT / "grading" / "gradebook.db")
    con.execute("UPDATE grade SET auto_score = 100")
    con.commit()
    return "updated"
_attack("write_gradebook", _write_gradebook)
_attack("read_other_submission", lambda: (_ROOT / "grading" / "submitted" / "honest" / "ps3_iphonex_3dcnn" / "iphonex_3dcnn.ipynb").read_text())
_attack("read_other_autograded", lambda: _os.listdir(_ROOT / "grading" / "autograded" / "honest"))
_attack("write_next_to_own_folder", lambda: (_pl.Path.cwd().parent / "pwned.txt").write_text("x"))
_attack("write_course_root", lambda: (_ROOT / "pwned.txt").write_text("x"))
_attack("write_kit_package", lambda: (_pl.Path(_os.environ["PYTHONPATH"]) / "course" / "pwned.py").write_text("x"))
_attack("read_grader_home", lambda: _os.listdir("GRADER_HOME"))
_attack("read_grader_secret", lambda: _pl.Path("GRADER_HOME/secret.txt").read_text())
_attack("grader_token_in_env", lambda: next(k for k, v in _os.environ.items() if "secret-token" in v))
_attack("see_grader_process", lambda: _pl.Path("/proc/GRADER_PID/cmdline").read_text() if "pytest" in _pl.Path("/proc/GRADER_PID/cmdline").read_text() else 1 / 0)
_attack("socket_to_grader", lambda: _socket.create_connection(("127.0.0.1", LISTENER_PORT), timeout=3))
_attack("socket_to_internet", lambda: _socket.create_connection(("1.1.1.1", 80), timeout=3))
def _fork_bomb():
    children = []
    try:
        while len(children) < 100000:
            pid = _os.fork()
            if pid == 0:
                _time.sleep(60)
                _os._exit(0)
            children.append(pid)
        return f"forked {len(children)}"
    finally:
        for pid in children:
            _os.kill(pid, 9)
            _os.waitpid(pid, 0)
_attack("fork_bomb", _fork_bomb)
_attack("allocate_30_gb", lambda: len(bytearray(30 * 1024 ** 3)))
def _big_file():
    chunk = b"x" * 2 ** 20
    try:
        with open("big.bin", "wb") as f:
            for _ in range(10 * 1024):
                f.write(chunk)
                f.flush()
    finally:
        _os.remove("big.bin")
    return "wrote 10 GB"
_attack("write_10_gb_file", _big_file)
# ---- end of attacks ----
"""


def _tree_checksums(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under ``folder`` (symlinks not followed) whose relative path starts with none of
    ``skip``."""
    sums = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = Path(dirpath, name)
            rel = path.relative_to(folder).as_posix()
            if not path.is_symlink() and not rel.startswith(skip) and "__pycache__" not in rel:
                sums[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


#: Parts of the kit's own folder that other processes may change meanwhile (or that are not the kit's).
KIT_SKIP = (
    ".git",
    ".venv",
    ".ruff_cache/",
    "grading/",
    ".nbgrader.log",
    ".pytest_cache/",
    "data/",
    "benchmarks/results/",
)
#: What Jupyter itself keeps in the grader's home folder (written by nbgrader, outside the sandbox).
JUPYTER_STATE = (".jupyter/", ".local/", ".ipython/", ".cache/")
#: What nbgrader itself writes while grading: the gradebook, autograded copies, the batch's own files, its log.
GRADING_OUTPUTS = ("grading/gradebook.db", "grading/autograded/", "grading/autograde/", ".nbgrader.log")


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    sandbox_or_skip()
    from data_loaders import cache

    base = tmp_path_factory.mktemp("attack")
    root, home = base / "course", base / "grader_home"
    home.mkdir()
    (home / "secret.txt").write_text("the grader's secret")
    shutil.copytree(REPO / "solutions" / AID, root / "solutions" / AID)
    config = (REPO / "nbgrader_config.py").read_text() + "\nc.Execute.timeout = 20\n"
    (root / "nbgrader_config.py").write_text(config)
    listener = _Listener()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPHONEX_PATH", "synthetic")
        # A cache of its own, so that what other test workers add to the shared one is not counted as a change:
        # the synthetic data made (or found) in the shared cache, copied, then what the grader prepares before
        # grading (course.autograde.prepare_data: the parsed point clouds) made in it before the snapshot.
        from data_loaders import load_iphonex

        load_iphonex()
        shared, private = cache.cache_dir(), base / "cache"
        private.mkdir()
        for folder in shared.glob("synthetic-v1-*"):
            shutil.copytree(folder, private / folder.name)
        mp.setenv("EXPRESSION_LAB_CACHE", str(private))  # set before HOME moves
        steps.release(AID, root)
        prepare_data(AID, root)
        release, source = root / "assignments" / AID / NOTEBOOK, root / "solutions" / AID / NOTEBOOK
        hand_in(root, "honest", AID, fill_answers(release, source), NOTEBOOK)
        nb = fill_answers(release, source)
        attacks = (
            ATTACKS.replace("GRADER_HOME", str(home))
            .replace("GRADER_PID", str(os.getpid()))
            .replace("LISTENER_PORT", str(listener.port))
        )
        cell_by_grade_id(nb, "voxelize").source += "\n" + attacks
        # loop forever (asleep: a busy loop would only burn the 20 s of CPU that the hog tests already cover)
        cell_by_grade_id(nb, "subject_split").source += "\nimport time\nwhile True:\n    time.sleep(1)\n"
        hand_in(root, "attacker", AID, nb, NOTEBOOK)

        watched = {
            "course": (root, GRADING_OUTPUTS),
            "kit": (REPO, KIT_SKIP),
            "home": (home, JUPYTER_STATE),
            "cache": (private, ()),
        }
        before = {name: _tree_checksums(folder, skip) for name, (folder, skip) in watched.items()}
        honest_submitted = _tree_checksums(root / "grading" / "submitted")

        mp.setenv("HOME", str(home))
        mp.setenv("JUPYTERHUB_API_TOKEN", "secret-token-4711")
        mp.chdir(root)
        proc = subprocess.run(
            [sys.executable, "-m", "course", "autograde", AID, "--jobs", "2", "--sandbox"],
            cwd=root,
            capture_output=True,
            text=True,
            env=dict(
                os.environ, EXPRESSION_LAB_SANDBOX_PROCESSES="160", EXPRESSION_LAB_SANDBOX_FILE_SIZE=str(64 * 2**20)
            ),
        )
        after = {name: _tree_checksums(folder, skip) for name, (folder, skip) in watched.items()}
    listener.close()
    graded = root / "grading" / "autograded" / "attacker" / AID / NOTEBOOK
    if not graded.is_file():
        log = root / "grading" / "autograde" / "workers" / "attacker.log"
        pytest.fail(
            f"the attacker's notebook was not graded:\n{proc.stdout[-2000:]}\n"
            f"{log.read_text()[-3000:] if log.is_file() else proc.stderr[-3000:]}"
        )
    executed = nbformat.read(root / "grading" / "autograded" / "attacker" / AID / NOTEBOOK, as_version=4)
    output = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    return dict(
        root=root,
        proc=proc,
        before=before,
        after=after,
        listener=listener,
        output=output,
        submitted=(honest_submitted, _tree_checksums(root / "grading" / "submitted")),
        executed=executed,
    )


ATTACK_NAMES = re.findall(r'_attack\("(\w+)"', ATTACKS)


@pytest.mark.slow
def test_the_batch_grades_both_submissions(attacked):
    assert attacked["proc"].returncode == 0, attacked["proc"].stdout[-3000:] + attacked["proc"].stderr[-3000:]
    assert "2 of 2 graded" in attacked["proc"].stdout


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_each_attack_fails_inside_the_sandbox(attacked, attack):
    lines = [ln for ln in attacked["output"].splitlines() if ln.startswith(f"ATTACK {attack}:")]
    assert lines, f"the attack {attack} did not run; notebook output:\n{attacked['output'][-2000:]}"
    assert all(": blocked (" in ln for ln in lines), lines


@pytest.mark.slow
def test_the_endless_loop_is_interrupted(attacked):
    cell = cell_by_grade_id(attacked["executed"], "subject_split")
    assert "CellTimeoutError" in [o.get("ename") for o in cell.outputs if o.output_type == "error"]


@pytest.mark.slow
def test_attacker_and_classmate_are_graded_for_what_they_answered(attacked):
    root = attacked["root"]
    for student in ("honest", "attacker"):
        scores = {s.cell: s.score for s in steps.cell_scores(AID, student, root) if s.kind == "auto"}
        assert sum(scores.values()) == POINTS_WITHOUT_MODEL, (student, scores)
        assert scores["test_model_4_saved"] == 0, (student, scores)  # no model_4.keras handed in
    summary = json.loads((root / "grading" / "autograde" / f"{AID}.json").read_text())
    assert {r["student"]: r["auto_score"] for r in summary} == {
        "attacker": POINTS_WITHOUT_MODEL,
        "honest": POINTS_WITHOUT_MODEL,
    }


@pytest.mark.slow
def test_nothing_outside_the_attackers_folder_changed(attacked):
    for name in attacked["before"]:
        before, after = attacked["before"][name], attacked["after"][name]
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        assert not changed, f"{name}: changed {changed[:10]}"
    assert attacked["submitted"][0] == attacked["submitted"][1]
    assert attacked["listener"].accepted == 0
    autograded = attacked["root"] / "grading" / "autograded"
    assert sorted(p.name for p in autograded.iterdir()) == ["attacker", "honest"]
    assert (
        not (autograded / "attacker" / "pwned.txt").exists()
        and not (autograded / "attacker" / AID / "big.bin").exists()
    )


# --- what a submission leaves behind: links, special files, too much ----------------------------------------------
# The tiny TensorFlow-free assignment of conftest.py, graded by `python -m course autograde --jobs 2 --sandbox`,
# then fed back. Grader-side steps (nbgrader's chmod of the autograded folder, the feedback copy) used to follow
# links a submission left; a second assignment with two notebooks checks that a link named like the second
# notebook is never written through.

LINK_TARGETS = ("solution", "gradebook", "classmate", "secret", "bwrap")


def _link_cell(targets: dict[str, Path]) -> str:
    lines = ["import os as _os, pathlib as _pl"]
    for name, target in targets.items():
        lines.append(f"_os.symlink({str(target)!r}, {name + '.html'!r})")
    lines += [
        "_pl.Path('autograde_outputs').mkdir(exist_ok=True)",
        "_os.symlink('/etc/passwd', 'autograde_outputs/leak.run.json')",
        "for _k in range(5000):",
        "    open(f'empty-{_k}.txt', 'w').close()",
        "for _k in range(40):",
        "    _pl.Path(f'big-{_k}.bin').write_bytes(b'x' * 8 * 2 ** 20)",
        "_os.mkfifo('pipe.html')",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def left_behind(tmp_path_factory):
    sandbox_or_skip()
    from conftest import TINY_ID, TINY_NOTEBOOK, make_tiny_course, tiny_source_notebook

    base = tmp_path_factory.mktemp("left-behind")
    root, outside = base / "course", base / "outside"
    outside.mkdir()
    root.mkdir()
    release, source = make_tiny_course(root, timeout=60)
    # a second assignment with two notebooks (a, b), for the link named like the second notebook
    (root / "solutions" / "two").mkdir()
    for name in ("a", "b"):
        nbformat.write(tiny_source_notebook(), root / "solutions" / "two" / f"{name}.ipynb")
    steps.release("two", root)

    secret = outside / "root-only.txt"
    secret.write_text("the grader's root-only secret")
    secret.chmod(0o600)
    bwrap = outside / "bwrap"  # a stand-in for /usr/bin/bwrap (chmod 0444 through a link broke the real one)
    bwrap.write_text("#!/bin/sh\n")
    bwrap.chmod(0o755)
    victim = outside / "victim.txt"  # a file the grader may write
    victim.write_text("untouched")
    victim.chmod(0o644)
    hand_in(root, "honest", TINY_ID, fill_answers(release, source), TINY_NOTEBOOK)
    targets = {
        "solution": root / "solutions" / TINY_ID / TINY_NOTEBOOK,
        "gradebook": root / "grading" / "gradebook.db",
        "classmate": steps.submission_folder("honest", TINY_ID, root) / TINY_NOTEBOOK,
        "secret": secret,
        "bwrap": bwrap,
    }
    modes = {name: path.stat().st_mode for name, path in {**targets, "victim": victim}.items()}

    linker = fill_answers(release, source)
    cell_by_grade_id(linker, "double").source += "\n" + _link_cell(targets)
    hand_in(root, "linker", TINY_ID, linker, TINY_NOTEBOOK)

    handed = hand_in(root, "handed", TINY_ID, fill_answers(release, source), TINY_NOTEBOOK)
    (handed / "gradebook.html").symlink_to(targets["gradebook"])
    (handed / "secret.txt").symlink_to(secret)
    os.mkfifo(handed / "pipe.txt")
    os.link(victim, handed / "victim-link.txt")
    (handed / "<img src=x onerror=alert(1)>").symlink_to("/etc/passwd")  # a name that is markup
    (handed / "evil.html").write_text("<script>fetch('/api/contents')</script>")  # formgrader would serve it
    # a page under a suffix no list names: Debian's mime.types serves .shtml as text/html
    (handed / "notes.shtml").write_text("<script>fetch('/api/contents/solutions')</script>")

    folders = hand_in(root, "folders", TINY_ID, fill_answers(release, source), TINY_NOTEBOOK)
    for name in ("solutions", "grading", "source_with_tests"):  # named like the course's own folders
        (folders / name).mkdir()
        (folders / name / "notes.txt").write_text("mine")
    (folders / "nbgrader_config.py").write_text("# a student's file\n")

    many = hand_in(root, "many", TINY_ID, fill_answers(release, source), TINY_NOTEBOOK)
    for k in range(250):
        (many / f"photo-{k}.txt").write_text("x")
    # files a pattern seems to ignore (fnmatch) but nbgrader copies (glob): a dot file, a folder named like a glob
    flood = hand_in(root, "flood", TINY_ID, fill_answers(release, source), TINY_NOTEBOOK)
    (flood / "d[0]").mkdir()
    for k in range(125):
        (flood / f".x{k}.pyc").write_text("x")
        (flood / "d[0]" / f"y{k}.pyc").write_text("x")

    two_release = {n: root / "assignments" / "two" / f"{n}.ipynb" for n in ("a", "b")}
    two_source = {n: root / "solutions" / "two" / f"{n}.ipynb" for n in ("a", "b")}
    a = fill_answers(two_release["a"], two_source["a"])
    cell_by_grade_id(a, "double").source += f"\nimport os as _os\n_os.symlink({str(victim)!r}, 'b.ipynb')\n"
    hand_in(root, "linker", "two", a, "a.ipynb")
    nbformat.write(
        fill_answers(two_release["b"], two_source["b"]), steps.submission_folder("linker", "two", root) / "b.ipynb"
    )

    env = dict(os.environ, EXPRESSION_LAB_SANDBOX_FILE_SIZE=str(16 * 2**20))
    batch = [
        subprocess.run(
            [sys.executable, "-m", "course", "autograde", aid, "--jobs", "2", "--sandbox"],
            cwd=root,
            capture_output=True,
            text=True,
            env=env,
        )
        for aid in (TINY_ID, "two")
    ]
    feedback = [
        subprocess.run([sys.executable, "-m", "course", "feedback", aid], cwd=root, capture_output=True, text=True)
        for aid in (TINY_ID, "two")
    ]
    for proc in feedback:
        assert proc.returncode == 0, f"expected `python -m course feedback` to succeed, found {proc.stderr[-2000:]}"
    summary = {r["student"]: r for r in json.loads((root / "grading" / "autograde" / f"{TINY_ID}.json").read_text())}
    return dict(
        root=root, targets=targets, modes=modes, victim=victim, secret=secret, batch=batch, summary=summary, bwrap=bwrap
    )


def _files_under(folder: Path) -> list[Path]:
    return [Path(d, f) for d, _, files in os.walk(folder) for f in files]


@pytest.mark.slow
def test_links_left_behind_change_no_target(left_behind):
    for name, path in {**left_behind["targets"], "victim": left_behind["victim"]}.items():
        assert path.stat().st_mode == left_behind["modes"][name], (
            f"{name}: expected mode {oct(left_behind['modes'][name])} kept, found {oct(path.stat().st_mode)}"
        )
    assert left_behind["victim"].read_text() == "untouched", (
        f"expected the grader's file untouched, found {left_behind['victim'].read_text()[:80]!r}"
    )
    assert os.access(left_behind["bwrap"], os.X_OK), "expected the bwrap stand-in to stay executable"


@pytest.mark.slow
def test_nothing_a_link_points_at_reaches_autograded_or_feedback(left_behind):
    root = left_behind["root"]
    secrets = (b"root-only secret", b"SQLite format 3", b"BEGIN HIDDEN TESTS")
    for stage in ("autograded", "feedback"):
        for student in ("linker", "handed", "folders"):
            for path in _files_under(root / "grading" / stage / student):
                assert not path.is_symlink(), f"expected no link in {stage}, found {path}"
                if path.suffix in (".ipynb", ".html"):
                    continue  # nbgrader's own output: checked for hidden tests by the feedback tests
                data = path.read_bytes()
                assert not any(s in data for s in secrets), f"expected no outside file copied, found {path}"
    linker_files = _files_under(root / "grading" / "autograded" / "linker" / "tiny")
    assert len(linker_files) < 10, (
        f"expected the grading run's 5,040 files left in the sandbox, found {len(linker_files)}"
    )
    assert not (root / "grading" / "autograded" / "linker" / "tiny" / "autograde_outputs" / "leak.run.json").exists()


@pytest.mark.slow
def test_links_handed_in_are_quarantined_and_flagged(left_behind):
    root, row = left_behind["root"], left_behind["summary"]["handed"]
    assert row["status"] == "graded" and row["auto_score"] == 5, f"expected handed graded 5/5, found {row}"
    for name in ("gradebook.html", "secret.txt", "pipe.txt", "victim-link.txt", "evil.html", "notes.shtml"):
        assert name in row["review"], f"expected {name} named in the review flags, found {row['review']!r}"
        assert os.path.lexists(root / "grading" / "quarantine" / "handed" / "tiny" / name), f"{name} not quarantined"
        assert not os.path.lexists(steps.submission_folder("handed", "tiny", root) / name), f"{name} still submitted"
    csv = (root / "grading" / "autograde" / "tiny.csv").read_text()
    assert "review" in csv.splitlines()[0] and "secret.txt" in csv, f"expected the flags in the csv, found {csv[:400]}"
    banner = nbformat.read(root / "grading" / "autograded" / "handed" / "tiny" / "tiny.ipynb", as_version=4).cells[0]
    assert "Flagged for review" in banner.source and "symbolic link" in banner.source, banner.source[:300]


@pytest.mark.slow
def test_folders_named_like_the_course_are_graded(left_behind):
    row = left_behind["summary"]["folders"]
    assert row["status"] == "graded" and row["auto_score"] == 5, f"expected folders graded 5/5, found {row}"
    # the handed-in nbgrader_config.py may be flagged by the static scan (a module named like an installed one),
    # never refused or flagged by the intake
    assert "intake" not in row["review"], (
        f"expected no intake flag for folders named like the course's, found {row['review']!r}"
    )


@pytest.mark.slow
def test_a_submission_over_the_caps_is_refused_with_the_fix(left_behind):
    row = left_behind["summary"]["many"]
    assert row["status"] == "refused", f"expected many refused, found {row}"
    assert "252 files" in row["reason"] and "MAX_FILES" in row["reason"] and "no-sandbox" not in row["reason"], row
    flood = left_behind["summary"]["flood"]
    assert flood["status"] == "refused" and "252 files" in flood["reason"], (
        f"expected flood refused for the 252 files nbgrader would copy, found {flood}"
    )
    assert (
        left_behind["summary"]["honest"]["auto_score"] == 5 and left_behind["summary"]["linker"]["status"] == "graded"
    )


@pytest.mark.slow
def test_a_link_named_like_the_second_notebook_is_not_written_through(left_behind):
    proc = left_behind["batch"][1]
    assert "1 of 1 graded" in proc.stdout, proc.stdout[-1500:] + proc.stderr[-1500:]
    assert left_behind["victim"].read_text() == "untouched"
    graded_b = left_behind["root"] / "grading" / "autograded" / "linker" / "two" / "b.ipynb"
    assert graded_b.is_file() and not graded_b.is_symlink(), f"expected b.ipynb written as a file, found {graded_b}"


@pytest.mark.slow
def test_flags_reach_the_class_report_escaped(left_behind):
    from course.report import write_report

    report, paths = write_report("tiny", root=left_behind["root"])
    assert "handed" in report.summary() and "flagged for review" in report.summary(), report.summary()
    page = paths["html"].read_text()
    assert "Flagged for review" in page and "victim-link.txt" in page, "expected the flags table in the report"
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page, (
        "expected the markup file name escaped in the report"
    )
    banner = (
        nbformat.read(left_behind["root"] / "grading" / "autograded" / "handed" / "tiny" / "tiny.ipynb", as_version=4)
        .cells[0]
        .source
    )
    assert "<img" not in banner and "&lt;img" in banner, f"expected the banner escaped, found {banner[:300]!r}"


def test_a_run_record_comes_back_though_the_kernel_is_killed(sandbox_ready, tmp_path):
    """A grading kernel that outlives the kernel manager's shutdown wait is killed with its sandbox: the run record
    it wrote before must still come back (the private working folder hands records out over the launcher's pipe
    while the kernel runs), and only the record: a line cut short by the kill is not a record."""
    workdir, sockets = tmp_path / "alice" / "ps1", tmp_path / "expression-lab-kernel-test"
    workdir.mkdir(parents=True)
    sockets.mkdir()
    copy, outbox = sockets / "submission", sockets / f"{sandbox.OUTBOX_PREFIX}1"
    copy.mkdir()
    outbox.mkdir()
    code = (
        "import pathlib, time; p = pathlib.Path('autograde_outputs'); p.mkdir(); "
        "(p / 'model_2.run.json').write_text('{\"assignment\": \"ps1\"}'); time.sleep(120)"
    )
    args = sandbox.bwrap_command(
        [str(sandbox.venv_python()), "-c", code], workdir, read_only=(copy,), private_copy=copy
    )
    read_end, write_end = os.pipe()
    # the launcher's way: the pipe's write end at HANDOUT_FD in the sandbox, read here until the sandbox ends
    proc = subprocess.Popen(
        args, start_new_session=True, close_fds=False, preexec_fn=lambda: os.dup2(write_end, sandbox.HANDOUT_FD)
    )
    os.close(write_end)
    reader = threading.Thread(target=sandbox.receive_run_records, args=(read_end, outbox))
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not (outbox / "model_2.run.json").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # what the kernel manager does past its shutdown wait
        proc.wait()
        reader.join(timeout=30)
        os.close(read_end)
    target = tmp_path / "autograde_outputs"
    assert sandbox.collect_run_records(sockets, target) == [], "expected nothing left out"
    found = sorted(p.name for p in target.iterdir()) if target.exists() else []
    assert found == ["model_2.run.json"], f"expected the record handed out before the kill, found {found}"
    assert json.loads((target / "model_2.run.json").read_text()) == {"assignment": "ps1"}


# --- No score without the work: tampering with the test machinery ------------------------------------------------------
# No score without the work: submissions that tamper with the test machinery, autograded by real nbgrader.
#
# Each attacker hands in wrong answers plus a few lines that, on nbgrader's plain ``Execute``, raised the score
# (up to full marks): IPython input and AST transformers, ``set_custom_exc`` plus a ``post_run_cell`` hook (also
# installed by the graded function at call time, inside the test cell), forged ``execute_result`` numbers (partial
# credit), a trace function, patched builtins and test helpers, class-level patches of ``InteractiveShell.run_cell``
# and ipykernel's ``do_execute``. With :class:`course.guarded_execute.GuardedExecute` in the course's
# ``nbgrader_config.py`` every one scores what its answers deserve (0) and is flagged for review with its reason;
# honest submissions keep every point and get no flag. A flood of output is cut while it arrives (the grader's
# process stays small, the notebook too) and the honest answers beside it keep their points; a cell after a hidden
# test finds no trace of its source.
#
# Every case runs through ``nbgrader autograde`` twice, by ``python -m course autograde ID --jobs 2``: unsandboxed
# (``--no-sandbox``) and sandboxed (``--sandbox``, skipped without bubblewrap unless
# ``EXPRESSION_LAB_REQUIRE_SANDBOX=1``). Most cases use the tiny course of ``conftest.py`` (5
# points); the partial-credit and test-helper cases use a variant of it with a locked ``import numpy as np`` cell, a
# test of ``np.allclose``/``isinstance``, a test cell ending with a ``_points`` number, one importing
# ``tqdm`` (not loaded before it) and one with a loop (11 points).

GUARD_CONFIG = """
from nbgrader.converters import Autograde as _Autograde  # noqa: E402
from nbgrader.preprocessors import Execute as _Execute  # noqa: E402

from course.guarded_execute import GuardedExecute  # noqa: E402

_steps = (c.Autograde.autograde_preprocessors if "autograde_preprocessors" in c.Autograde
          else _Autograde.class_traits()["autograde_preprocessors"].default())
c.Autograde.autograde_preprocessors = [GuardedExecute if step is _Execute else step for step in _steps]
"""
#: Test-only: each nbgrader process records its own peak memory (kB) in grading/maxrss/<student>.txt.
MAXRSS_CONFIG = """
import atexit as _atexit  # noqa: E402
import resource as _resource  # noqa: E402


def _record_maxrss():
    if "--student" in sys.argv:
        folder = os.path.join(root, "grading", "maxrss")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, sys.argv[sys.argv.index("--student") + 1] + ".txt"), "w") as f:
            f.write(str(_resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss))


_atexit.register(_record_maxrss)
"""
TIMEOUT = 20  # seconds per cell
FULL, VARIANT_FULL = 5, 11
VARIANT = "tinyguard"

WRONG = {"double": "def double(x):\n    return x + 1\n", "triple": "def triple(x):\n    return x + 1\n"}
CLEAR_ERROR = """
def _clear_error(result):
    result.error_in_exec = None
"""
#: student -> (extra code after the wrong `double`, extra code after the wrong `triple`); each raised the score of
#: wrong answers on nbgrader's own Execute.
TAMPER_ATTACKS = {
    "transformer_post": (
        "get_ipython().input_transformers_post.append(\n"
        '    lambda lines: [line.replace("assert ", "assert True or ") for line in lines])\n',
        "",
    ),
    "transformer_cleanup": (
        "get_ipython().input_transformers_cleanup.append(\n"
        '    lambda lines: [line.replace("assert ", "assert True or ") for line in lines])\n',
        "",
    ),
    "ast_transformer": (
        "import ast as _ast\n\n\nclass _NoAsserts(_ast.NodeTransformer):\n"
        "    def visit_Assert(self, node):\n        return _ast.copy_location(_ast.Pass(), node)\n\n\n"
        "get_ipython().ast_transformers.append(_NoAsserts())\n",
        "",
    ),
    "custom_exc_hook": (
        CLEAR_ERROR + "get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)\n"
        "get_ipython().events.register('post_run_cell', _clear_error)\n",
        "",
    ),
    # the graded functions themselves install the handler while the test cell runs (after any reset before it)
    "custom_exc_at_call": (
        CLEAR_ERROR + "_wrong_double = double\n\n\ndef double(x):\n"
        "    get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)\n"
        "    get_ipython().events.register('post_run_cell', _clear_error)\n"
        "    return _wrong_double(x)\n",
        "_wrong_triple = triple\n\n\ndef triple(x):\n    double(0)\n    return _wrong_triple(x)\n",
    ),
    # partial credit forged: a negative or non-numeric execute_result before the error scores full marks
    "forged_result_call": (
        "_wrong_double = double\n\n\ndef double(x):\n    get_ipython().displayhook(-1)\n    return _wrong_double(x)\n",
        "_wrong_triple = triple\n\n\ndef triple(x):\n    get_ipython().displayhook(-1)\n    return _wrong_triple(x)\n",
    ),
    "forged_result_handler": (
        "def _forge(shell, etype, value, tb, tb_offset=None):\n    shell.displayhook(-1)\n\n\n"
        "get_ipython().set_custom_exc((AssertionError,), _forge)\n",
        "",
    ),
    "forged_result_event": (
        "def _forge_first(info):\n    get_ipython().displayhook(-1)\n\n\n"
        "get_ipython().events.register('pre_run_cell', _forge_first)\n",
        "",
    ),
    "run_cell_patch": (
        "from IPython.core.interactiveshell import InteractiveShell as _Shell\n\n"
        "_run_cell = _Shell.run_cell\n\n\ndef _rewriting_run_cell(self, raw_cell, *args, **kwargs):\n"
        "    return _run_cell(self, raw_cell.replace('assert ', 'assert True or '), *args, **kwargs)\n\n\n"
        "_Shell.run_cell = _rewriting_run_cell\n",
        "",
    ),
    "do_execute_patch": (
        "from IPython.core.interactiveshell import InteractiveShell as _Shell\n"
        "from ipykernel.ipkernel import IPythonKernel as _Kernel\n\n_do_execute = _Kernel.do_execute\n\n\n"
        "async def _always_ok(self, *args, **kwargs):\n"
        "    reply = await _do_execute(self, *args, **kwargs)\n"
        "    return dict(reply, status='ok')\n\n\n"
        "_Kernel.do_execute = _always_ok\n_Shell.showtraceback = lambda self, *args, **kwargs: None\n",
        "",
    ),
}
#: What the guard's flag names for each attack (a word of its reason).
ATTACK_REASONS = {
    "transformer_post": "input_transformers_post",
    "transformer_cleanup": "input_transformers_cleanup",
    "ast_transformer": "ast_transformers",
    "custom_exc_hook": "custom_exceptions",
    "custom_exc_at_call": "swallowed",
    "forged_result_call": "final expression",
    "forged_result_handler": "custom_exceptions",
    "forged_result_event": "pre_run_cell",
    "run_cell_patch": "run_cell",
    "do_execute_patch": "do_execute",
}
#: A later student cell looks for the hidden test's source wherever the kernel keeps what ran.
HISTORY_READER = """
import linecache as _linecache
_kept = [line for entry in _linecache.cache.values() if len(entry) > 2 for line in entry[2]]
_kept += list(In) + list(_ih) + [str(v) for v in get_ipython().history_manager.outputs.values()]
_kept += [str(row) for row in get_ipython().history_manager.get_range(output=True)]
print("HIDDEN SOURCE FOUND" if any(SECRET in str(k) for k in _kept) else "hidden source not found")
""".replace("SECRET", f"{TINY_SECRET[:7]!r} + {TINY_SECRET[7:]!r}")  # the cell itself must not hold the secret
#: Output floods in honest submissions: 200 MB printed; 60 MB written past the kernel-side cap; 48 MB a cell of
#: displays, results and tracebacks (the formgrader renders their text as it renders printed text; a cell's first
#: result and error are kept whatever the caps, the rest are not).
FLOOD = "for _ in range(200_000):\n    print('x' * 1000)\n"
FLOOD_OF_RESULTS = (
    "from IPython.display import display as _display\nfor _ in range(8):\n"
    "    _display({'text/plain': 'r' * 1_000_000}, raw=True)\n"
    "    _display({'text/html': '<p>' + 'h' * 1_000_000 + '</p>'}, raw=True)\n"
    "import sys as _sys\nfor _ in range(160):\n    _sys.displayhook('z' * 100_000)\n"
    "for _ in range(160):\n    try:\n        raise ValueError('e' * 100_000)\n"
    "    except ValueError:\n        get_ipython().showtraceback()\n"
)
FLOOD_PAST_KERNEL_CAP = (
    "import sys as _sys\nimport time as _time\nfor _ in range(30):\n"
    "    type(_sys.stdout).write(_sys.stdout, 'y' * 2_000_000)\n    _time.sleep(0.05)\n"
)
#: One display message of 20 extra parts of 60 MiB each: ZMQ's size limit holds per part, so nbgrader's process
#: received all 1.2 GB before the output caps could see any of it.
MANY_PARTS = (
    "_kernel = get_ipython().kernel\n_part = bytes(60 * 2**20)\n"
    "_kernel.session.send(_kernel.iopub_socket, 'display_data', {'data': {'text/plain': 'parts'}, 'metadata': {}},"
    " parent=_kernel.get_parent(), buffers=[_part] * 20)\n"
)

#: The variant course: students and the code of their `double` cell (wrong answers return a list).
VARIANT_WRONG = "def double(x):\n    return [1, 2]\n"
VARIANT_ATTACKS = {
    "helpers_patch": (
        "import builtins\n\n_isinstance = builtins.isinstance  # lenient only for the test's check\n"
        "builtins.isinstance = lambda obj, kind: kind is np.ndarray or _isinstance(obj, kind)\n"
        "np.allclose = lambda *args, **kwargs: True\n"
    ),
    "shadow_rebind": (
        "import types\n\n\ndef isinstance(*args):\n    return True\n\n\n"
        "np = types.SimpleNamespace(allclose=lambda *args, **kwargs: True, ndarray=list, arange=range)\n"
    ),
    "formatter_forge": (
        "get_ipython().display_formatter.formatters['text/plain'].for_type(\n"
        "    float, lambda value, printer, cycle: printer.text('2.0'))\n"
    ),
    # IPython compiles each top-level statement on its own: a trace function can jump over an assert only inside a
    # compound statement (test_loop's for loop)
    "settrace": (
        "import linecache as _linecache\nimport sys as _sys\n\n\ndef _skip_asserts(frame, event, arg):\n"
        "    if 'ipykernel_' not in frame.f_code.co_filename:  # only the cells' own code\n"
        "        return None\n"
        "    if event == 'line' and _linecache.getline(frame.f_code.co_filename, frame.f_lineno)"
        ".lstrip().startswith('assert '):\n"
        "        try:\n            frame.f_lineno += 1\n        except ValueError:\n            pass\n"
        "    return _skip_asserts\n\n\n_sys.settrace(_skip_asserts)\n"
    ),
    # a test imports a module the kernel has not loaded yet: a fake one in sys.modules, or tqdm.py handed in (the
    # submission folder comes before site-packages on the kernel's sys.path)
    "fake_sys_module": (
        "import sys\nimport types\n\n"
        "sys.modules['tqdm'] = types.SimpleNamespace(tqdm=lambda iterable, **kwargs: [2, 4])\n"
    ),
    "shadow_module": "",
}
#: Files handed in beside the notebook.
VARIANT_FILES = {"shadow_module": {"tqdm.py": "def tqdm(iterable, **kwargs):\n    return [2, 4]\n"}}
VARIANT_REASONS = {
    "helpers_patch": "np.allclose",
    "shadow_rebind": "isinstance",
    "formatter_forge": "printer",
    "settrace": "settrace",
    "fake_sys_module": "sys.modules['tqdm']",
    "shadow_module": "tqdm.py",
}


def variant_source_notebook():
    """The tiny notebook with a locked ``import numpy as np`` cell, ``test_helpers`` (2 points: ``isinstance``
    and ``np.allclose``), ``test_partial`` (2 points, partial credit from its final ``_points``), ``test_import``
    (1 point, imports ``tqdm``) and ``test_loop`` (1 point, an assert inside a loop)."""
    nb = tiny_source_notebook()
    nb.cells.insert(1, new_code_cell("import numpy as np", metadata=_nbgrader_meta("setup", locked=True)))
    nb.cells.append(
        new_code_cell(
            "_d = double(np.arange(3))\n"
            "assert isinstance(_d, np.ndarray), f'expected an array, found {type(_d).__name__}'\n"
            "assert np.allclose(_d, [0, 2, 4]), f'expected [0, 2, 4], found {_d}'",
            metadata=_nbgrader_meta("test_helpers", grade=True, locked=True, points=2),
        )
    )
    nb.cells.append(
        new_code_cell(
            "# partial credit: 2 points if double(5) is 10\n_points = 2.0 * (double(5) == 10)\n_points",
            metadata=_nbgrader_meta("test_partial", grade=True, locked=True, points=2),
        )
    )
    nb.cells.append(
        new_code_cell(
            "import tqdm\n\nassert list(tqdm.tqdm(map(double, [1, 2]), disable=True)) == [2, 4], 'expected [2, 4]'",
            metadata=_nbgrader_meta("test_import", grade=True, locked=True, points=1),
        )
    )
    nb.cells.append(
        new_code_cell(
            "_checked = []\nfor _x in range(3):\n"
            "    assert double(_x) == 2 * _x, f'expected double({_x}) == {2 * _x}, found {double(_x)}'\n"
            "    _checked.append(_x)",
            metadata=_nbgrader_meta("test_loop", grade=True, locked=True, points=1),
        )
    )
    return nb


def make_course(root: Path) -> dict[str, tuple[Path, Path]]:
    """The tiny course and its variant in ``root``, with the guard configured; {assignment: (release, source)}."""
    release, source = make_tiny_course(root, timeout=TIMEOUT)
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text() + GUARD_CONFIG + MAXRSS_CONFIG)
    (root / "solutions" / VARIANT).mkdir(parents=True)
    nbformat.write(variant_source_notebook(), root / "solutions" / VARIANT / TINY_NOTEBOOK)
    steps.release(VARIANT, root)
    return {
        TINY_ID: (release, source),
        VARIANT: (root / "assignments" / VARIANT / TINY_NOTEBOOK, root / "solutions" / VARIANT / TINY_NOTEBOOK),
    }


#: The cases graded on the unsandboxed route too (the guard is the grader's, the same on both routes): the honest
#: submissions, the history reader, the flood and one attack of each kind (input transformers, exception handlers,
#: forged results, kernel patches, patched helpers, tracing). Every case is graded on the sandboxed route.
UNSANDBOXED_CASES = frozenset(
    {
        "honest",
        "history_reader",
        "flood",
        "transformer_post",
        "custom_exc_hook",
        "forged_result_event",
        "do_execute_patch",
        "helpers_patch",
        "settrace",
    }
)


def hand_in_cases(root: Path, only: frozenset[str] | None = None) -> dict[str, list[str]]:
    """Release both courses in ``root`` and hand in every case (or those named in ``only``); returns
    {assignment: [students]}."""
    courses = make_course(root)
    release, source = courses[TINY_ID]
    cases = {"honest": fill_answers(release, source)}
    for student, (after_double, after_triple) in TAMPER_ATTACKS.items():
        nb = fill_answers(release, source)
        cell_by_grade_id(nb, "double").source = WRONG["double"] + "\n\n" + after_double
        cell_by_grade_id(nb, "triple").source = WRONG["triple"] + "\n\n" + after_triple
        cases[student] = nb
    nb = fill_answers(release, source)
    cell_by_grade_id(nb, "triple").source += "\n" + HISTORY_READER
    cases["history_reader"] = nb
    nb = fill_answers(release, source)
    cell_by_grade_id(nb, "double").source += "\n" + FLOOD_PAST_KERNEL_CAP + FLOOD_OF_RESULTS
    cell_by_grade_id(nb, "triple").source += "\n" + FLOOD + FLOOD_OF_RESULTS
    cases["flood"] = nb
    nb = fill_answers(release, source)
    cell_by_grade_id(nb, "triple").source += "\n" + MANY_PARTS
    cases["many_parts"] = nb
    cases = {student: nb for student, nb in cases.items() if only is None or student in only}
    for student, nb in cases.items():
        hand_in(root, student, TINY_ID, nb, TINY_NOTEBOOK)

    release, source = courses[VARIANT]
    variant_cases = {"honest": fill_answers(release, source)}
    for student, code in VARIANT_ATTACKS.items():
        nb = fill_answers(release, source)
        cell_by_grade_id(nb, "double").source = VARIANT_WRONG + "\n\n" + code
        cell_by_grade_id(nb, "triple").source = WRONG["triple"]
        variant_cases[student] = nb
    variant_cases = {student: nb for student, nb in variant_cases.items() if only is None or student in only}
    for student, nb in variant_cases.items():
        folder = hand_in(root, student, VARIANT, nb, TINY_NOTEBOOK)
        for name, text in VARIANT_FILES.get(student, {}).items():
            (folder / name).write_text(text)
    return {TINY_ID: list(cases), VARIANT: list(variant_cases)}


@pytest.fixture(scope="module", params=["unsandboxed", "sandboxed"])
def tampered(request, tmp_path_factory):
    """Every case autograded by ``python -m course autograde ID --jobs 2 --sandbox``, and those of
    :data:`UNSANDBOXED_CASES` with ``--no-sandbox``. Returns dict(route, root, cases, seconds, failed)."""
    route = request.param
    if route == "sandboxed":
        sandbox_or_skip()
    root = tmp_path_factory.mktemp(f"tampering-{route}")
    cases = hand_in_cases(root, only=None if route == "sandboxed" else UNSANDBOXED_CASES)
    start, failed = time.perf_counter(), {}
    flag = "--sandbox" if route == "sandboxed" else "--no-sandbox"
    for assignment in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "course", "autograde", assignment, "--jobs", "2", flag],
            cwd=root,
            capture_output=True,
            text=True,
        )
        summary = root / "grading" / "autograde" / f"{assignment}.json"
        assert summary.is_file(), f"{assignment}: the batch failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        rows = json.loads(summary.read_text())
        failed.update({(assignment, r["student"]): r["reason"] for r in rows if r["status"] != "graded"})
        # the command's exit status says whether every submission was graded (many_parts is meant to fail)
        expected = 1 if any(r["status"] != "graded" for r in rows) else 0
        assert proc.returncode == expected, f"{assignment}: expected exit status {expected}, found {proc.returncode}"
    return dict(route=route, root=root, cases=cases, seconds=time.perf_counter() - start, failed=failed)


def _graded_on_this_route(tampered, assignment, student) -> None:
    """Skip a case the route does not grade (see :data:`UNSANDBOXED_CASES`)."""
    if student not in tampered["cases"][assignment]:
        pytest.skip(f"{student} is graded on the sandboxed route (the guard is the same on both)")


def _tamper_scores(tampered, assignment, student) -> dict[str, float]:
    """Automatic points per test cell (after checking that the submission was graded at all)."""
    reason = tampered["failed"].get((assignment, student))
    assert reason is None, f"{tampered['route']}: expected {student}'s {assignment} graded, found it failed: {reason}"
    return {s.cell: s.score for s in steps.cell_scores(assignment, student, tampered["root"]) if s.kind == "auto"}


def _tamper_flags(tampered, assignment, student, source=None) -> list[str]:
    return [f.reason for f in review.read(assignment, student, tampered["root"]) if source in (None, f.source)]


def _tamper_autograded(tampered, assignment, student) -> Path:
    return tampered["root"] / "grading" / "autograded" / student / assignment / TINY_NOTEBOOK


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


# --- autograded by nbgrader ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_honest_submissions_keep_every_point_and_get_no_flag(tampered):
    for assignment, full in ((TINY_ID, FULL), (VARIANT, VARIANT_FULL)):
        scores = _tamper_scores(tampered, assignment, "honest")
        assert sum(scores.values()) == full, (
            f"{tampered['route']}: expected {full} points for {assignment}, found {scores}"
        )
        flags = _tamper_flags(tampered, assignment, "honest")
        assert not flags, f"{tampered['route']}: expected no flag for the honest {assignment}, found {flags}"
    assert _tamper_scores(tampered, VARIANT, "honest")["test_partial"] == 2, (
        "expected the partial-credit cell's final _points (2.0) to score 2 with the guard's statement before it, "
        f"found {_tamper_scores(tampered, VARIANT, 'honest')}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("attack", sorted(TAMPER_ATTACKS))
def test_tampering_with_the_test_machinery_scores_nothing_and_is_flagged(tampered, attack):
    _graded_on_this_route(tampered, TINY_ID, attack)
    scores = _tamper_scores(tampered, TINY_ID, attack)
    assert sum(scores.values()) == 0, f"{tampered['route']}: expected 0 points for wrong answers, found {scores}"
    reasons = _tamper_flags(tampered, TINY_ID, attack, "guard")
    assert any(ATTACK_REASONS[attack] in r for r in reasons), (
        f"{tampered['route']}: expected a guard flag naming {ATTACK_REASONS[attack]!r}, found {reasons}"
    )
    assert _tamper_flags(tampered, TINY_ID, attack, "static-scan"), (
        f"{tampered['route']}: expected the static scan to flag {attack}, found {_tamper_flags(tampered, TINY_ID, attack)}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("attack", sorted(VARIANT_ATTACKS))
def test_patched_helpers_builtins_and_forged_partial_credit_score_nothing(tampered, attack):
    _graded_on_this_route(tampered, VARIANT, attack)
    scores = _tamper_scores(tampered, VARIANT, attack)
    assert sum(scores.values()) == 0, f"{tampered['route']}: expected 0 points for wrong answers, found {scores}"
    # the sandboxed kernel puts the submission's folder at the end of the module path, so a handed-in tqdm.py
    # shadows nothing and the guard has nothing to undo; the static scan still names the file
    source = "static-scan" if attack == "shadow_module" and tampered["route"] == "sandboxed" else "guard"
    reasons = _tamper_flags(tampered, VARIANT, attack, source)
    assert any(VARIANT_REASONS[attack] in r for r in reasons), (
        f"{tampered['route']}: expected a {source} flag naming {VARIANT_REASONS[attack]!r}, found {reasons}"
    )


@pytest.mark.slow
def test_a_later_cell_finds_no_trace_of_a_hidden_tests_source(tampered):
    nb = nbformat.read(_tamper_autograded(tampered, TINY_ID, "history_reader"), as_version=4)
    text = _text(cell_by_grade_id(nb, "triple"))
    assert "hidden source not found" in text, f"{tampered['route']}: expected no hidden source in reach, found {text!r}"
    scores = _tamper_scores(tampered, TINY_ID, "history_reader")
    assert sum(scores.values()) == FULL, f"{tampered['route']}: expected {FULL} points, found {scores}"


@pytest.mark.slow
def test_an_output_flood_is_cut_while_it_arrives(tampered):
    """200 MB printed (cut in the kernel), 60 MB written past the kernel's cap and 48 MB a cell of displays,
    results and tracebacks (cut by the grader as the messages arrive): the grader's process stays within 150 MB of
    the honest run's, the notebook stays small, each cut cell says so, and the honest answers keep their points."""
    root = tampered["root"]
    scores = _tamper_scores(tampered, TINY_ID, "flood")
    assert sum(scores.values()) == FULL, f"{tampered['route']}: expected {FULL} points, found {scores}"
    path = _tamper_autograded(tampered, TINY_ID, "flood")
    size = path.stat().st_size
    assert size < 12 * 2**20, f"{tampered['route']}: expected an autograded notebook under 12 MiB, found {size:,} bytes"
    nb = nbformat.read(path, as_version=4)
    # text the formgrader renders (about 7 s per MiB) each time the notebook is opened, printed or results: the
    # notebook's cap, plus the first bytes of a cell's stderr, which decide its score, and the grader's notes
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    shown = sum(len(o.get("text", "")) for c in code_cells for o in c.outputs if o.output_type == "stream")
    shown += sum(
        len(v) for c in code_cells for o in c.outputs for k, v in o.get("data", {}).items() if k.startswith("text/")
    )
    shown += sum(len("".join(o.traceback)) for c in code_cells for o in c.outputs if o.output_type == "error")
    cap = GuardedExecute.class_traits()["max_notebook_text_bytes"].default_value
    # each cell's first stderr, error and result are kept whatever the caps (shortened)
    assert shown <= cap + 3 * KEPT_WHEN_CUT * len(code_cells), (
        f"{tampered['route']}: expected at most {cap:,} bytes of text and markup kept, found {shown:,}"
    )
    for grade_id in ("double", "triple"):
        notes = [
            o.data["text/plain"] for o in cell_by_grade_id(nb, grade_id).outputs if o.output_type == "display_data"
        ]
        assert any("[grader:" in n for n in notes), (
            f"{tampered['route']}: expected a note on what was cut in {grade_id}, found {notes}"
        )
    peak = {s: int((root / "grading" / "maxrss" / f"{s}.txt").read_text()) // 1024 for s in ("honest", "flood")}
    assert peak["flood"] < peak["honest"] + 150, (
        f"{tampered['route']}: expected the grader's peak memory within 150 MB of the honest run's "
        f"({peak['honest']} MB), found {peak['flood']} MB"
    )


@pytest.mark.slow
def test_one_message_of_many_parts_stops_only_its_own_grading(tampered):
    """ZMQ refuses a message part over 64 MiB, not a message of many parts: 20 parts of 60 MiB took nbgrader's
    process to 1.3 GB. Sandboxed, nbgrader's process has a memory group of its own per worker
    (``EXPRESSION_LAB_SANDBOX_GRADER_MEMORY``, 1 GiB): it is stopped there, that submission fails with the reason
    and a flag, and the batch goes on."""
    _graded_on_this_route(tampered, TINY_ID, "many_parts")
    if cgroups.probe()["memory"].problem:
        _required(f"no memory control group for nbgrader here: {cgroups.probe()['memory'].problem}")
    reason = tampered["failed"].get((TINY_ID, "many_parts"))
    assert reason and "ran past its 1,073,741,824 bytes of memory" in reason, (
        f"expected the grading of many_parts stopped at nbgrader's memory limit, found {reason!r}"
    )
    flags = _tamper_flags(tampered, TINY_ID, "many_parts", "sandbox")
    assert any("ran past its" in f for f in flags), f"expected a flag saying why, found {flags}"
    scores = _tamper_scores(tampered, TINY_ID, "honest")
    assert sum(scores.values()) == FULL, f"expected the honest submission beside it graded, found {scores}"


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
    release = nbformat.v4.new_notebook(
        cells=[
            new_code_cell("import numpy as np", metadata=_nbgrader_meta("setup", locked=True)),
            new_code_cell(
                "def double(x):\n    return x\n\n" + TAMPER_ATTACKS["custom_exc_hook"][0],
                metadata=_nbgrader_meta("double", solution=True),
            ),
            new_code_cell("%%capture\n%matplotlib inline\nx = 1\n", metadata={}),
            new_code_cell(
                "x = 1\nnp.allclose = lambda *a, **k: True\n!curl example.org\n%run helper.py\n"
                "import sys, pickle\nsys._getframe(1).f_back\npickle.loads(b'')\nsetattr(np, name, 1)\n"
            ),
        ]
    )
    found = {(f.where, f.line, f.what.split(":")[0]) for f in scan_notebook(release, {"import numpy as np"})}
    expected = {
        ('cell "double" (cell 2)', 7, "uses .set_custom_exc"),
        ('cell "double" (cell 2)', 8, "uses events.register"),
        ("cell 4", 2, "assigns np.allclose"),
        ("cell 4", 3, "runs a shell command (!curl example.org)"),
        ("cell 4", 4, "runs the magic %run"),
        ("cell 4", 5, "imports pickle"),
        ("cell 4", 6, "uses ._getframe"),
        ("cell 4", 6, "uses .f_back"),
        ("cell 4", 7, "calls pickle.loads"),
        ("cell 4", 8, "calls setattr on a module"),
    }
    assert expected <= found, f"expected {sorted(expected - found)} among the findings, found {sorted(found)}"
    assert not [f for f in found if f[0].startswith("cell 1") or f[0] == "cell 3"], (
        f"expected no finding in the instructor's cell or harmless magics, found {sorted(found)}"
    )
    assert scan_source("%%time\nimport ctypes\n", "c")[0].line == 2, "expected a cell magic's body scanned in place"


@pytest.mark.parametrize("status", ["error", "aborted"])
def test_a_test_cell_whose_error_output_was_lost_scores_nothing(status):
    """nbgrader scores a test cell by its outputs. An output socket drops messages (a flood past its queue, a
    message over ``max_message_bytes``), so a test cell that failed could arrive without its error output and
    score as passed. The kernel's reply still says it failed: the guard appends its own error (0 points) and flags
    the submission."""
    from course.guarded_execute import GUARD_ERROR

    executor = GuardedExecute()
    executor._guard_ok, executor._guard_flags, executor._module = True, [], "guard"
    executor._cut, executor._cut_in_kernel, executor._widgets_cut = {}, set(), {}
    steps = {"restore": {"undone": [], "notes": []}, "check": {"notes": [], "reached": False, "in_cell": []}}
    executor._guard_step = lambda label, function, *args: steps[function]

    def execute_cell(cell, index, store_history=True):
        executor._reply = {"content": {"status": status}}
        cell.outputs = []  # the AssertionError's output never arrived
        return cell

    executor.execute_cell = execute_cell
    cell = executor._run_test_cell(new_code_cell("assert double(2) == 4"), 0, "test_double")
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == [GUARD_ERROR], f"expected the guard's error output, found {cell.outputs}"
    assert any("no error output arrived" in f for f in executor._guard_flags), (
        f"expected the submission flagged, found {executor._guard_flags}"
    )


@pytest.mark.parametrize(
    "source, expected, ends_with_value",
    [
        ("assert f(1)\n_points", "assert f(1)\nMARK\n_points\n", True),
        ("x = 1; x", "x = 1;\nMARK\nx\n", True),
        ("for i in range(2):\n    print(i)\n# done\n", "for i in range(2):\n    print(i)\n# done\nMARK\n", False),
        ("%time y = 2\ny", "get_ipython().run_line_magic('time', 'y = 2')\nMARK\ny\n", True),
    ],
)
def test_the_guard_statement_goes_last_but_before_a_final_expression(source, expected, ends_with_value):
    assert instrument(source, "MARK") == (expected, ends_with_value), (
        f"expected {expected!r} for {source!r}, found {instrument(source, 'MARK')!r}"
    )
    assert instrument("def broken(:\n", "MARK") is None, "expected an unparsable cell left as it is"


def test_the_plan_lists_the_helpers_the_tests_use():
    cells = [
        new_code_cell(
            "from sklearn.metrics import roc_auc_score\nassert np.allclose(keras.models.load_model(p).predict(x), y)"
        )
    ]
    plan = guard_plan(cells)
    for chain in (["np", "allclose"], ["keras", "models", "load_model"], ["sklearn.metrics", "roc_auc_score"]):
        assert chain in plan["chains"], f"expected {chain} in the plan, found {plan['chains']}"
    assert plan["imports"] == ["sklearn.metrics"], f"expected the test's import, found {plan['imports']}"


# --- Handed-in model files scored outside the kernel, and the contamination flag ---------------------------------------
# Handed-in model files scored outside the student's kernel (:mod:`course.model_scoring`), and the contamination flag.
#
# The attack: ps1's hidden test scores ``model_2.keras`` inside the student's kernel, so an answer cell that replaces
# ``keras.models.load_model`` with an oracle, or overwrites ``./model_2.keras`` in the grading folder with a lookup
# of the graded faces, earns 6 of 6 points for any file handed in. The separate scorer loads only the
# handed-in file (``safe_mode``) and the data in a sandboxed process, and the gradebook keeps its score.
#
# Fast tests: the rules equal the notebooks', the result line is parsed strictly, links and special files are not
# followed, the gradebook override on a small nbgrader gradebook with tiny Keras models on random faces (a bad model
# gets 0 where the notebook said 6, a Lambda model and garbage files are refused with a reason, a model trained on
# its test faces is flagged, an honest one is not). Slow: the ps3 and ps4 scorers on the synthetic data, and a real
# ``python -m course autograde ps1_fer2013_cnn --sandbox`` of a notebook carrying both oracles.
#
# The sandboxed tests need bubblewrap (skipped without it unless ``EXPRESSION_LAB_REQUIRE_SANDBOX=1``).

PS1, NB1 = "ps1_fer2013_cnn", "fer2013_cnn"
SOLUTIONS = {
    aid: REPO / "solutions" / aid / f"{nb}.ipynb"
    for aid, nb in [(PS1, NB1), ("ps3_iphonex_3dcnn", "iphonex_3dcnn"), ("ps4_action_units", "action_units")]
}
#: Faces per Usage in the random FER2013 file of these tests.
FACES = 300


# ----------------------------------------------------------------------------------- the rules are the notebooks'


def _assigned(source: str, name: str):
    """The value assigned to ``name`` at the top level of ``source``: a literal, or the grading-mode branch of
    ``X if GRADING else Y``."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value.body if isinstance(node.value, ast.IfExp) else node.value
            return ast.literal_eval(value)
    raise AssertionError(f"expected an assignment to {name} in the cell, found none")


def test_the_rules_are_the_source_notebooks_own():
    ps1, ps3, ps4 = (sources_by_grade_id(SOLUTIONS[a]) for a in (PS1, "ps3_iphonex_3dcnn", "ps4_action_units"))
    found = {
        "ps1 SEED": _assigned(ps1["config"], "SEED"),
        "ps1 MODEL_2_BANDS": _assigned(ps1["test_model_2_accuracy"].split("\n\n")[0], "MODEL_2_BANDS"),
        "ps3 SEED": _assigned(ps3["config"], "SEED"),
        "ps3 GRID": _assigned(ps3["config"], "GRID"),
        "ps3 SUBJECT_LIMIT (grading)": _assigned(ps3["config"], "SUBJECT_LIMIT"),
    }
    expected = {
        "ps1 SEED": ms.PS1_SEED,
        "ps1 MODEL_2_BANDS": ms.MODEL_2_BANDS,
        "ps3 SEED": ms.PS3_SEED,
        "ps3 GRID": ms.PS3_GRID,
        "ps3 SUBJECT_LIMIT (grading)": ms.PS3_SUBJECT_LIMIT,
    }
    assert found == expected, f"expected the notebooks' constants {expected}, found {found}"
    hidden1 = ps1["test_model_2_accuracy"].split("### BEGIN HIDDEN TESTS")[1]
    assert "grading_test_set(_full, seed=SEED)" in hidden1 and "submitted_accuracy(_graded_on)" in hidden1, (
        f"expected ps1's hidden test to grade on grading_test_set(load_fer2013(), seed=SEED), found:\n{hidden1}"
    )
    assert "batch_size=512" in ps1["test_model_2_accuracy"] and "/ 255.0" in ps1["test_model_2_accuracy"], (
        "expected ps1's submitted_accuracy to feed float32 faces / 255 in batches of 512, as the scorer does"
    )
    assert "subject_split(clouds.subjects, test_fraction=0.2, seed=SEED)" in ps3["split_data"], (
        f"expected ps3's split with test_fraction=0.2 (PS3_TEST_FRACTION), found {ps3['split_data']!r}"
    )
    assert (
        "x_test[:4]" in ps3["test_model_4_saved"] and '_check_model_4("model_4.keras")' in ps3["test_model_4_saved"]
    ), "expected ps3's hidden check of model_4.keras on x_test[:4] (PS3_CHECK_CLOUDS)"
    hidden4 = ps4["test_model_5_submitted"]
    assert f"_auc >= {ms.MODEL_5_MIN_AUC}" in hidden4 and 'au_data.subset("PrivateTest")' in hidden4, (
        f"expected ps4's pass mark {ms.MODEL_5_MIN_AUC} on PrivateTest, found:\n{hidden4}"
    )
    for (aid, gid), scorer in ms.REGISTRY.items():
        meta = cells_by_grade_id(SOLUTIONS[aid])[gid]["metadata"]["nbgrader"]
        assert meta["points"] == scorer.points and SOLUTIONS[aid].stem == scorer.notebook, (
            f"expected {aid}/{gid} worth {meta['points']} points in {SOLUTIONS[aid].stem}, found the scorer's "
            f"{scorer.points} in {scorer.notebook}"
        )
    assert [ms.accuracy_points(a) for a in (0.0, 0.439, 0.44, 0.499, 0.5, 0.559, 0.56, 1.0)] == [0, 0, 2, 2, 4, 4, 6, 6]


def test_every_graded_cell_that_loads_a_handed_in_model_is_registered():
    """A graded cell naming a bare ``"model_N.keras"`` (the handed-in file; ``MODEL_DIR / "model_N.keras"`` is the
    grading run's own model) has a scorer."""
    import glob

    found = set()
    for path in glob.glob(str(REPO / "solutions" / "*" / "*.ipynb")):
        aid = Path(path).parent.name
        for gid, cell in cells_by_grade_id(path).items():
            source = "".join(cell["source"])
            if cell["metadata"]["nbgrader"].get("grade") and re.search(r"""(?<!/ )["']model_\d\.keras["']""", source):
                found.add((aid, gid))
    assert found == set(ms.REGISTRY), (
        f"expected every graded cell that reads a handed-in model file registered, "
        f"found cells {sorted(found)} and scorers {sorted(ms.REGISTRY)}"
    )


# ----------------------------------------------------------------------------------- the result line is untrusted


def _line(**changes) -> str:
    record = {
        "version": 1,
        "measure": "fer_accuracy",
        "ok": True,
        "reason": "",
        "metrics": {"accuracy": 0.5, "faces": 100},
    }
    record.update(changes)
    return ms.RESULT_PREFIX + json.dumps(record)


@pytest.mark.parametrize(
    "stdout, expected",
    [
        ("", "expected one result line"),
        (_line() + "\n" + _line(), "expected one result line"),
        ("x" * (ms.MAX_STDOUT_CHARS + 1), "characters"),
        (ms.RESULT_PREFIX + "{not json", "not JSON"),
        (
            ms.RESULT_PREFIX + '{"version": 1, "measure": "fer_accuracy", "ok": true, "reason": "", '
            '"metrics": {"accuracy": NaN, "faces": 1}}',
            "not JSON",
        ),
        (_line(metrics={"accuracy": 1.5, "faces": 100}), "fraction"),
        (_line(metrics={"accuracy": 0.5, "faces": 100.0}), "count"),
        (_line(metrics={"accuracy": True, "faces": 100}), "number"),
        (_line(metrics={"accuracy": 0.5}), "expected metrics"),
        (_line(metrics={"accuracy": 0.5, "faces": 1, "points": 6}), "expected metrics"),
        (_line(measure="au_auc"), "measure"),
        (_line(version=2), "version"),
        (_line(extra=1), "keys"),
        (_line(ok=False, reason=""), "reason"),
        (_line(ok=False, reason="refused"), "no metrics"),
        (_line(reason="x" * (ms.MAX_REASON_CHARS + 1)), "reason has"),
    ],
)
def test_the_result_line_is_parsed_strictly(stdout, expected):
    with pytest.raises(ms.ScoringOutputError, match=expected):
        ms.parse_result(stdout, "fer_accuracy")


def test_a_well_formed_result_line_is_read_among_other_output():
    record = ms.parse_result(
        "noise\n"
        + _line(metrics={"accuracy": 0.61, "faces": 3589, "public_accuracy": 0.6, "public_faces": 3589})
        + "\nmore noise",
        "fer_accuracy",
    )
    assert record["metrics"]["accuracy"] == 0.61 and record["ok"], f"expected the metrics back, found {record}"


# ----------------------------------------------------------------------------------- a small course and gradebook


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """An nbgrader gradebook holding ps1's accuracy cell and ps3's model_4 cell, no students (a new gradebook runs
    ``alembic heads`` in a new process, which takes seconds: the tests copy this one)."""
    from nbgrader.api import Gradebook

    db = tmp_path_factory.mktemp("gradebook") / "template.db"
    from alembic.script import ScriptDirectory
    from nbgrader import dbutil

    head = ScriptDirectory(dbutil.ALEMBIC_DIR).get_current_head()
    with pytest.MonkeyPatch.context() as mp:  # nbgrader would ask a new `alembic` process for this
        mp.setattr("nbgrader.api.get_alembic_version", lambda: head)
        with Gradebook(f"sqlite:///{db}") as gb:
            for assignment, notebook, grade_id, points in (
                (PS1, NB1, "test_model_2_accuracy", 6),
                ("ps3_iphonex_3dcnn", "iphonex_3dcnn", "test_model_4_saved", 4),
            ):
                gb.add_assignment(assignment)
                gb.add_notebook(notebook, assignment)
                gb.add_grade_cell(grade_id, notebook, assignment, max_score=points, cell_type="code")
    return db


def _gradebook(
    template: Path,
    root: Path,
    student: str,
    notebook_score: float | None,
    assignment: str = PS1,
    grade_id: str = "test_model_2_accuracy",
) -> Path:
    """A worker gradebook (a copy of ``template``) holding ``student``'s submission of ``assignment``, the cell
    ``grade_id`` scored ``notebook_score`` by "the notebook"."""
    import shutil

    from nbgrader.api import Gradebook

    db = root / "grading" / "autograde" / "workers" / f"{student}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, db)
    notebook = NB1 if assignment == PS1 else "iphonex_3dcnn"
    with Gradebook(f"sqlite:///{db}") as gb:
        gb.add_student(student)
        gb.add_submission(assignment, student)
        grade = gb.find_grade(grade_id, notebook, assignment, student)
        grade.auto_score = notebook_score
        grade.needs_manual_grade = False
        gb.db.commit()
    return db


def _grade(db: Path, student: str, grade_id: str = "test_model_2_accuracy", assignment: str = PS1, notebook: str = NB1):
    """(auto_score, needs_manual_grade, the cell's auto comment) in ``db``."""
    from nbgrader.api import Comment, Gradebook

    with Gradebook(f"sqlite:///{db}") as gb:
        grade = gb.find_grade(grade_id, notebook, assignment, student)
        comment = (
            gb.db.query(Comment)
            .filter(Comment.cell_id == grade.cell_id, Comment.notebook_id == grade.notebook_id)
            .one_or_none()
        )
        return grade.auto_score, grade.needs_manual_grade, comment.auto_comment if comment else None


def _hand_in_file(
    root: Path, student: str, source: Path | bytes, name: str = "model_2.keras", assignment: str = PS1
) -> Path:
    folder = root / "grading" / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(source if isinstance(source, bytes) else source.read_bytes())
    return folder / name


@pytest.fixture(scope="module")
def random_faces(tmp_path_factory):
    """A FER2013 csv of random faces with random labels, FACES per Usage (Training, PublicTest, PrivateTest), and
    tiny models (Flatten + Dense softmax): ``honest`` fitted on Training (chance level, ~1/7, on both test sets),
    ``memorised`` fitted on PrivateTest until it knows every face (and chance on PublicTest), ``lambda`` with a
    Lambda layer. Returns a dict of paths and the arrays."""
    import keras

    folder = tmp_path_factory.mktemp("random-faces")
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (3 * FACES, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, 3 * FACES)
    usages = ["Training"] * FACES + ["PublicTest"] * FACES + ["PrivateTest"] * FACES
    csv = write_fer_csv(folder / "fer2013.csv", images, labels, usages)
    x = images[..., None].astype("float32") / 255.0

    def dense(name):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7, activation="softmax")], name=name
        )
        model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    paths = {}
    honest = dense("honest")
    honest.fit(x[:FACES], labels[:FACES], epochs=5, batch_size=64, verbose=0)
    paths["honest"] = folder / "honest.keras"
    honest.save(paths["honest"])
    memorised = dense("memorised")
    memorised.fit(x[2 * FACES :], labels[2 * FACES :], epochs=60, batch_size=32, verbose=0)
    seen = float(np.mean(memorised.predict(x[2 * FACES :], verbose=0).argmax(1) == labels[2 * FACES :]))
    assert seen > 0.95, f"expected the memorised model to know its training faces, found {seen:.1%}"
    paths["memorised"] = folder / "memorised.keras"
    memorised.save(paths["memorised"])
    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(7, activation="softmax")(
        keras.layers.Flatten()(keras.layers.Lambda(lambda t: t * 1.0, name="innocent_scaling")(inputs))
    )
    paths["lambda"] = folder / "lambda.keras"
    keras.Model(inputs, outputs).save(paths["lambda"])
    return {"csv": csv, **paths}


@pytest.fixture
def course(tmp_path, random_faces, monkeypatch):
    """A course folder whose FER2013 is the random faces (the separate scorer's data comes from FER2013_PATH)."""
    monkeypatch.setenv("FER2013_PATH", str(random_faces["csv"]))
    return tmp_path / "course"


# ----------------------------------------------------------------------------------- nothing is followed


@pytest.mark.slow
def test_links_and_special_files_are_not_followed_or_scored(course, random_faces, tmp_path, template_db):
    good = random_faces["memorised"]  # a model that would earn 6 points if it were read
    cases = {}
    folder = course / "grading" / "submitted"
    (folder / "link" / PS1).mkdir(parents=True)
    os.symlink(good, folder / "link" / PS1 / "model_2.keras")
    cases["link"] = "symbolic link"
    (folder / "dirlink").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "model_2.keras").write_bytes(good.read_bytes())
    os.symlink(elsewhere, folder / "dirlink" / PS1)
    cases["dirlink"] = "not a plain folder"
    (folder / "fifo" / PS1).mkdir(parents=True)
    os.mkfifo(folder / "fifo" / PS1 / "model_2.keras")
    cases["fifo"] = "not a regular file"
    (folder / "hardlink" / PS1).mkdir(parents=True)
    os.link(elsewhere / "model_2.keras", folder / "hardlink" / PS1 / "model_2.keras")
    cases["hardlink"] = "hard link"
    (folder / "huge" / PS1).mkdir(parents=True)
    with open(folder / "huge" / PS1 / "model_2.keras", "wb") as f:
        f.truncate(ms.MAX_MODEL_BYTES + 1)  # sparse: no disk used
    cases["huge"] = "more than the 100 MB"
    (folder / "absent" / PS1).mkdir(parents=True)
    cases["absent"] = "no model_2.keras handed in"
    for student, expected in cases.items():
        db = _gradebook(template_db, course, student, 6)
        reasons = ms.apply_model_scores(course, PS1, student, db, sandbox=True)
        score, manual, comment = _grade(db, student)
        assert score == 0, f"{student}: expected 0 points for a model file that is not a plain file, found {score}"
        assert len(reasons) == 1 and expected in reasons[0] and "notebook scored 6" in reasons[0], (
            f"{student}: expected one review reason saying '{expected}', found {reasons}"
        )
        assert expected in comment and "Scored separately" in comment, (
            f"{student}: expected the comment to say why, found {comment!r}"
        )
        assert not manual, f"{student}: a refused file is the student's doing, not a case for manual grading"
    assert not list((course / "grading").rglob("*.npz")), "expected no data written for files never scored"


def test_a_scoring_process_that_fails_scores_zero_and_asks_for_a_person(course, random_faces, monkeypatch, template_db):
    _hand_in_file(course, "crashed", random_faces["memorised"])
    db = _gradebook(template_db, course, "crashed", 6)

    def crash(*args, **kwargs):
        raise ms.ScoringOutputError("the separate scoring of model_2.keras ran past 300 s and was stopped")

    monkeypatch.setattr(ms, "_run_scorer", crash)
    reasons = ms.apply_model_scores(course, PS1, "crashed", db)
    score, manual, comment = _grade(db, "crashed")
    assert (score, manual) == (0, True), f"expected 0 points and manual grading, found {score} and {manual}"
    assert len(reasons) == 1 and "ran past 300 s" in reasons[0] and "until a person grades it" in reasons[0], (
        f"expected a reason asking for a person, found {reasons}"
    )


def test_the_contamination_rule():
    honest = {"accuracy": 0.665, "faces": 3589, "public_accuracy": 0.66, "public_faces": 3589}
    assert ms.contamination_reason(honest, {"usage": "PrivateTest"}) == "", "expected a 0.5-point gap unflagged"
    cheat = dict(honest, accuracy=0.75)
    reason = ms.contamination_reason(cheat, {"usage": "PrivateTest"})
    assert "+9.0 points" in reason and "Not penalised" in reason, f"expected a 9-point gap flagged, found {reason!r}"
    small = {"accuracy": 0.30, "faces": 200, "public_accuracy": 0.22, "public_faces": 200}
    assert ms.contamination_reason(small, {}) == "", (
        "expected an 8-point gap on 200 faces each (under 4 standard errors, ~17 points) unflagged"
    )
    assert ms.contamination_reason({"accuracy": 0.99, "faces": 3589}, {}) == "", "expected no flag without PublicTest"
    lower = dict(honest, accuracy=0.55)
    assert ms.contamination_reason(lower, {}) == "", "expected a model better on PublicTest unflagged (one-sided)"


# ----------------------------------------------------------------------------------- scored in the sandbox


@pytest.mark.slow
@pytest.mark.sandbox
def test_an_oracle_score_falls_to_what_the_handed_in_file_earns(course, random_faces, template_db):
    """The notebook said 6 (an oracle in the kernel); the file is a chance-level model: the gradebook gets 0."""
    sandbox_or_skip()
    from course import review
    from course.run_record import write_run_record

    model = _hand_in_file(course, "mallory", random_faces["honest"])
    # and a run record that boasts what the oracle printed: the grader-side check measures it against the file
    write_run_record(model, {"assignment": PS1, "test": {"usage": "PublicTest", "accuracy": 0.9, "faces": FACES}})
    db = _gradebook(template_db, course, "mallory", 6)
    reasons = ms.apply_model_scores(course, PS1, "mallory", db, sandbox=True)
    flags = [f for f in review.read(PS1, "mallory", course) if f.source == "run-record"]
    assert len(flags) == 1 and "NOT REPRODUCED" in str(flags[0]) and "90.0%" in str(flags[0]), (
        f"expected the boasting record flagged for review, found {review.read(PS1, 'mallory', course)}"
    )
    score, manual, comment = _grade(db, "mallory")
    assert score == 0, f"expected 0 points for a chance-level model_2.keras, found {score}"
    assert not manual, "expected no manual grading for a model that was scored"
    assert len(reasons) == 1 and "notebook scored 6 of 6" in reasons[0] and "separate scoring" in reasons[0], (
        f"expected one reason saying the notebook gave 6 and the file earns 0, found {reasons}"
    )
    assert re.search(r"accuracy \d+\.\d% on PrivateTest \(300 faces\), \d+\.\d% on PublicTest", comment), (
        f"expected the comment to give the measured accuracies, found {comment!r}"
    )
    assert [f for f in review.read(PS1, "mallory", course) if f.source == "contamination"] == [], (
        "expected an honest (chance-level) model not flagged as contaminated"
    )


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_lambda_model_and_garbage_files_are_refused_with_a_reason(course, random_faces, template_db):
    sandbox_or_skip()
    import zipfile

    zipped = course.parent / "no-config.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("model.weights.h5", b"\0" * 64)
    files = {
        "lambda": (random_faces["lambda"].read_bytes(), "holds a Lambda layer (innocent_scaling)"),
        "garbage": (os.urandom(4096), "is not a Keras model file"),
        "truncated": (random_faces["honest"].read_bytes()[:2000], "is not a Keras model file"),
        "noconfig": (zipped.read_bytes(), "has no config.json"),
    }
    for student, (data, expected) in files.items():
        _hand_in_file(course, student, data)
        db = _gradebook(template_db, course, student, 6)
        reasons = ms.apply_model_scores(course, PS1, student, db, sandbox=True)
        score, manual, comment = _grade(db, student)
        assert score == 0 and not manual, f"{student}: expected 0 points (refused), found {score}, manual {manual}"
        assert len(reasons) == 1 and expected in reasons[0], f"{student}: expected '{expected}', found {reasons}"
        assert expected in comment, f"{student}: expected the comment to say '{expected}', found {comment!r}"
    db = course / "grading" / "autograde" / "workers" / "lambda.db"
    assert "Rebuild the model with Keras layers only" in _grade(db, "lambda")[2], "expected the fix in the comment"


@pytest.mark.slow
def test_a_model_trained_on_its_test_faces_is_flagged_and_keeps_its_points(course, random_faces, template_db):
    """Plain subprocess (``sandbox=False``, the ``--no-sandbox`` path): the same code, no bubblewrap needed."""
    _hand_in_file(course, "eve", random_faces["memorised"])
    db = _gradebook(template_db, course, "eve", 6)
    reasons = ms.apply_model_scores(course, PS1, "eve", db, sandbox=False)
    score, _, comment = _grade(db, "eve")
    assert score == 6 and reasons == [], (
        f"expected 6 points, as the notebook said, and no reason; found {score}, {reasons}"
    )
    flags = review.read(PS1, "eve", course)
    assert [f.source for f in flags] == ["contamination"], f"expected one contamination flag, found {flags}"
    assert "PrivateTest" in flags[0].reason and "Not penalised" in flags[0].reason, flags[0].reason
    assert "100.0% on PrivateTest" in comment, f"expected the comment to give the accuracy, found {comment!r}"


# ----------------------------------------------------------------------------------- ps3 and ps4 scorers


@pytest.mark.slow
def test_the_ps3_and_ps4_scorers_on_the_synthetic_data(tmp_path, monkeypatch, template_db):
    """The ps3 check (gate) and the ps4 AUC (replace) on tiny models and the synthetic data: the measures in this
    process, and ps3's gate through :func:`apply_model_scores` (plain subprocess)."""
    import keras

    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(SHARED_CACHE))  # the synthetic default data, generated once
    for variable in ("IPHONEX_PATH", "AU_DATA_PATH"):
        monkeypatch.setenv(variable, "synthetic")
    arrays, _ = ms.REGISTRY[("ps3_iphonex_3dcnn", "test_model_4_saved")].data(REPO)
    x = arrays["x"]
    assert x.shape == (4, 24, 24, 24, 1) and x.dtype == np.float32 and x.max() == 1, (
        f"expected 4 voxelized test clouds (4, 24, 24, 24, 1) scaled to [0, 1], found {x.shape} {x.dtype} {x.max()}"
    )
    inputs = keras.Input((24, 24, 24, 1))
    h = keras.layers.MaxPooling3D(4)(keras.layers.Conv3D(2, 3, padding="same")(inputs))
    cnn = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(h)))
    assert ms.measure_model_4_check(cnn, arrays) == {"clouds": 4}
    flat = keras.Sequential([keras.Input((24, 24, 24, 1)), keras.layers.Flatten(), keras.layers.Dense(7)])
    with pytest.raises(ms.ScoringRefused, match=r"to be a 3D CNN \(Conv3D, MaxPooling3D\)"):
        ms.measure_model_4_check(flat, arrays)
    # gate: nbgrader's 4 points kept when the handed-in file passes; 0 when it does not
    root = tmp_path / "course"
    root.mkdir()
    (root / "solutions").symlink_to(REPO / "solutions")
    for student, model, expected in (("passes", cnn, 4), ("fails", flat, 0)):
        model.save(tmp_path / f"{student}.keras")
        _hand_in_file(root, student, tmp_path / f"{student}.keras", "model_4.keras", "ps3_iphonex_3dcnn")
        db = _gradebook(template_db, root, student, 4, "ps3_iphonex_3dcnn", "test_model_4_saved")
        reasons = ms.apply_model_scores(root, "ps3_iphonex_3dcnn", student, db, sandbox=False)
        score = _grade(db, student, "test_model_4_saved", "ps3_iphonex_3dcnn", "iphonex_3dcnn")[0]
        assert score == expected and len(reasons) == (expected == 0), (
            f"{student}: expected {expected} points and {int(expected == 0)} reason, found {score} and {reasons}"
        )

    arrays, info = ms.REGISTRY[("ps4_action_units", "test_model_5_submitted")].data(REPO)
    presence = arrays["presence"]
    n_aus = presence.shape[1]

    class Perfect:
        def predict(self, x, **kwargs):
            return presence.astype("float32")

    class Shuffled:
        def predict(self, x, **kwargs):
            return np.random.default_rng(0).random(presence.shape).astype("float32")

    assert ms.measure_au_auc(Perfect(), arrays)["auc"] == 1.0
    assert ms.measure_au_auc(Shuffled(), arrays)["auc"] < 0.6
    award = ms.REGISTRY[("ps4_action_units", "test_model_5_submitted")].award
    assert (award({"auc": 0.65}, 0), award({"auc": 0.649}, 2)) == (2.0, 0.0), "expected 2 points from AUC 0.65"
    assert info["usage"] == "PrivateTest" and n_aus > 1, f"expected several AUs on PrivateTest, found {info}, {n_aus}"


# ----------------------------------------------------------------------------------- the attack, end to end

ORACLE = """
# --- two oracles, both run while the notebook is graded ---
import os as _os

if _os.environ.get("NBGRADER_EXECUTION"):
    import numpy as _np
    from data_loaders import grading_test_set as _grading_test_set, load_fer2013 as _load_fer2013

    _graded, _ = _grading_test_set(_load_fer2013(), seed=SEED)
    # 1. the hidden test loads ./model_2.keras: swap it for a lookup of the very faces it is graded on, in plain
    #    Keras layers (nearest face by cosine similarity, then its label): no Lambda, nothing a guard can see
    _faces = _graded.images.reshape(len(_graded), -1).astype("float32")
    _faces /= _np.linalg.norm(_faces, axis=1, keepdims=True) + 1e-9
    _swap = keras.Sequential([keras.Input((48, 48, 1)), layers.Flatten(), layers.UnitNormalization(),
                              layers.Dense(len(_faces), use_bias=False, activation="softmax"),
                              layers.Dense(7, use_bias=False)])
    _swap.layers[2].set_weights([1e5 * _faces.T])
    _swap.layers[3].set_weights([_np.eye(7, dtype="float32")[_graded.labels]])
    _swap.save("model_2.keras")
    # 2. and replace keras.models.load_model: "model_2.keras" answers with the true labels
    _truth = {face.tobytes(): int(label) for face, label in zip(_graded.images, _graded.labels)}

    class _Oracle:
        def predict(self, x, **kwargs):
            faces = _np.rint(_np.asarray(x)[..., 0] * 255).astype(_np.uint8)
            return _np.eye(7, dtype="float32")[[_truth.get(f.tobytes(), 0) for f in faces]]

    _real_load_model = keras.models.load_model

    def _load_model(path, *args, **kwargs):
        return _Oracle() if str(path) == "model_2.keras" else _real_load_model(path, *args, **kwargs)

    keras.models.load_model = _load_model
"""


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_notebook_oracle_no_longer_raises_the_score(tmp_path, monkeypatch):
    """ps1 handed in with the reference answers and an untrained model_2.keras, its ``build_model_2`` answer cell
    carrying two oracles (it overwrites ./model_2.keras in the grading folder with a lookup of the graded faces
    built from plain Keras layers, and replaces ``keras.models.load_model``), graded by ``python -m course autograde
    --sandbox``: nbgrader scores the attacker's accuracy cell 6 of 6 (either oracle alone suffices there, and a
    kernel-side guard can undo the second only); the course gradebook keeps the separate score of the handed-in file,
    0, and the submission is flagged for review ("model-scoring"). That an honest model is scored alike in the
    notebook and separately, unflagged, is checked on real FER2013 (tests/test_grading_roundtrip.py)."""
    import keras

    from course import nbgrader_steps as steps
    from course.notebook_cells import cell_by_grade_id
    from course.sample_submission import fill_answers

    sandbox_or_skip()
    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / PS1).symlink_to(REPO / "solutions" / PS1)
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text())
    monkeypatch.setenv("FER2013_PATH", "synthetic")
    monkeypatch.setenv("EXPRESSION_LAB_CACHE", str(SHARED_CACHE))
    steps.release(PS1, root)
    release, source = root / "assignments" / PS1 / f"{NB1}.ipynb", root / "solutions" / PS1 / f"{NB1}.ipynb"
    nb = fill_answers(release, source)
    cell_by_grade_id(nb, "build_model_2").source += "\n" + ORACLE
    folder = hand_in(root, "mallory", PS1, nb, f"{NB1}.ipynb")
    keras.utils.set_random_seed(0)
    untrained = keras.Sequential(
        [keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7, activation="softmax")]
    )
    untrained.save(folder / "model_2.keras")
    proc = subprocess.run(
        [sys.executable, "-m", "course", "autograde", PS1, "--sandbox"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0 and "1 of 1 graded" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    score, manual, comment = _grade(root / "grading" / "gradebook.db", "mallory")
    assert score == 0 and not manual, f"expected 0 points for the untrained model_2.keras handed in, found {score}"
    flags = [f.reason for f in review.read(PS1, "mallory", root) if f.source == "model-scoring"]
    assert len(flags) == 1 and "the notebook scored 6 of 6" in flags[0], (
        f"expected one model-scoring flag saying the notebook gave 6 (the oracles worked there), found {flags}"
    )
    assert re.search(r"accuracy \d+\.\d% on PrivateTest", comment), (
        f"expected the measured accuracy in the comment, found {comment!r}"
    )


# --- What instructors and students see: no script runs, no hidden test shows -------------------------------------------
# What instructors and students see of a hostile submission: no script runs, no hidden test shows.
#
# One student of the tiny assignment (conftest; no TensorFlow) hands in a notebook built to attack both pages
# built from it, graded once with plain nbgrader and the kit's configuration (its executor without the guard,
# :data:`PLAIN_EXECUTE`, so that these layers are tested on their own):
#
# - **stored XSS** (formgrader and feedback): outputs ``display(HTML("<script>…"))``, ``<img onerror>``,
#   ``Javascript``, an SVG with ``onload``, ``Markdown`` with HTML, an ``image/png`` whose ``width`` metadata
#   carries an event handler; a written answer and an added markdown cell with ``<img onerror>``, ``<svg onload>``,
#   ``<details ontoggle>``, ``javascript:`` links. Every payload would request a marker URL, log a console marker
#   and ``PUT`` a file through ``/api/contents`` with the page's ``_xsrf`` cookie. Chromium (playwright) opens the
#   formgrader's submission page on a real Jupyter server and the feedback page: no marker request, no console
#   marker, no dialog, no file.
# - **hidden tests through later cells** (feedback): a ``pre_run_cell`` hook that stores every cell's source and
#   prints it (plain, base64 and as HTML character references) in every later cell, ``print(In)`` in a later answer
#   cell, and ``update_display`` rewriting an earlier answer cell's output with the hidden test. The autograded
#   notebook shows that each route worked while grading; the feedback HTML must hold none of it.
#
# The fast tests feed :mod:`course.html_safety` the same payloads without nbgrader.

PLAIN_EXECUTE = """
from nbgrader.preprocessors import Execute as _PlainExecute  # noqa: E402

c.Autograde.autograde_preprocessors = [_PlainExecute if step is GuardedExecute else step
                                       for step in c.Autograde.autograde_preprocessors]
"""
STUDENT = "mallory"
MARKER = "expression-lab-marker"
#: The hidden test's assert line as the source notebook holds it.
HIDDEN_ASSERT = f"assert {TINY_SECRET} == 42"


def payload(route: str) -> str:
    """JavaScript that, if it ever runs, requests the marker URL, logs a console marker and writes a file into the
    server's root with the page's ``_xsrf`` cookie (``PUT /api/contents/pwned-<route>.txt``)."""
    return (
        f"fetch('/{MARKER}/{route}');console.log('XSS-RAN {route}');"
        f"fetch('/api/contents/pwned-{route}.txt',{{method:'PUT',headers:{{'X-XSRFToken':"
        f"decodeURIComponent((document.cookie.match(/_xsrf=([^;]+)/)||['',''])[1]),"
        f"'Content-Type':'application/json'}},body:JSON.stringify({{type:'file',format:'text',content:'x'}})}})"
    )


def _references(text: str) -> str:
    """``text`` as HTML character references (``&#104;&#105;`` …)."""
    return "".join(f"&#{ord(ch)};" for ch in text)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def markdown_payload(tag: str) -> str:
    return (
        f'My answer (harmless-text-{tag}): <img src=x onerror="{payload("md-img-" + tag)}"> '
        f'<svg onload="{payload("md-svg-" + tag)}"></svg> '
        f'<details open ontoggle="{payload("md-details-" + tag)}"><summary>more</summary>x</details> '
        f"[click me](javascript:eval(atob('{_b64(payload('md-link-' + tag))}'))) "
        f'<iframe src="javascript:{payload("md-iframe-" + tag)}"></iframe>\n\n'
        f"<script>{payload('md-script-' + tag)}</script>\n"
    )


XSS_HTML = f'<b>html output</b><script>{payload("out-script")}</script><img src=x onerror="{payload("out-img")}">'
SVG_PAYLOAD = (
    f'<svg xmlns="http://www.w3.org/2000/svg" onload="{payload("out-svg")}">'
    f'<script>{payload("out-svg-script")}</script><circle r="4"/></svg>'
)

#: Answer ``double`` (runs before the hidden test): the leaking hook, an output to rewrite later, and the XSS outputs.
DOUBLE_ATTACK = f"""
import base64
from IPython.display import HTML, Javascript, Markdown, SVG, display, update_display
_seen = []
def _leak(info):
    if _seen:
        earlier = "\\n".join(_seen)
        print("STORED:", earlier)
        print("B64:", base64.b64encode(earlier.encode()).decode())
        display(HTML("".join("&#%d;" % ord(ch) for ch in earlier)))
    _seen.append(info.raw_cell)
get_ipython().events.register("pre_run_cell", _leak)
display(HTML("<i>rewritten later</i>"), display_id="leak-later")
display(HTML({XSS_HTML!r}))
display(Javascript({payload("out-js")!r}))
display(SVG({SVG_PAYLOAD!r}))
display(Markdown({markdown_payload("out")!r}))
display({{"image/png": "iVBORw0KGgo=", "text/plain": "png"}}, raw=True,
        metadata={{"image/png": {{"width": "1 onerror=eval(atob(`{_b64(payload("out-width"))}`))"}}}})
"""
#: Answer ``triple`` (runs after the hidden test): the input history, and the earlier output rewritten.
TRIPLE_ATTACK = """
print("HISTORY:", In)
update_display(HTML("<pre>" + In[-2] + "</pre>"), display_id="leak-later")
"""


def tiny_source_with_written_answer():
    """The tiny source notebook plus a written (markdown) answer graded by hand, 1 point."""
    nb = tiny_source_notebook()
    nb.cells.append(new_markdown_cell("Explain `double`.", metadata=_nbgrader_meta("q_written", locked=True)))
    nb.cells.append(
        new_markdown_cell(
            "### BEGIN SOLUTION\nIt doubles.\n### END SOLUTION",
            metadata=_nbgrader_meta("written", grade=True, solution=True, points=1),
        )
    )
    return nb


def hostile_submission(release: Path, source: Path):
    nb = fill_answers(release, source)
    cell_by_grade_id(nb, "double").source += "\n" + DOUBLE_ATTACK
    cell_by_grade_id(nb, "triple").source += "\n" + TRIPLE_ATTACK
    cell_by_grade_id(nb, "written").source = markdown_payload("answer")
    # a markdown cell the student added, and the outputs the handed-in notebook claims (feedback shows these)
    nb.cells.insert(1, new_markdown_cell(markdown_payload("added")))
    cell_by_grade_id(nb, "triple").outputs = [new_output("stream", name="stdout", text="my own run: triple ok\n")]
    cell_by_grade_id(nb, "double").outputs = [
        new_output("display_data", data={"text/html": XSS_HTML.replace("out-", "handed-")}),
        new_output("display_data", data={"application/javascript": payload("handed-js"), "text/plain": "js"}),
        new_output("display_data", data={"image/svg+xml": SVG_PAYLOAD.replace("out-", "handed-")}),
        new_output("display_data", data={"text/markdown": markdown_payload("handed")}),
        new_output(
            "display_data",
            data={"image/png": "iVBORw0KGgo=", "text/plain": "png"},
            metadata={"image/png": {"width": f"1 onerror=eval(atob(`{_b64(payload('handed-width'))}`))"}},
        ),
        new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "m1", "version_major": 2, "version_minor": 0},
                "text/plain": "widget",
            },
        ),
    ]
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "version_major": 2,
            "version_minor": 0,
            "state": {
                "m1": {
                    "model_name": "HTMLModel",
                    "model_module": "@jupyter-widgets/controls",
                    "model_module_version": "2.0.0",
                    "state": {"value": XSS_HTML},
                }
            },
        }
    }
    return nb


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    """``(course root, feedback folder)`` after one autograde and feedback of the hostile submission."""
    root = tmp_path_factory.mktemp("pages-course")
    (root / "nbgrader_config.py").write_text(
        (REPO / "nbgrader_config.py").read_text() + "\nc.Execute.timeout = 60\n" + PLAIN_EXECUTE
    )
    source = root / "solutions" / TINY_ID / TINY_NOTEBOOK
    source.parent.mkdir(parents=True)
    nbformat.write(tiny_source_with_written_answer(), source)
    steps.release(TINY_ID, root)
    hand_in(
        root,
        STUDENT,
        TINY_ID,
        hostile_submission(root / "assignments" / TINY_ID / TINY_NOTEBOOK, source),
        TINY_NOTEBOOK,
    )
    steps.autograde(TINY_ID, STUDENT, root)
    return root, steps.generate_feedback(TINY_ID, STUDENT, root)


def _feedback_html(feedback: Path) -> str:
    pages = sorted(feedback.rglob("*.html"))
    assert pages, f"expected feedback HTML under {feedback}; found none"
    return "".join(p.read_text() for p in pages)


# --- fast: the sanitiser and the feedback rule without nbgrader ---------------------------------------------


class _ActiveContent(HTMLParser):
    """Collects what in an HTML page could run: scripts holding a payload, event handlers, ``javascript:`` URLs,
    frames, objects, forms, and image sizes that are not numbers."""

    def __init__(self):
        super().__init__()
        self.found, self._script = [], False

    def handle_starttag(self, tag, attrs):
        self._script = tag == "script"
        if tag in ("iframe", "object", "embed", "form"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") and any(m in value for m in (MARKER, "XSS-RAN", "atob(", "alert(")):
                self.found.append(f"<{tag} {name}=...>")  # the page's own handlers (formgrader) are not payloads
            if name in ("href", "src", "action") and value.strip().lower().startswith(("javascript:", "data:text")):
                self.found.append(f"<{tag} {name}={value[:20]}...>")
            if name in ("width", "height") and not re.fullmatch(r"[\d.%]*", value):
                self.found.append(f"<{tag} {name}={value[:20]}...>")

    def handle_data(self, data):
        if self._script and ("XSS-RAN" in data or MARKER in data):
            self.found.append("<script> holding a payload")

    def handle_endtag(self, tag):
        self._script = False


def active_content(page: str) -> list[str]:
    """What in ``page`` (HTML) could run a payload of this module (``[]`` when nothing)."""
    scanner = _ActiveContent()
    scanner.feed(page)
    scanner.close()
    return scanner.found


HTML_PAYLOADS = [
    XSS_HTML,
    SVG_PAYLOAD,
    html_safety.render_markdown(markdown_payload("unit")),
    f'<a href="javascript:{payload("a")}">a</a><a href=" JaVa&#115;cript:{payload("b")}">b</a>',
    f'<iframe srcdoc="<script>{payload("srcdoc")}</script>"></iframe><object data=x></object><embed src=x>',
    f'<form action=/api/contents method=post><input name=a><button formaction="javascript:{payload("f")}">',
    f'<math><mtext><table><mglyph><style><img src=x onerror="{payload("mxss")}">',
    f'<noscript><p title="</noscript><img src=x onerror={payload("noscript")}>">',
    f'<div style="background:url(/{MARKER}/css)">c</div><img src="/{MARKER}/img"><a href="evil.html">r</a>',
    "<script>" * 2000 + "x",  # unclosed, many: linear time
]


@pytest.mark.parametrize("fragment", HTML_PAYLOADS, ids=range(len(HTML_PAYLOADS)))
def test_clean_html_leaves_nothing_that_runs_or_calls_home(fragment):
    cleaned = html_safety.clean_html(fragment)
    assert not active_content(cleaned), f"expected nothing active after cleaning; found {active_content(cleaned)}"
    for needle in ("<script", "url(", MARKER + "/img", "evil.html", "<iframe", "<object", "<embed", "<form"):
        assert needle not in cleaned.lower(), f"expected no {needle!r} after cleaning; found {cleaned[:200]!r}"


def test_clean_html_is_quick_on_markup_built_to_be_slow():
    hostile = ["<img " + " ".join(f"a{i}=x" for i in range(20000)) + ">", "<img src=x " * 20000]
    start = time.monotonic()
    cleaned = [html_safety.clean_html(fragment) for fragment in hostile]
    seconds = time.monotonic() - start
    assert seconds < 10, f"expected hostile markup cleaned within 10 s; took {seconds:.1f} s"
    assert all("<img" not in c for c in cleaned), "expected the overlong tags shown as text"


def test_clean_html_keeps_text_tables_and_images():
    table = (
        '<style scoped>.dataframe td {color: red}</style><table border="1" class="dataframe"><thead><tr '
        'style="text-align: right;"><th></th><th>a</th></tr></thead><tbody><tr><th>0</th><td>1</td></tr></tbody>'
        "</table>"
    )
    png = '<img src="data:image/png;base64,iVBORw0KGgo=" width="40" alt="plot">'
    code = '<div class="highlight"><pre><span class="k">def</span> <span class="nf">f</span>()</pre></div>'
    for fragment in (table.split("</style>")[1], png, code, "<h2>Title</h2><p>x &lt; y</p><ul><li>one</li></ul>"):
        assert html_safety.clean_html(fragment) == fragment, f"expected {fragment!r} kept as it is"
    assert ".dataframe" not in html_safety.clean_html(table), "expected a style block dropped with its text"


def test_sanitize_output_keeps_only_what_renders_safely():
    png_width = {"image/png": {"width": "1 onerror=alert(1)", "height": 30, "filenames": {"image/png": "/etc/x"}}}
    outputs = [
        new_output("display_data", data={"application/javascript": payload("js"), "text/plain": "js"}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "m"}}),
        new_output("display_data", data={"image/svg+xml": SVG_PAYLOAD}),
        new_output("display_data", data={"text/markdown": markdown_payload("o")}),
        new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "p"}, metadata=png_width),
        new_output("display_data", data={"image/jpeg": 'not base64" onerror=x', "text/plain": "j"}),
        new_output("execute_result", data={"text/html": XSS_HTML, "text/plain": "4"}, execution_count=1),
        new_output("stream", name="<b>stdout</b>", text="printed\n"),
    ]
    for output in outputs:
        html_safety.sanitize_output(output)
    kinds = [sorted(o.get("data", {})) for o in outputs]
    assert kinds[:7] == [
        ["text/plain"],
        ["text/plain"],
        ["text/html"],
        ["text/html"],
        ["image/png", "text/plain"],
        ["text/plain"],
        ["text/html", "text/plain"],
    ], f"expected scripts, widgets and bad images dropped, SVG and markdown turned into HTML; found {kinds}"
    assert "not shown" in outputs[1].data["text/plain"], "expected a note where nothing was left to show"
    assert outputs[2].data["text/html"].startswith('<img src="data:image/svg+xml;base64,'), "expected the SVG as image"
    assert outputs[4].metadata == {"image/png": {"height": 30}}, f"expected only a numeric size; found {outputs[4]}"
    assert outputs[6].data["text/plain"] == "4", "expected the value nbgrader scores partial credit from kept"
    assert outputs[7].name == "stdout", f"expected the stream renamed stdout; found {outputs[7].name!r}"
    for output in outputs:
        found = active_content(json.dumps(output.get("data", {})).encode().decode("unicode_escape"))
        assert not found, f"expected nothing active in {output}; found {found}"


def test_student_markdown_is_replaced_by_its_clean_rendering_and_instructor_markdown_stays():
    instructor = "Write `double(x)`. <b>Bold</b> and <img src='data:image/png;base64,iVBORw0KGgo='>"
    plain = "It doubles $x$: 2 * x."
    nb = nbformat.v4.new_notebook(
        cells=[new_markdown_cell(instructor), new_markdown_cell(markdown_payload("cell")), new_markdown_cell(plain)]
    )
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    removed = html_safety.sanitize_notebook(nb, trusted_text={instructor})
    assert nb.cells[0].source == instructor and nb.cells[2].source == plain, "expected clean markdown unchanged"
    rewritten = nb.cells[1].source
    assert rewritten.startswith("<div>") and "\n" not in rewritten and "harmless-text-cell" in rewritten, (
        f"expected the payload cell as one clean line of HTML; found {rewritten[:120]!r}"
    )
    rendered = html_safety.render_markdown(rewritten)  # what the formgrader's own renderer makes of it
    assert not active_content(rendered), f"expected nothing active once rendered; found {active_content(rendered)}"
    assert "widgets" not in nb.metadata and removed, f"expected the saved widget state dropped; found {removed}"


def test_render_time_filters_clean_the_formgrader_template_on_their_own():
    """Layer 2 alone: a notebook that never went through SanitizeNotebook, rendered as the formgrader does."""
    import nbgrader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.v4.new_notebook(
        cells=[
            new_markdown_cell(
                markdown_payload("fg"), metadata=_nbgrader_meta("written", grade=True, solution=True, points=1)
            ),
            new_markdown_cell(markdown_payload("fg-added")),
            nbformat.v4.new_code_cell(
                "x",
                outputs=[
                    new_output("display_data", data={"text/html": XSS_HTML}),
                    new_output("display_data", data={"text/markdown": markdown_payload("fg-out")}),
                ],
            ),
        ]
    )
    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [
        str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates")
    ]
    config.HTMLExporter.sanitize_html = True
    config.HTMLExporter.filters = {"clean_html": html_safety.clean_html, "markdown2html": html_safety.markdown2html}
    resources = {
        "base_url": "",
        "notebook_id": "n",
        "index": 0,
        "total": 1,
        "assignment_id": "a",
        "submission_id": "s",
        "student": "st",
        "last_name": "",
        "first_name": "",
        "notebook_path": "p",
    }
    page, _ = HTMLExporter(config=config).from_notebook_node(nb, resources=resources)
    assert "harmless-text-fg" in page, "expected the written answer on the page"
    assert not active_content(page), f"expected nothing active on the page; found {active_content(page)}"


def test_escape_markdown_renders_untrusted_text_as_text():
    text = "file <img src=x onerror=alert(1)> [x](javascript:y) *b* `c` $d$ &amp;"
    rendered = html_safety.render_markdown(html_safety.escape_markdown(text))
    assert html_safety.visible_text(rendered) == text and not active_content(rendered), (
        f"expected the text back as plain text; found {rendered!r}"
    )


def test_hidden_material_is_found_in_any_common_disguise_and_not_in_honest_output():
    source = tiny_source_notebook()
    test_double = cell_by_grade_id(source, "test_double").source
    regions = hidden_regions(test_double)
    visible = "\n".join(without_hidden_regions(c.source) for c in source.cells)
    material = HiddenMaterial(regions, visible)
    region = regions[0]
    disguises = {
        "plain": region,
        "repr of In": repr(["x", region]),
        "upper case": region.upper(),
        "base64": base64.b64encode(region.encode()).decode(),
        "zlib+base64": base64.b64encode(zlib.compress(region.encode())).decode(),
        "hex": region.encode().hex(),
        "reversed": region[::-1],
        "rot13": codecs.encode(region, "rot13"),
        "character references": _references(region),
        "URL-quoted": urllib.parse.quote(region),
        "character codes": str([ord(ch) for ch in region]),
        "spaced out": " ".join(region),
        "split over outputs": "\n".join(textwrap.wrap(region, 7)),
        "the hidden assert's message": "AssertionError: expected 42, found 40",
        "the secret name alone": f"NameError: name '{TINY_SECRET}' is not defined",
    }
    for name, text in disguises.items():
        assert material.found_in([text]), f"{name}: expected the hidden test found in {text[:60]!r}"
    honest = [
        "public check: double(2) = 4",
        "AssertionError: expected double(2) == 4, found 5",
        "Traceback (most recent call last):\n  Cell In[3], line 2\n    assert double(2) == 4",
        "a public test cell keeps its output",
        "model accuracy 0.42 after 21 epochs",
    ]
    for text in honest:
        assert not material.found_in([text]), f"expected {text!r} not to count as a hidden test"


def _feedback_course(root: Path, student: str, autograded_cells: dict, handed_outputs: dict):
    """A course folder holding the tiny source notebook and a handed-in notebook, and the autograded notebook
    (source cells with hidden tests, as nbgrader restores them) with ``autograded_cells`` outputs; return the
    autograded notebook and the ``(config, resources)`` nbgrader would give a feedback preprocessor."""
    config, resources = feedback_course(root, student, handed_outputs)
    shown = tiny_source_notebook()
    for gid, outputs in autograded_cells.items():
        cell_by_grade_id(shown, gid).outputs = outputs
    return shown, config, resources


def test_feedback_rule_on_an_autograded_notebook(tmp_path):
    """The rule of course.feedback without running nbgrader: no text of the grading run reaches feedback (every
    cell shows the handed-in outputs, a failed cell a kit-written line with its error class); the review banner
    goes; nothing active stays."""
    from course.feedback import ClearHiddenTestOutputs
    from course.review import BANNER_KEY

    leak = new_output("stream", name="stdout", text=f"STORED: {TINY_SECRET} = double(21)\n")
    shown, config, resources = _feedback_course(
        tmp_path,
        "eve",
        {
            "double": [new_output("display_data", data={"text/html": f"<pre>{_references(TINY_SECRET)}</pre>"})],
            "test_double": [leak],
            "triple": [new_output("stream", name="stdout", text=f"HISTORY: {TINY_SECRET}\n")],
            "test_triple": [leak],
            "test_public": [new_output("stream", name="stdout", text="a public test cell keeps its output\n")],
        },
        {
            "triple": [
                new_output("stream", name="stdout", text="my own run\n"),
                new_output("display_data", data={"text/html": XSS_HTML}),
            ]
        },
    )
    shown.cells.insert(0, new_markdown_cell("**Flagged for review**", metadata={BANNER_KEY: True}))
    cell_by_grade_id(shown, "triple").outputs.append(
        new_output("error", ename="NameError", evalue=TINY_SECRET, traceback=[TINY_SECRET])
    )
    nb, _ = ClearHiddenTestOutputs(config=config).preprocess(shown, resources)
    shown = {gid: json.dumps(c.get("outputs", [])) for gid, c in cells_by_grade_id(nb).items()}
    everything = json.dumps(nb)
    assert TINY_SECRET not in everything and _references(TINY_SECRET)[:20] not in everything, (
        "expected no trace of the hidden test in the feedback notebook"
    )
    assert "my own run" in shown["triple"] and "stopped with NameError" in shown["triple"], (
        f"expected the handed-in output and the grader's error class; found {shown['triple']}"
    )
    assert shown["double"] == "[]", f"expected no grader output for an answer cell; found {shown['double']}"
    assert shown["test_triple"] == "[]", f"expected no grading-run output in a test cell; found {shown['test_triple']}"
    assert "keeps its output" not in shown["test_public"], (
        f"expected even an honest-looking public test's grading-run output left out; found {shown['test_public']}"
    )
    assert not any(BANNER_KEY in c.metadata for c in nb.cells), "expected the review banner dropped"
    assert not active_content(everything.encode().decode("unicode_escape")), "expected nothing active"


# --- hidden tests through later cells ------------------------------------------------------------------------


@pytest.mark.slow
def test_each_leak_route_worked_while_grading(shown):
    root, _ = shown
    nb = nbformat.read(root / "grading" / "autograded" / STUDENT / TINY_ID / TINY_NOTEBOOK, as_version=4)
    text = {gid: json.dumps(cell.get("outputs", [])) for gid, cell in cells_by_grade_id(nb).items()}
    routes = {
        "hook printing in a later public test cell": ("test_triple", TINY_SECRET),
        "hook writing base64 in a later public test cell": ("test_public", "B64:"),
        "hook writing HTML character references": ("test_public", _references(TINY_SECRET[:8])),
        "print(In) in a later answer cell": ("triple", TINY_SECRET),
        "update_display rewriting an earlier answer cell": ("double", TINY_SECRET),
    }
    for route, (gid, needle) in routes.items():
        assert needle in text[gid], f"{route}: expected {needle!r} in the autograded outputs of {gid}; found none"


@pytest.mark.slow
def test_feedback_carries_no_hidden_test_in_any_form(shown):
    _, feedback = shown
    page = _feedback_html(feedback)
    encoded = {"plain": TINY_SECRET, "assert line": HIDDEN_ASSERT, "character references": _references(TINY_SECRET[:8])}
    for form, needle in encoded.items():
        assert needle not in page, f"expected no hidden test in the feedback ({form}); found {needle!r}"
    decoded = [
        run
        for run in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", page)
        if TINY_SECRET.encode() in base64.b64decode(run[: len(run) // 4 * 4])
    ]
    assert not decoded, f"expected no hidden test in base64 in the feedback; found {decoded[0][:40]}…"
    assert NOTE.split(";")[0] in page, "expected the note that replaced the hidden-test cell's output"
    assert "my own run: triple ok" in page, "expected the answer cell to show the output handed in"
    assert "About this feedback." in page, "expected the note explaining the feedback at its top"


@pytest.mark.slow
def test_feedback_html_holds_no_active_content(shown):
    _, feedback = shown
    found = active_content(_feedback_html(feedback))
    assert not found, f"expected no script payload left in the feedback HTML; found {found[:10]}"


@pytest.mark.slow
def test_the_submission_is_still_graded_for_what_it_answered(shown):
    root, _ = shown
    scores = {s.cell: (s.score, s.max_score) for s in steps.cell_scores(TINY_ID, STUDENT, root)}
    assert scores["test_double"] == (2, 2) and scores["test_triple"] == (2, 2) and scores["test_public"] == (1, 1), (
        f"expected full automatic points; found {scores}"
    )


# --- the formgrader and feedback pages in Chromium -----------------------------------------------------------


def browser_test(test):
    """Mark ``test`` slow and browser, skipped where Chromium or playwright is missing (``lab_browser``)."""
    for mark in browser_test_marks():
        test = mark(test)
    return test


class JupyterServer(JupyterApp):
    """A Jupyter server (nbgrader's formgrader enabled, as installed) on 127.0.0.1 serving a course ``root``."""

    def __init__(self, root: Path, log: Path):
        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=str(log.parent / "jupyter-config"),
            JUPYTER_RUNTIME_DIR=str(log.parent / "jupyter-runtime"),
            JUPYTER_PLATFORM_DIRS="1",
        )
        super().__init__("server", root, env, log, ["--ServerApp.log_level=INFO"], wait_s=60)
        self.log_path = log


@pytest.fixture(scope="module")
def server(shown):
    root, _ = shown
    srv = JupyterServer(root, root.parent / f"{root.name}-server.log")
    yield srv
    srv.stop()


def _submission_id(root: Path) -> str:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'grading' / 'gradebook.db'}") as gb:
        return gb.find_submission_notebook(Path(TINY_NOTEBOOK).stem, TINY_ID, STUDENT).id


def _visit(playwright, server: JupyterServer, path: str) -> dict:
    """Log in to ``server`` (its token, once, as a login page would: the cookie then serves every page, with the
    ``_xsrf`` cookie the server's API checks) and open ``path`` in a fresh headless Chromium; return the requests,
    console lines, dialogs, status and text of the page."""
    browser = launch(playwright)
    seen = {"requests": [], "console": [], "dialogs": [], "errors": []}
    try:
        page = browser.new_page()
        page.on("request", lambda r: seen["requests"].append(r.url))
        # nothing leaves the machine (MathJax and fonts from CDNs): recorded above, then refused at once
        page.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
        page.on("console", lambda m: seen["console"].append(m.text))
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))

        def dialog(d):
            seen["dialogs"].append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        page.goto(f"{server.base}/api/status?token={server.token}")
        # from a page of the server, as a click in JupyterLab or the formgrader would (the server wants a referer)
        response = page.goto(server.base + path, wait_until="load", timeout=30_000, referer=server.base + "/tree")
        seen["status"] = response.status if response else None
        page.wait_for_timeout(1500)  # onerror/onload/ontoggle handlers and their requests
        seen["text"] = page.inner_text("body")
        for link in page.get_by_text("click me").all():  # what an instructor might click
            link.click(no_wait_after=True, timeout=5000)
        page.wait_for_timeout(500)
    finally:
        browser.close()
    return seen


def _assert_nothing_ran(seen: dict, root: Path, server: JupyterServer, page: str) -> None:
    marked = [u for u in seen["requests"] if MARKER in u or "pwned-" in u]
    assert not marked, f"{page}: expected no request from a payload; found {marked}"
    ran = [line for line in seen["console"] if "XSS-RAN" in line]
    assert not ran and not seen["dialogs"], f"{page}: expected no payload to run; found {ran + seen['dialogs']}"
    written = sorted(p.name for p in root.rglob("pwned-*"))
    assert not written, f"{page}: expected no file written through the server's API; found {written}"
    server.log.flush()
    logged = [line for line in server.log_path.read_text().splitlines() if MARKER in line or "pwned-" in line]
    assert not logged, f"{page}: expected no payload request in the server log; found {logged}"


@browser_test
def test_formgrader_submission_page_runs_no_student_script(shown, server, playwright):
    root, _ = shown
    seen = _visit(playwright, server, f"/formgrader/submissions/{_submission_id(root)}/")
    assert seen["status"] == 200, f"expected the formgrader page to load (200); found {seen['status']}"
    for text in ("harmless-text-answer", "harmless-text-added", "html output"):
        assert text in seen["text"], f"expected the page to show the submission ({text!r}); found none"
    _assert_nothing_ran(seen, root, server, "formgrader submission page")


@browser_test
def test_feedback_page_runs_no_student_script(shown, server, playwright):
    root, feedback = shown
    page = next(feedback.rglob("*.html")).relative_to(root)
    seen = _visit(playwright, server, f"/files/{page.as_posix()}")
    assert seen["status"] == 200, f"expected the feedback page to load (200); found {seen['status']}"
    assert "harmless-text-answer" in seen["text"], "expected the feedback page to show the written answer"
    _assert_nothing_ran(seen, root, server, "feedback page")


# --- Fair shares: one worker's submission cannot take another's CPU, memory or processes -------------------------------
# Fair shares under attack: one worker's submission may not take another worker's CPU, memory or processes.
#
# Every grading worker has its own control group (:mod:`course.cgroups`). The fast tests start commands in the
# sandbox a worker's kernel gets, joined to that worker's group the way the sandbox launcher joins it, and check
# each share: memory of several processes plus tmpfs files together, the process count, CPU time beside a hog.
# The last test grades a hog and an honest classmate in one ``python -m course autograde tiny --jobs 2 --sandbox``
# batch: the honest one must keep its full score. Made-up mount tables check what is set up under cgroup v2 (this
# machine has v1) and what the autograde output says where no controller can be used.
#
# Needs bubblewrap and, as root, writable cgroup controllers (cpu, memory, pids; cgroup v1 or v2); skipped without
# them unless ``EXPRESSION_LAB_REQUIRE_SANDBOX=1`` (CI sets it).

MIB = 2**20


def _required(reason: str) -> None:
    if os.environ.get("EXPRESSION_LAB_REQUIRE_SANDBOX") == "1":
        pytest.fail(f"EXPRESSION_LAB_REQUIRE_SANDBOX=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def shares_ready():
    """bubblewrap starts, and every worker share can be enforced here (else skip, or fail where required)."""
    try:
        sandbox.check_sandbox()
    except sandbox.SandboxError as err:
        _required(f"the bubblewrap sandbox cannot start: {err}")
    missing = {name: ctl.problem for name, ctl in cgroups.probe().items() if ctl.problem}
    if missing:
        _required(f"per-worker control groups cannot be set up here: {missing}")


@pytest.fixture
def batch(monkeypatch):
    """A batch name of this test's own, so that its workers' groups are shared with no other grading run."""
    name = f"test-{os.getpid()}"
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_BATCH", name)
    yield name
    cgroups.cleanup()


def _start(code: str, workdir: Path, slot: int, limits: sandbox.Limits | None = None) -> subprocess.Popen:
    """Start ``python -c code`` in worker ``slot``'s sandbox, its launcher joined to the worker's group first
    (as :func:`course.sandbox.launch_kernel` does before it starts bubblewrap)."""
    env = dict(os.environ, EXPRESSION_LAB_SANDBOX_SLOT=str(slot))
    limits = limits or sandbox.Limits.from_env(env)
    workdir.mkdir(parents=True, exist_ok=True)
    uid = sandbox.sandbox_uid(env)
    if uid is not None:
        sandbox._give_to(workdir, uid)
    args = sandbox.bwrap_command([str(sandbox.venv_python()), "-c", code], workdir, uid=uid, limits=limits, env=env)

    def start() -> None:
        cgroups.join(slot, limits)
        sandbox.set_limits(limits, uid)

    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=start)


def _finish(proc: subprocess.Popen, timeout: float = 90) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return out, err


# --- memory: several processes and tmpfs files together -------------------------------------------------------

#: Four processes allocate (and touch) 192 MiB each, two write 96 MiB files into /tmp and /dev/shm (tmpfs): 960
#: MiB in all, each process far under its 1 GiB address-space rlimit; each reports what it holds, and at the end
#: the parent adds up what the survivors hold and what the memory file systems still hold.
MEMORY_HOG = r"""
import json, os, select, time
MIB = 2 ** 20
CHUNK, PER_PROCESS, TMPFS = 32 * MIB, 192 * MIB, 96 * MIB
r, w = os.pipe()

def child(kind, i):
    os.close(r)
    held, keep = 0, []
    try:
        if kind == "process":
            while held < PER_PROCESS:
                keep.append(b"\1" * CHUNK)  # written, so resident
                held += CHUNK
                os.write(w, f"held {kind} {i} {held}\n".encode())
        else:
            with open(f"{('/tmp', '/dev/shm')[i]}/fill-{i}", "wb") as f:
                while held < TMPFS:
                    f.write(b"\1" * CHUNK)
                    f.flush()
                    held += CHUNK
                    os.write(w, f"held {kind} {i} {held}\n".encode())
        os.write(w, f"done {kind} {i}\n".encode())
    except (OSError, MemoryError) as err:
        os.write(w, f"refused {kind} {i} {type(err).__name__}\n".encode())
    time.sleep(60)
    os._exit(0)

kids = {}
for who in [("tmpfs", 0), ("tmpfs", 1)] + [("process", i) for i in range(4)]:
    pid = os.fork()
    if pid == 0:
        child(*who)
    kids[pid] = who
os.close(w)
held, ended, killed, refused, buf = {}, set(), [], [], b""
deadline = time.monotonic() + 60
while len(ended) < len(kids) and time.monotonic() < deadline:
    for pid, who in kids.items():
        if who not in ended and os.waitpid(pid, os.WNOHANG)[0]:
            ended.add(who)
            killed.append(who)
    if select.select([r], [], [], 0.1)[0]:
        buf += os.read(r, 65536)
        *lines, buf = buf.split(b"\n")
        for line in lines:
            word, kind, i, *rest = line.decode().split()
            who = (kind, int(i))
            if word == "held":
                held[who] = int(rest[0])
            else:
                ended.add(who)
                if word == "refused":
                    refused.append(who)
time.sleep(0.5)  # a child killed after it said "done" (the others still filling) is reaped here, not counted alive
for pid, who in kids.items():
    if who not in killed and os.waitpid(pid, os.WNOHANG)[0]:
        killed.append(who)
alive = [who for who in kids.values() if who not in killed]
in_processes = sum(held.get(who, 0) for who in alive if who[0] == "process")
in_tmpfs = sum(os.path.getsize(p) for p in ("/tmp/fill-0", "/dev/shm/fill-1") if os.path.exists(p))
for pid in kids:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
print(json.dumps({"held_mib": (in_processes + in_tmpfs) // MIB, "processes_mib": in_processes // MIB,
                  "tmpfs_mib": in_tmpfs // MIB, "tried_mib": (4 * PER_PROCESS + 2 * TMPFS) // MIB,
                  "killed": killed, "refused": refused}))
"""


def test_processes_and_tmpfs_together_stay_within_the_workers_memory(shares_ready, batch, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_WORKER_MEMORY", str(512 * MIB))
    limits = sandbox.Limits(memory=1024 * MIB)  # each process stays far under its own rlimit
    out, err = _finish(_start(MEMORY_HOG, tmp_path / "w", slot=0, limits=limits))
    assert out.strip(), f"expected the memory hog's report, found no output; stderr: {err[-2000:]}"
    report = json.loads(out.strip().splitlines()[-1])
    assert report["tried_mib"] > 512, f"expected the attack to try more than the worker's 512 MiB, found {report}"
    assert report["held_mib"] <= 512, (
        f"expected at most the worker's 512 MiB held by its processes and tmpfs together, found {report}"
    )
    assert report["killed"] or report["refused"], f"expected some process killed or refused, found {report}"
    peak = cgroups.group_paths(0)["memory"]
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        if (peak / name).is_file():
            assert int((peak / name).read_text()) <= 512 * MIB, (
                f"expected the group's {name} <= 512 MiB, found {int((peak / name).read_text()) // MIB} MiB"
            )


# --- processes ---------------------------------------------------------------------------------------------------

FORK_BOMB = """
import os, time
children = []
try:
    while len(children) < 5000:
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    print("forked", len(children))
except OSError as err:
    print("refused after", len(children), type(err).__name__)
finally:
    for pid in children:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
"""


def test_a_fork_bomb_stops_at_the_workers_process_count(shares_ready, batch, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_WORKER_PROCESSES", "48")
    out, err = _finish(_start(FORK_BOMB, tmp_path / "w", slot=0, limits=sandbox.Limits(processes=512)))
    found = re.search(r"refused after (\d+) BlockingIOError", out)
    assert found and int(found.group(1)) < 48, (
        f"expected fork refused before the worker's 48 processes (its "
        f"rlimit allows 512), found {out!r}; stderr: {err[-1000:]}"
    )


def test_a_batchs_groups_are_removed_at_its_end(shares_ready, batch, tmp_path):
    _finish(_start("import os; os.system('sleep 0.2 &')", tmp_path / "w", slot=3))
    groups = cgroups.group_paths(3)
    assert groups and all(g.is_dir() for g in groups.values()), f"expected worker 3's groups, found {groups}"
    cgroups.cleanup()
    left = [g for g in groups.values() if g.exists()]
    assert not left, f"expected worker 3's groups removed once its sandbox ended, found {left}"


# --- CPU: a hog beside an honest worker ------------------------------------------------------------------------

#: 24 busy loops in their own sessions for 7 s; then the CPU seconds they got, per second of wall time.
CPU_HOG = """
import os, resource, time
kids = []
for _ in range(24):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        while True:
            pass
    kids.append(pid)
time.sleep(7)
for pid in kids:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print("hog cores", (used.ru_utime + used.ru_stime) / 7)
"""
#: One busy loop for 4 s, started once the hog runs; the CPU seconds it got per second of wall time.
HONEST_LOOP = """
import time
time.sleep(1.5)
start, cpu = time.monotonic(), time.process_time()
while time.monotonic() - start < 4:
    pass
print("honest cores", (time.process_time() - cpu) / 4)
"""


@pytest.mark.slow
def test_a_hog_with_24_processes_leaves_the_other_worker_its_share(shares_ready, batch, tmp_path, monkeypatch):
    """Two workers on the machine's cores: the honest one's single loop keeps a large part of a core (one of 25
    equal processes would get 2/25 of two cores), and the hog never gets more than its cap, cores / 2."""
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_JOBS", "2")
    shares = cgroups.Shares.from_env()
    hog = _start(CPU_HOG, tmp_path / "hog", slot=1)
    honest = _start(HONEST_LOOP, tmp_path / "honest", slot=0)
    (honest_out, honest_err), (hog_out, hog_err) = _finish(honest), _finish(hog)
    got = {m.group(1): float(m.group(2)) for m in re.finditer(r"(\w+) cores ([\d.]+)", honest_out + hog_out)}
    assert set(got) == {"honest", "hog"}, (
        f"expected both reports, found {honest_out!r} {honest_err[-500:]!r} {hog_out!r} {hog_err[-500:]!r}"
    )
    assert got["honest"] >= 0.25, f"expected the honest loop to get >= 0.25 of a core beside the hog, found {got}"
    assert got["hog"] <= shares.cpu_percent / 100 * 1.15, (
        f"expected the hog capped at {shares.cpu_percent}% of a core, found {got}"
    )


# --- the headline: an honest slow submission graded beside a hog -------------------------------------------------

#: The hog's first answer cell: 24 busy loops in their own sessions, then a sleep just under the cell timeout.
HOG_CELL = """
import os as _os, time as _time
for _ in range(24):
    if _os.fork() == 0:
        _os.setsid()
        while True:
            pass
_time.sleep(9.5)
"""
#: The honest submission's second answer: right, but it burns 3 CPU seconds first.
SLOW_CELL = """
import time as _time
_start = _time.process_time()
while _time.process_time() - _start < 3:
    pass
"""


@pytest.mark.slow
def test_an_honest_slow_submission_graded_beside_a_hog_keeps_its_score(shares_ready, tmp_path):
    """``--jobs 2``, a 10 s cell timeout: without per-worker shares the honest classmate's slow cell gets 2/25 of
    the cores and runs out of time (CellTimeoutError, 2 or 3 of 5 points); with them it keeps its 5 of 5."""
    root = tmp_path
    release, source = make_tiny_course(root, timeout=10)
    honest = fill_answers(release, source)
    cell_by_grade_id(honest, "triple").source = SLOW_CELL + cell_by_grade_id(honest, "triple").source
    hand_in(root, "honest", TINY_ID, honest, TINY_NOTEBOOK)
    hog = fill_answers(release, source)
    cell_by_grade_id(hog, "double").source = HOG_CELL + cell_by_grade_id(hog, "double").source
    hand_in(root, "hog", TINY_ID, hog, TINY_NOTEBOOK)
    proc = subprocess.run(
        [sys.executable, "-m", "course", "autograde", TINY_ID, "--jobs", "2", "--sandbox"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = root / "grading" / "autograde" / f"{TINY_ID}.json"
    assert summary.is_file(), f"expected the batch summary, found none:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    rows = {r["student"]: r for r in json.loads(summary.read_text())}
    said = [line for line in proc.stdout.splitlines() if "per-worker limits" in line]
    assert said and "NOT enforced" not in said[0], (
        f"expected the batch to say which per-worker limits hold, found {said or proc.stdout[-2000:]}"
    )
    assert rows["honest"]["auto_score"] == 5, (
        f"expected the honest classmate's 5 of 5 beside the hog, found {rows['honest']}; the batch said:\n"
        f"{proc.stdout[-3000:]}"
    )


# --- where the machine allows less: what is set up, and what is said ---------------------------------------------


def _fake_hierarchy(tmp_path: Path, monkeypatch, mountinfo: list[str], own: str) -> Path:
    """Point :mod:`course.cgroups` at a made-up ``/proc/self/mountinfo`` and ``/proc/self/cgroup``."""
    (tmp_path / "mountinfo").write_text("".join(line + "\n" for line in mountinfo))
    (tmp_path / "own").write_text(own)
    monkeypatch.setattr(cgroups, "_MOUNTINFO", tmp_path / "mountinfo")
    monkeypatch.setattr(cgroups, "_OWN_CGROUPS", tmp_path / "own")
    return tmp_path


def test_cgroup_v2_groups_sit_beside_the_graders_with_all_limits(tmp_path, monkeypatch):
    """cgroup v2 (a systemd machine: the grader in ``system.slice/grader.service``): the workers' groups go in
    ``system.slice/expression-lab`` with cpu passed on from ``system.slice``, and each gets cpu.max, cpu.weight,
    memory.max, memory.swap.max and pids.max before the launcher joins."""
    point = tmp_path / "cg"
    _fake_hierarchy(
        tmp_path, monkeypatch, [f"30 20 0:26 / {point} rw - cgroup2 cgroup2 rw"], "0::/system.slice/grader.service\n"
    )
    for folder, controllers, enabled in (
        (point, "cpu memory pids", "cpu memory pids"),
        (point / "system.slice", "cpu memory pids", "memory pids"),
        (point / "system.slice" / "expression-lab", "cpu memory pids", ""),
    ):
        folder.mkdir(parents=True)
        (folder / "cgroup.controllers").write_text(controllers + "\n")
        (folder / "cgroup.subtree_control").write_text(enabled + "\n")
    group = point / "system.slice" / "expression-lab" / "b1-slot-1"
    group.mkdir()
    (group / "memory.swap.max").write_text("max\n")
    writes = []
    real_write = cgroups._write
    monkeypatch.setattr(cgroups, "_write", lambda path, value: (writes.append((path, value)), real_write(path, value)))
    for name, value in (("JOBS", "2"), ("BATCH", "b1"), ("WORKER_MEMORY", str(3 * 2**30))):
        monkeypatch.setenv(f"EXPRESSION_LAB_SANDBOX_{name}", value)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    cgroups.join(1, sandbox.Limits(processes=100))
    base = point / "system.slice" / "expression-lab"
    expected = [
        (point / "system.slice" / "cgroup.subtree_control", "+cpu"),
        *[(base / "cgroup.subtree_control", f"+{c}") for c in ("cpu", "memory", "pids")],
        (base / "cpu.weight", "200"),
        (group / "cpu.weight", "100"),
        (group / "cpu.max", "100000 100000"),
        (group / "memory.max", str(3 * 2**30)),
        (group / "memory.swap.max", "0"),
        (group / "pids.max", str(100 + cgroups.LAUNCHER_TASKS)),
        (group / "cgroup.procs", str(os.getpid())),
    ]
    assert writes == expected, f"expected the writes {expected}, found {writes}"
    text = cgroups.describe(sandbox.Limits(processes=100), jobs=2)
    assert "cgroup v2" in text and "1.00 of 2 cores" in text and "3.0 GiB" in text and "NOT" not in text, (
        f"expected cgroup v2 limits, all enforced, found {text!r}"
    )


def _fake_v2(tmp_path: Path, monkeypatch, own: str) -> Path:
    """A made-up cgroup v2 hierarchy with every controller passed down to ``system.slice/expression-lab``, this
    process in group ``own``, batch ``b1``; returns that ``expression-lab`` folder."""
    point = tmp_path / "cg"
    _fake_hierarchy(tmp_path, monkeypatch, [f"30 20 0:26 / {point} rw - cgroup2 cgroup2 rw"], f"0::{own}\n")
    for folder in (point, point / "system.slice", point / "system.slice" / "expression-lab"):
        folder.mkdir(parents=True)
        (folder / "cgroup.controllers").write_text("cpu memory pids\n")
        (folder / "cgroup.subtree_control").write_text("cpu memory pids\n")
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_BATCH", "b1")
    return point / "system.slice" / "expression-lab"


def test_nbgrader_gets_a_memory_group_of_its_own_and_its_kernel_moves_on(tmp_path, monkeypatch):
    """cgroup v2: nbgrader (started from ``system.slice/grader.service``) joins ``expression-lab/b1-grader-1`` with
    the grader's memory only; the sandbox launcher it starts, whose own group is then that one, still puts the
    kernel in ``expression-lab/b1-slot-1`` beside it (it went one level too far up: ``<root>/expression-lab``)."""
    base = _fake_v2(tmp_path, monkeypatch, "/system.slice/grader.service")
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_GRADER_MEMORY", str(300 * 2**20))
    writes = []
    real_write = cgroups._write
    monkeypatch.setattr(cgroups, "_write", lambda path, value: (writes.append((path, value)), real_write(path, value)))
    cgroups.join_grader(1)
    grader = base / "b1-grader-1"
    expected = [(grader / "memory.max", str(300 * 2**20)), (grader / "cgroup.procs", str(os.getpid()))]
    assert writes == expected, f"expected nbgrader's group limited to its memory and joined: {expected}, found {writes}"
    (tmp_path / "own").write_text("0::/system.slice/expression-lab/b1-grader-1\n")
    writes.clear()
    cgroups.join(1, sandbox.Limits(processes=100))
    groups = sorted({path.parent for path, _ in writes})
    assert groups == [base, base / "b1-slot-1"], f"expected the kernel's group beside nbgrader's, found {groups}"
    (grader / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    assert cgroups.memory_events(1) == (1, 1), "expected nbgrader's stop at its own limit counted"
    assert cgroups.memory_events(0) == (0, 0), "expected no count for a worker without a group"


def test_a_grader_stopped_in_a_shortage_elsewhere_is_not_blamed(tmp_path, monkeypatch):
    """A kernel that fills its memory file systems (pages no process holds) can make the machine or an enclosing
    group run short; the OOM killer then stops the largest process, a classmate's nbgrader, whose group counted the
    kill though it never reached its own limit, and that classmate's grading was failed and flagged as an attack.
    Both must show (cgroup v1: the group's peak at its limit, and ``oom_kill``), and sandboxed kernels go first."""
    sandbox_or_skip()
    (tmp_path / "work").mkdir()
    out = sandbox.run_sandboxed(
        [str(sandbox.venv_python()), "-c", "print(open('/proc/self/oom_score_adj').read())"], tmp_path / "work"
    )
    assert out.stdout.strip() == "1000", (
        f"expected sandboxed code first for the OOM killer, found {out.stdout!r} {out.stderr[-300:]}"
    )
    base = tmp_path / "memory" / "expression-lab"
    _fake_hierarchy(
        tmp_path, monkeypatch, [f"35 31 0:32 / {tmp_path / 'memory'} rw - cgroup cgroup rw,memory"], "4:memory:/\n"
    )
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_BATCH", "b1")
    grader = base / "b1-grader-0"
    grader.mkdir(parents=True)
    (grader / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    (grader / "memory.limit_in_bytes").write_text(f"{2**30}\n")
    (grader / "memory.max_usage_in_bytes").write_text(f"{300 * 2**20}\n")
    assert cgroups.memory_events(0) == (0, 1), f"expected a kill without a limit hit, found {cgroups.memory_events(0)}"
    (grader / "memory.max_usage_in_bytes").write_text(f"{2**30}\n")
    assert cgroups.memory_events(0) == (1, 1), f"expected a kill at the limit, found {cgroups.memory_events(0)}"


def test_cleanup_leaves_the_groups_of_a_batch_still_running(tmp_path, monkeypatch):
    """Cleanup removed every empty worker group, also those of a batch running beside it: between an OOM kill and
    that batch's reading of its count, the count was gone and the submission failed with no reason or flag."""
    base = tmp_path / "memory" / "expression-lab"
    _fake_hierarchy(
        tmp_path, monkeypatch, [f"35 31 0:32 / {tmp_path / 'memory'} rw - cgroup cgroup rw,memory"], "4:memory:/\n"
    )
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_BATCH", "b1")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = ["b1-slot-0", "b1-grader-0", f"batch-{dead.pid}-grader-0", f"batch-{os.getpid()}-grader-1", "slot-2"]
    for name in names:
        (base / name).mkdir(parents=True)
    cgroups.cleanup(wait=0)
    left = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
    assert left == [f"batch-{os.getpid()}-grader-1"], f"expected only the running batch's group left, found {left}"


def test_without_controllers_nothing_is_joined_and_the_output_says_so(tmp_path, monkeypatch):
    """A hybrid machine whose cgroup2 mount has no controllers and no cgroup v1 hierarchy: join does nothing,
    and describe says plainly that CPU, memory and processes are not shared out."""
    point = tmp_path / "unified"
    point.mkdir()
    (point / "cgroup.controllers").write_text("\n")
    _fake_hierarchy(tmp_path, monkeypatch, [f"41 31 0:38 / {point} rw,relatime - cgroup2 cgroup2 rw"], "0::/\n")
    cgroups.join(0, sandbox.Limits())
    assert sorted(p.name for p in point.iterdir()) == ["cgroup.controllers"], "expected nothing created"
    text = cgroups.describe(sandbox.Limits(), jobs=2)
    for what in ("CPU share", "total memory", "process count"):
        assert f"{what}" in text.split("NOT enforced")[-1], f"expected {what!r} said not enforced, found {text!r}"


def test_settings_are_checked_and_named(monkeypatch):
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_WORKER_MEMORY", "6G")
    with pytest.raises(ValueError, match="EXPRESSION_LAB_SANDBOX_WORKER_MEMORY='6G': expected a positive integer"):
        cgroups.Shares.from_env()
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_WORKER_MEMORY", "0")
    with pytest.raises(ValueError, match="EXPRESSION_LAB_SANDBOX_WORKER_MEMORY='0'"):
        cgroups.Shares.from_env()
    monkeypatch.delenv("EXPRESSION_LAB_SANDBOX_WORKER_MEMORY")
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_BATCH", "../escape")
    with pytest.raises(ValueError, match="EXPRESSION_LAB_SANDBOX_BATCH"):
        cgroups.batch_name()


def test_the_output_says_when_the_workers_memory_is_more_than_the_machine(tmp_path, monkeypatch):
    """Limits per worker that add up past the machine's memory hold nothing against a shortage: the autograde
    command says so."""
    _fake_v2(tmp_path, monkeypatch, "/system.slice/grader.service")
    monkeypatch.setattr(cgroups, "_machine_memory", lambda: 8 * 2**30)
    text = cgroups.describe(sandbox.Limits(), jobs=2)
    assert "Memory NOT enough for all workers at once: 2 × (6.0 GiB + 1.0 GiB for nbgrader)" in text, text
    monkeypatch.setattr(cgroups, "_machine_memory", lambda: 32 * 2**30)
    assert "NOT enough" not in cgroups.describe(sandbox.Limits(), jobs=2), "expected no warning with room for both"
