"""Slice specs: selecting the rows of a predictions table by metadata, and naming them.

A spec maps columns to wanted values (``{source = "fan", dog = true}``); claims use specs for
their slices and comparison groups. The column kinds (yes/no, dates) are those of
``audits.slices``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from audits.datasets import RESERVED
from audits.errors import AuditError
from audits.slices import DATE_PATTERN, as_bool, column_kind, parse_dates


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
        flags = as_bool(series)
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
    if DATE_PATTERN.match(want_s) and column_kind(str(series.name), series) == "date":
        return text.map(lambda v: v is not None and v.startswith(want_s)).to_numpy(dtype=bool)
    return (text == want_s).to_numpy(dtype=bool)


def _in_range(series: pd.Series, bounds: Mapping[str, Any]) -> np.ndarray:
    """``{min = a, max = b}`` (inclusive, either optional) over numbers or dates."""
    unknown = set(bounds) - {"min", "max"}
    if unknown or not bounds:
        raise AuditError(f"a range is written {{min = ..., max = ...}}; got keys {sorted(bounds)}")
    is_date = not pd.api.types.is_numeric_dtype(series)
    values = parse_dates(series) if is_date else pd.to_numeric(series, errors="coerce")
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
                f"{name} from {lo} to {hi}"
                if lo is not None and hi is not None
                else f"{name} >= {lo}"
                if lo is not None
                else f"{name} <= {hi}"
            )
        else:
            parts.append(f"{name} = {want}")
    return " and ".join(parts)
