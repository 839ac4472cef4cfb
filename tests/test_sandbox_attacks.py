"""The grading sandbox under attack: what student code tries while it is autograded, and what it gets.

Two tiers. The fast tests run one command each in the sandbox the grading kernel gets
(:func:`course.sandbox.run_sandboxed`) and check each wall: files, network, environment, memory, processes,
CPU time, file size. The slow test hands in a ps3 notebook whose answer cells (reference answers) also carry
every attack, grades it with an honest classmate's in one ``python -m course autograde --jobs 2 --sandbox``
batch, and checks that each attack failed, that both are graded for what they answered, and that nothing
outside the attacker's own folder changed (checksums before and after).

Needs bubblewrap; skipped without it unless ``EXPRESSION_LAB_REQUIRE_SANDBOX=1`` (CI sets it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, hand_in
from course import nbgrader_steps as steps
from course import sandbox
from course.notebook_cells import cell_by_grade_id
from course.sample_submission import fill_answers

pytestmark = pytest.mark.sandbox

AID, NOTEBOOK = "ps3_iphonex_3dcnn", "iphonex_3dcnn.ipynb"
#: Automatic points of a ps3 notebook with every answer right but no model_4.keras handed in (the hidden test
#: of the handed-in model scores 0): what both students below earn.
POINTS_WITHOUT_MODEL = 10


def _sandbox_or_skip() -> None:
    try:
        sandbox.check_sandbox()
    except sandbox.SandboxError as err:
        if os.environ.get("EXPRESSION_LAB_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"EXPRESSION_LAB_REQUIRE_SANDBOX=1 but the sandbox cannot start: {err}")
        pytest.skip(f"bubblewrap sandbox not available: {err}")


@pytest.fixture(scope="module")
def sandbox_ready():
    _sandbox_or_skip()


def _python(code: str, workdir: Path, **limits) -> subprocess.CompletedProcess:
    return sandbox.run_sandboxed([str(sandbox._venv_python()), "-c", code], workdir,
                                 limits=sandbox.Limits(**limits) if limits else None, timeout=90)


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
    code = ("try:\n    print(repr(open('iphonex_3dcnn.ipynb').read()))\n"
            "except OSError as err:\n    print(type(err).__name__)")
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("''", "PermissionError"), proc.stdout
    assert "HIDDEN" in (tmp_path / "iphonex_3dcnn.ipynb").read_text()  # the grader's file is untouched


def test_the_cache_is_read_only_and_a_cache_write_fails_soft(sandbox_ready, tmp_path):
    code = ("import warnings, numpy as np\nfrom data_loaders import cache\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    print(cache.save_arrays('sandbox-probe', a=np.zeros(2)), [str(w.message) for w in caught])")
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
    code = """
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
    proc = _python(code, tmp_path, file_size=8 * 2 ** 20)
    assert proc.returncode == 0, proc.stderr
    assert "refused 27" in proc.stdout  # EFBIG
    assert (tmp_path / "big.bin").stat().st_size <= 8 * 2 ** 20


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

ATTACKS = r'''
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
'''


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
KIT_SKIP = (".git", ".venv", ".ruff_cache/", "grading/", ".nbgrader.log", ".pytest_cache/", "data/", "benchmarks/results/")
#: What Jupyter itself keeps in the grader's home folder (written by nbgrader, outside the sandbox).
JUPYTER_STATE = (".jupyter/", ".local/", ".ipython/", ".cache/")
#: What nbgrader itself writes while grading: the gradebook, autograded copies, the batch's own files, its log.
GRADING_OUTPUTS = ("grading/gradebook.db", "grading/autograded/", "grading/autograde/", ".nbgrader.log")


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    _sandbox_or_skip()
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
        mp.setenv("EXPRESSION_LAB_CACHE", str(cache.cache_dir()))  # the usual cache, before HOME moves
        steps.release(AID, root)
        release, source = root / "assignments" / AID / NOTEBOOK, root / "solutions" / AID / NOTEBOOK
        hand_in(root, "honest", AID, fill_answers(release, source), NOTEBOOK)
        nb = fill_answers(release, source)
        attacks = (ATTACKS.replace("GRADER_HOME", str(home)).replace("GRADER_PID", str(os.getpid()))
                   .replace("LISTENER_PORT", str(listener.port)))
        cell_by_grade_id(nb, "voxelize").source += "\n" + attacks
        cell_by_grade_id(nb, "subject_split").source += "\nwhile True:  # loop forever\n    pass\n"
        hand_in(root, "attacker", AID, nb, NOTEBOOK)

        watched = {"course": (root, GRADING_OUTPUTS), "kit": (REPO, KIT_SKIP),
                   "home": (home, JUPYTER_STATE), "cache": (cache.cache_dir(), ())}
        before = {name: _tree_checksums(folder, skip) for name, (folder, skip) in watched.items()}
        honest_submitted = _tree_checksums(root / "grading" / "submitted")

        mp.setenv("HOME", str(home))
        mp.setenv("JUPYTERHUB_API_TOKEN", "secret-token-4711")
        mp.chdir(root)
        proc = subprocess.run([sys.executable, "-m", "course", "autograde", AID, "--jobs", "2", "--sandbox"],
                              cwd=root, capture_output=True, text=True, env=dict(os.environ,
                              EXPRESSION_LAB_SANDBOX_PROCESSES="160", EXPRESSION_LAB_SANDBOX_FILE_SIZE=str(64 * 2 ** 20)))
        after = {name: _tree_checksums(folder, skip) for name, (folder, skip) in watched.items()}
    listener.close()
    graded = root / "grading" / "autograded" / "attacker" / AID / NOTEBOOK
    if not graded.is_file():
        log = root / "grading" / "autograde" / "workers" / "attacker.log"
        pytest.fail(f"the attacker's notebook was not graded:\n{proc.stdout[-2000:]}\n"
                    f"{log.read_text()[-3000:] if log.is_file() else proc.stderr[-3000:]}")
    executed = nbformat.read(root / "grading" / "autograded" / "attacker" / AID / NOTEBOOK, as_version=4)
    output = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    return dict(root=root, proc=proc, before=before, after=after, listener=listener, output=output,
                submitted=(honest_submitted, _tree_checksums(root / "grading" / "submitted")), executed=executed)


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
    assert {r["student"]: r["auto_score"] for r in summary} == {"attacker": POINTS_WITHOUT_MODEL,
                                                                  "honest": POINTS_WITHOUT_MODEL}


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
    assert not (autograded / "attacker" / "pwned.txt").exists() and not (autograded / "attacker" / AID / "big.bin").exists()


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
    lines += ["_pl.Path('autograde_outputs').mkdir(exist_ok=True)",
              "_os.symlink('/etc/passwd', 'autograde_outputs/leak.run.json')",
              "for _k in range(5000):",
              "    open(f'empty-{_k}.txt', 'w').close()",
              "for _k in range(40):",
              "    _pl.Path(f'big-{_k}.bin').write_bytes(b'x' * 8 * 2 ** 20)",
              "_os.mkfifo('pipe.html')"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def left_behind(tmp_path_factory):
    _sandbox_or_skip()
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
    targets = {"solution": root / "solutions" / TINY_ID / TINY_NOTEBOOK, "gradebook": root / "grading" / "gradebook.db",
               "classmate": steps.submission_folder("honest", TINY_ID, root) / TINY_NOTEBOOK, "secret": secret,
               "bwrap": bwrap}
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

    folders = hand_in(root, "folders", TINY_ID, fill_answers(release, source), TINY_NOTEBOOK)
    for name in ("solutions", "grading", "source_with_tests"):  # named like the course's own folders
        (folders / name).mkdir()
        (folders / name / "notes.txt").write_text("mine")
    (folders / "nbgrader_config.py").write_text("# a student's file\n")

    many = hand_in(root, "many", TINY_ID, fill_answers(release, source), TINY_NOTEBOOK)
    for k in range(250):
        (many / f"photo-{k}.txt").write_text("x")

    two_release = {n: root / "assignments" / "two" / f"{n}.ipynb" for n in ("a", "b")}
    two_source = {n: root / "solutions" / "two" / f"{n}.ipynb" for n in ("a", "b")}
    a = fill_answers(two_release["a"], two_source["a"])
    cell_by_grade_id(a, "double").source += f"\nimport os as _os\n_os.symlink({str(victim)!r}, 'b.ipynb')\n"
    hand_in(root, "linker", "two", a, "a.ipynb")
    nbformat.write(fill_answers(two_release["b"], two_source["b"]), steps.submission_folder("linker", "two", root) / "b.ipynb")

    env = dict(os.environ, EXPRESSION_LAB_SANDBOX_FILE_SIZE=str(16 * 2 ** 20))
    batch = [subprocess.run([sys.executable, "-m", "course", "autograde", aid, "--jobs", "2", "--sandbox"],
                            cwd=root, capture_output=True, text=True, env=env) for aid in (TINY_ID, "two")]
    feedback = [subprocess.run([sys.executable, "-m", "course", "feedback", aid], cwd=root, capture_output=True,
                               text=True) for aid in (TINY_ID, "two")]
    for proc in feedback:
        assert proc.returncode == 0, f"expected `python -m course feedback` to succeed, found {proc.stderr[-2000:]}"
    summary = {r["student"]: r for r in json.loads((root / "grading" / "autograde" / f"{TINY_ID}.json").read_text())}
    return dict(root=root, targets=targets, modes=modes, victim=victim, secret=secret, batch=batch, summary=summary,
                bwrap=bwrap)


def _files_under(folder: Path) -> list[Path]:
    return [Path(d, f) for d, _, files in os.walk(folder) for f in files]


@pytest.mark.slow
def test_links_left_behind_change_no_target(left_behind):
    for name, path in {**left_behind["targets"], "victim": left_behind["victim"]}.items():
        assert path.stat().st_mode == left_behind["modes"][name], (
            f"{name}: expected mode {oct(left_behind['modes'][name])} kept, found {oct(path.stat().st_mode)}")
    assert left_behind["victim"].read_text() == "untouched", (
        f"expected the grader's file untouched, found {left_behind['victim'].read_text()[:80]!r}")
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
    assert len(linker_files) < 10, f"expected the grading run's 5,040 files left in the sandbox, found {len(linker_files)}"
    assert not (root / "grading" / "autograded" / "linker" / "tiny" / "autograde_outputs" / "leak.run.json").exists()


@pytest.mark.slow
def test_links_handed_in_are_quarantined_and_flagged(left_behind):
    root, row = left_behind["root"], left_behind["summary"]["handed"]
    assert row["status"] == "graded" and row["auto_score"] == 5, f"expected handed graded 5/5, found {row}"
    for name in ("gradebook.html", "secret.txt", "pipe.txt", "victim-link.txt", "evil.html"):
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
    assert not row["review"], f"expected no flag for ordinary folders, found {row['review']!r}"


@pytest.mark.slow
def test_a_submission_over_the_caps_is_refused_with_the_fix(left_behind):
    row = left_behind["summary"]["many"]
    assert row["status"] == "refused", f"expected many refused, found {row}"
    assert "252 files" in row["reason"] and "MAX_FILES" in row["reason"] and "no-sandbox" not in row["reason"], row
    assert left_behind["summary"]["honest"]["auto_score"] == 5 and left_behind["summary"]["linker"]["status"] == "graded"


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
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page, \
        "expected the markup file name escaped in the report"
    banner = nbformat.read(left_behind["root"] / "grading" / "autograded" / "handed" / "tiny" / "tiny.ipynb",
                           as_version=4).cells[0].source
    assert "<img" not in banner and "&lt;img" in banner, f"expected the banner escaped, found {banner[:300]!r}"
