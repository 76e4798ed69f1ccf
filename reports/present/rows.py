"""Stored values as the presentation layer reads them: records, rows and related runs.

The dashboard hands the figure builders typed records (``audits.runs``); the exports and tests
may hand them plain dicts. Both arrive as the stored keys (``class``, ``recall``…), so one
builder draws the same figure from either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from audits.errors import AuditError
from audits.runs import Part, StoredRun

#: A stored block or row: its typed record, or the JSON dict it came from.
Row = Part | Mapping[str, Any]


def stored_row(item: Row | None) -> Mapping[str, Any]:
    """The stored keys and values of a record (a dict passes as it is; None is empty)."""
    if item is None:
        return {}
    return item.as_dict() if isinstance(item, Part) else item


def stored_rows(items: Iterable[Row] | None) -> list[Mapping[str, Any]]:
    """``stored_row`` of each item, in order."""
    return [stored_row(item) for item in items or ()]


def record_or_none(run: StoredRun | None, kind: str) -> Any:
    """The ``kind`` record (audit, drift, comparison) of a related run; None when there is no
    run or its record cannot be read (a damaged neighbour must not hide what the page shows)."""
    if run is None:
        return None
    try:
        return getattr(run, kind)
    except AuditError:
        return None
