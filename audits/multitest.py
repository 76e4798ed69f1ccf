"""Multiple-testing corrections, all through statsmodels' ``multipletests``.

Every family of tests in a run (image properties in drift, per-class changes in a comparison,
slices) is adjusted here, so one rule has one implementation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from statsmodels.stats.multitest import multipletests

HOLM = "holm"
BENJAMINI_HOCHBERG = "fdr_bh"


def adjust_p_values(p_values: Sequence[float | None], method: str) -> list[float | None]:
    """Adjusted p-values (``"holm"`` or ``"fdr_bh"``); ``None`` and NaN stay ``None`` and are
    left out of the family."""
    known = [i for i, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    out: list[float | None] = [None] * len(p_values)
    if known:
        adjusted = multipletests(np.array([p_values[i] for i in known], float), method=method)[1]
        for i, value in zip(known, adjusted, strict=True):
            out[i] = float(value)
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni step-down adjusted p-values (controls the family-wise error rate)."""
    return adjust_p_values(p_values, HOLM)


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (controls the false discovery rate)."""
    return adjust_p_values(p_values, BENJAMINI_HOCHBERG)
