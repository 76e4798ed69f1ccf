"""Paired statistics for two models scored on the same images (pure functions, no I/O).

Notation, for one set of images each scored by model A and model B:

* ``both``: both right, ``a_only``: only A right (B's losses), ``b_only``: only B right
  (B's gains), ``neither``: both wrong. ``n`` is their sum.
* The difference is always **B minus A**: ``(b_only - a_only) / n``.

Methods (each checked against an independent computation in tests/test_compare_stats.py):

* McNemar's exact test: ``statsmodels.stats.contingency_tables.mcnemar(exact=True)``, i.e. the
  two-sided binomial test of ``a_only`` out of the ``a_only + b_only`` discordant images.
* Confidence interval of the difference: Newcombe's square-and-add (hybrid score) interval for
  paired proportions (Newcombe 1998, Stat Med 17:2635, method 10), with the phi correction
  as given by Fagerland, Lydersen & Laake (2014, Stat Med 33:2850).
* Images are rarely independent: several shots of one car (the manifest's ``group``) tend to
  be right or wrong together, which makes image-level tests too confident. When groups of
  more than one image exist we also compute the clustered McNemar statistic of Durkalski et
  al. (2003, Stat Med 22:2417) and use the larger of the two p-values, and widen the interval
  by the square root of the design effect (cluster-robust over independent variance).
* Balanced accuracy (the mean per-class recall) has no textbook paired interval: a stratified
  cluster bootstrap (seeded, classes keep their size) gives its interval and a sign-flip
  permutation test (swap A and B within a group at random) its p-value.
* Several classes tested at once: Benjamini-Hochberg via ``audits.multitest``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2
from statsmodels.stats.contingency_tables import mcnemar

from audits.intervals import wilson_interval
from audits.multitest import benjamini_hochberg

#: Seed of every resampling: a comparison is reproducible to the last digit.
SEED = 20261123


def mcnemar_exact(a_only: int, b_only: int) -> tuple[float, float]:
    """McNemar's exact test on the discordant counts: (statistic = min count, two-sided p)."""
    result = mcnemar([[0, int(a_only)], [int(b_only), 0]], exact=True)
    return float(result.statistic), float(min(1.0, result.pvalue))


def clustered_mcnemar(
    a_only_per_cluster: np.ndarray, b_only_per_cluster: np.ndarray
) -> tuple[float, float]:
    """Durkalski et al. (2003) McNemar statistic for clustered pairs: (chi-square, p).

    ``X2 = (sum_k (b_k - c_k))^2 / sum_k (b_k - c_k)^2`` over clusters ``k``; with one image per
    cluster it is the ordinary (uncorrected) McNemar statistic ``(b - c)^2 / (b + c)``.
    """
    diff = np.asarray(a_only_per_cluster, dtype=np.float64) - np.asarray(
        b_only_per_cluster, dtype=np.float64
    )
    denom = float(np.sum(diff**2))
    if denom == 0.0:
        return 0.0, 1.0
    stat = float(np.sum(diff)) ** 2 / denom
    return stat, float(chi2.sf(stat, df=1))


def paired_diff_ci(
    both: int, a_only: int, b_only: int, neither: int, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Newcombe's square-and-add interval for acc_B - acc_A: (difference, low, high).

    Follows Fagerland, Lydersen & Laake (2014): Wilson intervals for each model's accuracy,
    combined with the correlation ``psi`` of the paired table (phi with Newcombe's correction).
    """
    n = both + a_only + b_only + neither
    if n == 0:
        return math.nan, math.nan, math.nan
    # Rows: B right / wrong; columns: A right / wrong. p1 = acc_B, p2 = acc_A.
    row1, row2 = both + b_only, a_only + neither
    col1, col2 = both + a_only, b_only + neither
    p1, p2 = row1 / n, col1 / n
    diff = p1 - p2
    l1, u1 = wilson_interval(row1, n, alpha)
    l2, u2 = wilson_interval(col1, n, alpha)
    if min(row1, row2, col1, col2) == 0:
        psi = 0.0
    else:
        prod = float(row1) * row2 * col1 * col2
        det = float(both) * neither - float(b_only) * a_only
        if det > n / 2:
            psi = (det - n / 2) / math.sqrt(prod)
        elif det >= 0:
            psi = 0.0
        else:
            psi = det / math.sqrt(prod)
    low = diff - math.sqrt(
        max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2))
    )
    high = diff + math.sqrt(
        max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1))
    )
    return diff, max(-1.0, low), min(1.0, high)


def cluster_codes(clusters: np.ndarray | None, n: int) -> np.ndarray:
    """Integer cluster ids; ``None`` (or a missing group) makes an image its own cluster."""
    if clusters is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(clusters)
    if np.issubdtype(arr.dtype, np.integer):  # already codes (the fast path for many classes)
        return np.unique(arr, return_inverse=True)[1].astype(np.int64).reshape(-1)
    codes, _ = pd.factorize(pd.Series(clusters, dtype=object).astype("string"))
    codes = codes.astype(np.int64)
    missing = codes < 0
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    return codes


def design_effect(outcome: np.ndarray, codes: np.ndarray) -> float:
    """Cluster-robust variance of the mean of ``outcome`` over its independent variance (>= 1).

    ``outcome`` is +1 where only B is right, -1 where only A is, 0 otherwise. Returns 1 when
    no cluster holds more than one image.
    """
    v = np.asarray(outcome, dtype=np.float64)
    n = len(v)
    if n < 2:
        return 1.0
    sizes = np.bincount(codes)
    sizes = sizes[sizes > 0]
    if sizes.max(initial=0) <= 1 or len(sizes) < 2:
        return 1.0
    mean = v.mean()
    var_iid = float(np.sum((v - mean) ** 2)) / n**2
    if var_iid == 0.0:
        return 1.0
    sums = np.bincount(codes, weights=v)
    counts = np.bincount(codes).astype(np.float64)
    used = counts > 0
    k = int(used.sum())
    var_cluster = k / (k - 1) * float(np.sum((sums[used] - mean * counts[used]) ** 2)) / n**2
    return max(1.0, var_cluster / var_iid)


@dataclass(frozen=True)
class PairedOutcome:
    """The paired comparison of two models' right/wrong outcomes on the same images."""

    n: int
    both: int
    a_only: int  # A right, B wrong: B's losses (McNemar's b)
    b_only: int  # A wrong, B right: B's gains (McNemar's c)
    neither: int
    accuracy_a: float
    accuracy_b: float
    diff: float  # accuracy_b - accuracy_a
    ci_low: float
    ci_high: float
    statistic: float  # McNemar exact statistic: min(a_only, b_only)
    p_exact: float
    n_clusters: int
    design_effect: float
    p_clustered: float | None  # Durkalski, when clusters of several images exist
    p_value: float  # the one decisions use: max(p_exact, p_clustered)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_outcome(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    clusters: np.ndarray | None = None,
    alpha: float = 0.05,
) -> PairedOutcome:
    """Counts, accuracy difference with its interval, and McNemar's test for paired outcomes."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("correct_a and correct_b must be aligned (same length)")
    n = len(a)
    both = int(np.sum(a & b))
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    neither = n - both - a_only - b_only
    diff, low, high = paired_diff_ci(both, a_only, b_only, neither, alpha)
    statistic, p_exact = mcnemar_exact(a_only, b_only)
    codes = cluster_codes(clusters, n)
    n_clusters = int(len(np.unique(codes))) if n else 0
    deff, p_clustered = 1.0, None
    if n and n_clusters < n:
        outcome = b.astype(np.int8) - a.astype(np.int8)
        deff = design_effect(outcome, codes)
        a_k = np.bincount(codes, weights=(a & ~b).astype(np.float64))
        b_k = np.bincount(codes, weights=(~a & b).astype(np.float64))
        _, p_clustered = clustered_mcnemar(a_k, b_k)
        if deff > 1.0:
            widen = math.sqrt(deff)
            low = max(-1.0, diff - (diff - low) * widen)
            high = min(1.0, diff + (high - diff) * widen)
    p_value = p_exact if p_clustered is None else max(p_exact, p_clustered)
    return PairedOutcome(
        n=n,
        both=both,
        a_only=a_only,
        b_only=b_only,
        neither=neither,
        accuracy_a=(both + a_only) / n if n else math.nan,
        accuracy_b=(both + b_only) / n if n else math.nan,
        diff=diff,
        ci_low=low,
        ci_high=high,
        statistic=statistic,
        p_exact=p_exact,
        n_clusters=n_clusters,
        design_effect=deff,
        p_clustered=p_clustered,
        p_value=p_value,
    )


def bh_adjust(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (``audits.multitest``), same order as given."""
    adjusted = benjamini_hochberg(np.asarray(p_values, dtype=np.float64).tolist())
    return np.array([np.nan if a is None else a for a in adjusted], dtype=np.float64)


def _class_clusters(
    outcome: np.ndarray, labels: np.ndarray, codes: np.ndarray
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per class: (n images, per-cluster outcome sums, per-cluster sizes)."""
    out = []
    for cls in np.unique(labels):
        mask = labels == cls
        _, local = np.unique(codes[mask], return_inverse=True)
        sums = np.bincount(local, weights=outcome[mask].astype(np.float64))
        sizes = np.bincount(local).astype(np.float64)
        out.append((int(mask.sum()), sums, sizes))
    return out


def _resampled_means(
    per_class: list[tuple[int, np.ndarray, np.ndarray]],
    n_boot: int,
    n_perm: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap draws of the B-minus-A balanced accuracy and its sign-flip null draws.

    Identical (sum, size) groups of a class are pooled, so a draw is a multinomial over few
    kinds; for each |sum| kind the number of positive signs is Binomial(count, 1/2).
    """
    boot = np.zeros(n_boot)
    perm = np.zeros(n_perm)
    for n_c, sums, sizes in per_class:
        kinds, counts = np.unique(np.stack([sums, sizes], axis=1), axis=0, return_counts=True)
        draws = rng.multinomial(len(sums), counts / counts.sum(), size=n_boot)
        num, den = draws @ kinds[:, 0], draws @ kinds[:, 1]
        boot += np.divide(num, den, out=np.zeros(n_boot), where=den > 0)
        mags, mag_counts = np.unique(np.abs(sums[sums != 0]), return_counts=True)
        if len(mags):
            pos = rng.binomial(mag_counts, 0.5, size=(n_perm, len(mags)))
            perm += ((2 * pos - mag_counts) @ mags) / n_c
    return boot / len(per_class), perm / len(per_class)


def balanced_accuracy_diff(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    labels: np.ndarray,
    clusters: np.ndarray | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    n_perm: int = 10000,
    seed: int = SEED,
) -> dict[str, Any]:
    """Balanced accuracy of A and B, their difference, a bootstrap CI and a sign-flip p-value.

    Balanced accuracy is the mean recall over the classes present in ``labels``. The bootstrap
    resamples groups (images when there are none) with replacement within each class, so every
    class keeps its place in the mean; identical groups are pooled and drawn as multinomial
    counts, which is the same resampling at a fraction of the cost. The permutation test flips
    the sign of each group's B-minus-A outcome at random (the null: A and B interchangeable).
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    labels = np.asarray(labels)
    n = len(a)
    if n == 0:
        keys = (
            "balanced_accuracy_a",
            "balanced_accuracy_b",
            "diff",
            "ci_low",
            "ci_high",
            "p_value",
        )
        return dict.fromkeys(keys, math.nan)
    outcome = b.astype(np.int64) - a.astype(np.int64)
    codes = cluster_codes(clusters, n)
    classes = np.unique(labels)
    recall_a = np.array([a[labels == c].mean() for c in classes])
    recall_b = np.array([b[labels == c].mean() for c in classes])
    diff = float(recall_b.mean() - recall_a.mean())
    rng = np.random.default_rng(seed)
    boot, perm = _resampled_means(_class_clusters(outcome, labels, codes), n_boot, n_perm, rng)
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    # Small slack: the observed value itself must count as "at least as extreme".
    extreme = int(np.sum(np.abs(perm) >= abs(diff) - 1e-12))
    p_value = (1 + extreme) / (n_perm + 1)
    return {
        "balanced_accuracy_a": float(recall_a.mean()),
        "balanced_accuracy_b": float(recall_b.mean()),
        "diff": diff,
        "ci_low": float(min(low, diff)),
        "ci_high": float(max(high, diff)),
        "p_value": float(p_value),
        "method": "stratified group bootstrap (percentile) and sign-flip permutation test",
        "n_boot": n_boot,
        "n_perm": n_perm,
        "seed": seed,
    }
