"""The properties view of drift: Evidently's DataDriftPreset over the per-image properties,
Holm-adjusted across the properties (see the package docstring for why KS and chi-square are
set explicitly)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from audits.image_properties import CATEGORICAL, NUMERIC, PROPERTIES
from audits.multitest import holm

#: How ``properties_method`` in drift.json describes the tests (the tool's version is added).
NUMERIC_TEST = "ks"
CATEGORICAL_TEST = "chisquare"
CORRECTION = "holm over the properties; drift when p_adjusted < alpha"
#: drift.json puts these first in each property row (DESIGN.md order).
_HEADLINE = ("name", "p_value", "drift")


def evidently_version() -> str:
    """The installed Evidently version, or ``unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evidently")
    except PackageNotFoundError:
        return "unknown"


def _evidently_p_values(snapshot: Any) -> dict[str, dict[str, Any]]:
    """Per-column p-value and method from a DataDriftPreset snapshot's ``ValueDrift`` metrics."""
    out: dict[str, dict[str, Any]] = {}
    for metric in snapshot.dict().get("metrics", []):
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        value = metric.get("value")
        p = float(value) if isinstance(value, int | float) and math.isfinite(value) else None
        out[str(config.get("column"))] = {"p_value": p, "method": config.get("method")}
    return out


def _run_evidently(ref: pd.DataFrame, cur: pd.DataFrame, alpha: float) -> Any:
    """Evidently's DataDriftPreset snapshot with KS and chi-square forced."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(NUMERIC), categorical_columns=list(CATEGORICAL)
    )
    preset = DataDriftPreset(num_method=NUMERIC_TEST, cat_method=CATEGORICAL_TEST, threshold=alpha)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Constant columns (one size, one format) make Evidently's correlation plots divide by 0.
        warnings.simplefilter("ignore")
        return Report([preset]).run(
            current_data=Dataset.from_pandas(cur, data_definition=definition),
            reference_data=Dataset.from_pandas(ref, data_definition=definition),
        )


def _property_row(
    name: str, entry: dict[str, Any], ref: pd.DataFrame, cur: pd.DataFrame
) -> dict[str, Any]:
    """One property's row before adjustment: its test, p-value and the two sides' summaries."""
    p = entry["p_value"]
    row: dict[str, Any] = {"name": name}
    if name in CATEGORICAL:
        ref_share = ref[name].value_counts(normalize=True).sort_index()
        cur_share = cur[name].value_counts(normalize=True).sort_index()
        note = None
        if p is None and set(ref_share.index) == set(cur_share.index) and len(ref_share) == 1:
            p, note = 1.0, "one value on both sides"
        row |= {"kind": "categorical", "test": entry["method"], "p_value": p}
        row |= {"reference_share": ref_share.to_dict(), "current_share": cur_share.to_dict()}
        if note:
            row["note"] = note
        return row
    row |= {"kind": "numeric", "test": entry["method"], "p_value": p}
    row |= {"reference_mean": float(ref[name].mean()), "current_mean": float(cur[name].mean())}
    row |= {
        "reference_median": float(ref[name].median()),
        "current_median": float(cur[name].median()),
    }
    return row


def property_drift(
    reference: pd.DataFrame, current: pd.DataFrame, alpha: float
) -> tuple[list[dict[str, Any]], Any]:
    """Evidently's DataDriftPreset over the image properties; returns the rows and the snapshot."""
    ref = reference[PROPERTIES].reset_index(drop=True)
    cur = current[PROPERTIES].reset_index(drop=True)
    snapshot = _run_evidently(ref, cur, alpha)
    found = _evidently_p_values(snapshot)
    missing = {"p_value": None, "method": None}
    rows = [_property_row(name, found.get(name, missing), ref, cur) for name in PROPERTIES]
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows]), strict=True):
        row["p_adjusted"] = adjusted
        row["drift"] = bool(adjusted is not None and adjusted < alpha)
    ordered = [
        {k: r[k] for k in _HEADLINE} | {k: v for k, v in r.items() if k not in _HEADLINE}
        for r in rows
    ]
    return ordered, snapshot
