"""The headline drift view: an MMD² permutation test on the model's embeddings.

By default the test is sequential (``audits.mmd.mmd_sequential_test``): permutations in
batches, stopping once the p-value is clearly above or below alpha, at most ``permutations``.
``early_stop=False`` runs the fixed test with all ``permutations`` (the p-values of earlier
releases, seed for seed).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from audits.mmd import mmd_permutation_test, mmd_sequential_test

_HEADLINE = ("mmd2", "p_value", "permutations")
FIXED_METHOD = "fixed Monte Carlo permutation test: p = (b + 1) / (B + 1)"


def embedding_drift(
    reference: np.ndarray,
    current: np.ndarray,
    alpha: float,
    permutations: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = None,
    early_stop: bool = True,
) -> dict[str, Any]:
    """MMD² permutation test on embeddings; ``drift`` when p < alpha.

    ``permutations`` is the most the sequential test draws, or all the fixed test draws.
    """
    started = time.perf_counter()
    if early_stop:
        result = mmd_sequential_test(
            reference,
            current,
            max_permutations=permutations,
            alpha=alpha,
            seed=seed,
            device=device,
        )
    else:
        result = mmd_permutation_test(
            reference, current, permutations=permutations, seed=seed, device=device
        )
        result |= {
            "permutations_used": result["permutations"],
            "permutations_max": result["permutations"],
            "stopped_early": False,
            "method": FIXED_METHOD,
        }
    return {
        "mmd2": result["mmd2"],
        "p_value": result["p_value"],
        "permutations": result["permutations"],
        "drift": bool(result["p_value"] < alpha),
        **{k: v for k, v in result.items() if k not in _HEADLINE},
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
