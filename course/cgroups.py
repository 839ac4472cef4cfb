"""Fair shares of the machine for parallel grading workers: one control group (cgroup) per worker.

The sandbox's rlimits (:class:`course.sandbox.Limits`) hold per process: a submission that starts many processes,
or fills its memory file systems (``/tmp``, ``/dev/shm``, home: tmpfs, counted by no rlimit), takes CPU time and
memory from the classmate graded beside it by another worker (``python -m course autograde ID --jobs N``). Here
every worker ``k`` gets its own control group, created and limited by the grader (root) and joined by the
sandbox launcher right before bubblewrap starts, so that bubblewrap, the kernel and everything the student's
code starts, ``setsid`` or not, stay in it:

- **CPU**: an equal weight for every worker (``cpu.shares`` 1024 / ``cpu.weight`` 100: under contention each
  worker gets its share of the cores, however many processes it runs; the workers' folder weighs ``jobs`` times
  that, as much as ``jobs`` single-process kernels against what runs outside) and a cap of its fair share of the
  cores, ``cores / jobs`` (``cpu.cfs_quota_us`` / ``cpu.max``);
- **memory**: one total for all the worker's processes *and* the tmpfs pages they write (the kernel charges a
  tmpfs page to the memory cgroup of the process that wrote it), swap included (``memory.limit_in_bytes`` and
  ``memory.memsw.limit_in_bytes`` / ``memory.max`` and ``memory.swap.max = 0``): past it the kernel reclaims,
  then refuses the write or kills the group's largest process (the OOM killer of that group only);
- **processes**: one count of tasks (processes and threads) for the worker (``pids.max``).

nbgrader's own process, which receives the kernel's messages and writes the graded notebook, gets a group of its
own per worker, ``grader-<k>`` (memory only, :data:`DEFAULT_GRADER_MEMORY`, swap included): the output caps
bound what it keeps, not what it receives, and a kernel that sent one message of many 60 MiB parts took it to
1.3 GB. The autograde command starts nbgrader through ``python -m course.cgroups grader K PROGRAM ARGS…``, which
joins the group and then execs the program; the sandbox launcher it starts moves on into the worker's group, so
only nbgrader's process counts. Past the limit the kernel's OOM killer stops nbgrader, and the autograde command
reports that submission as failed and flags it (:func:`memory_events`: only when the group reached its own limit,
not when a shortage elsewhere stopped it; :func:`describe` says when the workers' memory adds up past the
machine's, and sandboxed code is the OOM killer's first choice, :func:`course.sandbox.first_for_the_oom_killer`).

Both cgroup versions work, per controller, as the machine has them mounted (``/proc/self/mountinfo``): cgroup v1
hierarchies (``cpu``, ``memory``, ``pids`` each mounted, e.g. ``/sys/fs/cgroup/memory``; a hybrid's cgroup2
mount without controllers is ignored) get ``<own group>/expression-lab/slot-<k>`` in each hierarchy; cgroup v2
gets ``<parent of own group>/expression-lab/slot-<k>`` (a v2 group that holds processes cannot pass controllers
on, so the workers' groups sit beside the grader's own, with ``+cpu +memory +pids`` written to
``cgroup.subtree_control`` on the way down). What the machine does not allow (not root, no writable hierarchy, a
controller missing, a container's root group holding processes) is not enforced, and :func:`describe` says so
in plain words for the autograde output; grading then goes on with per-process rlimits only.

Settings (environment variables, checked like :meth:`course.sandbox.Limits.from_env`: a bad value is a
``ValueError`` naming the variable):

- ``EXPRESSION_LAB_SANDBOX_JOBS`` (a positive integer, as are the three below): the number of parallel
  workers (the autograde command's ``--jobs``; it sets this for its workers), default 1;
- ``EXPRESSION_LAB_SANDBOX_BATCH``: a name for the batch (the autograde command sets it), so that two batches
  graded at the same time never share a worker's group (``<batch>-slot-<k>``); default none (``slot-<k>``);
- ``EXPRESSION_LAB_SANDBOX_WORKER_CPU_PERCENT``: hundredths of a core each worker may use at most, default
  ``100 * cores / jobs`` (cores: the CPUs this process may run on); no cap when that is the whole machine;
- ``EXPRESSION_LAB_SANDBOX_WORKER_MEMORY``: bytes of memory of all a worker's processes and memory file
  systems together, default 6 GiB (a 24 GiB machine with two workers keeps half for the grader and the system);
- ``EXPRESSION_LAB_SANDBOX_WORKER_PROCESSES``: processes and threads of a worker's sandbox, default the
  sandbox's own ``EXPRESSION_LAB_SANDBOX_PROCESSES`` (:attr:`Limits.processes`, 512); bubblewrap's own
  processes (:data:`LAUNCHER_TASKS`) are added;
- ``EXPRESSION_LAB_SANDBOX_GRADER_MEMORY``: bytes of memory of nbgrader's own process grading one submission,
  default 1 GiB (grading the test assignments of the kit's suite peaked at 100-170 MB there).

Sources: the kernel's cgroup documentation (``Documentation/admin-guide/cgroup-v2.rst``; v1: ``cgroup-v1/
memory.rst``, ``pids.rst``, ``scheduler/sched-bwc.rst``).
"""

from __future__ import annotations

import errno
import os
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .settings import (
    EXPRESSION_LAB_SANDBOX_BATCH,
    EXPRESSION_LAB_SANDBOX_GRADER_MEMORY,
    EXPRESSION_LAB_SANDBOX_JOBS,
    EXPRESSION_LAB_SANDBOX_WORKER_CPU_PERCENT,
    EXPRESSION_LAB_SANDBOX_WORKER_MEMORY,
    EXPRESSION_LAB_SANDBOX_WORKER_PROCESSES,
    SANDBOX_LIMITS,
    positive_setting,
)

#: The folder, in each hierarchy, that holds the workers' groups ``slot-<k>``.
GROUP = "expression-lab"
#: The controllers a worker's group is limited by.
CONTROLLERS = ("cpu", "memory", "pids")
#: Default bytes of memory per worker (all its processes and its memory file systems).
DEFAULT_WORKER_MEMORY = EXPRESSION_LAB_SANDBOX_WORKER_MEMORY.default
#: Default bytes of memory of nbgrader's own process grading one submission (group ``grader-<k>``).
DEFAULT_GRADER_MEMORY = EXPRESSION_LAB_SANDBOX_GRADER_MEMORY.default
#: The kinds of group per worker: its sandbox's processes, and nbgrader's own process.
KINDS = ("slot", "grader")
#: Tasks of a sandbox besides the student's: bubblewrap (the launcher, once it execs it) and its process 1.
LAUNCHER_TASKS = 2
#: The CFS period, microseconds (``cpu.cfs_period_us`` / second field of ``cpu.max``).
CPU_PERIOD_US = 100_000

_MOUNTINFO = Path("/proc/self/mountinfo")
_OWN_CGROUPS = Path("/proc/self/cgroup")


class CgroupError(OSError):
    """A worker's control group could not be set up or joined although the machine offers the controller."""


@dataclass(frozen=True)
class Shares:
    """What one worker may take: ``cpu_percent`` hundredths of a core at most (``cap`` False: no cap, the whole
    machine), ``memory`` bytes for all its processes and memory file systems, ``processes`` tasks (processes and
    threads) of the student's code; ``jobs`` workers on ``cores`` CPUs."""

    jobs: int
    cores: int
    cpu_percent: int
    memory: int
    processes: int

    @property
    def cap(self) -> bool:
        return self.cpu_percent < 100 * self.cores

    @classmethod
    def from_env(cls, limits=None, jobs: int | None = None, env: dict | None = None) -> Shares:
        """The shares from the ``EXPRESSION_LAB_SANDBOX_*`` variables of the module docstring.

        Args:
            limits: a :class:`course.sandbox.Limits` (its ``processes`` is the default process count) or None.
            jobs: the number of workers; None: ``EXPRESSION_LAB_SANDBOX_JOBS``, else 1.
            env: the environment (default ``os.environ``).

        Raises:
            ValueError: a variable (or ``jobs``) is not a positive integer; the message names it.
        """
        env = os.environ if env is None else env
        if jobs is None:
            jobs = positive_setting(env, EXPRESSION_LAB_SANDBOX_JOBS.name, EXPRESSION_LAB_SANDBOX_JOBS.default)
        elif int(jobs) < 1:
            raise ValueError(f"jobs={jobs!r}: expected a positive integer (the number of parallel workers)")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return cls(
            jobs=int(jobs),
            cores=cores,
            cpu_percent=positive_setting(
                env, EXPRESSION_LAB_SANDBOX_WORKER_CPU_PERCENT.name, max(1, 100 * cores // int(jobs))
            ),
            memory=positive_setting(env, EXPRESSION_LAB_SANDBOX_WORKER_MEMORY.name, DEFAULT_WORKER_MEMORY),
            processes=positive_setting(
                env,
                EXPRESSION_LAB_SANDBOX_WORKER_PROCESSES.name,
                getattr(limits, "processes", None) or SANDBOX_LIMITS["processes"].default,
            ),
        )


def batch_name(env: dict | None = None) -> str:
    """The batch's name in its workers' group names: ``$EXPRESSION_LAB_SANDBOX_BATCH`` (letters, digits, ``_``,
    ``-``; at most 64), or "" (groups ``slot-<k>``, shared by batches that run at the same time).

    Raises:
        ValueError: the variable holds anything else (the message names it).
    """
    env = os.environ if env is None else env
    value = EXPRESSION_LAB_SANDBOX_BATCH.read(env) or ""
    if value and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise ValueError(f"{EXPRESSION_LAB_SANDBOX_BATCH.name}={value!r}: expected 1 to 64 letters, digits, '_' or '-'")
    return value


@dataclass(frozen=True)
class Controller:
    """Where one controller's worker groups live: ``base`` (``…/expression-lab``, holding ``slot-<k>``) in a
    cgroup ``version`` 1 or 2 hierarchy; or why it is not enforced here (``problem``, base None)."""

    name: str
    version: int | None
    base: Path | None
    problem: str = ""

    def group(self, slot: int, batch: str = "", kind: str = "slot") -> Path:
        """Worker ``slot``'s group folder of ``kind`` (:data:`KINDS`): ``slot-<k>`` or ``<batch>-slot-<k>`` (its
        sandbox), ``grader-<k>`` or ``<batch>-grader-<k>`` (nbgrader's own process)."""
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r}: expected one of {KINDS}")
        return self.base / (f"{batch}-{kind}-{int(slot)}" if batch else f"{kind}-{int(slot)}")


def _mounts() -> list[tuple[str, Path, str, set[str]]]:
    """(fstype, mount point, root within the hierarchy, super options) of the cgroup mounts."""
    mounts = []
    for line in _MOUNTINFO.read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        point = Path(fields[4].replace("\\040", " "))
        mounts.append((tail[0], point, fields[3], set(tail[2].split(","))))
    return mounts


def _own_paths() -> dict[str, str]:
    """This process's group per v1 controller (``"cpu": "/"``) and, under ``""``, its cgroup v2 group."""
    paths = {}
    for line in _OWN_CGROUPS.read_text().splitlines():
        hid, names, path = line.split(":", 2)
        if hid == "0" and names == "":
            paths[""] = path
        for name in names.split(","):
            if name:
                paths[name] = path
    return paths


def _folder(point: Path, root: str, path: str) -> Path | None:
    """The folder of group ``path`` in a hierarchy mounted at ``point`` from its group ``root``; a group inside
    ours (a worker's own, when the launcher was started from one) counts as ours."""
    parts = [p for p in path.split("/") if p]
    if GROUP in parts:
        parts = parts[: parts.index(GROUP)]
    root_parts = [p for p in root.split("/") if p]
    if parts[: len(root_parts)] != root_parts:
        return None
    return point.joinpath(*parts[len(root_parts) :])


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _reason(err: OSError, what: str) -> str:
    if err.errno in (errno.EACCES, errno.EPERM) and os.geteuid() != 0:
        return f"not root (the grader creates each worker's group as root; {what}: {err.strerror})"
    if err.errno == errno.EROFS:
        return f"the cgroup file system is read-only here ({what})"
    return f"{what}: {err.strerror or err}"


def _enable_v2(point: Path, base: Path, names: list[str]) -> dict[str, str]:
    """Write ``+name`` to ``cgroup.subtree_control`` from the mount point down to ``base`` (inclusive, created);
    return the problem of each controller that could not be passed on."""
    problems = {}
    chain = [
        point,
        *[point.joinpath(*base.relative_to(point).parts[: i + 1]) for i in range(len(base.relative_to(point).parts))],
    ]
    for folder in chain:
        if folder == base:
            try:
                base.mkdir(exist_ok=True)
            except OSError as err:
                return dict.fromkeys(names, _reason(err, f"cannot create {base}"))
        enabled = set((folder / "cgroup.subtree_control").read_text().split())
        offered = set((folder / "cgroup.controllers").read_text().split())
        for name in names:
            if name in problems or name in enabled:
                continue
            if name not in offered:
                problems[name] = f"cgroup v2 does not offer the {name} controller to {folder}"
                continue
            try:
                _write(folder / "cgroup.subtree_control", f"+{name}")
            except OSError as err:
                if err.errno == errno.EBUSY:
                    problems[name] = (
                        f"cannot pass the {name} controller on below {folder}: that group holds "
                        "processes (cgroup v2 passes controllers only from groups without "
                        "processes, e.g. not from a container's root group)"
                    )
                else:
                    problems[name] = _reason(err, f"cannot enable {name} in {folder}")
    return problems


def probe(create: bool = True) -> dict[str, Controller]:
    """Find, per controller of :data:`CONTROLLERS`, where the workers' groups go, and (``create``) make the
    ``expression-lab`` folder there, with its controllers enabled (cgroup v2), to prove that it can be done.

    Returns {controller name: :class:`Controller`}; one with a ``problem`` is not enforced here. Never raises
    for what the machine does not allow (that is a ``problem``).
    """
    try:
        mounts, own = _mounts(), _own_paths()
    except OSError as err:
        return {n: Controller(n, None, None, f"no control groups on this system ({err.strerror})") for n in CONTROLLERS}
    found: dict[str, Controller] = {}
    v2_names, v2_base, v2_point = [], None, None
    for name in CONTROLLERS:
        v1 = [(point, root) for kind, point, root, opts in mounts if kind == "cgroup" and name in opts]
        if v1:
            point, root = v1[0]
            folder = _folder(point, root, own.get(name, "/"))
            if folder is None:
                found[name] = Controller(
                    name, 1, None, f"this process's {name} group is outside the mounted hierarchy {point}"
                )
            else:
                found[name] = Controller(name, 1, folder / GROUP)
            continue
        for kind, point, root, _ in mounts:
            if kind != "cgroup2" or "" not in own:
                continue
            try:
                offered = (point / "cgroup.controllers").read_text().split()
            except OSError:
                continue
            own_folder = _folder(point, root, own[""])
            if name in offered and own_folder is not None:
                # beside our own group; from inside a worker's group (nbgrader in grader-<k>), _folder already
                # gave the folder that holds expression-lab
                inside = GROUP in own[""].split("/")
                parent = own_folder if own_folder == point or inside else own_folder.parent
                v2_names.append(name)
                v2_base, v2_point = parent / GROUP, point
                found[name] = Controller(name, 2, v2_base)
                break
        else:
            found[name] = Controller(
                name,
                None,
                None,
                f"no {name} controller (no cgroup v1 hierarchy has it and the cgroup v2 hierarchy does not offer it)",
            )
    if not create:
        return found
    if v2_names:
        try:
            problems = _enable_v2(v2_point, v2_base, v2_names)
        except OSError as err:
            problems = dict.fromkeys(v2_names, _reason(err, f"cannot read {v2_base.parent}"))
        for name, problem in problems.items():
            found[name] = Controller(name, 2, None, problem)
    for name, ctl in list(found.items()):
        if ctl.base is None:
            continue
        try:
            ctl.base.mkdir(exist_ok=True)
            if not os.access(ctl.base, os.W_OK):  # made by root earlier: this user cannot add groups to it
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(ctl.base))
        except OSError as err:
            found[name] = Controller(name, ctl.version, None, _reason(err, f"cannot create groups in {ctl.base}"))
    return found


def _limit_cpu(ctl: Controller, group: Path, shares: Shares) -> None:
    quota = shares.cpu_percent * CPU_PERIOD_US // 100 if shares.cap else None
    # the workers together weigh as much as ``jobs`` ordinary processes against what runs outside their groups
    # (the grader's own processes, other users): as much as their kernels would without groups
    if ctl.version == 1:
        _write(group.parent / "cpu.shares", str(min(262144, 1024 * shares.jobs)))
        _write(group / "cpu.shares", "1024")
        _write(group / "cpu.cfs_period_us", str(CPU_PERIOD_US))
        try:
            _write(group / "cpu.cfs_quota_us", str(quota if quota else -1))
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
            # v1 refuses a quota above an enclosing group's (a container's CPU limit): that one binds already
            _write(group / "cpu.cfs_quota_us", "-1")
    else:
        _write(group.parent / "cpu.weight", str(min(10000, 100 * shares.jobs)))
        _write(group / "cpu.weight", "100")
        _write(group / "cpu.max", f"{quota if quota else 'max'} {CPU_PERIOD_US}")


def _limit_memory(ctl: Controller, group: Path, shares: Shares) -> None:
    if ctl.version == 1:
        memsw = group / "memory.memsw.limit_in_bytes"
        order = [("memory.limit_in_bytes", shares.memory)]
        if memsw.exists():  # memsw (memory + swap) must stay >= memory: lower memory first, raise memsw first
            order.append(("memory.memsw.limit_in_bytes", shares.memory))
            if int(memsw.read_text()) < shares.memory:
                order.reverse()
        for name, value in order:
            _write(group / name, str(value))
    else:
        _write(group / "memory.max", str(shares.memory))
        if (group / "memory.swap.max").exists():
            _write(group / "memory.swap.max", "0")


def _limit_pids(ctl: Controller, group: Path, shares: Shares) -> None:
    _write(group / "pids.max", str(shares.processes + LAUNCHER_TASKS))


_LIMIT = {"cpu": _limit_cpu, "memory": _limit_memory, "pids": _limit_pids}


def grader_memory(env: dict | None = None) -> int:
    """Bytes of memory of nbgrader's own process grading one submission (``EXPRESSION_LAB_SANDBOX_GRADER_MEMORY``).

    Raises:
        ValueError: the variable is not a positive integer (the message names it).
    """
    env = os.environ if env is None else env
    return positive_setting(env, EXPRESSION_LAB_SANDBOX_GRADER_MEMORY.name, DEFAULT_GRADER_MEMORY)


def join(slot: int, limits=None) -> None:
    """Move the calling process (the sandbox launcher, running as root right before it execs bubblewrap) into
    worker ``slot``'s group of every controller this machine allows, creating the group and setting its limits
    (:class:`Shares` from the environment) first. What the machine does not allow is skipped (see
    :func:`describe`); children (bubblewrap, the kernel, all it starts) inherit the groups.

    Args:
        slot: the worker number (``$EXPRESSION_LAB_SANDBOX_SLOT``), 0 … jobs - 1.
        limits: the sandbox's :class:`course.sandbox.Limits` (default process count), or None.

    Raises:
        ValueError: a setting is not a positive integer, or ``slot`` is negative.
        CgroupError: a group the machine offers could not be created, limited or joined (the message names the
            file and the kernel's reason).
    """
    if int(slot) < 0:
        raise ValueError(f"worker slot {slot!r}: expected 0 or more (EXPRESSION_LAB_SANDBOX_SLOT)")
    _join(slot, "slot", CONTROLLERS, Shares.from_env(limits))


def join_grader(slot: int) -> None:
    """Move the calling process (``python -m course.cgroups grader``, as root, right before it execs nbgrader for
    one sandboxed submission) into worker ``slot``'s ``grader`` group, its memory limited to
    :func:`grader_memory` (swap included), creating it first. Skipped where the machine has no memory controller
    for us (see :func:`describe`).

    Raises:
        ValueError: a setting is not a positive integer, or ``slot`` is negative.
        CgroupError: the group could not be created, limited or joined (the message names the file and the
            kernel's reason).
    """
    if int(slot) < 0:
        raise ValueError(f"worker slot {slot!r}: expected 0 or more")
    shares = Shares.from_env()
    _join(slot, "grader", ("memory",), replace(shares, memory=grader_memory()))


def _join(slot: int, kind: str, names: tuple[str, ...], shares: Shares) -> None:
    """Create, limit (``shares``) and join worker ``slot``'s groups of ``kind`` for the controllers ``names``."""
    batch = batch_name()
    what = "control group" if kind == "slot" else "control group for nbgrader"

    def enforced() -> list[Controller]:
        return [c for c in probe().values() if c.base is not None and c.name in names]

    controllers = enforced()
    for _ in range(3):  # a batch that ends meanwhile may remove an empty base folder (cleanup): make it again
        try:
            groups = {}
            for ctl in controllers:
                group = ctl.group(slot, batch, kind)
                group.mkdir(parents=True, exist_ok=True)
                _LIMIT[ctl.name](ctl, group, shares)
                groups[group] = ctl
            for group in groups:
                _write(group / "cgroup.procs", str(os.getpid()))
            return
        except FileNotFoundError:
            time.sleep(0.05)
            controllers = enforced()
        except OSError as err:
            raise CgroupError(
                err.errno,
                f"cannot set up worker {slot}'s {what} ({err.filename or 'cgroup'}: {err.strerror or err})",
            ) from None
    raise CgroupError(errno.ENOENT, f"worker {slot}'s {what} kept disappearing while it was set up")


def memory_events(slot: int, kind: str = "grader", batch: str | None = None, start: bool = False) -> tuple[int, int]:
    """(times worker ``slot``'s group of ``kind`` reached its own memory limit, processes the OOM killer stopped in
    it). A process stopped while its group was under its limit was the victim of a shortage elsewhere (the machine,
    an enclosing group), not of its own use: compare both, before and after a run.

    cgroup v2: ``oom`` and ``oom_kill`` of ``memory.events``, counted since the group was made. cgroup v1 counts
    kills (``oom_kill`` of ``memory.oom_control``) but not limit hits (``memory.failcnt`` stayed 0 through an OOM
    kill here): the first number is 1 when ``memory.max_usage_in_bytes`` has reached ``memory.limit_in_bytes``,
    and ``start`` (before a run) resets that peak first. (0, 0) where there is no such group. Never raises."""
    hits = kills = 0
    try:
        folder = group_paths(slot, batch, kind).get("memory")
        if folder is None or not folder.is_dir():
            return 0, 0
        events = folder / "memory.events"
        if events.is_file():
            counts = dict(line.split(" ", 1) for line in events.read_text().splitlines() if " " in line)
            return int(counts.get("oom", 0)), int(counts.get("oom_kill", 0))
        peak = folder / "memory.max_usage_in_bytes"
        if start:
            _write(peak, "0")
        hits = int(peak.read_text()) >= int((folder / "memory.limit_in_bytes").read_text())
        for line in (folder / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                kills = int(value)
    except (OSError, ValueError):
        pass
    return int(hits), kills


def group_paths(slot: int, batch: str | None = None, kind: str = "slot") -> dict[str, Path]:
    """{controller: folder of worker ``slot``'s group of ``kind``} for the controllers enforced here (nothing is
    created); ``batch`` None: :func:`batch_name`."""
    batch = batch_name() if batch is None else batch
    return {
        c.name: c.group(slot, batch, kind)
        for c in probe(create=False).values()
        if c.base is not None and c.base.is_dir()
    }


def cleanup(wait: float = 2.0) -> None:
    """Remove the workers' groups that no process uses any more: this batch's own (:func:`batch_name`), which get
    up to ``wait`` seconds for their last processes to end (a sandbox stops a moment after its kernel), and those
    of batches that have ended (:func:`_ended`). A group still in use, or one of a batch running beside this one,
    is left (removing it emptied made that batch miss its grader's OOM count). Nothing is killed. Never raises."""
    try:
        mine = batch_name()
    except ValueError:
        mine = None
    deadline = time.monotonic() + wait
    for ctl in probe(create=False).values():
        if ctl.base is None or not ctl.base.is_dir():
            continue
        groups = []
        for group in ctl.base.iterdir():
            match = re.fullmatch(rf"(?:(.+)-)?({'|'.join(KINDS)})-\d+", group.name)
            if group.is_dir() and match and (match[1] or "") == mine:
                groups.append((group, True))
            elif group.is_dir() and match and _ended(match[1]):
                groups.append((group, False))
        for group, ours in sorted(groups):
            while True:
                try:
                    group.rmdir()
                except OSError as err:
                    if err.errno == errno.EBUSY and ours and time.monotonic() < deadline:
                        time.sleep(0.1)
                        continue
                break
        try:
            ctl.base.rmdir()
        except OSError:
            pass


def _ended(batch: str | None) -> bool:
    """Whether a batch named ``<name>-<pid>`` (the autograde command's ``batch-<pid>``) has ended: its process is
    gone. A batch running beside this one keeps its groups (it reads its grader's OOM count from them after
    nbgrader ends); one without a process id in its name is left to its own cleanup; groups of no batch go."""
    if batch is None:
        return True
    pid = re.fullmatch(r".*-(\d+)", batch)
    if pid is None:
        return False
    try:
        os.kill(int(pid[1]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


def _machine_memory() -> int | None:
    """Bytes of memory of this machine (``MemTotal`` of ``/proc/meminfo``), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _swap_present() -> bool:
    try:
        return any(
            line.split()[1] != "0"
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("SwapTotal:")
        )
    except OSError:
        return False


def describe(limits=None, jobs: int | None = None) -> str:
    """One line for the autograde output: the per-worker limits that hold here and, plainly, those that do not.

    Sets up (as :func:`probe` does) the folder that holds the workers' groups, so that what it reports is what
    the machine allowed, not what it seems to offer.

    Args:
        limits: the sandbox's :class:`course.sandbox.Limits`, or None.
        jobs: the number of parallel workers; None: ``EXPRESSION_LAB_SANDBOX_JOBS``, else 1.

    Raises:
        ValueError: a setting is not a positive integer (the message names the variable).
    """
    shares, grader = Shares.from_env(limits, jobs=jobs), grader_memory()
    found = probe()
    held, missing = [], []
    if found["cpu"].base is not None:
        cap = (
            f"at most {shares.cpu_percent / 100:.2f} of {shares.cores} cores"
            if shares.cap
            else f"no cap (all {shares.cores} cores)"
        )
        held.append(f"CPU {cap}, equal weight under contention")
    if found["memory"].base is not None:
        version = found["memory"].version
        swap_file = "memory.memsw.limit_in_bytes" if version == 1 else "memory.swap.max"
        limited = (found["memory"].base / swap_file).exists() or not _swap_present()
        swap = "no swap" if limited else f"swap NOT limited (no {swap_file})"
        held.append(f"memory {_gib(shares.memory)} for all its processes and its /tmp, /dev/shm and home, {swap}")
        held.append(f"nbgrader's own process {_gib(grader)} a submission")
    if found["pids"].base is not None:
        held.append(f"{shares.processes} processes and threads")
    for name, what in (("cpu", "CPU share"), ("memory", "total memory (tmpfs included)"), ("pids", "process count")):
        if found[name].base is None:
            missing.append(f"{what}: {found[name].problem}")
    total, overcommit = _machine_memory(), ""
    if found["memory"].base is not None and total and shares.jobs * (shares.memory + grader) > total:
        overcommit = (
            f". Memory NOT enough for all workers at once: {shares.jobs} × ({_gib(shares.memory)} + "
            f"{_gib(grader)} for nbgrader) is more than this machine's {_gib(total)}, so a shortage can "
            f"stop any worker's processes (lower --jobs or {EXPRESSION_LAB_SANDBOX_WORKER_MEMORY.name})"
        )
    versions = sorted({f"v{c.version}" for c in found.values() if c.base is not None})
    text = f"per-worker limits ({shares.jobs} worker{'s' * (shares.jobs > 1)}"
    text += f", cgroup {'+'.join(versions)}): {'; '.join(held)}" if held else "): "
    if missing:
        text += (". " if held else "") + (
            "NOT enforced here, so a submission can take this from the one graded "
            f"beside it (per-process rlimits only): {'; '.join(missing)}"
        )
    return text + overcommit


def main(argv: list[str]) -> int:
    """``python -m course.cgroups grader K PROGRAM [ARGS…]``: join worker ``K``'s grader group
    (:func:`join_grader`), then exec ``PROGRAM`` (an absolute path) with ``ARGS``. Exit status 2 for a wrong
    call, 1 when the group cannot be joined (the reason on stderr, as ``expression-lab sandbox: …``)."""
    if len(argv) < 3 or argv[0] != "grader" or not argv[1].isdigit() or not os.path.isabs(argv[2]):
        print("usage: python -m course.cgroups grader SLOT /absolute/program [ARGS...]", file=sys.stderr)
        return 2
    try:
        join_grader(int(argv[1]))
    except (CgroupError, ValueError) as err:
        print(f"expression-lab sandbox: {err}", file=sys.stderr)
        return 1
    os.execv(argv[2], argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
