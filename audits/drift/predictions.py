"""The predictions view of drift: predicted-class distribution and confidence, reference vs
current, combined by Bonferroni; accuracy on each labelled side is reported (with its Wilson interval),
not tested."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from audits.intervals import proportion_with_ci

#: Expected count under which a class joins the "other" bucket (Cochran's rule).
MIN_EXPECTED = 5.0
OTHER = "other"


def class_counts(
    ref_counts: np.ndarray, cur_counts: np.ndarray, classes: Sequence[str]
) -> list[dict[str, Any]]:
    """Per class: predictions on each side and their shares of the side."""
    ref_total, cur_total = max(ref_counts.sum(), 1), max(cur_counts.sum(), 1)
    return [
        {
            "class": c,
            "reference": int(r),
            "current": int(k),
            "reference_share": float(r / ref_total),
            "current_share": float(k / cur_total),
        }
        for c, r, k in zip(classes, ref_counts, cur_counts, strict=True)
    ]


def merge_rare_classes(columns: dict[str, np.ndarray]) -> list[str]:
    """Merge classes with an expected count below ``MIN_EXPECTED`` into ``OTHER``, in place.

    ``columns`` maps a class to its [reference, current] counts. While some class is too small
    and more than two columns remain, the smallest such class joins the bucket (which can
    itself be merged away). Returns the merged class names in merge order.
    """
    merged: list[str] = []
    while len(columns) > 2:
        table = np.stack(list(columns.values()), axis=1)
        expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
        small = [name for name, e in zip(columns, expected.min(0), strict=True) if e < MIN_EXPECTED]
        if not small:
            break
        name = min(small, key=lambda c: (columns[c].sum(), c == OTHER))
        if name == OTHER:
            # Only the bucket is small: fold the smallest real class into it instead.
            name = min((c for c in columns if c != OTHER), key=lambda c: columns[c].sum())
        bucket = columns.pop(name)
        if name != OTHER:
            merged.append(name)
        columns[OTHER] = columns.get(OTHER, np.zeros(2)) + bucket
    return merged


def class_distribution_test(
    reference: Sequence[int], current: Sequence[int], classes: Sequence[str]
) -> dict[str, Any]:
    """Chi-square test of independence of side x predicted class.

    Classes predicted on neither side are dropped, rare ones merged (``merge_rare_classes``).
    Yates' correction applies to a 2 x 2 table (scipy's default).
    """
    ref_counts = np.bincount(np.asarray(reference, dtype=np.int64), minlength=len(classes))
    cur_counts = np.bincount(np.asarray(current, dtype=np.int64), minlength=len(classes))
    columns = {
        c: np.array([r, k], dtype=np.float64)
        for c, r, k in zip(classes, ref_counts, cur_counts, strict=True)
        if r + k > 0
    }
    merged = merge_rare_classes(columns)
    result: dict[str, Any] = {"test": "chi-square (contingency)", "merged_into_other": merged}
    if len(columns) < 2:
        result.update(
            p_value=1.0,
            statistic=0.0,
            dof=0,
            note="one predicted class on both sides; nothing to compare",
        )
    else:
        chi2, p, dof, _ = stats.chi2_contingency(np.stack(list(columns.values()), axis=1))
        result.update(p_value=float(p), statistic=float(chi2), dof=int(dof))
    result["counts"] = class_counts(ref_counts, cur_counts, classes)
    return result


def confidence_test(reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    """Two-sample Kolmogorov–Smirnov test on the max-softmax confidence."""
    ks = stats.ks_2samp(reference, current)
    return {
        "test": "two-sample Kolmogorov-Smirnov",
        "p_value": float(ks.pvalue),
        "statistic": float(ks.statistic),
        "reference_mean": float(np.mean(reference)),
        "current_mean": float(np.mean(current)),
        "reference_median": float(np.median(reference)),
        "current_median": float(np.median(current)),
    }


def labelled_accuracy(table: pd.DataFrame) -> dict[str, Any]:
    """Accuracy over the labelled rows of a predictions table with its Wilson 95% interval."""
    labelled = table["label_idx"] >= 0
    n = int(labelled.sum())
    k = int(table.loc[labelled, "correct"].sum()) if n else 0
    value, low, high = proportion_with_ci(k, n)
    return {"accuracy": value, "correct": k, "n": n, "ci_low": low, "ci_high": high}


def prediction_drift(
    reference: pd.DataFrame, current: pd.DataFrame, classes: Sequence[str], alpha: float
) -> dict[str, Any]:
    """Class-distribution and confidence tests, combined by Bonferroni; accuracy where labelled."""
    cls = class_distribution_test(reference["pred_idx"], current["pred_idx"], classes)
    conf = confidence_test(
        reference["confidence"].to_numpy(np.float64), current["confidence"].to_numpy(np.float64)
    )
    p = min(1.0, 2.0 * min(cls["p_value"], conf["p_value"]))
    ref, cur = labelled_accuracy(reference), labelled_accuracy(current)
    return {
        "p_value": p,
        "drift": bool(p < alpha),
        "combined": "bonferroni: min(1, 2 * min(classes.p_value, confidence.p_value))",
        "classes": cls,
        "confidence": conf,
        "accuracy": {
            "reference": ref["accuracy"],
            "current": cur["accuracy"],
            "n_reference_labelled": ref["n"],
            "n_current_labelled": cur["n"],
            # Wilson 95% intervals, so that a reader sees how sure each accuracy is.
            "reference_correct": ref["correct"],
            "reference_ci_low": ref["ci_low"],
            "reference_ci_high": ref["ci_high"],
            "current_correct": cur["correct"],
            "current_ci_low": cur["ci_low"],
            "current_ci_high": cur["ci_high"],
        },
    }
