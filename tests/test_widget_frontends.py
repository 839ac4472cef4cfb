"""The widgets' front ends without a browser: one camera start shared by the camera widgets, small JS functions.

anywidget loads a widget's ``_esm`` as one ES module, so ``widgets.frontend.compose_module`` joins each camera
widget's parts (``camera.js`` first); these checks read the parts and the composed modules. The widgets themselves
run in ``tests/test_live_emotion_browser.py`` and ``tests/test_browser.py``.
"""

from __future__ import annotations

import re

import pytest

from widgets import frontend
from widgets.capture import Camera
from widgets.frontend import CAMERA_PART, WIDGETS_DIR, compose_module, compose_script
from widgets.live_emotion import LiveEmotion

CAMERA_WIDGETS = {"Camera": Camera, "LiveEmotion": LiveEmotion}
MAX_FUNCTION_LINES = 60
JS_FILES = sorted(WIDGETS_DIR.glob("*.js"))
FRONT_END_FILES = sorted([*JS_FILES, *WIDGETS_DIR.glob("*.html")])
_TOP_LEVEL_NAME = re.compile(r"^(?:async\s+)?(?:function\*?|const|let|var|class)\s+([\w$]+)", re.MULTILINE)


def _mask(source: str) -> str:
    """``source`` with the insides of comments, strings and template literals blanked (newlines kept), so that
    braces can be counted. (Regular-expression literals are not recognised; the widgets' JS has none.)"""
    out, i, n = list(source), 0, len(source)
    while i < n:
        two = source[i : i + 2]
        if two in ("//", "/*"):
            end = source.find("\n" if two == "//" else "*/", i + 2)
            end = n if end < 0 else end + (0 if two == "//" else 2)
        elif source[i] in "'\"`":
            end = i + 1
            while end < n and source[end] != source[i]:
                end += 2 if source[end] == "\\" else 1
            end += 1
        else:
            i += 1
            continue
        for k in range(i, min(end, n)):
            if out[k] != "\n":
                out[k] = " "
        i = end
    return "".join(out)


def _matching(masked: str, start: int, open_: str, close: str) -> int:
    """Index of the bracket closing the one at ``start``; -1 when it is never closed."""
    depth = 0
    for k in range(start, len(masked)):
        depth += (masked[k] == open_) - (masked[k] == close)
        if depth == 0:
            return k
    return -1


def js_functions(source: str) -> list[tuple[str, int, int]]:
    """``(name, first line, lines)`` of every function with a block body in ``source``: ``function`` declarations
    and expressions (named ``<anonymous>`` without a name) and arrow functions ``=> {`` (named after the ``const``
    or property they are assigned to on their line, else ``<arrow>``); a function's lines run from the one it
    starts on to the one with its closing brace."""
    masked, found = _mask(source), []
    for match in re.finditer(r"\bfunction\b\s*\*?\s*([\w$]*)\s*\(|=>\s*\{", masked):
        line_start = masked.rfind("\n", 0, match.start()) + 1
        if match.group(0).startswith("function"):
            name = match.group(1) or "<anonymous>"
            params_end = _matching(masked, match.end() - 1, "(", ")")
            body = masked.find("{", params_end)
        else:
            assigned = re.search(
                r"([\w$]+)\s*[=:]\s*(?:async\s*)?(?:\([^()]*\)|[\w$]+)\s*$", masked[line_start : match.start()]
            )
            name = assigned.group(1) if assigned else "<arrow>"
            body = match.end() - 1
        end = _matching(masked, body, "{", "}")
        first = masked.count("\n", 0, match.start()) + 1
        last = masked.count("\n", 0, end) + 1 if end >= 0 else masked.count("\n") + 1
        found.append((name, first, last - first + 1))
    return found


@pytest.mark.parametrize("widget", CAMERA_WIDGETS.values(), ids=CAMERA_WIDGETS.keys())
def test_each_camera_widget_carries_the_shared_camera_start_once(widget):
    module = str(widget._esm)
    camera = (WIDGETS_DIR / CAMERA_PART).read_text(encoding="utf-8").rstrip()
    starts = module.count("function startCamera(")
    assert starts == 1, f"expected {widget.__name__}'s module to declare startCamera once, found {starts}"
    copies = module.count(camera)
    assert copies == 1, f"expected {CAMERA_PART} once, as it is, in {widget.__name__}'s module, found {copies}"
    exports = re.findall(r"^export default .*$", module, re.MULTILINE)
    assert exports == ["export default { render };"], f"expected one `export default {{ render }};`, found {exports}"
    names = _TOP_LEVEL_NAME.findall(module)
    twice = sorted({name for name in names if names.count(name) > 1})
    assert not twice, f"expected each top-level name once in {widget.__name__}'s one module, found twice: {twice}"


def test_getusermedia_is_called_only_in_camera_js():
    users = [path.name for path in FRONT_END_FILES if "getUserMedia" in path.read_text(encoding="utf-8")]
    assert users == [CAMERA_PART], f"expected getUserMedia in {CAMERA_PART} only, found it in {users}"


@pytest.mark.parametrize("path", JS_FILES, ids=[p.name for p in JS_FILES])
def test_every_js_function_is_short(path):
    source = path.read_text(encoding="utf-8")
    masked = _mask(source)
    balance = (masked.count("{") - masked.count("}"), masked.count("(") - masked.count(")"))
    assert balance == (0, 0), (
        f"expected balanced braces and parentheses outside strings in {path.name}, off by {balance}"
    )
    functions = js_functions(source)
    assert functions or "function" not in source, f"expected the functions of {path.name} found, found none"
    long = [f"{name} (line {first}): {lines} lines" for name, first, lines in functions if lines > MAX_FUNCTION_LINES]
    assert not long, f"expected every function in {path.name} at most {MAX_FUNCTION_LINES} lines, found {long}"


def test_the_function_finder_measures_declarations_and_arrows():
    source = (
        "// a comment with a brace {\n"
        "function outer(a, { b = 1 }) {\n"
        "  const s = '}';\n"
        "  const inner = (x) => {\n"
        "    return `${x} }`;\n"
        "  };\n"
        "  return inner;\n"
        "}\n"
        "export default { render: function () { return 1; } };\n"
    )
    found = js_functions(source)
    expected = [("outer", 2, 7), ("inner", 4, 3), ("<anonymous>", 9, 1)]
    assert found == expected, f"expected {expected}, found {found}"


def test_compose_module_joins_parts_in_order_and_refuses_what_would_break_one_module(tmp_path, monkeypatch):
    monkeypatch.setattr(frontend, "WIDGETS_DIR", tmp_path)
    (tmp_path / "a.js").write_text("function a() { return 1; }\n")
    (tmp_path / "b.js").write_text("function render() { return a(); }\nexport default { render };\n")
    (tmp_path / "exports.js").write_text("export function a() {}\n")
    module = compose_module("a.js", "b.js")
    assert module.index("function a()") < module.index("function render()"), f"expected a.js first, got {module}"
    assert "// ---- widgets/a.js" in module, f"expected each part named in the module, got {module}"
    with pytest.raises(ValueError, match="no import or export"):
        compose_module("exports.js", "b.js")
    with pytest.raises(ValueError, match="expected `export default`"):
        compose_module("a.js")
    with pytest.raises(ValueError, match="each front-end part once"):
        compose_module("a.js", "a.js", "b.js")
    with pytest.raises(FileNotFoundError, match="missing.js"):
        compose_module("a.js", "missing.js")


def test_compose_script_joins_a_workers_parts_and_refuses_any_import_or_export(tmp_path, monkeypatch):
    monkeypatch.setattr(frontend, "WIDGETS_DIR", tmp_path)
    (tmp_path / "a.js").write_text("function a() { return 1; }\n")
    (tmp_path / "worker.js").write_text("self.onmessage = () => self.postMessage(a());\n")
    (tmp_path / "module.js").write_text("function render() {}\nexport default { render };\n")
    script = compose_script("a.js", "worker.js")
    assert script.index("function a()") < script.index("self.onmessage"), f"expected a.js first, got {script}"
    assert "// ---- widgets/worker.js" in script, f"expected each part named in the script, got {script}"
    with pytest.raises(ValueError, match="no import or export in a classic script"):
        compose_script("a.js", "module.js")
    with pytest.raises(FileNotFoundError, match="missing.js"):
        compose_script("a.js", "missing.js")


def test_the_live_widgets_search_worker_is_one_classic_script():
    """The face-search worker's parts join into a script with each top-level name once and no module syntax."""
    from widgets.live_emotion import SEARCH_WORKER_PARTS

    script = compose_script(*SEARCH_WORKER_PARTS)
    names = _TOP_LEVEL_NAME.findall(script)
    twice = sorted({name for name in names if names.count(name) > 1})
    assert not twice, f"expected each top-level name once in the worker's script, found twice: {twice}"
    assert "self.onmessage" in script and "function findFace(" in script, "expected the worker's loop and findFace"
