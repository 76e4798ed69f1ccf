"""Confidence intervals for proportions (per-class recall)."""

from __future__ import annotations

from typing import Any

import numpy as np
from statsmodels.stats.proportion import proportion_confint


def wilson_interval(
    successes: int | np.ndarray, n: int | np.ndarray, alpha: float = 0.05
) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for `successes` out of `n` (two-sided, level 1 - alpha).

    Vectorised: arrays in give float arrays out; scalars in give Python floats out.
    Where n == 0 the proportion is undefined and both bounds are NaN (the JSON layer
    writes them as null). The bounds are exactly 0 when successes == 0 and exactly 1 when
    successes == n (statsmodels can leave ~1e-18 there, which would put the interval
    beside a recall of 0), and otherwise clipped to [0, 1].
    """
    k = np.asarray(successes, dtype=np.float64)
    total = np.asarray(n, dtype=np.float64)
    if np.any(total < 0) or np.any(k < 0) or np.any(k > total):
        raise ValueError("wilson_interval needs 0 <= successes <= n")
    empty = total == 0
    # statsmodels divides by n: give it n=1 where n=0 and overwrite afterwards,
    # so that zero-support classes produce no RuntimeWarning.
    low, high = proportion_confint(k, np.where(empty, 1.0, total), alpha=alpha, method="wilson")
    low = np.where(k == 0, 0.0, np.clip(low, 0.0, 1.0))
    high = np.where(k == total, 1.0, np.clip(high, 0.0, 1.0))
    low, high = np.where(empty, np.nan, low), np.where(empty, np.nan, high)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def proportion_with_ci(
    k: int, n: int, alpha: float = 0.05
) -> tuple[float | None, float | None, float | None]:
    """``k / n`` and its Wilson interval as ``(value, low, high)``; all ``None`` when n = 0."""
    if not n:
        return None, None, None
    low, high = wilson_interval(int(k), int(n), alpha=alpha)
    return int(k) / int(n), low, high


def accuracy_block(correct: np.ndarray | list[bool], alpha: float = 0.05) -> dict[str, Any]:
    """``{n, correct, accuracy, ci_low, ci_high}`` for a boolean array (nulls when n = 0)."""
    n = int(len(correct))
    k = int(np.sum(correct))
    value, low, high = proportion_with_ci(k, n, alpha=alpha)
    return {"n": n, "correct": k, "accuracy": value, "ci_low": low, "ci_high": high}
