"""The comparison's "what changed" lists in the exports: the images only one version gets right.

Copied from the comparison run's stored ``changed.parquet`` (``audits.what_changed``), never
recomputed; the JSON export carries them in its comparison blocks, the CSV export as
``<stem>-what-changed.csv``, the report section shows the counts and a few examples.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd

from audits.errors import AuditError
from audits.related import RunBundle
from audits.store import Run
from audits.what_changed import COLUMNS
from reports.csv_export import safe_text


def changed_frame(comparison: Run | None) -> pd.DataFrame | None:
    """The stored lists of a comparison run; None when absent, older or damaged."""
    if comparison is None:
        return None
    try:
        frame = comparison.changed
    except AuditError:
        return None
    if frame is None or not set(COLUMNS) <= set(frame.columns):
        return None
    return frame[list(COLUMNS)]


def shown_comparison(related: RunBundle) -> Run | None:
    """The comparison the report shows: this run as the candidate, else as the baseline."""
    return related.comparison if related.comparison is not None else related.successor


def changed_records(comparison: Run | None) -> list[dict[str, Any]] | None:
    """The lists as JSON rows (stored values, NaN as null); None when not stored."""
    frame = changed_frame(comparison)
    if frame is None:
        return None
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for r in rows:
        r["row_a"], r["row_b"] = int(r["row_a"]), int(r["row_b"])
    return rows


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return safe_text(str(value))  # a leading = + - @ never runs as a spreadsheet formula


def write_changed(related: RunBundle, path: Path) -> Path | None:
    """``<stem>-what-changed.csv`` for the shown comparison; None when it stores no lists."""
    frame = changed_frame(shown_comparison(related))
    if frame is None:
        return None
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for rec in frame.itertuples(index=False):
        writer.writerow([_cell(v) for v in rec])
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    return path
