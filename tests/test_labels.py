"""audits.labels: confident learning checked against cleanlab, and planted label flips
ranked at the top of the suspects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cleanlab.filter import find_label_issues

from audits.labels import class_thresholds, confident_learning, suspect_labels

CLASSES = ["carrera", "targa", "turbo", "gt"]


def model_probs(
    n: int, k: int, seed: int, margin: tuple[float, float] = (0.5, 4.0)
) -> tuple[np.ndarray, np.ndarray]:
    """True labels and softmax probabilities of a model that is right more often than not."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += rng.uniform(*margin, n)
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def flip(y: np.ndarray, count: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), size=count, replace=False)
    noisy = y.copy()
    noisy[idx] = (y[idx] + rng.integers(1, k, count)) % k
    return noisy, idx


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flags_equal_cleanlab_confident_learning(seed: int) -> None:
    y, p = model_probs(800, 4, seed)
    noisy, _ = flip(y, 40, 4, seed + 10)
    mine = confident_learning(noisy, p)["suspect"]
    theirs = find_label_issues(noisy, p, filter_by="confident_learning")
    assert mine.sum() > 30
    assert np.array_equal(mine, theirs)


def test_a_label_the_model_agrees_with_is_never_suspect() -> None:
    """A class the model is bad at gets a low threshold; an image whose top class is its
    given label but gives that weak class more than the threshold is no suspect (as in
    cleanlab, which this must keep matching)."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 600)
    p = np.full((600, 3), 0.05)
    p[np.arange(600), y] = 0.9
    weak = y == 2
    p[weak] = rng.dirichlet([4, 4, 1], weak.sum())  # class 2 is rarely predicted: low threshold
    agree = np.flatnonzero(~weak)[:20]
    p[agree] = [0.55, 0.1, 0.35]  # top class 0 (labelled 0 where y == 0), class 2 above its t
    p /= p.sum(axis=1, keepdims=True)
    cl = confident_learning(y, p)
    assert (p[agree, 2] >= cl["thresholds"][2]).all()
    agreeing = agree[y[agree] == 0]
    assert len(agreeing) > 3 and not cl["suspect"][agreeing].any()
    assert np.array_equal(cl["suspect"], find_label_issues(y, p, filter_by="confident_learning"))


def test_thresholds_are_per_class_mean_self_confidence() -> None:
    y, p = model_probs(300, 4, 5)
    t = class_thresholds(y, p)
    for j in range(4):
        assert t[j] == pytest.approx(p[y == j, j].mean())
    # A class nobody is labelled with gets the stand-in threshold.
    assert class_thresholds(np.zeros(3, np.int64), np.full((3, 2), 0.5))[1] == 0.5


def _table(labels: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    pred = probs.argmax(axis=1)
    return pd.DataFrame(
        {
            "row": np.arange(len(labels)),
            "path": [f"img/{i}.png" for i in range(len(labels))],
            "label_idx": labels,
            "pred_idx": pred,
        }
    )


def test_planted_flips_rank_at_the_top() -> None:
    # A good model (about 97% right): its own mistakes compete with the flips for the top.
    y, p = model_probs(1000, 4, 7, margin=(2.5, 7.0))
    assert 0.95 < (p.argmax(axis=1) == y).mean() < 0.99
    noisy, flipped = flip(y, 20, 4, 8)
    out = suspect_labels(_table(noisy, p), p.astype(np.float16), CLASSES)
    top = [r["row"] for r in out["rows"][:20]]
    assert len(set(flipped.tolist()) & set(top)) >= 17
    # The top fifteen are all planted flips, and each suggests the true class back.
    first = out["rows"][:15]
    assert {r["row"] for r in first} <= set(flipped.tolist())
    assert all(r["suggested"] == CLASSES[y[r["row"]]] for r in first)
    # A flip that is missed is one the model is unsure about too (below its class threshold).
    thresholds = np.array([out["thresholds"][c] for c in CLASSES])
    for i in set(flipped.tolist()) - {r["row"] for r in out["rows"]}:
        assert p[i].max() < thresholds[p[i].argmax()]
    assert [r["rank"] for r in out["rows"]] == list(range(1, len(out["rows"]) + 1))
    conf = [r["self_confidence"] for r in out["rows"]]
    assert conf == sorted(conf)
    r = first[0]
    assert r["label"] == CLASSES[noisy[r["row"]]] and r["path"] == f"img/{r['row']}.png"
    # Stored as float16, hence the tolerance.
    assert r["self_confidence"] == pytest.approx(p[r["row"], noisy[r["row"]]], abs=2e-3)


def test_unlabelled_rows_and_caps() -> None:
    y, p = model_probs(200, 4, 3)
    noisy, _ = flip(y, 20, 4, 4)
    t = _table(noisy, p)
    t.loc[:49, "label_idx"] = -1
    out = suspect_labels(t, p, CLASSES, max_listed=5)
    assert out["n_labelled"] == 150
    assert len(out["rows"]) == 5 and out["n_flagged"] > 5
    assert all(r["row"] >= 50 for r in out["rows"])
    empty = suspect_labels(t.assign(label_idx=-1), p, CLASSES)
    assert (empty["n_labelled"], empty["n_flagged"], empty["rows"]) == (0, 0, [])


def test_a_weak_model_is_called_out() -> None:
    y, p = model_probs(600, 4, 11, margin=(-1.0, 1.0))  # about a coin toss among four
    out = suspect_labels(_table(y, p), p, CLASSES)
    assert (
        out["flagged_share"] == pytest.approx(out["n_flagged"] / 600) and out["flagged_share"] > 0.2
    )
    assert "more likely a weak model" in out["note"]
    good_y, good_p = model_probs(600, 4, 12, margin=(2.5, 7.0))
    assert "note" not in suspect_labels(_table(good_y, good_p), good_p, CLASSES)
