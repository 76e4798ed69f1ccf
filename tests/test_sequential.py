"""audits.sequential: Gandy's boundaries, the stopped path's p-value, and the generic runner.

The references here share no code with the module: boundaries and p-values are recomputed by
enumerating every path of a short test (2^n of them) with its exact probability, the
Besag-Clifford special case is checked against their closed forms (h/L and (G+1)/(n+1)), the
risk bound by a plain binomial walk, and validity by simulating many small permutation tests.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy import special, stats

from audits.sequential import (
    besag_clifford_boundaries,
    gandy_boundaries,
    null_law,
    sequential_test,
    stopped_p_value,
)

# A short design whose 2^14 paths can all be enumerated.
SMALL = {"alpha": 0.3, "max_draws": 14, "epsilon": 0.1, "spending": 2}


def _paths(n: int):
    return itertools.product((0, 1), repeat=n)


def _stop(path, upper, lower):
    """(n, S_n, side) where a path stops: side 'down'/'up', or 'max' when truncated."""
    s = 0
    for n, x in enumerate(path, start=1):
        s += x
        if s >= upper[n]:
            return n, s, "up"
        if s <= lower[n]:
            return n, s, "down"
    return len(path), s, "max"


def brute_force_boundaries(alpha, max_draws, epsilon, spending):
    """Gandy's recursion by enumerating every path with its binomial probability."""
    upper = {n: n + 1 for n in range(1, max_draws + 1)}
    lower = {n: -1 for n in range(1, max_draws + 1)}
    for n in range(1, max_draws + 1):
        budget = epsilon * n / (n + spending)
        alive: dict[int, float] = {}  # S_n -> probability, for paths not stopped before n
        spent_up = spent_down = 0.0
        for path in _paths(n):
            prob = float(np.prod([alpha if x else 1 - alpha for x in path]))
            side = _stop(path[:-1], upper, lower)[2]
            if side == "up":
                spent_up += prob
            elif side == "down":
                spent_down += prob
            else:
                total = sum(path)
                alive[total] = alive.get(total, 0.0) + prob
        upper[n] = min(
            j
            for j in range(n + 2)
            if spent_up + sum(p for s, p in alive.items() if s >= j) <= budget + 1e-15
        )
        fits = [
            j
            for j in range(-1, n + 1)
            if spent_down + sum(p for s, p in alive.items() if s <= j) <= budget + 1e-15
        ]
        lower[n] = max(fits)
        lower[n] = min(lower[n], upper[n] - 1)
    return upper, lower


def test_boundaries_match_a_brute_force_enumeration():
    bounds = gandy_boundaries(**SMALL)
    upper, lower = brute_force_boundaries(**SMALL)
    ours_up = {n: int(bounds.upper[n]) for n in upper}
    ours_down = {n: int(bounds.lower[n]) for n in lower}
    # Where no surviving path is affected the two may name different unreachable values, so
    # compare where they stop paths: every path must stop at the same place.
    for path in _paths(SMALL["max_draws"]):
        assert _stop(path, ours_up, ours_down) == _stop(path, upper, lower)
    assert any(lower[n] >= 0 for n in lower) and any(upper[n] <= n for n in upper)


def _wrong_decision_risk(bounds, p: float) -> float:
    """P_p(the boundary reached is on the wrong side of alpha), by a plain binomial walk."""
    alive = {0: 1.0}
    risk = 0.0
    for n in range(1, bounds.max_draws + 1):
        nxt: dict[int, float] = {}
        for s, w in alive.items():
            for step, q in ((1, p), (0, 1 - p)):
                nxt[s + step] = nxt.get(s + step, 0.0) + w * q
        alive = {}
        for s, w in nxt.items():
            if s >= bounds.upper[n]:
                risk += w if p <= bounds.alpha else 0.0
            elif s <= bounds.lower[n]:
                risk += w if p > bounds.alpha else 0.0
            else:
                alive[s] = w
    return risk


@pytest.mark.parametrize("p", [0.0, 0.01, 0.03, 0.05, 0.07, 0.2, 0.6])
def test_risk_of_a_wrong_decision_is_at_most_epsilon(p):
    """Gandy (2009)'s guarantee, for every p: P(the wrong boundary) <= epsilon."""
    bounds = gandy_boundaries(0.05, 2000)
    assert _wrong_decision_risk(bounds, p) <= bounds.epsilon


def test_default_design_numbers():
    """alpha 0.05, epsilon 1e-3, spending n/(n+1000): a clear shift settles at 173 draws."""
    bounds = gandy_boundaries(0.05, 1000)
    assert bounds.first_decision == 173
    assert bounds.lower[172] < 0 <= bounds.lower[173]
    assert bounds.upper[5] == 5 and bounds.upper[10] == 6  # p = 1 settles after 5 draws
    assert "Gandy (2009)" in bounds.describe()


def test_besag_clifford_closed_forms():
    """Stop at h exceedances: p = h/L when stopped, (G+1)/(n+1) at the end (their eq.)."""
    h, big_n = 10, 500
    bounds = besag_clifford_boundaries(h, big_n)
    for stop_at in (10, 11, 37, 250, 499, 500):
        assert stopped_p_value(bounds, stop_at, h) == pytest.approx(h / stop_at, rel=1e-12)
    for g in range(h):
        assert stopped_p_value(bounds, big_n, g) == pytest.approx((g + 1) / (big_n + 1), rel=1e-12)


def _stagewise_key(n: int, s: int, side: str) -> tuple:
    """Most extreme first: early 'down' stops, truncation by S, late 'up' stops."""
    return {"down": (0, n, s), "max": (1, 0, s), "up": (2, -n, s)}[side]


def test_p_value_equals_enumeration_and_is_exactly_valid():
    """Under the null the exceedances are Bernoulli(U), U uniform: each path of length n with
    s exceedances has probability B(s+1, n-s+1). The p-value must be the null probability of a
    stop at least as extreme, and P(p <= u) <= u for every u."""
    bounds = gandy_boundaries(**SMALL)
    big_n = SMALL["max_draws"]
    terminal: dict[tuple, float] = {}
    for path in _paths(big_n):
        n, s, side = _stop(path, bounds.upper, bounds.lower)
        prefix = path[:n]
        weight = special.beta(sum(prefix) + 1, n - sum(prefix) + 1)
        # Paths that stop at n share the prefix: count the prefix once.
        weight /= 2 ** (big_n - n)
        key = (n, s, side)
        terminal[key] = terminal.get(key, 0.0) + weight
    assert sum(terminal.values()) == pytest.approx(1.0, abs=1e-12)
    ordered = sorted(terminal, key=lambda k: _stagewise_key(*k))
    cumulative = np.cumsum([terminal[k] for k in ordered])
    for key, expected in zip(ordered, cumulative, strict=True):
        assert stopped_p_value(bounds, key[0], key[1]) == pytest.approx(expected, abs=1e-12)
    # Validity: P(p <= u) <= u at every value p takes.
    p_of = {k: stopped_p_value(bounds, k[0], k[1]) for k in terminal}
    for u in set(p_of.values()):
        assert sum(terminal[k] for k in terminal if p_of[k] <= u) <= u + 1e-12
    law = null_law(bounds)
    assert law.down and law.up  # both boundaries are reachable in this design


def _mean_difference_draws(rng, a: np.ndarray, b: np.ndarray):
    """A generic statistic for the runner: |mean difference| over random re-splits."""
    pooled = np.concatenate([a, b])
    m = len(a)
    first = [True]

    def draw(count: int) -> np.ndarray:
        out = []
        if first[0]:
            out.append(abs(a.mean() - b.mean()))
            count -= 1
            first[0] = False
        for _ in range(count):
            perm = rng.permutation(pooled)
            out.append(abs(perm[:m].mean() - perm[m:].mean()))
        return np.array(out)

    return draw


def test_false_alarms_at_most_alpha_on_many_null_problems():
    """800 small two-sample problems with no difference: P(p <= alpha) <= alpha (binomial
    tolerance), for alpha itself and for other levels, with continuous and tied statistics."""
    bounds = gandy_boundaries(0.05, 400)
    rng = np.random.default_rng(0)
    means = {}
    for kind in ("continuous", "ties"):
        p_values, used = [], []
        for _ in range(800):
            a, b = rng.normal(size=12), rng.normal(size=12)
            if kind == "ties":
                a, b = np.round(a), np.round(b)  # many equal statistics: ties count as exceeding
            outcome = sequential_test(_mean_difference_draws(rng, a, b), bounds, [50])
            p_values.append(outcome.p_value)
            used.append(outcome.draws)
        p = np.array(p_values)
        for level in (0.05, 0.1, 0.3):
            hits = int((p <= level).sum())
            assert stats.binomtest(hits, len(p), level, alternative="greater").pvalue > 1e-3
        assert np.median(used) < 40  # under the null most tests settle within a few dozen
        means[kind] = float(p.mean())
    # Not merely conservative: p spreads over (0, 1] (about 1/2 on average when continuous).
    assert 0.4 < means["continuous"] < 0.6


def test_stopping_point_does_not_depend_on_the_batches():
    """The runner scans draw by draw: batch sizes change only how much is computed."""
    bounds = gandy_boundaries(0.05, 1000)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=15), rng.normal(size=15) + 0.9
    outcomes = []
    for batches in ([1] * 200, [7, 7, 30], [58, 115], [173], [1000]):
        draws = _mean_difference_draws(np.random.default_rng(2), a, b)
        outcomes.append(sequential_test(draws, bounds, batches))
    assert len({(o.draws, o.exceed, o.p_value, o.stopped) for o in outcomes}) == 1
    assert outcomes[0].computed == outcomes[0].draws
    assert outcomes[-1].computed == 1000


def _fixed_p_value(a: np.ndarray, b: np.ndarray, big_b: int, seed: int) -> float:
    """The fixed Monte Carlo test on the same statistic: (b + 1) / (B + 1)."""
    stats_ = _mean_difference_draws(np.random.default_rng(seed), a, b)(big_b + 1)
    return (int((stats_[1:] >= stats_[0]).sum()) + 1) / (big_b + 1)


def test_clear_cases_stop_early_and_agree_with_the_fixed_test():
    rng = np.random.default_rng(3)
    bounds = gandy_boundaries(0.05, 1000)
    a, b = rng.normal(size=30), rng.normal(size=30) + 2.0
    far = sequential_test(_mean_difference_draws(rng, a, b), bounds, [100])
    assert far.stopped == "p <= alpha" and far.draws == 173 and far.exceed == 0
    assert far.p_value == pytest.approx(1 / 174, rel=1e-9)  # P_null(no exceedance in 173)
    assert _fixed_p_value(a, b, 1000, 5) < 0.05
    a = rng.normal(size=30)
    b = rng.permutation(a) + rng.normal(0, 0.01, 30)  # the same values, reshuffled
    same = sequential_test(_mean_difference_draws(rng, a, b), bounds, [100])
    assert same.stopped == "p > alpha" and same.draws < 100 and same.p_value > 0.05
    assert _fixed_p_value(a, b, 1000, 5) > 0.05


def test_refuses_bad_designs():
    with pytest.raises(ValueError, match="alpha"):
        gandy_boundaries(1.5, 100)
    with pytest.raises(ValueError, match="epsilon"):
        gandy_boundaries(0.05, 100, epsilon=0.0)
    with pytest.raises(ValueError, match="max_draws"):
        gandy_boundaries(0.05, 0)
    with pytest.raises(ValueError, match="batches"):
        sequential_test(lambda c: np.zeros(c), gandy_boundaries(0.05, 10), [0])


# --- the drift command: sequential by default, the fixed test with --no-early-stop ----------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from tests.builders import make_model_dir
    from tests.test_drift_cli import CLASSES, photos

    root = tmp_path_factory.mktemp("seq")
    return {
        "model": make_model_dir(root / "model", classes=CLASSES),
        "reference": photos(root / "reference", 36, seed=1),
        "fan": photos(root / "fan", 30, seed=3, level=0.45, blur=1.5, labelled=False),
    }


def _drift_json(built, store, *extra: str) -> dict:
    from auditapp.cli import main

    args = ["drift", "--model", str(built["model"]), "--reference", str(built["reference"])]
    args += ["--current", str(built["fan"]), "--store", str(store), "--workers", "0", "--quiet"]
    assert main([*args, "--permutations", "400", *extra]) == 0
    (run,) = [p for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return json.loads((run / "drift.json").read_text())["embedding"]


def test_cli_no_early_stop_runs_the_fixed_test(built, tmp_path, capsys):
    """The default (sequential) CLI run is checked in test_drift_cli; this is the fixed one."""
    fixed = _drift_json(built, tmp_path / "b", "--no-early-stop")
    assert fixed["method"].startswith("fixed") and fixed["stopped_early"] is False
    assert fixed["permutations"] == fixed["permutations_used"] == fixed["permutations_max"] == 400
    assert fixed["p_value"] == (fixed["exceed"] + 1) / 401 == 1 / 401  # a clear shift
    assert fixed["drift"] is True
    capsys.readouterr()
