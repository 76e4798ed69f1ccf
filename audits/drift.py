"""``python -m audits drift``: does a current batch differ from the reference, and how?

Three views, one decision rule:

* **embedding** (the headline): unbiased MMD² with an RBF kernel on the model's penultimate
  embeddings, permutation test (``audits.mmd``); drift when p < alpha.
* **properties**: brightness, contrast, saturation, sharpness, width, height, aspect ratio,
  format and file size per image (``audits.image_properties``), compared column by column with
  Evidently's ``DataDriftPreset``. Numeric columns use its two-sample Kolmogorov–Smirnov test
  and ``format`` its chi-square test, set explicitly: left to choose, Evidently 0.7 switches to
  Wasserstein / Jensen–Shannon *distances* (no p-value) above 1,000 reference rows. A property
  drifts when its Holm-adjusted p-value (over the nine properties) is below alpha, so that
  nine looks at one batch do not raise nine times the false alarms; ``p_value`` is Evidently's
  own, ``p_adjusted`` the one that decides.
* **predictions**: predicted-class distribution (chi-square on the 2 x classes contingency
  table, classes with an expected count below 5 merged into "other") and confidence (two-sample
  KS); ``p_value`` = Bonferroni over the two, ``min(1, 2 min(p_class, p_conf))``. Accuracy on
  each side that has labels is reported, not tested.

Overall ``drift`` = embedding drift OR any property drift OR prediction drift. Each of the three
views holds its false alarms at alpha, so the overall rate is at most 3 x alpha by the union
bound (views are correlated, so less in practice; ``bench/drift.py --demo`` measures it over
random splits of the demo's held-out set).

The ``examples`` are the current images farthest from the reference: mean Euclidean distance
of each current embedding to its ``k`` nearest reference embeddings, with ``ratio`` = that
distance over the median of the same quantity within the reference.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from audits.datasets import (
    ImageSet,
    check_frozen,
    check_labels,
    fingerprint,
    hash_files,
    load_dataset,
)
from audits.errors import AuditError
from audits.fsio import write_json
from audits.image_properties import CATEGORICAL, NUMERIC, PROPERTIES, set_properties
from audits.inference import Predictions, predict, resolve_device
from audits.mmd import mmd_permutation_test
from audits.model_card import ModelCard, load_card, load_model
from audits.store import (
    DEFAULT_STORE,
    auditor_identity,
    create_run,
    new_run_id,
    utc_now,
)

SCHEMA_VERSION = 1
#: Expected count under which a class joins the "other" bucket (Cochran's rule).
MIN_EXPECTED = 5.0
N_EXAMPLES = 24
NEIGHBOURS = 5
DRIFT_RULE = "embedding.drift or predictions.drift or any(property.drift)"


@dataclass
class Side:
    """One data set after inference: its predictions and per-image properties, row-aligned."""

    image_set: ImageSet
    predictions: Predictions
    properties: pd.DataFrame  # path + PROPERTIES, one row per predictions.table row
    hashes: list[str | None]
    frozen: bool
    properties_s: float = 0.0

    @property
    def table(self) -> pd.DataFrame:
        return self.predictions.table

    def embeddings(self) -> np.ndarray:
        return np.asarray(self.predictions.embeddings, dtype=np.float32)

    def block(self) -> dict[str, Any]:
        """The data set block of ``drift.json``."""
        table = self.table
        labelled = int((table["label_idx"] >= 0).sum())
        return {
            "path": str(self.image_set.source),
            "root": str(self.image_set.root),
            "kind": self.image_set.kind,
            "fingerprint": fingerprint(self.image_set, self.hashes),
            "n_images": int(len(table)),
            "n_skipped": len(self.predictions.skipped),
            "n_listed": int(len(self.image_set.items)),
            "n_labelled": labelled,
            "frozen": self.frozen,
        }


# --- statistics (pure functions over arrays and tables) -------------------------------------


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone); ``None`` stays ``None``."""
    known = [(p, i) for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(known)):
        running = max(running, min(1.0, (len(known) - rank) * p))
        adjusted[i] = running
    return adjusted


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
        **{k: v for k, v in result.items() if k not in {"mmd2", "p_value", "permutations"}},
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def class_distribution_test(
    reference: Sequence[int], current: Sequence[int], classes: Sequence[str]
) -> dict[str, Any]:
    """Chi-square test of independence of side x predicted class.

    Classes predicted on neither side are dropped; then, while some class has an expected count
    below ``MIN_EXPECTED`` and more than two columns remain, the smallest such class is merged
    into an "other" bucket (which can itself be merged away). Yates' correction applies to a
    2 x 2 table (scipy's default).
    """
    ref_counts = np.bincount(np.asarray(reference, dtype=np.int64), minlength=len(classes))
    cur_counts = np.bincount(np.asarray(current, dtype=np.int64), minlength=len(classes))
    counts = [
        {"class": c, "reference": int(r), "current": int(k),
         "reference_share": float(r / max(ref_counts.sum(), 1)), "current_share": float(k / max(cur_counts.sum(), 1))}
        for c, r, k in zip(classes, ref_counts, cur_counts, strict=True)
    ]  # fmt: skip
    columns = {
        c: np.array([r, k], dtype=np.float64)
        for c, r, k in zip(classes, ref_counts, cur_counts, strict=True)
        if r + k > 0
    }
    merged: list[str] = []
    while len(columns) > 2:
        table = np.stack(list(columns.values()), axis=1)
        expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
        small = [name for name, e in zip(columns, expected.min(0), strict=True) if e < MIN_EXPECTED]
        if not small:
            break
        name = min(small, key=lambda c: (columns[c].sum(), c == "other"))
        if name == "other":
            # Only the bucket is small: fold the smallest real class into it instead.
            name = min((c for c in columns if c != "other"), key=lambda c: columns[c].sum())
        bucket = columns.pop(name)
        if name != "other":
            merged.append(name)
        columns["other"] = columns.get("other", np.zeros(2)) + bucket
    result: dict[str, Any] = {"test": "chi-square (contingency)", "merged_into_other": merged}
    if len(columns) < 2:
        result.update(
            p_value=1.0,
            statistic=0.0,
            dof=0,
            note="one predicted class on both sides; nothing to compare",
        )
    else:
        table = np.stack(list(columns.values()), axis=1)
        chi2, p, dof, _ = stats.chi2_contingency(table)
        result.update(p_value=float(p), statistic=float(chi2), dof=int(dof))
    result["counts"] = counts
    return result


def confidence_test(reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    """Two-sample Kolmogorov–Smirnov test on the max-softmax confidence."""
    ks = stats.ks_2samp(reference, current)
    return {
        "test": "two-sample Kolmogorov-Smirnov",
        "p_value": float(ks.pvalue),
        "statistic": float(ks.statistic),
        "reference_mean": float(np.mean(reference)),
        "current_mean": float(np.mean(current)),
        "reference_median": float(np.median(reference)),
        "current_median": float(np.median(current)),
    }


def _accuracy(table: pd.DataFrame) -> tuple[float | None, int]:
    labelled = table["label_idx"] >= 0
    n = int(labelled.sum())
    return (float(table.loc[labelled, "correct"].mean()) if n else None), n


def prediction_drift(
    reference: pd.DataFrame, current: pd.DataFrame, classes: Sequence[str], alpha: float
) -> dict[str, Any]:
    """Class-distribution and confidence tests, combined by Bonferroni; accuracy where labelled."""
    cls = class_distribution_test(reference["pred_idx"], current["pred_idx"], classes)
    conf = confidence_test(
        reference["confidence"].to_numpy(np.float64), current["confidence"].to_numpy(np.float64)
    )
    p = min(1.0, 2.0 * min(cls["p_value"], conf["p_value"]))
    ref_acc, ref_n = _accuracy(reference)
    cur_acc, cur_n = _accuracy(current)
    return {
        "p_value": p,
        "drift": bool(p < alpha),
        "combined": "bonferroni: min(1, 2 * min(classes.p_value, confidence.p_value))",
        "classes": cls,
        "confidence": conf,
        "accuracy": {
            "reference": ref_acc,
            "current": cur_acc,
            "n_reference_labelled": ref_n,
            "n_current_labelled": cur_n,
        },
    }


def _evidently_p_values(snapshot: Any) -> dict[str, dict[str, Any]]:
    """Per-column p-value and method from a DataDriftPreset snapshot's ``ValueDrift`` metrics."""
    out: dict[str, dict[str, Any]] = {}
    for metric in snapshot.dict().get("metrics", []):
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        value = metric.get("value")
        p = float(value) if isinstance(value, int | float) and math.isfinite(value) else None
        out[str(config.get("column"))] = {"p_value": p, "method": config.get("method")}
    return out


def _evidently_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evidently")
    except PackageNotFoundError:
        return "unknown"


def property_drift(
    reference: pd.DataFrame, current: pd.DataFrame, alpha: float
) -> tuple[list[dict[str, Any]], Any]:
    """Evidently's DataDriftPreset over the image properties; returns the rows and the snapshot."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(NUMERIC), categorical_columns=list(CATEGORICAL)
    )
    ref = reference[PROPERTIES].reset_index(drop=True)
    cur = current[PROPERTIES].reset_index(drop=True)
    preset = DataDriftPreset(num_method="ks", cat_method="chisquare", threshold=alpha)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Constant columns (one size, one format) make Evidently's correlation plots divide by 0.
        warnings.simplefilter("ignore")
        snapshot = Report([preset]).run(
            current_data=Dataset.from_pandas(cur, data_definition=definition),
            reference_data=Dataset.from_pandas(ref, data_definition=definition),
        )
    found = _evidently_p_values(snapshot)
    rows: list[dict[str, Any]] = []
    for name in PROPERTIES:
        entry = found.get(name, {"p_value": None, "method": None})
        p = entry["p_value"]
        note = None
        if name in CATEGORICAL:
            ref_share = ref[name].value_counts(normalize=True).sort_index()
            cur_share = cur[name].value_counts(normalize=True).sort_index()
            if p is None and set(ref_share.index) == set(cur_share.index) and len(ref_share) == 1:
                p, note = 1.0, "one value on both sides"
            row = {"name": name, "kind": "categorical", "test": entry["method"], "p_value": p,
                   "reference_share": ref_share.to_dict(), "current_share": cur_share.to_dict()}  # fmt: skip
        else:
            row = {
                "name": name, "kind": "numeric", "test": entry["method"], "p_value": p,
                "reference_mean": float(ref[name].mean()), "current_mean": float(cur[name].mean()),
                "reference_median": float(ref[name].median()), "current_median": float(cur[name].median()),
            }  # fmt: skip
        if note:
            row["note"] = note
        rows.append(row)
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows]), strict=True):
        row["p_adjusted"] = adjusted
        row["drift"] = bool(adjusted is not None and adjusted < alpha)
    # DESIGN.md order first: name, p_value, drift.
    ordered = [{"name": r["name"], "p_value": r["p_value"], "drift": r["drift"],
                **{k: v for k, v in r.items() if k not in {"name", "p_value", "drift"}}} for r in rows]  # fmt: skip
    return ordered, snapshot


def _knn_mean_distance(
    queries: torch.Tensor, reference: torch.Tensor, k: int, chunk: int, exclude_self: bool = False
) -> torch.Tensor:
    """Mean distance of each query to its ``k`` nearest reference rows, computed in row chunks."""
    out = []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start : start + chunk], reference)
        if exclude_self:
            # queries are reference[start:...]: leave each point's own zero out.
            idx = torch.arange(start, start + len(d), device=d.device)
            d[torch.arange(len(d), device=d.device), idx] = float("inf")
        out.append(d.topk(k, dim=1, largest=False).values.mean(1))
    return torch.cat(out)


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
    # The yardstick: a seeded sample of reference points against the rest of the reference.
    pick = np.sort(np.random.default_rng(seed).permutation(len(ref))[: min(2000, len(ref))])
    k_ref = max(1, min(k, len(ref) - 1))
    typical = float("nan")
    if len(ref) > 1:
        inner = []
        for start in range(0, len(pick), chunk):
            rows = torch.from_numpy(pick[start : start + chunk]).to(dev)
            d = torch.cdist(ref[rows], ref)
            d[torch.arange(len(rows), device=dev), rows] = float("inf")
            inner.append(d.topk(k_ref, dim=1, largest=False).values.mean(1))
        typical = float(np.median(torch.cat(inner).cpu().numpy()))
    order = np.argsort(-dist, kind="stable")[:top]
    return dist, [(int(i), float(dist[i])) for i in order], typical


# --- the run -------------------------------------------------------------------------------


def _reasons(skipped: list[dict[str, str]]) -> str:
    reasons = sorted({s["reason"] for s in skipped})
    return "; ".join(reasons[:3]) or "no images"


def _side(
    name: str,
    model: torch.nn.Module,
    card: ModelCard,
    image_set: ImageSet,
    device: torch.device,
    batch_size: int,
    workers: int | None,
    progress: bool,
) -> Side:
    hashes = hash_files(image_set)
    frozen = check_frozen(image_set, hashes)
    if name == "reference" and not frozen:
        print(
            f"warning: {image_set.source} is not frozen; freeze the reference so later drift runs "
            f"compare against the same images: python -m audits freeze {image_set.source}",
            file=sys.stderr,
        )
    preds = predict(
        model, card, image_set, device, batch_size, workers, hashes=hashes, progress=progress
    )
    if len(preds.table) < 2:
        raise AuditError(
            f"{image_set.source}: the {name} set has {len(preds.table)} readable image(s) of "
            f"{len(image_set.items)} ({_reasons(preds.skipped)}); drift needs at least 2 on each side"
        )
    started = time.perf_counter()
    props, _ = set_properties(image_set)
    # One row per predictions row (an image both passes could decode), in the same order.
    props = preds.table[["path"]].merge(props, on="path", how="left")
    if props["brightness"].isna().any():
        bad = props.loc[props["brightness"].isna(), "path"].iloc[0]
        raise AuditError(
            f"{image_set.abspath(bad)}: decoded for inference but not for its properties; re-save the image"
        )
    return Side(image_set, preds, props, hashes, frozen, round(time.perf_counter() - started, 3))


def _properties_frame(side: Side, name: str, nn_distance: np.ndarray | None) -> pd.DataFrame:
    frame = side.properties.copy()
    frame.insert(0, "side", name)
    table = side.table
    frame["label"] = table["label"].to_numpy()
    frame["pred"] = table["pred"].to_numpy()
    frame["confidence"] = table["confidence"].to_numpy()
    frame["correct"] = table["correct"].to_numpy()
    frame["nn_distance"] = nn_distance if nn_distance is not None else np.nan
    return frame


def run_drift(
    model_dir: str | Path,
    reference: str | Path,
    current: str | Path,
    store: str | Path = DEFAULT_STORE,
    device: str = "auto",
    batch_size: int = 64,
    workers: int | None = None,
    permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    allow_pickle: bool = False,
    progress: bool = False,
) -> Path:
    """Compare ``current`` with ``reference`` through the model; returns the new drift run folder."""
    started = time.perf_counter()
    if not 0.0 < alpha < 1.0:
        raise AuditError(f"--alpha {alpha}: must be between 0 and 1 (e.g. 0.05)")
    if permutations < 1:
        raise AuditError(f"--permutations {permutations}: must be at least 1 (1000 is the default)")
    card = load_card(model_dir)
    ref_set = load_dataset(reference)
    cur_set = load_dataset(current)
    for image_set in (ref_set, cur_set):
        if image_set.labelled:
            check_labels(image_set, card.classes)
    dev = resolve_device(device)
    model = load_model(card, dev, allow_pickle=allow_pickle)

    # The current batch first: it is usually the smaller set and the one more likely unreadable.
    cur = _side("current", model, card, cur_set, dev, batch_size, workers, progress)
    ref = _side("reference", model, card, ref_set, dev, batch_size, workers, progress)
    ref_emb, cur_emb = ref.embeddings(), cur.embeddings()

    if progress:
        print(f"permutation test: {permutations} permutations on {dev.type}…", file=sys.stderr)
    embedding = embedding_drift(ref_emb, cur_emb, alpha, permutations, seed, dev)
    t0 = time.perf_counter()
    properties, snapshot = property_drift(ref.properties, cur.properties, alpha)
    evidently_s = time.perf_counter() - t0
    predictions = prediction_drift(ref.table, cur.table, card.classes, alpha)
    nn_dist, far, typical = farthest_examples(ref_emb, cur_emb, device=dev, seed=seed)
    examples = []
    for row, distance in far:
        t = cur.table.iloc[row]
        examples.append({
            "path": t["path"],
            "abspath": str(cur_set.abspath(t["path"])),
            "distance": distance,
            "ratio": distance / typical if typical and math.isfinite(typical) and typical > 0 else None,
            "pred": t["pred"],
            "confidence": float(t["confidence"]),
            "label": t["label"],
        })  # fmt: skip

    overall = bool(
        embedding["drift"] or predictions["drift"] or any(p["drift"] for p in properties)
    )
    run_id = new_run_id("drift", card.name, card.version)
    meta: dict[str, Any] = {
        "drift": overall,
        "embedding": embedding,
        "predictions": predictions,
        "properties": properties,
        "properties_method": {
            "tool": f"evidently {_evidently_version()} DataDriftPreset",
            "numeric_test": "ks",
            "categorical_test": "chisquare",
            "correction": "holm over the properties; drift when p_adjusted < alpha",
        },
        "schema_version": SCHEMA_VERSION,
        "kind": "drift",
        "run_id": run_id,
        "created": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "alpha": alpha,
        "drift_rule": DRIFT_RULE,
        "model": card.identity(),
        "reference": ref.block(),
        "current": cur.block(),
        "examples": examples,
        "examples_method": {
            "distance": f"mean Euclidean distance to the {NEIGHBOURS} nearest reference embeddings",
            "reference_typical_distance": typical,
            "embedding_source": cur.predictions.embedding_source,
        },
        "auditor": auditor_identity(),
        "device": cur.predictions.device,
        "skipped": {"reference": ref.predictions.skipped, "current": cur.predictions.skipped},
        "timings": {
            "reference_inference_s": ref.predictions.timings.get("inference_s"),
            "current_inference_s": cur.predictions.timings.get("inference_s"),
            "properties_s": round(ref.properties_s + cur.properties_s, 3),
            "mmd_s": embedding["elapsed_s"],
            "evidently_s": round(evidently_s, 3),
        },
        "files": {
            "evidently_html": "evidently.html",
            "evidently_json": "evidently.json",
            "properties": "properties.parquet",
        },
    }
    frame = pd.concat(
        [_properties_frame(ref, "reference", None), _properties_frame(cur, "current", nn_dist)],
        ignore_index=True,
    )
    with create_run(store, run_id) as tmp:
        frame.to_parquet(tmp / "properties.parquet", index=False)
        snapshot.save_html(str(tmp / "evidently.html"))
        snapshot.save_json(str(tmp / "evidently.json"))
        meta["timings"]["total_s"] = round(time.perf_counter() - started, 3)
        write_json(tmp / "drift.json", meta)
    return Path(store) / run_id
