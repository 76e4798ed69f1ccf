"""Slices of the held-out set for filters: each row's metadata value, bucketed as integrity does."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import data

ALL = "All images"


@st.cache_resource(show_spinner=False, max_entries=8)
def _slice_labels(path: str, stamp: int) -> dict[str, pd.Series]:
    """Per metadata column, each row's slice label (audits.slices bucketing; <= 50 slices)."""
    from audits.slices import column_kinds, slice_labels

    table = data.view(Path(path))
    out = {}
    for name, kind in column_kinds(table).items():
        labels, _ = slice_labels(table[name], kind)
        if labels.nunique() <= 50:
            out[name] = labels.astype(str)
    return out


@st.cache_resource(show_spinner=False, max_entries=8)
def _options(path: str, stamp: int) -> list[str]:
    # Cached: the distinct values of a 1M-row column cost a tenth of a second per rerun.
    labels = _slice_labels(path, stamp)
    return [ALL] + [
        f"{col} = {v}" for col, series in labels.items() for v in sorted(series.unique())
    ]


def slice_options(path: Path) -> tuple[list[str], dict[str, pd.Series]]:
    """Picker options ('All images', 'source = fan', …) and the per-column labels."""
    stamp = data.mtime(path)
    return list(_options(str(path), stamp)), _slice_labels(str(path), stamp)


@st.cache_resource(show_spinner=False, max_entries=8)
def _kinds(path: str, stamp: int) -> dict[str, str]:
    from audits.slices import column_kinds

    return column_kinds(data.view(Path(path)))


def column_kinds(path: Path) -> dict[str, str]:
    """audits.slices.column_kinds of the run's table (boolean, date, numeric, category)."""
    return _kinds(str(path), data.mtime(path))
