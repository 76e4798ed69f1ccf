"""Figure builders of the dashboard (pure functions: stored numbers in, plotly figures out)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dashboard import charts


def per_class_rows(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        support = int(rng.integers(0, 60))
        correct = int(rng.integers(0, support + 1)) if support else 0
        r = correct / support if support else None
        rows.append({"class": f"c{i:03d}", "support": support, "correct": correct, "recall": r,
                     "ci_low": None if r is None else max(0.0, r - 0.1), "ci_high": None if r is None else min(1.0, r + 0.1),
                     "precision": 0.5, "f1": r})  # fmt: skip
    return rows


def test_class_colors_stable_distinct_and_valid() -> None:
    names = [f"variant-{i:03d}" for i in range(250)]
    a, b = charts.class_colors(names), charts.class_colors(names)
    assert a == b and len(a) == 250
    assert all(len(c) == 7 and c.startswith("#") for c in a.values())
    assert a["variant-000"] == charts.BASE_PALETTE[0]
    assert len(set(a.values())) > 240  # (almost) one colour per class
    # A class keeps its colour whatever page (or subset) shows it: the map follows model order.
    assert charts.class_colors(names[:12])["variant-011"] == a["variant-011"]


def test_per_class_accuracy_error_bars_and_orientation() -> None:
    rows = [r for r in per_class_rows(12) if r["recall"] is not None]
    colors = charts.class_colors([r["class"] for r in rows])
    fig = charts.per_class_accuracy(rows, colors, overall=0.5)
    bar = fig.data[0]
    assert bar.orientation == "h" and list(bar.y) == [r["class"] for r in rows]
    np.testing.assert_allclose(bar.error_x.array, [r["ci_high"] - r["recall"] for r in rows])
    np.testing.assert_allclose(bar.error_x.arrayminus, [r["recall"] - r["ci_low"] for r in rows])
    assert list(bar.marker.color) == [colors[r["class"]] for r in rows]
    assert fig.layout.shapes and fig.layout.shapes[0].x0 == 0.5  # the overall line
    big = charts.per_class_accuracy(per_class_rows(250), {}, None)
    assert big.data[0].orientation == "v" and big.data[0].error_y.array is not None


def test_per_class_accuracy_skips_classes_without_images() -> None:
    rows = [
        {"class": "a", "support": 0, "recall": None},
        {"class": "b", "support": 5, "correct": 5, "recall": 1.0, "ci_low": 0.5, "ci_high": 1.0},
    ]
    fig = charts.per_class_accuracy(rows, {})
    assert list(fig.data[0].y) == ["b"]
    empty = charts.per_class_accuracy([rows[0]], {})
    assert not empty.data and "No class" in empty.layout.annotations[0].text


def test_imbalance_sorted_with_training_panel() -> None:
    block = {
        "test_counts": {"a": 5, "b": 50, "c": 20},
        "train_counts": {"a": 10, "b": 100, "c": 0},
        "min_support": 20,
    }
    fig = charts.imbalance(block, {"a": "#111111", "b": "#222222", "c": "#333333"})
    test, train = fig.data
    assert list(test.x) == ["b", "c", "a"] and list(test.y) == [50, 20, 5]
    assert list(train.y) == [100, 0, 10]
    assert list(test.marker.color) == ["#222222", "#333333", "#111111"]
    only_test = charts.imbalance({"test_counts": {"a": 1}}, {})
    assert len(only_test.data) == 1
    assert charts.imbalance(None, {}).layout.annotations


def confusion_matrix(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cm = rng.integers(0, 3, (n, n))
    np.fill_diagonal(cm, rng.integers(20, 60, n))
    cm[5, 9] = 40  # the most confused pair
    cm[9, 5] = 12
    cm[2, 7] = 25
    return cm


def test_top_confused_keeps_pairs_adjacent() -> None:
    cm = confusion_matrix(30)
    idx = charts.top_confused(cm, 6)
    assert idx[:2] == [5, 9] and idx[2:4] == [2, 7] and len(idx) == 6 and len(set(idx)) == 6
    assert len(charts.top_confused(np.diag([5, 5, 5]), 2)) == 2  # no errors: filled, no crash


def test_order_classes() -> None:
    cm = np.array([[8, 2, 0], [5, 5, 0], [0, 1, 9]])
    assert charts.order_classes(cm, "worst") == [1, 0, 2]
    assert charts.order_classes(cm, "errors") == [1, 0, 2]
    assert charts.order_classes(cm, "model") == [0, 1, 2]
    assert sorted(charts.order_classes(cm, "groups")) == [0, 1, 2]


def test_confusion_sub_matrix_values_and_hover() -> None:
    cm = confusion_matrix(30)
    labels = [f"c{i}" for i in range(30)]
    fig = charts.confusion(cm, labels, [5, 9, 2], normalize=False)
    heat = fig.data[0]
    assert list(heat.x) == ["c5", "c9", "c2"] and list(heat.y) == ["c5", "c9", "c2"]
    custom = np.asarray(heat.customdata, dtype=float)
    assert custom[0, 1, 0] == 40  # true c5 predicted c9: the exact count in the hover
    assert math.isclose(custom[0, 1, 1], 100 * 40 / cm[5].sum())  # share of the whole true class
    assert heat.texttemplate == "%{text}"  # small matrices print their numbers
    assert fig.layout.yaxis.autorange == "reversed"


def test_confusion_normalised_and_diagonal_hidden() -> None:
    cm = confusion_matrix(12)
    fig = charts.confusion(cm, [str(i) for i in range(12)], normalize=True, hide_diagonal=True)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.isnan(np.diag(z)).all()
    assert np.nanmax(z) == pytest.approx(1.0)  # colour scale spans the largest error share


def test_confusion_click_layer_only_when_asked() -> None:
    cm = confusion_matrix(10)
    labels = [str(i) for i in range(10)]
    plain = charts.confusion(cm, labels)
    click = charts.confusion(cm, labels, clickable=True)
    assert len(plain.data) == 1 and len(click.data) == 2
    points = click.data[1]
    assert len(points.x) == 100 and points.mode == "markers"


def test_confusion_at_250_classes_hides_ticks() -> None:
    cm = confusion_matrix(250)
    fig = charts.confusion(cm, [f"v{i}" for i in range(250)])
    assert fig.layout.xaxis.showticklabels is False and fig.data[0].text is None
    assert "250 of 250" in fig.layout.title.text


def test_reliability() -> None:
    bins = [
        {
            "low": i / 10,
            "high": (i + 1) / 10,
            "count": 10 * i,
            "confidence": (i + 0.5) / 10,
            "accuracy": i / 10,
        }
        for i in range(10)
    ]
    fig = charts.reliability({"ece": 0.04, "bins": bins})
    acc, diagonal, counts = fig.data
    assert len(acc.x) == 9  # the empty first bin is left out
    assert list(diagonal.x) == [0, 1] and "ECE 4.0%" in fig.layout.annotations[-1].text
    assert list(counts.y) == [10 * i for i in range(1, 10)]
    assert charts.reliability(None).layout.annotations


def test_drift_pvalues_prefers_adjusted() -> None:
    props = [{"name": "brightness", "p_value": 1e-6, "p_adjusted": 9e-6, "drift": True},
             {"name": "width", "p_value": 0.5, "p_adjusted": 1.0, "drift": False}]  # fmt: skip
    fig = charts.drift_pvalues(props)
    bar = fig.data[0]
    assert list(bar.y) == ["brightness", "width"]
    assert bar.x[0] == pytest.approx(-math.log10(9e-6))
    assert bar.marker.color[0] == charts.BAD
    assert charts.drift_pvalues([]).layout.annotations


def test_compare_per_class_largest_changes_first() -> None:
    rows = [{"class": "a", "recall_a": 0.5, "recall_b": 0.55, "status": None},
            {"class": "b", "recall_a": 0.9, "recall_b": 0.6, "status": "regression"},
            {"class": "c", "recall_a": None, "recall_b": None}]  # fmt: skip
    fig = charts.compare_per_class(rows, {"a": "#111111", "b": "#222222"}, "1.0.0", "1.1.0")
    b_points = fig.data[-1]
    assert list(b_points.y) == ["b", "a"]
    assert b_points.marker.line.color[0] == charts.BAD


def test_slices_and_class_shift() -> None:
    rows = [{"label": "source = fan", "accuracy": 0.6, "ci_low": 0.5, "ci_high": 0.7, "support": 80, "significantly_lower": True},
            {"label": "source = dealer", "accuracy": 0.9, "ci_low": 0.85, "ci_high": 0.93, "support": 300}]  # fmt: skip
    fig = charts.slices(rows, overall=0.8)
    assert list(fig.data[0].y) == ["source = fan", "source = dealer"]
    assert fig.data[0].marker.color[0] == charts.BAD
    shift = charts.class_shift({"a": 0.5, "b": 0.5}, {"a": 0.2, "b": 0.8}, {})
    assert len(shift.data) == 2


def test_confidence_histogram_and_distribution() -> None:
    fig = charts.confidence_histogram([0.9, 0.8], [0.3])
    assert [t.name for t in fig.data] == ["correct", "wrong"]
    dist = charts.distribution([0.1, 0.2], [0.5], "brightness")
    assert "brightness" in dist.layout.title.text
