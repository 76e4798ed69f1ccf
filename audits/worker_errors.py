"""DataLoader worker failures as one line: the original error, not the worker's traceback.

A worker that raises is re-raised by PyTorch in the main process with the worker's whole
traceback inside the message ("Caught RuntimeError in DataLoader worker process 0. Original
Traceback …"); a worker that dies says only its pid. ``worker_failure`` unwraps both: faults of
the machine (shared memory, the file-size limit, memory, open files) become an ``AuditError``
with what to do; anything else keeps its type with the original one-line message (a bug).
"""

from __future__ import annotations

import errno
import os
import re

from audits.errors import AuditError

_CAUGHT = "in DataLoader worker process"
_DIED = re.compile(
    r"DataLoader worker \(pids?\(?s?\)? ?([\d, ]+)\) "
    r"(?:is killed by signal: ([^.\n]+)|exited unexpectedly)"
)
_ERRNO = re.compile(r"\[Errno (\d+)\]|\((\d+)\)\s*$")
#: Causes the user fixes by changing the machine's limits or the options, not the code.
_MACHINE = {
    errno.ENOSPC,
    errno.EFBIG,
    errno.ENOMEM,
    errno.EMFILE,
    errno.ENFILE,
    errno.EDQUOT,
    errno.EACCES,
    errno.EROFS,
}
_HINT = "rerun with --workers 0 (read images in the main process) or a smaller --batch-size"


def original_error(message: str) -> str:
    """The last line of a re-raised worker message: ``Type: message`` of the original error."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else message


def _errno_of(line: str) -> int | None:
    match = _ERRNO.search(line)
    if match:
        return int(match[1] or match[2])
    for code in _MACHINE:  # messages that name the cause in words only
        if os.strerror(code).lower() in line.lower():
            return code
    return None


def worker_failure(exc: BaseException) -> BaseException | None:
    """The one-line exception to raise instead of ``exc``, or None when ``exc`` is no worker's."""
    text = str(exc)
    died = _DIED.search(text)
    if died:
        how = f"was killed by signal {died[2].strip()}" if died[2] else "exited unexpectedly"
        return AuditError(
            f"a DataLoader worker reading images (pid {died[1].strip()}) {how}, usually for lack "
            f"of memory or shared memory (/dev/shm); {_HINT}"
        )
    if _CAUGHT not in text:
        return None
    original = original_error(text)
    code = _errno_of(original)
    if code in _MACHINE or "shared memory" in text or "/torch_" in original:
        where = (
            "the worker could not hand a batch over in shared memory (/dev/shm full, or the "
            "file-size limit `ulimit -f`)"
            if "/torch_" in original or "shared memory" in text
            else f"the worker met a fault of the machine ({os.strerror(code) if code else 'see above'})"
        )
        return AuditError(
            f"reading images failed in a DataLoader worker: {original}; {where}; {_HINT}"
        )
    # Not the machine: a bug in the reading code. Same type, the original line as its message.
    try:
        return type(exc)(f"in a DataLoader worker: {original}")
    except Exception:
        return RuntimeError(f"in a DataLoader worker: {original}")
