"""Feedback carries no text of the grading run, and no output makes it slow (:mod:`course.feedback`).

Two attacks by a hostile student, both on the tiny assignment (conftest):

- **Hidden tests through a public test cell**. The graded function, while the hidden test calls it, reads its
  caller's source (``traceback.extract_stack`` and ``linecache``, before the guard clears ``linecache``); when the
  later public test cell ``test_public`` calls it again it prints that source shifted by one code point, which no
  list of decodings knows. Feedback used to show a public test cell's grading-run output unless it *looked* like a
  hidden test, so the whole hidden test reached the student. Now no cell shows the grading run: the checks here
  look for every hidden line in any constant code-point shift (a shift keeps the differences between neighbouring
  code points, :func:`leaked_lines`), reversed, rot13, URL-quoted, HTML references, base64 (also zlib), hex, and
  for any 20 characters of what the grading run printed. A fair failing check must still be named.
- **Decoding bomb**. A public test cell's output of ``.``-separated base64 zlib bombs made the check for hidden
  text inflate each to 2 M characters: 7 min 52 s and 3.1 GB for one cell. Feedback no longer decodes grading-run
  outputs, and :func:`course.feedback.decoded_forms` works within a budget wherever it still runs.

The fast tests build an autograded notebook by hand and run the feedback preprocessor on it (no nbgrader); the slow
ones hand in hostile students' submissions, autograde them with the kit's guard and write the feedback HTML with
``course.nbgrader_steps.generate_feedback`` (about 30 s).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import copy
import html
import re
import time
import urllib.parse
import zlib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_output

from conftest import (
    TINY_ID,
    TINY_NOTEBOOK,
    TINY_SECRET,
    feedback_course,
    hand_in,
    make_tiny_course,
    tiny_source_notebook,
)
from course import feedback
from course import nbgrader_steps as steps
from course.notebook_cells import cell_by_grade_id, cells_by_grade_id
from course.sample_submission import fill_answers
from course.settings import EXPRESSION_LAB_FEEDBACK_TIMEOUT

#: The hostile answer cell: keeps its callers' source, prints it shifted.
LEAKING_DOUBLE = """import traceback

_seen = {}


def double(x):
    for frame in traceback.extract_stack()[:-1]:
        if "ipykernel_" in frame.filename and frame.filename not in _seen:
            _seen[frame.filename] = "".join(traceback.linecache.getlines(frame.filename))
    if x == 0:  # the public test cell test_public calls double(0), after the hidden test ran
        for text in _seen.values():
            print("notes:", "".join(chr(ord(c) + 1) for c in text))
    return 2 * x
"""
#: A fair mistake: ``test_triple`` fails with ``AssertionError: expected triple(2) == 6, found 7``.
WRONG_TRIPLE = "def triple(x):\n    return 3 * x + 1\n"
#: The assert message of that failure: the error's text, which feedback must not show (it formats a value the
#: student's code returned).
WRONG_TRIPLE_MESSAGE = "expected triple(2) == 6, found 7"
#: One base64 run of a hostile student's bomb: 2,616 characters, 2 M inflated.
BOMB_RUN = base64.b64encode(zlib.compress(b"a" * 2_000_000, 9)).decode()
#: Runs in the bombs here: 40 (105 kB) instead of the 760 of the attack as found (1.99 MB), so that the old code's cost shows
#: in under a minute (each run cost it about 0.6 s and 4 MB of decoded text).
BOMB_RUNS = 40
BOMB_DOUBLE = f"""import base64, zlib

_run = base64.b64encode(zlib.compress(b"a" * 2_000_000, 9)).decode()


def double(x):
    if x == 0:  # only the public test cell test_public calls double(0)
        print(".".join([_run] * {BOMB_RUNS}))
    return 2 * x
"""

HIDDEN_CELL = cell_by_grade_id(tiny_source_notebook(), "test_double").source
#: Each line of the tiny assignment's hidden test (12+ characters; none of them is in the visible text).
HIDDEN_LINES = [
    line.strip() for region in feedback.hidden_regions(HIDDEN_CELL) for line in region.split("\n") if len(line) >= 12
]


def shift(text: str, k: int) -> str:
    """``text`` with every code point moved by ``k`` (a Caesar shift over Unicode)."""
    return "".join(chr((ord(c) + k) % 0x110000) for c in text)


def steps_between(text: str) -> str:
    """The difference between each two neighbouring code points of ``text``, as characters: a shifted copy of a
    line has the same steps as the line, so one search finds it in every shift."""
    return "".join(chr((ord(b) - ord(a)) % 0x110000) for a, b in zip(text, text[1:]))


def decodings(text: str) -> list[str]:
    """``text`` and what it could carry a line in: HTML references decoded, reversed, rot13, URL-unquoted, and every
    base64 (also zlib-compressed) and hex run decoded."""
    found = []
    for t in {text, html.unescape(text)}:
        found += [t, t[::-1], codecs.encode(t, "rot13"), urllib.parse.unquote(t)]
        compact = "".join(t.split())
        for run in re.findall(r"[A-Za-z0-9+/_-]{16,}={0,2}", compact):
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    raw = decode(run + "=" * (-len(run) % 4))
                except (binascii.Error, ValueError):
                    continue
                found.append(raw.decode("utf-8", "ignore"))
                try:
                    found.append(zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(raw, 1_000_000).decode("utf-8"))
                except (zlib.error, UnicodeDecodeError):
                    pass
        found += [bytes.fromhex(run).decode("utf-8", "ignore") for run in re.findall(r"(?:[0-9a-fA-F]{2}){8,}", t)]
    return found


def leaked_lines(text: str) -> list[str]:
    """The hidden lines ``text`` carries, in any constant code-point shift (none included) of any of its
    :func:`decodings`."""
    forms = [steps_between(form) for form in decodings(text)]
    return [line for line in HIDDEN_LINES if any(steps_between(line) in form for form in forms)]


#: The text a student sees in the notebook anyway (every cell's source without the hidden tests).
VISIBLE = "\n".join(feedback.without_hidden_regions(c.source) for c in tiny_source_notebook().cells)


def printed_pieces(outputs: list, shortest: int = 20) -> list[str]:
    """The pieces of what ``outputs`` printed (stream text, results, error text), cut at control characters, of
    ``shortest`` characters or more, but for those the notebook's visible text holds (a test printing a line of
    its own source)."""
    text = "\n".join(feedback.output_strings([{k: v for k, v in o.items() if k != "output_type"} for o in outputs]))
    pieces = re.split(r"[\x00-\x1f\x7f]+", text)
    return [p for p in pieces if len(p.strip()) >= shortest and p.strip() not in VISIBLE]


def all_text(nb) -> str:
    """Every string of a notebook (sources, outputs, metadata), one per line."""
    return "\n".join(feedback.output_strings(nb))


def feedback_of(root: Path, graded_outputs: dict[str, list], handed_outputs: dict[str, list] | None = None):
    """The feedback notebook :class:`course.feedback.ClearHiddenTestOutputs` (read from this module's ``feedback``
    at call time) makes of the tiny notebook whose cells ran with ``graded_outputs`` (by grade_id), handed in with
    ``handed_outputs``; also the autograded notebook it started from."""
    config, resources = feedback_course(root, "eve", handed_outputs or {})
    autograded = tiny_source_notebook()  # the locked cells as nbgrader restores them, hidden tests included
    for count, cell in enumerate(c for c in autograded.cells if c.cell_type == "code"):
        cell.execution_count = count + 1
    for gid, outputs in graded_outputs.items():
        cell_by_grade_id(autograded, gid).outputs = outputs
    nb, _ = feedback.ClearHiddenTestOutputs(config=config).preprocess(copy.deepcopy(autograded), resources)
    return nb, autograded


# -------------------------------------------------------------------- hidden tests through a public cell, fast

#: What a hostile student's submission makes the public test cell ``test_public`` print while graded: its caller's
#: source (the hidden test's cell) shifted by one code point.
POC_PRINTED = "notes: " + shift(HIDDEN_CELL, 1) + "\n"


def test_the_leak_detector_finds_the_red_teams_shifted_source():
    assert leaked_lines(POC_PRINTED) == HIDDEN_LINES, (
        f"expected the check to find every hidden line in a hostile student's output; found {leaked_lines(POC_PRINTED)}"
    )
    honest = "public check: double(2) = 4\nAssertionError: expected double(0) == 0, found 3\n"
    assert leaked_lines(honest) == [], f"expected no hidden line in honest output; found {leaked_lines(honest)}"


def assert_nothing_of_the_run(nb, graded_outputs: list) -> None:
    """No hidden line in ``nb`` in any shift or encoding, and no piece of what ``graded_outputs`` printed."""
    shown = all_text(nb)
    leaked = leaked_lines(shown)
    assert not leaked, f"expected no hidden line in the feedback in any shift or encoding; found {leaked}"
    printed = printed_pieces(graded_outputs)
    kept = [p[:40] for p in printed if p in shown or p in html.unescape(shown)]
    assert printed and not kept, (
        f"expected none of the {len(printed)} pieces the grading run of the test cell printed in the feedback; "
        f"found {kept}"
    )


def test_the_red_teams_output_of_a_public_test_cell_never_reaches_feedback(tmp_path):
    graded = [new_output("stream", name="stdout", text=POC_PRINTED)]
    nb, _ = feedback_of(tmp_path, {"test_public": graded})
    assert_nothing_of_the_run(nb, graded)
    outputs = cell_by_grade_id(nb, "test_public").outputs
    assert outputs == [], f"expected a passing test cell with nothing handed in to show nothing; found {outputs}"


def test_no_result_display_or_error_text_of_a_test_cells_run_reaches_feedback(tmp_path):
    graded = [
        new_output("execute_result", data={"text/plain": repr(shift(HIDDEN_CELL, 2))}, execution_count=7),
        new_output("display_data", data={"text/html": f"<pre>{html.escape(shift(HIDDEN_CELL, -3))}</pre>"}),
        new_output(
            "error",
            ename="LeakError",
            evalue=f"expected double(0) == 0, found {shift(HIDDEN_CELL, 5)!r}",
            traceback=[shift(HIDDEN_CELL, 4)],
        ),
    ]
    nb, _ = feedback_of(tmp_path, {"test_public": graded})
    assert_nothing_of_the_run(nb, graded)
    texts = [o.get("text", "") for o in cell_by_grade_id(nb, "test_public").outputs]
    expected = feedback.TEST_FAILED.format(error="an error", shown="")
    assert texts == [expected], (
        f"expected only the kit's line, naming a made-up error class as 'an error' ({expected!r}); found {texts}"
    )
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"expected execution counts renumbered 1, 2, …; found {counts}"


def test_execution_counts_carry_nothing_of_the_run(tmp_path):
    graded = {"test_public": [new_output("stream", name="stdout", text="ok\n")]}
    config, resources = feedback_course(tmp_path, "eve", {})
    autograded = tiny_source_notebook()
    secret_number = int.from_bytes(TINY_SECRET.encode(), "big")
    for cell in autograded.cells:
        if cell.cell_type == "code":
            cell.execution_count = secret_number
    cell_by_grade_id(autograded, "test_public").outputs = graded["test_public"]
    nb, _ = feedback.ClearHiddenTestOutputs(config=config).preprocess(autograded, resources)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert str(secret_number) not in all_text(nb) and counts == list(range(1, len(counts) + 1)), (
        f"expected the kernel's execution counts ({secret_number}) replaced by 1, 2, …; found {counts}"
    )


def test_a_fair_failing_public_check_names_its_cell_and_the_error_class(tmp_path):
    failure = new_output(
        "error",
        ename="AssertionError",
        evalue=WRONG_TRIPLE_MESSAGE,
        traceback=["Traceback (most recent call last)", f"AssertionError: {WRONG_TRIPLE_MESSAGE}"],
    )
    own_run = new_output("stream", name="stdout", text="my own run of the public checks\n")
    nb, _ = feedback_of(
        tmp_path,
        {
            "test_triple": [failure],
            "test_public": [new_output("stream", name="stdout", text="a public test cell keeps its output\n")],
            "test_double": [new_output("stream", name="stderr", text="warning\n")],
        },
        {"test_triple": [own_run]},
    )
    cells = cells_by_grade_id(nb)
    triple = "".join(o.get("text", "") for o in cells["test_triple"].outputs)
    expected = feedback.TEST_FAILED.format(error="AssertionError", shown=feedback.HANDED_IN_SHOWN)
    assert triple == own_run.text + expected, (
        f"expected test_triple to show the output handed in, then {expected!r}; found {triple!r}"
    )
    assert "run this cell in your own notebook" in expected, f"expected the line to point at the notebook: {expected}"
    assert WRONG_TRIPLE_MESSAGE not in all_text(nb), "expected the error's message (its evalue) not in the feedback"
    public = [o.get("text", "") for o in cells["test_public"].outputs]
    assert public == [], f"expected a passing test cell with nothing handed in to show nothing; found {public}"
    hidden = "".join(o.get("text", "") for o in cells["test_double"].outputs)
    assert feedback.NOTE in hidden and "failed with output to stderr" in hidden, (
        f"expected the hidden-test cell's note and that its run wrote to stderr (scored 0); found {hidden!r}"
    )
    assert "run it in your own notebook" in nb.cells[0].source, f"expected the guide to say so; {nb.cells[0].source}"


# ------------------------------------------------------------------------------------- decoding bomb, fast


def test_decoding_a_zlib_bomb_stays_within_its_budget():
    text = ".".join([BOMB_RUN] * BOMB_RUNS)
    budget = feedback.DecodeBudget()
    start = time.monotonic()
    forms = feedback.decoded_forms(text, budget=budget)
    seconds = time.monotonic() - start
    whole = len(feedback.decoded_forms("x")) - 1  # forms of the text as a whole beside the text: reversed, rot13
    decoded = sum(len(f) for f in forms) - len(text) * (1 + whole)
    assert decoded <= feedback.OUTPUT_DECODE_CHARS, (
        f"expected at most {feedback.OUTPUT_DECODE_CHARS:,} decoded characters from {BOMB_RUNS} bomb runs; "
        f"found {decoded:,}"
    )
    assert budget.exhausted, "expected the budget to say the runs were not all decoded"
    assert seconds < 60, f"expected the bomb decoded within its budget in seconds; took {seconds:.1f} s"


def test_hidden_material_does_not_clear_what_it_could_not_decode():
    region = feedback.hidden_regions(HIDDEN_CELL)[0]
    material = feedback.HiddenMaterial([region], "print(double(2))", decode_chars=5_000_000)
    bomb = ".".join([BOMB_RUN] * BOMB_RUNS)
    start = time.monotonic()
    answer = material.found_in([bomb])
    seconds = time.monotonic() - start
    assert answer == feedback.OVER_BUDGET, f"expected {feedback.OVER_BUDGET!r} for the bomb; found {answer!r}"
    assert seconds < 60, f"expected the answer in seconds; took {seconds:.1f} s"
    assert material.budget.chars == 0, f"expected the notebook's budget spent; found {material.budget.chars:,} left"
    hidden_after = base64.b64encode(region.encode()).decode()
    assert material.found_in([hidden_after]) == feedback.OVER_BUDGET, (
        "expected a later output with encoded runs not cleared once the notebook's budget is spent"
    )
    assert material.found_in(["public check: double(2) = 4"]) is None, "expected plain honest text still cleared"
    fresh = feedback.HiddenMaterial([region], "print(double(2))")
    assert fresh.found_in([hidden_after]) == "a line of a hidden test", "expected base64 of the test still found"


def test_a_bomb_in_a_test_cells_output_costs_feedback_nothing(tmp_path):
    bomb = ".".join([BOMB_RUN] * BOMB_RUNS) + "\n"
    start = time.monotonic()
    nb, _ = feedback_of(tmp_path, {"test_public": [new_output("stream", name="stdout", text=bomb)]})
    seconds = time.monotonic() - start
    assert BOMB_RUN not in all_text(nb), "expected the bomb's text not in the feedback"
    assert seconds < 30, f"expected feedback of one bombed cell in about a second; took {seconds:.1f} s"


def test_handed_in_text_outputs_past_the_notebooks_budget_are_not_rendered(tmp_path):
    """Feedback renders handed-in outputs on the grader's side (about 10 s per million characters of text): three
    cells of 1.5 M characters each, each under the cell's limit, fill the notebook's 4 M; the third shows a note."""
    big = {
        gid: [new_output("stream", name="stdout", text=f"{gid} " + "y" * 1_500_000 + "\n")]
        for gid in ("double", "triple", "test_public")
    }
    nb, _ = feedback_of(tmp_path, {}, big)

    def shown(gid: str) -> str:
        return "".join(feedback.output_strings(cell_by_grade_id(nb, gid).outputs))

    assert "double y" in shown("double") and "triple y" in shown("triple"), (
        "expected the first two cells' handed-in outputs shown within the budget"
    )
    assert "test_public y" not in shown("test_public") and feedback.TEXT_BUDGET_NOTE in shown("test_public"), (
        f"expected the third cell's output replaced by the note, found {shown('test_public')[:200]!r}"
    )


def test_generate_feedback_is_stopped_at_its_timeout(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("import time\ntime.sleep(60)\n")
    start = time.monotonic()
    with pytest.raises(steps.StepTimeout, match="ran past 2 s") as caught:
        steps.generate_feedback(TINY_ID, "slow", tmp_path, timeout=2)
    seconds = time.monotonic() - start
    assert seconds < 30, f"expected nbgrader stopped after about 2 s; took {seconds:.1f} s"
    variable = EXPRESSION_LAB_FEEDBACK_TIMEOUT.name
    assert variable in str(caught.value), f"expected the setting named; {caught.value}"
    assert steps.feedback_timeout({}) == EXPRESSION_LAB_FEEDBACK_TIMEOUT.default == 600, "expected 600 s by default"
    assert steps.feedback_timeout({variable: "45"}) == 45, "expected the variable to set the timeout"
    with pytest.raises(ValueError, match=variable):
        steps.feedback_timeout({variable: "soon"})


# ----------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The tiny course with a hostile student's leak, a fair mistake and a (small) bomb handed in, autograded with the
    kit's guard, feedback written by ``generate_feedback``: ``(root, {student: (feedback page, seconds)})``."""
    root = tmp_path_factory.mktemp("feedback-leaks")
    release, source = make_tiny_course(root)
    answers = {"leak": ("double", LEAKING_DOUBLE), "fair": ("triple", WRONG_TRIPLE), "bomb": ("double", BOMB_DOUBLE)}
    pages = {}
    for student, (gid, code) in answers.items():
        nb = fill_answers(release, source)
        cell_by_grade_id(nb, gid).source = code
        hand_in(root, student, TINY_ID, nb, TINY_NOTEBOOK)
        steps.autograde(TINY_ID, student, root)
        start = time.monotonic()
        folder = steps.generate_feedback(TINY_ID, student, root)
        pages[student] = ((folder / TINY_NOTEBOOK).with_suffix(".html").read_text(), time.monotonic() - start)
    return root, pages


def autograded_cell(root: Path, student: str, gid: str):
    path = root / "grading" / "autograded" / student / TINY_ID / TINY_NOTEBOOK
    return cell_by_grade_id(nbformat.read(path, as_version=4), gid)


@pytest.mark.slow
def test_the_red_teams_leak_works_while_grading(graded):
    root, _ = graded
    outputs = autograded_cell(root, "leak", "test_public").outputs
    printed = "".join(o.get("text", "") for o in outputs)
    assert leaked_lines(printed) == HIDDEN_LINES, (
        f"expected the grading run of test_public to print the hidden test shifted (the attack is live); "
        f"found {printed[:300]!r}"
    )


@pytest.mark.slow
def test_the_feedback_page_carries_no_hidden_line_and_nothing_the_run_printed(graded):
    root, pages = graded
    page, _ = pages["leak"]
    leaked = leaked_lines(page)
    assert not leaked, f"expected no hidden line in the feedback page in any shift or encoding; found {leaked}"
    printed = printed_pieces(autograded_cell(root, "leak", "test_public").outputs)
    text = html.unescape(page)
    kept = [p[:40] for p in printed if p in text]
    assert printed and not kept, (
        f"expected none of the {len(printed)} pieces the grading run of test_public printed in the page; found {kept}"
    )
    assert "About this feedback." in page and "Test cell" in page, "expected the guide and the scores on the page"


@pytest.mark.slow
def test_the_feedback_page_names_the_failed_cell_and_the_error_class(graded):
    root, pages = graded
    page = html.unescape(pages["fair"][0])
    line = feedback.TEST_FAILED.format(error="AssertionError", shown="").strip()
    assert page.count(line) == 1, (
        f"expected the line {line!r} once (test_triple failed, nothing else did); found it {page.count(line)} times"
    )
    errors = [o for o in autograded_cell(root, "fair", "test_triple").outputs if o.output_type == "error"]
    assert [(o.ename, o.evalue) for o in errors][:1] == [("AssertionError", WRONG_TRIPLE_MESSAGE)], (
        f"expected the grading run to fail test_triple with the assert's message; found {errors}"
    )
    assert WRONG_TRIPLE_MESSAGE not in page, "expected the assert's message (a value the student returned) not shown"
    scores = re.findall(r"Test cell</a> \(Score: ([\d.]+) / ([\d.]+)\)", page)
    assert scores == [("2.0", "2.0"), ("0.0", "2.0"), ("1.0", "1.0")], (
        f"expected the scores of test_double, test_triple (failed), test_public on the page; found {scores}"
    )


@pytest.mark.slow
def test_a_bombed_output_makes_feedback_no_slower(graded):
    root, pages = graded
    page, seconds = pages["bomb"]
    printed = "".join(o.get("text", "") for o in autograded_cell(root, "bomb", "test_public").outputs)
    assert printed.count(BOMB_RUN) == BOMB_RUNS, f"expected the bomb in the grading run; found {len(printed)} chars"
    honest = pages["fair"][1]
    assert BOMB_RUN not in page, "expected the bomb's text not in the feedback page"
    assert seconds < honest + 30, f"expected feedback as quick as an honest one ({honest:.1f} s); took {seconds:.1f} s"
