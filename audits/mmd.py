"""Maximum mean discrepancy (MMD) between two samples of embeddings, with a permutation test.

Definitions (what every function here computes):

* Kernel: RBF, ``k(a, b) = exp(-||a - b||^2 / (2 * bandwidth^2))``.
* Bandwidth: the median heuristic on the *reference* sample, the median Euclidean distance
  between distinct reference points (on a seeded subsample of at most 2,000 points). The
  kernel is then fixed for the observed split and every permutation.
* Estimator: the **unbiased** MMD² (Gretton et al. 2012, eq. 3; the diagonal is excluded), so
  it is 0 on average when both samples come from one distribution and can be slightly negative::

      MMD²_u = Σ_{i≠j} k(x_i,x_j) / (m(m-1)) + Σ_{i≠j} k(y_i,y_j) / (n(n-1)) - 2 Σ_{i,j} k(x_i,y_j) / (mn)

* p-value: ``(b + 1) / (B + 1)`` where ``b`` of the ``B`` random re-splits of the pooled sample
  give an MMD² at least as large as the observed one.

How the permutation test stays fast and bounded: the pooled kernel matrix ``K`` (``N = m + n``)
is never held whole. A permutation is a 0/1 vector ``a`` marking which pooled points play "x";
every statistic needs only ``Q = aᵀ K₀ a`` and ``R = aᵀ K₀ 1`` (``K₀`` = ``K`` with a zero
diagonal), because ``Σ_xx = Q``, ``Σ_xy = R - Q`` and ``Σ_yy = T - 2R + Q`` with ``T = 1ᵀ K₀ 1``.
The observed split and the ``B`` permutations are the columns of one 0/1 matrix ``A`` [N, B+1];
``K`` is computed tile by tile (``chunk`` x ``chunk``, upper triangle of tiles only, as K is
symmetric) and each tile ``K_IJ`` meets all permutations in one product ``K_IJᵀ A_I`` — one
pass over ``K``, matrix-matrix work, no Python loop over permutations. Memory: ``A``
(4·N·(B+1) bytes) plus a tile and its product (4·chunk·(chunk + B + 1) bytes): 20,000 +
20,000 points with 1,000 permutations need well under 1 GB besides the inputs.

Everything runs in float32 on the device (CUDA when present), with sums carried across tiles
in float64 and a constant subtracted from the kernel first (MMD²_u does not change: its
weights sum to zero) so the float32 partial sums stay small; ``mmd2`` runs in float64. On CUDA
TensorFloat-32 is switched off for the test (its 10-bit products would move the statistic by
more than the permutation spread at large n); half precision is not used for the same reason.

Two tests share this machinery:

* ``mmd_permutation_test``: the fixed test, all ``B`` permutations in one pass over ``K`` (the
  ``--no-early-stop`` path; its arithmetic and its permutations are those of earlier releases).
* ``mmd_sequential_test`` (the default): permutations in batches, stopping once the answer is
  settled (``audits.sequential``: Gandy 2009's boundaries, a Besag-Clifford-type p-value). A
  clear shift is settled after 173 permutations and a clear no-shift after a few dozen
  (α = 0.05) instead of 1,000. Each batch needs a pass over ``K``; the first pass computes the
  kernel and keeps its tiles when they all fit a memory budget (``cache_mib``, default 4 GiB
  and at most half the free memory; 20,000 + 20,000 points take 3.3 GiB), so later batches
  cost only their matrix products: 64 permutations, then up to 173, then (not a clear case)
  all the rest in one pass. A pilot on 1,000 points of each sample (``_pilot_separates``)
  picks the first batch: when it already shows a clear shift, the first pass draws all 173
  (at 20,000 + 20,000 × 512 one pass with 173 is about 0.6 s faster than 64 then 109, and 64
  about 0.6 s faster than 173 for a no-shift). Past the budget the tiles are
  recomputed and the first batch is large enough (173) to settle either clear case in one
  pass: memory stays O(chunk² + N·(d + batch)), never O(N²). Its tiles are computed in one
  product of augmented rows (``[2γz, -γ|z|², 1] · [z, 1, -γ|z|² - ln c]``, through oneDNN's
  float32 matmul on the CPU: ``gram``) and ``expm1``, which gives the shifted, scaled kernel
  ``K/c - 1`` directly (fewer passes over each tile than the fixed path, and ``expm1`` is
  exact near the shift).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audits.sequential import (
    DEFAULT_EPSILON,
    DEFAULT_SPENDING,
    SequentialOutcome,
    gandy_boundaries,
    sequential_test,
)

#: Default tile edge: a 2048² float32 tile is 16 MB, large enough for full-rate matrix products,
#: small enough that the full diagonal tiles (K is symmetric) waste little work.
DEFAULT_CHUNK = 2048
#: Reference points used for the median heuristic (its cost is quadratic).
MEDIAN_POINTS = 2000


def _device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _as_matrix(a: Any, name: str) -> np.ndarray:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [n, d], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def median_bandwidth(ref: Any, max_points: int = MEDIAN_POINTS, seed: int = 0) -> float:
    """Median Euclidean distance between distinct reference points (the RBF bandwidth).

    Falls back to the mean non-zero distance, then 1.0, when the reference has (almost) no
    spread, so the kernel is always defined.
    """
    x = _as_matrix(ref, "reference")
    if len(x) < 2:
        raise ValueError("the median heuristic needs at least 2 reference points")
    if len(x) > max_points:  # subsample before the float64 copy: 2,000 rows, not all of them
        x = x[np.random.default_rng(seed).choice(len(x), max_points, replace=False)]
    x = x.astype(np.float64)
    t = torch.from_numpy(x - x.mean(0)).to(torch.float32)
    sq = (t * t).sum(1)
    d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (t @ t.T)).clamp_(min=0.0)
    iu = np.triu_indices(len(t), k=1)
    dist = np.sqrt(d2.numpy()[iu])
    med = float(np.median(dist))
    if med > 0:
        return med
    positive = dist[dist > 0]
    return float(positive.mean()) if len(positive) else 1.0


def _tiles(n: int, chunk: int) -> list[slice]:
    return [slice(s, min(s + chunk, n)) for s in range(0, n, chunk)]


def _onednn_linear() -> Any:
    """oneDNN's float32 ``x @ wᵀ`` (torch's ``mkldnn._linear_pointwise``), when it is there and
    set to IEEE float32; else None."""
    try:
        if not torch.backends.mkldnn.is_available():
            return None
        if str(torch.backends.mkldnn.matmul.fp32_precision) not in ("none", "ieee"):
            return None  # a process that allowed bf16/tf32 matmuls: keep exact float32
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


def gram(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``left @ rightᵀ`` in IEEE float32 (a kernel tile before ``expm1``).

    On the CPU through oneDNN, which runs these tiles about 1.3x faster than torch's MKL sgemm
    on AMD cores (196 vs 143 GFLOP/s measured at 2048 x 514), in torch's own thread pool;
    ``torch.mm`` elsewhere. The fixed test keeps ``torch.mm``, so its p-values stay those of
    earlier releases bit for bit."""
    if left.device.type == "cpu" and left.dtype == torch.float32:
        linear = _onednn_linear()
        if linear is not None:
            return linear(left, right, None, "none", [], "")
    return torch.mm(left, right.T)


def _kernel_mean(z: torch.Tensor, gamma: float, points: int = 512) -> float:
    """Mean off-diagonal kernel value among evenly spaced pooled points: the shift constant."""
    n = z.shape[0]
    s = z[torch.linspace(0, n - 1, min(points, n), device=z.device).round().long()]
    k = torch.cdist(s, s).pow_(2).mul_(-gamma).exp_()
    return float((k.sum() - len(s)) / max(len(s) * (len(s) - 1), 1))


def _quadratic_stats(
    z: torch.Tensor, a: torch.Tensor, gamma: float, chunk: int, shift: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """For every column ``a_b`` of ``a`` [N, B]: ``Q_b = a_bᵀ K₀ a_b``, ``R_b = a_bᵀ K₀ 1``; and ``T = 1ᵀ K₀ 1``.

    ``K₀`` is the RBF kernel of ``z`` [N, d] minus ``shift``, with a zero diagonal, computed in
    ``z``'s dtype one tile at a time (upper triangle of tiles). Tile results are carried in
    float64.
    """
    n, dev = z.shape[0], z.device
    # Fold the -gamma scale into the matrix product: k = exp(2γ z_i·z_j - γ|z_j|² - γ|z_i|²).
    neg_sq = (z * z).sum(1).mul_(-gamma)
    q = torch.zeros(a.shape[1], dtype=torch.float64, device=dev)
    rowsum = torch.zeros(n, dtype=torch.float64, device=dev)
    tiles = _tiles(n, chunk)
    for bi, rows in enumerate(tiles):
        a_i = a[rows]
        for cols in tiles[bi:]:
            k = torch.addmm(
                neg_sq[cols].unsqueeze(0), z[rows], z[cols].T, beta=1.0, alpha=2.0 * gamma
            )
            k.add_(neg_sq[rows].unsqueeze(1)).exp_().sub_(shift)
            diagonal = cols.start == rows.start
            if diagonal:
                k.fill_diagonal_(0.0)  # the unbiased estimator leaves out k(z_i, z_i)
            # a_Iᵀ K_IJ a_J for every permutation at once: one product [t_J, B], then a
            # column-wise dot with a_J.
            part = ((k.T @ a_i) * a[cols]).sum(0).to(torch.float64)
            # An off-diagonal tile stands for itself and its transpose: count it twice.
            q += part if diagonal else 2.0 * part
            rowsum[rows] += k.sum(1).to(torch.float64)
            if not diagonal:
                rowsum[cols] += k.sum(0).to(torch.float64)
            del k
    r = torch.zeros_like(q)
    for rows in tiles:
        r += rowsum[rows] @ a[rows].to(torch.float64)
    return q, r, float(rowsum.sum())


def _unbiased(q: torch.Tensor, r: torch.Tensor, total: float, m: int, n: int) -> torch.Tensor:
    """MMD²_u from the quadratic forms (see the module docstring)."""
    xx = q
    xy = r - q
    yy = total - 2.0 * r + q
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2.0 * xy / (m * n)


def _prepare(x: Any, y: Any) -> tuple[np.ndarray, int, int]:
    xa, ya = _as_matrix(x, "x"), _as_matrix(y, "y")
    if xa.shape[1] != ya.shape[1]:
        raise ValueError(f"x and y have different widths ({xa.shape[1]} vs {ya.shape[1]})")
    m, n = len(xa), len(ya)
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD² needs at least 2 points per sample (got {m} and {n})")
    pooled = np.concatenate([xa, ya]).astype(np.float64)
    # The RBF kernel is translation invariant; centring shrinks |z|² and with it the
    # cancellation in |a|² + |b|² - 2a·b.
    pooled -= pooled.mean(0)
    return pooled, m, n


def mmd2(
    x: Any,
    y: Any,
    bandwidth: float,
    device: str | torch.device | None = "cpu",
    chunk: int = DEFAULT_CHUNK,
) -> float:
    """Unbiased MMD² between samples ``x`` [m, d] and ``y`` [n, d] with an RBF kernel (float64)."""
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    pooled, m, n = _prepare(x, y)
    dev = _device(device)
    z = torch.from_numpy(pooled).to(dev)
    a = torch.zeros(m + n, 1, dtype=torch.float64, device=dev)
    a[:m, 0] = 1.0
    gamma = 1.0 / (2.0 * bandwidth**2)
    q, r, total = _quadratic_stats(z, a, gamma, chunk, _kernel_mean(z, gamma))
    return float(_unbiased(q, r, total, m, n)[0])


def permutation_matrix(m: int, n: int, permutations: int, seed: int = 0) -> np.ndarray:
    """[B+1, m+n] uint8: row 0 the observed split (first m points are x), then B random re-splits.

    Drawn with NumPy from ``seed`` alone, so CPU and CUDA runs test the same permutations.
    """
    template = np.zeros(m + n, dtype=np.uint8)
    template[:m] = 1
    rng = np.random.default_rng(seed)
    out = np.empty((permutations + 1, m + n), dtype=np.uint8)
    out[0] = template
    if permutations:
        out[1:] = rng.permuted(np.broadcast_to(template, (permutations, m + n)), axis=1)
    return out


def mmd_permutation_test(
    x: Any,
    y: Any,
    permutations: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = None,
    chunk: int = DEFAULT_CHUNK,
    bandwidth: float | None = None,
) -> dict[str, Any]:
    """Two-sample test: is ``y`` (current) drawn from the distribution of ``x`` (reference)?

    Returns ``mmd2`` (observed unbiased MMD²), ``p_value`` = (b+1)/(B+1), ``permutations`` (B),
    ``bandwidth`` (median heuristic on ``x`` unless given) and context for readers
    (``exceed`` = b, ``null_mean`` and ``null_q95`` of the permutation statistics, sizes,
    device). Runs on ``device`` (CUDA when present if None) in float32 tiles of ``chunk`` rows.
    """
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    pooled, m, n = _prepare(x, y)
    bw = median_bandwidth(pooled[:m], seed=seed) if bandwidth is None else float(bandwidth)
    if not bw > 0:
        raise ValueError(f"bandwidth must be positive, got {bw}")
    dev = _device(device)
    z = torch.from_numpy(pooled).to(device=dev, dtype=torch.float32)
    # [N, B+1]: a permutation per column, so a tile of rows is one contiguous slice.
    perms = torch.from_numpy(permutation_matrix(m, n, permutations, seed)).T.contiguous()
    a = perms.to(device=dev, dtype=torch.float32)
    gamma = 1.0 / (2.0 * bw**2)
    with exact_float32(dev):
        q, r, total = _quadratic_stats(z, a, gamma, chunk, _kernel_mean(z, gamma))
    stats = _unbiased(q, r, total, m, n).cpu().numpy()
    observed, null = float(stats[0]), stats[1:]
    exceed = int((null >= observed).sum())
    return {
        "mmd2": observed,
        "p_value": (exceed + 1) / (permutations + 1),
        "permutations": int(permutations),
        "bandwidth": bw,
        "exceed": exceed,
        "null_mean": float(null.mean()),
        "null_q95": float(np.quantile(null, 0.95)),
        "n_x": m,
        "n_y": n,
        "dim": int(pooled.shape[1]),
        "estimator": "unbiased",
        "kernel": "rbf",
        "seed": int(seed),
        "device": dev.type,
    }


# --- the sequential test ---------------------------------------------------------------------

#: Kernel tiles kept between passes: at most this many MiB (and half the memory available).
DEFAULT_CACHE_MIB = 4096
#: The first batch when the kernel is kept: a clear no-shift stops within it.
CACHED_BATCH = 64
#: The pilot that picks the first batch: this many points of each sample (when both have at
#: least twice as many), tested against this many re-splits.
PILOT_POINTS = 1000
PILOT_PERMUTATIONS = 49


@contextmanager
def exact_float32(device: torch.device) -> Iterator[None]:
    """IEEE float32 matrix products on CUDA for the block (TensorFloat-32 off), restored after."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


class PermutationStream:
    """Random re-splits drawn batch by batch: the same rows as ``permutation_matrix``'s 1…B.

    NumPy's ``permuted`` shuffles row after row from one generator, so drawing 58 + 58 + …
    rows gives exactly the fixed test's permutations in its order: a sequential test with the
    same seed sees the first ``n`` permutations of the fixed test.
    """

    def __init__(self, m: int, n: int, seed: int = 0) -> None:
        self.template = np.zeros(m + n, dtype=np.uint8)
        self.template[:m] = 1
        self._rng = np.random.default_rng(seed)

    def next(self, count: int) -> np.ndarray:
        """[count, m+n] uint8: the next ``count`` re-splits (1 marks a point playing "x")."""
        shape = (count, len(self.template))
        return self._rng.permuted(np.broadcast_to(self.template, shape), axis=1)


def _available_mib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def cache_budget_mib(device: torch.device, cap_mib: float = DEFAULT_CACHE_MIB) -> float:
    """MiB of kernel tiles to keep: ``cap_mib``, at most half the free (device) memory."""
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0] / 2**20
    else:
        free = _available_mib()
    return cap_mib if free is None else min(cap_mib, free / 2)


class TiledKernel:
    """The pooled RBF kernel as ``U = K/c - 1`` with a zero diagonal, in upper-triangle tiles.

    ``c`` is the mean kernel value (the shift of the fixed path), so ``K₀ = c·U`` and every
    quadratic form of ``U`` is that of ``K₀`` over ``c``. Tiles are computed on demand and
    all kept when they fit ``cache_bytes``.
    """

    def __init__(self, z: torch.Tensor, gamma: float, chunk: int, cache_bytes: float) -> None:
        n, d = z.shape
        self.n, self.tiles = n, _tiles(n, chunk)
        self.pairs = [(i, j) for i in range(len(self.tiles)) for j in range(i, len(self.tiles))]
        # The shift c: clamped so that U = K/c - 1 stays finite in float32 (K <= 1).
        self.shift = max(_kernel_mean(z, gamma), 1e-20)
        neg_sq = (z * z).sum(1).mul_(-gamma)
        # One product gives 2γ zᵢ·zⱼ - γ|zᵢ|² - γ|zⱼ|² - ln c; expm1 of it is K/c - 1.
        self.left = torch.empty(n, d + 2, dtype=z.dtype, device=z.device)
        self.left[:, :d] = z * (2.0 * gamma)
        self.left[:, d] = neg_sq
        self.left[:, d + 1] = 1.0
        self.right = torch.empty_like(self.left)
        self.right[:, :d] = z
        self.right[:, d] = 1.0
        self.right[:, d + 1] = neg_sq - math.log(self.shift)
        tile_bytes = sum(
            (self.tiles[i].stop - self.tiles[i].start)
            * (self.tiles[j].stop - self.tiles[j].start)
            * z.element_size()
            for i, j in self.pairs
        )
        # All tiles or none: a partial cache would save little and hold memory for nothing.
        self.cacheable = len(self.pairs) if tile_bytes <= cache_bytes else 0
        self._cache: dict[tuple[int, int], torch.Tensor] = {}
        self.rowsum = torch.zeros(n, dtype=torch.float64, device=z.device)
        self.passes = 0

    @property
    def fully_cached(self) -> bool:
        """Whether the tiles fit the budget (then later passes skip the kernel entirely)."""
        return self.cacheable > 0

    @property
    def cached_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._cache.values())

    def _tile(self, index: int, i: int, j: int) -> torch.Tensor:
        cached = self._cache.get((i, j))
        if cached is not None:
            return cached
        rows, cols = self.tiles[i], self.tiles[j]
        u = gram(self.left[rows], self.right[cols]).expm1_()
        if i == j:
            u.fill_diagonal_(0.0)  # the unbiased estimator leaves out k(z_i, z_i)
        if index < self.cacheable:
            self._cache[(i, j)] = u
        return u

    def quadratic(self, a: torch.Tensor) -> torch.Tensor:
        """``a_bᵀ U a_b`` (float64) for every row ``a_b`` of ``a`` [b, N]; the first pass also
        sums U's rows."""
        first = self.passes == 0
        if first:  # one more row of ones gives U's column sums in the same product
            a = torch.cat([a, torch.ones_like(a[:1])])
        q = torch.zeros(a.shape[0], dtype=torch.float64, device=a.device)
        for index, (i, j) in enumerate(self.pairs):
            rows, cols = self.tiles[i], self.tiles[j]
            u = self._tile(index, i, j)
            # a_Iᵀ U_IJ a_J for every permutation at once: one product [b, t_J], then a
            # row-wise dot with a_J.
            product = a[:, rows] @ u
            if first:
                self.rowsum[cols] += product[-1].to(torch.float64)
                if i != j:
                    self.rowsum[rows] += u.sum(1).to(torch.float64)
            part = product.mul_(a[:, cols]).sum(1).to(torch.float64)
            # An off-diagonal tile stands for itself and its transpose: count it twice.
            q += part if i == j else 2.0 * part
        self.passes += 1
        return q[:-1] if first else q


def mmd_sequential_test(
    x: Any,
    y: Any,
    max_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    device: str | torch.device | None = None,
    chunk: int = DEFAULT_CHUNK,
    bandwidth: float | None = None,
    epsilon: float = DEFAULT_EPSILON,
    cache_mib: float | None = None,
) -> dict[str, Any]:
    """The MMD² permutation test, stopping once p is clearly above or below ``alpha``.

    Same statistic, bandwidth and permutations (seed for seed) as ``mmd_permutation_test``;
    the permutations come in batches and the test stops by Gandy (2009)'s boundaries with
    resampling risk ``epsilon`` (``audits.sequential``), at most ``max_permutations``. Returns
    the fixed test's keys, with ``permutations`` = ``permutations_used`` (the draws the valid
    p-value rests on), plus ``permutations_max``, ``stopped_early``, ``boundary``,
    ``permutations_computed`` (draws computed, a batch may run past the stop), ``method``,
    ``resampling_risk``, ``kernel_passes`` and ``cache_mib`` (kernel tiles kept).
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    bounds = gandy_boundaries(float(alpha), int(max_permutations), float(epsilon), DEFAULT_SPENDING)
    pooled, m, n = _prepare(x, y)
    bw = median_bandwidth(pooled[:m], seed=seed) if bandwidth is None else float(bandwidth)
    if not bw > 0:
        raise ValueError(f"bandwidth must be positive, got {bw}")
    dev = _device(device)
    dim = int(pooled.shape[1])
    z = torch.from_numpy(pooled).to(device=dev, dtype=torch.float32)
    budget = cache_budget_mib(dev) if cache_mib is None else float(cache_mib)
    with exact_float32(dev):
        kernel = TiledKernel(z, 1.0 / (2.0 * bw**2), chunk, budget * 2**20)
    del z
    shift_foreseen = kernel.fully_cached and _pilot_separates(pooled, m, n, bw, seed, dev)
    del pooled  # the float64 copy is not needed past here (it is the largest array at 100k)
    stream = PermutationStream(m, n, seed)

    def draw(count: int) -> np.ndarray:
        rows = stream.next(count - 1 if kernel.passes == 0 else count)
        if kernel.passes == 0:  # the observed split first
            rows = np.concatenate([stream.template[None], rows])
        # [b, N]: a permutation per row (its tile slices are strided views, as BLAS takes them).
        a = torch.from_numpy(rows).to(device=dev, dtype=torch.float32)
        with exact_float32(dev):
            q = kernel.quadratic(a)
        r = a.to(torch.float64) @ kernel.rowsum
        # _unbiased is linear in the kernel: U's forms times c are K₀'s.
        c = kernel.shift
        stats = _unbiased(c * q, c * r, c * float(kernel.rowsum.sum()), m, n)
        return stats.cpu().numpy()

    # Kept: a short first batch settles a clear no-shift, one more reaches the earliest
    # clear-shift stop (173), that pass costing only its products over the kept tiles; when
    # the pilot foresees a shift, the first pass draws all 173 (one pass, and its products
    # are wider, so faster per permutation). Not kept: every pass recomputes the kernel (as
    # much as d permutations' products: N²·d against N²·b), so the first draws the 173 that
    # settle either clear case alone. Past that the case is not clear and the rest comes in
    # one more pass (sequential_test). The batches change only what is computed: the stop,
    # the p-value and the permutations are the same for any batching.
    settle = bounds.first_decision
    first = settle if shift_foreseen or not kernel.fully_cached else min(CACHED_BATCH, settle)
    outcome = sequential_test(draw, bounds, [first, settle - first] if first < settle else [first])
    return _sequential_result(outcome, bounds.alpha, epsilon, bw, m, n, dim, seed, dev, kernel)


def _pilot_separates(
    pooled: np.ndarray, m: int, n: int, bandwidth: float, seed: int, device: torch.device
) -> bool:
    """Whether ``PILOT_POINTS`` points of each sample already beat all ``PILOT_PERMUTATIONS``
    of their re-splits (the fixed test on the subsample, same bandwidth): a shift that clear
    will take the full test to its earliest clear-shift stop. Costs a 2,000-point kernel; only
    the batch sizes depend on it. False when either sample is under twice the pilot's size."""
    if min(m, n) < 2 * PILOT_POINTS:
        return False
    rng = np.random.default_rng(seed)
    xs = pooled[:m][rng.choice(m, PILOT_POINTS, replace=False)]
    ys = pooled[m:][rng.choice(n, PILOT_POINTS, replace=False)]
    pilot = mmd_permutation_test(
        xs, ys, PILOT_PERMUTATIONS, seed=seed, device=device, bandwidth=bandwidth
    )
    return pilot["exceed"] == 0


def _sequential_result(
    outcome: SequentialOutcome,
    alpha: float,
    epsilon: float,
    bandwidth: float,
    m: int,
    n: int,
    dim: int,
    seed: int,
    dev: torch.device,
    kernel: TiledKernel,
) -> dict[str, Any]:
    null = outcome.null
    return {
        "mmd2": outcome.observed,
        "p_value": outcome.p_value,
        "permutations": outcome.draws,
        "bandwidth": bandwidth,
        "exceed": outcome.exceed,
        "null_mean": float(null.mean()),
        "null_q95": float(np.quantile(null, 0.95)),
        "n_x": m,
        "n_y": n,
        "dim": dim,
        "estimator": "unbiased",
        "kernel": "rbf",
        "seed": int(seed),
        "device": dev.type,
        "permutations_used": outcome.draws,
        "permutations_max": outcome.max_draws,
        "permutations_computed": outcome.computed,
        "stopped_early": outcome.stopped_early,
        "boundary": outcome.stopped,
        "method": outcome.method,
        "resampling_risk": float(epsilon),
        "kernel_passes": kernel.passes,
        "cache_mib": round(kernel.cached_bytes / 2**20, 1),
    }
