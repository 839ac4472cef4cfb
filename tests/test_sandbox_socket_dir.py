"""The grading kernel's socket folder cannot fill the grader's disk, and what the sandbox sends back is capped.

nbgrader talks to the sandboxed kernel over Unix sockets in a folder ``/tmp/expression-lab-kernel-*`` of the
grader's disk (``c.KernelManager.ip``). Student code finds it (``glob``: inside, it stands at the same path). That
folder is no longer bound into the sandbox: inside, a private memory file system of
:data:`course.sandbox.SOCKET_DIR_SIZE` bytes stands at its path, nbgrader reaches the kernel's sockets through links
the launcher puts in the real folder, and the run records come back over a pipe the launcher reads within caps
(:func:`course.sandbox.receive_run_records`). Once the kernel has made its sockets, the launcher seals that folder
(grading as root, the sandbox user may no longer write there) before the kernel answers any request. Here:

- a real sandboxed kernel (started the way nbgrader starts it) writes 32 MiB into its socket folder in 1 MiB
  files: the writes are refused (sealed) or stop at the cap, and the grader's folder holds none of it; a fair cell
  still runs after;
- its first cell can neither plant a link named like a socket, move a socket nor unseal the folder (a link there,
  met past ``/proc/<pid>/root``, resolves on the grader's side: nbgrader would reconnect to any socket named), and a
  socket replaced all the same (as a kernel grading as yourself could) is never reached: nbgrader connects through
  the launcher's descriptor of the kernel's socket;
- a run record comes back, one over the limits does not (and says so), and a flood written straight into the
  hand-out pipe leaves nothing on the grader's disk;
- a hostile student's submission, graded by ``python -m course autograde --sandbox`` beside a fair classmate: both keep
  their points, the fill is refused or stops at the cap;
- the launcher's reading of the pipe on its own (no bubblewrap needed).

The sandboxed tests need bubblewrap: skipped without it unless ``EXPRESSION_LAB_REQUIRE_SANDBOX=1`` (CI sets it).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest

from conftest import TINY_ID, TINY_NOTEBOOK, hand_in, make_tiny_course, sandbox_or_skip
from course import sandbox
from course.notebook_cells import cell_by_grade_id
from course.run_record import MAX_BYTES
from course.sample_submission import fill_answers

MIB = 2**20
#: The most the grader's socket folder may hold while the attacking kernel runs: the kernel's connection file, the
#: copy of a submission of one small file, the links to the sockets (no run record is written in that test).
HOST_BOUND = 64 * 1024

#: Student code: write 32 MiB into the socket folder it finds, in 1 MiB files; report what it found and wrote.
FILL = """
import glob as _glob, json as _json, os as _os
_found = sorted(_glob.glob('/tmp/expression-lab-kernel-*'))
_written, _stopped = 0, 'nothing'
try:
    for _i in range(32):
        with open(_os.path.join(_found[0], f'fill-{_i}.bin'), 'wb') as _f:
            _f.write(b'x' * 2**20)
        _written += 1
except OSError as _e:
    _stopped = f'{type(_e).__name__} errno {_e.errno}'
print('FILL ' + _json.dumps({'found': _found, 'written_mib': _written, 'stopped_by': _stopped}))
"""
#: How the fill stops: the folder is full (OSError: no space left), or sealed (grading as root: no write right).
STOPPED = ("OSError", "PermissionError")


def _host_usage(folder: Path) -> tuple[int, list[str]]:
    """Bytes of everything under ``folder`` on the grader's side (no link followed) and the names found."""
    total, names = 0, []
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(parent, name)
            names.append(os.path.relpath(path, folder))
            if name in files:
                total += os.lstat(path).st_size
    return total, sorted(names)


class _Kernel:
    """A sandboxed grading kernel started as nbgrader starts it (kernelspec ``expression-lab-sandbox``, ipc
    transport, a private socket folder), in a submission's folder."""

    def __init__(self, base: Path, files: dict[str, str] | None = None, log: Path | None = None):
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        self.workdir = base / "grading" / "autograded" / "alice" / TINY_ID
        self.workdir.mkdir(parents=True)
        (self.workdir / "notes.txt").write_text("handed in beside the notebook\n")
        for name, text in (files or {}).items():
            (self.workdir / name).write_text(text)
        prefix = base / "jupyter"
        sandbox.install_kernel_spec(str(prefix))
        self.sockets = Path(tempfile.mkdtemp(prefix="expression-lab-kernel-"))
        specs = KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])
        self.km = KernelManager(
            kernel_name=sandbox.KERNEL_NAME,
            kernel_spec_manager=specs,
            transport="ipc",
            ip=str(self.sockets / "kernel"),
            connection_file=str(base / "kernel.json"),
        )
        self.logs = []
        if log is not None:  # the kernel's own stdout and stderr, as nbgrader's log of it on the grader's disk
            self.logs = [open(log.with_suffix(".out"), "wb"), open(log.with_suffix(".err"), "wb")]
            self.km.start_kernel(cwd=str(self.workdir), stdout=self.logs[0], stderr=self.logs[1])
        else:
            self.km.start_kernel(cwd=str(self.workdir))
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=120)
        except RuntimeError:
            self.close()
            raise

    def run(self, code: str, timeout: float = 120) -> tuple[str, dict]:
        """Run ``code``; return its stream output and the reply's content."""
        out = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        return "".join(out), reply["content"]

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)
        shutil.rmtree(self.sockets, ignore_errors=True)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    sandbox_or_skip()
    k = _Kernel(tmp_path_factory.mktemp("socket-dir"))
    yield k
    k.close()


def _fill_result(text: str) -> dict:
    lines = [ln for ln in text.splitlines() if ln.startswith("FILL ")]
    assert lines, f"expected the cell to report what it wrote, found {text[-2000:]!r}"
    return json.loads(lines[-1][5:])


@pytest.mark.sandbox
@pytest.mark.slow
def test_writing_into_the_socket_folder_stops_at_its_cap_and_the_graders_disk_gets_none(kernel):
    text, reply = kernel.run(FILL)
    assert reply["status"] == "ok", f"expected the cell to end normally, found {reply['status']}: {text[-2000:]}"
    result = _fill_result(text)
    assert result["found"] == [str(kernel.sockets.resolve())], (
        f"expected the student code to find the kernel's socket folder {kernel.sockets} by glob (as a hostile submission "
        f"did), found {result['found']}"
    )
    used, names = _host_usage(kernel.sockets)
    assert used <= HOST_BOUND, (
        f"expected the grader's socket folder to hold at most {HOST_BOUND:,} bytes, found {used:,} bytes "
        f"({result['written_mib']} MiB written inside): {names[:20]}"
    )
    assert not [n for n in names if "fill-" in n], f"expected none of the kernel's files on the grader's disk: {names}"
    assert result["written_mib"] * MIB <= sandbox.SOCKET_DIR_SIZE and result["stopped_by"].startswith(STOPPED), (
        f"expected the writes refused or stopped with an OSError within {sandbox.SOCKET_DIR_SIZE / MIB:.0f} MiB, found "
        f"{result['written_mib']} MiB written, stopped by {result['stopped_by']}"
    )


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_fair_cell_still_runs_after_the_attempt(kernel):
    text, reply = kernel.run("print('answer', 6 * 7, open('notes.txt').read().strip())")
    assert reply["status"] == "ok" and "answer 42 handed in beside the notebook" in text, (
        f"expected a fair cell to run and read the submission's file, found {reply['status']}: {text[-2000:]!r}"
    )


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_cell_past_its_time_is_interrupted_and_the_kernel_lives_on(kernel):
    """nbgrader interrupts a cell past its timeout with SIGINT to the kernel's process group, which now holds the
    launcher beside bubblewrap: only the cell may stop. The cell is sent as nbgrader sends every cell
    (``stop_on_error=False``, its ``allow_errors``): ipykernel aborts the requests that reach it just after a failed
    cell only when that cell was sent with ``stop_on_error=True``, so the next cell runs."""
    msg_id = kernel.kc.execute("import time; print('started', flush=True); time.sleep(60)", stop_on_error=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # interrupt the cell once it runs (under load, the kernel may start it late)
        msg = kernel.kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            break
    kernel.km.interrupt_kernel()
    reply = kernel.kc.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:  # a late answer to a request made while it started
        reply = kernel.kc.get_shell_msg(timeout=30)
    assert reply["content"].get("ename") == "KeyboardInterrupt", (
        f"expected the cell interrupted, found {reply['content']}"
    )
    text, after = kernel.run("print('still', 40 + 2)")
    assert after["status"] == "ok" and "still 42" in text, (
        f"expected the kernel alive after and the next cell run, found {after['status']}: {text!r}"
    )


@pytest.mark.sandbox
@pytest.mark.slow
def test_run_records_come_back_within_caps_and_a_flood_of_the_pipe_stays_off_the_disk(kernel, tmp_path):
    record = {"schema": "expression-lab/run-record/1", "assignment": TINY_ID, "epochs": 3}
    code = f"""
import json, os, pathlib
out = pathlib.Path('autograde_outputs'); out.mkdir(exist_ok=True)
(out / 'model_2.run.json').write_text(json.dumps({record!r}))
(out / 'model_9.run.json').write_bytes(b' ' * ({MAX_BYTES} + 1))
# the hand-out pipe is descriptor 3 of the sandbox's shell that copies the records out: flood it with 16 MiB
# (as root, the grader's pipe cannot be opened again by the sandbox user; without root, it is the same user)
shells = [p for p in os.listdir('/proc') if p.isdigit() and open(f'/proc/{{p}}/cmdline', 'rb').read().startswith(b'/bin/sh')]
try:  # never wait for a reader: without one, there is nothing to flood
    pipe = next(os.open(f'/proc/{{p}}/fd/3', os.O_WRONLY | os.O_NONBLOCK) for p in shells if os.path.exists(f'/proc/{{p}}/fd/3'))
    os.set_blocking(pipe, True)
except PermissionError:
    print('PIPE REFUSED')
except (StopIteration, OSError) as e:
    print('NO HAND-OUT PIPE', repr(e))
else:
    for _ in range(16):
        os.write(pipe, b'x' * 2**20)
    os.write(pipe, b'\\nnot-a-record.txt eA==\\n')
    os.close(pipe)
    print('FLOODED')
"""
    text, reply = kernel.run(code)
    flooded = "FLOODED" in text
    assert reply["status"] == "ok" and (flooded or "PIPE REFUSED" in text), (
        f"expected the cell to find the hand-out pipe of the launcher (and flood it, or be refused it), found "
        f"{reply['status']}: {text[-2000:]!r}"
    )
    outboxes = sorted(kernel.sockets.glob(f"{sandbox.OUTBOX_PREFIX}*"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any((o / "model_2.run.json").exists() for o in outboxes):
        time.sleep(0.2)
    time.sleep(1.5)  # one more hand-out round
    used, names = _host_usage(kernel.sockets)
    bound = HOST_BOUND + len(json.dumps(record)) + 4096
    assert used <= bound, f"expected at most {bound:,} bytes in the grader's socket folder, found {used:,}: {names}"
    target = tmp_path / "autograde_outputs"
    left_out = sandbox.collect_run_records(kernel.sockets, target)
    kept = sorted(p.name for p in target.iterdir()) if target.exists() else []
    assert kept == ["model_2.run.json"], f"expected only the run record within the limits back, found {kept}"
    assert json.loads((target / "model_2.run.json").read_text()) == record, "expected the record unchanged"
    said = "\n".join(left_out)
    expected = ["model_9.run.json: past the run records' limits"] + (["a line over", "not a run record"] * flooded)
    for reason in expected:
        assert reason in said, f"expected the reasons to say {reason!r}, found {left_out}"


@pytest.mark.sandbox
@pytest.mark.slow
def test_the_red_team_submission_graded_beside_a_fair_classmate(tmp_path):
    """``python -m course autograde --sandbox``: the submission that filled the grader's disk and an honest
    one keep their 5 points, neither is flagged, and the fill stopped at the cap inside the sandbox."""
    sandbox_or_skip()
    root = tmp_path / "course"
    root.mkdir()
    release, source = make_tiny_course(root)
    hand_in(root, "honest", TINY_ID, fill_answers(release, source), TINY_NOTEBOOK)
    attack = fill_answers(release, source)
    cell_by_grade_id(attack, "triple").source += "\n" + FILL
    hand_in(root, "diskfill", TINY_ID, attack, TINY_NOTEBOOK)
    proc = subprocess.run(
        [sys.executable, "-m", "course", "autograde", TINY_ID, "--jobs", "1", "--sandbox"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"expected the batch to succeed, found:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    rows = {r["student"]: r for r in json.loads((root / "grading" / "autograde" / f"{TINY_ID}.json").read_text())}
    for student in ("honest", "diskfill"):
        row = rows[student]
        assert (row["status"], row["auto_score"], row["review"]) == ("graded", 5.0, ""), (
            f"expected {student} graded 5/5 with no flag, found {row}"
        )
    graded = nbformat.read(root / "grading" / "autograded" / "diskfill" / TINY_ID / TINY_NOTEBOOK, as_version=4)
    text = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.get("outputs", []))
    result = _fill_result(text)
    assert result["written_mib"] * MIB <= sandbox.SOCKET_DIR_SIZE and result["stopped_by"].startswith(STOPPED), (
        f"expected the fill to stop within {sandbox.SOCKET_DIR_SIZE / MIB:.0f} MiB while graded, found {result}"
    )


def _receive(data: bytes, outbox: Path) -> list[str]:
    """Hand ``data`` to :func:`course.sandbox.receive_run_records` through a pipe, as the sandbox's shell does."""
    read_end, write_end = os.pipe()

    def write():
        with contextlib.suppress(BrokenPipeError), os.fdopen(write_end, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        return sandbox.receive_run_records(read_end, outbox)
    finally:
        os.close(read_end)  # a writer still writing gets an error, not a hang
        writer.join()


def test_the_launcher_keeps_only_run_records_within_the_caps(tmp_path):
    """:func:`course.sandbox.receive_run_records` alone: whatever comes down the pipe, the outbox holds at most
    :data:`course.sandbox.HANDOUT_MAX_FILES` records of at most ``MAX_BYTES`` each and ``HANDOUT_MAX_BYTES`` in all,
    the newest of a name, and says what it left out."""

    def line(name: str, data: bytes) -> bytes:
        return name.encode() + b" " + base64.b64encode(data) + b"\n"

    stream = line("model_2.run.json", b'{"old": 1}') + line("model_2.run.json", b'{"new": 2}')
    stream += b"x" * (5 * MAX_BYTES) + b"\n"  # one endless line
    stream += line("../escape.run.json", b"{}") + line("notes.txt", b"{}") + b"model_3.run.json %%%\n"
    stream += b"model_4.run.json -\n"  # the sandbox side found it too large
    stream += line("model_5.run.json", b" " * (MAX_BYTES + 1))
    stream += b"".join(line(f"big{i}.run.json", b" " * MAX_BYTES) for i in range(6))
    stream += b"model_6.run.json cut sho"  # the sandbox ended mid-line
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    reasons = _receive(stream, outbox)
    records = sorted(p.name for p in outbox.iterdir() if p.name.endswith(".run.json"))
    sizes = sum(os.lstat(outbox / n).st_size for n in records)
    assert sizes <= sandbox.HANDOUT_MAX_BYTES and "big0.run.json" in records, (
        f"expected big records kept up to {sandbox.HANDOUT_MAX_BYTES:,} bytes in all, found {records}, {sizes:,} bytes"
    )
    assert (outbox / "model_2.run.json").read_bytes() == b'{"new": 2}', "expected the newest record of a name"
    for absent in ("model_3.run.json", "model_4.run.json", "model_5.run.json", "model_6.run.json", "big5.run.json"):
        assert absent not in records, f"expected {absent} left out, found {records}"
    assert not [p.name for p in outbox.iterdir() if p.name.endswith(".partial")], "expected no half-written file"
    said = "\n".join(reasons)
    for expected in (
        "a line over",
        "not a run record",
        "model_3.run.json: damaged",
        "model_4.run.json: past the run records' limits",
        "model_5.run.json: past the run records' limits",
        "big5.run.json: past 20,000,000 bytes of run records in all",
    ):
        assert expected in said, f"expected the reasons to say {expected!r}, found {reasons}"
    note = (outbox / sandbox.OUTBOX_NOTE).read_text().splitlines()
    assert note == reasons, f"expected the reasons written to {sandbox.OUTBOX_NOTE}, found {note}"

    many = tmp_path / "many"
    many.mkdir()
    reasons = _receive(b"".join(line(f"r{i:02}.run.json", b"{}") for i in range(sandbox.HANDOUT_MAX_FILES + 5)), many)
    records = sorted(p.name for p in many.iterdir() if p.name.endswith(".run.json"))
    assert len(records) == sandbox.HANDOUT_MAX_FILES, (
        f"expected {sandbox.HANDOUT_MAX_FILES} records kept of {sandbox.HANDOUT_MAX_FILES + 5}, found {len(records)}"
    )
    assert any("past the run records' limits" in r for r in reasons), f"expected the rest named, found {reasons}"


@pytest.mark.slow
@pytest.mark.sandbox
def test_handed_in_modules_import_but_never_replace_the_kernel_or_an_installed_module(tmp_path):
    """``python -m`` puts the working folder first on the module path: the kernel's launcher (``python -m
    course.sandbox``, on the grader's side, in the submission's folder) imported a handed-in ``numpy.py`` with the
    grader's rights, a handed-in ``ipykernel_launcher.py`` ran in place of the kernel before the guard, and a
    handed-in ``numpy.py`` shadowed numpy inside. A student's own ``helper.py`` must still import."""
    sandbox_or_skip()
    planted = "import builtins\nbuiltins.PLANTED = {!r}\n"
    marker = tmp_path / "ran-with-the-graders-rights"
    kernel = _Kernel(
        tmp_path,
        files={
            "ipykernel_launcher.py": planted.format("launcher") + "from ipykernel import kernelapp\n"
            "kernelapp.launch_new_instance()\n",
            # run on the grader's side, it would leave a file there (the sandbox cannot see that folder)
            "numpy.py": planted.format("numpy") + f"try:\n    open({str(marker)!r}, 'w').write('ran')\n"
            "except OSError:\n    pass\n",
            "helper.py": "ANSWER = 42\n",
        },
    )
    try:
        out, reply = kernel.run(
            "import builtins, numpy, helper\n"
            "print('PLANTED', getattr(builtins, 'PLANTED', None), 'NUMPY', numpy.__file__, 'HELPER', helper.ANSWER)"
        )
    finally:
        kernel.close()
    assert not marker.exists(), "expected no handed-in module imported by the kernel's launcher on the grader's side"
    assert reply["status"] == "ok", f"expected the cell to run, found {reply}"
    assert "PLANTED None" in out, f"expected no handed-in module run in place of the kernel's, found {out!r}"
    assert "site-packages" in out and "HELPER 42" in out, (
        f"expected the installed numpy and the student's own helper.py, found {out!r}"
    )


#: Student code: in the kernel's socket folder, plant a link named like a socket (to a file of the grader's
#: disk: an absolute link met past ``/proc/<pid>/root`` resolves on the grader's side), move a socket away and
#: back (a reconnecting nbgrader would meet what stands there), take the folder's write right back.
SWAP = """
import glob as _glob, json as _json, os as _os
_folder = sorted(_glob.glob('/tmp/expression-lab-kernel-*'))[0]
_sockets = sorted(n for n in _os.listdir(_folder) if n.startswith('kernel-'))
_done = {'sockets': _sockets}
def _try(name, action):
    try:
        action()
        _done[name] = 'done'
    except OSError as e:
        _done[name] = type(e).__name__
_at = lambda n: _os.path.join(_folder, n)
_try('link', lambda: _os.symlink('/etc/hostname', _at('kernel-99')))
_try('move', lambda: (_os.rename(_at(_sockets[0]), _at('moved')), _os.rename(_at('moved'), _at(_sockets[0]))))
_try('chmod', lambda: _os.chmod(_folder, 0o777))
import builtins as _builtins
_done['early'] = getattr(_builtins, 'EARLY', None)
print('SWAP ' + _json.dumps(_done))
"""
#: A handed-in module named like one ipykernel, jupyter_client or IPython tries to import while the kernel starts
#: (before the seal, when the submission's folder was on the module path): it plants a link among the sockets.
EARLY_MODULE = """
import builtins, glob, os
try:
    os.symlink('/etc/hostname', os.path.join(sorted(glob.glob('/tmp/expression-lab-kernel-*'))[0], 'kernel-98'))
    builtins.EARLY = 'planted'
except OSError as e:
    builtins.EARLY = type(e).__name__
raise ImportError('not the real module')
"""


@pytest.mark.sandbox
@pytest.mark.slow
def test_the_socket_folder_is_sealed_before_the_first_cell(tmp_path):
    """Grading as root, the launcher seals the kernel's socket folder (read-only for the sandbox user) once the
    kernel has made its sockets, and the kernel answers no request and imports nothing handed in before (a
    ``colorama.py`` it tried to import while starting ran before the seal): the first cell can neither fill the
    folder with links (seen through ``/proc/<sandbox pid>/root/…``, an absolute link resolves on the grader's side),
    move a socket nor unseal the folder (a socket replaced all the same: the next test)."""
    sandbox_or_skip()
    if os.geteuid() != 0:
        pytest.skip("the seal holds when grading as root (the sandbox user then does not own the folder)")
    kernel = _Kernel(tmp_path, files={"colorama.py": EARLY_MODULE, "argcomplete.py": EARLY_MODULE})
    try:
        text, reply = kernel.run(SWAP)
        fair, after = kernel.run("print('answer', 6 * 7)")
        targets = {p.name: os.stat(p) for p in kernel.sockets.iterdir() if p.is_symlink()}
    finally:
        kernel.close()
    assert reply["status"] == "ok", f"expected the cell to end normally, found {reply['status']}: {text[-2000:]}"
    found = json.loads(next(ln[5:] for ln in text.splitlines() if ln.startswith("SWAP ")))
    assert found["early"] != "planted", "expected no handed-in module run while the socket folder was writable"
    assert len(found["sockets"]) == 5, f"expected the kernel's 5 sockets in the folder, found {found['sockets']}"
    for attempt in ("link", "move", "chmod"):
        assert found[attempt] == "PermissionError", (
            f"expected the first cell's {attempt} in the socket folder refused, found {found[attempt]}"
        )
    assert after["status"] == "ok" and "answer 42" in fair, f"expected a fair cell to run after, found {fair!r}"
    assert sorted(targets) == found["sockets"] and all(stat.S_ISSOCK(t.st_mode) for t in targets.values()), (
        f"expected each of nbgrader's links to reach one of the kernel's sockets, found {targets}"
    )


def _inside(folder: Path) -> Path:
    """The kernel's own socket folder (its memory file system inside the sandbox), seen from the grader's side
    through ``/proc/<pid>/root`` of a process of the sandbox: the one whose folder there holds sockets."""
    for entry in Path("/proc").iterdir():
        inside = entry / f"root{folder.resolve()}"
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and any(stat.S_ISSOCK(p.lstat().st_mode) for p in inside.iterdir()):
                return inside
    raise AssertionError(f"expected a sandboxed process holding the kernel's sockets at {folder}, found none")


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_socket_replaced_after_the_seal_never_redirects_nbgrader(tmp_path):
    """Grading as yourself, the kernel owns its socket folder and can undo the seal; it then replaces a socket with
    a link to a socket of the grader's machine, which nbgrader would meet when it reconnects. The launcher pinned
    each socket (a descriptor, opened before any student code ran) and nbgrader connects through that descriptor:
    the link is never met. The replacement is made here from the grader's side, as such a kernel would make it."""
    import socket

    sandbox_or_skip()
    decoy_dir = Path(tempfile.mkdtemp(prefix="el-decoy-"))
    decoy = socket.socket(socket.AF_UNIX)
    decoy.bind(str(decoy_dir / "s"))
    decoy.listen()
    decoy.settimeout(2)
    kernel = _Kernel(tmp_path)
    try:
        links = sorted(p for p in kernel.sockets.iterdir() if p.is_symlink())
        assert len(links) == 5, f"expected nbgrader's 5 links to the kernel's sockets, found {links}"
        before = os.stat(links[0])
        inside = _inside(kernel.sockets)
        os.chmod(inside, 0o777)
        os.rename(inside / links[0].name, inside / "moved")
        os.symlink(decoy_dir / "s", inside / links[0].name)
        after = os.stat(links[0])
        probe = socket.socket(socket.AF_UNIX)
        with contextlib.closing(probe):
            probe.connect(str(links[0]))  # what nbgrader does when it reconnects
        try:
            decoy.accept()[0].close()
            reached = "the decoy"
        except TimeoutError:
            reached = "not the decoy"
        text, reply = kernel.run("print('answer', 6 * 7)")
    finally:
        kernel.close()
        decoy.close()
        shutil.rmtree(decoy_dir, ignore_errors=True)
    assert reached == "not the decoy", "expected nbgrader's link to reach the kernel's socket, found the decoy reached"
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino) and stat.S_ISSOCK(after.st_mode), (
        f"expected nbgrader's link to stay on the kernel's socket (inode {before.st_ino}), found inode {after.st_ino}"
    )
    assert reply["status"] == "ok" and "answer 42" in text, f"expected the kernel to answer after, found {text!r}"


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_kernels_own_output_reaches_the_graders_log_capped(tmp_path):
    """Low-level output (file descriptors 1 and 2) goes to nbgrader's log of the kernel, on the grader's disk, not
    into the notebook: a cell wrote 256 MiB there. The launcher passes on at most
    :data:`course.sandbox.KERNEL_OUTPUT_MAX_BYTES` of each."""
    sandbox_or_skip()
    log = tmp_path / "kernel-log"
    kernel = _Kernel(tmp_path, log=log)
    try:
        _, reply = kernel.run(
            "import os\nfor _ in range(32):\n    os.write(1, b'x' * 2**20)\n    os.write(2, b'y' * 2**20)\n"
        )
        out, again = kernel.run("print('still here')")
    finally:
        kernel.close()
        for f in kernel.logs:
            f.close()
    assert reply["status"] == "ok" and "still here" in out, f"expected the kernel to live on, found {reply}, {out!r}"
    cap = sandbox.KERNEL_OUTPUT_MAX_BYTES
    for suffix in (".out", ".err"):
        size = log.with_suffix(suffix).stat().st_size
        assert size <= cap + 4096, (
            f"expected at most {cap:,} bytes (and a note) of the kernel's {suffix[1:]} in the grader's log, "
            f"found {size:,} (32 MiB written)"
        )
    assert b"bytes dropped" in log.with_suffix(".out").read_bytes()[-200:], "expected a note saying output was dropped"
