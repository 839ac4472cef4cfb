"""What a submission folder may hold before any step with the grader's rights touches it.

nbgrader's grader-side steps follow symbolic links: ``autograde`` copies the submitted files with ``shutil.copy``
and ends by ``chmod``-ing every file of the autograded folder, ``generate_feedback`` copies its non-notebook files
into the student's feedback, ``release_feedback`` publishes them. A link left in a submission folder therefore
reaches whatever it points at with the grader's rights (the gradebook, the solutions, a classmate's work, a
root-only file), and a FIFO or device file can hang or feed a step. So before nbgrader touches a folder the kit
keeps only **regular files and folders**: symbolic links, hard links to files with other names (``st_nlink`` > 1,
which may be an outside file), FIFOs, sockets and device files are moved into a quarantine folder (renamed, never
opened or followed) and listed for the instructor, and a folder over the caps (:class:`Caps`) is refused.

Everything here uses ``lstat`` and ``os.scandir`` without following links.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .settings import SUBMISSION_CAPS, positive_setting

MIB = 2**20
#: Files a browser would run as a page or script of the formgrader's own origin, which serves every file of an
#: autograded folder at ``/formgrader/submissions/<id>/<file>`` unsandboxed: quarantined like links, whatever
#: this host's MIME table says of them.
ACTIVE_CONTENT_SUFFIXES = (".html", ".htm", ".xhtml", ".xht", ".svg", ".svgz", ".xml", ".xsl", ".xslt", ".js", ".mjs")
#: What in a MIME type makes a browser run it as a document or script (HTML, XHTML, SVG, any XML, which may carry
#: an XSLT that writes HTML, JavaScript, multipart pages and saved web pages). The type is this host's, as
#: :func:`mimetypes.guess_type` reads the name, the way the formgrader's tornado ``StaticFileHandler`` chooses the
#: ``Content-Type``: a list of suffixes always misses one (Debian's ``/etc/mime.types`` serves ``.shtml`` as
#: ``text/html``).
ACTIVE_MIME_PARTS = ("html", "xml", "svg", "javascript", "ecmascript", "xsl", "multipart/", "message/")


def is_active_content(name: str) -> bool:
    """Whether a browser could run a file called ``name`` as a page or script when the formgrader serves it: a
    suffix of :data:`ACTIVE_CONTENT_SUFFIXES`, or a MIME type (this host's table, as the server reads the name)
    holding one of :data:`ACTIVE_MIME_PARTS`. A name with no known type is served as ``application/octet-stream``
    (downloaded, never run)."""
    if name.lower().endswith(ACTIVE_CONTENT_SUFFIXES):
        return True
    kind, _ = mimetypes.guess_type(name)  # strict, as the server reads it
    return kind is not None and any(part in kind.lower() for part in ACTIVE_MIME_PARTS)


@dataclass(frozen=True)
class Caps:
    """What one submission folder may hold in all (each may be overridden by its variable, see :meth:`from_env`).

    ``files`` regular files (the notebooks, their model files and run records, a few photos),
    ``bytes`` their total size (ps1's ``model_2.keras`` is under 20 MB; a class of 200 must fit on a disk),
    ``depth`` folder levels below the submission folder,
    ``cell_text`` characters of cell text in each notebook (:func:`cell_text_over`).
    """

    files: int = SUBMISSION_CAPS["files"].default
    bytes: int = SUBMISSION_CAPS["bytes"].default
    depth: int = SUBMISSION_CAPS["depth"].default
    cell_text: int = SUBMISSION_CAPS["cell_text"].default

    @classmethod
    def from_env(cls, env: dict | None = None) -> Caps:
        """The declared defaults (``course.settings.SUBMISSION_CAPS``), each overridden by its variable:
        ``EXPRESSION_LAB_SUBMISSION_MAX_FILES``, ``…_MAX_BYTES``, ``…_MAX_DEPTH``, ``…_MAX_CELL_TEXT``.

        Raises:
            ValueError: a variable is not a positive integer.
        """
        env = os.environ if env is None else env
        return cls(**{attr: positive_setting(env, s.name, s.default) for attr, s in SUBMISSION_CAPS.items()})


@dataclass
class Inspection:
    """What :func:`inspect_folder` found under a folder (paths relative to it, POSIX style)."""

    files: list[str] = field(default_factory=list)  #: regular files with no other name
    bytes: int = 0  #: their total size (files nbgrader ignores left out)
    ignored: list[str] = field(default_factory=list)  #: regular files nbgrader never copies (``ignore`` patterns)
    folders: list[str] = field(default_factory=list)
    unsafe: list[tuple[str, str]] = field(default_factory=list)  #: (path, what it is) of everything else
    too_deep: list[str] = field(default_factory=list)  #: folders below ``Caps.depth`` (not walked)

    def over_caps(self, caps: Caps) -> list[str]:
        """Why the folder exceeds ``caps`` (empty when it does not), each reason with its fix."""
        reasons = []
        if len(self.files) > caps.files:
            reasons.append(
                f"{len(self.files)} files, more than the {caps.files} a submission may hold "
                f"({SUBMISSION_CAPS['files'].name})"
            )
        if self.bytes > caps.bytes:
            reasons.append(
                f"{self.bytes / MIB:.1f} MiB of files, more than the {caps.bytes / MIB:.0f} MiB a "
                f"submission may hold ({SUBMISSION_CAPS['bytes'].name})"
            )
        if self.too_deep:
            reasons.append(f"folders nested deeper than {caps.depth} levels ({self.too_deep[0]})")
        return reasons


#: Cells one handed-in notebook may hold (the longest reference notebook has 57): an empty cell costs the
#: formgrader and feedback about a millisecond to render, and 256 MiB hold millions.
MAX_CELLS = 1000


def cell_text_over(folder: Path, found: Inspection, caps: Caps) -> list[str]:
    """Why notebooks of ``folder`` (``found.files`` ending in ``.ipynb``) are too costly to render: one reason per
    notebook whose cells' sources (code, markdown, raw) add up to more than ``caps.cell_text`` characters, or
    that holds more than :data:`MAX_CELLS` cells, counted in the notebook as nbgrader reads it (converted to
    nbformat 4 from any older format, whose cells keep their text under other keys).

    The formgrader and feedback render every cell on the grader's side, unsandboxed: syntax highlighting took 55 s
    per million characters of code, markdown cleaning 10 s per million. A notebook that cannot be read is left to
    nbgrader, which refuses it.
    """
    import nbformat

    reasons = []
    for rel in (f for f in found.files if f.endswith(".ipynb")):
        try:  # nbformat's own reading and conversion, without the schema check nbgrader leaves to later steps
            nb = nbformat.convert(nbformat.reader.reads((folder / rel).read_bytes().decode("utf-8")), 4)
            cells = [c for c in nb.get("cells", []) if isinstance(c, dict)]
            chars = sum(len(nbformat_text(c.get("source", ""))) for c in cells)
        except Exception:  # noqa: BLE001 - whatever makes the reading fail makes nbgrader's fail too
            continue
        if chars > caps.cell_text:
            reasons.append(
                f"{rel} holds {chars:,} characters of cell text (code, markdown, raw), more than the "
                f"{caps.cell_text:,} a notebook may hold ({SUBMISSION_CAPS['cell_text'].name}): the formgrader and "
                "feedback would take minutes to show it"
            )
        elif len(cells) > MAX_CELLS:
            reasons.append(
                f"{rel} holds {len(cells):,} cells, more than the {MAX_CELLS:,} a notebook may hold: the formgrader "
                "and feedback would take minutes to show it"
            )
    return reasons


def nbformat_text(value) -> str:
    """A notebook text field as one string: a string, or a list of strings (other items left out)."""
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def describe_mode(mode: int, nlink: int = 1) -> str:
    """What a file of ``lstat`` mode ``mode`` is, in words ("symbolic link", "FIFO", …)."""
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    if stat.S_ISREG(mode) and nlink > 1:
        return f"hard link ({nlink} names: may be a file outside the submission)"
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISDIR(mode):
        return "folder"
    return "special file"


def inspect_folder(
    folder: Path, caps: Caps | None = None, *, active_content: bool = False, ignore: tuple[str, ...] | list[str] = ()
) -> Inspection:
    """Walk ``folder`` without following links and sort what it holds into safe and unsafe entries; with
    ``active_content``, files a browser would run (:data:`ACTIVE_CONTENT_SUFFIXES`) count as unsafe too.

    Regular files that nbgrader never copies (``ignore``: the patterns of nbgrader's ``CourseDirectory.ignore``)
    are listed apart and do not count against the caps. Which files those are is nbgrader's own answer
    (``nbgrader.utils.find_all_files``, the function its steps copy with), not a second reading of the patterns:
    it matches them with ``glob``, which ``fnmatch`` does not imitate (``*.pyc`` matches ``.x.pyc`` for ``fnmatch``,
    not for ``glob``; a folder named ``d[0]`` is a pattern to ``glob``), and a file that the kit left out of the
    count but nbgrader copied would pass the caps. Past :data:`MAX_IGNORED_FACTOR` times the file cap of
    candidates, none is left out of the count.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        NotADirectoryError: ``folder`` is a link or not a folder (it is never followed).
    """
    caps = caps or Caps.from_env()
    mode = os.lstat(folder).st_mode
    if not stat.S_ISDIR(mode):
        raise NotADirectoryError(f"{folder}: expected a folder, found a {describe_mode(mode)} (not followed)")
    found = Inspection()

    def walk(path: Path, rel: str, depth: int, ignored: bool) -> None:
        with os.scandir(path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                name = f"{rel}{entry.name}"
                st = entry.stat(follow_symlinks=False)
                kind = describe_mode(st.st_mode, st.st_nlink)
                skip = ignored or any(fnmatch.fnmatch(entry.name, pattern) for pattern in ignore)
                if kind == "regular file" and active_content and is_active_content(entry.name):
                    served = mimetypes.guess_type(entry.name)[0] or "a page"
                    found.unsafe.append(
                        (name, f"page or script a browser would run (formgrader serves it as is, as {served})")
                    )
                elif kind == "regular file" and skip:
                    found.ignored.append(name)
                elif kind == "regular file":
                    found.files.append(name)
                    found.bytes += st.st_size
                elif kind == "folder":
                    if depth >= caps.depth:
                        found.too_deep.append(name)
                    else:
                        found.folders.append(name)
                        walk(Path(entry.path), name + "/", depth + 1, skip)
                else:
                    found.unsafe.append((name, kind))

    walk(folder, "", 0, False)
    if found.ignored:
        copied = _copied_by_nbgrader(folder, ignore, found.ignored, caps)
        found.ignored = [name for name in found.ignored if name not in copied]
        found.files = sorted(found.files + list(copied))
        found.bytes += sum(os.lstat(folder / name).st_size for name in copied)
    return found


#: How many times ``Caps.files`` files may look ignored before the kit stops asking nbgrader about each (its glob
#: lists a folder once per file and pattern) and counts them all against the caps.
MAX_IGNORED_FACTOR = 4


def _copied_by_nbgrader(folder: Path, ignore, candidates: list[str], caps: Caps) -> set[str]:
    """Which of ``candidates`` (paths relative to ``folder``) nbgrader's steps would copy all the same."""
    if len(candidates) > MAX_IGNORED_FACTOR * caps.files:
        return set(candidates)
    from nbgrader.utils import find_all_files

    copied = find_all_files(str(folder), list(ignore))
    return {Path(p).relative_to(folder).as_posix() for p in copied} & set(candidates)


def quarantine_unsafe(
    folder: Path,
    quarantine: Path,
    caps: Caps | None = None,
    *,
    active_content: bool = False,
    ignore: tuple[str, ...] | list[str] = (),
) -> tuple[Inspection, list[str]]:
    """Move every entry of ``folder`` that is not a regular file or folder (with ``active_content``: also pages
    and scripts, see :func:`inspect_folder`) into ``quarantine`` (same relative path; renamed, never opened or
    followed); return the inspection and one reason per entry moved.

    Raises:
        FileNotFoundError, NotADirectoryError: as :func:`inspect_folder`.
    """
    found = inspect_folder(folder, caps, active_content=active_content, ignore=ignore)
    reasons = []
    for rel, kind in found.unsafe:
        target = quarantine / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(target):
            os.unlink(target) if not target.is_dir() or target.is_symlink() else shutil.rmtree(target)
        os.rename(folder / rel, target)
        detail = ""
        if kind == "symbolic link":
            detail = f" to {os.readlink(target)!r}"
        reasons.append(
            f"{rel}: {'' if kind.startswith('page') else 'a '}{kind}{detail}, removed before grading "
            f"(kept in {quarantine.name}/ for you)"
        )
    return found, reasons


def nbgrader_ignore(root: Path) -> list[str]:
    """The ``CourseDirectory.ignore`` patterns of the course at ``root`` (its ``nbgrader_config.py``; nbgrader's
    default when the file sets none): names nbgrader never copies out of a submission."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = root / "nbgrader_config.py"
    if config.is_file():
        loaded = PyFileConfigLoader(config.name, path=str(root)).load_config()
        if "ignore" in loaded.CourseDirectory:
            return list(loaded.CourseDirectory.ignore)
    return list(CourseDirectory.class_traits()["ignore"].default_value)


def copy_regular_files(
    source: Path, target: Path, caps: Caps | None = None, *, skip_suffixes: tuple[str, ...] = (".ipynb",)
) -> list[str]:
    """Copy the regular files and folders of ``source`` into ``target`` (created), never following a link and
    never copying a special file, within ``caps``; files ending in ``skip_suffixes`` are left out.

    Returns one reason per entry left out (links, special files, what exceeds the caps).
    """
    caps = caps or Caps.from_env()
    found = inspect_folder(source, caps)
    left_out = [f"{rel}: a {kind}, not copied" for rel, kind in found.unsafe]
    left_out += [f"{rel}: nested deeper than {caps.depth} levels, not copied" for rel in found.too_deep]
    target.mkdir(parents=True, exist_ok=True)
    for rel in found.folders:
        (target / rel).mkdir(exist_ok=True)
    count = total = 0
    for rel in found.files:
        if rel.endswith(skip_suffixes):
            continue
        src = source / rel
        size = os.lstat(src).st_size
        if count + 1 > caps.files or total + size > caps.bytes:
            left_out.append(f"{rel}: past the caps of {caps.files} files / {caps.bytes / MIB:.0f} MiB, not copied")
            continue
        copy_file_no_follow(src, target / rel)
        count, total = count + 1, total + size
    return left_out


def copy_file_no_follow(
    src: Path | str,
    dst: Path | str,
    *,
    dir_fd: int | None = None,
    owner: int | None = None,
    max_bytes: int | None = None,
) -> int:
    """Copy one regular file's bytes: opened with ``O_NOFOLLOW`` (a link swapped in meanwhile is refused) and
    checked to be a regular file after opening; the copy is a new file (an existing ``dst`` is replaced).
    ``dir_fd``: ``src`` is a name in the folder open at that descriptor. ``owner``: a user id the file must belong
    to once open (a hard link a student made in their own folder to a file of another user keeps that user as
    its owner). ``max_bytes``: the most the file may hold once open (it may have grown since it was measured: a
    sparse 3 GiB made the moment it was opened). At most the file's size once open is copied; returns the bytes
    copied.

    Raises:
        OSError: ``src`` is a link (``O_NOFOLLOW``), not a regular file once open, not ``owner``'s, or larger
            than ``max_bytes``.
    """
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0), dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{src}: not a regular file")
        if owner is not None and info.st_uid != owner:
            raise OSError(f"{src}: belongs to user id {info.st_uid}, not to the submission's owner (a hard link?)")
        if max_bytes is not None and info.st_size > max_bytes:
            raise OSError(f"{src}: holds {info.st_size:,} bytes once open, more than the {max_bytes:,} left to copy")
        if os.path.lexists(dst):
            os.unlink(dst)
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:  # at most the size it had once open: a file grown meanwhile (a sparse 3 GiB) is not copied past it
            left = info.st_size
            while left > 0 and (chunk := os.read(fd, min(MIB, left))):
                os.write(out, chunk)
                left -= len(chunk)
        finally:
            os.close(out)
        return info.st_size - left
    finally:
        os.close(fd)
