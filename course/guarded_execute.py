"""nbgrader's ``Execute`` with a guard on the test machinery and a byte cap on outputs: :class:`GuardedExecute`.

nbgrader scores a test cell by its outputs (an ``error`` or any stderr: 0; an ``execute_result`` number: partial
credit; else full marks), and the tests run in the student's own kernel, after the student's cells. Code in a
submission can therefore raise its score without doing the work: an IPython input transformer that rewrites later
``assert`` lines, ``set_custom_exc`` plus a ``post_run_cell`` hook that clears ``error_in_exec``, a trace function,
patched builtins or test helpers (``np.allclose``, ``keras.models.load_model``), class-level patches of
``InteractiveShell.run_cell``, a forged ``execute_result`` number. And one cell printing a gigabyte made the
grader's own process hold it all and write it into the autograded notebook (nbgrader's ``LimitOutput`` counts
lines, not bytes).

What this executor does, on top of nbgrader's ``Execute`` (configure it in place of ``Execute`` in
``c.Autograde.autograde_preprocessors``; its settings are ``c.GuardedExecute.*``, and ``c.Execute.*`` still
applies):

1. **Static scan** (trusted, outside the kernel) of every code cell the student could have written and of the
   ``.py`` files in the submission folder (:mod:`course.static_scan`); findings are flagged for review with the
   source ``"static-scan"`` and never change a score.
2. **Guard in the kernel** (:mod:`course.kernel_guard`, sent as source before any student cell): before each
   graded test cell the machinery is put back as it was at kernel start and what had to be undone is flagged
   (the test then runs as written, and scores what the answers deserve). A statement with a fresh random nonce is
   inserted as the test cell's last statement, before a final bare expression (nbgrader's partial credit still
   works); after the cell, a missing nonce with no error (an exception was swallowed), tampering seen while the
   cell ran, or an ``execute_result`` the final expression did not produce make the executor append an ``error``
   output to the cell (nbgrader scores it 0) and flag the submission with the reason (source ``"guard"``).
3. **Hidden tests**: a cell holding hidden tests runs with ``store_history=False`` (its source stays out of
   ``In``, ``_ih`` and the history database) and the guard then drops its source from ``linecache`` and its
   outputs from IPython's output history, so that a later cell cannot print them.
4. **Output cap**: at most :attr:`GuardedExecute.max_cell_output_bytes` of outputs are kept per cell and
   :attr:`GuardedExecute.max_notebook_output_bytes` per notebook, of which at most
   :attr:`GuardedExecute.max_notebook_text_bytes` text and markup (printed text, tracebacks, results' ``text/*``
   and SVG: :func:`text_bytes`), counted as the bytes they take in the notebook file (a control character takes
   six) while the messages arrive (what is cut is never stored); a cell that was cut gets a note saying how much.
   A cell's first error and first result are always kept (shortened), and its first stderr output keeps its first
   bytes, so that no cut changes a score (:data:`MAX_KEPT_PAST_CAPS` so kept
   a notebook, then :data:`KEPT_WHEN_SPENT` bytes each); a later error or stderr output is cut like any output (a
   loop of ``sys.displayhook`` or ``showtraceback`` calls made thousands), and of later results past the caps only
   the newest is kept (the guard takes a test cell's last result for its final expression's). Each output counts
   :data:`OUTPUT_COST` besides its data, and a display's data counts once more for each earlier output of its
   ``display_id`` that nbclient writes it into. A last check measures the outputs as written and removes, flagged,
   what is over twice the caps (but for what scores), and replaces text that cannot be written. The kernel side also
   caps each cell's stdout and stderr at the source.

Flags go to :func:`course.review.add` (``grading/autograde/review/<assignment>/<student>.json`` under the course
root, nbgrader's working directory). What this cannot stop (code that finds the guard in its own interpreter and
forges its answers; a message of many parts is held in memory while it is received, which only nbgrader's memory
group, :func:`course.cgroups.join_grader`, bounds) is written down in the threat model (``docs/deployment.md``).
"""

from __future__ import annotations

import ast
import json
import secrets
from json.encoder import encode_basestring
from pathlib import Path
from queue import Empty
from time import monotonic

import nbformat
from nbclient.exceptions import CellTimeoutError
from nbclient.util import ensure_async, run_sync
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbformat.v4 import writes as write_json  # as nbformat.writes, without validating
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Integer

#: nbgrader's marker of hidden tests (``ClearHiddenTests.begin_test_delimeter``).
HIDDEN_MARKER = "BEGIN HIDDEN TESTS"
#: The ``ename`` of the error output the guard appends to a test cell it cannot trust.
GUARD_ERROR = "GradingGuardError"
MIB = 2**20
#: Bytes kept of an error output's text, of a result's plain text, and of a cell's first stderr output, when the
#: cell is over its cap (they decide the score, so they are shortened, never dropped).
KEPT_WHEN_CUT = 64 * 1024
#: Bytes a notebook may keep past its caps that way (a cell at a time, they added up with the cells: 60 cells kept
#: 5.7 MB past the 2 MiB of text); past it, each is kept in :data:`KEPT_WHEN_SPENT` bytes, still enough to score.
MAX_KEPT_PAST_CAPS = 2 * 1024 * 1024
KEPT_WHEN_SPENT = 256
#: The start of the note the kernel guard writes when it stops a cell's stream (course.kernel_guard._cap_stream).
KERNEL_CUT_NOTE = "[grader: this cell wrote more than"
OUTPUT_MESSAGES = ("stream", "display_data", "execute_result", "error", "update_display_data")
#: Bytes each new output counts besides its data: its place in the notebook file (about 100 bytes) and in
#: nbgrader's memory (200,000 empty displays took its process to 969 MB).
OUTPUT_COST = 1024
#: Messages whose ``transient.display_id`` makes nbclient write their data into every output shown with that id.
DISPLAY_ID_MESSAGES = ("display_data", "execute_result", "update_display_data")


class GuardError(RuntimeError):
    """The guard in the kernel did not answer as expected (no reply, an error, a stray value)."""


def guard_source() -> str:
    """The source of :mod:`course.kernel_guard`, read from this package's own file (never from the kernel)."""
    return (Path(__file__).resolve().parent / "kernel_guard.py").read_text()


def python_of(source: str) -> str:
    """IPython cell source turned into plain Python (magics, ``!cmd`` and ``?`` become calls), by IPython's own
    ``TransformerManager``; the source itself when that fails."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def parse_cell(python: str) -> ast.Module | None:
    """``ast`` of a cell's Python (top-level ``await`` allowed), or None for a syntax error."""
    try:
        return compile(python, "<cell>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except (SyntaxError, ValueError):
        return None


def instrument(source: str, statement: str) -> tuple[str, bool] | None:
    """``source`` with ``statement`` (one line of Python) inserted as the last statement, before a final bare
    expression if there is one; returns (new source, whether the cell ends with a bare expression), or None when
    the cell cannot be parsed (then it runs as it is). A cell with magics is instrumented in its Python form."""
    python = python_of(source)
    tree = parse_cell(python)
    if tree is None or not tree.body:
        return None
    last = tree.body[-1]
    if not isinstance(last, ast.Expr):
        return python.rstrip("\n") + "\n" + statement + "\n", False
    lines = python.splitlines(keepends=True)
    row = last.lineno - 1
    line = lines[row].encode()
    before, after = line[: last.col_offset].decode(), line[last.col_offset :].decode()
    head = "".join(lines[:row]) + (before.rstrip() + "\n" if before.strip() else "")
    return head + statement + "\n" + after + "".join(lines[row + 1 :]), True


def guard_plan(cells: list[NotebookNode]) -> dict:
    """What the guard watches for these test cells: ``chains`` (attribute chains from a name, such as
    ``["np", "allclose"]`` or ``["keras", "models", "load_model"]``, and ``[module, name]`` for ``from module import
    name``) and ``imports`` (modules the cells import)."""
    chains, imports = set(), set()
    for cell in cells:
        tree = parse_cell(python_of(cell.source))
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Import):
                imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imports.add(node.module)
                chains.update((node.module, alias.name) for alias in node.names if alias.name != "*")
            elif isinstance(node, ast.Attribute):
                names = []
                while isinstance(node, ast.Attribute):
                    names.append(node.attr)
                    node = node.value
                if isinstance(node, ast.Name) and len(names) <= 5:
                    chains.add((node.id, *reversed(names)))
    return {"chains": sorted(list(c) for c in chains), "imports": sorted(imports)}


def _written_bytes(text: str) -> int:
    """Bytes ``text`` takes in the notebook file. nbformat writes JSON with ``ensure_ascii=False``: a control
    character takes six bytes (``\\u0001``; a newline, tab and three others two), a quote or backslash two, any
    other character its UTF-8 bytes (control characters counted once each reached six times the caps on disk)."""
    encoded = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return encoded + len(encode_basestring(text)) - 2 - len(text)


def _json_bytes(value) -> int:
    """Bytes of ``value`` as indented JSON in UTF-8 (about as nbformat writes it)."""
    return len(json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8", "surrogatepass"))


def _replace_surrogates(value):
    """``value`` (outputs: lists, dicts, strings) with each lone surrogate in a string or key replaced by U+FFFD."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return NotebookNode({_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()})
    return value


def _text_bytes(text) -> int:
    if isinstance(text, list):
        return sum(_text_bytes(t) for t in text)
    if not isinstance(text, str):
        return len(json.dumps(text, default=str))
    return _written_bytes(text)


def _cut_text(text: str, size: int) -> str:
    """``text`` cut to at most ``size`` bytes as written in the notebook (:func:`_written_bytes`)."""
    cut = text[:size] if text.isascii() else text.encode("utf-8", "surrogatepass")[:size].decode("utf-8", "ignore")
    if _written_bytes(cut) <= size:
        return cut
    short, long = 0, len(cut)  # the longest prefix that fits: _written_bytes(cut[:short]) <= size < ...(cut[:long])
    while long - short > 1:
        middle = (short + long) // 2
        short, long = (middle, long) if _written_bytes(cut[:middle]) <= size else (short, middle)
    return cut[:short]


def text_bytes(msg: dict, size: int | None = None) -> int:
    """Bytes of text and markup in an iopub output message, which the formgrader renders each time the notebook
    is opened (about 7 s per MiB of printed text): a stream's text, an error's traceback, a result's or display's
    ``text/*`` and ``image/svg+xml`` values (a result shown as plain text costs what printed text costs).
    ``size``: the message's :func:`message_bytes`, when already counted."""
    content = msg.get("content") or {}
    if msg["msg_type"] in ("stream", "error"):
        return message_bytes(msg) if size is None else size
    if msg["msg_type"] in ("display_data", "execute_result", "update_display_data"):
        data = content.get("data") or {}
        return sum(_text_bytes(v) for k, v in data.items() if k.startswith("text/") or k == "image/svg+xml")
    return 0


def _shorten_error(content: dict, limit: int = KEPT_WHEN_CUT) -> int:
    """Shorten an error (an ``error`` message's or an execute reply's content, in place) to about ``limit``
    characters: its name to 256 at most, its value and each traceback line to a quarter; return the characters
    kept."""
    content["ename"] = _cut_text(str(content.get("ename", "")), min(256, limit))
    content["evalue"] = _cut_text(str(content.get("evalue", "")), limit // 4)
    lines, keep = [], len(content["ename"]) + len(content["evalue"])
    traceback = content.get("traceback")
    for line in traceback if isinstance(traceback, list) else []:
        line = _cut_text(str(line), limit // 4)
        if keep + len(line) > limit:
            break
        lines.append(line)
        keep += len(line)
    content["traceback"] = lines
    return keep


def message_bytes(msg: dict) -> int:
    """Bytes an iopub message would add to the notebook (its text and data; a comm message's data and buffers)."""
    kind, content = msg["msg_type"], msg.get("content") or {}
    if kind == "stream":
        return _text_bytes(content.get("text", ""))
    if kind == "error":
        return _text_bytes([content.get("ename", ""), content.get("evalue", "")] + list(content.get("traceback", [])))
    if kind.startswith("comm"):
        return _text_bytes(content.get("data", {})) + sum(len(b) for b in msg.get("buffers") or ())
    # a display's or result's metadata is stored beside its data (50 MB of metadata a display were kept uncounted)
    data = sum(_text_bytes(v) for v in (content.get("data") or {}).values())
    return data + _text_bytes(content.get("metadata") or {})


class GuardedExecute(Execute):
    """nbgrader's ``Execute`` that guards each graded test cell and caps output bytes (see the module's doc)."""

    max_cell_output_bytes = Integer(
        4 * MIB, help="Bytes of outputs kept for one cell; the rest is cut while it arrives, with a note."
    ).tag(config=True)
    max_notebook_output_bytes = Integer(
        20 * MIB, help="Bytes of outputs kept for one notebook; later outputs are cut while they arrive."
    ).tag(config=True)
    max_notebook_text_bytes = Integer(
        2 * MIB,
        help="Bytes of text and markup (printed text, tracebacks, results' and displays' text/* and SVG) kept for one "
        "notebook, within its outputs: the formgrader renders printed text at about 7 s per MiB each time the "
        "autograded notebook is opened. The reference notebooks' grading runs keep under 40 KB.",
    ).tag(config=True)
    max_widget_bytes = Integer(
        64 * MIB,
        help="Bytes of widget messages (comm) kept for one notebook, apart from outputs: the kit's "
        "widgets send megabytes of state (about 30 MB in the largest reference notebook).",
    ).tag(config=True)
    max_message_bytes = Integer(
        64 * MIB,
        help="Bytes of one message part the grader receives from the kernel (ZMQ_MAXMSGSIZE): a larger one never "
        "reaches the grader's memory (one output of 200 MB took the grader's process 600 MB before it was cut); "
        "ZMQ then drops that channel for good, so the notebook's grading fails and says so. The kit's widgets send "
        "a few megabytes at most in one message.",
    ).tag(config=True)
    guard_timeout = Integer(60, help="Seconds to wait for the guard in the kernel to answer.").tag(config=True)

    # ------------------------------------------------------------------------------------------ notebook level

    def create_kernel_manager(self):
        """nbclient's kernel manager, whose clients' sockets refuse a message part over :attr:`max_message_bytes`
        (``ZMQ_MAXMSGSIZE``, set on each client's own ZMQ context before its channels open)."""
        import zmq

        km = super().create_kernel_manager()
        make_client = km.client

        def capped_client(**kwargs):
            kc = make_client(**kwargs)
            kc.context.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
            return kc

        km.client = capped_client
        return km

    def preprocess(self, nb, resources=None, km=None):
        """Scan, then execute ``nb`` with the guard; record flags for review. Returns (nb, resources)."""
        info = (resources or {}).get("nbgrader", {})
        self._secret = secrets.token_hex(16)
        self._module = f"_expression_lab_guard_{secrets.token_hex(6)}"
        self._installed = self._guard_ok = False
        self._guard_seconds: dict[str, float] = {}
        self._guard_flags: list[str] = []
        self._kept = {"notebook": 0, "widgets": 0, "text": 0, "past_caps": 0}
        self._widgets_cut: dict[int, int] = {}
        self._cut: dict[int, int] = {}
        self._first_kept: set[tuple[str, int]] = set()  # (kind, cell) of the outputs kept whatever the caps
        self._last_result: dict[int, tuple[NotebookNode, int]] = {}  # cell: a later result kept past the caps, bytes
        self._latest_past_caps: int | None = None
        self._cell_text: dict[int, int] = {}  # cell: bytes of text and markup kept
        self._reply = None
        owned = self._instructor_cells(info)
        self._owner = [self._cell_owner(cell, owned) for cell in nb.cells]
        self._plan = guard_plan([c for c, o in zip(nb.cells, self._owner) if o == "test"])
        self._plan["stream_cap"] = self.max_cell_output_bytes // 2
        self._cut_in_kernel: set[int] = set()
        scan = self._static_scan(nb, resources, owned)
        try:
            nb, resources = super().preprocess(nb, resources, km)
            self._check_written(nb)
            return nb, resources
        finally:
            self._record(info, scan)

    def _check_written(self, nb) -> None:
        """The last check, on the outputs as nbformat writes them (indented JSON, text split into lines, UTF-8):
        text that cannot be written (lone surrogates, which ipykernel never sends: the notebook could not be saved
        and the grading failed) is replaced with U+FFFD; outputs over twice the caps, which only a way around the
        counting could leave, are removed, largest cell first, but for what scores a cell (its errors, stderr and
        results), and flagged."""
        try:
            written = len(write_json(nb).encode("utf-8"))
        except UnicodeEncodeError:
            for cell in nb.cells:
                cell["outputs"] = _replace_surrogates(cell.get("outputs", []))
            self._guard_flags.append("an output held text that cannot be written (lone surrogates); it was replaced")
            written = len(write_json(nb).encode("utf-8"))
        bare = nbformat.from_dict(nb)
        for cell in bare.cells:
            if "outputs" in cell:
                cell["outputs"] = []
        outputs = written - len(write_json(bare).encode("utf-8"))
        limit = 2 * (self.max_notebook_output_bytes + MAX_KEPT_PAST_CAPS)
        if outputs <= limit:
            return
        sizes = {i: _json_bytes(c.outputs) for i, c in enumerate(nb.cells) if c.get("outputs")}
        removed, note = (
            0,
            "[grader: this cell's displays and printed output were removed: its outputs were over the caps]",
        )
        for index in sorted(sizes, key=sizes.get, reverse=True):
            if outputs <= limit:
                break
            cell = nb.cells[index]
            scoring = [
                o for o in cell.outputs if o.output_type in ("error", "execute_result") or o.get("name") == "stderr"
            ]
            outputs -= sizes[index] - _json_bytes(scoring)
            cell.outputs = [*scoring, new_output("display_data", data={"text/plain": note})]
            removed += 1
        self._guard_flags.append(
            f"the outputs as written were over twice the caps ({limit:,} bytes): the displays and printed output of "
            f"{removed} cell(s) were removed"
        )

    def _instructor_cells(self, info: dict) -> dict[str, str] | None:
        """{grade_id: source} of the locked cells of the source notebook (from the gradebook), or None where there
        is no gradebook to ask (then nbgrader's metadata decides)."""
        if not info.get("db_url") or not info.get("notebook") or not info.get("assignment"):
            return None
        from nbgrader.api import Gradebook

        try:
            with Gradebook(info["db_url"]) as gb:
                notebook = gb.find_notebook(info["notebook"], info["assignment"])
                return {c.name: c.source for c in notebook.source_cells if c.locked}
        except Exception as err:  # the gradebook is nbgrader's; without it the metadata still tells the cells
            self.log.warning("grading guard: no source cells from the gradebook (%s)", err)
            return None

    @staticmethod
    def _cell_owner(cell: NotebookNode, owned: dict[str, str] | None) -> str:
        """ "test" (a graded test cell), "instructor" (a locked cell as the instructor wrote it) or "student"."""
        if cell.cell_type != "code":
            return "other"
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if owned is None:
            trusted = bool(meta.get("locked")) and grade_id is not None
        else:
            trusted = grade_id in owned and owned[grade_id] == cell.source
        if utils.is_grade(cell) and not utils.is_solution(cell):
            return "test"
        return "instructor" if trusted else "student"

    def _static_scan(self, nb, resources, owned) -> list[str]:
        from . import static_scan

        findings = []
        try:
            locked = set(owned.values()) if owned is not None else None
            findings += static_scan.scan_notebook(nb, locked)
            folder = (resources or {}).get("metadata", {}).get("path")
            if folder:
                findings += static_scan.scan_folder(Path(folder))
        except Exception as err:  # a scanner bug must not stop grading; it is flagged instead
            findings.append(f"the static scan failed ({type(err).__name__}: {err})")
        return [str(f) for f in findings]

    def _record(self, info: dict, scan: list[str]) -> None:
        self.log.info("grading guard: %s", ", ".join(f"{k} {v:.2f} s" for k, v in self._guard_seconds.items()))
        for flag in self._guard_flags:
            self.log.warning("grading guard: %s", flag)
        for finding in scan:
            self.log.warning("static scan: %s", finding)
        if not info.get("assignment") or not info.get("student"):
            return
        from . import review

        if self._guard_flags:
            review.add(info["assignment"], info["student"], "guard", self._guard_flags, root=Path.cwd())
        if scan:
            review.add(info["assignment"], info["student"], "static-scan", scan, root=Path.cwd())

    # ------------------------------------------------------------------------------------------ guard calls

    async def _async_guard_call(self, expression: str) -> dict:
        assert self.kc is not None
        msg_id = self.kc.execute(
            "",
            silent=True,
            store_history=False,
            user_expressions={"guard": expression},
            allow_stdin=False,
            stop_on_error=False,
        )
        deadline = monotonic() + self.guard_timeout
        while True:
            left = deadline - monotonic()
            if left <= 0:
                raise GuardError(f"no answer within {self.guard_timeout} s")
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        content = msg["content"]
        if content.get("status") != "ok":
            raise GuardError(f"the kernel answered {content.get('ename', content.get('status'))}")
        answer = content.get("user_expressions", {}).get("guard", {})
        if answer.get("status") != "ok":
            raise GuardError(f"{answer.get('ename', 'no answer')}: {str(answer.get('evalue', ''))[:200]}")
        try:
            report = ast.literal_eval(ast.literal_eval(answer["data"]["text/plain"]))
        except (KeyError, ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise GuardError("its answer could not be read") from None
        if not isinstance(report, dict) or report.get("secret") != self._secret:
            raise GuardError("its answer did not carry this run's secret")
        return report

    _guard_call = run_sync(_async_guard_call)

    def _call(self, function: str, *args) -> dict:
        arguments = ", ".join(repr(a) for a in args)
        start = monotonic()
        try:
            return self._guard_call(f"__import__('sys').modules[{self._module!r}].{function}({arguments})")
        finally:
            self._guard_seconds[function] = self._guard_seconds.get(function, 0.0) + monotonic() - start

    def _install(self) -> None:
        """Send the guard to the kernel, before any student cell (builtins there are still the real ones)."""
        self._installed = True
        expression = (
            f"(lambda m: (m.__dict__.update(__builtins__=dict(__import__('builtins').__dict__)), "
            f"exec(compile({guard_source()!r}, '<expression-lab grading guard>', 'exec'), m.__dict__), "
            f"__import__('sys').modules.__setitem__({self._module!r}, m), "
            f"m.install({self._secret!r}, {self._plan!r}))[-1])(__import__('types').ModuleType({self._module!r}))"
        )
        start = monotonic()
        try:
            self._guard_call(expression)
            self._guard_ok = True
            self._guard_seconds["install"] = monotonic() - start
        except GuardError as err:
            self._guard_ok = False
            self._guard_flags.append(
                f"the grading guard could not start in the kernel ({err}); every graded test "
                "cell was scored 0, as its result could not be trusted"
            )

    # ------------------------------------------------------------------------------------------ cells

    def on_cell_executed(self, **kwargs):
        """Keep the reply; shorten its error as :meth:`_admit` shortens a kept error output: nbgrader appends the
        reply's error to the cell when no error output of that name arrived (5 MB names and 10 MB tracebacks
        were appended past every cap)."""
        self._reply = kwargs.get("execute_reply")
        content = (self._reply or {}).get("content") or {}
        if content.get("status") == "error":
            _shorten_error(content, self._kept_past_caps_limit())
        return super().on_cell_executed(**kwargs)

    def preprocess_cell(self, cell, resources, index):
        """Execute one cell; a graded test cell between the guard's restore and check (module doc)."""
        self._check_assign_resources(resources)
        if not self._installed:
            self._install()
        owner = self._owner[index] if index < len(self._owner) else "student"
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
        try:
            if owner != "test":
                cell = self.execute_cell(cell, index, store_history=True)
                if owner == "instructor" and self._guard_ok:
                    self._guard_step(label, "settle")
                self._note_cut(cell, index)
                return cell, self.resources
            return self._run_test_cell(cell, index, label), self.resources
        except CellTimeoutError as err:
            if "IOPub" not in str(err):
                raise
            raise CellTimeoutError(
                f"{label}: the kernel's outputs stopped arriving (a message part over {self.max_message_bytes:,} "
                f"bytes, which the grader refuses, cuts the kernel's output channel for good): {err}"
            ) from err

    def _guard_step(self, label: str, function: str, *args) -> dict | None:
        try:
            return self._call(function, *args)
        except GuardError as err:
            self._guard_flags.append(f"{label}: the grading guard did not answer ({function}: {err})")
            return None

    def _run_test_cell(self, cell, index: int, label: str):
        problems, hidden = [], HIDDEN_MARKER in cell.source
        before = self._guard_step(label, "restore") if self._guard_ok else None
        if before is None:
            problems.append("the grading guard could not run before this test cell")
        else:
            if before["undone"]:
                self._guard_flags.append(f"before test cell {label}, undone: " + "; ".join(before["undone"]))
            if before["notes"]:
                self._guard_flags.append(f"before test cell {label}: " + "; ".join(before["notes"]))
        nonce = secrets.token_hex(12)
        statement = (
            f"__import__('sys').modules[{self._module!r}].mark({nonce!r})  "
            "# the grader's check that this test ran to its end"
        )
        instrumented = instrument(cell.source, statement) if before is not None else None
        original, self._reply = cell.source, None
        try:
            if instrumented is not None:
                cell.source = instrumented[0]
            cell = self.execute_cell(cell, index, store_history=not hidden)
        finally:
            cell.source = original
        after = self._guard_step(label, "check", nonce, hidden) if before is not None else None
        status = ((self._reply or {}).get("content") or {}).get("status")
        failed = status == "error" or any(o.output_type == "error" for o in cell.outputs)
        results = [o for o in cell.outputs if o.output_type == "execute_result"]
        if status not in (None, "ok") and not any(o.output_type == "error" for o in cell.outputs):
            # nbgrader scores a cell by its outputs: one whose reply says it failed but whose error output was lost
            # on the way (an output socket drops messages: a flood past its queue, a message over
            # max_message_bytes) would score as passed
            problems.append(f"the kernel replied '{status}' but no error output arrived")
        if after is None:
            if before is not None:
                problems.append("the grading guard did not answer after this test cell")
        else:
            if after["notes"]:
                self._guard_flags.append(f"test cell {label}: " + "; ".join(after["notes"]))
            if instrumented is not None and not after["reached"] and not failed:
                problems.append("the cell stopped before its end without an error (an exception was swallowed)")
            problems += after["in_cell"]
            # the final expression's value is displayed last, and only when the cell got there and did not fail
            ends_with_result = instrumented is not None and instrumented[1] and after["reached"] and not failed
            forged = results if not ends_with_result else results[:-1]
            if instrumented is not None and forged:
                cell.outputs = [o for o in cell.outputs if not any(o is f for f in forged)]
                problems.append(f"{len(forged)} result(s) not produced by the cell's final expression were removed")
        if problems:
            reason = "; ".join(problems)
            cell.outputs.append(
                new_output(
                    "error",
                    ename=GUARD_ERROR,
                    evalue=f"this test cell's result cannot be trusted: {reason}",
                    traceback=[
                        f"{GUARD_ERROR}: this test cell's result cannot be trusted and scores 0: {reason}. "
                        "The submission is flagged for review."
                    ],
                )
            )
            self._guard_flags.append(f"test cell {label} scored 0: {reason}")
        self._note_cut(cell, index)
        return cell

    # ------------------------------------------------------------------------------------------ output cap

    def process_message(self, msg, cell, cell_index):
        kind = msg["msg_type"]
        kept_before = (self._kept.get(cell_index, 0), self._cell_text.get(cell_index, 0))
        clear_pending = self.clear_before_next_output
        if (kind in OUTPUT_MESSAGES or kind.startswith("comm")) and not self._admit(
            msg, cell_index, self._starts_output(msg, cell)
        ):
            return None
        parent = (msg.get("parent_header") or {}).get("msg_id")
        immediate = kind == "clear_output" and not (msg.get("content") or {}).get("wait")
        output = super().process_message(msg, cell, cell_index)
        if (immediate and not self.output_hook_stack[parent]) or (clear_pending and not self.clear_before_next_output):
            # nbclient cleared the cell's outputs (a progress loop of clear_output and print): what they took is
            # given back, so that one such cell does not use up the notebook's caps for the cells after it
            self._give_back(cell_index, *kept_before)
            self._first_kept -= {(k, cell_index) for k in ("stderr", "error", "execute_result")}
            self._last_result.pop(cell_index, None)
        if kind == "execute_result" and self._latest_past_caps is not None:
            # one later result past the caps is kept, the newest: the guard takes a test cell's last result for its
            # final expression's, and a result forged before it must not stand in for it (module doc)
            previous = self._last_result.get(cell_index)
            if previous is not None:
                cell.outputs = [o for o in cell.outputs if o is not previous[0]]
                self._give_back(cell_index, previous[1], 0)
            self._last_result[cell_index] = (output, self._latest_past_caps)
        return output

    def _kept_past_caps_limit(self) -> int:
        """Characters an output kept past the caps keeps (:data:`KEPT_WHEN_CUT`, then :data:`KEPT_WHEN_SPENT` once the
        notebook has kept :data:`MAX_KEPT_PAST_CAPS` that way)."""
        return KEPT_WHEN_CUT if self._kept["past_caps"] < MAX_KEPT_PAST_CAPS else KEPT_WHEN_SPENT

    def _give_back(self, cell_index: int, kept: int, text: int) -> None:
        """Take ``kept`` bytes, ``text`` of them text and markup, off the cell's and the notebook's counts: outputs
        no longer in the cell."""
        self._kept["notebook"] -= kept
        self._kept["text"] -= text
        self._kept[cell_index] = self._kept.get(cell_index, 0) - kept
        self._cell_text[cell_index] = self._cell_text.get(cell_index, 0) - text

    def _starts_output(self, msg: dict, cell) -> bool:
        """Whether nbclient makes a new output of ``msg`` (a stream continues the cell's last output of its name)."""
        kind = msg["msg_type"]
        if kind == "stream":
            last = cell.outputs[-1] if cell.outputs and not self.clear_before_next_output else {}
            name = (msg.get("content") or {}).get("name")
            return not (last.get("output_type") == "stream" and last.get("name") == name)
        return kind in ("display_data", "execute_result", "error")

    def _copies(self, msg: dict) -> int:
        """The outputs nbclient will overwrite with this message's data: those shown earlier with its
        ``display_id`` (nbclient's ``_display_id_map``, declared as its record of them). One display shown 100
        times, then a 3 MiB display with that id, wrote 300 MB to the notebook and was counted once."""
        transient = (msg.get("content") or {}).get("transient")
        display_id = transient.get("display_id") if isinstance(transient, dict) else None
        if display_id is None or msg["msg_type"] not in DISPLAY_ID_MESSAGES:
            return 0
        if not isinstance(display_id, str):  # nbclient would fail on it: the message is shown as a plain display
            transient.pop("display_id")
            return 0
        return sum(len(outputs) for outputs in self._display_id_map.get(display_id, {}).values())

    def _admit(self, msg: dict, cell_index: int, new_output: bool = True) -> bool:
        """Count ``msg`` against the cell's and the notebook's caps; shorten it in place where it must be kept
        (a cell's first error, result and stderr output); False when it is dropped.

        A new output counts :data:`OUTPUT_COST` bytes besides its data. Data written into earlier outputs of the
        same ``display_id`` (:meth:`_copies`) counts once per such output against the notebook's caps, and stays
        counted when this cell is cleared (those outputs may be in other cells); an ``update_display_data``
        makes no output of its own, so only those copies count."""
        self._latest_past_caps = None
        content = msg.get("content")
        if msg["msg_type"] == "stream" and isinstance(content, dict) and not isinstance(content.get("text", ""), str):
            content["text"] = json.dumps(content["text"], default=str)  # a forged stream: its text as JSON
        size, copies = message_bytes(msg), self._copies(msg)
        update = msg["msg_type"] == "update_display_data"
        text_copies = copies * text_bytes(msg, size) if copies else 0
        if (copies or update) and (
            self._kept["notebook"] + copies * size > self.max_notebook_output_bytes
            or self._kept["text"] + text_copies > self.max_notebook_text_bytes
        ):
            self._cut[cell_index] = self._cut.get(cell_index, 0) + (copies + 1) * size
            return False
        cost = OUTPUT_COST if new_output and msg["msg_type"] in OUTPUT_MESSAGES else 0
        if not update and not self._admit_output(msg, cell_index, size + cost, cost):
            return False
        self._kept["notebook"] += copies * size
        self._kept["text"] += text_copies
        return True

    def _admit_output(self, msg: dict, cell_index: int, size: int, cost: int) -> bool:
        """:meth:`_admit` for one output of ``size`` bytes, ``cost`` of them its place in the notebook."""
        content = msg.get("content")
        if msg["msg_type"].startswith("comm"):  # widget state: a budget of its own, per notebook
            if self._kept["widgets"] + size <= self.max_widget_bytes:
                self._kept["widgets"] += size
                return True
            self._widgets_cut[cell_index] = self._widgets_cut.get(cell_index, 0) + size
            return False
        if msg["msg_type"] == "stream" and KERNEL_CUT_NOTE in msg["content"].get("text", ""):
            self._cut_in_kernel.add(cell_index)
        kept = self._kept.setdefault(cell_index, 0)
        room = max(0, min(self.max_cell_output_bytes - kept, self.max_notebook_output_bytes - self._kept["notebook"]))
        kind, content = msg["msg_type"], msg["content"]
        text_size = text_bytes(msg, size - cost)
        if text_size:
            room = min(room, max(0, self.max_notebook_text_bytes - self._kept["text"]))
        # what decides a cell's score is kept whatever the caps, once a cell: its first stderr output (its first
        # bytes), its first error and its first result (shortened); a second one is an output like any other
        first = (kind if kind != "stream" else content.get("name"), cell_index)
        first = first if first[0] in ("stderr", "error", "execute_result") and first not in self._first_kept else None
        if first:
            self._first_kept.add(first)
        within, limit = room, self._kept_past_caps_limit()
        if first and kind == "stream":
            room = max(room, min(size, limit))
        if size <= room:
            keep = size
        elif kind == "stream" and room > cost:
            content["text"] = _cut_text(content["text"], room - cost)
            keep = room
        elif kind == "error" and first:
            keep = _shorten_error(content, limit)
        elif kind == "execute_result":
            text = (content.get("data") or {}).get("text/plain", "")
            content["data"] = {"text/plain": _cut_text(text if isinstance(text, str) else "", limit)}
            content["metadata"] = {}
            keep = limit
            if not first:  # kept in place of the previous such result (process_message)
                self._latest_past_caps = keep
        else:
            self._cut[cell_index] = self._cut.get(cell_index, 0) + size
            return False
        self._cut[cell_index] = self._cut.get(cell_index, 0) + max(0, size - keep)
        self._kept[cell_index] = kept + keep
        self._kept["notebook"] += keep
        self._kept["text"] += min(keep, text_size)
        self._cell_text[cell_index] = self._cell_text.get(cell_index, 0) + min(keep, text_size)
        self._kept["past_caps"] += max(0, keep - within)
        return True

    def _note_cut(self, cell, index: int) -> None:
        """Say in the cell what was cut: a display output, which neither nbclient's stream merging nor nbgrader's
        ``LimitOutput`` (lines of streams) removes, and which nbgrader never scores."""
        cut, in_kernel = self._cut.pop(index, 0), index in self._cut_in_kernel
        widgets = self._widgets_cut.pop(index, 0)
        if not cut and not in_kernel and not widgets:
            return
        what = []
        if widgets:
            what.append(
                f"{widgets:,} bytes of widget messages were not kept (a notebook keeps at most "
                f"{self.max_widget_bytes:,})"
            )
        if in_kernel:
            what.append(
                f"the kernel kept only the first {self.max_cell_output_bytes // 2:,} characters of this "
                "cell's stdout and stderr each"
            )
        if cut:
            what.append(
                f"{cut:,} bytes of its output were cut on arrival (a cell keeps at most "
                f"{self.max_cell_output_bytes:,} bytes, a notebook {self.max_notebook_output_bytes:,}, of which "
                f"{self.max_notebook_text_bytes:,} of text)"
            )
        cell.outputs.append(new_output("display_data", data={"text/plain": f"[grader: {'; '.join(what)}]"}))
