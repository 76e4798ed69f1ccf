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
weights sum to zero) so the float32 partial sums stay small; ``mmd2`` runs in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

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
    x = _as_matrix(ref, "reference").astype(np.float64)
    if len(x) < 2:
        raise ValueError("the median heuristic needs at least 2 reference points")
    if len(x) > max_points:
        x = x[np.random.default_rng(seed).choice(len(x), max_points, replace=False)]
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
