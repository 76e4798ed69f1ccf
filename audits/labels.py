"""Suspect labels: held-out images whose given label the model confidently contradicts.

Confident learning (Northcutt et al., 2021; the method behind cleanlab), computed directly:

* each class j gets a threshold t_j, the mean predicted probability of j over the images
  labelled j (how sure the model usually is when it is right about j);
* an image is *confidently* class k when p_k >= t_k; among several such classes the most
  probable one wins;
* an image is a suspect when it is confidently some class other than its given label.

Suspects are ranked by self-confidence, the probability the model gives the *given* label,
lowest first, so a reviewer sees the likeliest mislabels first. The audited model was
trained on the training set, so its held-out probabilities are out-of-sample, which is what
confident learning needs. tests/test_labels.py checks the flagged set against cleanlab's
``find_label_issues(filter_by="confident_learning")``.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    suspect = (guess >= 0) & (guess != labels)
    self_conf = probs[np.arange(len(labels)), labels]
    return {
        "thresholds": thresholds,
        "guess": guess,
        "suspect": suspect,
        "self_confidence": self_conf,
    }


def suspect_labels(
    table: pd.DataFrame,
    probabilities: np.ndarray,
    classes: Sequence[str],
    max_listed: int = 200,
) -> dict[str, Any]:
    """Ranked suspects over the labelled rows of a predictions table.

    Returns ``{method, n_labelled, n_flagged, thresholds: {class: t}, rows: [...]}``; each row
    has rank, row, path, label (given), suggested (the confident guess), predicted (the
    model's top class), confidence, self_confidence. At most ``max_listed`` rows are listed.
    """
    label_idx = table["label_idx"].to_numpy(dtype=np.int64)
    labelled = np.flatnonzero(label_idx >= 0)
    out: dict[str, Any] = {
        "method": "confident learning (per-class mean self-confidence thresholds), "
        "ranked by self-confidence, lowest first",
        "n_labelled": int(len(labelled)),
        "n_flagged": 0,
        "flagged_share": 0.0,
        "thresholds": {},
        "rows": [],
    }
    if len(labelled) == 0:
        return out
    probs = np.asarray(probabilities, dtype=np.float64)[labelled]
    # Stored probabilities are float16: renormalise so rows sum to one again.
    probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    cl = confident_learning(label_idx[labelled], probs)
    flagged = np.flatnonzero(cl["suspect"])
    order = flagged[np.argsort(cl["self_confidence"][flagged], kind="stable")]
    out["n_flagged"] = int(len(flagged))
    out["flagged_share"] = float(len(flagged) / len(labelled))
    if out["flagged_share"] > NOISY_SHARE:
        out["note"] = (
            f"the model contradicts {out['flagged_share']:.0%} of the labels: more likely a weak "
            "model than that many wrong labels; review the top of the list, not all of it"
        )
    out["thresholds"] = {c: float(t) for c, t in zip(classes, cl["thresholds"], strict=True)}
    paths = table["path"].to_numpy()
    pred_idx = table["pred_idx"].to_numpy(dtype=np.int64)
    rows = []
    for rank, k in enumerate(order[:max_listed], start=1):
        i = int(labelled[k])
        rows.append(
            {
                "rank": rank,
                "row": int(table["row"].iat[i]) if "row" in table.columns else i,
                "path": str(paths[i]),
                "label": classes[label_idx[i]],
                "suggested": classes[int(cl["guess"][k])],
                "predicted": classes[pred_idx[i]],
                "confidence": float(probs[k].max()),
                "self_confidence": float(cl["self_confidence"][k]),
            }
        )
    out["rows"] = rows
    return out
