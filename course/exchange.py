"""``nbgrader collect`` made safe against a student who writes into the exchange's inbound folder by hand.

The exchange's ``inbound`` folder is writable by every student (``nbgrader submit`` copies into it as the student).
nbgrader's own collect step (0.9.6, ``nbgrader.exchange.default.ExchangeCollect``) trusts what it finds there:

- it copies each submission with ``shutil.copytree``, which follows links: a link handed in as ``notes.txt`` to the
  instructor's ``solutions/<id>/<notebook>.ipynb`` was collected as a regular file holding the hidden tests, which
  the student's code then read while it was graded; a FIFO stopped the copy, and with it the whole collect step;
- it only warns when a submission folder named ``alice+<id>+<time>`` belongs to another user, and still collects
  it: any student could replace a classmate's submission with a later one.

:class:`SafeCollect` (``c.ExchangeFactory.collect = "course.exchange.SafeCollect"`` in ``nbgrader_config.py``)
collects only folders that are real folders owned by the student they name, and copies them through folder
descriptors, never following a link, even one swapped in while the copy runs: links are copied as links (the kit's
intake, :func:`course.nbgrader_steps.intake`, then moves them out and flags them), FIFOs, sockets and device files
are left out, and so is a file that belongs to another user than the folder's (a hard link to the instructor's
file, where ``fs.protected_hardlinks`` is 0), each said in the log.
"""

from __future__ import annotations

import datetime
import glob
import os
import shutil
import stat

from nbgrader.exchange.default import ExchangeCollect
from nbgrader.utils import ignore_patterns

from .submission_files import copy_file_no_follow

try:
    import pwd
except ImportError:  # Windows, where nbgrader's exchange does not run
    pwd = None


def owner_name(info: os.stat_result) -> str:
    """The user name owning a file (its ``lstat``); "" where user names are unknown (Windows)."""
    if pwd is None:
        return ""
    try:
        return pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        return f"uid {info.st_uid}"


#: The student of an inbound folder whose name nbgrader cannot read (``<student>+<assignment>+<time>``).
_UNREADABLE = "\0unreadable"


class SafeCollect(ExchangeCollect):
    """nbgrader's collect step with the two checks of the module docstring."""

    def _path_to_record(self, path):
        """nbgrader's reading of an inbound folder's name; a name it cannot read (``alice+ps1+not-a-time``) stopped
        the whole collect step, and is now left out (said in the log)."""
        try:
            return super()._path_to_record(path)
        except Exception as err:  # noqa: BLE001 - ExchangeError or ValueError: one folder never stops the class
            self.log.error("Not collected: %s is not named <student>+<assignment>+<time> (%s)", path, err)
            return {"username": _UNREADABLE, "filename": os.path.basename(path), "timestamp": datetime.datetime.min}

    def init_src(self):
        """nbgrader's choice of the newest submission of each student (before the due date when asked), among the
        folders that are real folders owned by the student they name (``ExchangeCollect.init_src``, redone with that
        filter: a folder left out never hides an older, genuine one)."""
        super().init_src()
        self._owners: dict[str, int] = {}  # each folder chosen, by the user id that owned it when chosen
        student_id = self.coursedir.student_id or "*"
        pattern = os.path.join(self.inbound_path, f"{student_id}+{self.coursedir.assignment_id}+*")
        by_student: dict[str, list[dict]] = {}
        for path in glob.glob(pattern):
            record = self._path_to_record(path)
            try:
                info = os.lstat(path)
            except OSError as err:  # removed since nbgrader listed it
                self.log.error("Not collected: %s (%s)", path, err.strerror)
                continue
            if record["username"] == _UNREADABLE:
                continue
            if not stat.S_ISDIR(info.st_mode):
                self.log.error("Not collected: %s is not a folder (a link or a file)", path)
                continue
            owner = owner_name(info)
            if self.check_owner and owner not in ("", record["username"]):
                self.log.error(
                    "Not collected: %s claims to be submitted by %s but belongs to %s", path, record["username"], owner
                )
                continue
            self._owners[path] = info.st_uid
            by_student.setdefault(record["username"], []).append(record)
        self.src_records = []
        for records in by_student.values():
            records = self._sort_by_timestamp(records)
            if self.duedate is not None and self.before_duedate:
                before = [r for r in records if r["timestamp"] <= self.duedate]
                records = before or records
            self.src_records.append(records[0])

    def copy_files(self):
        """nbgrader's copy of the chosen submissions, one at a time: one the copy fails on (nested a thousand folders
        deep, past nbgrader's size limit, removed meanwhile) is left out and said in the log, and the others are
        collected (nbgrader's own step stopped at the first failure)."""
        records = list(self.src_records)
        try:
            for record in records or [None]:
                self.src_records = [record] if record else []
                try:
                    super().copy_files()
                except Exception as err:  # noqa: BLE001 - one student's folder never stops the class's collect
                    where = record["filename"] if record else self.inbound_path
                    self.log.error("Not collected: %s (%s: %s)", where, type(err).__name__, err)
        finally:
            self.src_records = records

    def do_copy(self, src, dest, log=None):
        """nbgrader's copy (size limit, ``CourseDirectory.ignore``/``include``/``max_file_size``, group sharing),
        made through folder descriptors (:meth:`_copy_folder`): no link is ever followed, even one the student swaps
        in while the copy runs (the student owns the folder being read); links are copied as links (but for
        ``timestamp.txt``, which nbgrader reads), FIFOs, sockets and device files left out, each logged."""
        size = self.get_size(src)
        if size > 1000 * self.coursedir.max_dir_size:
            self.log.error("Directory size is too big")
            raise RuntimeError(
                f"Directory size is too big. Size is {size}, maximum size is {1000 * self.coursedir.max_dir_size}"
            )
        nbgrader_ignore = ignore_patterns(
            exclude=self.coursedir.ignore,
            include=self.coursedir.include,
            max_file_size=self.coursedir.max_file_size,
            log=self.log,
        )
        try:
            top = os.open(src, _FOLDER_FLAGS)
        except OSError as err:  # replaced by a link or a file since it was chosen
            self.log.error("Not collected: %s changed while it was collected (%s)", src, err)
            return
        try:
            owner = os.fstat(top).st_uid
            if self._owners.get(src, owner) != owner:
                self.log.error("Not collected: %s changed owner while it was collected", src)
                return
            self._left = 1000 * self.coursedir.max_dir_size  # nbgrader's size limit, kept while copying
            self._copy_folder(top, src, dest, nbgrader_ignore, depth=0, owner=owner if self.check_owner else None)
        except BaseException:
            if os.path.isdir(dest) and not os.path.islink(dest):  # never half a submission graded
                shutil.rmtree(dest)
            raise
        finally:
            os.close(top)
        if self.coursedir.groupshared:  # as nbgrader, never through a link
            for folder, _, files in os.walk(dest):
                for path, bits in [(folder, 0o2770)] + [(os.path.join(folder, f), 0o660) for f in files]:
                    mode = os.lstat(path).st_mode
                    if not stat.S_ISLNK(mode) and mode & bits != bits:
                        try:
                            os.chmod(path, (mode | bits) & (0o2777 if bits == 0o2770 else 0o777))
                        except PermissionError:
                            self.log.warning("Could not update permissions of %s to make it groupshared", path)

    def _copy_folder(self, folder_fd: int, shown: str, dest: str, ignore, depth: int, owner: int | None) -> None:
        """Copy the folder open at ``folder_fd`` (its path ``shown``, for messages and nbgrader's ``ignore``) into
        the new folder ``dest``: every entry opened relative to its folder's descriptor with ``O_NOFOLLOW``, so
        a folder or file replaced by a link meanwhile is refused, never followed; a file that does not belong to
        ``owner`` (the submission folder's owner, when owners are checked) is refused: a hard link the student
        made to a file of the instructor's (possible where ``fs.protected_hardlinks`` is 0) is not copied; so is a
        file past nbgrader's size limit once open (``self._left`` bytes left: a file measured small by nbgrader's
        check and made a sparse 3 GiB the moment it was opened was copied whole)."""
        os.mkdir(dest)
        entries, owners = {}, {}
        for name in sorted(os.listdir(folder_fd)):
            try:
                info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
                entries[name], owners[name] = info.st_mode, info.st_uid
            except OSError as err:
                self.log.warning("Not collected: %s (%s)", os.path.join(shown, name), err.strerror)
        for name, mode in list(entries.items()):
            if stat.S_ISREG(mode) and owner is not None and owners[name] != owner:
                self.log.warning("Not collected: %s belongs to another user (a hard link?)", os.path.join(shown, name))
                del entries[name]
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                self.log.warning("Not collected: %s is not a regular file, folder or link", os.path.join(shown, name))
                del entries[name]
            elif stat.S_ISLNK(mode) and depth == 0 and name == "timestamp.txt":
                self.log.warning("Not collected: %s is a link", os.path.join(shown, name))
                del entries[name]
        for name in sorted(set(entries) - set(ignore(shown, list(entries)))):
            source, target, mode = os.path.join(shown, name), os.path.join(dest, name), entries[name]
            try:
                if stat.S_ISLNK(mode):  # kept as a link: the kit's intake moves it out and flags it
                    os.symlink(os.readlink(name, dir_fd=folder_fd), target)
                elif stat.S_ISDIR(mode):
                    if depth + 1 > MAX_DEPTH:
                        self.log.warning("Not collected: %s is nested deeper than %d folders", source, MAX_DEPTH)
                        continue
                    sub = os.open(name, _FOLDER_FLAGS, dir_fd=folder_fd)
                    try:
                        self._copy_folder(sub, source, target, ignore, depth + 1, owner)
                    finally:
                        os.close(sub)
                else:
                    self._left -= copy_file_no_follow(name, target, dir_fd=folder_fd, owner=owner, max_bytes=self._left)
            except OSError as err:
                self.log.warning("Not collected: %s changed while it was collected (%s)", source, err)


#: How a folder of a submission is opened: never through a link.
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
#: Folder levels below a submission folder that are collected.
MAX_DEPTH = 16
