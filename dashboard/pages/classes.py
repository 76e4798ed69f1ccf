"""Classes: per-class accuracy with Wilson intervals (worst first), class balance, the metrics table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.components import chart, guard
from dashboard.page import PageContext, run_page

SORTS = {
    "Worst first": lambda r: (r.get("recall") is None, r.get("recall") or 0.0),
    "Best first": lambda r: (r.get("recall") is None, -(r.get("recall") or 0.0)),
    "Most images": lambda r: -(r.get("support") or 0),
    "Fewest images": lambda r: r.get("support") or 0,
    "Model order": None,
}


def filter_rows(
    rows: Sequence[Mapping[str, Any]], text: str, min_support: int, sort: str
) -> list[Mapping[str, Any]]:
    """Classes whose name contains ``text`` (case-insensitive) with at least ``min_support`` images."""
    needle = text.strip().lower()
    out = [
        r
        for r in rows
        if needle in str(r.get("class", "")).lower() and (r.get("support") or 0) >= min_support
    ]
    key = SORTS.get(sort)
    return sorted(out, key=key) if key else out


def metrics_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The per-class table as stored (no recomputation), in display units."""
    frame = pd.DataFrame.from_records(list(rows))
    want = [
        "class",
        "support",
        "correct",
        "recall",
        "ci_low",
        "ci_high",
        "precision",
        "f1",
        "predicted",
    ]
    for col in want:
        if col not in frame.columns:
            frame[col] = None
    return frame[want]


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
    rows = m["per_class"]
    text, sort, shown, min_support = controls(len(rows))
    picked = filter_rows(rows, text, min_support, sort)
    with guard("The per-class accuracy chart", ctx.path / "audit.json"):
        title = f"Accuracy per class with 95% Wilson intervals — {sort.lower()}, {min(shown, len(picked))} of {len(picked)} classes"
        chart(
            charts.per_class_accuracy(picked[:shown], ctx.colors, m.get("accuracy"), title=title),
            "each bar is the share of that class's test images the model got right; the whisker is the range the "
            "true value lies in with 95% confidence (wide whiskers = too few images to be sure). The dotted line is "
            "the overall accuracy.",
            key="per_class_chart",
        )
        missing = [r["class"] for r in picked if r.get("recall") is None]
        if missing:
            st.caption(
                f"{len(missing)} class(es) have no test images and no accuracy: {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}"
            )
    with guard("The class balance chart", ctx.path / "audit.json"):
        block = m.get("imbalance") or {}
        chart(
            charts.imbalance(block, ctx.colors),
            "one bar per class, largest first, in the class's colour; classes under the red dotted line have too few "
            "test images to judge. When the training manifest is known, the lower panel shows the training images "
            "in the same order — a class rare in both is a data problem, not a model one.",
            key="imbalance_chart",
        )
        notes = []
        if block.get("ratio"):
            notes.append(
                f"test set: largest class {block.get('largest')} has {block['ratio']:.1f}× the images of the smallest, {block.get('smallest')}"
            )
        if block.get("train_ratio"):
            notes.append(
                f"training set: {block['train_ratio']:.1f}× ({block.get('train_largest')} vs {block.get('train_smallest')})"
            )
        if not block.get("train_counts"):
            notes.append("training counts unknown (the model card names no training manifest)")
        if notes:
            st.caption("; ".join(notes) + ".")
    with guard("The per-class table", ctx.path / "audit.json"):
        st.markdown("#### Precision, recall and F1 per class")
        frame = metrics_frame(picked)
        pct = st.column_config.NumberColumn
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            height="content" if len(frame) <= 15 else 560,
            column_config={
                "class": st.column_config.TextColumn("class", pinned=True),
                "support": st.column_config.NumberColumn("test images", format="localized"),
                "correct": st.column_config.NumberColumn("correct", format="localized"),
                "recall": st.column_config.ProgressColumn(
                    "accuracy (recall)", format="percent", min_value=0, max_value=1
                ),
                "ci_low": pct("95% CI low", format="percent"),
                "ci_high": pct("95% CI high", format="percent"),
                "precision": pct("precision", format="percent"),
                "f1": pct("F1", format="percent"),
                "predicted": st.column_config.NumberColumn("predicted as", format="localized"),
            },
            key="classes_table",
        )
        st.caption(
            "Recall is the share of a class's images labelled correctly; precision is the share of the model's "
            "answers of that class that were right; F1 combines both. Filters above apply to this table too."
        )


if __name__ == "__main__":
    run_page(
        render,
        "Classes",
        "Which classes the model gets right, how sure we can be, and how many images each has.",
    )
