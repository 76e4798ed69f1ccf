"""Suspect labels: held-out images whose given label the model confidently contradicts.

Confident learning (Northcutt et al., 2021; the method behind cleanlab), computed directly:

* each class j gets a threshold t_j, the mean predicted probability of j over the images
  labelled j (how sure the model usually is when it is right about j);
* an image is *confidently* class k when p_k >= t_k; among several such classes the most
  probable one wins;
* an image is a suspect when it is confidently some class other than its given label and the
  model's top class is not the given label (a model that agrees with the label does not
  contradict it, however low another class's threshold is).

Flags inside a *failure pattern* (``audits.failure_patterns``: a confusion concentrated in one
class pair or one metadata value, which random label noise does not produce) are the model's
systematic errors, not label noise: ``suspect_labels(..., exclude=...)`` leaves them out and
counts them (``n_in_patterns``), so a model that learned a shortcut does not turn its own
mistakes into "wrong labels". The suspects are candidates for review, never proven errors.

Suspects are ranked by self-confidence, the probability the model gives the *given* label,
lowest first, so a reviewer sees the likeliest mislabels first. The audited model was
trained on the training set, so its held-out probabilities are out-of-sample, which is what
confident learning needs. tests/test_labels.py checks the flagged set against cleanlab's
``find_label_issues(filter_by="confident_learning")``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: A class with no labelled image has no mean to set its threshold; a majority of the
#: probability stands in, so a confident prediction of an absent class still counts.
ABSENT_CLASS_THRESHOLD = 0.5
#: Above this share of flagged images, the list says the model is more suspect than the labels.
NOISY_SHARE = 0.2
# cleanlab compares p >= t - 1e-6 so that the image defining a threshold counts as confident.
_EPS = 1e-6


def class_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-class thresholds t_j = mean p_j over the images labelled j."""
    n_classes = probs.shape[1]
    sums = np.bincount(labels, weights=probs[np.arange(len(labels)), labels], minlength=n_classes)
    counts = np.bincount(labels, minlength=n_classes)
    return np.divide(sums, counts, out=np.full(n_classes, ABSENT_CLASS_THRESHOLD), where=counts > 0)


def confident_learning(labels: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
    """Thresholds, the confident class guess (-1 when none) and the suspect mask."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    thresholds = class_thresholds(labels, probs)
    above = probs >= thresholds[None, :] - _EPS
    guess = np.where(above.any(axis=1), np.where(above, probs, -1.0).argmax(axis=1), -1)
    self_conf = probs[np.arange(len(labels)), labels]
    # A model whose top class is the given label does not contradict it, whatever another
    # class's (possibly low) threshold says: cleanlab's find_label_issues drops those too
    # (count._reduce_issues, the given label winning ties within 1e-6).
    top = np.where(np.arange(probs.shape[1])[None, :] == labels[:, None], probs + _EPS, probs)
    suspect = (guess >= 0) & (guess != labels) & (top.argmax(axis=1) != labels)
    return {
        "thresholds": thresholds,
        "guess": guess,
        "suspect": suspect,
        "self_confidence": self_conf,
    }


def _labelled_probs(table: pd.DataFrame, probabilities: np.ndarray) -> tuple[np.ndarray, ...]:
    """Labels, positions and renormalised probabilities of the labelled rows."""
    label_idx = table["label_idx"].to_numpy(dtype=np.int64)
    labelled = np.flatnonzero(label_idx >= 0)
    probs = np.asarray(probabilities, dtype=np.float64)[labelled]
    # Stored probabilities are float16: renormalise so rows sum to one again.
    probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    return label_idx, labelled, probs


def flagged_mask(table: pd.DataFrame, probabilities: np.ndarray) -> np.ndarray:
    """Confident learning's flags as a mask over all rows of the table (unlabelled: False)."""
    label_idx, labelled, probs = _labelled_probs(table, probabilities)
    mask = np.zeros(len(table), dtype=bool)
    if len(labelled):
        mask[labelled] = confident_learning(label_idx[labelled], probs)["suspect"]
    return mask


def self_confidence(table: pd.DataFrame, probabilities: np.ndarray) -> np.ndarray:
    """The probability of the given label, per row of the table (unlabelled rows: 1)."""
    label_idx, labelled, probs = _labelled_probs(table, probabilities)
    out = np.ones(len(table), dtype=np.float64)
    out[labelled] = probs[np.arange(len(labelled)), label_idx[labelled]]
    return out


def suspect_labels(
    table: pd.DataFrame,
    probabilities: np.ndarray,
    classes: Sequence[str],
    max_listed: int = 200,
    exclude: Mapping[int, int] | None = None,
    others: Sequence[tuple[str, pd.Series]] = (),
) -> dict[str, Any]:
    """Ranked suspects over the labelled rows of a predictions table.

    Returns ``{method, n_labelled, n_flagged, n_confident_learning, n_in_patterns,
    thresholds: {class: t}, rows: [...]}``; each row has rank, row, path, label (given),
    suggested (the confident guess), predicted (the model's top class), confidence,
    self_confidence. ``exclude`` maps predictions rows to the failure pattern holding them:
    those flags are counted in ``n_in_patterns`` and are not suspects. ``others`` holds other
    audited versions on the same frozen set as (version, predicted class by image path)
    (``audits.label_consensus``): a flag one of them predicts with its given label is cleared
    (``n_cleared_by_versions``), and each row says how many versions agree against its label.
    ``n_flagged`` counts the suspects; at most ``max_listed`` rows are listed.
    """
    label_idx, labelled, probs = _labelled_probs(table, probabilities)
    exclude = exclude or {}
    out: dict[str, Any] = {
        "method": "confident learning (per-class mean self-confidence thresholds), "
        + ("flags inside failure patterns left out, " if exclude else "")
        + "ranked by self-confidence, lowest first",
        "n_labelled": int(len(labelled)),
        "n_flagged": 0,
        "flagged_share": 0.0,
        "n_confident_learning": 0,
        "n_in_patterns": 0,
        "thresholds": {},
        "rows": [],
    }
    if len(labelled) == 0:
        return out
    cl = confident_learning(label_idx[labelled], probs)
    row_ids = (
        table["row"].to_numpy(dtype=np.int64) if "row" in table.columns else np.arange(len(table))
    )
    all_flags = np.flatnonzero(cl["suspect"])
    in_pattern = np.array([int(row_ids[labelled[k]]) in exclude for k in all_flags], dtype=bool)
    flagged = all_flags[~in_pattern]
    paths = table["path"].to_numpy()
    given = np.asarray(classes, dtype=object)[label_idx[labelled[flagged]]]
    flag_paths = paths[labelled[flagged]]
    # Per other version: its prediction for each flagged image (None where it has no row).
    opinions = [o.reindex(flag_paths).to_numpy(dtype=object) for _, o in others]
    agrees = np.array([[v == g for v, g in zip(o, given, strict=True)] for o in opinions])
    cleared = agrees.any(axis=0) if len(opinions) else np.zeros(len(flagged), dtype=bool)
    flagged = flagged[~cleared]
    out["versions"] = [v for v, _ in others]
    out["n_cleared_by_versions"] = int(cleared.sum())
    order = flagged[np.argsort(cl["self_confidence"][flagged], kind="stable")]
    out["n_confident_learning"] = int(len(all_flags))
    out["n_in_patterns"] = int(in_pattern.sum())
    out["n_flagged"] = int(len(flagged))
    out["flagged_share"] = float(len(flagged) / len(labelled))
    if out["flagged_share"] > NOISY_SHARE:
        out["note"] = (
            f"the model contradicts {out['flagged_share']:.0%} of the labels: more likely a weak "
            "model than that many wrong labels; review the top of the list, not all of it"
        )
    out["thresholds"] = {c: float(t) for c, t in zip(classes, cl["thresholds"], strict=True)}
    pred_idx = table["pred_idx"].to_numpy(dtype=np.int64)
    rows = []
    for rank, k in enumerate(order[:max_listed], start=1):
        i = int(labelled[k])
        rows.append(
            {
                "rank": rank,
                "row": int(row_ids[i]),
                "path": str(paths[i]),
                "label": classes[label_idx[i]],
                "suggested": classes[int(cl["guess"][k])],
                "predicted": classes[pred_idx[i]],
                "confidence": float(probs[k].max()),
                "self_confidence": float(cl["self_confidence"][k]),
            }
        )
        if others:
            seen = [o.get(paths[i]) for _, o in others]
            rows[-1]["versions_compared"] = sum(v is not None for v in seen)
            rows[-1]["versions_against"] = sum(
                v is not None and v != classes[label_idx[i]] for v in seen
            )
    out["rows"] = rows
    return out
