"""audits.mmd against a direct NumPy computation, and the permutation test's size and power.

The NumPy reference below builds the full pooled RBF kernel matrix in float64 and applies the
textbook unbiased MMD² formula (Gretton et al. 2012, eq. 3); it shares no code with the tiled,
quadratic-form implementation it checks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import pdist

from audits.mmd import median_bandwidth, mmd2, mmd_permutation_test, permutation_matrix


def numpy_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """Unbiased MMD² from the full kernel matrices, diagonal terms excluded."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n = len(x), len(y)

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * bandwidth**2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.sum() / (m * n)
    )


def clusters(rng: np.random.Generator, n: int, dim: int = 32, shift: float = 0.0) -> np.ndarray:
    """Embeddings with structure: three Gaussian clusters (like classes), optionally shifted."""
    centres = np.random.default_rng(99).normal(0, 2.0, (3, dim))
    labels = rng.integers(0, 3, n)
    out = centres[labels] + rng.normal(0, 1.0, (n, dim))
    out[:, :4] += shift
    return out.astype(np.float32)


@pytest.fixture
def shifted():
    rng = np.random.default_rng(0)
    return clusters(rng, 70, dim=16), clusters(rng, 45, dim=16, shift=0.4)


def test_mmd2_matches_numpy(shifted):
    x, y = shifted
    bw = median_bandwidth(x)
    expected = numpy_mmd2(x, y, bw)
    assert expected > 0.001  # a real difference, not a number near 0
    assert mmd2(x, y, bw) == pytest.approx(expected, abs=1e-12)
    assert mmd2(x, y, bw, chunk=13) == pytest.approx(expected, abs=1e-12)  # many tiles
    for chunk in (16, 4096):
        result = mmd_permutation_test(x, y, permutations=50, chunk=chunk)  # float32 tiles
        assert abs(result["mmd2"] - expected) < 1e-6
        assert result["bandwidth"] == bw


def test_mmd2_same_sample_is_unbiased_around_zero():
    rng = np.random.default_rng(1)
    values = [mmd2(clusters(rng, 40, 8), clusters(rng, 40, 8), bandwidth=4.0) for _ in range(30)]
    assert min(values) < 0 < max(values)  # the unbiased estimator goes negative under H0
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values))


def test_median_bandwidth_is_median_pairwise_distance():
    x = clusters(np.random.default_rng(2), 300, 16)
    assert median_bandwidth(x) == pytest.approx(
        float(np.median(pdist(x.astype(np.float64)))), rel=1e-5
    )
    assert median_bandwidth(np.ones((10, 3))) == 1.0  # no spread: a defined fallback


def test_p_value_is_b_plus_one_over_big_b_plus_one(shifted):
    """Recount b with NumPy over the same permutations: p = (b + 1) / (B + 1)."""
    x, y = shifted
    big_b = 99
    result = mmd_permutation_test(x, y, permutations=big_b, seed=7)
    bw = result["bandwidth"]
    pooled = np.concatenate([x, y]).astype(np.float64)
    rows = permutation_matrix(len(x), len(y), big_b, seed=7)
    assert rows[0, : len(x)].all() and not rows[0, len(x) :].any()  # row 0 is the observed split
    assert (rows.sum(1) == len(x)).all()
    null = np.array([numpy_mmd2(pooled[r == 1], pooled[r == 0], bw) for r in rows[1:]])
    observed = numpy_mmd2(x, y, bw)
    assert np.abs(null - observed).min() > 1e-5  # no float near-ties: the count is unambiguous
    b = int((null >= observed).sum())
    assert result["exceed"] == b
    assert result["p_value"] == (b + 1) / (big_b + 1)
    assert result["null_q95"] == pytest.approx(np.quantile(null, 0.95), abs=1e-6)


def test_calibrated_over_40_random_splits():
    """One set split at random into reference and current 40 times: false alarms <= 10%."""
    rng = np.random.default_rng(3)
    pool = clusters(rng, 320, dim=32)
    p_values = []
    for _ in range(40):
        order = rng.permutation(len(pool))
        ref, cur = pool[order[:200]], pool[order[200:]]
        p_values.append(
            mmd_permutation_test(ref, cur, permutations=200, seed=int(rng.integers(1 << 31)))[
                "p_value"
            ]
        )
    p = np.array(p_values)
    assert (p < 0.05).mean() <= 0.10
    # Meaningful, not merely conservative: under H0 the p-values spread over (0, 1].
    assert 0.3 < p.mean() < 0.7
    assert stats.kstest(p, "uniform").pvalue > 0.01


def test_detects_a_shifted_batch():
    rng = np.random.default_rng(4)
    pool = clusters(rng, 300, dim=32)
    for shift in (1.0, 1.5):  # a shift of 1 sd in 4 of 32 dimensions
        shifted_batch = clusters(rng, 200, dim=32, shift=shift)
        result = mmd_permutation_test(pool, shifted_batch, permutations=200)
        assert result["p_value"] == 1 / 201  # beyond every permutation
        assert result["mmd2"] > result["null_q95"]


def test_chunked_equals_unchunked():
    rng = np.random.default_rng(5)
    x, y = clusters(rng, 180, 24), clusters(rng, 130, 24, shift=0.15)
    whole = mmd_permutation_test(x, y, permutations=300, chunk=10_000)
    for chunk in (37, 128, 310):
        part = mmd_permutation_test(x, y, permutations=300, chunk=chunk)
        assert part["p_value"] == whole["p_value"]
        assert part["mmd2"] == pytest.approx(whole["mmd2"], abs=1e-8)  # float32 sums, reordered
        assert part["null_q95"] == pytest.approx(whole["null_q95"], abs=1e-8)


def test_refuses_bad_input():
    good = np.zeros((5, 3))
    with pytest.raises(ValueError, match="at least 2"):
        mmd_permutation_test(good, good[:1])
    with pytest.raises(ValueError, match="widths"):
        mmd_permutation_test(good, np.zeros((5, 4)))
    bad = good.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mmd_permutation_test(good, bad)
    with pytest.raises(ValueError, match="bandwidth"):
        mmd2(good, good, 0.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(7)
    x, y = clusters(rng, 2000, 128), clusters(rng, 1500, 128, shift=0.05)
    cpu = mmd_permutation_test(x, y, permutations=500, device="cpu", chunk=700)
    gpu = mmd_permutation_test(x, y, permutations=500, device="cuda", chunk=700)
    assert gpu["device"] == "cuda"
    assert gpu["mmd2"] == pytest.approx(cpu["mmd2"], abs=1e-6)
    assert (
        abs(gpu["p_value"] - cpu["p_value"]) <= 2 / 501
    )  # same permutations; float sums may tie-break
