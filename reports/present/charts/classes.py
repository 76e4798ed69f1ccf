"""Per-class charts: recall with Wilson intervals, images per class, accuracy per data slice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.present import fmt
from reports.present.charts.base import (
    MAX_LABELLED,
    bounds,
    empty,
    esc,
    finish,
    interval_dots,
    names,
    num,
    whiskers,
)
from reports.present.palette import (
    ACCENT,
    ACCENT_SOFT,
    BAD,
    INK,
    INK_SOFT,
    LIGHT,
    MUTED,
    recall_color,
)
from reports.present.rows import Row, stored_row, stored_rows

RECALL_TITLE = "Per-class accuracy with 95% Wilson intervals"
SLICES_TITLE = "Accuracy per slice of the held-out set (95% intervals)"


def _recall_hover(row: Mapping[str, Any]) -> str:
    """'<b>targa</b><br>accuracy (recall) 85.2%<br>95% CI 81.4–88.4%<br>341 of 400 correct'."""
    support = row.get("support")
    images = (
        f"{fmt.count(row['correct'])} of {fmt.count(support)} correct"
        if fmt.is_num(row.get("correct"))
        else f"{fmt.count(support)} images"
    )
    return (
        f"<b>{esc(row.get('class'))}</b><br>accuracy (recall) {fmt.pct(row.get('recall'))}<br>"
        f"95% CI {fmt.ci(row.get('ci_low'), row.get('ci_high'))}<br>{images}"
    )


def _overall_line(fig: go.Figure, overall: float | None, horizontal: bool) -> None:
    """The dotted line of the overall accuracy across a bar chart."""
    if overall is None:
        return
    line = dict(color=INK, width=1, dash="dot")
    text = f"overall {fmt.pct(overall)}"
    if horizontal:
        fig.add_vline(x=overall, line=line, annotation_text=text, annotation_position="top")
    else:
        fig.add_hline(y=overall, line=line, annotation_text=text, annotation_position="right")


def interval_bars(
    labels: list[str],
    values: list[float],
    ci: tuple[list[float | None], list[float | None]],
    colors: list[str],
    hovers: list[str],
    horizontal: bool = True,
) -> go.Figure:
    """Bars of proportions with their stored intervals as whiskers (one trace)."""
    err = whiskers(values, *ci) | dict(color=INK_SOFT, thickness=1.2, width=3)
    bar = go.Bar(
        x=values if horizontal else labels,
        y=labels if horizontal else values,
        orientation="h" if horizontal else "v",
        marker=dict(color=colors, line=dict(width=0)),
        customdata=hovers,
        hovertemplate="%{customdata}<extra></extra>",
    )
    if horizontal:
        bar.error_x = err
    else:
        bar.error_y = err
    return go.Figure(bar)


def per_class_recall(
    rows: Sequence[Row],
    colors: Mapping[str, str] | None = None,
    overall: float | None = None,
    title: str | None = RECALL_TITLE,
    dots: bool = False,
    window: int | None = None,
) -> go.Figure:
    """Recall (per-class accuracy) of the stored per_class rows with their Wilson intervals.

    In the given order. Bars in the class's colour (``colors``), horizontal up to 60 classes and
    vertical beyond; ``dots`` draws a dot on its interval instead, coloured by how low the
    recall is, opening on the first ``window`` classes (the exports' chart, whose caption
    speaks of dots).
    """
    rows = stored_rows(rows)
    if dots:
        return _recall_dots(rows, title, window)
    rows = [r for r in rows if num(r.get("recall")) is not None]
    if not rows:
        return empty(title, "No class has test images.")
    rec = [num(r["recall"]) for r in rows]
    ends = [bounds(v, r.get("ci_low"), r.get("ci_high")) for r, v in zip(rows, rec, strict=True)]
    labels = names(r["class"] for r in rows)
    colors = colors or {}
    horizontal = len(rows) <= MAX_LABELLED
    fig = interval_bars(
        labels,
        rec,
        ([lo for lo, _ in ends], [hi for _, hi in ends]),
        [colors.get(str(r["class"]), ACCENT) for r in rows],
        [_recall_hover(r) for r in rows],
        horizontal,
    )
    value_axis = dict(range=[0, 1.02], tickformat=".0%", title="accuracy (recall)")
    if horizontal:
        fig.update_xaxes(**value_axis)
        fig.update_yaxes(autorange="reversed", title=None, type="category")
        height = max(260, 110 + 22 * len(rows))
    else:
        fig.update_yaxes(**value_axis)
        fig.update_xaxes(showticklabels=len(rows) <= 120, title="class", type="category")
        height = 460
    _overall_line(fig, overall, horizontal)
    return finish(fig, title, height, showlegend=False, bargap=0.25)


def _recall_dots(
    rows: Sequence[Mapping[str, Any]], title: str | None, window: int | None
) -> go.Figure:
    """The exports' recall chart: a dot per class on its interval, weakest on top."""
    if not rows:
        return empty(title, "No class has test images.")
    rec = [num(r.get("recall")) for r in rows]
    low, high = [num(r.get("ci_low")) for r in rows], [num(r.get("ci_high")) for r in rows]
    fig = go.Figure(
        interval_dots(
            names(r.get("class") for r in rows),
            rec,
            (low, high),
            [recall_color(r) for r in rec],
            [_recall_hover(r) for r in rows],
        )
    )
    n = len(rows)
    shown = int(window or n)
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="recall, with 95% interval")
    # Weakest first at the top; with many classes the view opens on the weakest and pans down.
    fig.update_yaxes(autorange=None, range=[min(n, max(shown, 40)) - 0.5, -0.5], type="category")
    return finish(fig, title, 120 + 22 * min(n, 40), showlegend=False)


def imbalance(
    block: Row | None,
    colors: Mapping[str, str] | None = None,
    limit: int | None = None,
    shares: bool = False,
    title: str | None = None,
) -> go.Figure:
    """Images per class from the stored imbalance block, largest first.

    Counts of the held-out set in the class colours, training counts in a panel below when
    stored; ``shares`` draws each set's share of its images instead, side by side in one
    panel (dark: held-out, light: training), as the exports' caption describes.
    """
    block = stored_row(block)
    test = block.get("test_counts") or {}
    train = block.get("train_counts") or None
    if title is None:
        title = "Images per class in the held-out (test) set" + (
            " and the training set" if train else ""
        )
    if not test:
        return empty(title, "No class counts stored in this run.")
    order = sorted(test, key=lambda c: (-int(test[c] or 0), str(c)))[:limit]
    if shares:
        return _imbalance_shares(order, test, train, title)
    return _imbalance_counts(order, test, train, block.get("min_support"), colors or {}, title)


def _count_bar(order: list[str], counts: Mapping[str, Any], what: str, colors: list[str]) -> go.Bar:
    hovers = [f"<b>{esc(c)}</b><br>{fmt.count(counts.get(c, 0))} {what} images" for c in order]
    return go.Bar(
        x=names(order),
        y=[counts.get(c, 0) for c in order],
        marker_color=colors,
        name=what,
        customdata=hovers,
        hovertemplate="%{customdata}<extra></extra>",
    )


def _imbalance_counts(
    order: list[str],
    test: Mapping[str, Any],
    train: Mapping[str, Any] | None,
    min_support: Any,
    colors: Mapping[str, str],
    title: str,
) -> go.Figure:
    rows = 2 if train else 1
    subtitles = ["held-out (test) images"] + (["training images"] if train else [])
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.14, subplot_titles=subtitles
    )
    bar_colors = [colors.get(c, ACCENT) for c in order]
    fig.add_trace(_count_bar(order, test, "test", bar_colors), row=1, col=1)
    if min_support:
        fig.add_hline(
            y=min_support,
            line=dict(color=BAD, width=1, dash="dot"),
            row=1,
            col=1,
            annotation_text=f"minimum to judge a class ({fmt.count(min_support)})",
            annotation_position="top left",
            annotation=dict(bgcolor="rgba(255,255,255,0.85)", font=dict(color=BAD, size=11)),
        )
    if train:
        fig.add_trace(_count_bar(order, train, "training", bar_colors), row=2, col=1)
        fig.data[-1].opacity = 0.55
    fig.update_xaxes(type="category", showticklabels=False)
    labelled = len(order) <= MAX_LABELLED * 2
    fig.update_xaxes(
        showticklabels=labelled, tickangle=-45 if len(order) > 12 else 0, row=rows, col=1
    )
    fig.update_yaxes(title="images", rangemode="tozero")
    fig.update_annotations(font=dict(size=12, color=MUTED))
    gap = 0.15 if len(order) > 12 else 0.45  # a handful of classes should not give slabs
    return finish(fig, title, 300 + 220 * (rows - 1), showlegend=False, bargap=gap)


def _share_bar(order: list[str], counts: Mapping[str, Any], what: str, color: str) -> go.Bar:
    values = [int(counts.get(c) or 0) for c in order]
    total = sum(values) or 1
    hovers = [
        f"<b>{esc(c)}</b><br>{fmt.count(v)} {what} images ({fmt.pct(v / total)})"
        for c, v in zip(order, values, strict=True)
    ]
    return go.Bar(
        x=names(order),
        y=[v / total for v in values],
        name=what,
        marker_color=color,
        customdata=hovers,
        hovertemplate="%{customdata}<extra></extra>",
    )


def _imbalance_shares(
    order: list[str], test: Mapping[str, Any], train: Mapping[str, Any] | None, title: str
) -> go.Figure:
    fig = go.Figure(_share_bar(order, test, "held-out", ACCENT))
    if train:
        fig.add_trace(_share_bar(order, train, "training", LIGHT))
    many = len(order) > 40
    fig.update_yaxes(tickformat=".1%", title="share of images")
    fig.update_xaxes(
        showticklabels=not many, title=f"{fmt.count(len(order))} classes, largest first"
    )
    return finish(
        fig, title, 360, barmode="group", bargap=0.05 if many else 0.2, legend={"y": 1.08}
    )


def slices(
    rows: Sequence[Row],
    overall: float | None = None,
    title: str | None = SLICES_TITLE,
) -> go.Figure:
    """Accuracy per data slice (metadata value) with its stored interval; flagged ones in red."""
    data = sorted(
        (r for r in stored_rows(rows) if num(r.get("accuracy")) is not None),
        key=lambda r: num(r["accuracy"]),
    )
    if not data:
        return empty(title, "No slice results stored.")
    acc = [num(r["accuracy"]) for r in data]
    ends = [bounds(v, r.get("ci_low"), r.get("ci_high")) for r, v in zip(data, acc, strict=True)]
    hovers = [
        f"<b>{esc(r.get('label'))}</b><br>accuracy {fmt.pct(v)} (95% CI {fmt.ci(lo, hi)})<br>"
        f"{fmt.count(r.get('support'))} images"
        for r, v, (lo, hi) in zip(data, acc, ends, strict=True)
    ]
    tones = [BAD if r.get("significantly_lower") else ACCENT_SOFT for r in data]
    fig = interval_bars(
        names(r.get("label") for r in data),
        acc,
        ([lo for lo, _ in ends], [hi for _, hi in ends]),
        tones,
        hovers,
    )
    _overall_line(fig, overall, True)
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=[0, 1.02], tickformat=".0%", title="accuracy")
    return finish(fig, title, max(240, 110 + 26 * len(data)), showlegend=False)
