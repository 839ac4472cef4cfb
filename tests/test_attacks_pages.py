"""What instructors and students see of a hostile submission: no script runs, no hidden test shows.

One student of the tiny assignment (conftest; no TensorFlow) hands in a notebook built to attack both pages
built from it, graded once with plain nbgrader and the kit's configuration (its executor without the guard,
:data:`PLAIN_EXECUTE`, so that these layers are tested on their own):

- **stored XSS** (formgrader and feedback): outputs ``display(HTML("<script>…"))``, ``<img onerror>``,
  ``Javascript``, an SVG with ``onload``, ``Markdown`` with HTML, an ``image/png`` whose ``width`` metadata
  carries an event handler; a written answer and an added markdown cell with ``<img onerror>``, ``<svg onload>``,
  ``<details ontoggle>``, ``javascript:`` links. Every payload would request a marker URL, log a console marker
  and ``PUT`` a file through ``/api/contents`` with the page's ``_xsrf`` cookie. Chromium (playwright) opens the
  formgrader's submission page on a real Jupyter server and the feedback page: no marker request, no console
  marker, no dialog, no file.
- **hidden tests through later cells** (feedback): a ``pre_run_cell`` hook that stores every cell's source and
  prints it (plain, base64 and as HTML character references) in every later cell, ``print(In)`` in a later answer
  cell, and ``update_display`` rewriting an earlier answer cell's output with the hidden test. The autograded
  notebook shows that each route worked while grading; the feedback HTML must hold none of it.

The fast tests feed :mod:`course.html_safety` the same payloads without nbgrader.
"""

from __future__ import annotations

import base64
import codecs
import copy
import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
import zlib
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_output

from conftest import REPO, TINY_ID, TINY_NOTEBOOK, TINY_SECRET, _nbgrader_meta, hand_in, tiny_source_notebook
from course import html_safety
from course import nbgrader_steps as steps
from course.feedback import NOTE, REPEAT_NOTE, HiddenMaterial, hidden_regions, without_hidden_regions
from course.notebook_cells import cell_by_grade_id, cells_by_grade_id
from course.sample_submission import fill_answers
from lab_browser import browser_test_marks, free_port, launch

#: The page and feedback layers are tested on their own: this course grades with nbgrader's plain ``Execute``, so
#: every leak route still works while grading (the guard, which stops several of them earlier, has its own tests).
PLAIN_EXECUTE = """
from nbgrader.preprocessors import Execute as _PlainExecute  # noqa: E402

c.Autograde.autograde_preprocessors = [_PlainExecute if step is GuardedExecute else step
                                       for step in c.Autograde.autograde_preprocessors]
"""
STUDENT = "mallory"
MARKER = "expression-lab-marker"
#: The hidden test's assert line as the source notebook holds it.
HIDDEN_ASSERT = f"assert {TINY_SECRET} == 42"


def payload(route: str) -> str:
    """JavaScript that, if it ever runs, requests the marker URL, logs a console marker and writes a file into the
    server's root with the page's ``_xsrf`` cookie (``PUT /api/contents/pwned-<route>.txt``)."""
    return (f"fetch('/{MARKER}/{route}');console.log('XSS-RAN {route}');"
            f"fetch('/api/contents/pwned-{route}.txt',{{method:'PUT',headers:{{'X-XSRFToken':"
            f"decodeURIComponent((document.cookie.match(/_xsrf=([^;]+)/)||['',''])[1]),"
            f"'Content-Type':'application/json'}},body:JSON.stringify({{type:'file',format:'text',content:'x'}})}})")


def _references(text: str) -> str:
    """``text`` as HTML character references (``&#104;&#105;`` …)."""
    return "".join(f"&#{ord(ch)};" for ch in text)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def markdown_payload(tag: str) -> str:
    return (f"My answer (harmless-text-{tag}): <img src=x onerror=\"{payload('md-img-' + tag)}\"> "
            f"<svg onload=\"{payload('md-svg-' + tag)}\"></svg> "
            f"<details open ontoggle=\"{payload('md-details-' + tag)}\"><summary>more</summary>x</details> "
            f"[click me](javascript:eval(atob('{_b64(payload('md-link-' + tag))}'))) "
            f"<iframe src=\"javascript:{payload('md-iframe-' + tag)}\"></iframe>\n\n"
            f"<script>{payload('md-script-' + tag)}</script>\n")


XSS_HTML = (f"<b>html output</b><script>{payload('out-script')}</script>"
            f"<img src=x onerror=\"{payload('out-img')}\">")
SVG_PAYLOAD = (f'<svg xmlns="http://www.w3.org/2000/svg" onload="{payload("out-svg")}">'
               f'<script>{payload("out-svg-script")}</script><circle r="4"/></svg>')

#: Answer ``double`` (runs before the hidden test): the leaking hook, an output to rewrite later, and the XSS outputs.
DOUBLE_ATTACK = f"""
import base64
from IPython.display import HTML, Javascript, Markdown, SVG, display, update_display
_seen = []
def _leak(info):
    if _seen:
        earlier = "\\n".join(_seen)
        print("STORED:", earlier)
        print("B64:", base64.b64encode(earlier.encode()).decode())
        display(HTML("".join("&#%d;" % ord(ch) for ch in earlier)))
    _seen.append(info.raw_cell)
get_ipython().events.register("pre_run_cell", _leak)
display(HTML("<i>rewritten later</i>"), display_id="leak-later")
display(HTML({XSS_HTML!r}))
display(Javascript({payload("out-js")!r}))
display(SVG({SVG_PAYLOAD!r}))
display(Markdown({markdown_payload("out")!r}))
display({{"image/png": "iVBORw0KGgo=", "text/plain": "png"}}, raw=True,
        metadata={{"image/png": {{"width": "1 onerror=eval(atob(`{_b64(payload("out-width"))}`))"}}}})
"""
#: Answer ``triple`` (runs after the hidden test): the input history, and the earlier output rewritten.
TRIPLE_ATTACK = """
print("HISTORY:", In)
update_display(HTML("<pre>" + In[-2] + "</pre>"), display_id="leak-later")
"""


def tiny_source_with_written_answer():
    """The tiny source notebook plus a written (markdown) answer graded by hand, 1 point."""
    nb = tiny_source_notebook()
    nb.cells.append(new_markdown_cell("Explain `double`.", metadata=_nbgrader_meta("q_written", locked=True)))
    nb.cells.append(new_markdown_cell("### BEGIN SOLUTION\nIt doubles.\n### END SOLUTION",
                                      metadata=_nbgrader_meta("written", grade=True, solution=True, points=1)))
    return nb


def hostile_submission(release: Path, source: Path):
    nb = fill_answers(release, source)
    cell_by_grade_id(nb, "double").source += "\n" + DOUBLE_ATTACK
    cell_by_grade_id(nb, "triple").source += "\n" + TRIPLE_ATTACK
    cell_by_grade_id(nb, "written").source = markdown_payload("answer")
    # a markdown cell the student added, and the outputs the handed-in notebook claims (feedback shows these)
    nb.cells.insert(1, new_markdown_cell(markdown_payload("added")))
    cell_by_grade_id(nb, "triple").outputs = [new_output("stream", name="stdout", text="my own run: triple ok\n")]
    cell_by_grade_id(nb, "double").outputs = [
        new_output("display_data", data={"text/html": XSS_HTML.replace("out-", "handed-")}),
        new_output("display_data", data={"application/javascript": payload("handed-js"), "text/plain": "js"}),
        new_output("display_data", data={"image/svg+xml": SVG_PAYLOAD.replace("out-", "handed-")}),
        new_output("display_data", data={"text/markdown": markdown_payload("handed")}),
        new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "png"}, metadata={
            "image/png": {"width": f"1 onerror=eval(atob(`{_b64(payload('handed-width'))}`))"}}),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {
            "model_id": "m1", "version_major": 2, "version_minor": 0}, "text/plain": "widget"})]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0,
        "state": {"m1": {"model_name": "HTMLModel", "model_module": "@jupyter-widgets/controls",
                         "model_module_version": "2.0.0", "state": {"value": XSS_HTML}}}}}
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """``(course root, feedback folder)`` after one autograde and feedback of the hostile submission."""
    root = tmp_path_factory.mktemp("pages-course")
    (root / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text() + "\nc.Execute.timeout = 60\n"
                                             + PLAIN_EXECUTE)
    source = root / "solutions" / TINY_ID / TINY_NOTEBOOK
    source.parent.mkdir(parents=True)
    nbformat.write(tiny_source_with_written_answer(), source)
    steps.release(TINY_ID, root)
    hand_in(root, STUDENT, TINY_ID, hostile_submission(root / "assignments" / TINY_ID / TINY_NOTEBOOK, source),
            TINY_NOTEBOOK)
    steps.autograde(TINY_ID, STUDENT, root)
    return root, steps.generate_feedback(TINY_ID, STUDENT, root)


def _feedback_html(feedback: Path) -> str:
    pages = sorted(feedback.rglob("*.html"))
    assert pages, f"expected feedback HTML under {feedback}; found none"
    return "".join(p.read_text() for p in pages)


# --- fast: the sanitiser and the feedback rule without nbgrader ---------------------------------------------

class _ActiveContent(HTMLParser):
    """Collects what in an HTML page could run: scripts holding a payload, event handlers, ``javascript:`` URLs,
    frames, objects, forms, and image sizes that are not numbers."""

    def __init__(self):
        super().__init__()
        self.found, self._script = [], False

    def handle_starttag(self, tag, attrs):
        self._script = tag == "script"
        if tag in ("iframe", "object", "embed", "form"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") and any(m in value for m in (MARKER, "XSS-RAN", "atob(", "alert(")):
                self.found.append(f"<{tag} {name}=...>")  # the page's own handlers (formgrader) are not payloads
            if name in ("href", "src", "action") and value.strip().lower().startswith(("javascript:", "data:text")):
                self.found.append(f"<{tag} {name}={value[:20]}...>")
            if name in ("width", "height") and not re.fullmatch(r"[\d.%]*", value):
                self.found.append(f"<{tag} {name}={value[:20]}...>")

    def handle_data(self, data):
        if self._script and ("XSS-RAN" in data or MARKER in data):
            self.found.append("<script> holding a payload")

    def handle_endtag(self, tag):
        self._script = False


def active_content(page: str) -> list[str]:
    """What in ``page`` (HTML) could run a payload of this module (``[]`` when nothing)."""
    scanner = _ActiveContent()
    scanner.feed(page)
    scanner.close()
    return scanner.found


HTML_PAYLOADS = [
    XSS_HTML, SVG_PAYLOAD, html_safety.render_markdown(markdown_payload("unit")),
    f"<a href=\"javascript:{payload('a')}\">a</a><a href=\" JaVa&#115;cript:{payload('b')}\">b</a>",
    f"<iframe srcdoc=\"<script>{payload('srcdoc')}</script>\"></iframe><object data=x></object><embed src=x>",
    f"<form action=/api/contents method=post><input name=a><button formaction=\"javascript:{payload('f')}\">",
    f"<math><mtext><table><mglyph><style><img src=x onerror=\"{payload('mxss')}\">",
    f"<noscript><p title=\"</noscript><img src=x onerror={payload('noscript')}>\">",
    f"<div style=\"background:url(/{MARKER}/css)\">c</div><img src=\"/{MARKER}/img\"><a href=\"evil.html\">r</a>",
    "<script>" * 2000 + "x",  # unclosed, many: linear time
]


@pytest.mark.parametrize("fragment", HTML_PAYLOADS, ids=range(len(HTML_PAYLOADS)))
def test_clean_html_leaves_nothing_that_runs_or_calls_home(fragment):
    cleaned = html_safety.clean_html(fragment)
    assert not active_content(cleaned), f"expected nothing active after cleaning; found {active_content(cleaned)}"
    for needle in ("<script", "url(", MARKER + "/img", "evil.html", "<iframe", "<object", "<embed", "<form"):
        assert needle not in cleaned.lower(), f"expected no {needle!r} after cleaning; found {cleaned[:200]!r}"


def test_clean_html_is_quick_on_markup_built_to_be_slow():
    hostile = ["<img " + " ".join(f"a{i}=x" for i in range(20000)) + ">", "<img src=x " * 20000]
    start = time.monotonic()
    cleaned = [html_safety.clean_html(fragment) for fragment in hostile]
    seconds = time.monotonic() - start
    assert seconds < 10, f"expected hostile markup cleaned within 10 s; took {seconds:.1f} s"
    assert all("<img" not in c for c in cleaned), "expected the overlong tags shown as text"


def test_clean_html_keeps_text_tables_and_images():
    table = ('<style scoped>.dataframe td {color: red}</style><table border="1" class="dataframe"><thead><tr '
             'style="text-align: right;"><th></th><th>a</th></tr></thead><tbody><tr><th>0</th><td>1</td></tr></tbody>'
             '</table>')
    png = '<img src="data:image/png;base64,iVBORw0KGgo=" width="40" alt="plot">'
    code = '<div class="highlight"><pre><span class="k">def</span> <span class="nf">f</span>()</pre></div>'
    for fragment in (table.split("</style>")[1], png, code, "<h2>Title</h2><p>x &lt; y</p><ul><li>one</li></ul>"):
        assert html_safety.clean_html(fragment) == fragment, f"expected {fragment!r} kept as it is"
    assert ".dataframe" not in html_safety.clean_html(table), "expected a style block dropped with its text"


def test_sanitize_output_keeps_only_what_renders_safely():
    png_width = {"image/png": {"width": "1 onerror=alert(1)", "height": 30, "filenames": {"image/png": "/etc/x"}}}
    outputs = [new_output("display_data", data={"application/javascript": payload("js"), "text/plain": "js"}),
               new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "m"}}),
               new_output("display_data", data={"image/svg+xml": SVG_PAYLOAD}),
               new_output("display_data", data={"text/markdown": markdown_payload("o")}),
               new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "p"}, metadata=png_width),
               new_output("display_data", data={"image/jpeg": "not base64\" onerror=x", "text/plain": "j"}),
               new_output("execute_result", data={"text/html": XSS_HTML, "text/plain": "4"}, execution_count=1),
               new_output("stream", name="<b>stdout</b>", text="printed\n")]
    for output in outputs:
        html_safety.sanitize_output(output)
    kinds = [sorted(o.get("data", {})) for o in outputs]
    assert kinds[:7] == [["text/plain"], ["text/plain"], ["text/html"], ["text/html"], ["image/png", "text/plain"],
                         ["text/plain"], ["text/html", "text/plain"]], (
        f"expected scripts, widgets and bad images dropped, SVG and markdown turned into HTML; found {kinds}")
    assert "not shown" in outputs[1].data["text/plain"], "expected a note where nothing was left to show"
    assert outputs[2].data["text/html"].startswith('<img src="data:image/svg+xml;base64,'), "expected the SVG as image"
    assert outputs[4].metadata == {"image/png": {"height": 30}}, f"expected only a numeric size; found {outputs[4]}"
    assert outputs[6].data["text/plain"] == "4", "expected the value nbgrader scores partial credit from kept"
    assert outputs[7].name == "stdout", f"expected the stream renamed stdout; found {outputs[7].name!r}"
    for output in outputs:
        found = active_content(json.dumps(output.get("data", {})).encode().decode("unicode_escape"))
        assert not found, f"expected nothing active in {output}; found {found}"


def test_student_markdown_is_replaced_by_its_clean_rendering_and_instructor_markdown_stays():
    instructor = "Write `double(x)`. <b>Bold</b> and <img src='data:image/png;base64,iVBORw0KGgo='>"
    plain = "It doubles $x$: 2 * x."
    nb = nbformat.v4.new_notebook(cells=[new_markdown_cell(instructor), new_markdown_cell(markdown_payload("cell")),
                                         new_markdown_cell(plain)])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    removed = html_safety.sanitize_notebook(nb, trusted_text={instructor})
    assert nb.cells[0].source == instructor and nb.cells[2].source == plain, "expected clean markdown unchanged"
    rewritten = nb.cells[1].source
    assert rewritten.startswith("<div>") and "\n" not in rewritten and "harmless-text-cell" in rewritten, (
        f"expected the payload cell as one clean line of HTML; found {rewritten[:120]!r}")
    rendered = html_safety.render_markdown(rewritten)  # what the formgrader's own renderer makes of it
    assert not active_content(rendered), f"expected nothing active once rendered; found {active_content(rendered)}"
    assert "widgets" not in nb.metadata and removed, f"expected the saved widget state dropped; found {removed}"


def test_render_time_filters_clean_the_formgrader_template_on_their_own():
    """Layer 2 alone: a notebook that never went through SanitizeNotebook, rendered as the formgrader does."""
    import nbgrader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.v4.new_notebook(cells=[
        new_markdown_cell(markdown_payload("fg"), metadata=_nbgrader_meta("written", grade=True, solution=True,
                                                                           points=1)),
        new_markdown_cell(markdown_payload("fg-added")),
        nbformat.v4.new_code_cell("x", outputs=[new_output("display_data", data={"text/html": XSS_HTML}),
                                                new_output("display_data", data={"text/markdown": markdown_payload(
                                                    "fg-out")})])])
    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [str(Path(nbgrader.__file__).parent / "server_extensions" /
                                                       "formgrader" / "templates")]
    config.HTMLExporter.sanitize_html = True
    config.HTMLExporter.filters = {"clean_html": html_safety.clean_html, "markdown2html": html_safety.markdown2html}
    resources = {"base_url": "", "notebook_id": "n", "index": 0, "total": 1, "assignment_id": "a",
                 "submission_id": "s", "student": "st", "last_name": "", "first_name": "", "notebook_path": "p"}
    page, _ = HTMLExporter(config=config).from_notebook_node(nb, resources=resources)
    assert "harmless-text-fg" in page, "expected the written answer on the page"
    assert not active_content(page), f"expected nothing active on the page; found {active_content(page)}"


def test_escape_markdown_renders_untrusted_text_as_text():
    text = "file <img src=x onerror=alert(1)> [x](javascript:y) *b* `c` $d$ &amp;"
    rendered = html_safety.render_markdown(html_safety.escape_markdown(text))
    assert html_safety.visible_text(rendered) == text and not active_content(rendered), (
        f"expected the text back as plain text; found {rendered!r}")


def test_hidden_material_is_found_in_any_common_disguise_and_not_in_honest_output():
    source = tiny_source_notebook()
    test_double = cell_by_grade_id(source, "test_double").source
    regions = hidden_regions(test_double)
    visible = "\n".join(without_hidden_regions(c.source) for c in source.cells)
    material = HiddenMaterial(regions, visible)
    region = regions[0]
    disguises = {"plain": region, "repr of In": repr(["x", region]), "upper case": region.upper(),
                 "base64": base64.b64encode(region.encode()).decode(),
                 "zlib+base64": base64.b64encode(zlib.compress(region.encode())).decode(),
                 "hex": region.encode().hex(), "reversed": region[::-1], "rot13": codecs.encode(region, "rot13"),
                 "character references": _references(region), "URL-quoted": urllib.parse.quote(region),
                 "character codes": str([ord(ch) for ch in region]), "spaced out": " ".join(region),
                 "split over outputs": "\n".join(textwrap.wrap(region, 7)),
                 "the hidden assert's message": "AssertionError: expected 42, found 40",
                 "the secret name alone": f"NameError: name '{TINY_SECRET}' is not defined"}
    for name, text in disguises.items():
        assert material.found_in([text]), f"{name}: expected the hidden test found in {text[:60]!r}"
    honest = ["public check: double(2) = 4", "AssertionError: expected double(2) == 4, found 5",
              "Traceback (most recent call last):\n  Cell In[3], line 2\n    assert double(2) == 4",
              "a public test cell keeps its output", "model accuracy 0.42 after 21 epochs"]
    for text in honest:
        assert not material.found_in([text]), f"expected {text!r} not to count as a hidden test"


def _feedback_course(root: Path, student: str, autograded_cells: dict, handed_outputs: dict):
    """A course folder holding the tiny source notebook and a handed-in notebook, and the autograded notebook
    (source cells with hidden tests, as nbgrader restores them) with ``autograded_cells`` outputs; return the
    autograded notebook and the ``(config, resources)`` nbgrader would give a feedback preprocessor."""
    from traitlets.config import Config

    source = tiny_source_notebook()
    (root / "solutions" / TINY_ID).mkdir(parents=True)
    nbformat.write(source, root / "solutions" / TINY_ID / TINY_NOTEBOOK)
    handed = copy.deepcopy(source)
    for gid, outputs in handed_outputs.items():
        cell_by_grade_id(handed, gid).outputs = outputs
    folder = root / "grading" / "submitted" / student / TINY_ID
    folder.mkdir(parents=True)
    nbformat.write(handed, folder / TINY_NOTEBOOK)
    graded = copy.deepcopy(source)
    for gid, outputs in autograded_cells.items():
        cell_by_grade_id(graded, gid).outputs = outputs
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.submitted_directory = "grading/submitted"
    resources = {"nbgrader": {"student": student, "assignment": TINY_ID, "notebook": Path(TINY_NOTEBOOK).stem}}
    return graded, config, resources


def test_feedback_rule_on_an_autograded_notebook(tmp_path):
    """The rule of course.feedback without running nbgrader: test cells show the grader's run unless it repeats
    a hidden test; other cells show the handed-in outputs; the review banner goes; nothing active stays."""
    from course.feedback import ClearHiddenTestOutputs
    from course.review import BANNER_KEY

    leak = new_output("stream", name="stdout", text=f"STORED: {TINY_SECRET} = double(21)\n")
    graded, config, resources = _feedback_course(tmp_path, "eve", {
        "double": [new_output("display_data", data={"text/html": f"<pre>{_references(TINY_SECRET)}</pre>"})],
        "test_double": [leak], "triple": [new_output("stream", name="stdout", text=f"HISTORY: {TINY_SECRET}\n")],
        "test_triple": [leak], "test_public": [new_output("stream", name="stdout", text="a public test cell keeps "
                                                                                          "its output\n")]},
        {"triple": [new_output("stream", name="stdout", text="my own run\n"),
                    new_output("display_data", data={"text/html": XSS_HTML})]})
    graded.cells.insert(0, new_markdown_cell("**Flagged for review**", metadata={BANNER_KEY: True}))
    cell_by_grade_id(graded, "triple").outputs.append(new_output("error", ename="NameError", evalue=TINY_SECRET,
                                                                 traceback=[TINY_SECRET]))
    nb, _ = ClearHiddenTestOutputs(config=config).preprocess(graded, resources)
    shown = {gid: json.dumps(c.get("outputs", [])) for gid, c in cells_by_grade_id(nb).items()}
    everything = json.dumps(nb)
    assert TINY_SECRET not in everything and _references(TINY_SECRET)[:20] not in everything, (
        "expected no trace of the hidden test in the feedback notebook")
    assert "my own run" in shown["triple"] and "stopped with NameError" in shown["triple"], (
        f"expected the handed-in output and the grader's error class; found {shown['triple']}")
    assert shown["double"] == "[]", f"expected no grader output for an answer cell; found {shown['double']}"
    assert "repeats part of a hidden test" in shown["test_triple"], f"found {shown['test_triple']}"
    assert "keeps its output" in shown["test_public"], "expected an honest public test's output kept"
    assert not any(BANNER_KEY in c.metadata for c in nb.cells), "expected the review banner dropped"
    assert not active_content(everything.encode().decode("unicode_escape")), "expected nothing active"


# --- hidden tests through later cells ------------------------------------------------------------------------

@pytest.mark.slow
def test_each_leak_route_worked_while_grading(graded):
    root, _ = graded
    nb = nbformat.read(root / "grading" / "autograded" / STUDENT / TINY_ID / TINY_NOTEBOOK, as_version=4)
    text = {gid: json.dumps(cell.get("outputs", [])) for gid, cell in cells_by_grade_id(nb).items()}
    routes = {"hook printing in a later public test cell": ("test_triple", TINY_SECRET),
              "hook writing base64 in a later public test cell": ("test_public", "B64:"),
              "hook writing HTML character references": ("test_public", _references(TINY_SECRET[:8])),
              "print(In) in a later answer cell": ("triple", TINY_SECRET),
              "update_display rewriting an earlier answer cell": ("double", TINY_SECRET)}
    for route, (gid, needle) in routes.items():
        assert needle in text[gid], f"{route}: expected {needle!r} in the autograded outputs of {gid}; found none"


@pytest.mark.slow
def test_feedback_carries_no_hidden_test_in_any_form(graded):
    _, feedback = graded
    page = _feedback_html(feedback)
    encoded = {"plain": TINY_SECRET, "assert line": HIDDEN_ASSERT, "character references": _references(TINY_SECRET[:8])}
    for form, needle in encoded.items():
        assert needle not in page, f"expected no hidden test in the feedback ({form}); found {needle!r}"
    decoded = [run for run in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", page)
               if TINY_SECRET.encode() in base64.b64decode(run[:len(run) // 4 * 4])]
    assert not decoded, f"expected no hidden test in base64 in the feedback; found {decoded[0][:40]}…"
    assert NOTE.split(";")[0] in page and REPEAT_NOTE.split(":")[0] in page, (
        "expected the notes that replaced the hidden-test cell's output and the outputs repeating it")
    assert "my own run: triple ok" in page, "expected the answer cell to show the output handed in"
    assert "About this feedback." in page, "expected the note explaining the feedback at its top"


@pytest.mark.slow
def test_feedback_html_holds_no_active_content(graded):
    _, feedback = graded
    found = active_content(_feedback_html(feedback))
    assert not found, f"expected no script payload left in the feedback HTML; found {found[:10]}"


@pytest.mark.slow
def test_the_submission_is_still_graded_for_what_it_answered(graded):
    root, _ = graded
    scores = {s.cell: (s.score, s.max_score) for s in steps.cell_scores(TINY_ID, STUDENT, root)}
    assert scores["test_double"] == (2, 2) and scores["test_triple"] == (2, 2) and scores["test_public"] == (1, 1), (
        f"expected full automatic points; found {scores}")


# --- the formgrader and feedback pages in Chromium -----------------------------------------------------------

def browser_test(test):
    """Mark ``test`` slow and browser, skipped where Chromium or playwright is missing (``lab_browser``)."""
    for mark in browser_test_marks():
        test = mark(test)
    return test


class JupyterServer:
    """A Jupyter server (nbgrader's formgrader enabled, as installed) on 127.0.0.1 serving a course ``root``."""

    def __init__(self, root: Path, log: Path):
        self.root, self.port, self.token, self.log_path = root, free_port(), secrets.token_hex(16), log
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(log.parent / "jupyter-config"),
                   JUPYTER_RUNTIME_DIR=str(log.parent / "jupyter-runtime"), JUPYTER_PLATFORM_DIRS="1")
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyter"), "server", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0", "--ServerApp.allow_root=True",
             "--ServerApp.log_level=INFO"], env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=root)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Jupyter server exited with {self.process.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"the Jupyter server did not answer on port {self.port} within 60 s; see {log}")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def server(graded):
    root, _ = graded
    srv = JupyterServer(root, root.parent / f"{root.name}-server.log")
    yield srv
    srv.stop()


def _submission_id(root: Path) -> str:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'grading' / 'gradebook.db'}") as gb:
        return gb.find_submission_notebook(Path(TINY_NOTEBOOK).stem, TINY_ID, STUDENT).id


def _visit(playwright, server: JupyterServer, path: str) -> dict:
    """Log in to ``server`` (its token, once, as a login page would: the cookie then serves every page, with the
    ``_xsrf`` cookie the server's API checks) and open ``path`` in a fresh headless Chromium; return the requests,
    console lines, dialogs, status and text of the page."""
    browser = launch(playwright)
    seen = {"requests": [], "console": [], "dialogs": [], "errors": []}
    try:
        page = browser.new_page()
        page.on("request", lambda r: seen["requests"].append(r.url))
        # nothing leaves the machine (MathJax and fonts from CDNs): recorded above, then refused at once
        page.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"), lambda route: route.abort())
        page.on("console", lambda m: seen["console"].append(m.text))
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))

        def dialog(d):
            seen["dialogs"].append(d.message)
            d.dismiss()
        page.on("dialog", dialog)
        page.goto(f"{server.base}/api/status?token={server.token}")
        # from a page of the server, as a click in JupyterLab or the formgrader would (the server wants a referer)
        response = page.goto(server.base + path, wait_until="load", timeout=30_000, referer=server.base + "/tree")
        seen["status"] = response.status if response else None
        page.wait_for_timeout(1500)  # onerror/onload/ontoggle handlers and their requests
        seen["text"] = page.inner_text("body")
        for link in page.get_by_text("click me").all():  # what an instructor might click
            link.click(no_wait_after=True, timeout=5000)
        page.wait_for_timeout(500)
    finally:
        browser.close()
    return seen


def _assert_nothing_ran(seen: dict, root: Path, server: JupyterServer, page: str) -> None:
    marked = [u for u in seen["requests"] if MARKER in u or "pwned-" in u]
    assert not marked, f"{page}: expected no request from a payload; found {marked}"
    ran = [line for line in seen["console"] if "XSS-RAN" in line]
    assert not ran and not seen["dialogs"], f"{page}: expected no payload to run; found {ran + seen['dialogs']}"
    written = sorted(p.name for p in root.rglob("pwned-*"))
    assert not written, f"{page}: expected no file written through the server's API; found {written}"
    server.log.flush()
    logged = [line for line in server.log_path.read_text().splitlines() if MARKER in line or "pwned-" in line]
    assert not logged, f"{page}: expected no payload request in the server log; found {logged}"


@browser_test
def test_formgrader_submission_page_runs_no_student_script(graded, server, playwright):
    root, _ = graded
    seen = _visit(playwright, server, f"/formgrader/submissions/{_submission_id(root)}/")
    assert seen["status"] == 200, f"expected the formgrader page to load (200); found {seen['status']}"
    for text in ("harmless-text-answer", "harmless-text-added", "html output"):
        assert text in seen["text"], f"expected the page to show the submission ({text!r}); found none"
    _assert_nothing_ran(seen, root, server, "formgrader submission page")


@browser_test
def test_feedback_page_runs_no_student_script(graded, server, playwright):
    root, feedback = graded
    page = next(feedback.rglob("*.html")).relative_to(root)
    seen = _visit(playwright, server, f"/files/{page.as_posix()}")
    assert seen["status"] == 200, f"expected the feedback page to load (200); found {seen['status']}"
    assert "harmless-text-answer" in seen["text"], "expected the feedback page to show the written answer"
    _assert_nothing_ran(seen, root, server, "feedback page")
