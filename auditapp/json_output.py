"""``--json``: every command's result as exactly one JSON object on stdout.

A command hands its result to :func:`set_result` (the fields of the record it stored plus
where it stored it); ``auditapp.cli`` prints it after the command ends. While a command runs
in JSON mode its human output (tables, summaries) goes to stderr instead, so stdout holds the
one object and nothing else, whatever a library or model code prints.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

RESULT_ATTR = "json_result"


def wants_json(args: argparse.Namespace) -> bool:
    """Whether ``--json`` was given (before or after the command name)."""
    return bool(getattr(args, "json", False))


def set_result(args: argparse.Namespace, payload: Mapping[str, Any]) -> None:
    """The command's JSON result; printed by the CLI only in JSON mode."""
    setattr(args, RESULT_ATTR, dict(payload))


def get_result(args: argparse.Namespace) -> dict[str, Any] | None:
    return getattr(args, RESULT_ATTR, None)


def read_record(path: str | Path) -> dict[str, Any]:
    """A stored JSON record as it is on disk (the fields ``--json`` repeats)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def jsonable(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become null (strict JSON has neither), paths
    strings, numpy scalars and arrays Python numbers and lists, pydantic models dicts."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "model_dump"):  # pydantic
        return jsonable(value.model_dump(mode="json"))
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    return str(value)


def dumps(payload: Mapping[str, Any]) -> str:
    """One line of strict JSON (no NaN), non-ASCII kept as is."""
    return json.dumps(jsonable(payload), ensure_ascii=False, allow_nan=False)


def error_payload(message: str, exit_code: int, **extra: Any) -> dict[str, Any]:
    """What ``--json`` prints on stdout when a command fails (the line on stderr stays)."""
    return {"error": message, "exit_code": exit_code, **extra}


def argv_wants_json(argv: list[str]) -> bool:
    """``--json`` anywhere before a ``--`` (known before parsing, for errors in parsing)."""
    for token in argv:
        if token == "--":
            return False
        if token == "--json":
            return True
    return False
