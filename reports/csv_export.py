"""CSV exports: per-class metrics, the full confusion matrix, and the predictions table.

Deterministic bytes for the same run: a fixed column order, no index, ``\\n`` line ends, UTF-8,
floats written as the shortest text that reads back to the stored value (float32 columns as
float32, so 0.9 stays 0.9), empty cells for missing values, lists joined with ``;``.

Text cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``,
tab or carriage return) get a leading ``'`` (OWASP's advice against CSV injection); the JSON
export has the raw values.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audits.store import Run

PER_CLASS_COLUMNS = (
    "class",
    "support",
    "correct",
    "predicted",
    "recall",
    "ci_low",
    "ci_high",
    "precision",
    "f1",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA) else value


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back to the same float
    if isinstance(value, int):
        return str(value)
    return safe_text(str(value))


def _write(rows: list[list[str]], path: Path) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    return path


def write_per_class(run: Run, path: Path) -> Path:
    rows = [list(PER_CLASS_COLUMNS)]
    # The columns are ClassMetrics' fields; ``class`` is ``class_`` in Python.
    fields = [k if k != "class" else "class_" for k in PER_CLASS_COLUMNS]
    rows += [[_cell(getattr(r, k)) for k in fields] for r in run.audit.metrics.per_class]
    return _write(rows, path)


def write_confusion(run: Run, path: Path) -> Path | None:
    conf = run.audit.metrics.confusion
    if not conf.labels:
        return None
    rows = [["true \\ predicted"] + [_cell(x) for x in conf.labels]]
    rows += [
        [_cell(name)] + [_cell(v) for v in row]
        for name, row in zip(conf.labels, conf.matrix, strict=False)
    ]
    return _write(rows, path)


def _float32_text(x: Any) -> str:
    return "" if x is None or not np.isfinite(x) else str(np.float32(x))


def _list_text(values: Any, kind: str) -> str:
    if values is None:
        return ""
    items = list(values)
    if kind == "f":
        return ";".join(_float32_text(v) for v in items)
    return ";".join(str(int(v)) for v in items)


def predictions_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The predictions table ready for CSV: lists joined, text made spreadsheet-safe."""
    out = pd.DataFrame(index=table.index)
    for name in table.columns:
        col = table[name]
        if (
            col.dtype == object
            and col.map(lambda v: isinstance(v, list | tuple | np.ndarray)).any()
        ):
            kind = "f" if name.endswith("prob") else "i"
            out[name] = col.map(lambda v, k=kind: _list_text(v, k))
        elif col.dtype == object or pd.api.types.is_string_dtype(col):
            out[name] = col.map(
                lambda v: (
                    "" if v is None or (isinstance(v, float) and np.isnan(v)) else safe_text(str(v))
                )
            )
        elif pd.api.types.is_bool_dtype(col):
            out[name] = col.map(lambda v: "" if pd.isna(v) else ("true" if v else "false"))
        else:
            out[name] = col
    return out


def write_predictions(run: Run, path: Path) -> Path:
    # pandas writes float32 values in their shortest float32 form and float64 with repr.
    # One row group at a time (audits.runs.tables): a 1M-row table is never whole in memory,
    # and the bytes equal one to_csv of the whole table (the chunks keep its dtypes).
    table = run.predictions
    if table.num_row_groups <= 1:
        frame = predictions_frame(run.table)
        frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        return path
    with path.open("w", encoding="utf-8", newline="") as out:
        for i, chunk in enumerate(table.chunks()):
            predictions_frame(chunk).to_csv(out, index=False, header=i == 0, lineterminator="\n")
    return path
