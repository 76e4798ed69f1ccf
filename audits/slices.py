"""Slices: accuracy per value of every metadata column, and the weakest slices.

Each metadata column of the predictions table is typed once (``column_kinds``):

* ``boolean``: bool dtype, or only 0/1, true/false, yes/no values (tags such as ``dog``);
* ``date``: datetimes or ``YYYY-MM-DD`` strings, bucketed by month (by quarter or year
  when there would be more than 24 buckets);
* ``numeric``: numbers with more than 10 distinct values, binned into quartiles;
* ``category``: everything else with at most 50 values (numbers with few values too).

Skipped: the predictions table's own columns, ``group`` and other ids (names ending in
``_id``, or text with more than 50 distinct values), ``roi_*`` boxes and path/URL columns.
Missing values form their own slice, ``(missing)``.

For each slice: support, correct, accuracy with its Wilson 95% interval, and a test against
the rest of the labelled images. The test is Fisher's exact test on the 2x2 table
(slice/rest x correct/wrong): exact at any size, so a 12-image slice gets an honest p-value
where a z-test would not. ``p_lower`` is one-sided (the slice is less accurate than the
rest), ``p_value`` two-sided; both are adjusted across every slice of every column with
Benjamini-Hochberg (``*_adj``), since dozens of slices are tested at once.
``weakest``: slices with at least ``min_support`` images, lowest accuracy first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, fisher_exact

from audits.datasets import RESERVED, ROI_COLUMNS
from audits.errors import AuditError
from audits.intervals import wilson_interval

MIN_SUPPORT = 20
MAX_VALUES = 50
NUMERIC_BINS = 4
MISSING = "(missing)"
_TRUE = {"true", "yes", "y", "t", "1"}
_FALSE = {"false", "no", "n", "f", "0"}
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?([ T].*)?$")
_SKIP_NAMES = {"group", "id", "file", "filename", "url", "uri"} | set(ROI_COLUMNS)


def _is_skipped_name(name: str) -> bool:
    low = name.lower()
    return (
        name in RESERVED
        or low in _SKIP_NAMES
        or low.endswith(("_id", "_path", "_url", "_file"))
        or low.startswith("roi_")
    )


def _as_bool(series: pd.Series) -> pd.Series | None:
    """The column as True/False/None when every value reads as a boolean, else None."""
    values = series.dropna()
    if values.empty:
        return None
    if pd.api.types.is_bool_dtype(series):
        return series.astype(object).where(series.notna(), None)
    if pd.api.types.is_numeric_dtype(series):
        if set(np.unique(values.to_numpy(dtype=np.float64))) <= {0.0, 1.0}:
            return series.map(lambda v: None if pd.isna(v) else bool(v))
        return None
    text = values.astype(str).str.strip().str.lower()
    if set(text) <= _TRUE | _FALSE:
        return series.map(lambda v: None if pd.isna(v) else str(v).strip().lower() in _TRUE)
    return None


def column_kind(name: str, series: pd.Series) -> str | None:
    """``boolean``, ``date``, ``numeric``, ``category`` or None (not a slicing column)."""
    if _is_skipped_name(name):
        return None
    values = series.dropna()
    if values.empty:
        return None
    if _as_bool(series) is not None:
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric" if values.nunique() > 10 else "category"
    text = values.astype(str)
    if text.map(lambda s: bool(_DATE.match(s.strip()))).mean() >= 0.9:
        return "date"
    if text.str.contains(r"[/\\]").mean() > 0.5:  # paths and URLs
        return None
    if values.nunique() > MAX_VALUES:
        return None  # an id
    return "category"


def column_kinds(table: pd.DataFrame) -> dict[str, str]:
    """Slicing columns of a predictions table and their kinds, in table order."""
    kinds = {}
    for name in table.columns:
        kind = column_kind(str(name), table[name])
        if kind is not None:
            kinds[str(name)] = kind
    return kinds


def _dates(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, errors="coerce", format="mixed")


def date_buckets(series: pd.Series) -> tuple[pd.Series, str]:
    """Dates as month labels (``2024-07``), or quarters/years when months would exceed 24."""
    dates = _dates(series)
    for unit, fmt in (("month", "M"), ("quarter", "Q"), ("year", "Y")):
        buckets = dates.dt.to_period(fmt)
        if buckets.nunique() <= 24 or unit == "year":
            return buckets.astype(str).where(dates.notna(), MISSING), unit
    raise AssertionError("unreachable")


def slice_labels(
    series: pd.Series, kind: str, bins: int = NUMERIC_BINS
) -> tuple[pd.Series, str | None]:
    """One label per row (the slice it belongs to) and a note on the bucketing."""
    if kind == "boolean":
        flags = _as_bool(series)
        assert flags is not None
        return flags.map(lambda v: MISSING if v is None else ("true" if v else "false")), None
    if kind == "date":
        labels, unit = date_buckets(series)
        return labels, f"by {unit}"
    if kind == "numeric":
        values = pd.to_numeric(series, errors="coerce")
        cut = pd.qcut(values, q=bins, duplicates="drop")
        labels = cut.map(lambda iv: f"{iv.left:.4g} to {iv.right:.4g}").astype(object)
        return labels.where(values.notna(), MISSING), f"{bins} quantile bins"
    return series.map(lambda v: MISSING if pd.isna(v) else str(v)).astype(object), None


def _slice_value(kind: str, label: str) -> Any:
    if label == MISSING:
        return None
    if kind == "boolean":
        return label == "true"
    return label


def slice_report(
    table: pd.DataFrame,
    min_support: int = MIN_SUPPORT,
    alpha: float = 0.05,
    top: int = 10,
) -> dict[str, Any]:
    """Per-slice accuracy and tests over the labelled rows: ``{columns, slices, weakest}``."""
    labelled = table[table["label_idx"].to_numpy() >= 0]
    correct_all = labelled["correct"].to_numpy(dtype=bool)
    total_n, total_k = len(labelled), int(correct_all.sum())
    columns: list[dict[str, Any]] = []
    slices: list[dict[str, Any]] = []
    for name, kind in column_kinds(labelled).items():
        labels, note = slice_labels(labelled[name], kind)
        codes, uniques = pd.factorize(labels.astype(str), sort=True)
        n = np.bincount(codes, minlength=len(uniques))
        k = np.bincount(codes, weights=correct_all, minlength=len(uniques)).astype(np.int64)
        columns.append({"column": name, "kind": kind, "bucketing": note, "n_slices": len(uniques)})
        low, high = wilson_interval(k, n)
        for j, label in enumerate(uniques):
            rest_n, rest_k = total_n - int(n[j]), total_k - int(k[j])
            p_two = p_lower = None
            if rest_n > 0:
                grid = [[int(k[j]), int(n[j] - k[j])], [rest_k, rest_n - rest_k]]
                p_two = float(fisher_exact(grid).pvalue)
                p_lower = float(fisher_exact(grid, alternative="less").pvalue)
            slices.append(
                {
                    "column": name,
                    "kind": kind,
                    "value": _slice_value(kind, label),
                    "label": f"{name} = {label}",
                    "support": int(n[j]),
                    "correct": int(k[j]),
                    "accuracy": float(k[j] / n[j]),
                    "ci_low": float(low[j]),
                    "ci_high": float(high[j]),
                    "rest_support": rest_n,
                    "rest_accuracy": rest_k / rest_n if rest_n else None,
                    "p_value": p_two,
                    "p_lower": p_lower,
                }
            )
    _adjust(slices, "p_value")
    _adjust(slices, "p_lower")
    for s in slices:
        s["significantly_lower"] = bool(s["p_lower_adj"] is not None and s["p_lower_adj"] < alpha)
    ranked = sorted(
        (s for s in slices if s["support"] >= min_support),
        key=lambda s: (s["accuracy"], s["p_lower"] if s["p_lower"] is not None else 1.0),
    )
    weakest = [{"rank": r, **s} for r, s in enumerate(ranked[:top], start=1)]
    return {
        "test": "Fisher exact, slice vs rest; p_lower one-sided (slice less accurate); "
        "Benjamini-Hochberg adjusted across all slices",
        "min_support": int(min_support),
        "alpha": alpha,
        "n_labelled": total_n,
        "accuracy": total_k / total_n if total_n else None,
        "columns": columns,
        "slices": slices,
        "weakest": weakest,
    }


def _adjust(slices: list[dict[str, Any]], key: str) -> None:
    """Benjamini-Hochberg across the slices that were tested; untested stay None."""
    tested = [s for s in slices if s[key] is not None]
    adjusted = false_discovery_control([s[key] for s in tested], method="bh") if tested else []
    for s in slices:
        s[f"{key}_adj"] = None
    for s, q in zip(tested, adjusted, strict=True):
        s[f"{key}_adj"] = float(q)


# -- selecting rows by a slice spec (claims and the dashboard) ------------------------------


def resolve_column(table: pd.DataFrame, name: str) -> str:
    """The table column for a metadata name (``meta_<name>`` when it collided)."""
    if name in table.columns and name not in RESERVED - {"label", "pred"}:
        return name
    if f"meta_{name}" in table.columns:
        return f"meta_{name}"
    known = sorted(c for c in table.columns if c not in RESERVED or c in ("label", "pred"))
    raise AuditError(
        f"no column '{name}' in the predictions table; columns: {', '.join(map(str, known))}"
    )


def _match(series: pd.Series, want: Any) -> np.ndarray:
    """Rows whose value equals ``want`` (booleans, dates by prefix, numbers and text)."""
    if isinstance(want, list):
        out = np.zeros(len(series), bool)
        for w in want:
            out |= _match(series, w)
        return out
    if isinstance(want, Mapping):
        return _in_range(series, want)
    if isinstance(want, bool):
        flags = _as_bool(series)
        if flags is None:
            raise AuditError(
                f"column '{series.name}' is not a yes/no column; compare it with a value"
            )
        return flags.map(lambda v: v is want).to_numpy(dtype=bool)
    if want is None:
        return series.isna().to_numpy()
    if isinstance(want, int | float) and pd.api.types.is_numeric_dtype(series):
        return (pd.to_numeric(series, errors="coerce") == want).to_numpy(dtype=bool)
    text = series.map(lambda v: None if pd.isna(v) else str(v).strip())
    want_s = str(want).strip()
    if _DATE.match(want_s) and column_kind(str(series.name), series) == "date":
        return text.map(lambda v: v is not None and v.startswith(want_s)).to_numpy(dtype=bool)
    return (text == want_s).to_numpy(dtype=bool)


def _in_range(series: pd.Series, bounds: Mapping[str, Any]) -> np.ndarray:
    """``{min = a, max = b}`` (inclusive, either optional) over numbers or dates."""
    unknown = set(bounds) - {"min", "max"}
    if unknown or not bounds:
        raise AuditError(f"a range is written {{min = ..., max = ...}}; got keys {sorted(bounds)}")
    is_date = not pd.api.types.is_numeric_dtype(series)
    values = _dates(series) if is_date else pd.to_numeric(series, errors="coerce")
    out = values.notna().to_numpy()
    for key, op in (("min", np.greater_equal), ("max", np.less_equal)):
        if key in bounds:
            bound = pd.Timestamp(str(bounds[key])) if is_date else float(bounds[key])
            out &= op(
                values.to_numpy(), np.asarray(bound) if not is_date else bound.to_datetime64()
            )
    return out


def slice_mask(table: pd.DataFrame, spec: Mapping[str, Any] | None) -> np.ndarray:
    """Rows in a slice: every ``column = value`` of ``spec`` holds (an empty spec is all rows).

    A value is a scalar (``source = "fan"``, ``dog = true``, ``date = "2024-07"`` for a month),
    a list (any of), or a range ``{min = ..., max = ...}``.
    """
    mask = np.ones(len(table), bool)
    for name, want in (spec or {}).items():
        mask &= _match(table[resolve_column(table, str(name))].rename(str(name)), want)
    return mask


def describe(spec: Mapping[str, Any] | None) -> str:
    """A slice in words: ``source = fan``, ``dog``, ``not night``; ``all images`` when empty."""
    if not spec:
        return "all images"
    parts = []
    for name, want in spec.items():
        if want is True:
            parts.append(str(name))
        elif want is False:
            parts.append(f"not {name}")
        elif isinstance(want, list):
            parts.append(f"{name} in {', '.join(map(str, want))}")
        elif isinstance(want, Mapping):
            lo, hi = want.get("min"), want.get("max")
            parts.append(
                f"{name} from {lo} to {hi}" if lo is not None and hi is not None
                else f"{name} >= {lo}" if lo is not None else f"{name} <= {hi}"
            )  # fmt: skip
        else:
            parts.append(f"{name} = {want}")
    return " and ".join(parts)
