"""Writing files safely: JSON with plain values, and folders that appear whole or not at all."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def atomic_dir(final: Path, *, replace: bool = False, marker: str | None = None) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it is renamed to ``final``.

    On any exception (Ctrl-C included) the temporary folder is removed and ``final`` is left as
    it was. ``replace=True`` swaps out an existing ``final`` (the old one is removed only after
    the new one is in place); otherwise an existing ``final`` is an error (``FileExistsError``).
    ``marker`` names a file written into the temporary folder with this process id (for a
    stale-folder sweep), removed before the rename.
    """
    final = Path(final)
    if final.exists() and not replace:
        raise FileExistsError(final)
    tmp = final.parent / f".tmp-{final.name}-{secrets.token_hex(3)}"
    tmp.mkdir()
    try:
        if marker:
            (tmp / marker).write_text(str(os.getpid()))
        yield tmp
        if marker:
            (tmp / marker).unlink()
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
