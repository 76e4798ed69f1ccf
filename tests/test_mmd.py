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

import audits.mmd as mmd_module
from audits.drift.embedding import embedding_drift
from audits.mmd import (
    PermutationStream,
    median_bandwidth,
    mmd2,
    mmd_permutation_test,
    mmd_sequential_test,
    permutation_matrix,
)


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


# --- the sequential test (issue 16) ----------------------------------------------------------


def golden_data(shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(150, 16)).astype(np.float32)
    y = rng.normal(size=(120, 16)).astype(np.float32)
    y[:, :2] += shift
    return x, y


# mmd_permutation_test's output before the sequential test existed (commit 2814fef).
GOLDEN = [
    # shift, seed, mmd2, p_value, exceed, null_q95
    (0.1, 0, 0.0028235723695559495, 0.05647840531561462, 16, 0.0028654419922974133),
    (0.1, 5, 0.0028235723695559495, 0.03986710963455149, 11, 0.0027074313596232853),
    (0.25, 0, 0.005525718507766782, 0.0033222591362126247, 0, 0.0027888094336428505),
]


@pytest.mark.parametrize("early_stop_off", [False, True])
@pytest.mark.parametrize(("shift", "seed", "stat", "p", "exceed", "q95"), GOLDEN)
def test_fixed_test_keeps_earlier_p_values(shift, seed, stat, p, exceed, q95, early_stop_off):
    """``--no-early-stop`` (embedding_drift(early_stop=False)) is the fixed test of before."""
    x, y = golden_data(shift)
    if early_stop_off:
        result = embedding_drift(x, y, 0.05, permutations=300, seed=seed, early_stop=False)
        assert result["method"].startswith("fixed") and result["stopped_early"] is False
        assert result["permutations_used"] == result["permutations_max"] == 300
    else:
        result = mmd_permutation_test(x, y, permutations=300, seed=seed)
    assert (result["mmd2"], result["p_value"], result["exceed"]) == (stat, p, exceed)
    assert result["null_q95"] == q95


def test_stream_gives_the_fixed_tests_permutations_in_order():
    fixed = permutation_matrix(9, 14, 40, seed=3)
    stream = PermutationStream(9, 14, seed=3)
    drawn = np.concatenate([stream.next(k) for k in (1, 6, 20, 13)])
    assert np.array_equal(drawn, fixed[1:])
    assert np.array_equal(stream.template, fixed[0])


@pytest.mark.parametrize(("chunk", "cache_mib"), [(4096, None), (37, None), (37, 0), (64, 0.02)])
def test_sequential_statistic_and_count_match_independent_computations(chunk, cache_mib):
    """The statistic is NumPy's unbiased MMD²; the exceedances are those of the fixed test's
    first n permutations, recounted with NumPy (cached, partly cached or recomputed tiles)."""
    x, y = golden_data(0.1)
    result = mmd_sequential_test(
        x, y, max_permutations=300, seed=5, chunk=chunk, cache_mib=cache_mib
    )
    bw = result["bandwidth"]
    assert bw == median_bandwidth(x, seed=5)
    assert abs(result["mmd2"] - numpy_mmd2(x, y, bw)) < 1e-6
    n = result["permutations_used"]
    pooled = np.concatenate([x, y]).astype(np.float64)
    rows = permutation_matrix(len(x), len(y), n, seed=5)[1:]
    null = np.array([numpy_mmd2(pooled[r == 1], pooled[r == 0], bw) for r in rows])
    assert np.abs(null - result["mmd2"]).min() > 1e-6  # no near-ties: the count is unambiguous
    assert result["exceed"] == int((null >= numpy_mmd2(x, y, bw)).sum())
    assert result["null_mean"] == pytest.approx(null.mean(), abs=1e-8)


def test_clear_shift_stops_at_173_and_agrees_with_the_fixed_test():
    rng = np.random.default_rng(4)
    x, y = clusters(rng, 300, dim=32), clusters(rng, 200, dim=32, shift=1.0)
    seq = mmd_sequential_test(x, y, max_permutations=1000)
    fixed = mmd_permutation_test(x, y, permutations=1000)
    assert seq["stopped_early"] and seq["boundary"] == "p <= alpha"
    assert seq["permutations_used"] == 173 and seq["exceed"] == 0
    # Two passes: the kernel with the first 64, then 109 more over the kept tiles.
    assert seq["kernel_passes"] == 2 and seq["permutations_computed"] == 173
    assert seq["p_value"] == pytest.approx(1 / 174) and fixed["p_value"] == 1 / 1001
    assert seq["mmd2"] == pytest.approx(fixed["mmd2"], abs=1e-7)


def test_random_halves_stop_within_a_batch_and_agree_with_the_fixed_test():
    rng = np.random.default_rng(6)
    pool = clusters(rng, 500, dim=32)
    order = rng.permutation(len(pool))
    x, y = pool[order[:250]], pool[order[250:]]
    seq = mmd_sequential_test(x, y, max_permutations=1000)
    fixed = mmd_permutation_test(x, y, permutations=1000)
    assert seq["boundary"] == "p > alpha" and seq["permutations_used"] < 64
    assert seq["kernel_passes"] == 1  # settled in the pass that computed the kernel
    assert seq["p_value"] > 0.05 and fixed["p_value"] > 0.05


@pytest.mark.parametrize(("shift", "first_batch"), [(1.0, 173), (0.0, 64)])
def test_the_pilot_picks_the_first_batch_and_changes_no_result(
    monkeypatch: pytest.MonkeyPatch, shift: float, first_batch: int
) -> None:
    """Samples of 2,000+ points get a pilot on 1,000 of each: a shift it already sees draws
    the 173 permutations of the earliest clear-shift stop in the kernel's pass; otherwise 64
    come first. The batches change what is computed, never the stop or the p-value."""
    rng = np.random.default_rng(8)
    x = clusters(rng, 2100, dim=8)
    y = clusters(rng, 2000, dim=8, shift=shift) if shift else clusters(rng, 2000, dim=8)
    with_pilot = mmd_sequential_test(x, y, max_permutations=1000, seed=3)
    assert with_pilot["kernel_passes"] == 1
    assert with_pilot["permutations_computed"] == first_batch
    monkeypatch.setattr(mmd_module, "PILOT_POINTS", 10**9)  # no pilot: 64 first, as before
    without = mmd_sequential_test(x, y, max_permutations=1000, seed=3)
    assert without["permutations_computed"] == (173 if shift else 64)
    assert without["kernel_passes"] == (2 if shift else 1)
    for key in ("mmd2", "p_value", "permutations_used", "exceed", "boundary", "null_mean"):
        assert with_pilot[key] == without[key], key


def test_truncated_sequential_test_is_the_fixed_test():
    """Below 173 permutations no 'p <= alpha' stop exists: a shift runs to the end with the
    fixed test's p-value, 1/(B+1)."""
    rng = np.random.default_rng(4)
    x, y = clusters(rng, 120, dim=16), clusters(rng, 90, dim=16, shift=1.5)
    seq = mmd_sequential_test(x, y, max_permutations=150, seed=2)
    fixed = mmd_permutation_test(x, y, permutations=150, seed=2)
    assert not seq["stopped_early"] and seq["boundary"] is None
    assert seq["permutations_used"] == 150 and seq["p_value"] == pytest.approx(fixed["p_value"])


def test_sequential_false_alarms_at_most_alpha_over_null_splits():
    """150 small no-drift problems through the whole sequential MMD test."""
    rng = np.random.default_rng(8)
    p_values, used = [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 50-point problems: thread start-up would cost more than the sums
    try:
        for _ in range(150):
            pool = clusters(rng, 50, dim=4)
            result = mmd_sequential_test(pool[:25], pool[25:], seed=int(rng.integers(1 << 31)))
            p_values.append(result["p_value"])
            used.append(result["permutations_used"])
    finally:
        torch.set_num_threads(threads)
    p = np.array(p_values)
    for level in (0.05, 0.2):
        hits = int((p <= level).sum())
        assert stats.binomtest(hits, len(p), level, alternative="greater").pvalue > 1e-3
    assert np.median(used) < 60


def test_sequential_refuses_bad_input():
    good = np.zeros((5, 3))
    with pytest.raises(ValueError, match="at least 2"):
        mmd_sequential_test(good, good[:1])
    with pytest.raises(ValueError, match="alpha"):
        mmd_sequential_test(good, good, alpha=2.0)
    with pytest.raises(ValueError, match="max_draws"):
        mmd_sequential_test(good, good, max_permutations=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_sequential_matches_cpu():
    rng = np.random.default_rng(7)
    x, y = clusters(rng, 2000, 128), clusters(rng, 1500, 128, shift=0.05)
    cpu = mmd_sequential_test(x, y, device="cpu", chunk=700)
    gpu = mmd_sequential_test(x, y, device="cuda", chunk=700)
    assert gpu["device"] == "cuda"
    assert gpu["mmd2"] == pytest.approx(cpu["mmd2"], abs=1e-6)
    assert gpu["permutations_used"] == cpu["permutations_used"]  # same permutations, same stop
    assert gpu["p_value"] == pytest.approx(cpu["p_value"])


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


@pytest.mark.parametrize(("rows", "cols", "width"), [(1, 1, 3), (37, 129, 514), (300, 2048, 66)])
def test_gram_is_float32_left_times_right_transposed(rows: int, cols: int, width: int) -> None:
    """The kernel tiles' product (oneDNN on the CPU when there) against float64 NumPy."""
    from audits.mmd import gram

    rng = np.random.default_rng(rows + cols)
    left = torch.from_numpy(rng.normal(size=(rows + 5, width)).astype(np.float32))[5:]
    right = torch.from_numpy(rng.normal(size=(cols, width)).astype(np.float32))
    got = gram(left, right)
    want = left.double().numpy() @ right.double().numpy().T
    assert got.dtype == torch.float32 and tuple(got.shape) == (rows, cols)
    # float32 rounding of a width-term dot product, not a lower precision (bf16 would be ~1e-2)
    assert np.abs(got.numpy() - want).max() <= 1e-5 * np.sqrt(width) * np.abs(want).max() + 1e-6
