"""Metrics: pure functions over the predictions table (see docs/ARCHITECTURE.md).

Everything is derived from the confusion matrix (one `np.bincount`) and from the ranked
top-k class indices, so 250 classes x 250,000 rows take well under a second.

Conventions (each one is checked against scikit-learn in tests/test_metrics.py):

* Only labelled rows (`label_idx >= 0`) enter the metrics. Correctness is recomputed as
  `pred_idx == label_idx`; the table's `correct` column is not trusted.
* A class with zero support has no recall, f1 or Wilson interval (all null in JSON): they are
  undefined, and writing 0 would blame the model for what the held-out set lacks.
  Its precision is still defined: 0 when the model predicts it (every such prediction is
  wrong), and 0 by scikit-learn's `zero_division=0` when it is never predicted either.
* A class with support but no predictions has precision 0 (`zero_division=0`), recall 0, f1 0.
* `balanced_accuracy` is scikit-learn's: the mean recall over classes present in y_true.
* `macro_f1` averages f1 over the same classes, those present in y_true:
  `f1_score(y, p, labels=<classes with support>, average="macro", zero_division=0)`.
  Predictions of absent classes still lower it, through the recall of the true classes.
* Top-k accuracy: the label is among the first k ranked classes. With k >= n_classes every
  label is, so it is 1.0 (scikit-learn returns the same perfect score, with a warning).
* Calibration: see audits/calibration.py (15 equal-width bins, edges belong to the lower bin).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from audits.arrow_columns import list_matrix
from audits.calibration import DEFAULT_BINS, calibration_summary
from audits.errors import AuditError
from audits.intervals import proportion_with_ci, wilson_interval

TOP_K = (1, 3, 5)
# float32 softmax can land a hair outside [0, 1]; anything further out is a broken table.
_CONFIDENCE_SLACK = 1e-4


def _float_or_none(x: float) -> float | None:
    """A plain float, or None for NaN (JSON has no NaN; json.dumps(allow_nan=False) must pass)."""
    x = float(x)
    return None if np.isnan(x) else x


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion counts [n_classes, n_classes]: rows true, columns predicted, model class order."""
    flat = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def row_normalize(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum; rows with zero support stay all zeros."""
    support = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, support, out=np.zeros(cm.shape, dtype=np.float64), where=support > 0)


def per_class_arrays(cm: np.ndarray, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Per-class support, correct, predicted, recall, precision, f1, ci_low, ci_high.

    Undefined values (zero support: recall, f1, ci) are NaN here; precision uses
    zero_division=0. f1 = 2*TP / (support + predicted), scikit-learn's formula.
    """
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    correct = np.diag(cm).copy()
    has_support = support > 0
    recall = np.divide(correct, support, out=np.full(len(cm), np.nan), where=has_support)
    precision = np.divide(correct, predicted, out=np.zeros(len(cm)), where=predicted > 0)
    f1 = np.divide(
        2 * correct, support + predicted, out=np.full(len(cm), np.nan), where=has_support
    )
    ci_low, ci_high = wilson_interval(correct, support, alpha=alpha)
    return {
        "support": support,
        "correct": correct,
        "predicted": predicted,
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "ci_low": ci_low,
        "ci_high": ci_high,
    }


def accuracy(cm: np.ndarray) -> float:
    """Fraction of labelled rows predicted correctly."""
    return float(np.trace(cm) / cm.sum())


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over classes with support > 0 (sklearn's balanced_accuracy_score)."""
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def macro_f1(cm: np.ndarray) -> float:
    """Mean f1 over classes with support > 0 (see the module docstring for why)."""
    support = cm.sum(axis=1)
    present = support > 0
    tp2 = 2 * np.diag(cm)[present]
    return float(np.mean(tp2 / (support[present] + cm.sum(axis=0)[present])))


def top_k_accuracy(y_true: np.ndarray, ranked: np.ndarray, k: int, n_classes: int) -> float | None:
    """Fraction of rows whose label is among the first k columns of `ranked` [n, m].

    1.0 when k >= n_classes (every label is in the top k); None when fewer than k ranks
    were stored and k < n_classes, so the value cannot be known.
    """
    if k >= n_classes:
        return 1.0
    if ranked.shape[1] < k:
        return None
    hits = (ranked[:, :k] == np.asarray(y_true)[:, None]).any(axis=1)
    return float(hits.mean())


def ranked_from_probabilities(probabilities: np.ndarray, m: int = 5) -> np.ndarray:
    """Indices of the m most probable classes per row, most probable first."""
    p = np.asarray(probabilities, dtype=np.float32)
    n_classes = p.shape[1]
    m = min(m, n_classes)
    if m < n_classes:
        # argpartition avoids a full sort of every row; then order just the m candidates.
        top = np.argpartition(-p, m - 1, axis=1)[:, :m]
    else:
        top = np.broadcast_to(np.arange(n_classes), p.shape)
    order = np.argsort(-np.take_along_axis(p, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1).astype(np.int64)


def most_confused(cm: np.ndarray, classes: Sequence[str], top: int = 20) -> list[dict[str, Any]]:
    """Off-diagonal (true, predicted) pairs with count > 0, by count desc, then rate desc.

    rate = count / support of the true class. Remaining ties go in model class order.
    """
    off = cm.copy()
    np.fill_diagonal(off, 0)
    t, p = np.nonzero(off)
    counts = off[t, p]
    rates = counts / cm.sum(axis=1)[t]
    # lexsort sorts by the last key first: count desc, rate desc, true idx, predicted idx.
    order = np.lexsort((p, t, -rates, -counts))[:top]
    return [
        {
            "true": classes[t[i]],
            "predicted": classes[p[i]],
            "count": int(counts[i]),
            "rate": float(rates[i]),
        }
        for i in order
    ]


def _extremes(counts: np.ndarray, classes: Sequence[str]) -> tuple[float | None, Any, Any]:
    """(largest / smallest non-zero count, largest class, smallest non-zero class)."""
    nonzero = np.flatnonzero(counts > 0)
    if nonzero.size == 0:
        return None, None, None
    big = int(np.argmax(counts))
    small = int(nonzero[np.argmin(counts[nonzero])])
    return float(counts[big] / counts[small]), classes[big], classes[small]


def class_imbalance(
    support: np.ndarray,
    classes: Sequence[str],
    train_counts: Mapping[str, int] | None = None,
    min_support: int = 20,
) -> dict[str, Any]:
    """The `imbalance` block: test (and training) counts, the ratio and the thin classes.

    `ratio` is largest / smallest test support among classes with support > 0, since a
    zero-support class would make it infinite; zero-support classes are listed in
    `too_few` (support < min_support) instead. Ties go to the first class in model order.
    `train_ratio`/`train_largest`/`train_smallest` are the same for the training counts
    (None without them); classes missing from `train_counts` count 0.
    """
    support = np.asarray(support, dtype=np.int64)
    ratio, largest, smallest = _extremes(support, classes)
    out: dict[str, Any] = {
        "test_counts": {c: int(n) for c, n in zip(classes, support, strict=True)},
        "train_counts": None,
        "ratio": ratio,
        "largest": largest,
        "smallest": smallest,
        "min_support": int(min_support),
        "too_few": [c for c, n in zip(classes, support, strict=True) if n < min_support],
        "train_ratio": None,
        "train_largest": None,
        "train_smallest": None,
    }
    if train_counts is not None:
        unknown = sorted(set(train_counts) - set(classes))
        if unknown:
            raise AuditError(
                f"training manifest has classes the model does not know: {', '.join(map(str, unknown[:10]))}"
            )
        train = np.array([int(train_counts.get(c, 0)) for c in classes], dtype=np.int64)
        if (train < 0).any():
            raise AuditError("training counts must not be negative")
        out["train_counts"] = {c: int(n) for c, n in zip(classes, train, strict=True)}
        out["train_ratio"], out["train_largest"], out["train_smallest"] = _extremes(train, classes)
    return out


def _int_column(table: pd.DataFrame, name: str) -> np.ndarray:
    """A column as int64, or an AuditError naming it."""
    if name not in table.columns:
        raise AuditError(f"predictions table has no '{name}' column")
    try:
        return table[name].to_numpy(dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"predictions column '{name}' must be integers without nulls") from exc


def _ranked_column(
    table: pd.DataFrame, mask: np.ndarray, probabilities: np.ndarray | None, n_classes: int
) -> np.ndarray:
    """Top-k class indices of the labelled rows as an int64 array [n_labelled, m]."""
    matrix = list_matrix(table["topk_idx"]) if "topk_idx" in table.columns else None
    if matrix is not None:  # the Arrow-backed column an audit builds: no per-row lists
        ranked = matrix[mask].astype(np.int64, copy=False)
    elif "topk_idx" in table.columns:
        try:
            ranked = np.array(table["topk_idx"].to_numpy()[mask].tolist(), dtype=np.int64)
        except (TypeError, ValueError) as exc:
            raise AuditError(
                "predictions column 'topk_idx' must hold equal-length int lists"
            ) from exc
        if ranked.ndim != 2:
            raise AuditError("predictions column 'topk_idx' must hold equal-length int lists")
    elif probabilities is not None:
        probs = np.asarray(probabilities)
        if probs.shape != (len(table), n_classes):
            raise AuditError(
                f"probabilities must have shape ({len(table)}, {n_classes}), got {probs.shape}"
            )
        ranked = ranked_from_probabilities(probs[mask], m=max(TOP_K))
    else:
        raise AuditError(
            "predictions table has no 'topk_idx' column and no probabilities were given"
        )
    if ranked.size and (ranked.min() < 0 or ranked.max() >= n_classes):
        raise AuditError(
            "predictions column 'topk_idx' has class indices outside the model's classes"
        )
    return ranked


def _labelled_outcomes(
    table: pd.DataFrame, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labelled-row mask, true class indices, predicted class indices), checked."""
    label_idx = _int_column(table, "label_idx")
    pred_idx = _int_column(table, "pred_idx")
    if "confidence" not in table.columns:
        raise AuditError("predictions table has no 'confidence' column")
    mask = label_idx >= 0
    if not mask.any():
        raise AuditError(
            "no labelled images: metrics need rows whose label is one of the model's classes "
            "(give the held-out set a label column or class folders)"
        )
    y_true, y_pred = label_idx[mask], pred_idx[mask]
    if y_true.max() >= n_classes:
        raise AuditError(f"predictions column 'label_idx' exceeds the model's {n_classes} classes")
    if y_pred.min() < 0 or y_pred.max() >= n_classes:
        raise AuditError(
            f"predictions column 'pred_idx' is outside the model's {n_classes} classes"
        )
    return mask, y_true, y_pred


def _confidence(table: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """The labelled rows' confidences, checked to be probabilities and clipped to [0, 1]."""
    confidence = table["confidence"].to_numpy(dtype=np.float64)[mask]
    in_range = confidence.min() >= -_CONFIDENCE_SLACK and confidence.max() <= 1 + _CONFIDENCE_SLACK
    if not (np.all(np.isfinite(confidence)) and in_range):
        raise AuditError("predictions column 'confidence' must be probabilities in [0, 1]")
    return np.clip(confidence, 0.0, 1.0)


def per_class_rows(cm: np.ndarray, classes: Sequence[str]) -> list[dict[str, Any]]:
    """The ``per_class`` block: one row per class in model order, nulls where undefined."""
    pc = per_class_arrays(cm)
    return [
        {
            "class": classes[i],
            "support": int(pc["support"][i]),
            "correct": int(pc["correct"][i]),
            "recall": _float_or_none(pc["recall"][i]),
            "precision": float(pc["precision"][i]),
            "f1": _float_or_none(pc["f1"][i]),
            "ci_low": _float_or_none(pc["ci_low"][i]),
            "ci_high": _float_or_none(pc["ci_high"][i]),
            "predicted": int(pc["predicted"][i]),
        }
        for i in range(len(classes))
    ]


def audit_metrics(
    table: pd.DataFrame,
    classes: Sequence[str],
    train_counts: Mapping[str, int] | None = None,
    min_support: int = 20,
    top_pairs: int = 20,
    probabilities: np.ndarray | None = None,
    n_bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """The `metrics` block of audit.json (DESIGN.md fields + ARCHITECTURE.md extras).

    `probabilities` [n_rows, n_classes] is used only when the table has no `topk_idx`.
    Every value is a plain int, float, str or None: json.dumps(allow_nan=False) works.
    Raises AuditError when no row is labelled or the table is inconsistent with `classes`.
    """
    classes = [str(c) for c in classes]
    n_classes = len(classes)
    if n_classes == 0 or len(set(classes)) != n_classes:
        raise AuditError("the model's class list must be non-empty and without duplicates")
    mask, y_true, y_pred = _labelled_outcomes(table, n_classes)
    confidence = _confidence(table, mask)
    ranked = _ranked_column(table, mask, probabilities, n_classes)
    cm = confusion_counts(y_true, y_pred, n_classes)
    calibration = calibration_summary(confidence, y_true == y_pred, n_bins)
    _, acc_low, acc_high = proportion_with_ci(int(np.trace(cm)), len(y_true))
    return {
        "accuracy": accuracy(cm),
        "accuracy_ci_low": acc_low,
        "accuracy_ci_high": acc_high,
        "balanced_accuracy": balanced_accuracy(cm),
        "macro_f1": macro_f1(cm),
        "ece": calibration["ece"],
        "top_k_accuracy": {str(k): top_k_accuracy(y_true, ranked, k, n_classes) for k in TOP_K},
        "per_class": per_class_rows(cm, classes),
        "confusion": {
            "labels": list(classes),
            "matrix": cm.tolist(),
            "normalized": row_normalize(cm).tolist(),
        },
        "n_classes": n_classes,
        "n_labelled": len(y_true),
        "most_confused": most_confused(cm, classes, top_pairs),
        "imbalance": class_imbalance(cm.sum(axis=1), classes, train_counts, min_support),
        "calibration": calibration,
    }
