"""The one exception type users see, and the words for the faults the environment causes.

``AuditError`` is a single line naming the file or field and what to do; the CLI prints it
and exits 2. ``os_error_text`` turns an ``OSError`` (a full disk, a read-only store, the
file-size limit…) into such a line, so an environment fault never reads as a bug.
"""

from __future__ import annotations

import errno

#: errno → (what happened, what to do). The faults a user can fix, in plain words.
_OS_FAULTS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", "free some space or choose another --store"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose another --store"),
    errno.EFBIG: (
        "file too large (over the file-size limit, `ulimit -f`, or the file system's maximum)",
        "raise the limit or choose another --store",
    ),
    errno.EROFS: ("read-only file system", "choose a writable --store"),
    errno.EACCES: ("permission denied", "check the folder's permissions or choose another --store"),
    errno.EPERM: ("operation not permitted", "check the folder's permissions"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.ENOTDIR: ("a part of the path is not a folder", "check the path"),
    errno.EISDIR: ("is a folder, not a file", "check the path"),
    errno.EMFILE: ("too many open files", "raise `ulimit -n` or use fewer --workers"),
    errno.ENFILE: ("too many open files in the system", "use fewer --workers"),
    errno.ENOMEM: ("out of memory", "use a smaller --batch-size or fewer --workers"),
    errno.EIO: ("input/output error (a failing disk or network file system)", "check the disk"),
}

#: Faults of writing: a stage that meets one ends the run rather than recording a failure.
WRITE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES})


class AuditError(Exception):
    """A user-facing failure. The CLI prints its message on one line and exits non-zero."""


def os_fault(exc: OSError) -> tuple[str, str]:
    """(the cause in words, what to do — "" when nothing specific) of an ``OSError``."""
    cause, todo = _OS_FAULTS.get(exc.errno or -1, ("", ""))
    if not cause:
        lines = (exc.strerror or str(exc) or type(exc).__name__).splitlines()
        cause = lines[0] if lines else type(exc).__name__
    return cause, todo


def os_error_text(exc: OSError) -> str:
    """One line for ``exc``: ``<path>: <cause>; <what to do>`` (the path when the error has one)."""
    cause, todo = os_fault(exc)
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{cause}" + (f"; {todo}" if todo else "")
