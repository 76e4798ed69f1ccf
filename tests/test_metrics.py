"""audits.metrics, audits.calibration and audits.intervals against independent implementations.

References: scikit-learn (accuracy, balanced accuracy, F1, per-class PRF, confusion, top-k,
calibration_curve), statsmodels (Wilson), published Wilson values (Newcombe 1998), and numpy
re-implementations written here (ECE with np.digitize, most-confused pairs by sorting).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)
from statsmodels.stats.proportion import proportion_confint

from audits.calibration import (
    assign_bins,
    bin_edges,
    calibration_summary,
    expected_calibration_error,
    reliability_bins,
)
from audits.errors import AuditError
from audits.intervals import wilson_interval
from audits.metrics import (
    audit_metrics,
    class_imbalance,
    confusion_counts,
    most_confused,
    ranked_from_probabilities,
    top_k_accuracy,
)

# sklearn warns on the very cases we test on purpose (absent classes, k >= n_classes).
pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning"),
    pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true"),
]

DESIGN_KEYS = {
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "ece",
    "top_k_accuracy",
    "per_class",
    "confusion",
}
EXTRA_KEYS = {
    "accuracy_ci_low",
    "accuracy_ci_high",
    "n_classes",
    "n_labelled",
    "most_confused",
    "imbalance",
    "calibration",
}
PER_CLASS_KEYS = {
    "class",
    "support",
    "correct",
    "recall",
    "precision",
    "f1",
    "ci_low",
    "ci_high",
    "predicted",
}


# ---------------------------------------------------------------- helpers


def make_table(
    label_idx: np.ndarray, pred_idx: np.ndarray, confidence=None, ranked=None
) -> pd.DataFrame:
    """A predictions table with the ARCHITECTURE.md columns the metrics read."""
    label_idx = np.asarray(label_idx, dtype=np.int64)
    pred_idx = np.asarray(pred_idx, dtype=np.int64)
    n = len(label_idx)
    if confidence is None:
        confidence = np.full(n, 0.9)
    if ranked is None:
        ranked = pred_idx[:, None]
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "label_idx": label_idx,
            "pred_idx": pred_idx,
            "confidence": np.asarray(confidence, dtype=np.float32),
            "correct": (label_idx == pred_idx) & (label_idx >= 0),
            "topk_idx": [list(r) for r in np.asarray(ranked)],
        }
    )


def random_table(
    seed: int,
    n: int,
    n_classes: int,
    absent: tuple[int, ...] = (),
    never_predicted: tuple[int, ...] = (),
    unlabelled: float = 0.0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Seeded table from softmax scores: imbalanced labels, some classes absent from the
    labels, some never predicted, some rows unlabelled. Returns (table, probabilities)."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(n_classes) * 2)
    weights[list(absent)] = 0
    weights /= weights.sum()
    y = rng.choice(n_classes, size=n, p=weights)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y] += rng.normal(1.5, 1.0, size=n)
    logits[:, list(never_predicted)] -= 50.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    ranked = np.argsort(-probs, axis=1, kind="stable")[:, : min(5, n_classes)]
    label_idx = np.where(rng.random(n) < unlabelled, -1, y)
    table = make_table(label_idx, ranked[:, 0], probs.max(axis=1), ranked)
    return table, probs


def class_names(n: int) -> list[str]:
    return [f"c{i:03d}" for i in range(n)]


def sklearn_top_k(y: np.ndarray, probs: np.ndarray, k: int) -> float:
    """sklearn's top-k with all model classes as labels (binary wants the positive column)."""
    n_classes = probs.shape[1]
    score = probs[:, 1] if n_classes == 2 else probs
    return top_k_accuracy_score(y, score, k=k, labels=np.arange(n_classes))


def assert_matches_sklearn(m: dict, table: pd.DataFrame, n_classes: int) -> None:
    """Every metric in `m` against scikit-learn/statsmodels on the labelled rows of `table`."""
    labelled = table[table["label_idx"] >= 0]
    y = labelled["label_idx"].to_numpy()
    p = labelled["pred_idx"].to_numpy()
    labels = np.arange(n_classes)
    present = np.unique(y)

    assert m["n_labelled"] == len(y)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p), abs=1e-12)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p), abs=1e-12)
    assert m["macro_f1"] == pytest.approx(
        f1_score(y, p, labels=present, average="macro", zero_division=0), abs=1e-12
    )

    cm = confusion_matrix(y, p, labels=labels)
    assert m["confusion"]["matrix"] == cm.tolist()
    np.testing.assert_allclose(
        m["confusion"]["normalized"], confusion_matrix(y, p, labels=labels, normalize="true")
    )

    prec, rec, f1, sup = precision_recall_fscore_support(y, p, labels=labels, zero_division=0)
    low, high = proportion_confint(np.diag(cm), np.maximum(sup, 1), method="wilson")
    for i, row in enumerate(m["per_class"]):
        assert row["support"] == sup[i]
        assert row["correct"] == cm[i, i]
        assert row["predicted"] == cm[:, i].sum()
        assert row["precision"] == pytest.approx(prec[i], abs=1e-12)
        if sup[i] > 0:
            assert row["recall"] == pytest.approx(rec[i], abs=1e-12)
            assert row["f1"] == pytest.approx(f1[i], abs=1e-12)
            assert row["ci_low"] == pytest.approx(max(low[i], 0.0), abs=1e-12)
            assert row["ci_high"] == pytest.approx(min(high[i], 1.0), abs=1e-12)
            assert row["ci_low"] <= row["recall"] <= row["ci_high"]
        else:
            assert row["recall"] is None and row["f1"] is None
            assert row["ci_low"] is None and row["ci_high"] is None


# ---------------------------------------------------------------- Wilson interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (1, 1, 0.2065, 1.0),
        # Newcombe (1998), Stat. Med. 17:857, Table II, method 3 (score interval).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (500, 1000, 0.4691, 0.5309),
    ],
)
def test_wilson_published_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert isinstance(lo, float) and isinstance(hi, float)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_wilson_vectorised_matches_closed_form():
    rng = np.random.default_rng(0)
    n = rng.integers(1, 100_000, size=500)
    k = rng.integers(0, n + 1)
    lo, hi = wilson_interval(k, n, alpha=0.1)
    z = 1.6448536269514722  # two-sided 90%
    phat = k / n
    centre = (phat + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2))
    np.testing.assert_allclose(lo, np.clip(centre - half, 0, 1), atol=1e-12)
    np.testing.assert_allclose(hi, np.clip(centre + half, 0, 1), atol=1e-12)


def test_wilson_zero_n_is_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lo, hi = wilson_interval(np.array([0, 3, 0]), np.array([0, 4, 5]))
        slo, shi = wilson_interval(0, 0)
    assert np.isnan(lo[0]) and np.isnan(hi[0]) and np.isnan(slo) and np.isnan(shi)
    assert lo[1] == pytest.approx(0.3006418, abs=1e-6)  # 3/4, Wilson 95%
    assert lo[2] == 0.0 and hi[2] == pytest.approx(0.4344825, abs=1e-6)  # 0/5


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(5, 4)
    with pytest.raises(ValueError):
        wilson_interval(-1, 4)


# ---------------------------------------------------------------- random tables vs sklearn


@pytest.mark.parametrize(
    ("seed", "n", "n_classes", "absent", "never", "unlabelled"),
    [
        (1, 400, 2, (), (), 0.0),
        (2, 500, 3, (), (), 0.1),
        (3, 1000, 7, (2,), (5,), 0.2),
        (4, 2000, 12, (0, 11), (3, 4), 0.05),
        (5, 300, 40, (7,), (1,), 0.0),
    ],
)
def test_random_tables_match_sklearn(seed, n, n_classes, absent, never, unlabelled):
    table, probs = random_table(seed, n, n_classes, absent, never, unlabelled)
    m = audit_metrics(table, class_names(n_classes))
    assert_matches_sklearn(m, table, n_classes)

    mask = table["label_idx"].to_numpy() >= 0
    y = table["label_idx"].to_numpy()[mask]
    for k in (1, 3, 5):
        assert m["top_k_accuracy"][str(k)] == pytest.approx(
            sklearn_top_k(y, probs[mask], k), abs=1e-12
        )
    assert m["top_k_accuracy"]["1"] == pytest.approx(m["accuracy"], abs=1e-12)

    # The built-in scenarios really occur: zero support and zero predictions.
    support = {r["class"]: r["support"] for r in m["per_class"]}
    predicted = {r["class"]: r["predicted"] for r in m["per_class"]}
    names = class_names(n_classes)
    assert all(support[names[c]] == 0 for c in absent)
    assert all(predicted[names[c]] == 0 for c in never)


def test_macro_f1_class_set_is_classes_with_support():
    # One absent class: the all-classes average would count its f1 as 0 and come out lower.
    table, _ = random_table(3, 1000, 7, absent=(2,), never_predicted=(5,))
    m = audit_metrics(table, class_names(7))
    y, p = table["label_idx"], table["pred_idx"]
    all_classes = f1_score(y, p, labels=range(7), average="macro", zero_division=0)
    assert m["macro_f1"] == pytest.approx(all_classes * 7 / 6, abs=1e-12)
    assert m["macro_f1"] > all_classes


def test_unlabelled_rows_are_ignored():
    table, _ = random_table(6, 800, 5, unlabelled=0.3)
    m_all = audit_metrics(table, class_names(5))
    m_lab = audit_metrics(table[table["label_idx"] >= 0].reset_index(drop=True), class_names(5))
    assert m_all == m_lab
    assert m_all["n_labelled"] == int((table["label_idx"] >= 0).sum()) < len(table)


def test_probabilities_used_when_topk_column_missing():
    table, probs = random_table(7, 600, 9, unlabelled=0.1)
    with_col = audit_metrics(table, class_names(9))
    without = audit_metrics(table.drop(columns=["topk_idx"]), class_names(9), probabilities=probs)
    assert with_col == without
    ranked = ranked_from_probabilities(probs, m=5)
    np.testing.assert_array_equal(ranked, np.argsort(-probs, axis=1)[:, :5])
    with pytest.raises(AuditError, match="topk_idx"):
        audit_metrics(table.drop(columns=["topk_idx"]), class_names(9))


# ---------------------------------------------------------------- hand-built edge cases


def test_zero_support_and_zero_prediction_classes():
    # classes: a b c d. c has no images but is predicted twice; d has images, never predicted.
    y = [0, 0, 0, 1, 1, 3, 3, 3]
    p = [0, 0, 2, 1, 0, 1, 2, 0]
    m = audit_metrics(make_table(y, p), ["a", "b", "c", "d"])
    assert_matches_sklearn(m, make_table(y, p), 4)
    rows = {r["class"]: r for r in m["per_class"]}
    assert rows["c"] == {
        "class": "c",
        "support": 0,
        "correct": 0,
        "recall": None,
        "precision": 0.0,
        "f1": None,
        "ci_low": None,
        "ci_high": None,
        "predicted": 2,
    }
    assert rows["d"]["support"] == 3 and rows["d"]["predicted"] == 0
    assert rows["d"]["precision"] == 0.0 and rows["d"]["recall"] == 0.0 and rows["d"]["f1"] == 0.0
    assert rows["d"]["ci_low"] == 0.0 and rows["d"]["ci_high"] == pytest.approx(0.5614970, abs=1e-6)
    assert rows["a"]["precision"] == pytest.approx(2 / 4) and rows["a"]["recall"] == pytest.approx(
        2 / 3
    )
    assert m["accuracy"] == pytest.approx(3 / 8)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert m["confusion"]["normalized"][2] == [0.0, 0.0, 0.0, 0.0]  # zero-support row
    assert m["imbalance"]["too_few"] == ["a", "b", "c", "d"]


def test_single_class():
    m = audit_metrics(make_table([0, 0, 0], [0, 0, 0], [0.99, 0.9, 1.0]), ["only"])
    assert m["accuracy"] == m["balanced_accuracy"] == m["macro_f1"] == 1.0
    assert m["top_k_accuracy"] == {"1": 1.0, "3": 1.0, "5": 1.0}
    assert m["confusion"] == {"labels": ["only"], "matrix": [[3]], "normalized": [[1.0]]}
    assert m["most_confused"] == []
    assert m["imbalance"]["ratio"] == 1.0
    assert m["per_class"][0]["ci_low"] == pytest.approx(0.4385030, abs=1e-6)  # 3/3
    assert m["ece"] == pytest.approx(np.mean([0.01, 0.1, 0.0]), abs=1e-6)


def test_all_correct():
    table, _ = random_table(8, 300, 4)
    table["pred_idx"] = table["label_idx"]
    table["topk_idx"] = [[int(v)] for v in table["label_idx"]]
    m = audit_metrics(table, class_names(4))
    assert_matches_sklearn(m, table, 4)
    assert m["accuracy"] == m["balanced_accuracy"] == m["macro_f1"] == 1.0
    assert all(r["recall"] == 1.0 and r["precision"] == 1.0 for r in m["per_class"])
    assert m["most_confused"] == []
    # Calibration of an always-right model: ECE = 1 - mean confidence.
    assert m["ece"] == pytest.approx(1 - table["confidence"].astype(float).mean(), abs=1e-9)


def test_all_wrong():
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    p = (y + 1) % 3
    ranked = np.stack([p, y, (y + 2) % 3], axis=1)
    m = audit_metrics(make_table(y, p, ranked=ranked), ["x", "y", "z"])
    assert_matches_sklearn(m, make_table(y, p), 3)
    assert m["accuracy"] == m["balanced_accuracy"] == m["macro_f1"] == 0.0
    assert m["top_k_accuracy"] == {"1": 0.0, "3": 1.0, "5": 1.0}
    assert all(r["f1"] == 0.0 and r["ci_low"] == 0.0 for r in m["per_class"])
    assert m["ece"] == pytest.approx(0.9, abs=1e-6)  # confidence 0.9, accuracy 0


def test_no_labelled_rows_raise():
    with pytest.raises(AuditError, match="no labelled images"):
        audit_metrics(make_table([-1, -1], [0, 1]), ["a", "b"])
    with pytest.raises(AuditError, match="no labelled images"):
        audit_metrics(make_table([], []), ["a", "b"])


@pytest.mark.parametrize(
    ("y", "p", "conf", "match"),
    [
        ([0, 2], [0, 1], [0.5, 0.5], "label_idx"),
        ([0, 1], [0, 5], [0.5, 0.5], "pred_idx"),
        ([0, 1], [0, 1], [0.5, 1.5], "confidence"),
        ([0, 1], [0, 1], [0.5, np.nan], "confidence"),
    ],
)
def test_inconsistent_tables_raise(y, p, conf, match):
    with pytest.raises(AuditError, match=match):
        audit_metrics(make_table(y, p, conf), ["a", "b"])


def test_duplicate_classes_raise():
    with pytest.raises(AuditError, match="duplicates"):
        audit_metrics(make_table([0], [0]), ["a", "a"])


# ---------------------------------------------------------------- top-k


def test_top_k_with_fewer_classes_than_k():
    rng = np.random.default_rng(9)
    probs = rng.dirichlet(np.ones(3), size=200)
    y = rng.integers(0, 3, size=200)
    ranked = ranked_from_probabilities(probs)
    assert ranked.shape == (200, 3)
    for k in (3, 5):
        assert top_k_accuracy(y, ranked, k, 3) == 1.0 == sklearn_top_k(y, probs, k)
    assert top_k_accuracy(y, ranked, 1, 3) == pytest.approx(sklearn_top_k(y, probs, 1))


def test_top_k_not_stored_is_none():
    # Only 2 ranks stored for 10 classes: top-3 and top-5 cannot be known.
    y = np.array([0, 1, 2])
    ranked = np.array([[0, 1], [0, 1], [0, 1]])
    assert top_k_accuracy(y, ranked, 1, 10) == pytest.approx(1 / 3)
    assert top_k_accuracy(y, ranked, 3, 10) is None


# ---------------------------------------------------------------- confusion pairs


def test_most_confused_order_and_rate():
    classes = ["a", "b", "c"]
    cm = np.array([[10, 4, 1], [4, 2, 0], [0, 1, 0]])
    pairs = most_confused(cm, classes, top=3)
    assert pairs == [
        {"true": "b", "predicted": "a", "count": 4, "rate": pytest.approx(4 / 6)},
        {"true": "a", "predicted": "b", "count": 4, "rate": pytest.approx(4 / 15)},
        {"true": "c", "predicted": "b", "count": 1, "rate": 1.0},
    ]
    assert len(most_confused(cm, classes, top=20)) == 4  # off-diagonal, count > 0 only


def test_most_confused_random_vs_brute_force():
    table, _ = random_table(10, 3000, 15, absent=(4,))
    m = audit_metrics(table, class_names(15), top_pairs=25)
    cm = confusion_matrix(table["label_idx"], table["pred_idx"], labels=range(15))
    names = class_names(15)
    expected = sorted(
        (-cm[t, p], -cm[t, p] / cm[t].sum(), t, p)
        for t in range(15)
        for p in range(15)
        if t != p and cm[t, p] > 0
    )[:25]
    got = [(r["true"], r["predicted"], r["count"], r["rate"]) for r in m["most_confused"]]
    assert got == [(names[t], names[p], -c, pytest.approx(-r)) for c, r, t, p in expected]


def test_confusion_counts_match_sklearn():
    rng = np.random.default_rng(11)
    y, p = rng.integers(0, 6, 1000), rng.integers(0, 6, 1000)
    np.testing.assert_array_equal(
        confusion_counts(y, p, 8), confusion_matrix(y, p, labels=range(8))
    )


# ---------------------------------------------------------------- imbalance


def test_imbalance_with_training_counts():
    classes = ["a", "b", "c", "d"]
    out = class_imbalance(
        np.array([50, 0, 10, 25]), classes, train_counts={"a": 900, "c": 30}, min_support=20
    )
    assert out == {
        "test_counts": {"a": 50, "b": 0, "c": 10, "d": 25},
        "train_counts": {"a": 900, "b": 0, "c": 30, "d": 0},
        "ratio": 5.0,  # 50 / 10: the zero-support class is left out of the ratio
        "largest": "a",
        "smallest": "c",
        "min_support": 20,
        "too_few": ["b", "c"],  # ... and listed here instead
        "train_ratio": 30.0,
        "train_largest": "a",
        "train_smallest": "c",
    }


def test_imbalance_without_training_counts_and_ties():
    out = class_imbalance(np.array([7, 7, 7]), ["x", "y", "z"], min_support=5)
    assert out["ratio"] == 1.0 and out["largest"] == "x" and out["smallest"] == "x"
    assert out["train_counts"] is None and out["train_ratio"] is None and out["too_few"] == []


def test_imbalance_unknown_training_class_raises():
    with pytest.raises(AuditError, match="zebra"):
        class_imbalance(np.array([1, 2]), ["a", "b"], train_counts={"a": 3, "zebra": 1})


def test_imbalance_through_audit_metrics():
    y = [0] * 30 + [1] * 3
    m = audit_metrics(
        make_table(y, y), ["big", "small", "none"], train_counts={"big": 5, "small": 1}
    )
    imb = m["imbalance"]
    assert imb["test_counts"] == {"big": 30, "small": 3, "none": 0}
    assert imb["ratio"] == 10.0 and imb["largest"] == "big" and imb["smallest"] == "small"
    assert imb["too_few"] == ["small", "none"] and imb["min_support"] == 20
    assert imb["train_ratio"] == 5.0


# ---------------------------------------------------------------- calibration


def reference_ece(conf: np.ndarray, correct: np.ndarray, n_bins: int = 15):
    """ECE and per-bin (count, conf, acc) with np.digitize, right-closed bins (low, high]."""
    inner = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    ids = np.digitize(conf, inner, right=True)
    ece, bins = 0.0, []
    for b in range(n_bins):
        sel = ids == b
        if sel.any():
            acc, c = correct[sel].mean(), conf[sel].mean()
            ece += abs(acc - c) * sel.sum() / len(conf)
            bins.append((int(sel.sum()), c, acc))
        else:
            bins.append((0, None, None))
    return ece, bins


def test_bin_edges_convention():
    edges = bin_edges(15)
    assert len(edges) == 16 and edges[0] == 0.0 and edges[-1] == 1.0
    # An exact edge belongs to the bin below it; 0 to the first bin, 1 to the last.
    np.testing.assert_array_equal(assign_bins(edges), [0, *range(15)])
    eps = 1e-12
    np.testing.assert_array_equal(assign_bins(edges[1:-1] + eps), range(1, 15))
    np.testing.assert_array_equal(assign_bins(edges[1:-1] - eps), range(14))
    # The same convention as the independent np.digitize reference and sklearn.
    np.testing.assert_array_equal(assign_bins(edges), np.digitize(edges, edges[1:-1], right=True))
    np.testing.assert_array_equal(assign_bins(edges), np.searchsorted(edges[1:-1], edges))
    counts = [b["count"] for b in reliability_bins(edges, np.ones(16))]
    assert counts == [2] + [1] * 14


def test_ece_hand_values():
    conf = np.array([0.95] * 10)
    correct = np.array([1] * 8 + [0] * 2)
    assert expected_calibration_error(conf, correct) == pytest.approx(0.15)
    # Two bins: 4 rows at 0.3 with 2 right (|0.5-0.3|), 6 rows at 0.8 with 6 right (|1-0.8|).
    conf = np.array([0.3] * 4 + [0.8] * 6)
    correct = np.array([1, 1, 0, 0] + [1] * 6)
    assert expected_calibration_error(conf, correct) == pytest.approx(0.2 * 0.4 + 0.2 * 0.6)
    summary = calibration_summary(conf, correct)
    filled = [b for b in summary["bins"] if b["count"]]
    assert [(b["count"], b["confidence"], b["accuracy"]) for b in filled] == [
        (4, pytest.approx(0.3), 0.5),
        (6, pytest.approx(0.8), 1.0),
    ]
    assert summary["n_bins"] == 15 and len(summary["bins"]) == 15
    assert summary["bins"][0] == {
        "low": 0.0,
        "high": pytest.approx(1 / 15),
        "count": 0,
        "confidence": None,
        "accuracy": None,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_random_vs_reference_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.05, 1.0, 5000)
    conf[:16] = bin_edges(15)  # exact edges in the mix
    correct = (rng.random(5000) < conf**1.5).astype(float)
    ece_ref, bins_ref = reference_ece(conf, correct)
    assert expected_calibration_error(conf, correct) == pytest.approx(ece_ref, abs=1e-12)
    bins = reliability_bins(conf, correct)
    for b, (n, c, a) in zip(bins, bins_ref, strict=True):
        assert b["count"] == n
        assert b["confidence"] == (None if c is None else pytest.approx(c, abs=1e-12))
        assert b["accuracy"] == (None if a is None else pytest.approx(a, abs=1e-12))
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=15, strategy="uniform")
    filled = [b for b in bins if b["count"]]
    np.testing.assert_allclose([b["accuracy"] for b in filled], prob_true, atol=1e-12)
    np.testing.assert_allclose([b["confidence"] for b in filled], prob_pred, atol=1e-12)


def test_ece_through_audit_metrics():
    table, _ = random_table(12, 2000, 6, unlabelled=0.2)
    m = audit_metrics(table, class_names(6))
    lab = table[table["label_idx"] >= 0]
    conf = lab["confidence"].to_numpy(dtype=np.float64)
    ece_ref, _ = reference_ece(conf, (lab["label_idx"] == lab["pred_idx"]).to_numpy(float))
    assert m["ece"] == m["calibration"]["ece"] == pytest.approx(ece_ref, abs=1e-12)
    assert sum(b["count"] for b in m["calibration"]["bins"]) == m["n_labelled"]


# ---------------------------------------------------------------- output shape


def test_output_is_plain_json_with_contract_keys():
    table, _ = random_table(13, 500, 6, absent=(1,), never_predicted=(2,), unlabelled=0.1)
    classes = class_names(6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from 0/0 anywhere
        m = audit_metrics(table, classes, train_counts={c: 10 for c in classes})
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m
    assert set(m) == DESIGN_KEYS | EXTRA_KEYS
    assert set(m["top_k_accuracy"]) == {"1", "3", "5"}
    assert [r["class"] for r in m["per_class"]] == classes
    assert all(set(r) == PER_CLASS_KEYS for r in m["per_class"])
    assert m["confusion"]["labels"] == classes and m["n_classes"] == 6
    assert m["per_class"][1]["recall"] is None  # the absent class: null in JSON
    assert '"recall": null' in text

    def plain(x):
        if isinstance(x, dict):
            return all(isinstance(k, str) and plain(v) for k, v in x.items())
        if isinstance(x, list):
            return all(plain(v) for v in x)
        return x is None or type(x) in (int, float, str)

    assert plain(m)


# ---------------------------------------------------------------- scale


@pytest.mark.slow
def test_250_classes_250k_rows_match_sklearn():
    rng = np.random.default_rng(14)
    n, n_classes = 250_000, 250
    weights = rng.zipf(1.3, n_classes).astype(float)
    weights[[17, 120]] = 0  # two classes with no images
    pred = rng.choice(n_classes, size=n, p=weights / weights.sum())
    # Five distinct ranks per row: pred first, then pred + increasing offsets (mod 250).
    offsets = np.cumsum(rng.integers(1, 50, size=(n, 4)), axis=1)
    ranked = np.concatenate([pred[:, None], (pred[:, None] + offsets) % n_classes], axis=1)
    # The label sits at rank 0 (60%), at ranks 1-4 (25%) or is another class (15%).
    rank = rng.choice(6, size=n, p=[0.6, 0.1, 0.05, 0.05, 0.05, 0.15])
    label = np.where(
        rank < 5,
        ranked[np.arange(n), np.minimum(rank, 4)],
        rng.integers(0, n_classes, size=n),
    )
    label[np.isin(label, [17, 120])] = 3
    label[rng.random(n) < 0.02] = -1
    table = make_table(label, pred, rng.uniform(0.2, 1.0, n), ranked)

    m = audit_metrics(table, class_names(n_classes))
    assert_matches_sklearn(m, table, n_classes)
    assert m["per_class"][17]["support"] == 0 and m["per_class"][17]["recall"] is None

    # top-k: sklearn on a sample (its score matrix for all rows would be 250 MB) ...
    lab = label >= 0
    y, r = label[lab], ranked[lab]
    sample = rng.choice(len(y), size=5000, replace=False)
    score = np.zeros((len(sample), n_classes), dtype=np.float32)
    np.put_along_axis(score, r[sample], np.arange(5, 0, -1, dtype=np.float32)[None, :], axis=1)
    for k in (1, 3, 5):
        assert top_k_accuracy(y[sample], r[sample], k, n_classes) == pytest.approx(
            top_k_accuracy_score(y[sample], score, k=k, labels=np.arange(n_classes)), abs=1e-12
        )
        # ... and on all rows against the label's rank position.
        hit = (r == y[:, None]).any(axis=1) & ((r == y[:, None]).argmax(axis=1) < k)
        assert m["top_k_accuracy"][str(k)] == pytest.approx(hit.mean(), abs=1e-12)


def test_overall_accuracy_interval_is_wilson_on_labelled_rows():
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(7)
    n, k = 300, 4
    labels = rng.integers(0, k, n)
    preds = np.where(rng.random(n) < 0.7, labels, rng.integers(0, k, n))
    table = pd.DataFrame(
        {
            "label_idx": labels,
            "pred_idx": preds,
            "confidence": rng.uniform(0.3, 1.0, n),
            "topk_idx": [np.array([p]) for p in preds],
        }
    )
    m = audit_metrics(table, ["a", "b", "c", "d"])
    low, high = proportion_confint(int((labels == preds).sum()), n, method="wilson")
    assert m["accuracy_ci_low"] == pytest.approx(low, abs=1e-12)
    assert m["accuracy_ci_high"] == pytest.approx(high, abs=1e-12)
    assert m["accuracy_ci_low"] < m["accuracy"] < m["accuracy_ci_high"]
