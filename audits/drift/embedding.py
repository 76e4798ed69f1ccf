"""The headline drift view: an MMD² permutation test on the model's embeddings."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from audits.mmd import mmd_permutation_test

_HEADLINE = ("mmd2", "p_value", "permutations")


def embedding_drift(
    reference: np.ndarray,
    current: np.ndarray,
    alpha: float,
    permutations: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """MMD² permutation test on embeddings; ``drift`` when p < alpha."""
    started = time.perf_counter()
    result = mmd_permutation_test(
        reference, current, permutations=permutations, seed=seed, device=device
    )
    return {
        "mmd2": result["mmd2"],
        "p_value": result["p_value"],
        "permutations": result["permutations"],
        "drift": bool(result["p_value"] < alpha),
        **{k: v for k, v in result.items() if k not in _HEADLINE},
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
