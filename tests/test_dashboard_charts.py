"""Figure builders of the dashboard and the HTML export (reports.present.charts: stored
numbers in, plotly figures out), the shared palette, and the class views read from the run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audits.metrics import most_confused, row_normalize
from reports.present import charts, palette
from reports.present.class_views import class_order, most_confused_classes


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
    a, b = palette.class_colors(names), palette.class_colors(names)
    assert a == b and len(a) == 250
    assert all(len(c) == 7 and c.startswith("#") for c in a.values())
    assert a["variant-000"] == palette.BASE_PALETTE[0]
    assert len(set(a.values())) > 240  # (almost) one colour per class
    # A class keeps its colour whatever page (or subset) shows it: the map follows model order.
    assert palette.class_colors(names[:12])["variant-011"] == a["variant-011"]


def test_per_class_accuracy_error_bars_and_orientation() -> None:
    rows = [r for r in per_class_rows(12) if r["recall"] is not None]
    colors = palette.class_colors([r["class"] for r in rows])
    fig = charts.per_class_recall(rows, colors, overall=0.5)
    bar = fig.data[0]
    assert bar.orientation == "h" and list(bar.y) == [r["class"] for r in rows]
    np.testing.assert_allclose(bar.error_x.array, [r["ci_high"] - r["recall"] for r in rows])
    np.testing.assert_allclose(bar.error_x.arrayminus, [r["recall"] - r["ci_low"] for r in rows])
    assert list(bar.marker.color) == [colors[r["class"]] for r in rows]
    assert fig.layout.shapes and fig.layout.shapes[0].x0 == 0.5  # the overall line
    r = rows[0]
    hover = bar.customdata[0]  # written with reports.present.fmt, as the page and the PDF
    assert f"{r['correct']} of {r['support']} correct" in hover and "95% CI " in hover
    big = charts.per_class_recall(per_class_rows(250), {}, None)
    assert big.data[0].orientation == "v" and big.data[0].error_y.array is not None


def test_per_class_accuracy_skips_classes_without_images() -> None:
    rows = [
        {"class": "a", "support": 0, "recall": None},
        {"class": "b", "support": 5, "correct": 5, "recall": 1.0, "ci_low": 0.5, "ci_high": 1.0},
    ]
    fig = charts.per_class_recall(rows, {})
    assert list(fig.data[0].y) == ["b"]
    empty = charts.per_class_recall([rows[0]], {})
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


def stored_confusion(n: int, seed: int = 0) -> dict:
    """metrics.confusion and metrics.most_confused as audits.metrics stores them."""
    cm = confusion_matrix(n, seed)
    labels = [f"c{i}" for i in range(n)]
    return {
        "labels": labels,
        "matrix": cm,
        "normalized": row_normalize(cm),
        "pairs": most_confused(cm, labels),
    }


def test_most_confused_classes_are_the_stored_pairs() -> None:
    s = stored_confusion(30)
    idx = most_confused_classes(s["pairs"], s["labels"], 6)
    assert idx[:2] == [5, 9] and idx[2:4] == [2, 7] and len(idx) == 6 and len(set(idx)) == 6
    expected = []
    for p in s["pairs"]:
        for name in (p["true"], p["predicted"]):
            if name not in expected:
                expected.append(name)
    assert [s["labels"][i] for i in most_confused_classes(s["pairs"], s["labels"])] == expected
    assert most_confused_classes([], s["labels"], 4) == []  # no errors: no classes invented


def test_class_order() -> None:
    cm = np.array([[8, 2, 0], [5, 5, 0], [0, 1, 9]])
    labels = ["a", "b", "c"]
    rows = [{"class": c, "support": int(cm[i].sum()), "correct": int(cm[i, i]), "recall": cm[i, i] / cm[i].sum()}
            for i, c in enumerate(labels)]  # fmt: skip
    pairs = most_confused(cm, labels)
    assert class_order("worst", labels, rows) == [1, 0, 2]
    assert class_order("errors", labels, rows) == [1, 0, 2]
    assert class_order("model", labels, rows) == [0, 1, 2]
    assert class_order("groups", labels, rows, pairs) == [1, 0, 2]


def test_confusion_sub_matrix_values_and_hover() -> None:
    s = stored_confusion(30)
    cm = s["matrix"]
    fig = charts.confusion(s["labels"], cm, s["normalized"], [5, 9, 2])
    heat = fig.data[0]
    assert list(heat.x) == ["c5", "c9", "c2"] and list(heat.y) == ["c5", "c9", "c2"]
    # true c5 predicted c9: the stored count and the stored share of the whole true class
    assert heat.customdata[0][1] == f"40 images ({100 * 40 / cm[5].sum():.1f}% of the true class)"
    assert heat.texttemplate == "%{text}"  # small matrices print their numbers
    assert heat.text[0][1] == "40"
    assert fig.layout.yaxis.autorange == "reversed"


def test_confusion_shares_are_the_stored_ones() -> None:
    s = stored_confusion(12)
    shares = np.array(s["normalized"]) * 0.5  # not what the counts give: the chart must not divide
    fig = charts.confusion(s["labels"], s["matrix"], shares, share=True)
    assert fig.data[0].text[5][9] == f"{100 * shares[5, 9]:.0f}%"


def test_confusion_normalised_and_diagonal_hidden() -> None:
    s = stored_confusion(12)
    fig = charts.confusion(
        s["labels"], s["matrix"], s["normalized"], share=True, hide_diagonal=True
    )
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.isnan(np.diag(z)).all()
    assert np.nanmax(z) == pytest.approx(1.0)  # colour scale spans the largest error share


def test_confusion_click_layer_only_when_asked() -> None:
    s = stored_confusion(10)
    plain = charts.confusion(s["labels"], s["matrix"], s["normalized"])
    click = charts.confusion(s["labels"], s["matrix"], s["normalized"], clickable=True)
    assert len(plain.data) == 1 and len(click.data) == 2
    points = click.data[1]
    assert len(points.x) == 100 and points.mode == "markers"


def test_confusion_at_250_classes_hides_ticks() -> None:
    s = stored_confusion(250)
    fig = charts.confusion(s["labels"], s["matrix"], s["normalized"])
    assert fig.layout.xaxis.showticklabels is False and fig.data[0].text is None
    assert "250 of 250" in fig.layout.title.text


def test_confusion_escapes_class_names() -> None:
    fig = charts.confusion(["<b>x</b>", "a&b"], [[1, 0], [0, 1]], [[1.0, 0.0], [0.0, 1.0]])
    assert list(fig.data[0].x) == ["&lt;b&gt;x&lt;/b&gt;", "a&amp;b"]


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
    assert bar.marker.color[0] == palette.BAD
    assert "adjusted p < 0.001" in bar.customdata[0]  # never "9e-06"
    assert charts.drift_pvalues([]).layout.annotations


def test_compare_per_class_largest_changes_first() -> None:
    rows = [{"class": "a", "recall_a": 0.5, "recall_b": 0.55, "diff": 0.05, "status": None},
            {"class": "b", "recall_a": 0.9, "recall_b": 0.6, "diff": -0.3, "status": "regression"},
            {"class": "c", "recall_a": None, "recall_b": None}]  # fmt: skip
    fig = charts.compare_per_class(rows, {"a": "#111111", "b": "#222222"}, "1.0.0", "1.1.0")
    b_points = fig.data[-1]
    assert list(b_points.y) == ["b", "a"]
    assert b_points.marker.line.color[0] == palette.BAD


def test_slices_and_class_shift() -> None:
    rows = [{"label": "source = fan", "accuracy": 0.6, "ci_low": 0.5, "ci_high": 0.7, "support": 80, "significantly_lower": True},
            {"label": "source = dealer", "accuracy": 0.9, "ci_low": 0.85, "ci_high": 0.93, "support": 300}]  # fmt: skip
    fig = charts.slices(rows, overall=0.8)
    assert list(fig.data[0].y) == ["source = fan", "source = dealer"]
    assert fig.data[0].marker.color[0] == palette.BAD
    shift = charts.class_shift({"a": 0.5, "b": 0.5}, {"a": 0.2, "b": 0.8}, {})
    assert len(shift.data) == 2


def test_confidence_histogram_and_distribution() -> None:
    fig = charts.confidence_histogram([0.9, 0.8], [0.3])
    assert [t.name for t in fig.data] == ["correct", "wrong"]
    dist = charts.distribution([0.1, 0.2], [0.5], "brightness")
    assert "brightness" in dist.layout.title.text


def test_html_export_draws_the_shared_figures() -> None:
    from reports import charts_interactive
    from reports.tree import Chart

    s = stored_confusion(25)
    data = {k: np.asarray(s[k]).tolist() for k in ("labels", "matrix", "normalized")}
    chart = Chart("chart-confusion-full", "confusion", "t", "c", data)
    same = charts.confusion(s["labels"], s["matrix"], s["normalized"], share=True, title="")
    assert charts_interactive.confusion(chart.data).to_json() == same.to_json()
    assert 'id="chart-confusion-full"' in charts_interactive.render(chart)
    rows = [r for r in per_class_rows(6) if r["recall"] is not None]
    recall = Chart("r", "recall_ci", "t", "c", {
        "classes": [r["class"] for r in rows], "recall": [r["recall"] for r in rows],
        "low": [r["ci_low"] for r in rows], "high": [r["ci_high"] for r in rows],
        "support": [r["support"] for r in rows], "shown": 3,
    })  # fmt: skip
    dots = charts_interactive.recall_ci(recall.data).data[0]
    assert list(dots.y) == [r["class"] for r in rows]
    assert list(dots.marker.color) == [palette.recall_color(r["recall"]) for r in rows]
    for kind, data in (
        ("imbalance", {"classes": ["a", "b"], "test": [5, 9], "train": [1, 2], "min_support": 20}),
        ("calibration", {"bins": [{"low": 0.5, "high": 1.0, "count": 3, "confidence": 0.8, "accuracy": 0.6}]}),
        ("compare_diff", {"classes": ["a"], "diff": [-0.1], "low": [-0.2], "high": [0.0]}),
    ):  # fmt: skip
        assert charts_interactive.render(Chart(kind, kind, "t", "c", data)), kind
