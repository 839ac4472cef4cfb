"""Feedback without the hidden tests: not their source, and no text of the grading run that could carry them.

nbgrader's ``ClearHiddenTests`` removes the ``### BEGIN HIDDEN TESTS`` … ``### END HIDDEN TESTS`` lines from the
feedback, but keeps every output of the grading run. Those outputs come from the student's own kernel, after the
hidden tests ran in it: a submission can keep what it sees (an IPython ``pre_run_cell`` hook storing each cell's
source, ``In``/``_ih``/the history, a thread, ``linecache``; or, with no tampering any guard could see, the graded
function itself, which reads its caller's source with ``traceback.extract_stack`` and ``linecache`` while a hidden
test calls it) and print it from any later cell — a *public test cell* that calls the function again included —
in any encoding (a Caesar shift of one code point is enough to pass a list of known encodings), or change an
earlier cell's output afterwards (``update_display`` with a ``display_id``). Whatever the grading run printed after
the first hidden test is therefore the student's to choose: no position in the notebook is safe from it, and no
content check can clear it (a new encoding always beats a list of decodings).

:class:`ClearHiddenTestOutputs` (``c.GenerateFeedback.preprocessors`` in ``nbgrader_config.py``) builds feedback
by one rule a student can check in their own feedback: **no text the grading run produced reaches feedback**, only
lines the kit wrote and names from a fixed list.

- **Every code cell shows the outputs of the notebook as the student handed it in**
  (``grading/submitted/<student>/<assignment>/<notebook>.ipynb``, matched by ``grade_id`` or text): that run
  never held a hidden test. These outputs are not checked for hidden material: that run never held any, and a
  check could only hide a student's own output. A cell holding hidden tests shows :data:`NOTE` instead.
- **The grader's run is summed up in one kit-written line** where it went wrong: a test cell that failed says so
  (:data:`TEST_FAILED`), naming the error's class when it is a Python exception name (:data:`KNOWN_ERRORS`) or
  the grading guard's (any other name reads "an error"), and tells the student that running the cell in their
  own notebook shows why (its public checks print the reason there); a test cell that wrote to stderr (nbgrader
  scores that 0) says that (:data:`TEST_STDERR`); a cell with hidden tests that failed says so under its note
  (:data:`HIDDEN_FAILED`); an answer cell whose run stopped with an error names its class (:data:`ANSWER_FAILED`).
  Never shown from the grading run: printed text, the error's message (``evalue``: an ``assert`` message can
  format a value the student's code returned), its traceback, a result's value (``execute_result``), displays,
  the run's timestamps. Each graded cell's score comes from the gradebook (nbgrader's ``GetGrades``) and
  nbgrader's template shows it, rounded to two decimals. What a submission can still signal through feedback is
  these: which cells failed, with which of about seventy error names, and the scores.
- **Execution counts are renumbered** 1, 2, … (a kernel can set its own to any integer).

A test cell is one whose ``grade_id`` and text are, verbatim, those of a test cell in the gradebook (nbgrader
restores locked cells from there) or the source notebook; it decides only which kit-written line a cell gets, since
no cell shows the grading run. The note at the top of the feedback (:data:`GUIDE`) says this in two sentences. The
review banner trusted grading code puts at the top of a flagged autograded notebook (``course.review.BANNER_KEY``)
is for the instructor and is dropped. Finally the whole notebook goes through :mod:`course.html_safety`'s
sanitiser (:func:`~course.html_safety.sanitize_notebook`, as in ``SanitizeNotebook``): the feedback page never runs
a student's script, whatever the configuration says. The autograded notebooks in ``grading/autograded/`` keep
every output for the instructor.

:class:`HiddenMaterial` (with :func:`decoded_forms`) is a check for a hidden test's text in an output, in the
common encodings; feedback no longer depends on it (see above). Whoever runs it on text a student controls gets a
bounded cost: decoding the encoded runs of one output produces at most :data:`OUTPUT_DECODE_CHARS` characters from
at most :data:`OUTPUT_DECODE_RUNS` runs (every zlib inflation is capped as it runs), one :class:`HiddenMaterial`
at most :data:`NOTEBOOK_DECODE_CHARS` over all the outputs it checks, and text past the budget counts as not
cleared (:meth:`HiddenMaterial.found_in` answers :data:`OVER_BUDGET`).
"""

from __future__ import annotations

import ast
import base64
import binascii
import builtins
import codecs
import copy
import difflib
import io
import keyword
import os
import re
import stat
import textwrap
import tokenize
import unicodedata
import urllib.parse
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_markdown_cell, new_output
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Int

from . import html_safety
from .guarded_execute import GUARD_ERROR
from .review import BANNER_KEY

NOTE = (
    "The output of a cell with hidden tests is not shown in feedback (it could repeat the tests); "
    "its score is shown above.\n"
)
TOO_LONG_NOTE = "[This cell's output is too long to show in feedback.]\n"
#: In place of a cell's outputs once the notebook's handed-in text outputs have filled what feedback shows.
TEXT_BUDGET_NOTE = "[This cell's output is not shown: the notebook's outputs above fill what feedback shows.]\n"
#: The line under a test cell whose grading run failed (``{error}``: "AssertionError", "an error", …; ``{shown}``:
#: :data:`HANDED_IN_SHOWN` when the cell shows outputs handed in, else nothing). Kit-written: nothing of the run.
TEST_FAILED = (
    "[When the grader ran this test cell it failed with {error}. What that run printed is not shown in feedback "
    "(once hidden tests have run, code can make any output repeat them): run this cell in your own notebook, "
    "its checks say why.{shown}]\n"
)
#: The line under a cell with hidden tests whose grading run failed (``{error}`` as in :data:`TEST_FAILED`).
HIDDEN_FAILED = (
    "[When the grader ran this cell it failed with {error}. Run its public checks in your own notebook: "
    "if they pass, a hidden test failed.]\n"
)
#: The line under a test cell that wrote to stderr when the grader ran it (nbgrader scores that 0).
TEST_STDERR = (
    "[When the grader ran this test cell it wrote to stderr, which scores 0. What it wrote is not shown in "
    "feedback: run this cell in your own notebook to see it.{shown}]\n"
)
#: The line under an answer cell whose grading run stopped with an error (``{error}`` as in :data:`TEST_FAILED`).
ANSWER_FAILED = (
    "[When the grader ran this cell it stopped with {error}; the outputs above are from the notebook you handed in.]\n"
)
HANDED_IN_SHOWN = " The outputs above are from the notebook you handed in."
#: The first cell of every feedback notebook (markdown).
GUIDE = (
    "**About this feedback.** Every cell shows the outputs of the notebook as you handed it in, never the "
    "grader's run: once hidden tests have run, code can make any output repeat them. Each test cell shows its "
    "score, and one that failed when the grader ran it names the error: run it in your own notebook to see why."
)
#: Error classes the grader's run of a cell may be named by in feedback (nothing else the kernel wrote): Python's
#: exceptions, nbclient's, and the error the grading guard appends to a test cell it cannot trust.
KNOWN_ERRORS = frozenset(
    n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
) | {"CellTimeoutError", "DeadKernelError", "CellExecutionError", GUARD_ERROR}

#: Characters that decoding the encoded runs of one output (base64, zlib inside base64, hex, character codes) may
#: produce in all, and the runs it may decode (:class:`DecodeBudget`).
OUTPUT_DECODE_CHARS = 8_000_000
OUTPUT_DECODE_RUNS = 4_096
#: The same over all the outputs one :class:`HiddenMaterial` checks (one notebook's feedback).
NOTEBOOK_DECODE_CHARS = 32_000_000
NOTEBOOK_DECODE_RUNS = 65_536
#: :meth:`HiddenMaterial.found_in`'s answer for text whose encoded runs do not fit the budget (not cleared).
OVER_BUDGET = "more encoded text than the check decodes"

_SPACE_AND_QUOTES = re.compile(r"[\s\\'\"`]+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{5,}")
_FIELD = re.compile(r"\{[^{}]*\}")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}){8,}")
_CODES = re.compile(r"(?:\d{2,7}\s*[,;]\s*){7,}\d{2,7}")
_ROT13 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm"
)
_IGNORED_NAMES = frozenset(keyword.kwlist) | frozenset(dir(builtins))


def squash(text: str) -> str:
    """``text`` for matching: Unicode-normalised (NFKC), case-folded, without invisible characters, spaces,
    backslashes and quotes (so that ``repr`` or re-indented copies of a line still match)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Co", "Cn"))
    return _SPACE_AND_QUOTES.sub("", text)


def alnum(text: str) -> str:
    """Only the letters a-z and digits of :func:`squash`'s form (so that separators put between the characters
    of a line do not hide it)."""
    return _NOT_ALNUM.sub("", squash(text))


def hidden_regions(source: str, begin: str = "BEGIN HIDDEN TESTS", end: str = "END HIDDEN TESTS") -> list[str]:
    """The text of every hidden-test region of a cell's ``source`` (the lines between the delimiter lines)."""
    regions, current = [], None
    for line in source.split("\n"):
        if begin in line:
            current = []
        elif end in line:
            if current is not None:
                regions.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:  # unterminated: everything after the delimiter
        regions.append("\n".join(current))
    return regions


def without_hidden_regions(source: str, begin: str = "BEGIN HIDDEN TESTS", end: str = "END HIDDEN TESTS") -> str:
    """``source`` without its hidden-test regions (delimiter lines included)."""
    kept, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def string_fragments(code: str) -> list[str]:
    """The constant text of every string literal in ``code`` (an f-string gives the parts between its fields).
    Code that does not tokenize falls back to a quote-matching regex."""
    fragments = []
    try:
        tokens = [
            t.string
            for t in tokenize.generate_tokens(io.StringIO(textwrap.dedent(code)).readline)
            if t.type == tokenize.STRING
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        tokens = [m.group(0) for m in re.finditer(r"('[^'\n]*'|\"[^\"\n]*\")", code)]
    for token in tokens:
        prefix = re.match(r"[A-Za-z]*", token).group(0).lower()
        body = token[len(prefix) :]
        quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
        inner = body[len(quote) : len(body) - len(quote)]
        if "f" in prefix:
            fragments += _FIELD.split(inner)
        else:
            try:
                fragments.append(str(ast.literal_eval(token)))
            except (ValueError, SyntaxError):
                fragments.append(inner)
    return [f for f in fragments if f.strip()]


class DecodeBudget:
    """What decoding may still produce: ``chars`` characters from ``runs`` encoded runs.

    ``exhausted`` turns true as soon as a run is left undecoded, or a decoded run is cut, for want of budget: the
    forms are then incomplete, and a check must not clear the text they came from.
    """

    def __init__(self, chars: int = OUTPUT_DECODE_CHARS, runs: int = OUTPUT_DECODE_RUNS):
        self.chars, self.runs, self.exhausted = max(0, chars), max(0, runs), False

    def take_run(self) -> bool:
        """Count one more run to decode; False (and exhausted) when no run or character is left."""
        if self.runs <= 0 or self.chars <= 0:
            self.exhausted = True
            return False
        self.runs -= 1
        return True

    def spend(self, text: str) -> str:
        """``text`` as far as the characters left go (the rest cut: exhausted), counted."""
        if len(text) > self.chars:
            self.exhausted = True
            text = text[: self.chars]
        self.chars -= len(text)
        return text

    def inflate(self, raw: bytes, limit: int) -> str | None:
        """``raw`` inflated (zlib or gzip), at most ``limit`` and the characters left, counted; None when ``raw``
        is no such stream. Inflation stops at that size: a small run may inflate to gigabytes."""
        if self.chars <= 0:
            self.exhausted = True
            return None
        cap = min(limit, self.chars)  # > 0: a max_length of 0 would mean no limit
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
        try:
            inflated = inflater.decompress(raw, cap)
        except zlib.error:
            return None
        if cap == self.chars and len(inflated) == cap and not inflater.eof:
            self.exhausted = True  # cut by the budget, not by ``limit``
        return self.spend(inflated.decode("utf-8", "ignore"))


def decoded_forms(text: str, limit: int = 2_000_000, budget: DecodeBudget | None = None) -> list[str]:
    """``text`` and the forms it could carry something else in: HTML text (tags dropped, entities decoded),
    URL-unquoted, reversed, rot13, Python escapes decoded, and every base64 run (also zlib-compressed), hex run
    and list of character codes decoded. Each form is cut to ``limit`` characters.

    The forms of ``text`` as a whole are at most a few times its length; what the encoded runs decode to is drawn
    from ``budget`` (a fresh :class:`DecodeBudget` of :data:`OUTPUT_DECODE_CHARS` characters and
    :data:`OUTPUT_DECODE_RUNS` runs when None): past it, runs are left undecoded and ``budget.exhausted`` says so.
    """
    budget = DecodeBudget() if budget is None else budget
    forms = [
        text,
        html_safety.visible_text(text) if "<" in text or "&" in text else "",
        urllib.parse.unquote(text) if "%" in text else "",
        text[::-1],
        text.translate(_ROT13),
    ]
    if "\\" in text:
        try:
            forms.append(codecs.decode(text.encode("latin-1", "backslashreplace"), "unicode_escape"))
        except (UnicodeDecodeError, ValueError):
            pass
    compact = "".join(text.split())

    def runs(pattern: re.Pattern, within: str):
        for match in pattern.finditer(within):
            if not budget.take_run():
                return
            yield match.group(0)

    for run in runs(_BASE64_RUN, compact):
        decoded = set()
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(run + "=" * (-len(run) % 4))
            except (binascii.Error, ValueError):
                continue
            if raw in decoded:  # most runs read the same both ways
                continue
            decoded.add(raw)
            forms.append(budget.spend(raw.decode("utf-8", "ignore")))
            forms.append(budget.inflate(raw, limit) or "")
    for run in runs(_HEX_RUN, compact):
        forms.append(budget.spend(bytes.fromhex(run).decode("utf-8", "ignore")))
    for run in runs(_CODES, text):
        codes = [int(c) for c in re.findall(r"\d+", run)]
        forms.append(budget.spend("".join(chr(c) for c in codes if 0 < c < 0x110000)))
    return [f[:limit] for f in forms if f]


def output_strings(output: Any) -> list[str]:
    """Every string inside an output (data of every type, metadata, names, tracebacks), in order."""
    if isinstance(output, str):
        return [output]
    if isinstance(output, Mapping):
        return [s for key, value in output.items() for s in [str(key), *output_strings(value)]]
    if isinstance(output, (list, tuple)):
        return [s for value in output for s in output_strings(value)]
    return []


def defined_names(code: str) -> set[str]:
    """The names ``code`` defines: assigned (also in ``for``/``with``/``except``/``import … as``/walrus), functions,
    classes, parameters. Code that does not parse (a region cut out of a cell) falls back to a regex for
    assignments, ``def``/``class``, ``for`` and ``as``."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        pattern = (
            r"^\s*([A-Za-z_]\w*)\s*(?::[^=\n]*)?=(?!=)|\b(?:def|class)\s+([A-Za-z_]\w*)"
            r"|\bfor\s+([A-Za-z_]\w*)|\bas\s+([A-Za-z_]\w*)"
        )
        return {name for match in re.finditer(pattern, code, re.MULTILINE) for name in match.groups() if name}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias) and node.asname:
            names.add(node.asname)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


class HiddenMaterial:
    """What of an assignment's hidden tests an output must not carry, and the check for it.

    Built from the hidden regions (``str`` each) and the text students see or may write (everything of the source
    notebook outside the hidden regions): a *line* of a hidden region counts when its :func:`squash` form has at
    least ``min_line_chars`` characters and is not part of the visible text's; a *string* of a hidden test likewise
    (its constant text, at least 16 characters: shorter ones are words such as "PrivateTest"); a *name* when a
    hidden test defines it (a variable, function, parameter; 6+ characters, not a Python keyword or builtin) and it
    does not occur in the visible text. Library names a hidden test only calls do not count: an honest traceback
    may show them.

    Decoding is budgeted (module docstring): each :meth:`found_in` call decodes at most :data:`OUTPUT_DECODE_CHARS`
    characters from :data:`OUTPUT_DECODE_RUNS` runs, all calls together ``decode_chars`` from ``decode_runs``
    (:attr:`budget`); text that does not fit is not cleared.
    """

    def __init__(
        self,
        regions: Iterable[str],
        visible: str,
        min_line_chars: int = 12,
        decode_chars: int = NOTEBOOK_DECODE_CHARS,
        decode_runs: int = NOTEBOOK_DECODE_RUNS,
    ):
        #: what decoding may still produce over every later :meth:`found_in` call
        self.budget = DecodeBudget(decode_chars, decode_runs)
        visible_squashed, visible_alnum = squash(visible), alnum(visible)
        visible_names = {n.casefold() for n in _IDENTIFIER.findall(visible)}
        self.lines: set[str] = set()  #: squash forms
        self.alnum_lines: set[str] = set()  #: alnum forms (16+ characters)
        self.names: set[str] = set()  #: secret names, case-folded
        for region in regions:
            pieces = [(line, min_line_chars) for line in region.split("\n")]
            pieces += [(fragment, max(16, min_line_chars)) for fragment in string_fragments(region)]
            for piece, shortest in pieces:
                s, a = squash(piece), alnum(piece)
                if len(s) >= shortest and s not in visible_squashed:
                    self.lines.add(s)
                if len(a) >= max(16, shortest) and a not in visible_alnum:
                    self.alnum_lines.add(a)
            for name in defined_names(region):
                folded = name.casefold()
                if (
                    _IDENTIFIER.fullmatch(name)
                    and folded not in visible_names
                    and name not in _IGNORED_NAMES
                    and not name.startswith("__")
                ):
                    self.names.add(folded)
        #: a secret name as a whole word, or (10+ letters and digits) anywhere in the alnum form
        alternatives = "|".join(map(re.escape, sorted(self.names, key=len, reverse=True)))
        self._names_as_words = re.compile(rf"(?<![a-z0-9_])({alternatives})(?![a-z0-9_])") if self.names else None
        self._long_names = {a for n in self.names if len(a := alnum(n)) >= 10}

    def __bool__(self) -> bool:
        return bool(self.lines or self.alnum_lines or self.names)

    def found_in(self, texts: Iterable[str]) -> str | None:
        """Why ``texts`` (strings, read together in order) carry hidden material (a short phrase naming the kind,
        never the material; :data:`OVER_BUDGET` when their encoded runs do not fit the decoding budget), or None
        when they do not."""
        joined = "\n".join(texts)
        if not joined or not self:
            return None
        budget = DecodeBudget(min(OUTPUT_DECODE_CHARS, self.budget.chars), min(OUTPUT_DECODE_RUNS, self.budget.runs))
        chars, runs = budget.chars, budget.runs
        forms = decoded_forms(joined, budget=budget)
        self.budget.chars -= chars - budget.chars
        self.budget.runs -= runs - budget.runs
        if budget.exhausted:
            return OVER_BUDGET
        for form in forms:
            s = squash(form)
            a = _NOT_ALNUM.sub("", s)
            if any(line in s for line in self.lines) or any(line in a for line in self.alnum_lines):
                return "a line of a hidden test"
            words = unicodedata.normalize("NFKC", form).casefold()
            if (self._names_as_words and self._names_as_words.search(words)) or any(n in a for n in self._long_names):
                return "a name only a hidden test uses"
        return None


def _read_notebook_no_links(path: Path, max_bytes: int) -> nbformat.NotebookNode | None:
    """The notebook at ``path`` when it is a regular file (not a link) of at most ``max_bytes``; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        try:
            return nbformat.reads(f.read().decode("utf-8"), as_version=4)
        except Exception:  # noqa: BLE001 (a damaged or hostile file: no outputs from it)
            return None


def _cell_key(cell: Mapping[str, Any]) -> tuple:
    gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    if gid:
        return ("grade_id", gid)
    return ("text", cell.get("cell_type"), squash(html_safety.joined(cell.get("source", ""))))


def match_cells(cells: list, others: list) -> dict[int, int]:
    """``{index in cells: index in others}`` for cells that are the same cell of one notebook in two versions
    (same ``grade_id``, or same type and text), in order."""
    matcher = difflib.SequenceMatcher(
        None, [_cell_key(c) for c in cells], [_cell_key(c) for c in others], autojunk=False
    )
    return {block.a + k: block.b + k for block in matcher.get_matching_blocks() for k in range(block.size)}


class ClearHiddenTestOutputs(ClearHiddenTests):
    """Feedback by the rule of the module docstring: ``ClearHiddenTests`` (hidden regions removed from the cells'
    text), every code cell's outputs taken from the notebook handed in (none of the grading run's), one kit-written
    line where the grading run of a cell failed, execution counts renumbered, the review banner dropped, a guide
    cell on top, and the whole notebook sanitised for the browser (:class:`course.html_safety.SanitizeNotebook`).

    Use it in place of ``ClearHiddenTests`` in ``c.GenerateFeedback.preprocessors`` (``nbgrader_config.py``).
    Needs nbgrader's ``resources["nbgrader"]`` (assignment, student, notebook, db_url) and its ``CourseDirectory``
    configuration to find the gradebook, the source and the handed-in notebooks; without them the test cells are
    read from the notebook's own locked cells, and cells show no output (only the kit's lines).
    """

    handed_in_max_bytes = Int(200_000_000, help="Largest handed-in notebook whose outputs feedback shows (bytes)").tag(
        config=True
    )
    cell_output_max_chars = Int(
        2_000_000,
        help="Longest handed-in outputs of one cell that feedback shows (characters, "
        "after base64 images); longer ones are replaced by a note",
    ).tag(config=True)
    notebook_text_max_chars = Int(
        4_000_000,
        help="Characters of handed-in text outputs (streams, errors, text/* data) feedback shows for one notebook; "
        "the cells past it show a note. Rendering text costs about 10 s per million characters on the grader's "
        "side; images and figures are not counted",
    ).tag(config=True)

    def _remove_hidden_test_region(self, cell) -> bool:
        removed = super()._remove_hidden_test_region(cell)
        if removed and cell.cell_type == "code":
            cell.outputs = [new_output("stream", name="stdout", text=NOTE)]
            self._hidden_cells.add(id(cell))
        return removed

    def _instructor_notebooks(self, resources) -> tuple[nbformat.NotebookNode | None, set[str]]:
        paths = html_safety.assignment_notebooks(self.config, resources)
        source = None
        if paths:
            try:
                source = nbformat.read(str(paths[0]), as_version=4)
            except (OSError, ValueError):
                source = None
        return source, html_safety.trusted_text_cells(paths)

    @staticmethod
    def _gradebook_tests(resources) -> dict[str, str]:
        """``{grade_id: text}`` of the notebook's locked code grade cells (test cells) as the gradebook holds them
        (nbgrader restores locked cells from there while autograding); ``{}`` without a gradebook."""
        info = resources.get("nbgrader") or {}
        if not all(info.get(k) for k in ("db_url", "assignment", "notebook")):
            return {}
        from nbgrader.api import Gradebook, MissingEntry

        try:
            with Gradebook(info["db_url"]) as gb:
                notebook = gb.find_notebook(info["notebook"], info["assignment"])
                graded = {cell.name for cell in notebook.grade_cells if cell.cell_type == "code"}
                return {
                    cell.name: cell.source
                    for cell in notebook.source_cells
                    if cell.name in graded and cell.locked and cell.cell_type == "code"
                }
        except MissingEntry:
            return {}

    def _handed_in(self, resources) -> nbformat.NotebookNode | None:
        info = resources.get("nbgrader") or {}
        if not all(info.get(k) for k in ("assignment", "student", "notebook")):
            return None
        from nbgrader.coursedir import CourseDirectory

        coursedir = CourseDirectory(config=self.config)
        folder = Path(coursedir.format_path(coursedir.submitted_directory, info["student"], info["assignment"]))
        return _read_notebook_no_links(folder / f"{info['notebook']}.ipynb", self.handed_in_max_bytes)

    def preprocess(self, nb, resources):
        self._hidden_cells: set[int] = set()
        nb.cells = [c for c in nb.cells if BANNER_KEY not in c.get("metadata", {})]
        source_nb, trusted_text = self._instructor_notebooks(resources)

        # The test cells, from the instructor's source notebook and the gradebook (the autograded notebook's own
        # locked cells only where neither is there). They only choose the kit's line: no cell shows the grading run.
        def meta(cell) -> Mapping[str, Any]:
            return cell.get("metadata", {}).get("nbgrader", {})

        gradebook = self._gradebook_tests(resources)
        reference = source_nb.cells if source_nb is not None else [c for c in nb.cells if meta(c).get("locked")]
        tests = {(gid, text) for gid, text in gradebook.items()}
        tests |= {
            (meta(c).get("grade_id"), html_safety.joined(c.source))
            for c in reference
            if c.cell_type == "code" and meta(c).get("grade") and not meta(c).get("solution")
        }
        is_test = [
            c.cell_type == "code" and (meta(c).get("grade_id"), html_safety.joined(c.source)) in tests for c in nb.cells
        ]
        # What the grading run of each cell ended in, read before anything is replaced: (error class or None, wrote
        # to stderr). Only these two facts of the run reach feedback, through the kit's lines.
        runs = [_run_summary(c) if c.cell_type == "code" else (None, False) for c in nb.cells]

        handed_in = self._handed_in(resources)
        handed_cells = handed_in.cells if handed_in is not None else []
        matches = match_cells(nb.cells, handed_cells)

        nb, resources = super().preprocess(nb, resources)

        count, text_left = 0, self.notebook_text_max_chars
        for n, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if cell.get("execution_count") is not None:
                count += 1
                cell.execution_count = count
            cell.get("metadata", {}).pop("execution", None)  # the run's timestamps: the student's to stretch
            error, stderr = runs[n]
            if id(cell) in self._hidden_cells:
                outputs = list(cell.outputs)  # NOTE
                if error is not None or stderr:
                    outputs.append(
                        _note(HIDDEN_FAILED.format(error=_named(error) if error is not None else "output to stderr"))
                    )
                cell.outputs = outputs
                continue
            outputs = self._handed_in_outputs(handed_cells[matches[n]] if n in matches else None)
            if sum(len(s) for o in outputs for s in output_strings(o)) > self.cell_output_max_chars:
                outputs = [_note(TOO_LONG_NOTE)]
            text = sum(map(_text_chars, outputs))
            if text > text_left:
                outputs, text = [_note(TEXT_BUDGET_NOTE)], 0
            text_left -= text
            shown = HANDED_IN_SHOWN if outputs else ""
            if is_test[n] and error is not None:
                outputs.append(_note(TEST_FAILED.format(error=_named(error), shown=shown)))
            elif is_test[n] and stderr:
                outputs.append(_note(TEST_STDERR.format(shown=shown)))
            elif not is_test[n] and error is not None:
                outputs.append(_note(ANSWER_FAILED.format(error=_named(error))))
            cell.outputs = outputs

        html_safety.sanitize_notebook(nb, trusted_text)
        nb.cells.insert(0, new_markdown_cell(GUIDE))
        return nb, resources

    @staticmethod
    def _handed_in_outputs(handed_cell) -> list:
        """The outputs of a cell as handed in (none for a cell that is not a code cell there)."""
        if handed_cell is None or handed_cell.get("cell_type") != "code":
            return []
        return copy.deepcopy(list(handed_cell.get("outputs", [])))


def _run_summary(cell) -> tuple[str | None, bool]:
    """(the ``ename`` of the first error output or None, whether any output went to stderr) of a cell's run."""
    outputs = cell.get("outputs", [])
    errors = [o for o in outputs if o.get("output_type") == "error"]
    stderr = any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outputs)
    return (str(errors[0].get("ename", "")) if errors else None), stderr


def _text_chars(output: Any) -> int:
    """Characters of text an output shows (a stream, an error's traceback, ``text/*`` data): what the feedback page
    renders as text, at a cost per character; images and figures are passed on as they are."""
    if not isinstance(output, Mapping):
        return 0
    data = output.get("data")
    shown = [output.get("text"), output.get("traceback")]
    shown += [v for k, v in data.items() if str(k).startswith("text/")] if isinstance(data, Mapping) else []
    return sum(len(s) for value in shown for s in output_strings(value))


def _named(ename: str) -> str:
    """``ename`` when it is in :data:`KNOWN_ERRORS`, else "an error": nothing else the kernel wrote."""
    return ename if ename in KNOWN_ERRORS else "an error"


def _note(text: str):
    return new_output("stream", name="stdout", text=text)
