"""Nearest training image for each held-out image, searched in blocks on the audit's device.

Two searches: by perceptual signature (phash candidates, closest thumbnail) and by the
model's embeddings (cosine of centred embeddings). Memory stays bounded by the block sizes.
"""

from __future__ import annotations

import numpy as np
import torch

from audits.leakage.signatures import Signatures, hamming, thumb_rms
from audits.leakage.thresholds import PHASH_MAX_DISTANCE


def perceptual_nearest(
    test: Signatures,
    train: Signatures,
    phash_max: int = PHASH_MAX_DISTANCE,
    device: str | torch.device = "cpu",
    block_cells: int = 1 << 23,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each test image, the closest-thumbnail training image among those within
    ``phash_max`` bits: (index or -1, thumbnail RMS or inf, phash distance or 65).

    Blocks of test rows x all training rows: popcounts in numpy, thumbnail distances as a
    matrix product on ``device``; memory stays bounded by ``block_cells``.
    """
    dev = torch.device(device)
    n = len(test.phash)
    best = np.full(n, -1, np.int64)
    rms = np.full(n, np.inf)
    dist = np.full(n, 65, np.int64)
    keep = np.flatnonzero(train.valid)
    if n == 0 or len(keep) == 0:
        return best, rms, dist
    pool_hash = train.phash[keep]
    # Centre the grey levels so the squared norms stay small (float32 cancellation).
    pool = torch.as_tensor(train.thumbs[keep].astype(np.float32) - 128.0, device=dev)
    pool_sq = (pool * pool).sum(dim=1)
    rows = max(1, block_cells // len(keep))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        ham = hamming(test.phash[start:stop, None], pool_hash[None, :])
        far = torch.as_tensor(ham > phash_max, device=dev)
        q = torch.as_tensor(test.thumbs[start:stop].astype(np.float32) - 128.0, device=dev)
        d2 = (q * q).sum(dim=1, keepdim=True) + pool_sq[None, :] - 2.0 * (q @ pool.T)
        d2 = d2.masked_fill(far, float("inf"))
        _, arg = d2.min(dim=1)
        arg = arg.cpu().numpy()
        has = ~np.take_along_axis(ham > phash_max, arg[:, None], axis=1)[:, 0]
        has &= test.valid[start:stop]
        j = keep[arg]
        best[start:stop] = np.where(has, j, -1)
        # Exact values for the chosen pairs, in float64 (the product above is for ranking).
        exact = thumb_rms(test.thumbs[start:stop], train.thumbs[j])
        rms[start:stop] = np.where(has, exact, np.inf)
        dist[start:stop] = np.where(has, ham[np.arange(stop - start), arg], 65)
    return best, rms, dist


def cosine_nearest(
    test: np.ndarray,
    train: np.ndarray,
    device: str | torch.device = "cpu",
    center: bool = True,
    batch: int = 1024,
    train_batch: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:
    """For each test embedding, the most similar training embedding: (index, cosine).

    Both sides are centred on the training mean (see ``audits.leakage.thresholds``),
    L2-normalised and compared in blocks on ``device`` so a GPU does the matrix products and
    memory stays bounded.
    """
    dev = torch.device(device)
    n = len(test)
    best_idx = np.full(n, -1, dtype=np.int64)
    best_cos = np.full(n, np.nan, dtype=np.float64)
    if n == 0 or len(train) == 0:
        return best_idx, best_cos
    train_t = torch.as_tensor(np.asarray(train, dtype=np.float32), device=dev)
    mean = train_t.mean(dim=0, keepdim=True) if center else torch.zeros_like(train_t[:1])
    train_t = torch.nn.functional.normalize(train_t - mean, dim=1)
    for start in range(0, n, batch):
        q = torch.as_tensor(np.asarray(test[start : start + batch], dtype=np.float32), device=dev)
        q = torch.nn.functional.normalize(q - mean, dim=1)
        top_val = torch.full((len(q),), -2.0, device=dev)
        top_arg = torch.zeros(len(q), dtype=torch.long, device=dev)
        for t0 in range(0, len(train_t), train_batch):
            val, arg = (q @ train_t[t0 : t0 + train_batch].T).max(dim=1)
            better = val > top_val
            top_val = torch.where(better, val, top_val)
            top_arg = torch.where(better, arg + t0, top_arg)
        best_idx[start : start + len(q)] = top_arg.cpu().numpy()
        best_cos[start : start + len(q)] = top_val.cpu().double().numpy()
    return best_idx, best_cos
