"""Reading a stored run defensively: a missing key, a wrong type or a damaged optional file
gives ``None`` or an empty value, never an exception, so a section is left out instead.

Each section reads what it shows in one ``_read`` function at the top of its file, with these
helpers; the rendering code below it only indexes the plain dicts and lists ``_read`` returns.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from audits.store import Run


def dig(obj: Any, *keys: Any, default: Any = None) -> Any:
    """obj[k1][k2]… or ``default`` when any step is missing or the wrong type."""
    for key in keys:
        in_map = isinstance(obj, Mapping) and key in obj
        in_list = isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj)
        if not (in_map or in_list):
            return default
        obj = obj[key]
    return default if obj is None else obj


def mapping(x: Any) -> Mapping[str, Any]:
    """``x`` when it is a mapping, else an empty one."""
    return x if isinstance(x, Mapping) else {}


def filled(x: Any) -> dict[str, Any] | None:
    """``x`` when it is a non-empty dict, else ``None``."""
    return x if isinstance(x, dict) and x else None


def dicts(x: Any) -> list[dict[str, Any]]:
    """Only the dict items of a list (anything else: empty)."""
    return [r for r in x if isinstance(r, dict)] if isinstance(x, list) else []


def pick(obj: Any, *keys: str) -> dict[str, Any]:
    """The named fields of a stored mapping, ``None`` where missing."""
    src = mapping(obj)
    return {k: src.get(k) for k in keys}


def records(x: Any, *keys: str) -> list[dict[str, Any]]:
    """``pick`` of every dict item of a stored list."""
    return [pick(r, *keys) for r in dicts(x)]


def safe_call(fn: Callable[[], Any], default: Any) -> Any:
    """Call a narrative helper; a run missing a key it expects gives ``default``, not a crash."""
    try:
        return fn()
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError):
        return default


def read_json(path: Path) -> Any:
    """A JSON file's value, or ``None`` when it is missing or damaged."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_parquet_records(path: Path) -> list[dict[str, Any]] | None:
    """A parquet file's rows as stored (pandas values), or ``None`` when missing or damaged."""
    if not path.is_file():
        return None
    try:
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    except Exception:  # a damaged optional file must not stop the export
        return None


def error_of(block: Any) -> str | None:
    """A stage that failed stores ``{"error": "..."}`` in audit.json instead of its result."""
    if isinstance(block, dict) and set(block) <= {"error", "skipped"} and block.get("error"):
        return str(block["error"])
    return None


def inside(base: Path, candidate: str | Path) -> Path | None:
    """``candidate`` (relative to ``base``, or absolute) if it is a file inside ``base``."""
    try:
        p = Path(candidate)
        p = (p if p.is_absolute() else base / p).resolve()
        base = base.resolve()
    except (OSError, ValueError, TypeError):
        return None
    if base != p and base not in p.parents:
        return None  # a path in the data must not make the export read files elsewhere
    return p if p.is_file() else None


def run_file(run: Run, rel: Any) -> str | None:
    """A file the run names (a thumbnail), as a path inside the run folder, else ``None``."""
    p = inside(run.path, rel) if isinstance(rel, str) else None
    return str(p) if p is not None else None


def plain(v: Any) -> Any:
    """numpy / pandas scalars to Python; NA and NaN to None."""
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    if hasattr(v, "item") and not isinstance(v, list | dict | str):
        with contextlib.suppress(ValueError, AttributeError):
            v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v
