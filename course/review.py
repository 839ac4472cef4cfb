"""Submissions flagged for a person to review: what a grading step found that a score must not hide.

Trusted grading code (never the student's kernel) records a flag when it finds a submission doing something a
fair submission never does: links or special files in the submission folder, tampering with the test machinery,
a submitted model whose separate scoring disagrees with the notebook, a model that looks trained on the faces it is
graded on. A flag never changes a score by itself; it is shown in ``grading/autograde/<assignment>.csv``, the class
report (``python -m course report``) and at the top of the autograded notebooks the formgrader shows.

Flags live in ``grading/autograde/review/<assignment>/<student>.json``: a JSON list of ``{"source": str,
"reason": str}`` objects (``source`` names the step that found it: ``"intake"``, ``"sandbox"``, ``"guard"``,
``"static-scan"``, ``"model-scoring"``, ``"contamination"``). Each autograde run of a student starts by clearing
them (:func:`clear`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from . import REPO_ROOT

#: Metadata key of the banner cell put at the top of a flagged autograded notebook (feedback drops that cell).
BANNER_KEY = "expression_lab_review"


@dataclass(frozen=True)
class Flag:
    """One finding: the grading step that found it and what it found (plain text, may name student files)."""

    source: str
    reason: str


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` as one line a terminal, a spreadsheet or a web page shows as it is: whitespace runs become one
    space, and every other character that is not printable (control characters such as ESC, which a terminal
    obeys, Unicode format characters such as the bidirectional overrides) is written as its escape (``\\x1b``,
    ``\\u202e``); cut to ``limit`` characters with "…" when given. For text that may hold what a student chose
    (file names, grade ids, messages their code printed)."""
    words = " ".join(str(text).split())
    line = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in words)
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"


def _path(assignment: str, student: str, root: Path) -> Path:
    for name, value in (("assignment", assignment), ("student", student)):
        if not value or "/" in value or value in (".", ".."):
            raise ValueError(f"{name} {value!r}: expected a plain nbgrader id (no '/', not '.' or '..')")
    return root / "grading" / "autograde" / "review" / assignment / f"{student}.json"


def read(assignment: str, student: str, root: Path = REPO_ROOT) -> list[Flag]:
    """The flags recorded for ``student``'s submission of ``assignment``, oldest first ([] when none).

    Raises:
        ValueError: the review file is not a JSON list of ``{"source", "reason"}`` objects (the message names it).
    """
    path = _path(assignment, student, root)
    if not path.is_file():
        return []
    try:
        return [Flag(str(f["source"]), str(f["reason"])) for f in json.loads(path.read_text())]
    except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(
            f'{path}: expected a JSON list of {{"source", "reason"}} objects, the kit\'s review record; found '
            f"what it cannot read ({type(err).__name__}: {err}). Move the file away to start the record again."
        ) from None


def add(
    assignment: str, student: str, source: str, reasons: list[str] | tuple[str, ...], root: Path = REPO_ROOT
) -> list[Flag]:
    """Record one flag per reason (duplicates kept once); return every flag of the submission."""
    flags = read(assignment, student, root)
    for reason in reasons:
        flag = Flag(source, one_line(reason))
        if flag not in flags:
            flags.append(flag)
    path = _path(assignment, student, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(f) for f in flags], indent=1) + "\n")
    tmp.replace(path)
    return flags


def clear(assignment: str, student: str, root: Path = REPO_ROOT) -> None:
    """Forget the flags of ``student``'s submission (a new autograde run of it starts)."""
    _path(assignment, student, root).unlink(missing_ok=True)


def summary(flags: list[Flag], limit: int = 600) -> str:
    """One line for a table cell: ``source: reason; …`` cut to ``limit`` characters ("" when no flag)."""
    text = "; ".join(f"{f.source}: {f.reason}" for f in flags)
    return text if len(text) <= limit else text[: limit - 1] + "…"
