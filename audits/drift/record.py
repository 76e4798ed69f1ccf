"""The files of a drift run folder: ``drift.json`` and ``properties.parquet``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from audits.drift.analysis import DRIFT_RULE, DriftAnalysis
from audits.drift.examples import NEIGHBOURS
from audits.drift.properties import CATEGORICAL_TEST, CORRECTION, NUMERIC_TEST, evidently_version
from audits.drift.side import Side
from audits.drift.thumbs import THUMBS_DIR
from audits.drift.wording import rule_sentence
from audits.model_card import ModelCard
from audits.runs import SCHEMA_VERSION

DRIFT_FILE = "drift.json"
FILES = {
    "thumbs": THUMBS_DIR,
    "evidently_html": "evidently.html",
    "evidently_json": "evidently.json",
    "properties": "properties.parquet",
}


def drift_record(
    card: ModelCard,
    ref: Side,
    cur: Side,
    analysis: DriftAnalysis,
    alpha: float,
    *,
    run_id: str,
    created: str,
    auditor: dict[str, str],
    label: str | None = None,
    batch_date: str | None = None,
) -> dict[str, Any]:
    """``drift.json`` (without ``timings.total_s``, which the writer adds last).

    DESIGN.md's fields come first: drift, embedding, predictions, properties. ``label`` (the
    ``--label`` text) names the current batch instead of its folder; ``batch_date`` (the
    ``--batch-date``, checked) is when its images were taken.
    """
    current = cur.block()
    if label:
        current["name"] = label
    if batch_date:
        current["date"] = batch_date
    return {
        "drift": analysis.drift,
        "embedding": analysis.embedding,
        "predictions": analysis.predictions,
        "properties": analysis.properties,
        "properties_method": {
            "tool": f"evidently {evidently_version()} DataDriftPreset",
            "numeric_test": NUMERIC_TEST,
            "categorical_test": CATEGORICAL_TEST,
            "correction": CORRECTION,
        },
        "schema_version": SCHEMA_VERSION,
        "kind": "drift",
        "run_id": run_id,
        "created": created,
        "alpha": alpha,
        "drift_rule": DRIFT_RULE,
        "drift_rule_text": rule_sentence(alpha),
        "model": card.identity(),
        "reference": ref.block(),
        "current": current,
        "examples": analysis.examples,
        "examples_method": {
            "distance": f"mean Euclidean distance to the {NEIGHBOURS} nearest reference embeddings",
            "reference_typical_distance": analysis.typical_distance,
            "embedding_source": cur.predictions.embedding_source,
        },
        "auditor": auditor,
        "device": cur.predictions.device,
        "skipped": {"reference": ref.predictions.skipped, "current": cur.predictions.skipped},
        "timings": {
            "reference_inference_s": ref.predictions.timings.get("inference_s"),
            "current_inference_s": cur.predictions.timings.get("inference_s"),
            "properties_s": round(ref.properties_s + cur.properties_s, 3),
            "mmd_s": analysis.embedding["elapsed_s"],
            "evidently_s": round(analysis.evidently_s, 3),
        },
        "files": dict(FILES),
    }


def properties_table(ref: Side, cur: Side, analysis: DriftAnalysis) -> pd.DataFrame:
    """``properties.parquet``: both sides' rows; ``nn_distance`` only on the current side."""
    return pd.concat(
        [
            ref.properties_frame("reference", None),
            cur.properties_frame("current", analysis.nn_distance),
        ],
        ignore_index=True,
    )
