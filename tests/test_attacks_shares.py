"""Fair shares under attack: one worker's submission may not take another worker's CPU, memory or processes.

Every grading worker has its own control group (:mod:`course.cgroups`). The fast tests start commands in the
sandbox a worker's kernel gets, joined to that worker's group the way the sandbox launcher joins it, and check
each share: memory of several processes plus tmpfs files together, the process count, CPU time beside a hog.
The last test grades a hog and an honest classmate in one ``python -m course autograde tiny --jobs 2 --sandbox``
batch: the honest one must keep its full score. Made-up mount tables check what is set up under cgroup v2 (this
machine has v1) and what the autograde output says where no controller can be used.

Needs bubblewrap and, as root, writable cgroup controllers (cpu, memory, pids; cgroup v1 or v2); skipped without
them unless ``EXPRESSION_LAB_REQUIRE_SANDBOX=1`` (CI sets it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_ID, TINY_NOTEBOOK, hand_in, make_tiny_course
from course import cgroups, sandbox
from course.notebook_cells import cell_by_grade_id
from course.sample_submission import fill_answers

pytestmark = pytest.mark.sandbox

MIB = 2 ** 20


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
    args = sandbox.bwrap_command([str(sandbox._venv_python()), "-c", code], workdir, uid=uid, limits=limits,
                                 env=env)

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
    assert report["held_mib"] <= 512, (f"expected at most the worker's 512 MiB held by its processes and tmpfs "
                                       f"together, found {report}")
    assert report["killed"] or report["refused"], f"expected some process killed or refused, found {report}"
    peak = cgroups.group_paths(0)["memory"]
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        if (peak / name).is_file():
            assert int((peak / name).read_text()) <= 512 * MIB, f"expected the group's {name} <= 512 MiB, found " \
                                                                f"{int((peak / name).read_text()) // MIB} MiB"


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
    assert found and int(found.group(1)) < 48, (f"expected fork refused before the worker's 48 processes (its "
                                                f"rlimit allows 512), found {out!r}; stderr: {err[-1000:]}")


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


def test_a_hog_with_24_processes_leaves_the_other_worker_its_share(shares_ready, batch, tmp_path, monkeypatch):
    """Two workers on the machine's cores: the honest one's single loop keeps a large part of a core (one of 25
    equal processes would get 2/25 of two cores), and the hog never gets more than its cap, cores / 2."""
    monkeypatch.setenv("EXPRESSION_LAB_SANDBOX_JOBS", "2")
    shares = cgroups.Shares.from_env()
    hog = _start(CPU_HOG, tmp_path / "hog", slot=1)
    honest = _start(HONEST_LOOP, tmp_path / "honest", slot=0)
    (honest_out, honest_err), (hog_out, hog_err) = _finish(honest), _finish(hog)
    got = {m.group(1): float(m.group(2)) for m in re.finditer(r"(\w+) cores ([\d.]+)", honest_out + hog_out)}
    assert set(got) == {"honest", "hog"}, f"expected both reports, found {honest_out!r} {honest_err[-500:]!r} " \
                                          f"{hog_out!r} {hog_err[-500:]!r}"
    assert got["honest"] >= 0.25, f"expected the honest loop to get >= 0.25 of a core beside the hog, found {got}"
    assert got["hog"] <= shares.cpu_percent / 100 * 1.15, (f"expected the hog capped at {shares.cpu_percent}% of "
                                                           f"a core, found {got}")


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
    proc = subprocess.run([sys.executable, "-m", "course", "autograde", TINY_ID, "--jobs", "2", "--sandbox"],
                          cwd=root, capture_output=True, text=True, timeout=240)
    summary = root / "grading" / "autograde" / f"{TINY_ID}.json"
    assert summary.is_file(), f"expected the batch summary, found none:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    rows = {r["student"]: r for r in json.loads(summary.read_text())}
    said = [line for line in proc.stdout.splitlines() if "per-worker limits" in line]
    assert said and "NOT enforced" not in said[0], f"expected the batch to say which per-worker limits hold, " \
                                                   f"found {said or proc.stdout[-2000:]}"
    assert rows["honest"]["auto_score"] == 5, (
        f"expected the honest classmate's 5 of 5 beside the hog, found {rows['honest']}; the batch said:\n"
        f"{proc.stdout[-3000:]}")


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
    _fake_hierarchy(tmp_path, monkeypatch, [f"30 20 0:26 / {point} rw - cgroup2 cgroup2 rw"],
                    "0::/system.slice/grader.service\n")
    for folder, controllers, enabled in ((point, "cpu memory pids", "cpu memory pids"),
                                         (point / "system.slice", "cpu memory pids", "memory pids"),
                                         (point / "system.slice" / "expression-lab", "cpu memory pids", "")):
        folder.mkdir(parents=True)
        (folder / "cgroup.controllers").write_text(controllers + "\n")
        (folder / "cgroup.subtree_control").write_text(enabled + "\n")
    group = point / "system.slice" / "expression-lab" / "b1-slot-1"
    group.mkdir()
    (group / "memory.swap.max").write_text("max\n")
    writes = []
    real_write = cgroups._write
    monkeypatch.setattr(cgroups, "_write", lambda path, value: (writes.append((path, value)), real_write(path, value)))
    for name, value in (("JOBS", "2"), ("BATCH", "b1"), ("WORKER_MEMORY", str(3 * 2 ** 30))):
        monkeypatch.setenv(f"EXPRESSION_LAB_SANDBOX_{name}", value)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    cgroups.join(1, sandbox.Limits(processes=100))
    base = point / "system.slice" / "expression-lab"
    expected = [(point / "system.slice" / "cgroup.subtree_control", "+cpu"),
                *[(base / "cgroup.subtree_control", f"+{c}") for c in ("cpu", "memory", "pids")],
                (base / "cpu.weight", "200"), (group / "cpu.weight", "100"), (group / "cpu.max", "100000 100000"),
                (group / "memory.max", str(3 * 2 ** 30)), (group / "memory.swap.max", "0"),
                (group / "pids.max", str(100 + cgroups.LAUNCHER_TASKS)), (group / "cgroup.procs", str(os.getpid()))]
    assert writes == expected, f"expected the writes {expected}, found {writes}"
    text = cgroups.describe(sandbox.Limits(processes=100), jobs=2)
    assert "cgroup v2" in text and "1.00 of 2 cores" in text and "3.0 GiB" in text and "NOT" not in text, \
        f"expected cgroup v2 limits, all enforced, found {text!r}"


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
