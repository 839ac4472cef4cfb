"""Feedback without the hidden tests: not their source, not their output, not through any other cell.

nbgrader's ``ClearHiddenTests`` removes the ``### BEGIN HIDDEN TESTS`` … ``### END HIDDEN TESTS`` lines from the
feedback, but keeps every output of the grading run. Those outputs come from the student's own kernel, after the
hidden tests ran in it: a submission can keep what it sees (an IPython ``pre_run_cell`` hook storing each cell's
source, ``In``/``_ih``/the history, a thread, ``linecache``) and print it in any later cell, or change an earlier
cell's output afterwards (``update_display`` with a ``display_id``). Whatever the grading run printed after the
first hidden test is therefore the student's to choose, and no position in the notebook is safe from it.

:class:`ClearHiddenTestOutputs` (``c.GenerateFeedback.preprocessors`` in ``nbgrader_config.py``) builds feedback
by one rule a student can check in their own feedback:

- **Test cells show the grader's run**, because their messages are what a student needs (why a check failed):
  a cell holding hidden tests shows only its score and :data:`NOTE`; a public test cell shows its output
  unless that output repeats any part of a hidden test (:class:`HiddenMaterial`: each line of each hidden region
  of the assignment's source notebook, the strings the hidden tests hold, the names only they use; looked for
  with spacing, case and quoting ignored, also in HTML text and in base64, hex, URL-quoted, reversed and rot13
  forms), in which case it shows :data:`REPEAT_NOTE`. A test cell is one whose ``grade_id`` and text are, verbatim,
  those of a test cell in the gradebook (nbgrader restores locked cells from there) or the source notebook, not
  one whose metadata says so.
- **Every other cell shows the outputs of the notebook as the student handed it in**
  (``grading/submitted/<student>/<assignment>/<notebook>.ipynb``, matched by ``grade_id`` or text): that run
  never held a hidden test. When the grader's run of such a cell ended in an error, one line names the error
  class (only a Python exception name, nothing the kernel wrote: it could carry the tests). These outputs are
  not checked for hidden material: that run never held any, and a check could only hide a student's own output.

A content check alone could not be trusted, since an output can carry the tests in a form no check knows
(encrypted, say); outputs of a student's cells therefore never come from the grading run, and the check guards
only the test cells, whose output a submission can reach only by tampering with IPython while it is graded (hooks,
threads, patched ``print``), which grading itself is there to undo or flag. A note at the top of the feedback
(:data:`GUIDE`) says this in two sentences. The review
banner trusted grading code puts at the top of a flagged autograded notebook (``course.review.BANNER_KEY``) is
for the instructor and is dropped. Finally the whole notebook goes through :mod:`course.html_safety`'s sanitiser
(:func:`~course.html_safety.sanitize_notebook`, as in ``SanitizeNotebook``): the feedback page never runs a
student's script, whatever the configuration says.
The autograded notebooks in ``grading/autograded/`` keep every output for the instructor.
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
from .review import BANNER_KEY

NOTE = (
    "The output of a cell with hidden tests is not shown in feedback (it could repeat the tests); "
    "its score is shown above.\n"
)
REPEAT_NOTE = (
    "The output of this test cell is not shown in feedback: it repeats part of a hidden test. "
    "Its score is shown above.\n"
)
TOO_LONG_NOTE = "[This cell's output is too long to show in feedback.]\n"
#: The first cell of every feedback notebook (markdown).
GUIDE = (
    "**About this feedback.** Each test cell shows its score and what it printed when the grader ran your "
    "notebook, except tests hidden from you and any output that repeats them. Your own cells show the outputs "
    "of the notebook as you handed it in, not the grader's run: once hidden tests have run, code can print "
    "them."
)
#: Error classes the grader's run of a student cell may be named by in feedback (nothing else the kernel wrote).
KNOWN_ERRORS = frozenset(
    n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
) | {"CellTimeoutError", "DeadKernelError", "CellExecutionError"}

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


def decoded_forms(text: str, limit: int = 2_000_000) -> list[str]:
    """``text`` and the forms it could carry something else in: HTML text (tags dropped, entities decoded),
    URL-unquoted, reversed, rot13, Python escapes decoded, and every base64 run (also zlib-compressed), hex run
    and list of character codes decoded. Each form is cut to ``limit`` characters."""
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
    for run in _BASE64_RUN.findall(compact):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(run + "=" * (-len(run) % 4))
            except (binascii.Error, ValueError):
                continue
            forms.append(raw.decode("utf-8", "ignore"))
            try:  # at most ``limit`` bytes: a small run may inflate to gigabytes
                inflated = zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(raw, limit)
                forms.append(inflated.decode("utf-8", "ignore"))
            except zlib.error:
                pass
    for run in _HEX_RUN.findall(compact):
        forms.append(bytes.fromhex(run).decode("utf-8", "ignore"))
    for run in _CODES.findall(text):
        codes = [int(c) for c in re.findall(r"\d+", run)]
        forms.append("".join(chr(c) for c in codes if 0 < c < 0x110000))
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
    """

    def __init__(self, regions: Iterable[str], visible: str, min_line_chars: int = 12):
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
        never the material), or None when they do not."""
        joined = "\n".join(texts)
        if not joined or not self:
            return None
        for form in decoded_forms(joined):
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
    text) plus outputs that cannot carry a hidden test, the review banner dropped, a guide cell on top, and the
    whole notebook sanitised for the browser (:class:`course.html_safety.SanitizeNotebook`).

    Use it in place of ``ClearHiddenTests`` in ``c.GenerateFeedback.preprocessors`` (``nbgrader_config.py``).
    Needs nbgrader's ``resources["nbgrader"]`` (assignment, student, notebook, db_url) and its ``CourseDirectory``
    configuration to find the gradebook, the source and the handed-in notebooks; without them the hidden tests and
    the test cells are read from the notebook's own locked cells, and other cells show no output.
    """

    handed_in_max_bytes = Int(200_000_000, help="Largest handed-in notebook whose outputs feedback shows (bytes)").tag(
        config=True
    )
    cell_output_max_chars = Int(
        2_000_000,
        help="Longest outputs of one cell that feedback shows (characters, "
        "after base64 images); longer ones are replaced by a note",
    ).tag(config=True)
    min_line_chars = Int(12, help="Shortest line of a hidden test (non-space characters) looked for in outputs").tag(
        config=True
    )

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
        begin, end = self.begin_test_delimeter, self.end_test_delimeter
        nb.cells = [c for c in nb.cells if BANNER_KEY not in c.get("metadata", {})]
        source_nb, trusted_text = self._instructor_notebooks(resources)

        # The hidden material and the test cells, from the instructor's source notebook and the gradebook (the
        # autograded notebook's own locked cells only where neither is there).
        def meta(cell) -> Mapping[str, Any]:
            return cell.get("metadata", {}).get("nbgrader", {})

        gradebook = self._gradebook_tests(resources)
        reference = source_nb.cells if source_nb is not None else [c for c in nb.cells if meta(c).get("locked")]
        texts = [html_safety.joined(c.source) for c in reference] + list(gradebook.values())
        regions = [r for text in texts for r in hidden_regions(text, begin, end)]
        regions += [r for c in nb.cells if meta(c).get("locked") for r in hidden_regions(c.source, begin, end)]
        visible = "\n".join(without_hidden_regions(text, begin, end) for text in texts)
        material = HiddenMaterial(regions, visible, self.min_line_chars)
        tests = {(gid, text) for gid, text in gradebook.items()}
        tests |= {
            (meta(c).get("grade_id"), html_safety.joined(c.source))
            for c in reference
            if c.cell_type == "code" and meta(c).get("grade") and not meta(c).get("solution")
        }
        is_test = [
            c.cell_type == "code" and (meta(c).get("grade_id"), html_safety.joined(c.source)) in tests for c in nb.cells
        ]

        handed_in = self._handed_in(resources)
        handed_cells = handed_in.cells if handed_in is not None else []
        matches = match_cells(nb.cells, handed_cells)

        nb, resources = super().preprocess(nb, resources)

        for n, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or id(cell) in self._hidden_cells:
                continue
            if is_test[n]:
                outputs = list(cell.get("outputs", []))
                strings = [s for o in outputs for s in output_strings(o)]
                if sum(len(s) for s in strings) > self.cell_output_max_chars:
                    outputs = [new_output("stream", name="stdout", text=TOO_LONG_NOTE)]
                elif material.found_in(strings):
                    outputs = [new_output("stream", name="stdout", text=REPEAT_NOTE)]
            else:
                outputs = self._student_outputs(cell, handed_cells[matches[n]] if n in matches else None)
                if sum(len(s) for o in outputs for s in output_strings(o)) > self.cell_output_max_chars:
                    outputs = [new_output("stream", name="stdout", text=TOO_LONG_NOTE)]
            cell.outputs = outputs

        html_safety.sanitize_notebook(nb, trusted_text)
        nb.cells.insert(0, new_markdown_cell(GUIDE))
        return nb, resources

    @staticmethod
    def _student_outputs(cell, handed_cell) -> list:
        """The handed-in outputs of a student cell, then one line naming the error the grader's run ended in."""
        outputs = copy.deepcopy(list(handed_cell.get("outputs", []))) if handed_cell is not None else []
        if handed_cell is not None and handed_cell.get("cell_type") != "code":
            outputs = []
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            ename = str(errors[0].get("ename", ""))
            named = ename if ename in KNOWN_ERRORS else "an error"
            outputs.append(
                new_output(
                    "stream",
                    name="stdout",
                    text=(
                        f"[When the grader ran this cell it stopped with {named}; the outputs above are from the "
                        "notebook you handed in.]\n"
                    ),
                )
            )
        return outputs
