"""``nbgrader collect`` made safe against a student who writes into the exchange's inbound folder by hand.

The exchange's ``inbound`` folder is writable by every student (``nbgrader submit`` copies into it as the student).
nbgrader's own collect step (0.9.6, ``nbgrader.exchange.default.ExchangeCollect``) trusts what it finds there:

- it copies each submission with ``shutil.copytree``, which follows links: a link handed in as ``notes.txt`` to the
  instructor's ``solutions/<id>/<notebook>.ipynb`` was collected as a regular file holding the hidden tests, which
  the student's code then read while it was graded; a FIFO stopped the copy, and with it the whole collect step;
- it only warns when a submission folder named ``alice+<id>+<time>`` belongs to another user, and still collects
  it: any student could replace a classmate's submission with a later one.

:class:`SafeCollect` (``c.ExchangeFactory.collect = "course.exchange.SafeCollect"`` in ``nbgrader_config.py``)
collects only folders that are real folders owned by the student they name, copies links as links (never
followed: the kit's intake, :func:`course.nbgrader_steps.intake`, then moves them out and flags them) and leaves
out FIFOs, sockets and device files, saying so in the log.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat

from nbgrader.exchange.default import ExchangeCollect
from nbgrader.utils import ignore_patterns

try:
    import pwd
except ImportError:  # Windows, where nbgrader's exchange does not run
    pwd = None


def owner_name(path: str) -> str | None:
    """The user name owning ``path`` itself (a link is not followed); None when it is not a real folder."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        return None
    if pwd is None:
        return ""
    try:
        return pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        return f"uid {info.st_uid}"


class SafeCollect(ExchangeCollect):
    """nbgrader's collect step with the two checks of the module docstring."""

    def init_src(self):
        """nbgrader's choice of the newest submission of each student (before the due date when asked), among the
        folders that are real folders owned by the student they name (``ExchangeCollect.init_src``, redone with that
        filter: a folder left out never hides an older, genuine one)."""
        super().init_src()
        student_id = self.coursedir.student_id or "*"
        pattern = os.path.join(self.inbound_path, f"{student_id}+{self.coursedir.assignment_id}+*")
        by_student: dict[str, list[dict]] = {}
        for path in glob.glob(pattern):
            record = self._path_to_record(path)
            owner = owner_name(path)
            if self.check_owner and owner is not None and owner not in ("", record["username"]):
                self.log.error(
                    "Not collected: %s claims to be submitted by %s but belongs to %s", path, record["username"], owner
                )
                continue
            if owner is None:
                self.log.error("Not collected: %s is not a folder (a link or a file)", path)
                continue
            by_student.setdefault(record["username"], []).append(record)
        self.src_records = []
        for records in by_student.values():
            records = self._sort_by_timestamp(records)
            if self.duedate is not None and self.before_duedate:
                before = [r for r in records if r["timestamp"] <= self.duedate]
                records = before or records
            self.src_records.append(records[0])

    def do_copy(self, src, dest, log=None):
        """nbgrader's copy (size limit, ``CourseDirectory.ignore``/``include``/``max_file_size``, group sharing), but
        links are copied as links and FIFOs, sockets and device files are left out (each logged)."""
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

        def ignore(directory, names):
            left_out = set()
            for name in names:
                mode = os.lstat(os.path.join(directory, name)).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                    self.log.warning(
                        "Not collected: %s is not a regular file, folder or link", os.path.join(directory, name)
                    )
                    left_out.add(name)
            return left_out | set(nbgrader_ignore(directory, [n for n in names if n not in left_out]))

        shutil.copytree(src, dest, symlinks=True, ignore=ignore)
        if self.coursedir.groupshared:  # as nbgrader, never through a link
            for folder, _, files in os.walk(dest):
                for path, bits in [(folder, 0o2770)] + [(os.path.join(folder, f), 0o660) for f in files]:
                    mode = os.lstat(path).st_mode
                    if not stat.S_ISLNK(mode) and mode & bits != bits:
                        try:
                            os.chmod(path, (mode | bits) & (0o2777 if bits == 0o2770 else 0o777))
                        except PermissionError:
                            self.log.warning("Could not update permissions of %s to make it groupshared", path)
