"""Paired statistics (audits.paired_stats) against references: scipy, statsmodels, published values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import binomtest, chi2
from sklearn.metrics import balanced_accuracy_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from audits.paired_stats import (
    balanced_accuracy_diff,
    bh_adjust,
    cluster_codes,
    clustered_mcnemar,
    design_effect,
    mcnemar_exact,
    paired_diff_ci,
    paired_outcome,
)


def outcomes(both: int, a_only: int, b_only: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Right/wrong arrays of A and B with the given paired counts."""
    a = np.array([1] * both + [1] * a_only + [0] * b_only + [0] * neither, dtype=bool)
    b = np.array([1] * both + [0] * a_only + [1] * b_only + [0] * neither, dtype=bool)
    return a, b


# --- McNemar ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a_only,b_only", [(6, 16), (0, 0), (0, 7), (1, 10), (12, 12), (50, 71), (3, 0), (200, 240)]
)
def test_mcnemar_exact_is_the_binomial_test_on_discordant_pairs(a_only, b_only):
    stat, p = mcnemar_exact(a_only, b_only)
    n = a_only + b_only
    expected = 1.0 if n == 0 else binomtest(min(a_only, b_only), n, 0.5).pvalue
    assert stat == min(a_only, b_only)
    assert p == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_mcnemar_exact_published_example():
    # Cavo et al. (2012) as analysed by Fagerland, Lydersen & Laake (2014): 6 vs 16
    # discordant pairs, exact conditional McNemar p = 0.052.
    _, p = mcnemar_exact(6, 16)
    assert round(p, 3) == 0.052


def test_paired_outcome_counts_and_test_match_statsmodels_on_the_2x2_table():
    a, b = outcomes(both=59, a_only=16, b_only=6, neither=80)
    o = paired_outcome(a, b)
    assert (o.both, o.a_only, o.b_only, o.neither, o.n) == (59, 16, 6, 80, 161)
    ref = mcnemar([[59, 16], [6, 80]], exact=True)
    assert o.p_exact == pytest.approx(ref.pvalue)
    assert o.statistic == ref.statistic
    assert o.accuracy_a == pytest.approx(75 / 161)
    assert o.accuracy_b == pytest.approx(65 / 161)
    assert o.diff == pytest.approx(-10 / 161)
    assert o.p_clustered is None and o.p_value == o.p_exact and o.design_effect == 1.0


# --- the interval -------------------------------------------------------------------------------


def test_newcombe_interval_published_example():
    # Fagerland, Lydersen & Laake (2014), Cavo et al. data (59, 6, 16, 80): Newcombe
    # square-and-add estimate -0.0621, 95% CI -0.1186 to -0.0046 (first measurement minus
    # second). Here the first measurement is B: B right in 59 + 6, A right in 59 + 16.
    diff, low, high = paired_diff_ci(both=59, a_only=16, b_only=6, neither=80)
    assert round(diff, 4) == -0.0621
    assert round(low, 4) == -0.1186
    assert round(high, 4) == -0.0046


def _newcombe_reference(
    n11: int, n12: int, n21: int, n22: int, alpha: float = 0.05
) -> tuple[float, float]:
    """Newcombe (1998) method 10 written out independently, from statsmodels' Wilson interval."""
    n = n11 + n12 + n21 + n22
    p1, p2 = (n11 + n12) / n, (n11 + n21) / n
    l1, u1 = proportion_confint(n11 + n12, n, alpha, method="wilson")
    l2, u2 = proportion_confint(n11 + n21, n, alpha, method="wilson")
    margins = [n11 + n12, n21 + n22, n11 + n21, n12 + n22]
    a = n11 * n22 - n12 * n21
    if 0 in margins:
        phi = 0.0
    else:
        phi = (max(a - n / 2, 0) if a > 0 else a) / math.sqrt(math.prod(margins))
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return low, high


@pytest.mark.parametrize(
    "both,a_only,b_only,neither",
    [
        (59, 16, 6, 80),
        (1, 7, 1, 12),
        (400, 10, 30, 60),
        (5, 5, 5, 5),
        (900, 3, 1, 96),
        (10, 0, 12, 3),
    ],
)
def test_newcombe_interval_matches_an_independent_computation(both, a_only, b_only, neither):
    _, low, high = paired_diff_ci(both, a_only, b_only, neither)
    ref_low, ref_high = _newcombe_reference(both, b_only, a_only, neither)
    assert low == pytest.approx(ref_low, abs=1e-9)
    assert high == pytest.approx(ref_high, abs=1e-9)


def test_interval_is_antisymmetric_in_a_and_b_and_contains_the_estimate():
    d1, l1, h1 = paired_diff_ci(400, 10, 30, 60)
    d2, l2, h2 = paired_diff_ci(400, 30, 10, 60)
    assert d1 == pytest.approx(-d2)
    assert (l1, h1) == pytest.approx((-h2, -l2))
    assert l1 < d1 < h1


def test_identical_models_have_a_zero_difference_and_p_one():
    a = np.array([True] * 70 + [False] * 30)
    o = paired_outcome(a, a.copy())
    assert o.diff == 0.0 and o.p_value == 1.0
    assert o.ci_low < 0 < o.ci_high
    assert o.ci_low == pytest.approx(-o.ci_high)


# --- clustered data -----------------------------------------------------------------------------


def test_clustered_mcnemar_reduces_to_uncorrected_mcnemar_with_singleton_clusters():
    a, b = outcomes(both=50, a_only=9, b_only=21, neither=20)
    stat, p = clustered_mcnemar((a & ~b).astype(float), (~a & b).astype(float))
    ref = mcnemar([[50, 9], [21, 20]], exact=False, correction=False)
    assert stat == pytest.approx(ref.statistic)
    assert p == pytest.approx(ref.pvalue)


def test_clustered_mcnemar_hand_computed():
    # Durkalski et al. (2003): X2 = (sum(b_k - c_k))^2 / sum((b_k - c_k)^2).
    b_k = np.array([2, 0, 1, 3, 0])
    c_k = np.array([0, 1, 1, 0, 0])
    expected = (2 - 1 + 0 + 3 + 0) ** 2 / (4 + 1 + 0 + 9 + 0)
    stat, p = clustered_mcnemar(b_k, c_k)
    assert stat == pytest.approx(expected)
    assert p == pytest.approx(chi2.sf(expected, 1))
    assert clustered_mcnemar(np.zeros(3), np.zeros(3)) == (0.0, 1.0)


def test_cluster_codes_give_missing_groups_their_own_cluster():
    codes = cluster_codes(np.array(["g1", None, "g1", float("nan"), "g2"], dtype=object), 5)
    assert codes[0] == codes[2]
    assert len(set(codes.tolist())) == 4
    assert cluster_codes(None, 3).tolist() == [0, 1, 2]


def test_design_effect_of_perfectly_correlated_groups_is_about_the_group_size():
    rng = np.random.default_rng(0)
    per_group = rng.choice([-1, 0, 0, 1], size=300)
    outcome = np.repeat(per_group, 4)  # every image of a group has the same outcome
    codes = np.repeat(np.arange(300), 4)
    assert design_effect(outcome, codes) == pytest.approx(4.0, rel=0.05)
    assert design_effect(outcome, np.arange(len(outcome))) == 1.0


def test_groups_make_the_test_and_interval_more_cautious():
    rng = np.random.default_rng(1)
    a_group = rng.random(60) < 0.6
    b_group = a_group | (rng.random(60) < 0.25)  # B fixes some whole cars
    a, b = np.repeat(a_group, 4), np.repeat(b_group, 4)
    groups = np.repeat([f"car{i}" for i in range(60)], 4)
    plain = paired_outcome(a, b)
    grouped = paired_outcome(a, b, groups)
    assert grouped.n_clusters == 60
    assert grouped.design_effect > 3
    assert grouped.p_value >= plain.p_value
    assert grouped.p_value == max(grouped.p_exact, grouped.p_clustered)
    assert grouped.ci_high - grouped.ci_low > 1.5 * (plain.ci_high - plain.ci_low)
    assert grouped.diff == plain.diff


# --- several classes ----------------------------------------------------------------------------


def test_bh_adjustment_hand_computed():
    # Sorted p: 0.01, 0.03, 0.04, 0.5 -> p*m/rank = 0.04, 0.06, 0.0533, 0.5 -> running min from the top.
    adjusted = bh_adjust([0.01, 0.04, 0.03, 0.5])
    assert adjusted == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert bh_adjust([]).size == 0


def test_balanced_accuracy_matches_sklearn_and_is_reproducible():
    rng = np.random.default_rng(2)
    labels = rng.choice(["carrera", "targa", "safari"], p=[0.6, 0.3, 0.1], size=500)
    a = rng.random(500) < 0.7
    b = a.copy()
    b[rng.random(500) < 0.15] ^= True
    res = balanced_accuracy_diff(a, b, labels)
    y_pred_a = np.where(a, labels, "wrong")
    y_pred_b = np.where(b, labels, "wrong")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": intended
        ref_a = balanced_accuracy_score(labels, y_pred_a)
        ref_b = balanced_accuracy_score(labels, y_pred_b)
    assert res["balanced_accuracy_a"] == pytest.approx(ref_a)
    assert res["balanced_accuracy_b"] == pytest.approx(ref_b)
    assert res["diff"] == pytest.approx(ref_b - ref_a)
    assert res["ci_low"] <= res["diff"] <= res["ci_high"]
    assert balanced_accuracy_diff(a, b, labels) == res  # seeded


def test_sign_flip_p_value_of_one_class_is_the_exact_binomial_test():
    # With one class and no groups, flipping signs of discordant images is the exact McNemar test.
    a, b = outcomes(both=100, a_only=8, b_only=20, neither=40)
    labels = np.array(["c"] * len(a))
    res = balanced_accuracy_diff(a, b, labels, n_perm=20000)
    assert res["p_value"] == pytest.approx(binomtest(8, 28, 0.5).pvalue, abs=0.005)
    same = balanced_accuracy_diff(a, a.copy(), labels)
    assert same["diff"] == 0.0 and same["p_value"] == 1.0
