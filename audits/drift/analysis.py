"""Every drift view over two inferred sides, and the overall decision."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from audits.drift.embedding import embedding_drift
from audits.drift.examples import example_entries, farthest_examples
from audits.drift.predictions import prediction_drift
from audits.drift.properties import property_drift
from audits.drift.side import Side

DRIFT_RULE = "embedding.drift or predictions.drift or any(property.drift)"


@dataclass
class DriftAnalysis:
    """The three views, the farthest current examples, and the Evidently snapshot."""

    embedding: dict[str, Any]
    properties: list[dict[str, Any]]
    predictions: dict[str, Any]
    examples: list[dict[str, Any]]
    nn_distance: np.ndarray  # per current row: mean distance to its nearest reference rows
    typical_distance: float  # the same within the reference (the yardstick of ``ratio``)
    snapshot: Any  # Evidently's report, saved beside drift.json
    evidently_s: float

    @property
    def drift(self) -> bool:
        """``DRIFT_RULE``: any of the three views."""
        return bool(
            self.embedding["drift"]
            or self.predictions["drift"]
            or any(p["drift"] for p in self.properties)
        )


def analyse_drift(
    ref: Side,
    cur: Side,
    classes: Sequence[str],
    alpha: float,
    permutations: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = None,
    early_stop: bool = True,
) -> DriftAnalysis:
    """Run the embedding, property and prediction views and find the farthest examples."""
    ref_emb, cur_emb = ref.embeddings(), cur.embeddings()
    embedding = embedding_drift(ref_emb, cur_emb, alpha, permutations, seed, device, early_stop)
    started = time.perf_counter()
    properties, snapshot = property_drift(ref.properties, cur.properties, alpha)
    evidently_s = time.perf_counter() - started
    predictions = prediction_drift(ref.table, cur.table, classes, alpha)
    nn_distance, far, typical = farthest_examples(ref_emb, cur_emb, device=device, seed=seed)
    return DriftAnalysis(
        embedding=embedding,
        properties=properties,
        predictions=predictions,
        examples=example_entries(cur.table, far, typical, cur.image_set.abspath),
        nn_distance=nn_distance,
        typical_distance=typical,
        snapshot=snapshot,
        evidently_s=evidently_s,
    )
