"""Writing a record: stamped, validated against its model, then stored with today's layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from audits.fsio import json_text
from audits.runs.base import SCHEMA_VERSION, Part
from audits.runs.kinds import first_error, record_kind
from audits.runs.stamp import auditor_identity, utc_stamp


class InvalidRecord(ValueError):
    """A record our own code built does not match its model: a bug, not a user error."""


_STAMPS = {
    "schema_version": lambda: SCHEMA_VERSION,
    "created": utc_stamp,
    "auditor": auditor_identity,
}


def _stamp(data: dict[str, Any], stamps: tuple[str, ...]) -> dict[str, Any]:
    """``data`` with the stamps it lacks added at the end (its own fields keep their order)."""
    missing = {k: _STAMPS[k]() for k in stamps if k not in data}
    return {**data, **missing} if missing else data


def check_record(record: Part | dict[str, Any], kind: str) -> tuple[Part, str]:
    """(the validated record, the JSON text to store) for a model or a dict of ``kind``."""
    spec = record_kind(kind)
    if isinstance(record, Part):
        if not isinstance(record, spec.model):
            raise InvalidRecord(f"{spec.file}: a {type(record).__name__} is not a {kind} record")
        data = record.as_dict()
    elif isinstance(record, dict):
        data = _stamp(record, spec.stamps)
    else:
        raise InvalidRecord(f"{spec.file}: expected a JSON object, got {type(record).__name__}")
    text = json_text(data)  # plain JSON values: what is validated is exactly what is stored
    try:
        return spec.model.from_dict(json.loads(text)), text
    except ValidationError as exc:
        raise InvalidRecord(f"{spec.file}: {first_error(exc)}") from None


def write_record(folder: str | Path, record: Part | dict[str, Any], kind: str) -> Part:
    """Validate and write ``<folder>/<file of kind>``; returns the validated record.

    A dict is stored in its own field order (the file is what today's writers produce); a model
    read from a file is stored as it was read. Raises ``InvalidRecord`` naming the field.
    """
    checked, text = check_record(record, kind)
    (Path(folder) / record_kind(kind).file).write_text(text, encoding="utf-8")
    return checked
