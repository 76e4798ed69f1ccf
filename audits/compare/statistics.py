"""The comparison's numbers: overall and per-class paired statistics (no thresholds but alpha).

The tests themselves live in ``audits.paired_stats``; this module applies them to the aligned
pairs and lays the results out as ``comparison.json``'s ``overall`` and ``per_class`` blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from audits.compare.align import Aligned
from audits.paired_stats import (
    PairedOutcome,
    balanced_accuracy_diff,
    bh_adjust,
    cluster_codes,
    paired_outcome,
)

CI_METHOD = (
    "Newcombe square-and-add interval for paired proportions (Newcombe 1998, method 10), "
    "widened by the square root of the design effect when images come in groups"
)


def _overall_block(o: PairedOutcome, ba: dict[str, Any], alpha: float) -> dict[str, Any]:
    return {
        "n": o.n,
        "accuracy_a": o.accuracy_a,
        "accuracy_b": o.accuracy_b,
        "diff": o.diff,
        "ci_low": o.ci_low,
        "ci_high": o.ci_high,
        "ci_level": 1 - alpha,
        "ci_method": CI_METHOD,
        "counts": {
            "both_right": o.both,
            "only_a_right": o.a_only,
            "only_b_right": o.b_only,
            "both_wrong": o.neither,
        },
        "mcnemar": {
            "b": o.a_only,
            "c": o.b_only,
            "statistic": o.statistic,
            "p_value": o.p_value,
            "p_exact": o.p_exact,
            "p_clustered": o.p_clustered,
            "n_clusters": o.n_clusters,
            "design_effect": o.design_effect,
        },
        "balanced_accuracy": ba,
    }


def _class_row(cls: str, c: PairedOutcome | None) -> dict[str, Any]:
    """One ``per_class`` row; ``c`` is None for a class without images."""
    if c is None:
        return {
            "class": cls,
            "support": 0,
            "recall_a": None,
            "recall_b": None,
            "diff": None,
            "ci_low": None,
            "ci_high": None,
            "a_only": 0,
            "b_only": 0,
            "p_value": None,
            "p_exact": None,
            "p_clustered": None,
            "p_adjusted": None,
        }
    return {
        "class": cls,
        "support": c.n,
        "recall_a": c.accuracy_a,
        "recall_b": c.accuracy_b,
        "diff": c.diff,
        "ci_low": c.ci_low,
        "ci_high": c.ci_high,
        "a_only": c.a_only,
        "b_only": c.b_only,
        "p_value": c.p_value,
        "p_exact": c.p_exact,
        "p_clustered": c.p_clustered,
        "p_adjusted": None,
    }


def _class_rows(
    classes: list[str],
    correct: tuple[np.ndarray, np.ndarray],
    labels: tuple[np.ndarray, pd.Index],
    clusters: np.ndarray | None,
    alpha: float,
) -> list[dict[str, Any]]:
    """Per-class paired outcomes in ``classes`` order, BH-adjusted across the tested classes.

    ``labels`` is the label codes of the pairs and the class name of each code.
    """
    ca, cb = correct
    label_codes, label_names = labels
    order = np.argsort(label_codes, kind="stable")
    bounds = np.searchsorted(label_codes[order], np.arange(len(label_names) + 1))
    index = {name: order[bounds[i] : bounds[i + 1]] for i, name in enumerate(label_names)}
    rows: list[dict[str, Any]] = []
    for cls in classes:
        idx = index.get(cls, np.zeros(0, dtype=np.int64))
        outcome = None
        if len(idx):
            sub = None if clusters is None else clusters[idx]
            outcome = paired_outcome(ca[idx], cb[idx], sub, alpha)
        rows.append(_class_row(cls, outcome))
    tested = [r for r in rows if r["p_value"] is not None]
    for r, adj in zip(tested, bh_adjust([r["p_value"] for r in tested]), strict=True):
        r["p_adjusted"] = float(adj)
    return rows


def paired_statistics(aligned: Aligned, alpha: float = 0.05) -> dict[str, Any]:
    """Overall and per-class paired statistics (no thresholds other than the CI level)."""
    f = aligned.frame
    ca, cb = f["correct_a"].to_numpy(), f["correct_b"].to_numpy()
    # Integer codes once, so that hundreds of classes over 250,000 images stay fast.
    labels = pd.factorize(f["label"].astype(str))
    groups = aligned.groups
    clusters = None if groups is None else cluster_codes(groups, len(f))
    o = paired_outcome(ca, cb, clusters, alpha)
    ba = balanced_accuracy_diff(ca, cb, labels[0], clusters, alpha)
    rows = _class_rows(aligned.classes, (ca, cb), labels, clusters, alpha)
    return {"overall": _overall_block(o, ba, alpha), "per_class": rows}
