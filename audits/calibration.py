"""Calibration: expected calibration error and reliability-diagram data.

Bins are `n_bins` equal-width intervals over [0, 1] with edges `np.linspace(0, 1, n_bins + 1)`.
A confidence exactly on an inner edge belongs to the bin *below* it: bin i is
(edges[i], edges[i + 1]] and the first bin is closed, [0, edges[1]]. This is the convention of
Guo et al. (2017)'s reference code and of `sklearn.calibration.calibration_curve`
(`strategy="uniform"`), so the per-bin numbers can be checked against scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_BINS = 15


def bin_edges(n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """The n_bins + 1 equal-width edges over [0, 1]."""
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    return np.linspace(0.0, 1.0, n_bins + 1)


def assign_bins(confidence: np.ndarray, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Bin index (0..n_bins-1) of each confidence; an inner edge goes to the lower bin."""
    conf = np.asarray(confidence, dtype=np.float64)
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0.0 or conf.max() > 1.0):
        raise ValueError("confidences must be finite and within [0, 1]")
    # side="left": searchsorted returns i with inner[i-1] < x <= inner[i], i.e. (low, high].
    return np.searchsorted(bin_edges(n_bins)[1:-1], conf, side="left")


def _bin_sums(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin count, summed confidence and summed correctness."""
    conf = np.asarray(confidence, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    if conf.shape != hits.shape or conf.ndim != 1:
        raise ValueError("confidence and correct must be 1-d arrays of the same length")
    if conf.size == 0:
        raise ValueError("calibration needs at least one prediction")
    ids = assign_bins(conf, n_bins)
    count = np.bincount(ids, minlength=n_bins)
    conf_sum = np.bincount(ids, weights=conf, minlength=n_bins)
    hit_sum = np.bincount(ids, weights=hits, minlength=n_bins)
    return count, conf_sum, hit_sum


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_BINS
) -> float:
    """ECE = sum over bins of |accuracy - mean confidence| * n_bin / n."""
    count, conf_sum, hit_sum = _bin_sums(confidence, correct, n_bins)
    # |hit_sum/count - conf_sum/count| * count / n == |hit_sum - conf_sum| / n; empty bins add 0.
    return float(np.abs(hit_sum - conf_sum).sum() / count.sum())


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_BINS
) -> list[dict[str, Any]]:
    """Reliability-diagram data: low, high, count, mean confidence, accuracy per bin.

    Empty bins have count 0 and confidence/accuracy None (undefined, drawn as gaps).
    """
    count, conf_sum, hit_sum = _bin_sums(confidence, correct, n_bins)
    edges = bin_edges(n_bins)
    bins = []
    for i in range(n_bins):
        n_i = int(count[i])
        bins.append(
            {
                "low": float(edges[i]),
                "high": float(edges[i + 1]),
                "count": n_i,
                "confidence": float(conf_sum[i] / n_i) if n_i else None,
                "accuracy": float(hit_sum[i] / n_i) if n_i else None,
            }
        )
    return bins


def calibration_summary(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    """The `metrics.calibration` block: {ece, n_bins, bins}."""
    return {
        "ece": expected_calibration_error(confidence, correct, n_bins),
        "n_bins": int(n_bins),
        "bins": reliability_bins(confidence, correct, n_bins),
    }
