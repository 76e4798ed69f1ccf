"""What a run stored, read into the plain values the pages show.

Every read of a stored JSON block (audit.json, integrity.json, drift.json, comparison.json)
goes through these small functions, so pages hold no chains of lookups and the later switch to
the typed run model (``audits.runs``) touches this module only. Missing optional values read as
None; a block a page cannot do without raises ``AuditError`` naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audits.errors import AuditError


def get(mapping: Any, *keys: str, default: Any = None) -> Any:
    """Nested lookup that never raises: get(meta, 'integrity', 'leakage', 'leaked_images')."""
    cur = mapping
    for key in keys:
        if not isinstance(cur, Mapping):
            return default
        cur = cur.get(key)
        if cur is None:
            return default
    return cur


def records(value: Any) -> list[dict[str, Any]]:
    """The dict items of a stored list (anything else: none)."""
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


# ---------------------------------------------------------------- audit.json


def metrics(meta: Mapping[str, Any], where: Path) -> dict[str, Any]:
    """The stored metrics block; a run without one is damaged (AuditError names the file)."""
    m = meta.get("metrics")
    if not isinstance(m, dict) or not isinstance(m.get("per_class"), list):
        raise AuditError(f"{where} has no usable metrics block (incomplete or damaged run)")
    return m


def class_names(meta: Mapping[str, Any]) -> list[str]:
    """The model's class order (colours and matrix axes follow it)."""
    names = get(meta, "model", "classes")
    if isinstance(names, list) and names:
        return [str(c) for c in names]
    return [str(c) for c in get(meta, "metrics", "confusion", "labels", default=[])]


def headline(meta: Mapping[str, Any], where: Path) -> dict[str, Any]:
    """The overview's headline numbers."""
    m = metrics(meta, where)
    return {
        "accuracy": m.get("accuracy"),
        "ci": (m.get("accuracy_ci_low"), m.get("accuracy_ci_high")),
        "balanced_accuracy": m.get("balanced_accuracy"),
        "macro_f1": m.get("macro_f1"),
        "top3": get(m, "top_k_accuracy", "3"),
        "top5": get(m, "top_k_accuracy", "5"),
        "ece": m.get("ece"),
        "n_images": get(meta, "dataset", "n_images"),
        "n_skipped": get(meta, "dataset", "n_skipped", default=0),
        "n_classes": m.get("n_classes", len(m["per_class"])),
    }


@dataclass
class Confusion:
    """metrics.confusion (counts and the stored share of each true class) and the pairs."""

    labels: list[str]
    matrix: np.ndarray
    normalized: np.ndarray
    pairs: list[dict[str, Any]] = field(default_factory=list)  # metrics.most_confused
    per_class: list[dict[str, Any]] = field(default_factory=list)


def confusion(meta: Mapping[str, Any], where: Path) -> Confusion:
    """The stored confusion block; AuditError when it is missing or its shapes disagree."""
    m = metrics(meta, where)
    block = m.get("confusion") or {}
    labels = [str(c) for c in block.get("labels") or class_names(meta)]
    cm = np.asarray(block.get("matrix") or [], dtype=np.float64)
    rates = np.asarray(block.get("normalized") or [], dtype=np.float64)
    n = len(labels)
    if cm.shape != (n, n) or rates.shape != (n, n):
        raise AuditError(
            f"{where} has no usable confusion matrix (shape {cm.shape}, normalised "
            f"{rates.shape}, expected {n}×{n}): the run is incomplete or damaged"
        )
    pairs = [
        p
        for p in records(m.get("most_confused"))
        if p.get("true") in labels and p.get("predicted") in labels
    ]
    return Confusion(labels, cm, rates, pairs, records(m.get("per_class")))


def imbalance(meta: Mapping[str, Any]) -> dict[str, Any]:
    """metrics.imbalance (test and training counts per class, ratios, extremes)."""
    block = get(meta, "metrics", "imbalance", default={})
    return dict(block) if isinstance(block, dict) else {}


def pair_sentences(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """explain's per-confused-pair results that carry a sentence (true, predicted, sentence)."""
    ex = meta.get("explain")
    if not isinstance(ex, dict) or ex.get("error"):
        return []
    return [p for p in records(ex.get("pairs")) if p.get("sentence")]


def pair_sentence(meta: Mapping[str, Any], true: str, pred: str) -> str | None:
    """explain's sentence for one confused pair, when it wrote one."""
    return next(
        (
            str(p["sentence"])
            for p in pair_sentences(meta)
            if p.get("true") == true and p.get("predicted") == pred
        ),
        None,
    )


def explain_error(meta: Mapping[str, Any]) -> str | None:
    return get(meta, "explain", "error")


def integrity_summary(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """audit.json's compact integrity block, or None when the stage did not run or failed."""
    block = meta.get("integrity")
    if not isinstance(block, dict) or block.get("error"):
        return None
    return {
        "leakage_checked": get(block, "leakage", "available") is not False,
        "leaked": get(block, "leakage", "leaked_images", default=0),
        "suspects": get(block, "suspect_labels", "n_flagged"),
    }


def integrity_error(meta: Mapping[str, Any]) -> str | None:
    return get(meta, "integrity", "error")


def leaked_rows(integrity: Any) -> set[int]:
    """integrity.json's predictions rows of test images found in the training data."""
    return set(get(integrity, "leakage", "leaked_rows", default=[]))


def suspects(integrity: Any) -> dict[int, dict[str, Any]]:
    """integrity.json's suspect-label rows keyed by predictions row."""
    rows = records(get(integrity, "suspect_labels", "rows", default=[]))
    return {r["row"]: r for r in rows if isinstance(r.get("row"), int)}


def n_suspects(integrity: Any, listed: int) -> int:
    """How many labels the integrity check flagged (more than it lists, possibly)."""
    return get(integrity, "suspect_labels", "n_flagged", default=listed)


def dataset_path(meta: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(path, kind) of the audited data set as stored."""
    path = get(meta, "dataset", "path")
    return (path if isinstance(path, str) and path else None), get(meta, "dataset", "kind")


def model_dir(meta: Mapping[str, Any]) -> str | None:
    return get(meta, "model", "dir")


# ---------------------------------------------------------------- comparison.json


def comparison(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The release gate: verdict, versions, overall and balanced differences, speed, checks."""
    overall = get(doc, "overall", default={})
    balanced = get(overall, "balanced_accuracy", default={})
    speed = get(doc, "speed", default={})
    failed = {str(c.get("text")) for c in records(doc.get("checks")) if c.get("ok") is False}
    return {
        "verdict": doc.get("verdict"),
        "version_a": str(get(doc, "run_a", "model", "version", default="A")),
        "version_b": str(get(doc, "run_b", "model", "version", default="B")),
        "accuracy": {k: overall.get(k) for k in ("accuracy_a", "accuracy_b", "diff", "ci_low", "ci_high")},
        "balanced": {
            "accuracy_a": balanced.get("balanced_accuracy_a"),
            "accuracy_b": balanced.get("balanced_accuracy_b"),
            **{k: balanced.get(k) for k in ("diff", "ci_low", "ci_high")},
        },
        "only_a_right": get(overall, "counts", "only_a_right"),
        "only_b_right": get(overall, "counts", "only_b_right"),
        "mcnemar_p": get(overall, "mcnemar", "p_value"),
        "throughput_ratio": speed.get("throughput_ratio"),
        "latency_ratio": speed.get("latency_ratio"),
        "reasons": [(str(r), str(r) in failed) for r in doc.get("reasons") or []],
        "notes": [str(n) for n in doc.get("notes") or []],
        "per_class": records(doc.get("per_class")),
        "n_aligned": get(doc, "dataset", "n_aligned"),
        "fingerprint": str(get(doc, "dataset", "fingerprint", default="")),
        "n_groups": get(doc, "dataset", "n_groups"),
    }  # fmt: skip


def speed_details(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """comparison.json's timings of A and B, or None when the speed check was skipped."""
    speed = doc.get("speed")
    if not isinstance(speed, dict) or not speed:
        return None
    sides = {
        side: [get(speed, side, k) for k in ("latency_ms", "throughput", "params")]
        for side in ("a", "b")
    }
    return {
        **sides,
        "device": get(speed, "device", "name"),
        "settings": speed.get("settings") or {},
    }


# ---------------------------------------------------------------- drift.json


def drift(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A drift run: the verdict, the three tests, both sets and the far-away examples."""
    alpha = doc.get("alpha")
    return {
        "drift": doc.get("drift"),
        "embedding": {k: get(doc, "embedding", k) for k in ("drift", "mmd2", "p_value", "permutations")},
        "predictions": {k: get(doc, "predictions", k) for k in ("drift", "p_value")},
        "properties": records(doc.get("properties")),
        "alpha": alpha if isinstance(alpha, int | float) else 0.05,
        "reference": {k: get(doc, "reference", k) for k in ("n_images", "path", "fingerprint")},
        "current": {k: get(doc, "current", k) for k in ("n_images", "path", "fingerprint")},
        "examples": records(doc.get("examples")),
        "created": doc.get("created"),
    }  # fmt: skip


def class_mix(doc: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]] | None:
    """Predicted class shares (reference, current) from predictions.classes.counts, if stored."""
    counts = records(get(doc, "predictions", "classes", "counts", default=[]))
    ref = {str(c["class"]): float(c.get("reference_share") or 0.0) for c in counts if "class" in c}
    cur = {str(c["class"]): float(c.get("current_share") or 0.0) for c in counts if "class" in c}
    return (ref, cur) if ref else None


def identity(meta: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """What was audited: (model, held-out data, audit run) fields as stored."""
    model, data = get(meta, "model", default={}), get(meta, "dataset", default={})
    classes = model.get("classes")
    fields = ("name", "version", "weights_sha256", "code_commit", "architecture", "target_layer")
    return (
        {**{k: model.get(k) for k in fields}, "n_classes": len(classes) if isinstance(classes, list) else None},
        {
            **{k: data.get(k) for k in ("fingerprint", "n_images", "n_listed", "n_skipped", "frozen", "kind", "path")},
            "metadata_columns": data.get("metadata_columns") or [],
        },
        {
            "run_id": meta.get("run_id"), "created": meta.get("created"),
            "auditor_version": get(meta, "auditor", "version"), "auditor_commit": get(meta, "auditor", "commit"),
            "device_type": get(meta, "device", "type"), "device_name": get(meta, "device", "name"),
            "torch": get(meta, "device", "torch"), "amp": get(meta, "device", "amp"),
            "images_per_s": get(meta, "timings", "images_per_s"),
        },
    )  # fmt: skip


# ---------------------------------------------------------------- integrity.json


def leakage(report: Mapping[str, Any]) -> dict[str, Any]:
    """integrity.json's leakage block: counts, accuracy with and without, the pairs found."""
    leak = get(report, "leakage", default={})
    counts = get(leak, "counts", default={})
    return {
        "error": leak.get("error"),
        "available": bool(leak.get("available")),
        "reason": leak.get("reason"),
        "n_test": leak.get("n_test", 0),
        **{k: counts.get(k, 0) for k in ("leaked_images", "exact", "group", "group_test_images")},
        "accuracy": get(leak, "accuracy", "all", "accuracy"),
        "accuracy_clean": get(leak, "accuracy", "without_leaked", "accuracy"),
        "exact_pairs": records(leak.get("exact")),
        "near_pairs": records(leak.get("near")),
        "groups": records(leak.get("groups")),
        "note": get(leak, "checks", "near", "note"),
    }


def suspect_block(report: Mapping[str, Any]) -> dict[str, Any]:
    """integrity.json's suspect labels: the ranked rows and how many were flagged of how many."""
    block = get(report, "suspect_labels", default={})
    rows = records(block.get("rows"))
    return {
        "error": block.get("error"),
        "rows": rows,
        "n_flagged": block.get("n_flagged", len(rows)),
        "n_labelled": block.get("n_labelled", 0),
        "method": block.get("method", "confident learning"),
    }


def slice_block(report: Mapping[str, Any]) -> dict[str, Any]:
    """integrity.json's slices: every slice, the weakest, and the overall accuracy."""
    block = get(report, "slices", default={})
    rows = records(block.get("slices"))
    return {
        "error": block.get("error"),
        "rows": rows,
        "weakest": records(block.get("weakest")) or rows[:10],
        "accuracy": block.get("accuracy"),
    }


# ---------------------------------------------------------------- run listing, claims


def listing(meta: Any, kind: str) -> tuple[str, str, str]:
    """(model name, model version, created) of any run; a comparison names its candidate B."""
    model = get(meta, "model", default={})
    if kind == "comparison" and not model:
        model = get(meta, "run_b", "model", default={})
    return (
        str(get(model, "name", default="unknown model")),
        str(get(model, "version", default="unknown version")),
        str(get(meta, "created", default="")),
    )


def claims_file(doc: Mapping[str, Any], folder: str) -> tuple[str, str, list[dict[str, Any]]]:
    """A stored claims.json: (the claims file's name, when it was checked, the results)."""
    return (
        str(doc.get("claims_file", folder)),
        str(doc.get("created", "")),
        records(doc.get("results")),
    )
