"""Writing files safely: JSON with plain values, and folders that appear whole or not at all."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, NaN and inf to null, paths to strings."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def json_text(data: Any) -> str:
    """The project's JSON layout: 2-space indent, fields in the order given, UTF-8 kept."""
    return json.dumps(to_jsonable(data), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON (see ``json_text``)."""
    Path(path).write_text(json_text(data), encoding="utf-8")


#: The lock file a store's temporary run folder holds for its whole life (see ``atomic_dir``).
LOCK_FILE = ".lock"


def _locked_stage(parent: Path, name: str) -> tuple[Path, int]:
    """A new folder ``parent/name`` that appears with its lock already held.

    The folder is made under a staging name the stale-folder sweep never touches, the lock file
    inside it is created and locked, and only then is it renamed to ``name``: so no sweep can
    ever see the folder unlocked while its creator lives. Returns the folder and the lock's fd.
    """
    stage = parent / f".stage-{name.removeprefix('.tmp-')}"
    stage.mkdir()
    fd = -1
    try:
        fd = os.open(stage / LOCK_FILE, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, str(os.getpid()).encode())  # for a person looking at the folder
        os.rename(stage, parent / name)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return parent / name, fd


def lock_is_free(lock: Path) -> bool:
    """Whether no process holds ``lock`` (its owner died); False when it cannot be opened."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: the run that owns the folder is alive
    finally:
        os.close(fd)  # closing drops our lock again
    return True


@contextlib.contextmanager
def atomic_dir(final: Path, *, replace: bool = False, locked: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it is renamed to ``final``.

    On any exception (Ctrl-C included) the temporary folder is removed and ``final`` is left as
    it was. ``replace=True`` swaps out an existing ``final`` (the old one is removed only after
    the new one is in place); otherwise an existing ``final`` is an error (``FileExistsError``).
    ``locked=True`` holds an flock on ``LOCK_FILE`` inside the temporary folder from before the
    folder is visible until it is renamed, so a stale-folder sweep (``audits.store``) can tell
    a live run from a dead one; the lock file is removed before the rename.
    """
    final = Path(final)
    if final.exists() and not replace:
        raise FileExistsError(final)
    name = f".tmp-{final.name}-{secrets.token_hex(3)}"
    fd = None
    if locked:
        tmp, fd = _locked_stage(final.parent, name)
    else:
        tmp = final.parent / name
        tmp.mkdir()
    try:
        yield tmp
        if fd is not None:
            (tmp / LOCK_FILE).unlink()  # still held: a sweep now sees no lock and leaves it
        if replace and final.exists():
            old = final.parent / f".old-{final.name}-{secrets.token_hex(3)}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if fd is not None:
            os.close(fd)
