"""Confusion: an interactive matrix readable at 250 classes, and the images behind a chosen cell."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from audits.runs.models_audit import ConfusedPair
from dashboard import stored
from dashboard.charts import chart, clicked_cell
from dashboard.components import guard
from dashboard.gallery import gallery
from dashboard.images import overlays
from dashboard.markdown import md_escape as md
from dashboard.page import PageContext, run_page
from reports.present import charts, fmt
from reports.present.class_views import class_order, most_confused_classes
from reports.present.pair_words import pair_sentence

ORDERS = {
    "Confusion groups": "groups",
    "Worst recall first": "worst",
    "Most errors first": "errors",
    "Model order": "model",
}
CLICKABLE_MAX = 60  # above this many cells per side the click layer would weigh too much


def focus_index(cm: np.ndarray, focus: int, k: int) -> list[int]:
    """A class and the k-1 classes it is most confused with (either direction)."""
    both = cm[focus] + cm[:, focus]
    both[focus] = -1
    partners = [int(i) for i in np.argsort(-both, kind="stable") if both[i] > 0][: k - 1]
    return [focus, *partners]


def controls(n: int, labels: list[str], n_confused: int) -> dict[str, Any]:
    """The view's options; ``n_confused``: classes in the stored most-confused pairs."""
    big = n > 25 and n_confused > 0
    c1, c2, c3 = st.columns([1.2, 1.4, 1.6])
    values = (
        c1.segmented_control(
            "Cells show", ["Counts", "Share of true class"], default="Counts", key="cm_values"
        )
        or "Counts"
    )
    scope = (
        c2.segmented_control(
            "Classes",
            ["Most confused", "All"] if big else ["All", "Most confused"],
            default="Most confused" if big else "All",
            key="cm_scope",
        )
        or "All"
    )
    if not n_confused:  # no confusion stored: every test image is right
        scope = "All"
    order = c3.selectbox(
        "Order",
        list(ORDERS),
        key="cm_order",
        help="Confusion groups keep classes that are mistaken for each other side by side.",
    )
    c4, c5, c6 = st.columns([1.2, 1.4, 1.6])
    k = n if scope == "All" else n_confused
    if scope != "All" and n_confused > 4:  # a slider needs a range
        k = c4.slider("Classes in the sub-matrix", 4, n_confused, min(20, n_confused), key="cm_k")
    focus = c5.selectbox(
        "Focus on a class",
        ["(none)", *labels],
        key="cm_focus",
        help="Show this class with the classes it is confused with most.",
    )
    hide = c6.toggle("Hide the diagonal (errors only)", value=n > 10, key="cm_hide")
    return {
        "share": values != "Counts",
        "scope": scope,
        "order": ORDERS[order],
        "k": int(k),
        "focus": focus,
        "hide": hide,
    }


def take_click(event: Any, labels: list[str]) -> None:
    """A clicked cell becomes the selected pair (once per new click, so pickers can still change it)."""
    cell = clicked_cell(event, labels)
    if cell is not None and st.session_state.get("cm_last_click") != cell:
        st.session_state["cm_last_click"] = cell
        st.session_state["cm_true"], st.session_state["cm_pred"] = cell


def _pair_text(p: ConfusedPair) -> str:
    share = f"{fmt.pct_whole(p.rate)} of {p.true}"
    return f"{p.true} → {p.predicted}: {fmt.count(p.count)} images ({share})"


def pair_pickers(labels: list[str], pairs: list[ConfusedPair]) -> tuple[str, str]:
    """Most-confused pair shortcut plus free true/predicted pickers (any cell)."""
    if "cm_true" not in st.session_state or st.session_state["cm_true"] not in labels:
        first = (
            (pairs[0].true, pairs[0].predicted)
            if pairs
            else (labels[0], labels[min(1, len(labels) - 1)])
        )
        st.session_state["cm_true"], st.session_state["cm_pred"] = first

    def take_pair() -> None:
        choice = st.session_state.get("cm_pair")
        if choice is not None and 0 <= choice < len(pairs):
            st.session_state["cm_true"] = pairs[choice].true
            st.session_state["cm_pred"] = pairs[choice].predicted

    c1, c2, c3 = st.columns([2, 1, 1])
    if pairs:
        c1.selectbox(
            "Most-confused pairs",
            range(len(pairs)),
            index=None,
            key="cm_pair",
            on_change=take_pair,
            placeholder="Pick a pair…",
            format_func=lambda i: _pair_text(pairs[i]),
        )
    true = c2.selectbox("True class", labels, key="cm_true")
    pred = c3.selectbox("Predicted class", labels, key="cm_pred")
    return true, pred


def view(conf: stored.Confusion, opts: dict[str, Any]) -> tuple[list[int], str]:
    """The class indices the matrix shows, in order, and how the title names them."""
    labels, n = conf.labels, len(conf.labels)
    if opts["focus"] != "(none)" and opts["focus"] in labels:
        index = focus_index(conf.matrix, labels.index(opts["focus"]), opts["k"] if n > 4 else n)
        what = f"{opts['focus']} and the classes it is confused with"
    elif opts["scope"] == "All":
        index = class_order(opts["order"], labels, conf.per_class, conf.pairs)
        what = "all classes"
    else:
        index = most_confused_classes(conf.pairs, labels, opts["k"])
        what = f"the {fmt.count(len(index))} most confused classes"
    if opts["order"] != "groups" and opts["scope"] != "All":
        rank = {c: i for i, c in enumerate(class_order(opts["order"], labels, conf.per_class))}
        index = sorted(index, key=rank.get)
    return index, what


def matrix_chart(conf: stored.Confusion, opts: dict[str, Any]) -> None:
    index, what = view(conf, opts)
    clickable = len(index) <= CLICKABLE_MAX
    title = f"Which class is mistaken for which — {what}" + (
        " (share of each true class)" if opts["share"] else " (image counts)"
    )
    fig = charts.confusion(
        conf.labels,
        conf.matrix,
        conf.normalized,
        index,
        share=opts["share"],
        hide_diagonal=opts["hide"],
        clickable=clickable,
        title=title,
    )
    kwargs: dict[str, Any] = {"on_select": "rerun", "selection_mode": "points"} if clickable else {}
    event = chart(
        fig,
        "rows are the true class, columns what the model answered; darker cells hold more images (colour follows "
        "the square root so rare mistakes stay visible). Hover a cell for exact numbers"
        + (
            "; click it to see its images below."
            if clickable
            else "; pick a pair below to see its images."
        ),
        key="cm_chart",
        **kwargs,
    )
    if clickable and event is not None:
        take_click(event, conf.labels)


def cell_line(conf: stored.Confusion, true: str, pred: str) -> str:
    """'**41** images of **carrera** predicted as **gt** (mistakes; 10% of 400 carrera images).'"""
    i, j = conf.labels.index(true), conf.labels.index(pred)
    support = conf.support(true)
    kind = "correct predictions" if i == j else "mistakes"
    return (
        f"**{fmt.count(conf.matrix[i, j])}** images of **{true}** predicted as **{pred}** ({kind}; "
        f"{fmt.pct_whole(conf.normalized[i, j])} of {fmt.count(support)} {true} images)."
    )


def render(ctx: PageContext) -> None:
    conf = stored.confusion(ctx.audit, ctx.record_file)
    labels = conf.labels
    opts = controls(len(labels), labels, len(most_confused_classes(conf.pairs, labels)))
    with guard("The confusion matrix", ctx.record_file):
        matrix_chart(conf, opts)
    st.markdown("#### Images behind a cell")
    true, pred = pair_pickers(labels, conf.pairs)
    st.markdown(cell_line(conf, true, pred))
    pair = next(
        (p for p in stored.pair_sentences(ctx.audit) if p.true == true and p.predicted == pred),
        None,
    )
    if pair is not None:
        st.info(md(pair_sentence(pair)), icon=":material/visibility:")
    with guard("The images of this cell", ctx.path):
        table = ctx.view()
        rows = table[(table["label"] == true) & (table["pred"] == pred)]
        # Images with heatmaps first (explain/ covers a sample of the failures), then confident mistakes.
        explained = rows["row"].isin(list(overlays(ctx.run.explain)))
        rows = rows.assign(_explained=explained).sort_values(
            ["_explained", "confidence"], ascending=[False, true == pred]
        )
        gallery(ctx, rows, key="cm_gallery", per_page=8)


if __name__ == "__main__":
    run_page(
        render,
        "Confusion",
        "Where the mistakes go: pick a cell or a pair to see the images and where the model looked.",
    )
