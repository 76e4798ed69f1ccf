"""The current images farthest from the reference, in the model's embedding space.

A current image's distance is the mean Euclidean distance of its embedding to its ``k``
nearest reference embeddings; its ``ratio`` is that distance over the median of the same
quantity within the reference (the reference's own spacing).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

N_EXAMPLES = 24
NEIGHBOURS = 5
#: Reference points sampled (seeded) to measure the reference's own spacing.
TYPICAL_POINTS = 2000


def _knn_mean_distance(
    queries: torch.Tensor, reference: torch.Tensor, k: int, chunk: int
) -> torch.Tensor:
    """Mean distance of each query to its ``k`` nearest reference rows, computed in row chunks."""
    out = []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start : start + chunk], reference)
        out.append(d.topk(k, dim=1, largest=False).values.mean(1))
    return torch.cat(out)


def _typical_distance(ref: torch.Tensor, k: int, chunk: int, seed: int) -> float:
    """Median over a seeded sample of reference points of their mean distance to their ``k``
    nearest *other* reference points; NaN for a one-point reference."""
    if len(ref) <= 1:
        return float("nan")
    dev = ref.device
    pick = np.sort(
        np.random.default_rng(seed).permutation(len(ref))[: min(TYPICAL_POINTS, len(ref))]
    )
    k_ref = max(1, min(k, len(ref) - 1))
    inner = []
    for start in range(0, len(pick), chunk):
        rows = torch.from_numpy(pick[start : start + chunk]).to(dev)
        d = torch.cdist(ref[rows], ref)
        d[torch.arange(len(rows), device=dev), rows] = float("inf")  # not its own zero
        inner.append(d.topk(k_ref, dim=1, largest=False).values.mean(1))
    return float(np.median(torch.cat(inner).cpu().numpy()))


def farthest_examples(
    reference: np.ndarray,
    current: np.ndarray,
    top: int = N_EXAMPLES,
    k: int = NEIGHBOURS,
    device: str | torch.device | None = "cpu",
    chunk: int = 2048,
    seed: int = 0,
) -> tuple[np.ndarray, list[tuple[int, float]], float]:
    """Every current row's mean distance to its ``k`` nearest reference rows, the ``top`` farthest
    (row, distance) pairs, and the same distance's median within the reference (the yardstick)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32)).to(dev)
    cur = torch.from_numpy(np.ascontiguousarray(current, dtype=np.float32)).to(dev)
    k_cur = max(1, min(k, len(ref)))
    dist = _knn_mean_distance(cur, ref, k_cur, chunk).cpu().numpy().astype(np.float64)
    typical = _typical_distance(ref, k, chunk, seed)
    order = np.argsort(-dist, kind="stable")[:top]
    return dist, [(int(i), float(dist[i])) for i in order], typical


def example_entries(
    table: pd.DataFrame,
    far: list[tuple[int, float]],
    typical: float,
    abspath: Callable[[str], Path],
) -> list[dict[str, Any]]:
    """drift.json's ``examples``: the farthest current rows of a predictions table, described."""
    usable = bool(typical and math.isfinite(typical) and typical > 0)
    entries = []
    for row, distance in far:
        t = table.iloc[row]
        entries.append(
            {
                "path": t["path"],
                "abspath": str(abspath(t["path"])),
                "distance": distance,
                "ratio": distance / typical if usable else None,
                "pred": t["pred"],
                "confidence": float(t["confidence"]),
                "label": t["label"],
            }
        )
    return entries
