"""Pages built from a submission never run the student's code: outputs and student text are sanitised HTML.

The formgrader shows an autograded notebook as one page of the Jupyter server, with the instructor's login
cookie and ``_xsrf`` token; the feedback HTML is one more such page. nbconvert writes a cell's ``text/html``,
``text/markdown``, ``application/javascript`` and widget outputs into that page as they are, and the formgrader's
and feedback's templates (nbgrader's ``formgrade`` and ``feedback``) render markdown cells with
``markdown2html`` and no cleaning, whatever ``HTMLExporter.sanitize_html`` says. A ``display(HTML("<script>…"))``
or a written answer holding ``<img src=x onerror=…>`` therefore runs in the instructor's browser, where it can
call the server's API as the instructor (write files, start an unsandboxed kernel).

Two layers, both from this module:

1. :class:`SanitizeNotebook`, an nbconvert preprocessor, cleans the notebook itself: nbgrader runs it last in
   ``c.Autograde.autograde_preprocessors`` (so the autograded notebook *file* the formgrader, feedback and
   reports read is clean) and :class:`course.feedback.ClearHiddenTestOutputs` runs it on feedback.

   - Every output: ``text/html`` goes through :func:`clean_html`; ``text/markdown`` becomes cleaned HTML;
     ``image/svg+xml`` becomes an ``<img>`` of the SVG (a browser runs no script of an SVG shown as an image);
     ``image/png`` and ``image/jpeg`` stay when they are base64 and nothing else; ``text/plain`` and
     ``text/latex`` stay (the templates escape them; MathJax is loaded with its ``Safe`` extension).
     Everything else (``application/javascript``, widget views, plotly, vega, PDF, unknown types) is dropped;
     an output left with nothing to show says so in one line of text. Output metadata keeps only numeric
     image ``width``/``height`` (nbconvert writes them into an unquoted attribute) and ``unconfined``;
     ``filenames`` and ``isolated`` go. Streams keep only the names ``stdout``/``stderr``.
   - Markdown and raw cells that hold student text (any whose text is not, verbatim, the text of a markdown or raw
     cell of the assignment's source or release notebook) are rendered with nbconvert's own markdown renderer,
     attachments included, and cleaned; when cleaning changes anything, the cell's text becomes the cleaned HTML
     as one line (``<div>…</div>``, which every markdown renderer passes through as it is) and its attachments
     go. Instructor cells stay as they are.
   - Cell tags that are not plain words go, and so does the notebook's saved widget state (``widgets``), which
     nbconvert hands to the widget manager it loads from a CDN.

2. Render-time filters for ``HTMLExporter`` (formgrader and feedback), so that a notebook that never went
   through the preprocessor (graded before it was configured, or by another tool) is cleaned as well:
   :func:`markdown2html` (markdown rendered, then :func:`clean_html`) replaces nbconvert's filter of that name,
   which the nbgrader templates call for every markdown cell and ``text/markdown`` output, and :func:`clean_html`
   replaces nbconvert's ``clean_html`` (applied to ``text/html`` outputs when ``HTMLExporter.sanitize_html`` is
   on; nbconvert's own escapes ``<p>``, ``<img>`` and ``<th>`` into visible text). With ``sanitize_html`` on,
   the templates also leave out ``application/javascript`` and widget outputs.

What :func:`clean_html` keeps (an allowlist, applied by ``bleach``, the library nbconvert itself uses): text,
headings, paragraphs, lists, tables, code, emphasis, ``<details>``; images only as ``data:`` PNG, JPEG, GIF,
WebP or SVG; links only to ``http(s)``/``mailto`` addresses and ``#`` anchors (a relative link would open a
file of the submission folder, which the formgrader serves as a page of the server); ``style`` only with
colours, alignment, borders, padding and sizes (no ``url(``, no escapes); classes only of one to three letters
(Pygments' highlighting) and a few known ones; no ``id`` (a student's ``id`` could shadow a formgrader input).
Scripts, ``<style>`` blocks, event handlers, ``javascript:`` URLs, iframes, objects, embeds, forms and inputs
go, and the text of ``<script>``/``<style>``-like elements goes with them. A tag with more than
:data:`MAX_ATTRIBUTES` attributes is shown as text (html5lib's time grows with the square of a tag's attributes).
Cleaning runs at about 150-200 kB of dense markup a second; what bounds a submission's outputs bounds its cost.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import bleach
from bleach.css_sanitizer import CSSSanitizer
from jinja2 import pass_context
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_output
from traitlets import Bool

#: Tags :func:`clean_html` keeps (everything else is removed, its text kept as text).
ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "acronym",
        "b",
        "blockquote",
        "br",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "details",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
    }
)
#: Elements whose content is never text for a reader: removed with their content (before bleach, which would
#: otherwise keep a script's code as visible text; bleach alone already makes them harmless).
DROPPED_WITH_CONTENT = (
    "script",
    "style",
    "template",
    "noscript",
    "title",
    "textarea",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "object",
    "select",
    "svg",
    "math",
)
#: CSS properties a ``style`` attribute may set (none of them takes a URL or moves an element over the page).
ALLOWED_CSS_PROPERTIES = frozenset(
    {
        "color",
        "background-color",
        "text-align",
        "vertical-align",
        "font-weight",
        "font-style",
        "font-size",
        "font-family",
        "text-decoration",
        "white-space",
        "border",
        "border-collapse",
        "border-color",
        "border-style",
        "border-width",
        "border-spacing",
        "padding",
        "padding-left",
        "padding-right",
        "padding-top",
        "padding-bottom",
        "width",
        "min-width",
        "max-width",
        "height",
        "line-height",
    }
)
#: ``data:`` images an ``<img>`` may show (a browser runs no script of an image, SVG included).
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]+", re.IGNORECASE)
_SAFE_CLASS = re.compile(r"[a-z]{1,3}[0-9]?|highlight|dataframe|anchor-link")
_NUMBER = re.compile(r"\d{1,5}(\.\d{1,3})?%?")
_BAD_CSS = re.compile(r"url\s*\(|\\|expression|image|@|var\s*\(|/\*|attr\s*\(", re.IGNORECASE)
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
_OPENING = re.compile(rf"<({'|'.join(DROPPED_WITH_CONTENT)})\b[^>]{{0,4000}}>", re.IGNORECASE)
_CLOSING = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in DROPPED_WITH_CONTENT}
_TAG = re.compile(r"<[^>]*>")
#: a start tag as a browser (and html5lib) reads it: up to the first ``>`` outside quotes
_START_TAG = re.compile(r"<[A-Za-z](?:[^>\"']|\"[^\"]*\"|'[^']*')*")
#: html5lib takes time quadratic in a tag's attributes (20,000 take 17 s): a tag with more is shown as text
MAX_ATTRIBUTES = 256
_PLAIN_WORD = re.compile(r"[\w-]{1,64}")
#: the start of a start or end tag (group 1: ``/`` of an end tag, group 2: the name); one inside an attribute's
#: value counts too, which errs towards text
_TAG_EDGE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)")
#: Elements with no end tag: they never nest.
VOID_ELEMENTS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
#: html5lib takes time faster than quadratic in how deep elements nest (``<div>`` 100,000 times: 34 s; pandas
#: tables nest 6 deep): a start tag past this depth is shown as text.
MAX_NESTING = 128
#: The HTML standard's formatting elements: a browser (and html5lib) re-opens those left open in every later
#: block, so their number multiplies the cost of each block.
FORMATTING_ELEMENTS = frozenset("a b big code em font i nobr s small strike strong tt u".split())
#: Formatting elements left open (``<p><b>x</p>`` 50,000 times: 183 s in html5lib): one past this is shown as text.
MAX_OPEN_FORMATTING = 32
#: Characters of HTML cleaned as HTML, and start tags in it; a fragment with more is shown as text. html5lib walks a
#: tree in time quadratic in an element's children (``<p><b>x</b></p>`` 20,000 times: 16 s), so no cap on nesting
#: alone bounds it; a pandas table of 60 rows and 20 columns is about 40,000 characters and 1,300 start tags (97,000
#: characters styled with ``df.style``).
MAX_CLEANED_CHARS = 262_144
MAX_START_TAGS = 4_000
#: Where an HTML start tag may begin (html5lib's tokenizer: ``<`` and a letter).
_START = re.compile(r"<[A-Za-z]")
#: Put before an HTML fragment too long to clean, shown as text (``{}``: its length).
TOO_LONG_HTML_NOTE = "<p>[HTML of {:,} characters, too large to show safely: its text follows as it was written]</p>"
#: What :func:`clean_html` makes of a fragment too long to clean (alone, or as :func:`as_markdown_block` renders
#: it): no ``<`` but the kit's own tags, so it is shown as it is when cleaned again (rendering an autograded notebook).
_SHOWN_AS_TEXT = re.compile(
    r"\s*(?:<div>)?"
    + re.escape(TOO_LONG_HTML_NOTE).replace(re.escape("{:,}"), "[0-9,]{1,20}")
    + r"<pre>[^<]*</pre>(?:</div>)?\s*"
)

#: Output types nbconvert renders safely as they are (after :func:`sanitize_output`).
IMAGE_MIMETYPES = ("image/png", "image/jpeg")
#: What an output that had nothing safe to show says instead (``{}`` is filled with the types removed).
REMOVED_OUTPUT_NOTE = (
    "[output not shown: {} can run code in the browser, and pages built from a submission never run its code]"
)


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    """bleach's attribute filter: True when ``name="value"`` may stay on ``<tag>``."""
    if name in ("title", "alt", "dir", "lang"):
        return True
    if name == "class":
        return all(_SAFE_CLASS.fullmatch(c) for c in value.split())
    if name == "style":
        return not _BAD_CSS.search(value)
    if name == "align":
        return value.lower() in ("left", "right", "center", "justify")
    if tag == "a" and name == "href":
        v = value.strip().lower()
        return v.startswith(("http://", "https://", "mailto:")) or (v.startswith("#") and len(v) > 1)
    if tag == "img" and name == "src":
        return bool(_DATA_IMAGE.fullmatch(value.strip()))
    if name in ("width", "height") and tag in ("img", "table", "td", "th", "col"):
        return bool(_NUMBER.fullmatch(value.strip()))
    if name in ("colspan", "rowspan", "span", "start", "value") and tag in ("td", "th", "col", "colgroup", "ol", "li"):
        return value.strip().isdigit()
    if name == "border" and tag == "table":
        return value.strip().isdigit()
    if name == "open" and tag == "details":
        return True
    if name == "type" and tag == "ol":
        return value in ("1", "a", "A", "i", "I")
    return False


_CLEANER = bleach.sanitizer.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=_allow_attribute,
    protocols={"http", "https", "mailto", "data"},
    strip=True,
    strip_comments=True,
    css_sanitizer=CSSSanitizer(allowed_css_properties=ALLOWED_CSS_PROPERTIES),
)


def _drop_content(text: str) -> str:
    """``text`` without the :data:`DROPPED_WITH_CONTENT` elements that are closed (linear time)."""
    parts, pos, unclosed = [], 0, set()
    while match := _OPENING.search(text, pos):
        name = match.group(1).lower()
        end = None if name in unclosed else _CLOSING[name].search(text, match.end())
        if end is None:  # no closing tag later on: leave it to bleach
            unclosed.add(name)
            parts.append(text[pos : match.end()])
            pos = match.end()
        else:
            parts.append(text[pos : match.start()])
            pos = end.end()
    parts.append(text[pos:])
    return "".join(parts)


def _defuse_huge_tags(text: str) -> str:
    """``text`` with every ``<`` of a start tag holding more than :data:`MAX_ATTRIBUTES` attributes escaped."""

    def defuse(match: re.Match) -> str:
        tag = match.group(0)
        return tag.replace("<", "&lt;") if len(tag.split()) > MAX_ATTRIBUTES else tag

    return _START_TAG.sub(defuse, text)


def _defuse_deep_nesting(text: str) -> str:
    """``text`` with the ``<`` escaped of every start tag past :data:`MAX_NESTING` open elements, or of a formatting
    element past :data:`MAX_OPEN_FORMATTING` open ones (linear time). An end tag closes the innermost open element
    of its name and those inside it, a stray one nothing; a ``/`` before ``>`` closes nothing (HTML ignores it);
    an element a browser would close by itself (``<p>`` after ``<p>``) counts as open: that errs towards text."""
    parts, pos, open_names, formatting = [], 0, [], {}
    for match in _TAG_EDGE.finditer(text):
        name = match.group(2).lower()
        if match.group(1):
            if name in open_names:
                del open_names[len(open_names) - 1 - open_names[::-1].index(name) :]
            if formatting.get(name):
                formatting[name] -= 1
            continue
        if name in VOID_ELEMENTS:
            continue
        is_formatting = name in FORMATTING_ELEMENTS
        if len(open_names) >= MAX_NESTING or (is_formatting and sum(formatting.values()) >= MAX_OPEN_FORMATTING):
            parts += [text[pos : match.start()], "&lt;"]
            pos = match.start() + 1
            continue
        open_names.append(name)
        if is_formatting:
            formatting[name] = formatting.get(name, 0) + 1
    parts.append(text[pos:])
    return "".join(parts)


def clean_html(text: Any) -> str:
    """``text`` (HTML; ``bytes`` are read as UTF-8, anything else as ``str(text)``) with only the allowlisted
    markup of the module docstring left: no script, event handler, ``javascript:`` URL, frame, object, form or
    style block survives, whatever the browser's parsing quirks (bleach parses as a browser does, html5lib).
    Text over :data:`MAX_CLEANED_CHARS` characters or :data:`MAX_START_TAGS` start tags is shown as text (escaped,
    after a note), never parsed.

    Also a Jinja filter: ``c.HTMLExporter.filters = {"clean_html": clean_html}`` makes nbconvert's
    ``sanitize_html`` use it.
    """
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    if len(text) > MAX_CLEANED_CHARS or len(_START.findall(text)) > MAX_START_TAGS:
        if _SHOWN_AS_TEXT.fullmatch(text):  # cleaned before, and nothing but text since
            return text
        return TOO_LONG_HTML_NOTE.format(len(text)) + f"<pre>{html.escape(text)}</pre>"
    return _CLEANER.clean(_defuse_deep_nesting(_defuse_huge_tags(_drop_content(text))))


def visible_text(fragment: str) -> str:
    """The text a reader sees in an HTML fragment, roughly (tags dropped, entities decoded, spaces collapsed)."""
    return " ".join(html.unescape(_TAG.sub(" ", _drop_content(fragment))).split())


def render_markdown(source: str, attachments: Mapping[str, Any] | None = None) -> str:
    """``source`` rendered to HTML by nbconvert's own markdown renderer (the one the formgrader and feedback
    templates use, math kept for MathJax, ``attachment:`` images embedded), *not yet cleaned*.

    A reference to a missing attachment or anything else the renderer refuses gives the source as escaped text.
    """
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    try:
        renderer = IPythonRenderer(escape=False, attachments=dict(attachments or {}), exclude_anchor_links=True)
        return MarkdownWithMath(renderer=renderer).render(source)
    except Exception:  # noqa: BLE001 (whatever a hostile cell makes the renderer raise, show it as text)
        return "<pre>" + html.escape(source) + "</pre>"


def safe_markdown_html(source: str, attachments: Mapping[str, Any] | None = None) -> str:
    """``source`` (markdown) rendered and cleaned: :func:`clean_html` of :func:`render_markdown`."""
    return clean_html(render_markdown(source, attachments))


def as_markdown_block(fragment: str) -> str:
    """Cleaned HTML as markdown that renders to exactly that HTML: one line ``<div>…</div>`` (a CommonMark HTML
    block of one line; line breaks become ``&#10;``, which HTML reads as the same character)."""
    return "<div>" + fragment.replace("\r", "").replace("\n", "&#10;") + "</div>"


def escape_markdown(text: str) -> str:
    """``text`` as markdown that renders to exactly that text (HTML and markdown punctuation escaped): for trusted
    code that writes untrusted strings (file names, student ids) into a markdown cell."""
    return html.escape(re.sub(r"([\\`*_{}\[\]()#+\-.!|~$])", r"\\\1", text), quote=False)


@pass_context
def markdown2html(context, source: str) -> str:
    """Jinja filter replacing nbconvert's ``markdown2html`` in ``HTMLExporter`` (``c.HTMLExporter.filters``):
    the markdown rendered as nbconvert does (the cell's attachments included), then :func:`clean_html`."""
    cell = context.get("cell") or {}
    attachments = cell.get("attachments", {}) if hasattr(cell, "get") else {}
    return safe_markdown_html(str(source), attachments)


def joined(value: Any) -> str:
    """A notebook text field as one string: ``source`` and stream ``text`` may be stored as a list of lines; any
    other value (a display's JSON data: nested lists of numbers failed the grading) as JSON."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _base64(value: str) -> bool:
    if not _BASE64.fullmatch(value):
        return False
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _safe_image_metadata(meta: Any) -> dict:
    out = {}
    if isinstance(meta, Mapping):
        for key in ("width", "height"):
            value = meta.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 100000:
                out[key] = value
        if meta.get("unconfined") is True:
            out["unconfined"] = True
    return out


def sanitize_output(output: NotebookNode) -> list[str]:
    """Make one output (``NotebookNode``, edited in place) safe to render; return what was removed (mime types
    or parts, e.g. ``["application/javascript", "text/html (cleaned)"]``; ``[]`` when nothing was).

    Rules: see the module docstring. An output type nbformat does not define becomes a one-line note.
    """
    removed: list[str] = []
    kind = output.get("output_type")
    if kind == "stream":
        if output.get("name") not in ("stdout", "stderr"):
            removed.append(f"stream name {str(output.get('name'))[:40]!r}")
            output["name"] = "stdout"
        output["text"] = joined(output.get("text", ""))
        return removed
    if kind == "error":
        output["ename"], output["evalue"] = str(output.get("ename", "")), str(output.get("evalue", ""))
        tb = output.get("traceback", [])
        output["traceback"] = [str(line) for line in tb] if isinstance(tb, list) else [str(tb)]
        return removed
    if kind not in ("display_data", "execute_result"):
        note = REMOVED_OUTPUT_NOTE.format(f"an output of type {str(kind)[:40]!r}")
        output.clear()
        output.update(new_output("stream", name="stdout", text=note + "\n"))
        return [f"output type {str(kind)[:40]!r}"]
    data = output.get("data", {})
    data = data if isinstance(data, Mapping) else {}
    meta = output.get("metadata", {})
    meta = meta if isinstance(meta, Mapping) else {}
    safe: dict[str, str] = {}
    for mime, raw in data.items():
        value = joined(raw)
        if mime in ("text/plain", "text/latex"):
            safe[mime] = value
        elif mime == "text/html":
            cleaned = clean_html(value)
            if cleaned != value:
                removed.append("text/html (cleaned)")
            if visible_text(cleaned) or "<img" in cleaned:
                safe[mime] = cleaned
        elif mime in IMAGE_MIMETYPES:
            if _base64(value):
                safe[mime] = "".join(value.split())
            else:
                removed.append(f"{mime} (not base64)")
        else:
            removed.append(mime)
    if "text/html" not in safe and "text/markdown" in data:
        cleaned = safe_markdown_html(joined(data["text/markdown"]))
        if visible_text(cleaned) or "<img" in cleaned:
            safe["text/html"] = cleaned
    if "text/html" not in safe and "image/svg+xml" in data:
        svg = joined(data["image/svg+xml"]).encode("utf-8", "replace")
        safe["text/html"] = f'<img src="data:image/svg+xml;base64,{base64.b64encode(svg).decode("ascii")}">'
    if not safe:
        dropped = [m for m in removed if not m.startswith("text/html")] or ["this output"]
        safe["text/plain"] = REMOVED_OUTPUT_NOTE.format(", ".join(sorted(set(dropped)))[:300])
    output["data"] = safe
    safe_meta = {mime: m for mime in IMAGE_MIMETYPES if mime in safe and (m := _safe_image_metadata(meta.get(mime)))}
    if set(meta) - set(safe_meta):
        removed.append("output metadata")
    output["metadata"] = safe_meta
    return removed


def _text_cells(nb: Mapping[str, Any]) -> set[str]:
    return {joined(c.get("source", "")) for c in nb.get("cells", []) if c.get("cell_type") in ("markdown", "raw")}


def trusted_text_cells(notebooks: Iterable[Path]) -> set[str]:
    """The text of every markdown and raw cell of the given (instructor) notebooks: a cell of a submission whose
    text is exactly one of these was written by the instructor. Missing or unreadable files are skipped."""
    import nbformat

    texts: set[str] = set()
    for path in notebooks:
        try:
            texts |= _text_cells(nbformat.read(str(path), as_version=4))
        except (OSError, ValueError):
            continue
    return texts


def sanitize_cell(cell: NotebookNode, trusted_text: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Make one cell (edited in place) safe to render; return what was removed (``[]`` when nothing was).

    ``trusted_text``: texts of instructor markdown/raw cells (:func:`trusted_text_cells`) left as they are.
    """
    removed: list[str] = []
    meta = cell.get("metadata", {})
    tags = meta.get("tags")
    if tags is not None:
        kept = [t for t in tags if isinstance(t, str) and _PLAIN_WORD.fullmatch(t)] if isinstance(tags, list) else []
        if kept != tags:
            meta["tags"] = kept
            removed.append("cell tags")
    kind = cell.get("cell_type")
    if kind == "code":
        for output in cell.get("outputs", []):
            removed += sanitize_output(output)
        if cell.pop("attachments", None):
            removed.append("attachments")
    elif kind in ("markdown", "raw"):
        source = joined(cell.get("source", ""))
        if source in trusted_text:
            return removed
        attachments = cell.get("attachments") or {}
        rendered = render_markdown(source, attachments) if kind == "markdown" else source
        cleaned = clean_html(rendered)
        if cleaned != rendered or attachments:
            cell["source"] = as_markdown_block(cleaned) if kind == "markdown" else cleaned
            cell.pop("attachments", None)
            removed.append(f"{kind} cell markup")
    return removed


def sanitize_notebook(nb: NotebookNode, trusted_text: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Make a whole notebook (edited in place) safe to render; return ``"cell N: what"`` for each removal.

    For trusted grading code outside nbconvert too, e.g. after writing a review banner into an autograded
    notebook. ``trusted_text`` as for :func:`sanitize_cell`.
    """
    removed = []
    if nb.get("metadata", {}).pop("widgets", None) is not None:
        removed.append("notebook: saved widget state")
    for n, cell in enumerate(nb.get("cells", [])):
        removed += [f"cell {n}: {what}" for what in dict.fromkeys(sanitize_cell(cell, trusted_text))]
    return removed


def assignment_notebooks(config, resources: Mapping[str, Any]) -> list[Path]:
    """The instructor's versions of the notebook nbgrader is converting: ``[source, release]`` paths from
    nbgrader's ``CourseDirectory`` (``config``) and ``resources["nbgrader"]`` (``assignment``, ``notebook``);
    ``[]`` outside nbgrader."""
    info = resources.get("nbgrader") or {}
    assignment, notebook = info.get("assignment"), info.get("notebook")
    if not assignment or not notebook:
        return []
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    return [
        Path(coursedir.format_path(folder, ".", assignment)) / f"{notebook}.ipynb"
        for folder in (coursedir.source_directory, coursedir.release_directory)
    ]


class SanitizeNotebook(Preprocessor):
    """nbconvert/nbgrader preprocessor: :func:`sanitize_notebook` with the instructor's markdown trusted.

    Append to ``c.Autograde.autograde_preprocessors`` (the autograded notebook file is clean) in
    ``nbgrader_config.py``; :class:`course.feedback.ClearHiddenTestOutputs` runs it on feedback. Outside nbgrader
    (no ``resources["nbgrader"]``) every markdown cell counts as student text.
    """

    #: nbconvert's preprocessors start disabled and nbgrader registers its list without enabling them
    enabled = Bool(True, help="Whether to sanitise (leave on: pages built from submissions need it)").tag(config=True)

    def preprocess(self, nb, resources):
        trusted = trusted_text_cells(assignment_notebooks(self.config, resources))
        removed = sanitize_notebook(nb, trusted)
        if removed:
            who = resources.get("nbgrader", {})
            self.log.info(
                "Sanitised %s/%s/%s for the browser: %s",
                who.get("student"),
                who.get("assignment"),
                who.get("notebook"),
                "; ".join(removed)[:2000],
            )
        return nb, resources
