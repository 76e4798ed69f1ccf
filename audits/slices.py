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
Benjamini-Hochberg (``*_adj``), since dozens of slices are tested at once; a slice is
``significantly_lower`` when its adjusted one-sided p is below ``alpha``. A claim about one
slice (``audits.claims``, kind ``lower``) runs the same one-sided Fisher test on the same 2x2
table but is not adjusted: it is one hypothesis stated in advance, a confirmatory test, where
this scan is exploratory. ``note`` says so in one sentence for the pages that show the scan.
``weakest``: slices with at least ``min_support`` images, lowest accuracy first.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from audits.datasets import RESERVED, ROI_COLUMNS
from audits.intervals import wilson_interval
from audits.multitest import benjamini_hochberg

MIN_SUPPORT = 20
MAX_VALUES = 50
NUMERIC_BINS = 4
MISSING = "(missing)"
_TRUE = {"true", "yes", "y", "t", "1"}
_FALSE = {"false", "no", "n", "f", "0"}
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}(-\d{2})?([ T].*)?$")
_SKIP_NAMES = {"group", "id", "file", "filename", "url", "uri"} | set(ROI_COLUMNS)


def _is_skipped_name(name: str) -> bool:
    low = name.lower()
    return (
        name in RESERVED
        or low in _SKIP_NAMES
        or low.endswith(("_id", "_path", "_url", "_file"))
        or low.startswith("roi_")
    )


def as_bool(series: pd.Series) -> pd.Series | None:
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
    if as_bool(series) is not None:
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric" if values.nunique() > 10 else "category"
    text = values.astype(str)
    if text.map(lambda s: bool(DATE_PATTERN.match(s.strip()))).mean() >= 0.9:
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


def parse_dates(series: pd.Series) -> pd.Series:
    """Datetimes (NaT where a value is not a date)."""
    return pd.to_datetime(series, errors="coerce", format="mixed")


def date_buckets(series: pd.Series) -> tuple[pd.Series, str]:
    """Dates as month labels (``2024-07``), or quarters/years when months would exceed 24."""
    dates = parse_dates(series)
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
        flags = as_bool(series)
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
    correct = labelled["correct"].to_numpy(dtype=bool)
    columns: list[dict[str, Any]] = []
    slices: list[dict[str, Any]] = []
    for name, kind in column_kinds(labelled).items():
        column, rows = column_slices(name, kind, labelled[name], correct)
        columns.append(column)
        slices.extend(rows)
    _adjust(slices, "p_value")
    _adjust(slices, "p_lower")
    for s in slices:
        s["significantly_lower"] = bool(s["p_lower_adj"] is not None and s["p_lower_adj"] < alpha)
    total_n, total_k = len(labelled), int(correct.sum())
    return {
        "test": "Fisher exact, slice vs rest; p_lower one-sided (slice less accurate); "
        "Benjamini-Hochberg adjusted across all slices",
        "note": scan_note(len(slices)),
        "min_support": int(min_support),
        "alpha": alpha,
        "n_labelled": total_n,
        "accuracy": total_k / total_n if total_n else None,
        "columns": columns,
        "slices": slices,
        "weakest": weakest_slices(slices, min_support, top),
    }


def scan_note(n_slices: int) -> str:
    """Why a claim and this scan can answer the same question differently, in one sentence."""
    return (
        f"This scan is exploratory: each of the {n_slices:,} slices is tested against the rest "
        "with Fisher's exact test (one-sided: is it less accurate?) and, since no slice was "
        "named in advance, the p-values are adjusted with Benjamini–Hochberg across all of "
        "them; a claim stated before looking is a single test of the same kind, not adjusted, "
        "so it can be supported where the scan does not flag the slice."
    )


def column_slices(
    name: str, kind: str, series: pd.Series, correct: np.ndarray
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One column's entry in ``columns`` and its slices (unadjusted), from the labelled rows'
    values and correctness."""
    labels, note = slice_labels(series, kind)
    codes, uniques = pd.factorize(labels.astype(str), sort=True)
    n = np.bincount(codes, minlength=len(uniques))
    k = np.bincount(codes, weights=correct, minlength=len(uniques)).astype(np.int64)
    low, high = wilson_interval(k, n)
    total_n, total_k = len(correct), int(correct.sum())
    rows = [
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
            **_against_rest(int(k[j]), int(n[j]), total_k, total_n),
        }
        for j, label in enumerate(uniques)
    ]
    column = {"column": name, "kind": kind, "bucketing": note, "n_slices": len(uniques)}
    return column, rows


def _against_rest(k: int, n: int, total_k: int, total_n: int) -> dict[str, Any]:
    """The rest of the labelled images and Fisher's exact tests of the slice against them."""
    rest_n, rest_k = total_n - n, total_k - k
    p_two = p_lower = None
    if rest_n > 0:
        grid = [[k, n - k], [rest_k, rest_n - rest_k]]
        p_two = float(fisher_exact(grid).pvalue)
        p_lower = float(fisher_exact(grid, alternative="less").pvalue)
    return {
        "rest_support": rest_n,
        "rest_accuracy": rest_k / rest_n if rest_n else None,
        "p_value": p_two,
        "p_lower": p_lower,
    }


def weakest_slices(
    slices: list[dict[str, Any]], min_support: int, top: int
) -> list[dict[str, Any]]:
    """Slices with at least ``min_support`` images, lowest accuracy first (then smallest
    one-sided p), ranked from 1."""
    ranked = sorted(
        (s for s in slices if s["support"] >= min_support),
        key=lambda s: (s["accuracy"], s["p_lower"] if s["p_lower"] is not None else 1.0),
    )
    return [{"rank": r, **s} for r, s in enumerate(ranked[:top], start=1)]


def _adjust(slices: list[dict[str, Any]], key: str) -> None:
    """Benjamini-Hochberg across the slices that were tested; untested stay None."""
    for s, q in zip(slices, benjamini_hochberg([s[key] for s in slices]), strict=True):
        s[f"{key}_adj"] = q
