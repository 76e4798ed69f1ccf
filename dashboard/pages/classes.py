"""Classes: per-class accuracy with Wilson intervals (worst first), class balance, the metrics table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from audits.runs.models_audit import ClassMetrics, Imbalance
from dashboard.charts import chart
from dashboard.components import guard, right_aligned, value_frame
from dashboard.markdown import md_escape
from dashboard.page import PageContext, run_page
from reports.present import charts, fmt

SORTS = {
    "Worst first": lambda r: (r.recall is None, r.recall or 0.0),
    "Best first": lambda r: (r.recall is None, -(r.recall or 0.0)),
    "Most images": lambda r: -r.support,
    "Fewest images": lambda r: r.support,
    "Model order": None,
}


def filter_rows(
    rows: Sequence[ClassMetrics], text: str, min_support: int, sort: str
) -> list[ClassMetrics]:
    """Classes whose name contains ``text`` (case-insensitive) with at least ``min_support`` images."""
    needle = text.strip().lower()
    out = [r for r in rows if needle in r.class_.lower() and r.support >= min_support]
    key = SORTS.get(sort)
    return sorted(out, key=key) if key else out


#: The per-class table's columns: (title, field(s) of ClassMetrics, formatter).
COLUMNS = [
    ("class", "class_", fmt.text),
    ("test images", "support", fmt.count),
    ("correct", "correct", fmt.count),
    ("accuracy (recall)", "recall", fmt.pct),
    ("95% CI", ("ci_low", "ci_high"), fmt.ci),
    ("precision", "precision", fmt.pct),
    ("F1", "f1", fmt.pct),
    ("predicted as", "predicted", fmt.count),
]


def metrics_frame(rows: Sequence[ClassMetrics]) -> pd.DataFrame:
    """The per-class table as stored (no recomputation), each value as the exports write it."""
    return value_frame(rows, COLUMNS)


def balance_notes(block: Imbalance | None) -> list[str]:
    """The class balance in words, from the stored imbalance block."""
    if block is None:
        return ["training counts unknown (the model card names no training manifest)"]
    notes = []
    if block.ratio:
        notes.append(
            f"test set: largest class {block.largest} has {fmt.num(block.ratio, 1)}× "
            f"the images of the smallest, {block.smallest}"
        )
    if block.train_ratio:
        notes.append(
            f"training set: {fmt.num(block.train_ratio, 1)}× "
            f"({block.train_largest} vs {block.train_smallest})"
        )
    if not block.train_counts:
        notes.append("training counts unknown (the model card names no training manifest)")
    return notes


def controls(n_classes: int) -> tuple[str, str, int, int]:
    c1, c2, c3, c4 = st.columns([1.4, 1.6, 1, 1])
    text = c1.text_input("Filter classes", placeholder="name contains…", key="classes_filter")
    sort = c2.selectbox("Sort", list(SORTS), key="classes_sort")
    default = min(n_classes, 30)
    shown = c3.number_input(
        "Classes in chart", 1, max(n_classes, 1), default, step=5, key="classes_shown"
    )
    min_support = c4.number_input(
        "Min. test images", 0, 100_000, 0, step=5, key="classes_min_support"
    )
    return text, sort, int(shown), int(min_support)


def render(ctx: PageContext) -> None:
    m = ctx.metrics
    rows = m.per_class
    text, sort, shown, min_support = controls(len(rows))
    picked = filter_rows(rows, text, min_support, sort)
    with guard("The per-class accuracy chart", ctx.record_file):
        title = f"Accuracy per class with 95% Wilson intervals — {sort.lower()}, {fmt.count(min(shown, len(picked)))} of {fmt.count(len(picked))} classes"
        chart(
            charts.per_class_recall(picked[:shown], ctx.colors, m.accuracy, title=title),
            "each bar is the share of that class's test images the model got right; the whisker is the range the "
            "true value lies in with 95% confidence (wide whiskers = too few images to be sure). The dotted line is "
            "the overall accuracy.",
            key="per_class_chart",
        )
        missing = [r.class_ for r in picked if r.recall is None]
        if missing:
            st.caption(
                f"{fmt.count(len(missing))} class(es) have no test images and no accuracy: {md_escape(', '.join(missing[:8]))}{' …' if len(missing) > 8 else ''}"
            )
    with guard("The class balance chart", ctx.record_file):
        block = m.imbalance
        chart(
            charts.imbalance(block, ctx.colors),
            "one bar per class, largest first, in the class's colour; classes under the red dotted line have too few "
            "test images to judge. When the training manifest is known, the lower panel shows the training images "
            "in the same order — a class rare in both is a data problem, not a model one.",
            key="imbalance_chart",
        )
        notes = balance_notes(block)
        if notes:
            st.caption("; ".join(notes) + ".")
    with guard("The per-class table", ctx.record_file):
        st.markdown("#### Precision, recall and F1 per class")
        frame = metrics_frame(picked)
        right = right_aligned(COLUMNS[1:])
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            height="content" if len(frame) <= 15 else 560,
            column_config={"class": st.column_config.TextColumn("class", pinned=True), **right},
            key="classes_table",
        )
        st.caption(
            "Recall is the share of a class's images classified correctly; precision is the share of the model's "
            "answers of that class that were right; F1 combines both. Filters above apply to this table too."
        )


if __name__ == "__main__":
    run_page(
        render,
        "Classes",
        "Which classes the model gets right, how sure we can be, and how many images each has.",
    )
