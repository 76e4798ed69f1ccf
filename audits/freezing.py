"""The freeze record of a held-out set: what it covers, reading it safely, and what changed.

The fingerprint stays DESIGN.md's "sha256 over the sorted (path, file sha256, label) rows".
Metadata (groups, ROIs and every other column the slices, claims and leakage checks read) is
covered separately: each file's entry holds its column values under ``meta`` and the record
holds ``metadata_sha256`` over them, so a later check can list each changed value (row,
column, old → new). Records written before metadata was covered have neither; they are still
accepted, with a note that metadata is not covered.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audits.errors import AuditError
from audits.hashing import bytes_sha256

#: Rows of changed metadata kept in an audit record (the count is always exact).
KEPT_CHANGES = 200
#: Changes shown in a one-line message.
SHOWN = 5


def canonical(value: Any) -> Any:
    """A JSON value that stays equal across re-reads: missing → None, 2.0 → 2, numpy → Python.

    A float column with one empty cell reads 2 as 2.0; without this every row would "change".
    """
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _float(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | np.ndarray):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _float(number: float) -> Any:
    """NaN → None (JSON has no NaN), ±inf → a string, 2.0 → 2."""
    if math.isnan(number):
        return None
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return int(number) if number.is_integer() else number


def _column(series: pd.Series) -> list[Any]:
    """A column's canonical values; plain numpy dtypes skip the per-value type checks."""
    values = series.tolist()  # numpy scalars become Python ones
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iub":
        return values
    if isinstance(series.dtype, np.dtype) and series.dtype.kind == "f":
        return [_float(v) for v in values]
    return [v if type(v) is str else canonical(v) for v in values]


@dataclass
class Metadata:
    """Every metadata column of a set as canonical values, row-aligned with ``paths``."""

    paths: list[str]
    columns: list[str]
    values: dict[str, list[Any]]

    @classmethod
    def of(cls, items: pd.DataFrame, columns: list[str]) -> Metadata:
        return cls(items["path"].tolist(), list(columns), {c: _column(items[c]) for c in columns})

    def rows(self) -> list[dict[str, Any]]:
        """Each row's ``{column: value}``, in item order."""
        if not self.columns:
            return [{} for _ in self.paths]
        cols = [self.values[c] for c in self.columns]
        return [dict(zip(self.columns, row, strict=True)) for row in zip(*cols, strict=True)]

    def sha256(self) -> str:
        """sha256 of the canonical JSON ``{"columns": [...], "rows": [[path, [values]], ...]}``,
        columns sorted by name and rows by path (one ``json.dumps``: per-row calls cost 10×)."""
        columns = sorted(self.columns)
        cols = [self.values[c] for c in columns]
        values = zip(*cols, strict=True) if cols else [()] * len(self.paths)
        rows = list(zip(self.paths, values, strict=True))
        rows.sort(key=lambda r: r[0])
        text = json.dumps(
            {"columns": columns, "rows": rows}, ensure_ascii=False, separators=(",", ":")
        )
        return bytes_sha256(text.encode())


@dataclass(frozen=True)
class MetadataChange:
    """One metadata value that differs from the freeze record."""

    path: str
    column: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.path}: {self.column} {_show(self.old)} → {_show(self.new)}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "column": self.column, "old": self.old, "new": self.new}


def _show(value: Any) -> str:
    return "(empty)" if value is None else repr(value)


@dataclass
class FreezeStatus:
    """How a data set stands against its freeze record (files and labels already match)."""

    recorded: bool  # a freeze record exists
    metadata_sha256: str  # of the set now
    covers_metadata: bool | None = None  # False: a record from before metadata was covered
    changes: list[MetadataChange] = field(default_factory=list)
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)
    #: The record's ``lineage`` (a set made by ``relabel``), None for an original set.
    lineage: dict[str, Any] | None = None

    @property
    def metadata_changed(self) -> bool:
        return bool(self.changes or self.columns_added or self.columns_removed)

    @property
    def frozen(self) -> bool:
        """Frozen: a record exists and nothing it covers changed."""
        return self.recorded and not self.metadata_changed

    def describe_changes(self) -> str:
        """The changes in one line: columns added/removed, then rows (column old → new)."""
        parts = []
        if self.columns_added:
            parts.append(f"column(s) added: {', '.join(self.columns_added)}")
        if self.columns_removed:
            parts.append(f"column(s) removed: {', '.join(self.columns_removed)}")
        if self.changes:
            shown = "; ".join(c.describe() for c in self.changes[:SHOWN])
            more = " …" if len(self.changes) > SHOWN else ""
            parts.append(f"{len(self.changes)} value(s) changed ({shown}{more})")
        return "; ".join(parts)

    def record_block(self) -> dict[str, Any]:
        """The ``dataset.freeze`` block of ``audit.json``."""
        block: dict[str, Any] = {
            "covers_metadata": self.covers_metadata,
            "metadata_sha256": self.metadata_sha256,
        }
        if self.metadata_changed:
            block["n_metadata_changes"] = len(self.changes)
            block["metadata_changes"] = [c.as_dict() for c in self.changes[:KEPT_CHANGES]]
            block["columns_added"] = self.columns_added
            block["columns_removed"] = self.columns_removed
        if self.covers_metadata is False:
            block["note"] = NOT_COVERED
        return block


NOT_COVERED = (
    "this freeze record predates metadata coverage: files and labels are frozen, groups, "
    "ROIs and other columns are not; re-freeze to cover metadata"
)


def damaged(file: Path, source: Path, why: str) -> AuditError:
    """The one-line error for a freeze record that cannot be used."""
    return AuditError(
        f"{file}: the freeze record is damaged ({why}); restore it from version control, or, if "
        f"the set is known to be unchanged, re-freeze it: python -m audits freeze {source} --force"
    )


def read_record(file: Path, source: Path) -> dict[str, Any] | None:
    """The freeze record in ``file`` (None when there is none), checked for shape."""
    if not file.is_file():
        return None
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise damaged(file, source, f"not JSON: {exc}") from None
    except OSError as exc:
        raise AuditError(f"{file}: cannot read the freeze record ({exc.strerror})") from None
    _check_shape(file, source, record)
    return record


def _check_shape(file: Path, source: Path, record: Any) -> None:
    if not isinstance(record, dict):
        raise damaged(file, source, f"a JSON object was expected, found {type(record).__name__}")
    files = record.get("files")
    if not isinstance(files, dict):
        raise damaged(file, source, "'files' must map each image path to its sha256 and label")
    if not isinstance(record.get("fingerprint", ""), str):
        raise damaged(file, source, "'fingerprint' must be a string")
    covers = "metadata_sha256" in record
    if covers and not (
        isinstance(record["metadata_sha256"], str)
        and isinstance(record.get("metadata_columns"), list)
        and all(isinstance(c, str) for c in record["metadata_columns"])
    ):
        raise damaged(
            file,
            source,
            "'metadata_sha256' must be a string and 'metadata_columns' a list of names",
        )
    # ``type(...) is`` rather than isinstance: JSON gives exact types, and this runs per row.
    for path, entry in files.items():
        if (
            type(entry) is not dict
            or type(entry.get("sha256")) is not str
            or type(entry.get("label")) not in _LABEL_TYPES
        ):
            raise damaged(file, source, f"entry '{path}' needs a string 'sha256' and 'label'")
        if covers and type(entry.get("meta")) is not dict:
            raise damaged(file, source, f"entry '{path}' has no 'meta' object")


_LABEL_TYPES = (str, type(None))


def compare_metadata(
    record: dict[str, Any] | None, file: Path, source: Path, now: Metadata
) -> FreezeStatus:
    """The set's metadata against its (shape-checked) freeze record, every change listed."""
    now_digest = now.sha256()
    if record is None:
        return FreezeStatus(recorded=False, metadata_sha256=now_digest)
    if "metadata_sha256" not in record:
        return FreezeStatus(recorded=True, metadata_sha256=now_digest, covers_metadata=False)
    status = FreezeStatus(recorded=True, metadata_sha256=now_digest, covers_metadata=True)
    if now_digest == record["metadata_sha256"]:
        return status
    then_columns = record["metadata_columns"]
    status.columns_added = [c for c in now.columns if c not in then_columns]
    status.columns_removed = [c for c in then_columns if c not in now.columns]
    shared = [c for c in now.columns if c in then_columns]
    files = record["files"]
    for path, meta in sorted(zip(now.paths, now.rows(), strict=True), key=lambda r: r[0]):
        then = (files.get(path) or {}).get("meta") or {}
        for column in shared:
            old, new = then.get(column), meta[column]
            if old != new or type(old) is not type(new):  # True == 1, yet they differ
                status.changes.append(MetadataChange(path, column, old, new))
    if not status.metadata_changed:
        raise damaged(file, source, "'metadata_sha256' does not match its own rows")
    return status


def lineage_block(record: dict[str, Any] | None, file: Path, source: Path) -> dict[str, Any] | None:
    """The record's ``lineage`` block (``audits.relabel``), None when it has none."""
    lineage = None if record is None else record.get("lineage")
    if lineage is None:
        return None
    if not isinstance(lineage, dict) or not isinstance(lineage.get("parent_fingerprint"), str):
        raise damaged(file, source, "'lineage' must be an object naming 'parent_fingerprint'")
    return lineage
