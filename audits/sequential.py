"""Sequential Monte Carlo p-values: draw permutations in batches, stop once the answer is settled.

A Monte Carlo test compares an observed statistic ``t₀`` with statistics ``t₁, t₂, …`` of random
re-arrangements of the data; ``Sₙ`` counts the exceedances (``tᵢ ≥ t₀``) among the first ``n``.
Instead of always drawing a fixed ``B``, this module stops at the first ``n`` where ``Sₙ``
crosses a boundary, in two parts:

**When to stop: Gandy (2009).** A. Gandy, "Sequential implementation of Monte Carlo tests with
uniformly bounded resampling risk", *JASA* 104 (2009) 1504–1511. Boundaries ``Uₙ``/``Lₙ`` are
computed recursively so that, whatever the test's true p-value ``p`` is, the probability that
the sequential decision ("p > α" on reaching ``Uₙ``, "p ≤ α" on reaching ``Lₙ``) differs from
the decision the exact ``p`` gives is at most ``ε`` (``ε = 0.001`` and the spending sequence
``εₙ = ε n / (n + k)``, ``k = 1000``, are the paper's own). It is chosen over Besag and Clifford's
rule because that rule stops early only for large p-values: a clear shift (``Sₙ = 0``) would
still draw every permutation, while Gandy's lower boundary settles it after 173 (α = 0.05).
The test is truncated at ``max_draws`` (the fixed test's ``B``): a p-value close to ``α`` runs
to it, like the fixed test.

**What p-value to report: Besag and Clifford (1991).** J. Besag and P. Clifford, "Sequential
Monte Carlo p-values", *Biometrika* 78 (1991) 301–304. Their p-value for a path stopped at ``L``
draws with ``h`` exceedances, ``h / L`` (else ``(G+1)/(n+1)``), is the probability under the null
hypothesis of a path at least as extreme. The same construction is used here for Gandy's
two-sided boundaries: under the null hypothesis (no ties) the rank of ``t₀`` among the draws is
uniform, so the exceedance indicators are a Pólya sequence, ``P(Xₙ₊₁ = 1 | Sₙ = s) =
(s+1)/(n+2)``. The null probability of every way the test can stop is computed exactly by
dynamic programming, and the p-value of the observed stop is the null probability of the stops
at least as extreme, in the stagewise order of group-sequential designs: a "p ≤ α" stop is
more extreme the earlier it comes, then the truncated paths by fewer exceedances, then the
"p > α" stops, more extreme the later they come. ``P(p ≤ u) ≤ u`` for every ``u`` (exactly valid,
conservative with ties, as ties only add exceedances), so a decision ``p < α`` keeps the false
alarm rate at most ``α``; with Besag and Clifford's own boundary (stop at ``h`` exceedances) it
gives exactly their ``h/L`` and ``(G+1)/(n+1)``.

``sequential_test`` is generic: it takes a function that returns the statistics of the next
batch of random re-arrangements (``audits.mmd`` gives one for the MMD), and scans each batch
draw by draw, so the stopping point does not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

#: Gandy (2009)'s resampling risk and spending constant: ``εₙ = ε n / (n + k)``.
DEFAULT_EPSILON = 1e-3
DEFAULT_SPENDING = 1000
#: Boundaries are computed up to this many draws (the dynamic programme is O(n · √n)).
MAX_DRAWS_LIMIT = 1_000_000


@dataclass(frozen=True)
class Boundaries:
    """Gandy's stopping boundaries for ``n = 1 … max_draws`` (index ``n``; index 0 unused).

    Stop with "p > α" when ``Sₙ ≥ upper[n]``, with "p ≤ α" when ``Sₙ ≤ lower[n]``; a value
    no path still running can reach (``upper[n] > n``, ``lower[n] < 0``, or beyond the counts
    that earlier stops have removed) stops nothing at ``n``.
    """

    alpha: float
    epsilon: float
    spending: int
    max_draws: int
    upper: np.ndarray = field(repr=False)
    lower: np.ndarray = field(repr=False)

    @property
    def first_decision(self) -> int:
        """The fewest draws after which "p ≤ α" can be decided (with no exceedance at all)."""
        hits = np.nonzero(self.lower >= 0)[0]
        return int(hits[0]) if len(hits) else self.max_draws

    def describe(self) -> str:
        """The method in words, for the stored record."""
        return (
            f"sequential Monte Carlo test: Gandy (2009) boundaries (alpha {self.alpha:g}, "
            f"resampling risk {self.epsilon:g}, spending n/(n+{self.spending})) truncated at "
            f"{self.max_draws} permutations; Besag-Clifford-type p-value of the stopped path"
        )


def _check(alpha: float, max_draws: int, epsilon: float, spending: int) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0.0 < epsilon < 0.5:
        raise ValueError(f"the resampling risk epsilon must be in (0, 0.5), got {epsilon}")
    if not 1 <= max_draws <= MAX_DRAWS_LIMIT:
        raise ValueError(f"max_draws must be between 1 and {MAX_DRAWS_LIMIT}, got {max_draws}")
    if spending < 0:
        raise ValueError(f"spending must be non-negative, got {spending}")


@lru_cache(maxsize=32)
def gandy_boundaries(
    alpha: float,
    max_draws: int,
    epsilon: float = DEFAULT_EPSILON,
    spending: int = DEFAULT_SPENDING,
) -> Boundaries:
    """Gandy (2009)'s recursive boundaries under ``p = α`` (``spending = 0``: ``εₙ = ε``).

    ``Uₙ`` is the smallest ``j`` with ``P_α(τ ≥ n, Sₙ ≥ j) + P_α(τ < n, stopped up) ≤ εₙ``,
    ``Lₙ`` the largest with ``P_α(τ ≥ n, Sₙ ≤ j) + P_α(τ < n, stopped down) ≤ εₙ``.
    """
    _check(alpha, max_draws, epsilon, spending)
    upper = np.arange(max_draws + 2, dtype=np.int64)[1:]  # n + 1: unreachable
    lower = np.full(max_draws + 1, -1, dtype=np.int64)
    # Mass of the paths not stopped yet, by Sₙ = lo, lo+1, …: a window, as the rest has stopped.
    mass, lo = np.ones(1), 0
    spent_up = spent_down = 0.0
    for n in range(1, max_draws + 1):
        grown = np.zeros(len(mass) + 1)
        grown[:-1] += mass * (1.0 - alpha)
        grown[1:] += mass * alpha
        mass = grown
        budget = epsilon * n / (n + spending) if spending else epsilon
        # Upper: smallest j whose tail fits the budget left.
        tail = np.cumsum(mass[::-1])[::-1]
        fits = np.nonzero(spent_up + tail <= budget)[0]
        cut_up = int(fits[0]) if len(fits) else len(mass)
        head = np.cumsum(mass)
        fits = np.nonzero(spent_down + head <= budget)[0]
        cut_down = int(fits[-1]) if len(fits) else -1
        if cut_down >= cut_up:  # only with a huge epsilon; keep the two stop regions apart
            cut_down = cut_up - 1
        # In absolute counts; a cut outside the window (no mass there) stops no path.
        upper[n], lower[n] = lo + cut_up, lo + cut_down
        spent_up += float(mass[cut_up:].sum())
        spent_down += float(mass[: cut_down + 1].sum())
        mass = mass[cut_down + 1 : cut_up]
        lo += cut_down + 1
        if not len(mass):  # every path has stopped: no later boundary is reachable
            break
    return Boundaries(alpha, epsilon, spending, max_draws, upper, lower)


def besag_clifford_boundaries(h: int, max_draws: int, alpha: float = 0.05) -> Boundaries:
    """Besag and Clifford (1991)'s rule as boundaries: stop at ``h`` exceedances, never below."""
    if h < 1:
        raise ValueError(f"h must be at least 1, got {h}")
    upper = np.full(max_draws + 1, h, dtype=np.int64)
    lower = np.full(max_draws + 1, -1, dtype=np.int64)
    return Boundaries(alpha, 0.0, 0, max_draws, upper, lower)


@dataclass(frozen=True)
class NullLaw:
    """Null probabilities of every way a test with these boundaries can stop.

    ``down[n]``/``up[n]``: {exceedances: probability} of stopping at draw ``n``;
    ``truncated``: {exceedances: probability} of reaching ``max_draws`` without a stop.
    """

    down: dict[int, dict[int, float]]
    up: dict[int, dict[int, float]]
    truncated: dict[int, float]


@lru_cache(maxsize=32)
def _null_law_cached(key: tuple) -> NullLaw:
    upper, lower, max_draws = np.array(key[0]), np.array(key[1]), key[2]
    down: dict[int, dict[int, float]] = {}
    up: dict[int, dict[int, float]] = {}
    mass, lo = np.ones(1), 0  # paths not stopped, by Sₙ = lo, lo+1, …
    for n in range(1, max_draws + 1):
        s = lo + np.arange(len(mass))
        rise = (s + 1) / (n + 1)  # Pólya: P(Xₙ = 1 | Sₙ₋₁ = s) = (s+1)/((n-1)+2)
        grown = np.zeros(len(mass) + 1)
        grown[:-1] += mass * (1.0 - rise)
        grown[1:] += mass * rise
        mass = grown
        u, low = int(upper[n]) - lo, int(lower[n]) - lo
        if low >= 0:
            down[n] = {lo + i: float(mass[i]) for i in range(min(low + 1, len(mass)))}
        if u < len(mass):
            up[n] = {lo + i: float(mass[i]) for i in range(max(u, 0), len(mass))}
        keep_from, keep_to = max(low + 1, 0), min(max(u, 0), len(mass))
        mass = mass[keep_from:keep_to]
        lo += keep_from
        if not len(mass):
            break
    truncated = {lo + i: float(v) for i, v in enumerate(mass)}
    return NullLaw(down, up, truncated)


def null_law(bounds: Boundaries) -> NullLaw:
    """The exact null law of the stopped path (Pólya exceedances; see the module docstring)."""
    return _null_law_cached(
        (tuple(bounds.upper.tolist()), tuple(bounds.lower.tolist()), bounds.max_draws)
    )


def stopped_p_value(bounds: Boundaries, draws: int, exceed: int) -> float:
    """The p-value of a test that stopped after ``draws`` draws with ``exceed`` exceedances.

    The null probability of a stop at least as extreme (stagewise order, module docstring).
    """
    law = null_law(bounds)
    total_down = sum(sum(v.values()) for v in law.down.values())
    if exceed <= bounds.lower[draws] and draws in law.down:
        earlier = sum(sum(law.down[n].values()) for n in law.down if n < draws)
        return min(1.0, earlier + sum(p for s, p in law.down[draws].items() if s <= exceed))
    if exceed >= bounds.upper[draws] and draws in law.up:
        later = sum(sum(law.up[n].values()) for n in law.up if n > draws)
        same = sum(p for s, p in law.up[draws].items() if s <= exceed)
        return min(1.0, total_down + sum(law.truncated.values()) + later + same)
    if draws != bounds.max_draws:
        raise ValueError(f"no stop at {draws} draws with {exceed} exceedances under these bounds")
    return min(1.0, total_down + sum(p for s, p in law.truncated.items() if s <= exceed))


@dataclass(frozen=True)
class SequentialOutcome:
    """What a sequential test found: the p-value and what it rests on."""

    observed: float
    p_value: float
    draws: int  # the draws the p-value rests on (the stopping time)
    exceed: int  # exceedances among them
    stopped: str | None  # the boundary reached: "p <= alpha" or "p > alpha"; None: truncated
    computed: int  # draws actually computed (batches may run past the stopping time)
    max_draws: int
    null: np.ndarray = field(repr=False)  # the statistics of the first ``draws`` draws
    method: str = ""

    @property
    def stopped_early(self) -> bool:
        """Settled before the fixed test's number of draws."""
        return self.draws < self.max_draws


def sequential_test(
    draw: Callable[[int], np.ndarray],
    bounds: Boundaries,
    batches: Sequence[int],
) -> SequentialOutcome:
    """Run a sequential Monte Carlo test with ``bounds``.

    ``draw(count)`` returns the statistics of the next ``count`` random re-arrangements; its
    *first* call is asked for ``1 + batches[0]`` and returns the observed statistic first.
    The batches follow ``batches``; once they are spent without a stop the case is not clear,
    and the rest, up to ``bounds.max_draws``, comes in one batch (when every batch costs a
    fixed overhead, as a pass over a kernel does, few batches cost least). Each batch is
    scanned draw by draw, so the stopping point does not depend on the batches. An
    exceedance is ``t ≥ t₀``.
    """
    if not batches or min(batches) < 1:
        raise ValueError(f"batches must be a non-empty list of positive sizes, got {batches}")
    plan = list(batches)
    first = np.asarray(draw(1 + min(plan.pop(0), bounds.max_draws)), dtype=np.float64)
    observed, batch = float(first[0]), first[1:]
    seen: list[np.ndarray] = []
    drawn = exceed = 0
    while True:
        flags = batch >= observed
        counts = exceed + np.cumsum(flags)
        n = drawn + 1 + np.arange(len(batch))
        hit = np.nonzero((counts >= bounds.upper[n]) | (counts <= bounds.lower[n]))[0]
        seen.append(batch)
        computed = drawn + len(batch)
        if len(hit) or computed >= bounds.max_draws:
            stop = int(hit[0]) if len(hit) else len(batch) - 1
            used, s = int(n[stop]), int(counts[stop])
            stopped = None
            if len(hit):
                stopped = "p > alpha" if s >= bounds.upper[used] else "p <= alpha"
            return SequentialOutcome(
                observed=observed,
                p_value=stopped_p_value(bounds, used, s),
                draws=used,
                exceed=s,
                stopped=stopped,
                computed=computed,
                max_draws=bounds.max_draws,
                null=np.concatenate(seen)[:used],
                method=bounds.describe(),
            )
        drawn, exceed = computed, int(counts[-1])
        size = plan.pop(0) if plan else bounds.max_draws - drawn
        batch = np.asarray(draw(min(size, bounds.max_draws - drawn)), dtype=np.float64)
