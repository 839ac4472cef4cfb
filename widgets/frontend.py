"""A widget's front end joined from parts: one ES module for anywidget's ``_esm`` out of several files.

anywidget hands the browser a widget's ``_esm`` as one ES module (a string, or a file read into one) and imports
it from a blob URL, so a relative ``import "./camera.js"`` inside it has nothing to resolve against. The camera
widgets keep their front end in small files beside their modules instead (``camera.js``, the camera start shared
by ``capture.js`` and the live widget; ``live_emotion_timings.js``, ``live_emotion_painter.js``,
``live_emotion_sender.js`` and ``live_emotion.js``), and :func:`compose_module` joins the files in a fixed order
into the string the widget class sets as ``_esm``. The parts hold plain top-level declarations (functions and
constants) that share the module's scope; none imports anything and only the last one has ``export default``. The
result is what a single file would be, so it works in JupyterLab offline; each part begins with a
``// ---- widgets/<file>`` line so that a browser error can be traced to its file.

:func:`compose_script` joins parts the same way into a classic script, for a Web Worker (the live widget's face
search runs in one, started from a blob URL: a worker can import nothing either).

Edits to the parts reach a widget when its Python module is imported again (restart the kernel): anywidget's file
watching (``ANYWIDGET_HMR``) applies to an ``_esm`` file, not to a composed string.
"""

from __future__ import annotations

import re
from pathlib import Path

WIDGETS_DIR = Path(__file__).resolve().parent
#: The camera start (``getUserMedia``, no camera or refused, stopping the tracks) every camera widget shares.
CAMERA_PART = "camera.js"

_MODULE_STATEMENT = re.compile(r"^\s*(import|export)\b", re.MULTILINE)
_EXPORT_DEFAULT = re.compile(r"^export default\b", re.MULTILINE)


def _read_parts(parts: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(name, text)`` of each part, after checking there is at least one, none twice, each a file."""
    if not parts:
        raise ValueError("expected at least one front-end part, got none")
    if len(set(parts)) != len(parts):
        raise ValueError(f"expected each front-end part once, got {parts}")
    texts = []
    for name in parts:
        path = WIDGETS_DIR / name
        if not path.is_file():
            raise FileNotFoundError(f"front-end part {name} is not a file in {WIDGETS_DIR}")
        texts.append((name, path.read_text(encoding="utf-8")))
    return texts


def _join(texts: list[tuple[str, str]]) -> str:
    return "\n".join(f"// ---- widgets/{name}\n{text.rstrip()}\n" for name, text in texts)


def compose_module(*parts: str) -> str:
    """The ES module made of the front-end files ``parts`` (names of files in ``widgets/``), joined in that order.

    Raises:
        ValueError: no parts, a part named twice, an ``import`` or ``export`` statement in a part other than the
            last, or a last part without ``export default``.
        FileNotFoundError: a part that is not a file in ``widgets/``.
    """
    texts = _read_parts(parts)
    for i, (name, text) in enumerate(texts):
        last = i == len(texts) - 1
        if not last and (found := _MODULE_STATEMENT.search(text)):
            raise ValueError(
                f"{name}: expected no import or export in a part before the last (the parts share one module), "
                f"found {found.group(0).strip()!r}"
            )
        if last and not _EXPORT_DEFAULT.search(text):
            raise ValueError(f"{name}: expected `export default` in the last part (the module's export), found none")
    return _join(texts)


def compose_script(*parts: str) -> str:
    """The classic script (a Web Worker's, which the page starts from a blob URL and which can import nothing) made
    of the front-end files ``parts``, joined in that order: plain declarations sharing one scope, as in a module.

    Raises:
        ValueError: no parts, a part named twice, or an ``import`` or ``export`` statement in any part.
        FileNotFoundError: a part that is not a file in ``widgets/``.
    """
    texts = _read_parts(parts)
    for name, text in texts:
        if found := _MODULE_STATEMENT.search(text):
            raise ValueError(
                f"{name}: expected no import or export in a classic script's part, found {found.group(0).strip()!r}"
            )
    return _join(texts)
