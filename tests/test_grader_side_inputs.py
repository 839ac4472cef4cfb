"""What a submission hands the grader's own processes (outside the sandbox) cannot stop a class's grading, stall its
feedback or write to the instructor's terminal.

Each case is an attack that worked through ``python -m course autograde`` / ``python -m course feedback`` before
its fix; here the grader-side function that failed meets the attacker's input directly:

- a run record nested 100,000 deep, or holding an integer of 5,000 digits, raised ``RecursionError`` /
  ``ValueError`` out of ps1's separate scoring and ended the whole batch (no summary written, the attacker neither
  scored nor flagged): it is now a damaged record, and any failure of the kit on one submission is that
  submission's ``failed`` row;
- a handed-in file named with terminal escape sequences (erase the line, set the window title, OSC 52 to the
  clipboard) reached the instructor's terminal, the CSV and the JSON raw: every reason is now one line of
  printable characters, escapes shown;
- a cell that printed ``expression-lab sandbox: …`` to the kernel's stderr and killed its kernel wrote its own
  failure reason (the autograde command took any such line as the launcher's): the launcher now puts every line
  the sandbox writes behind :data:`course.sandbox.KERNEL_OUTPUT_PREFIX`, and those never count;
- an 8 MB markdown cell took 1.3 GB and 48 s in nbgrader's process and 142 s of feedback (a megabyte of code
  takes 55 s to highlight, and 20,000 empty cells 19 s): a notebook over
  ``EXPRESSION_LAB_SUBMISSION_MAX_CELL_TEXT`` characters of cell text (in any nbformat nbgrader converts) or over
  :data:`course.submission_files.MAX_CELLS` cells is refused at intake;
- one student's feedback past its timeout stopped the feedback (and its release) of every student after them:
  the others are now written and released, and the failures reported together;
- HTML that html5lib takes quadratic time or worse to clean (many children of one element, deep nesting,
  formatting elements left open), in an output or a markdown cell, cleaned on the grader's side at autograde and
  at every rendering: past its limits it is shown as text;
- one output of 200 MB sent as one message was received whole by nbgrader's process (600 MB past an honest
  run) before the output cap cut it: the grader's sockets refuse a message part over
  ``GuardedExecute.max_message_bytes``, and the notebook's grading fails saying why;
- outputs the caps did not count (a display's metadata, an error's name, a stream whose text is a list, which
  crashed the grading run) and a result forged ahead of a test cell's own, which stood in for it once the caps
  dropped the real one, are now counted, shortened or kept in its place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course import autograde, html_safety, review, sandbox
from course import nbgrader_steps as steps
from course.run_record import RunRecordError, read_run_record
from course.submission_files import MAX_CELLS, Caps

#: Terminal escape sequences a file name can carry: erase the line, go to its start, set the window title, put a
#: command on the clipboard (OSC 52), hide what follows; and a right-to-left override.
ESCAPES = "\x1b[2K\x1b[1G\x1b]0;all good\x07\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07\x1b[8m\u202e"


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"epochs": ' + "9" * 5000 + "}"],
    ids=["nested-100000-deep", "integer-of-5000-digits"],
)
def test_a_run_record_json_cannot_parse_is_a_damaged_record(tmp_path, text):
    path = tmp_path / "model_2.run.json"
    path.write_text(text)
    with pytest.raises(RunRecordError) as err:
        read_run_record(path)
    assert "model_2.run.json: not a JSON run record" in str(err.value), (
        f"expected the record named as not a JSON run record, found {err.value}"
    )


def test_one_submission_that_makes_the_kit_fail_never_ends_the_batch(tmp_path):
    def run(student: str) -> autograde.SubmissionResult:
        if student == "mallory":
            raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")
        return autograde.SubmissionResult(student, "graded", 5.0, 5.0, 1.0)

    results: dict = {}
    autograde._grade_all(run, ["alice", "mallory", "zoe"], 2, "ps1", False, False, results, tmp_path)
    assert sorted(results) == ["alice", "mallory", "zoe"], f"expected a row for every student, found {sorted(results)}"
    assert [results[s].status for s in ("alice", "zoe")] == ["graded", "graded"], (
        f"expected the others graded: {results}"
    )
    failed = results["mallory"]
    assert failed.status == "failed" and "the kit failed: RecursionError" in failed.reason, (
        f"expected mallory's row failed with the kit's error named, found {failed}"
    )


def test_file_names_reach_the_terminal_and_the_csv_as_printable_text(tmp_path):
    """A handed-in page named with escape sequences is quarantined and flagged: the flag, the row and the table
    hold no control or format character, and show each as its escape."""
    folder = tmp_path / "grading" / "submitted" / "ansi" / "ps1"
    folder.mkdir(parents=True)
    (folder / f"{ESCAPES}.html").write_text("<script>alert(1)</script>")
    refused = steps.intake("ps1", "ansi", tmp_path, Caps(), ignore=[])
    flags = review.summary(review.read("ps1", "ansi", tmp_path), limit=4000)
    row = autograde.SubmissionResult("ansi", "failed", None, None, 0.0, f"intake: {ESCAPES}.html", flags)
    table = autograde.summary_table([row])
    path = autograde.write_summary("ps1", [row], tmp_path)
    for where, text in (("flag", flags), ("row", row.reason), ("table", table), ("csv", path.read_text())):
        bad = sorted({ch for ch in text if not ch.isprintable() and ch != "\n"})
        assert not bad, f"expected only printable characters in the {where}, found {bad}: {text[:300]!r}"
    assert refused == [] and "\\x1b]0;all good\\x07" in flags and "\\u202e" in flags, (
        f"expected the flag to show the escape sequences as text, found {flags[:400]!r}"
    )


FORGED = (
    b"expression-lab sandbox: =1+1 \x1b[31mthe grader's disk is full\x1b[0m\n"
    b"junk\rexpression-lab sandbox: forged after a carriage return\n"
    b"[AutogradeApp | ERROR] forged nbgrader line\n"
    b"no new line at the end"
)


def test_what_the_kernel_prints_never_passes_for_the_launcher_or_nbgrader():
    read_end, write_end = os.pipe()
    out_read, out_write = os.pipe()
    forwarder = sandbox._forward_capped(read_end, out_write)
    os.write(write_end, FORGED)
    os.close(write_end)
    forwarder.join(timeout=10)
    os.close(out_write)
    with open(out_read, "rb") as f:
        forwarded = f.read()
    lines = forwarded.split(b"\n")
    assert lines[-1] == b"" and all(ln.startswith(sandbox.KERNEL_OUTPUT_PREFIX.encode()) for ln in lines[:-1]), (
        f"expected every forwarded line behind {sandbox.KERNEL_OUTPUT_PREFIX!r} and ended, found {forwarded!r}"
    )
    log = (
        "[AutogradeApp | INFO] Autograding submission\n"
        + forwarded.decode()
        + "[AutogradeApp | ERROR] There was an error processing assignment: DeadKernelError: Kernel died\n"
    )
    reason = autograde.failure_reason(log)
    assert "DeadKernelError" in reason and "forged" not in reason and "=1+1" not in reason, (
        f"expected nbgrader's own error as the reason, none of the kernel's lines, found {reason!r}"
    )
    launcher = "expression-lab sandbox: cannot start bubblewrap: no user namespaces\n" + forwarded.decode()
    assert autograde.failure_reason(launcher).startswith("expression-lab sandbox: cannot start bubblewrap"), (
        f"expected the launcher's own line as the reason, found {autograde.failure_reason(launcher)!r}"
    )


def _hand_in_notebook(root: Path, student: str, nb) -> None:
    folder = root / "grading" / "submitted" / student / "ps1"
    folder.mkdir(parents=True)
    (folder / "fer2013_cnn.ipynb").write_text(json.dumps(nb))


def test_a_notebook_too_costly_to_render_is_refused_at_intake(tmp_path):
    cap = Caps().cell_text
    markdown = new_notebook(cells=[new_markdown_cell("<b>x</b> " * (cap // 9 + 1000))])
    code = new_notebook(cells=[new_code_cell("x = 1\n" * 1000) for _ in range(cap // 6000 + 2)])
    # older formats, which nbgrader converts: nbformat 3 keeps code under "input" in worksheets, nbformat 1 under
    # "code" and markdown under "text"
    v3 = nbformat.convert(new_notebook(cells=[new_code_cell("y = 2\n" * (cap // 6 + 9))]), 3)
    v1 = {"nbformat": 1, "cells": [{"cell_type": "code", "code": "z" * cap}, {"cell_type": "text", "text": "w" * 9}]}
    empty_cells = new_notebook(cells=[new_markdown_cell("") for _ in range(MAX_CELLS + 1)])
    reference = nbformat.read(
        Path(__file__).resolve().parents[1] / "solutions" / "ps6_explain_compare" / "explain_compare.ipynb", 4
    )
    cases = {"markdown": markdown, "code": code, "v3": v3, "v1": v1, "empty-cells": empty_cells, "honest": reference}
    for student, nb in cases.items():
        _hand_in_notebook(tmp_path, student, nb)
        refused = steps.intake("ps1", student, tmp_path, Caps(), ignore=[])
        if student == "honest":
            assert refused == [], f"expected the longest reference notebook accepted, found {refused}"
            continue
        said = " ".join(refused)
        expected = f"cells, more than the {MAX_CELLS:,}" if student == "empty-cells" else "characters of cell text"
        assert expected in said, f"expected {student}'s notebook refused ({expected!r}), found {refused}"


def test_feedback_goes_on_past_a_student_whose_feedback_fails(tmp_path, monkeypatch):
    students = ["alice", "bigmd", "zoe"]
    for student in students:
        (tmp_path / "grading" / "autograded" / student / "ps1").mkdir(parents=True)
    stale = tmp_path / "grading" / "feedback" / "bigmd" / "ps1"
    stale.mkdir(parents=True)
    (stale / "fer2013_cnn.html").write_text("an earlier page")
    tried, released = [], []

    def generate(assignment, student, root, timeout=None):
        tried.append(student)
        if student == "bigmd":
            raise steps.StepTimeout(f"nbgrader generate_feedback --student {student} ran past 600 s and was stopped")
        folder = root / "grading" / "feedback" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    monkeypatch.setattr(steps, "generate_feedback", generate)
    monkeypatch.setattr(steps, "check_autograded", lambda *args, **kwargs: [])
    monkeypatch.setattr(steps, "nbgrader", lambda *args, **kwargs: released.append(args) or "")
    with pytest.raises(steps.GradingError) as err:
        steps.feedback_class("ps1", release=True, root=tmp_path)
    assert tried == students, f"expected feedback tried for every student, found {tried}"
    said = str(err.value)
    assert "not written for 1 of 3 (2 written and released)" in said and "bigmd" in said, (
        f"expected the failure named with what was written and released, found {said}"
    )
    assert released == [("release_feedback", "ps1")], f"expected one release of the class, found {released}"
    assert not stale.exists(), "expected the failed student's earlier feedback removed, never released stale"


def test_html_too_long_to_clean_is_shown_as_text():
    """html5lib walks a tree in time quadratic in an element's children: ``<p><b>x</b></p>`` 20,000 times took 16 s
    to clean, once per rendering of the cell. Past :data:`course.html_safety.MAX_CLEANED_CHARS` the fragment is text."""
    fragment = "<p><b>x</b></p>" * (html_safety.MAX_CLEANED_CHARS // 15 + 1)
    shown = html_safety.clean_html(fragment)
    assert "<b>" not in shown and "&lt;p&gt;&lt;b&gt;x&lt;/b&gt;&lt;/p&gt;" in shown and "too large to show" in shown, (
        f"expected the fragment shown as escaped text after a note, found {shown[:300]!r}"
    )
    assert html_safety.clean_html(shown) == shown, "expected it shown the same when cleaned again (at each rendering)"
    tampered = shown.replace("</pre>", "<script>alert(1)</script></pre>")
    assert "<script" not in html_safety.clean_html(tampered), "expected markup added to it escaped again"
    assert html_safety.clean_html("<p><b>x</b></p>" * 100) == "<p><b>x</b></p>" * 100, "expected short HTML kept"
    many = "<p>x</p>" * (html_safety.MAX_START_TAGS + 1)  # short, but past the start tags cleaned as HTML
    assert "<p>x</p>" not in html_safety.clean_html(many), "expected a fragment of too many start tags shown as text"


@pytest.mark.parametrize(
    ("fragment", "tag", "kept"),
    [
        ("<div>" * 1000, "div", html_safety.MAX_NESTING),
        ("<div></p>" * 1000, "div", html_safety.MAX_NESTING),  # a stray end tag closes nothing
        ("<div/>" * 1000, "div", html_safety.MAX_NESTING),  # HTML ignores the / of a non-void element
        ("<p><b>x</p>" * 200, "b", html_safety.MAX_OPEN_FORMATTING),
    ],
    ids=["nested-1000-deep", "stray-end-tags", "self-closing-div", "formatting-left-open"],
)
def test_html_nested_past_its_limits_is_shown_as_text(fragment, tag, kept):
    """html5lib takes time faster than quadratic in how deep elements nest (``<div>`` 100,000 times: 34 s) and in
    the formatting elements left open (``<p><b>x</p>`` 50,000 times: 183 s)."""
    shown = html_safety.clean_html(fragment)
    escaped = shown.count(f"&lt;{tag}&gt;") + shown.count(f"&lt;{tag}/&gt;")
    assert escaped >= fragment.count(f"<{tag}>") - kept, (
        f"expected the <{tag}> tags past the first {kept} shown as text, found {escaped} escaped: {shown[:300]!r}"
    )


#: Executes a three-cell notebook through the grader's executor (a plain ipykernel) and prints what it raised and
#: its peak memory; the middle cell displays ``SIZE`` characters in one message.
_ONE_MESSAGE = """
import json, resource
from nbformat.v4 import new_code_cell, new_notebook
from course.guarded_execute import GuardedExecute
cells = ["print('before')", "from IPython.display import display\\ndisplay({'text/plain': 'q' * SIZE}, raw=True)",
         "print('after')"]
nb = new_notebook(cells=[new_code_cell(c) for c in cells])
nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
try:
    GuardedExecute(timeout=120, iopub_timeout=5).preprocess(nb, {})
    raised = ""
except Exception as err:
    raised = f"{type(err).__name__}: {err}"
print(json.dumps({"raised": raised, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


@pytest.mark.slow
def test_one_huge_message_never_reaches_the_graders_memory():
    import subprocess
    import sys

    from conftest import REPO

    def run(size: int) -> dict:
        code = _ONE_MESSAGE.replace("SIZE", str(size))
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
        return json.loads(out.stdout.strip().splitlines()[-1])

    small, huge = run(1_000), run(200_000_000)
    assert small["raised"] == "", f"expected a notebook of small outputs graded, found {small['raised']}"
    assert huge["peak_mb"] < small["peak_mb"] + 150, (
        f"expected the grader's peak memory within 150 MB of a small run's ({small['peak_mb']} MB), found "
        f"{huge['peak_mb']} MB"
    )
    assert huge["raised"].startswith("CellTimeoutError: cell 2: the kernel's outputs stopped arriving"), (
        f"expected the notebook's grading to fail naming the cell and why, found {huge['raised'][:300]!r}"
    )


def _execute(cells: list) -> nbformat.NotebookNode:
    """Run ``cells`` (sources, or notebook cells) through the grader's executor with a plain ipykernel."""
    from course.guarded_execute import GuardedExecute

    nb = new_notebook(cells=[c if isinstance(c, dict) else new_code_cell(c) for c in cells])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    GuardedExecute(timeout=120, iopub_timeout=10).preprocess(nb, {})
    return nb


#: Student code that fills the notebook's 2 MiB of text exactly, after a forged result ``5``: the test cell's own
#: result then finds no room.
_FORGE_THEN_FILL = """
import sys
from IPython.display import display

def answer():
    sys.displayhook(5)
    display({'text/plain': 'f' * (2 * 2**20 - 1)}, raw=True)
"""


@pytest.mark.slow
def test_a_result_forged_ahead_of_the_test_cells_own_never_stands_in_for_it():
    """The caps kept a cell's first result and dropped later ones past them: a graded function that displayed a
    forged ``5`` and then filled the caps left the partial-credit cell's own result (``1``) out, and the guard,
    which takes a cell's last result for its final expression's, let the forged one score 5 of 5."""
    from nbgrader.utils import determine_grade

    test = new_code_cell("answer()\n1")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 5, "grade_id": "t"}
    nb = _execute([_FORGE_THEN_FILL, test])
    results = [o.data["text/plain"] for o in nb.cells[1].outputs if o.output_type == "execute_result"]
    assert determine_grade(nb.cells[1]) == (1.0, 5.0), (
        f"expected the cell's own result (1 of 5 points), found {determine_grade(nb.cells[1])} from {results}"
    )


#: Outputs the caps did not count or could not handle: metadata, an error's name, a stream whose text is a list.
_UNCOUNTED = [
    "from IPython.display import publish_display_data\nfor _ in range(6):\n"
    "    publish_display_data({'text/plain': 'x'}, metadata={'k': 'm' * 5_000_000})",
    "raise type('E' * 5_000_000, (Exception,), {})()",
    "raise type('E' * 5_000_000, (Exception,), {})()",
    "raise type('E' * 5_000_000, (Exception,), {})()",
    "raise type('E' * 5_000_000, (Exception,), {})()",
    "k = get_ipython().kernel\nk.session.send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': ['a' * 1000] * 6},"
    " parent=k.get_parent())",
    "print('after', 6 * 7)",
]


@pytest.mark.slow
def test_metadata_error_names_and_odd_streams_count_against_the_caps(tmp_path):
    nb = _execute(_UNCOUNTED)
    nbformat.write(nb, tmp_path / "graded.ipynb")
    size = (tmp_path / "graded.ipynb").stat().st_size
    assert size < 21 * 2**20, f"expected the graded notebook within the 20 MiB output cap, found {size:,} bytes"
    names = [o.ename for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert len(names) == 4 and all(len(n) <= 256 for n in names), (
        f"expected each cell's error kept with its name shortened, found names of {[len(n) for n in names]} characters"
    )
    assert "after 42" in "".join(o.get("text", "") for o in nb.cells[-1].outputs), "expected the last cell to run"


@pytest.mark.slow
def test_what_is_kept_past_the_caps_stays_bounded_however_many_cells():
    """A cell's first stderr output, first error and first result are kept past the caps (they decide its score):
    cell after cell, 60 cells kept 5.7 MB of text past the notebook's 2 MiB. A notebook now keeps at most
    ``MAX_KEPT_PAST_CAPS`` that way; past it, each is still kept (and scores) in a few hundred bytes."""
    from course.guarded_execute import MAX_KEPT_PAST_CAPS, GuardedExecute

    cell = "import sys\nsys.stderr.write('s' * 70000)\nraise ValueError('v' * 20000 + '\\n'.join(['t' * 1000] * 200))"
    nb = _execute([cell] * 60)
    text = sum(
        len(o.get("text", ""))
        + len(o.get("ename", ""))
        + len(o.get("evalue", ""))
        + len("".join(o.get("traceback", [])))
        for c in nb.cells
        for o in c.outputs
    )
    cap = GuardedExecute.class_traits()["max_notebook_text_bytes"].default_value
    assert text <= cap + MAX_KEPT_PAST_CAPS + 60 * 2048, (
        f"expected at most {cap + MAX_KEPT_PAST_CAPS:,} characters of text kept (and a little a cell), found {text:,}"
    )
    failed = [i for i, c in enumerate(nb.cells) if not any(o.output_type == "error" for o in c.outputs)]
    assert not failed, f"expected every cell to keep its error (its score), found none in cells {failed}"


#: Two honest progress loops: each step clears the cell and prints 1 KB (1.5 MB printed, 1 KB on screen), then a
#: live plot redrawn 100 times (a 60 KB image each), then a cell of answers printed and shown as Markdown.
_LOOP = "from IPython.display import clear_output\nfor step in range(1500):\n    clear_output(wait=True)\n"
_PROGRESS = [
    _LOOP + "    print(f'step {step} ' + '=' * 1000)",
    _LOOP + "    print(f'epoch {step} ' + '-' * 1000)",
    "import base64\nfrom IPython.display import clear_output, display\nfor epoch in range(100):\n"
    "    clear_output(wait=True)\n    display({'image/png': base64.b64encode(bytes(45_000)).decode()}, raw=True)\n"
    "    print('epoch', epoch)",
    "from IPython.display import Markdown, display\nprint('accuracy on the test set: 0.91')\n"
    "display(Markdown('**My answer**: the model confuses Fear with Surprise'))",
]


@pytest.mark.slow
def test_outputs_cleared_by_the_cell_give_their_room_back():
    """The caps counted everything a cell sent, also what ``clear_output`` then removed: two progress loops used up
    the notebook's 2 MiB of text and the second one's last step and a later cell's printed and Markdown answers were
    dropped; a live plot redrawn 100 times ended with no plot. What nbclient clears is now given back (the kernel
    still keeps at most 2 MiB of a cell's stdout, cleared or not)."""
    nb = _execute(_PROGRESS)
    first, second, plot, answers = ([o for o in c.outputs if "[grader:" not in str(o)] for c in nb.cells)
    last_steps = "".join(o.get("text", "") for o in first + second)
    assert "step 1499" in last_steps and "epoch 1499" in last_steps, f"expected each loop's last step: {last_steps}"
    assert any("image/png" in o.get("data", {}) for o in plot), f"expected the last plot kept, found {plot}"
    shown = "".join(o.get("text", "") + str(o.get("data", {})) for o in answers)
    assert "0.91" in shown and "My answer" in shown, f"expected the answers kept, found {shown[:500]!r}"


@pytest.mark.slow
def test_the_kernels_stream_cap_counts_each_cell_apart():
    """The kernel keeps at most 2 MiB of each cell's stdout and stderr; it read the cell's request id from the
    wrong key and counted the whole notebook instead: after 2.5 MB written to stderr in one cell, a test cell's own
    stderr (which scores it 0) was dropped at the source and the cell scored full (and every later cell's printed
    text was lost at the source)."""
    from nbgrader.utils import determine_grade

    test = new_code_cell("import sys\nsys.stderr.write('a warning\\n')")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 2, "grade_id": "t"}
    nb = _execute(["import sys\nfor _ in range(2500):\n    sys.stderr.write('e' * 1000 + '\\n')", test])
    texts = [o.get("text", "") for o in nb.cells[1].outputs if o.output_type == "stream"]
    assert any("a warning" in t for t in texts), f"expected the test cell's own stderr kept, found {texts}"
    assert determine_grade(nb.cells[1]) == (0.0, 2.0), f"expected its stderr to score it 0, found {texts}"


@pytest.mark.slow
def test_control_characters_count_as_the_bytes_written_to_disk(tmp_path):
    """nbformat writes a character below U+0020 as six bytes (``\\u0001``), and the caps counted it as one: four
    displays of 3.5 million (under the 20 MiB output cap) and 2 million printed (under the 2 MiB text cap) made a
    graded notebook of 96 MB. A print is still cut to what fits, not dropped."""
    display = "from IPython.display import display\ndisplay({'application/x-data': chr(1) * 3_500_000}, raw=True)"
    nb = _execute(["print('before', 6 * 7)", *[display] * 4, "print(chr(1) * 2_000_000)"])
    nbformat.write(nb, tmp_path / "graded.ipynb")
    size = (tmp_path / "graded.ipynb").stat().st_size
    assert size < 21 * 2**20, f"expected the graded notebook within the 20 MiB output cap, found {size:,} bytes"
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert 300_000 < len(printed) <= 2**21 // 6, (
        f"expected the print cut to the 2 MiB of text as written (about 349,000 control characters), found "
        f"{len(printed):,} characters"
    )
    assert "before 42" in "".join(o.get("text", "") for o in nb.cells[0].outputs), "expected the first cell kept"


@pytest.mark.slow
@pytest.mark.parametrize("mime", ["image/png", "text/plain"])
def test_a_display_shown_many_times_counts_each_copy(tmp_path, mime):
    """nbclient writes a display's data into every earlier output with its ``display_id``, and the caps counted
    it once: one small display shown 100 times, then 3 MiB with the same id (or an update of it), wrote a notebook
    of 318 MB (1 MiB of plain text so: 106 MB, against the 2 MiB text cap), graded in full."""
    size = 3 * 2**20 if mime == "image/png" else 2**20
    nb = _execute(
        [
            "from IPython.display import display, update_display\n"
            f"for _ in range(100):\n    display({{'{mime}': 'x'}}, raw=True, display_id='d')",
            f"display({{'{mime}': 'A' * {size}}}, raw=True, display_id='d')",
            f"update_display({{'{mime}': 'B' * {size}}}, raw=True, display_id='d')",
            "print('after', 6 * 7)",
        ]
    )
    nbformat.write(nb, tmp_path / "graded.ipynb")
    written = (tmp_path / "graded.ipynb").stat().st_size
    assert written < 21 * 2**20, f"expected the graded notebook within the 20 MiB output cap, found {written:,} bytes"
    assert "after 42" in "".join(o.get("text", "") for o in nb.cells[-1].outputs), "expected the last cell kept"


@pytest.mark.slow
def test_every_output_counts_its_place_in_the_notebook():
    """An empty display counted 2 bytes while it takes about 100 in the file and far more in nbgrader's memory
    (200,000 of them: a 22 MB notebook and a 969 MB process). Each output now counts 1 KiB besides its data, so
    a cell keeps at most 4 MiB / 1 KiB of them."""
    from course.guarded_execute import OUTPUT_COST, GuardedExecute

    nb = _execute(
        ["from IPython.display import display\nfor _ in range(6000):\n    display({'image/png': ''}, raw=True)"]
    )
    kept = sum(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in nb.cells[0].outputs)
    cap = GuardedExecute.class_traits()["max_cell_output_bytes"].default_value // OUTPUT_COST
    assert kept <= cap, f"expected at most {cap:,} empty displays kept in a cell, found {kept:,}"


#: A stream whose text holds a lone surrogate, sent by a kernel whose message packer was replaced (ipykernel's own
#: refuses them): nbformat then could not write the notebook and the grading failed.
_SURROGATE = (
    "import json\nk = get_ipython().kernel\npack = k.session.pack\n"
    "k.session.pack = lambda o: json.dumps(o, default=str).encode()\n"
    "k.session.send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'hi \\ud800 there'}, parent=k.get_parent())\n"
    "k.session.pack = pack"
)


@pytest.mark.slow
def test_text_that_cannot_be_written_is_replaced_and_the_notebook_saved(tmp_path):
    nb = _execute([_SURROGATE, "print('after', 6 * 7)"])
    nbformat.write(nb, tmp_path / "graded.ipynb")  # raised UnicodeEncodeError: surrogates not allowed
    texts = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "hi \ufffd" in texts, f"expected the surrogate replaced by U+FFFD, found {texts!r}"


def test_outputs_past_twice_the_caps_as_written_are_removed_but_what_scores():
    """The last check on the outputs as written, for what the counting on arrival might miss: the largest cells'
    displays and printed output go, their errors, stderr and results stay, and the notebook is flagged."""
    from nbformat.v4 import new_output

    from course.guarded_execute import GuardedExecute

    executor = GuardedExecute()
    executor._guard_flags = []
    big = new_code_cell("x")
    big.outputs = [
        new_output("display_data", data={"image/png": "A" * 50 * 2**20}),
        new_output("error", ename="ValueError", evalue="wrong", traceback=["ValueError: wrong"]),
        new_output("stream", name="stderr", text="a warning\n"),
    ]
    small = new_code_cell("y")
    small.outputs = [new_output("stream", name="stdout", text="kept\n")]
    nb = new_notebook(cells=[small, big])
    executor._check_written(nb)
    kinds = [o.output_type for o in nb.cells[1].outputs]
    assert kinds == ["error", "stream", "display_data"] and "removed" in nb.cells[1].outputs[-1].data["text/plain"], (
        f"expected the big cell's error and stderr kept and a note, found {kinds}"
    )
    assert nb.cells[0].outputs[0].text == "kept\n", "expected the small cell untouched"
    assert any("over twice the caps" in f for f in executor._guard_flags), f"expected a flag: {executor._guard_flags}"


def test_display_data_that_is_not_text_is_made_safe_without_failing():
    """``sanitize_output`` joined a display's values as lists of lines: JSON data of nested lists of numbers
    raised ``TypeError`` and the student's grading failed (a failed grading goes to a person, a 0 does not)."""
    from nbformat.v4 import new_output

    from course.html_safety import sanitize_output

    output = new_output("display_data", data={"application/json": [[0] * 5], "text/plain": ["a\n", "b"]})
    removed = sanitize_output(output)
    assert output.data == {"text/plain": "a\nb"} and removed == ["application/json"], (
        f"expected the JSON data removed and the text kept, found {output.data} and {removed}"
    )
