"""The sandboxed grading kernel: student code runs in bubblewrap, without network, with resource limits.

nbgrader runs every submission with the grader's rights (nbgrader issue #483). The kernelspec
``expression-lab-sandbox`` (:func:`install_kernel_spec`) starts :func:`launch_kernel`, which wraps
ipykernel's launcher (``python -P -c KERNEL_BOOT -f {connection_file}``, :data:`KERNEL_BOOT`) in ``bwrap``
(bubblewrap, the sandbox Flatpak uses):

- the system (``/usr``, a few ``/etc`` files), Python and the virtual environment are read-only;
- the kit's runtime packages (``data_loaders/``, ``widgets/``, ``course/``), the data the notebooks read
  (``<course>/data`` and what the declared data settings name, e.g. ``FER2013_PATH``, ``MODEL_2_PATH``: see
  :data:`DATA_VARIABLES`) and the parsed-data cache are read-only;
- the submission's folder (nbgrader's working directory for the notebook, ``grading/autograded/<student>/<id>``)
  is never bound: at its path the kernel gets a private, size-limited memory file system filled with a copy of
  the folder's regular files, notebooks left out (nbgrader's copy holds the hidden tests); links, special files
  and what a run writes there stay inside the sandbox and vanish with it, so no grader-side step (nbgrader's
  ``chmod`` of the autograded folder, the feedback copy) ever meets them. Only the run records a grading run
  writes (``autograde_outputs/*.run.json``) come back, over a pipe read by the launcher, within caps, into a
  folder the grader checks (:func:`collect_run_records`). ``/tmp`` and ``$HOME`` are private, size-limited memory
  file systems too;
- no folder of the grader's disk is writable inside: the kernel's socket folder (``/tmp/expression-lab-kernel-*``)
  is, inside, a private memory file system of :data:`SOCKET_DIR_SIZE` bytes in which the kernel creates its
  Unix sockets; once they exist, and before any student code runs, the launcher opens a descriptor of each
  (``O_PATH``) and seals that folder (read-only for the sandbox user, :func:`_seal_socket_dir`); nbgrader
  connects through links the launcher puts in the real folder, ``kernel-<port>`` → ``/proc/<launcher pid>/fd/<n>``,
  which reach the socket the descriptor was opened on: a socket later replaced by a link (which would resolve on
  the grader's side) is never met, whether or not the kernel can undo the seal;
- nothing else exists inside: not ``solutions/`` (hidden tests), not ``grading/`` (gradebook, other students),
  not the home folder;
- new network, PID, IPC and UTS namespaces: no network at all (nbgrader talks to the kernel over Unix sockets
  in a private folder, ``c.KernelManager.transport = "ipc"`` in ``nbgrader_config.py``, see above);
- an unprivileged user id when grading as root (``setpriv``), one per parallel worker, and resource limits
  (``setrlimit``): address space, processes of that user id, CPU seconds, file size; where the machine allows
  it, each parallel worker's processes also share one control group (:mod:`course.cgroups`: CPU share, memory
  including the memory file systems, processes).

Plain nbgrader can use the kernel too: ``nbgrader autograde ps3_iphonex_3dcnn
--Execute.kernel_name=expression-lab-sandbox`` after ``python -m course sandbox install``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from data_loaders.settings import EXPRESSION_LAB_CACHE, SYNTHETIC

from . import REPO_ROOT
from .settings import (
    EXPRESSION_LAB_SANDBOX_AUTOGRADED,
    EXPRESSION_LAB_SANDBOX_SLOT,
    EXPRESSION_LAB_SANDBOX_UID,
    SANDBOX_LIMITS,
    positive_setting,
    sandbox_data_variables,
    sandbox_variables,
)

#: The kernelspec name nbgrader is told to use (``--Execute.kernel_name``).
KERNEL_NAME = "expression-lab-sandbox"
#: The kit's packages a notebook imports; only these folders of the course root are visible inside.
RUNTIME_PACKAGES = ("data_loaders", "widgets", "course")
#: Environment variables naming data a notebook reads (bound read-only when they name a path): the declared
#: settings passed into the sandbox that name a path (``course.settings``).
DATA_VARIABLES = sandbox_data_variables()
#: Environment variables passed into the sandbox unchanged (everything else is dropped: tokens, HOME, …): the
#: declared settings and other programs' variables marked ``passed_to_sandbox`` (``course.settings``).
PASSED_VARIABLES = sandbox_variables()
#: Files of /etc that Python, TensorFlow and matplotlib read; the rest of /etc stays outside.
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "fonts",
    "nsswitch.conf",
    "host.conf",
    "hosts",
    "passwd",
    "group",
    "mime.types",
    "ssl",
    "ca-certificates",
    "alternatives",
    "os-release",
    "matplotlibrc",
)
#: First user id of the sandbox users when grading as root; worker ``k`` uses ``SANDBOX_UID + k``.
SANDBOX_UID = 62000
#: Inside the sandbox: the private home folder.
SANDBOX_HOME = "/home/student"
#: Seconds the launcher waits for the kernel's sockets, and the kernel for the seal of their folder.
SEAL_TIMEOUT = 120
#: How the sandboxed kernel starts (``python -P -c KERNEL_BOOT -f CONNECTION``): ipykernel's own launcher, found
#: with the submission's folder off the module path (``-P``), which then goes at its end. ``python -m
#: ipykernel_launcher`` puts the working folder first, so a handed-in ``ipykernel_launcher.py`` ran in place of the
#: kernel before the guard, and a handed-in ``numpy.py`` shadowed numpy; at the end, the student's own modules
#: (``helper.py``) still import and shadow nothing installed. Between making its sockets and answering the first
#: request, the kernel waits until the launcher has sealed its socket folder (:func:`_seal_socket_dir`); the
#: submission's folder joins the module path only then, so no student code runs while that folder is writable.
KERNEL_BOOT = (
    "import os, sys, time\n"
    "from ipykernel.kernelapp import IPKernelApp\n"
    "app = IPKernelApp.instance()\n"
    "app.initialize()\n"
    f"end = time.monotonic() + {SEAL_TIMEOUT}\n"
    "while os.access(os.path.dirname(app.ip), os.W_OK):\n"
    "    if time.monotonic() > end:\n"
    "        sys.exit('expression-lab sandbox: the socket folder was not sealed')\n"
    "    time.sleep(0.01)\n"
    # only now the submission's folder: ipykernel, jupyter_client and IPython import optional modules while they
    # start (colorama, argcomplete, orjson, …), and a handed-in colorama.py ran before the seal and undid it
    "sys.path.append('')\n"
    "app.start()\n"
)
#: Bytes of the private memory file system at the kernel's socket folder inside the sandbox: its Unix sockets take
#: none; what a student writes there (it is found by ``glob('/tmp/expression-lab-kernel-*')``) stops at this.
SOCKET_DIR_SIZE = 1024 * 1024
#: Inside the sandbox, the write end of the pipe over which the grading run hands out its run records (fixed: the
#: shell's redirections take one digit).
HANDOUT_FD = 3
#: Inside bubblewrap's launcher process, where ``--info-fd`` writes the sandbox's process id.
INFO_FD = 4

GIB = 1024**3


class SandboxError(RuntimeError):
    """The sandbox cannot be used here (no bubblewrap, no namespaces) or would expose the course."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed kernel (``setrlimit``; each may be overridden by its variable).

    ``memory`` bytes of address space (RLIMIT_AS; TensorFlow maps about 3 GiB at import),
    ``processes`` processes and threads of the sandbox user (RLIMIT_NPROC; TensorFlow starts a few dozen),
    ``cpu_seconds`` CPU seconds per process (RLIMIT_CPU, a backstop for code that ignores the cell timeout),
    ``file_size`` bytes per written file (RLIMIT_FSIZE), ``tmp_size`` bytes of each private ``/tmp`` and home,
    ``workdir_size`` bytes of the private working folder a grading kernel gets (a copy of the submission plus what
    the grading run writes, e.g. its models in ``autograde_outputs/``).
    """

    memory: int = SANDBOX_LIMITS["memory"].default
    processes: int = SANDBOX_LIMITS["processes"].default
    cpu_seconds: int = SANDBOX_LIMITS["cpu_seconds"].default
    file_size: int = SANDBOX_LIMITS["file_size"].default
    tmp_size: int = SANDBOX_LIMITS["tmp_size"].default
    workdir_size: int = SANDBOX_LIMITS["workdir_size"].default

    @classmethod
    def from_env(cls, env: dict | None = None) -> Limits:
        """The declared defaults (``course.settings.SANDBOX_LIMITS``), each overridden by its variable,
        ``EXPRESSION_LAB_SANDBOX_<FIELD>`` (e.g. ``EXPRESSION_LAB_SANDBOX_MEMORY=4294967296``).

        Raises:
            ValueError: a variable is not a positive integer.
        """
        env = os.environ if env is None else env
        return cls(**{attr: positive_setting(env, s.name, s.default) for attr, s in SANDBOX_LIMITS.items()})


def venv_python() -> Path:
    """This environment's interpreter by a path that works inside the sandbox (symlinks resolved up to the
    environment folder, so that Python still finds its ``pyvenv.cfg``)."""
    return Path(sys.prefix).resolve() / "bin" / Path(sys.executable).name


def _cache_dir() -> Path:
    from data_loaders import cache

    return cache.cache_dir().resolve()


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def sandbox_uid(env: dict | None = None) -> int | None:
    """The user id the kernel runs as: None when not grading as root (then it is the grader's own id), else
    ``SANDBOX_UID`` + ``$EXPRESSION_LAB_SANDBOX_SLOT`` (the worker number, so that one worker's process limit
    never starves another's kernel) or ``$EXPRESSION_LAB_SANDBOX_UID``."""
    env = os.environ if env is None else env
    if os.geteuid() != 0:
        return None
    uid = EXPRESSION_LAB_SANDBOX_UID.read(env)
    if uid:
        return int(uid)
    return SANDBOX_UID + int(EXPRESSION_LAB_SANDBOX_SLOT.read(env) or EXPRESSION_LAB_SANDBOX_SLOT.default)


def _check_workdir(workdir: Path, env: dict | None = None) -> None:
    """Refuse to run in (and copy) a folder that holds the course, the home folder or the whole system.

    When ``$EXPRESSION_LAB_SANDBOX_AUTOGRADED`` names nbgrader's autograded folder (``python -m course autograde``
    sets it), ``workdir`` must be a submission's folder two levels below it, judged by its path alone: what a
    student handed in (a folder named ``solutions/``, a file named ``gradebook.db``) cannot make grading refuse.
    Without it (plain ``nbgrader autograde`` with the sandbox kernel), a folder holding what only a course root
    holds is refused, and the message says what to do if a student handed in a file of that name.
    """
    env = os.environ if env is None else env
    home = Path.home().resolve()
    for guarded, what in (
        (REPO_ROOT, "the course (solutions/, grading/)"),
        (home, "the home folder"),
        (Path("/"), "the whole system"),
    ):
        if _is_within(guarded, workdir):
            raise SandboxError(
                f"the sandboxed kernel was started in {workdir}, which holds {what}; it runs only in "
                "a submission's folder (nbgrader's grading/autograded/<student>/<assignment>)"
            )
    autograded = EXPRESSION_LAB_SANDBOX_AUTOGRADED.read(env)
    if autograded:
        autograded_dir = Path(autograded).resolve()
        if workdir.parent.parent != autograded_dir:
            raise SandboxError(
                f"the sandboxed kernel was started in {workdir}; it runs only in a submission's "
                f"folder {autograded_dir}/<student>/<assignment>"
            )
        return
    if workdir.name in ("solutions", "grading", "submitted", "autograded", "source_with_tests", "feedback"):
        raise SandboxError(
            f"the sandboxed kernel was started in {workdir}, a course folder: it runs only in a "
            "submission's folder (nbgrader's autograded/<student>/<assignment>)"
        )
    for marker in ("nbgrader_config.py", "gradebook.db"):
        if (workdir / marker).exists():
            raise SandboxError(
                f"the sandboxed kernel was started in {workdir}, which holds {marker}: it runs only in a submission's "
                "folder (nbgrader's autograded/<student>/<assignment>). If that is a submission's folder, the student "
                f"handed in something named {marker}: grade with `python -m course autograde`, which judges the "
                "folder by its path, or remove it from the submitted folder and grade again."
            )


#: Run inside the sandbox before the kernel when the working folder is private: copy the submission's files in
#: (``$1``, a read-only copy the grader made), run the kernel, and hand the run records of the grading run out
#: (``autograde_outputs/*.run.json``) over a pipe, file descriptor :data:`HANDOUT_FD`, read by the launcher
#: (:func:`receive_run_records`, which checks them before the grader uses any): one line per record,
#: ``NAME BASE64`` (``NAME -`` for one over ``$2`` bytes), every second while the kernel runs and once when it
#: ends (a kernel killed at shutdown, past the kernel manager's wait, takes the sandbox with it, and with it any
#: record not yet handed out). The kernel itself does not get the pipe; a new line ends a line the killed copier
#: may have cut short. SIGINT stays ignored here (nbgrader interrupts the kernel).
_PRIVATE_WORKDIR_SCRIPT = (
    'src=$1; max=$2; shift 2; cp -R "$src"/. . || exit 70; '
    "hand_out() { for f in autograde_outputs/*.run.json; do "
    '[ -f "$f" ] && [ ! -L "$f" ] && if [ "$(wc -c < "$f")" -le "$max" ]; then '
    '{ printf "%s " "${f##*/}"; base64 -w0 < "$f"; echo; } >&3; '
    'else printf "%s -\\n" "${f##*/}" >&3; fi; '
    "done; }; "
    "(while sleep 1; do hand_out; done) & copier=$!; "
    '"$@" 3>&-; status=$?; kill $copier 2>/dev/null; echo >&3; hand_out; exit $status'
)


def bwrap_command(
    command: list[str],
    workdir: Path,
    *,
    writable: tuple[Path, ...] = (),
    uid: int | None = None,
    limits: Limits | None = None,
    env: dict | None = None,
    private_copy: Path | None = None,
    socket_dir: Path | None = None,
    read_only: tuple[Path, ...] = (),
    info_fd: int | None = None,
) -> list[str]:
    """The ``bwrap`` command line that runs ``command`` sandboxed in ``workdir``.

    Args:
        command: what runs inside, e.g. ``[python, "-m", "ipykernel_launcher", "-f", connection_file]``.
        workdir: the working directory. Bound writable when ``private_copy`` is None (a folder the grader made);
            else never bound: a private memory file system of ``limits.workdir_size`` bytes at its path.
        writable: further folders bound writable at their own path (a folder of the grader's disk, with no cap on
            what is written there: never a grading kernel's, whose socket folder is ``socket_dir``).
        uid: run as this user id (needs root; ``setpriv``) so that RLIMIT_NPROC applies; None: keep the caller's.
        limits: ``tmp_size`` and ``workdir_size`` are used here (the rlimits are set by :func:`set_limits`).
        env: the caller's environment (default ``os.environ``): only :data:`PASSED_VARIABLES` get in.
        private_copy: a folder (bound read-only, in ``read_only`` or a ``writable`` one) holding the files the
            private working folder starts with; the grading run's run records are then handed out every second and
            when ``command`` ends, over the pipe the caller opened at file descriptor :data:`HANDOUT_FD`
            (:data:`_PRIVATE_WORKDIR_SCRIPT`, :func:`receive_run_records`).
        socket_dir: the kernel's socket folder: inside, a private memory file system of :data:`SOCKET_DIR_SIZE`
            bytes at its path (the grader's folder itself is not bound; see :func:`launch_kernel`).
        read_only: files or folders bound read-only at their own path after ``socket_dir`` (the connection file
            and the submission's copy kept in the socket folder).
        info_fd: bubblewrap writes the sandbox's process id there (``--info-fd``) once it has started it.

    Raises:
        SandboxError: ``bwrap`` is not installed, or ``workdir`` holds the course or the home folder.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError(
            "bubblewrap (`bwrap`) is not installed: `sudo apt-get install bubblewrap` (Debian/Ubuntu) "
            "or pass --no-sandbox to grade with the grader's own rights"
        )
    env = dict(os.environ if env is None else env)
    limits = limits or Limits.from_env(env)
    workdir = workdir.resolve()
    _check_workdir(workdir, env)
    args = [
        bwrap,
        "--die-with-parent",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
    ]
    if os.geteuid() != 0:
        args.append("--unshare-user")  # an unprivileged bwrap needs a user namespace for its mounts
    # bwrap makes the missing parents of a mount point owner-only: create them world-readable first, so that
    # the sandbox user can reach what is bound (and nothing else exists in them).
    made = {Path("/")}

    def mount(*op: str) -> None:
        dest = Path(op[-1])
        for parent in reversed(dest.parents):
            if parent not in made:
                args.extend(["--perms", "0755", "--dir", str(parent)])
                made.add(parent)
        args.extend(op)
        made.add(dest)

    mount("--ro-bind", "/usr", "/usr")
    for link in ("bin", "sbin", "lib", "lib32", "lib64"):
        target = Path("/", link)
        if target.is_symlink():
            mount("--symlink", os.readlink(target), str(target))
        elif target.is_dir():
            mount("--ro-bind", str(target), str(target))
    for name in ETC_FILES:
        mount("--ro-bind-try", f"/etc/{name}", f"/etc/{name}")
    mount("--proc", "/proc")
    mount("--dev", "/dev")
    mount("--perms", "1777", "--size", str(limits.tmp_size), "--tmpfs", "/dev/shm")  # joblib's semaphores
    mount("--perms", "1777", "--size", str(limits.tmp_size), "--tmpfs", "/tmp")
    mount("--perms", "1777", "--size", str(limits.tmp_size), "--tmpfs", SANDBOX_HOME)
    readable = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()]
    readable += [REPO_ROOT / p for p in RUNTIME_PACKAGES] + [REPO_ROOT / "data"]
    for name in DATA_VARIABLES:
        value = env.get(name, "")
        if value and value.strip().lower() != SYNTHETIC and Path(value).expanduser().exists():
            readable.append(Path(value).expanduser().resolve())
    cache = _cache_dir()
    readable.append(cache)
    for path in dict.fromkeys(readable):
        if path.exists() and not _is_within(workdir, path):
            mount("--ro-bind", str(path), str(path))
    if private_copy is None:
        mount("--bind", str(workdir), str(workdir))
        # a notebook in a folder the grader made may hold hidden tests: /dev/null (unreadable here) covers it
        for notebook in sorted(workdir.rglob("*.ipynb")):
            mount("--ro-bind", "/dev/null", str(notebook))
    else:
        mount("--perms", "0777", "--size", str(limits.workdir_size), "--tmpfs", str(workdir))
    for path in writable:
        mount("--bind", str(path), str(path))
    if socket_dir is not None:
        mount("--perms", "0777", "--size", str(SOCKET_DIR_SIZE), "--tmpfs", str(socket_dir.resolve()))
    for path in read_only:
        mount("--ro-bind", str(path), str(path))
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    args += ["--clearenv"]
    inner_env = {k: env[k] for k in PASSED_VARIABLES if env.get(k)}
    inner_env.update(
        HOME=SANDBOX_HOME,
        USER="student",
        LOGNAME="student",
        TMPDIR="/tmp",
        PATH=f"{Path(sys.prefix).resolve() / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        PYTHONPATH=str(REPO_ROOT),
        MPLCONFIGDIR=f"{SANDBOX_HOME}/.mpl",
        PYTHONDONTWRITEBYTECODE="1",
    )  # the packages are read-only: no __pycache__ writes
    inner_env[EXPRESSION_LAB_CACHE.name] = str(cache)
    for key, value in sorted(inner_env.items()):
        args += ["--setenv", key, value]
    args += ["--chdir", str(workdir), "--"]
    if uid is not None:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise SandboxError("`setpriv` (util-linux) is needed to run student code as an unprivileged user")
        args += [
            setpriv,
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    if private_copy is not None:
        from .run_record import MAX_BYTES

        command = ["/bin/sh", "-c", _PRIVATE_WORKDIR_SCRIPT, "sh", str(private_copy), str(MAX_BYTES), *command]
    return args + list(command)


def set_limits(limits: Limits, uid: int | None) -> None:
    """Set this process's rlimits (inherited by bwrap and the kernel) to ``limits``.

    RLIMIT_NPROC counts every process of a real user id; when the kernel keeps the grader's own id (grading
    without root), the grader's processes already running are added so that the allowance is the kernel's.
    """
    processes = limits.processes
    if uid is None:
        mine = sum(1 for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == os.getuid())
        processes += mine * 64  # each may hold threads; a safe margin, still finite
    for which, value in (
        (resource.RLIMIT_AS, limits.memory),
        (resource.RLIMIT_NPROC, processes),
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.file_size),
        (resource.RLIMIT_CORE, 0),
    ):
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def first_for_the_oom_killer() -> None:
    """Make this process (the launcher, right before it execs bubblewrap) and all it starts the first the kernel's
    OOM killer stops when the machine or an enclosing group runs short (``oom_score_adj`` 1000): a kernel that
    filled its memory file systems, pages no process holds, made the OOM killer stop the largest process, a
    classmate's nbgrader. Skipped where the kernel refuses (no ``/proc``)."""
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass


def enter_limits(slot: int, limits: Limits, uid: int | None) -> None:
    """What the process that execs bubblewrap does to itself first, for all it starts to inherit: join worker
    ``slot``'s control groups (:func:`course.cgroups.join`), set the rlimits (:func:`set_limits`), go first for
    the OOM killer (:func:`first_for_the_oom_killer`), umask 022.

    Raises:
        course.cgroups.CgroupError, ValueError: as :func:`course.cgroups.join`.
    """
    from . import cgroups

    cgroups.join(slot, limits)
    set_limits(limits, uid)
    first_for_the_oom_killer()
    os.umask(0o022)


def _owner(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None


def _give_to(path: Path, uid: int) -> None:
    """Make ``path`` (a folder) and what it holds owned by ``uid`` (symlinks themselves, never their targets)."""
    os.chown(path, uid, uid, follow_symlinks=False)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)


def _share_cache(cache: Path) -> None:
    """Let the sandbox user read the parsed-data cache (older kit versions wrote it owner-only)."""
    for folder, dirs, files in os.walk(cache):
        for name in [*dirs, *files, ""]:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if os.path.islink(path):
                continue
            want = mode | 0o444 | (0o111 if os.path.isdir(path) else 0)
            if want != mode:
                os.chmod(path, want)


def _slot(env: dict | None = None) -> int:
    env = os.environ if env is None else env
    return int(EXPRESSION_LAB_SANDBOX_SLOT.read(env) or EXPRESSION_LAB_SANDBOX_SLOT.default)


def launch_kernel(connection_file: str, extra: list[str]) -> int:
    """Run the sandboxed kernel (the kernelspec's command) and return its exit status when it ends.

    Runs in nbgrader's working directory for the notebook (the submission's autograded folder). That folder is
    never bound into the sandbox: its regular files, notebooks left out, are copied (no link followed, within
    :class:`course.submission_files.Caps`) into a folder beside the kernel's sockets, bound read-only, from which
    the kernel's private working folder is filled.

    The socket folder itself (nbgrader's ``c.KernelManager.ip`` folder) is not bound either: inside, a private
    memory file system of :data:`SOCKET_DIR_SIZE` bytes stands at its path, where the kernel creates its Unix
    sockets; this process stays beside bubblewrap (:func:`_supervise`), pins the sockets and seals that folder
    inside once they exist (:func:`_seal_socket_dir`), then puts into the real folder one link per socket,
    ``kernel-<port>`` → ``/proc/<this pid>/fd/<n>``, through which nbgrader connects. Nothing the sandbox
    writes reaches the grader's disk but run records: handed out over a pipe and written here, within caps, into
    an outbox beside the sockets (:func:`receive_run_records`, :func:`collect_run_records`).

    Raises:
        SandboxError: the connection uses TCP (it cannot cross the network namespace), its socket folder is
            not private to this kernel, or :func:`bwrap_command` refuses.
    """
    from .review import one_line
    from .submission_files import copy_regular_files

    info = json.loads(Path(connection_file).read_text())
    if info.get("transport") != "ipc":
        raise SandboxError(
            "the sandboxed kernel has no network: its connection must use the ipc transport "
            "(c.KernelManager.transport = 'ipc' and a private c.KernelManager.ip folder, as in "
            "the course's nbgrader_config.py)"
        )
    socket_dir = Path(info["ip"]).resolve().parent
    if not socket_dir.name.startswith("expression-lab-kernel-"):
        raise SandboxError(
            f"the kernel's socket folder {socket_dir} is not a private one made for it "
            "(c.KernelManager.ip = '<mkdtemp(prefix=\"expression-lab-kernel-\")>/kernel')"
        )
    workdir = Path.cwd().resolve()
    _check_workdir(workdir)
    limits = Limits.from_env()
    uid = sandbox_uid()
    # the kernel reads a copy of its connection file, bound read-only (the original's folder is shared); its
    # sockets go in the socket folder by its real path, the one bubblewrap mounts the memory file system at
    ip = socket_dir / Path(info["ip"]).name
    inner_connection = socket_dir / f"connection-{os.getpid()}.json"
    inner_connection.write_text(json.dumps(dict(info, ip=str(ip))))
    copy, outbox = socket_dir / f"submission-{os.getpid()}", socket_dir / f"{OUTBOX_PREFIX}{os.getpid()}"
    for reason in copy_regular_files(workdir, copy):
        print(f"expression-lab sandbox: {one_line(f'{workdir.name}/{reason}', 600)}", file=sys.stderr)
    outbox.mkdir()
    if uid is not None:  # the sandbox user reads them (read-only inside); the socket folder stays the grader's
        _give_to(copy, uid)
        os.chown(inner_connection, uid, uid)
        _share_cache(_cache_dir())
    command = [str(venv_python()), "-P", "-c", KERNEL_BOOT, "-f", str(inner_connection), *extra]
    args = bwrap_command(
        command,
        workdir,
        uid=uid,
        limits=limits,
        private_copy=copy,
        socket_dir=socket_dir,
        read_only=(inner_connection, copy),
        info_fd=INFO_FD,
    )
    ports = sorted({int(v) for k, v in info.items() if k.endswith("_port") and str(v).isdigit()})
    links = {f"{ip.name}-{port}" for port in ports}
    enter_limits(_slot(), limits, uid)
    # nbgrader interrupts a cell past its timeout with SIGINT to the kernel's process group: neither this process
    # nor bwrap may die of it (that would kill the kernel); ipykernel installs its own SIGINT handler while a cell
    # runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return _supervise(args, socket_dir, links, outbox)


def _die_with_parent() -> None:
    """Have the kernel killed when nbgrader ends (``PR_SET_PDEATHSIG``; bwrap's ``--die-with-parent`` then ends the
    sandbox): the kernel runs in a session of its own, which a timeout's ``killpg`` of nbgrader does not reach."""
    import ctypes

    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the call
        os._exit(1)


def _start_bwrap(args: list[str], handout: int, info: int, stdout: int, stderr: int) -> int:
    """Fork and exec ``args`` with ``handout`` at :data:`HANDOUT_FD`, ``info`` at :data:`INFO_FD` and ``stdout``,
    ``stderr`` as its standard output and error; return the process id."""
    import fcntl

    pid = os.fork()
    if pid:
        return pid
    try:  # the child: every other descriptor this process opened is close-on-exec
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (handout, info, stdout, stderr)]
        os.dup2(moved[0], HANDOUT_FD)  # dup2 leaves the copy inheritable
        os.dup2(moved[1], INFO_FD)
        os.dup2(moved[2], 1)
        os.dup2(moved[3], 2)
        os.execv(args[0], args)
    except BaseException as err:  # noqa: BLE001 - nothing may return from the child
        print(f"expression-lab sandbox: cannot start bubblewrap: {err}", file=sys.stderr)
    os._exit(127)


def _read_sandbox_pid(fd: int) -> int | None:
    """The sandbox's process id from bubblewrap's ``--info-fd`` JSON, or None if it ended without writing it."""
    data = b""
    while len(data) < 65536:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _link_sockets(socket_dir: Path, pinned: dict[str, int]) -> dict[Path, str]:
    """Put one link per socket into the grader's ``socket_dir``, to this process's descriptor of that socket
    (``kernel-<port>`` → ``/proc/<this pid>/fd/<n>``, :func:`_seal_socket_dir`; a stale link of an earlier kernel is
    replaced); return them."""
    links = {}
    for name, fd in sorted(pinned.items()):
        link, target = socket_dir / name, f"/proc/{os.getpid()}/fd/{fd}"
        tmp = socket_dir / f".{name}.{os.getpid()}"
        try:
            os.symlink(target, tmp)
            os.replace(tmp, link)
            links[link] = target
        except OSError as err:
            print(f"expression-lab sandbox: cannot link {link}: {err}", file=sys.stderr)
    return links


def _seal_socket_dir(
    socket_dir: Path, names: set[str], pid: int, timeout: float = SEAL_TIMEOUT
) -> dict[str, int] | None:
    """Once the sandboxed kernel has made its sockets (``names``) in its socket folder (a memory file system inside
    the sandbox, reached at ``/proc/<pid>/root<socket_dir>``), pin each socket (a descriptor opened with
    ``O_PATH | O_NOFOLLOW``, checked to be a socket) and then make that folder read-only for the sandbox user;
    return the descriptors by name, or None when the sockets cannot be pinned and sealed so. The kernel answers no
    request, and no student code runs, before (:data:`KERNEL_BOOT`).

    nbgrader connects through ``/proc/<this pid>/fd/<n>`` (:func:`_link_sockets`): connecting to a Unix socket
    through a descriptor reaches the socket it was opened on, whatever stands at its name later, so a socket
    replaced by a link (past ``/proc/<pid>/root`` an absolute link resolves on the grader's side: ``/run/…``, a
    classmate's kernel) is never met, even where the kernel could undo the seal (grading as yourself, the kernel
    owns the folder). Sealed (grading as root), student code can add nothing there either.
    """
    import stat
    import time

    inside = Path(f"/proc/{pid}/root{socket_dir}")

    def all_sockets() -> bool:
        return all(stat.S_ISSOCK(os.lstat(inside / name).st_mode) for name in names)

    def pin_and_seal() -> dict[str, int]:
        pinned: dict[str, int] = {}
        try:
            for name in sorted(names):
                pinned[name] = os.open(inside / name, os.O_PATH | os.O_NOFOLLOW)
                if not stat.S_ISSOCK(os.fstat(pinned[name]).st_mode):
                    raise OSError(f"{name} is no longer a socket")
            os.chmod(inside, 0o555)
        except OSError:
            for fd in pinned.values():
                os.close(fd)
            raise
        return pinned

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        try:
            if all_sockets():
                return pin_and_seal()
        except FileNotFoundError:
            pass
        except OSError as err:
            print(f"expression-lab sandbox: cannot pin and seal the kernel's sockets: {err}", file=sys.stderr)
            return None
        time.sleep(0.01)
    print("expression-lab sandbox: the kernel made no sockets; its socket folder stays unsealed", file=sys.stderr)
    return None


def _supervise(args: list[str], socket_dir: Path, socket_names: set[str], outbox: Path) -> int:
    """Start bubblewrap (``args``), pin the kernel's sockets and seal their folder inside once they exist
    (:func:`_seal_socket_dir`; the sandbox is killed when that fails) and only then link the sockets into
    ``socket_dir``, write the run records it hands out into ``outbox`` until the sandbox ends, and return its
    exit status (128 + N when a signal N ended it). This process is the kernel nbgrader started: it ends with the
    sandbox."""
    _die_with_parent()
    handout_r, handout_w = os.pipe()
    info_r, info_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = _start_bwrap(args, handout_w, info_w, out_w, err_w)
    for fd in (handout_w, info_w, out_w, err_w):
        os.close(fd)
    forwarders = [_forward_capped(r, w) for r, w in ((out_r, 1), (err_r, 2))]
    links: dict[Path, str] = {}
    pinned: dict[str, int] = {}
    try:
        sandbox_pid = _read_sandbox_pid(info_r)
        # nbgrader gets its links only to pinned sockets in a sealed folder; a kernel whose sockets cannot be
        # pinned and sealed ends
        pinned = (_seal_socket_dir(socket_dir, socket_names, sandbox_pid) if sandbox_pid else None) or {}
        if pinned:
            links = _link_sockets(socket_dir, pinned)
        else:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        receive_run_records(handout_r, outbox)
    finally:
        for fd in (info_r, handout_r):  # a writer left blocked on a full pipe gets an error, not a hang
            with contextlib.suppress(OSError):
                os.close(fd)
        _, status = os.waitpid(pid, 0)
        for fd in pinned.values():
            os.close(fd)
        for forwarder in forwarders:
            forwarder.join(timeout=5)
    for link, target in links.items():
        with contextlib.suppress(OSError):
            if os.readlink(link) == target:
                os.unlink(link)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


#: Bytes of the sandbox's standard output, and as many of its standard error, passed on to the launcher's (nbgrader's
#: log of the kernel, on the grader's disk); the rest is read and dropped. A cell writing to file descriptor 1
#: wrote 256 MiB into that log (the kernel's low-level output goes there, not into the notebook).
KERNEL_OUTPUT_MAX_BYTES = 1024 * 1024
#: Put before every line the sandbox writes to the launcher's output, so that nothing a student's code prints can
#: pass for a line of the launcher (``expression-lab sandbox: …``) or of nbgrader (``[AutogradeApp | ERROR] …``)
#: in the log the grader reads a failure's reason from (:func:`course.autograde.failure_reason`).
KERNEL_OUTPUT_PREFIX = "[sandbox] "


def _forward_capped(source: int, target: int, limit: int = KERNEL_OUTPUT_MAX_BYTES):
    """Start a thread that copies the pipe ``source`` to ``target``, each line (split at ``\\n`` only) behind
    :data:`KERNEL_OUTPUT_PREFIX` and ended by a new line, until ``limit`` bytes are written, then reads the rest and
    drops it (saying so once); the thread closes ``source`` at its end and is returned."""
    import threading

    prefix = KERNEL_OUTPUT_PREFIX.encode()

    def copy() -> None:
        sent = 0
        try:
            while chunk := os.read(source, 65536):
                if sent >= limit:
                    continue
                lines = chunk.split(b"\n")
                if not lines[-1]:
                    lines.pop()
                data = b"".join(prefix + line + b"\n" for line in lines)[: limit - sent]
                sent += len(data)
                with contextlib.suppress(OSError):
                    os.write(target, data)
                    if sent >= limit:
                        note = f"[expression-lab sandbox: output past {limit:,} bytes dropped]\n".encode()
                        os.write(target, note if data.endswith(b"\n") else b"\n" + note)
        finally:
            with contextlib.suppress(OSError):
                os.close(source)

    thread = threading.Thread(target=copy, name=f"kernel-output-{target}", daemon=True)
    thread.start()
    return thread


#: Name prefix of the folders (beside a kernel's sockets) through which a grading run hands out its run records.
OUTBOX_PREFIX = "outputs-"
#: In an outbox: what :func:`receive_run_records` left out of what the grading run handed out, one reason a line.
OUTBOX_NOTE = "left-out.txt"
#: At most this many run records, and this many bytes of them in all, are kept of one grading run (each at most
#: :data:`course.run_record.MAX_BYTES`): all the grader's disk holds of what a grading kernel writes.
HANDOUT_MAX_FILES = 20
HANDOUT_MAX_BYTES = 20_000_000
_RECORD_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,120}\.run\.json")


def receive_run_records(fd: int, outbox: Path) -> list[str]:
    """Read the run records a grading run hands out over the pipe ``fd`` (lines ``NAME BASE64``, the newest of a
    name wins) until its end, and write each into ``outbox`` (``NAME``, complete or not at all); return one reason
    per thing left out, also written to ``outbox``/:data:`OUTBOX_NOTE` (read by :func:`collect_run_records`).

    What the sandbox sends is untrusted: only names of run records (``*.run.json``, no folder), at most
    :data:`course.run_record.MAX_BYTES` bytes each, :data:`HANDOUT_MAX_FILES` records and
    :data:`HANDOUT_MAX_BYTES` bytes in all are written; everything else is read and dropped.
    """
    from .run_record import MAX_BYTES

    longest = 4 * (MAX_BYTES // 3 + 1) + 200  # one line: a name, a space, the record in base64
    kept: dict[str, tuple[int, bytes]] = {}  # name -> (size, sha256)
    reasons: list[str] = []

    def leave_out(reason: str) -> None:
        if reason in reasons or len(reasons) >= 10:
            return
        reasons.append(reason)
        with contextlib.suppress(OSError):
            note = outbox / f"{OUTBOX_NOTE}.partial"
            note.write_text("".join(f"{r}\n" for r in reasons))
            note.replace(outbox / OUTBOX_NOTE)

    def one(line: bytes) -> None:
        name_bytes, _, data = line.partition(b" ")
        name = name_bytes.decode("ascii", "replace")
        if not _RECORD_NAME.fullmatch(name):
            leave_out("the grading run handed out something that is not a run record")
            return
        if data == b"-":  # the sandbox side found it too large to send
            leave_out(f"{name}: past the run records' limits ({MAX_BYTES:,} bytes each)")
            return
        try:
            record = base64.b64decode(data, validate=True)
        except ValueError:
            leave_out(f"{name}: damaged while handed out")
            return
        digest = hashlib.sha256(record).digest()
        if kept.get(name, (None, None))[1] == digest:
            return
        others = sum(size for other, (size, _) in kept.items() if other != name)
        if len(record) > MAX_BYTES or (name not in kept and len(kept) >= HANDOUT_MAX_FILES):
            leave_out(f"{name}: past the run records' limits ({MAX_BYTES:,} bytes each, {HANDOUT_MAX_FILES} in all)")
            return
        if others + len(record) > HANDOUT_MAX_BYTES:
            leave_out(f"{name}: past {HANDOUT_MAX_BYTES:,} bytes of run records in all")
            return
        partial = outbox / f"{name}.partial"
        try:
            out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(out, "wb") as f:
                f.write(record)
            os.replace(partial, outbox / name)
        except OSError as err:
            leave_out(f"{name}: not written ({err.strerror or err})")
            return
        kept[name] = (len(record), digest)

    # one line at a time, never more than ``longest`` bytes of it held; only lines ended by a new line count (the
    # last one may be a record cut short by the sandbox's end)
    try:
        with open(fd, "rb", closefd=False) as stream:
            while line := stream.readline(longest + 1):
                if not line.endswith(b"\n") and len(line) > longest:
                    leave_out(f"the grading run handed out a line over {longest:,} bytes (past the records' limits)")
                    while (rest := stream.readline(longest + 1)) and not rest.endswith(b"\n"):
                        pass
                elif line.endswith(b"\n") and line.strip():
                    one(line[:-1])
    except OSError:  # the pipe closed under the reader
        pass
    return reasons


def collect_run_records(socket_dir: Path, target: Path, *, max_files: int = 20) -> list[str]:
    """Copy the run records that sandboxed grading kernels handed out under ``socket_dir`` into ``target``
    (``grading/autograded/<student>/<id>/autograde_outputs``); return one reason per file left out.

    Only regular files named ``*.run.json`` of at most :data:`course.run_record.MAX_BYTES` bytes, at most
    ``max_files``, are copied (no link followed); they are data, read later with ``json.loads`` only. What the
    launcher left out while the records were handed out (:data:`OUTBOX_NOTE`) is returned too.
    """
    from .run_record import MAX_BYTES, SUFFIX
    from .submission_files import Caps, copy_file_no_follow, inspect_folder

    left_out, kept = [], 0
    for outbox in sorted(socket_dir.glob(f"{OUTBOX_PREFIX}*")):
        found = inspect_folder(outbox, Caps(depth=1))
        others = [*found.folders, *(rel for rel, _ in found.unsafe)]
        # a copy cut short by the sandbox's end is left as NAME.partial (sandbox side, never renamed): not a record
        launcher = (OUTBOX_NOTE, f"{OUTBOX_NOTE}.partial")
        others += [f for f in found.files if not f.endswith((SUFFIX, f"{SUFFIX}.partial")) and f not in launcher]
        note = os.lstat(outbox / OUTBOX_NOTE) if OUTBOX_NOTE in found.files else None
        if note and note.st_uid == os.geteuid() and note.st_size <= 4096:
            # written by the launcher (receive_run_records), not by a sandbox user: one reason a line
            lines = (outbox / OUTBOX_NOTE).read_text(errors="replace").splitlines()
            left_out += [f"autograde_outputs: {line[:300]}; left out" for line in lines[:10] if line.strip()]
        if others:
            left_out.append(
                "autograde_outputs: the grading run handed out more than run records "
                f"({', '.join(others)[:200]}); left out"
            )
        for name in (f for f in found.files if f.endswith(SUFFIX) and "/" not in f):
            size = os.lstat(outbox / name).st_size
            if size > MAX_BYTES or kept >= max_files:
                left_out.append(
                    f"autograde_outputs/{name}: {size:,} bytes, past the run records' limits "
                    f"({MAX_BYTES:,} bytes each, {max_files} in all); left out"
                )
                continue
            target.mkdir(parents=True, exist_ok=True)
            copy_file_no_follow(outbox / name, target / name)
            kept += 1
    return left_out


def kernel_spec() -> dict:
    """The kernelspec (``kernel.json``) of :data:`KERNEL_NAME`."""
    return {
        # -P: the launcher runs on the grader's side in the submission's folder, where a handed-in numpy.py (or
        # course/) would otherwise be imported first and run with the grader's rights
        "argv": [str(venv_python()), "-P", "-m", "course.sandbox", "-f", "{connection_file}"],
        "display_name": "Python 3 (Expression Lab grading sandbox)",
        "language": "python",
        "metadata": {"debugger": False},
    }


def install_kernel_spec(prefix: str | None = None) -> Path:
    """Install (or refresh) the kernelspec into ``prefix`` (default: this environment, ``sys.prefix``) and
    return its folder. A folder Jupyter does not search (``JUPYTER_PATH``) is fine for the autograde command.

    Raises:
        PermissionError: the prefix is not writable (install into a folder of yours and add it to JUPYTER_PATH).
    """
    folder = Path(prefix or sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = json.dumps(kernel_spec(), indent=1) + "\n"
    target = folder / "kernel.json"
    if not target.is_file() or target.read_text() != spec:
        tmp = folder / f".kernel.json.{os.getpid()}"
        tmp.write_text(spec)
        tmp.replace(target)
    return folder


def run_sandboxed(
    command: list[str], workdir: Path, *, limits: Limits | None = None, timeout: float = 120, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``command`` in the same sandbox and limits as the grading kernel, in ``workdir``; return the finished
    process (text stdout/stderr captured). Used by :func:`check_sandbox` and the sandbox tests.

    Raises:
        SandboxError: as :func:`bwrap_command`.
        subprocess.TimeoutExpired: it ran past ``timeout`` seconds (then it is killed).
    """
    env = dict(os.environ if env is None else env)
    limits = limits or Limits.from_env(env)
    uid = sandbox_uid(env)
    if uid is not None:
        _give_to(workdir, uid)
        _share_cache(_cache_dir())
    args = bwrap_command(command, workdir, uid=uid, limits=limits, env=env)

    def start() -> None:
        enter_limits(_slot(env), limits, uid)

    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, preexec_fn=start)


def check_sandbox() -> None:
    """Start a tiny command in the same sandbox the kernel gets; return when it works.

    Raises:
        SandboxError: bubblewrap is missing or cannot start here (e.g. no user namespaces in a container);
            the message holds bwrap's own error and how to grade without the sandbox.
    """
    import tempfile

    # the kit's packages are found inside; importing them would cost 4 s of every batch (pandas, OpenCV, widgets)
    found = (
        "import importlib.util, sys\n"
        "missing = [m for m in ('data_loaders', 'widgets', 'course') if importlib.util.find_spec(m) is None]\n"
        "sys.exit(f'not found in the sandbox: {missing}' if missing else 0)"
    )
    with tempfile.TemporaryDirectory(prefix="expression-lab-sandbox-check-") as tmp:
        proc = run_sandboxed([str(venv_python()), "-c", found], Path(tmp))
    if proc.returncode != 0:
        raise SandboxError(
            f"bubblewrap cannot start the grading sandbox on this machine (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-600:]}\nThis is the machine, not a submission: check that "
            f"{shutil.which('bwrap')} is a root-owned executable (`ls -l $(command -v bwrap)`; "
            "reinstall the Debian package `bubblewrap` if its mode changed) and that bwrap may use "
            "user namespaces or runs as root, then `python -m course sandbox check`. Grading "
            "without the sandbox (--no-sandbox) runs every submission with your rights: never for "
            "a class you do not trust."
        )


def main(argv: list[str] | None = None) -> int:
    """The kernelspec's entry point: ``python -m course.sandbox -f CONNECTION_FILE [kernel arguments]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] != "-f":
        print("usage: python -m course.sandbox -f CONNECTION_FILE [kernel arguments]", file=sys.stderr)
        return 2
    try:
        return launch_kernel(argv[1], argv[2:])
    except (SandboxError, ValueError, OSError) as err:
        print(f"expression-lab sandbox: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
