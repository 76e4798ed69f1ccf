"""Confusion: an interactive matrix readable at 250 classes, and the images behind a chosen cell."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from audits.errors import AuditError
from dashboard import charts
from dashboard.components import chart, guard
from dashboard.gallery import gallery
from dashboard.images import explanations
from dashboard.page import PageContext, get, run_page

ORDERS = {
    "Confusion groups": "groups",
    "Worst recall first": "worst",
    "Most errors first": "errors",
    "Model order": "model",
}
CLICKABLE_MAX = 60  # above this many cells per side the click layer would weigh too much


def matrix_of(ctx: PageContext) -> tuple[np.ndarray, list[str]]:
    """The stored confusion counts and labels (rows true, columns predicted)."""
    block = ctx.metrics.get("confusion") or {}
    labels = [str(c) for c in block.get("labels") or ctx.classes]
    cm = np.asarray(block.get("matrix") or [], dtype=np.float64)
    if cm.ndim != 2 or cm.shape != (len(labels), len(labels)):
        raise AuditError(
            f"{ctx.path / 'audit.json'} has no usable confusion matrix (shape {cm.shape}, expected "
            f"{len(labels)}×{len(labels)}): the run is incomplete or damaged"
        )
    return cm, labels


def focus_index(cm: np.ndarray, focus: int, k: int) -> list[int]:
    """A class and the k-1 classes it is most confused with (either direction)."""
    both = cm[focus] + cm[:, focus]
    both[focus] = -1
    partners = [int(i) for i in np.argsort(-both, kind="stable") if both[i] > 0][: k - 1]
    return [focus, *partners]


def controls(n: int, labels: list[str]) -> dict[str, Any]:
    big = n > 25
    c1, c2, c3 = st.columns([1.2, 1.4, 1.6])
    values = (
        c1.segmented_control(
            "Cells show", ["Counts", "Share of true class"], default="Counts", key="cm_values"
        )
        or "Counts"
    )
    scope = c2.segmented_control("Classes", ["Most confused", "All"] if big else ["All", "Most confused"],
                                 default="Most confused" if big else "All", key="cm_scope") or "All"  # fmt: skip
    order = c3.selectbox(
        "Order",
        list(ORDERS),
        key="cm_order",
        help="Confusion groups keep classes that are mistaken for each other side by side.",
    )
    c4, c5, c6 = st.columns([1.2, 1.4, 1.6])
    k = n
    if n > 5 and scope != "All":  # a slider needs a range; small models show every class
        k = c4.slider("Classes in the sub-matrix", 4, min(60, n), min(20, n), key="cm_k")
    focus = c5.selectbox(
        "Focus on a class",
        ["(none)", *labels],
        key="cm_focus",
        help="Show this class with the classes it is confused with most.",
    )
    hide = c6.toggle("Hide the diagonal (errors only)", value=n > 10, key="cm_hide")
    return {
        "normalize": values != "Counts",
        "scope": scope,
        "order": ORDERS[order],
        "k": int(k),
        "focus": focus,
        "hide": hide,
    }


def pick_from_click(event: Any, labels: list[str]) -> None:
    """A clicked cell becomes the selected pair (once per new click, so pickers can still change it)."""
    points = (
        get(event, "selection", "points", default=[])
        if isinstance(event, dict)
        else getattr(getattr(event, "selection", None), "points", [])
    )
    if not points:
        return
    p = points[0]
    x, y = p.get("x"), p.get("y")
    if x in labels and y in labels and st.session_state.get("cm_last_click") != (y, x):
        st.session_state["cm_last_click"] = (y, x)
        st.session_state["cm_true"], st.session_state["cm_pred"] = y, x


def pair_pickers(ctx: PageContext, labels: list[str]) -> tuple[str, str]:
    """Most-confused pair shortcut plus free true/predicted pickers (any cell)."""
    pairs = [
        p
        for p in ctx.metrics.get("most_confused") or []
        if isinstance(p, dict) and p.get("true") in labels and p.get("predicted") in labels
    ]
    if "cm_true" not in st.session_state or st.session_state["cm_true"] not in labels:
        first = (
            pairs[0] if pairs else {"true": labels[0], "predicted": labels[min(1, len(labels) - 1)]}
        )
        st.session_state["cm_true"], st.session_state["cm_pred"] = first["true"], first["predicted"]

    def take_pair() -> None:
        choice = st.session_state.get("cm_pair")
        if choice is not None and 0 <= choice < len(pairs):
            st.session_state["cm_true"], st.session_state["cm_pred"] = (
                pairs[choice]["true"],
                pairs[choice]["predicted"],
            )

    c1, c2, c3 = st.columns([2, 1, 1])
    if pairs:
        c1.selectbox(
            "Most-confused pairs", range(len(pairs)), index=None, key="cm_pair", on_change=take_pair, placeholder="Pick a pair…",
            format_func=lambda i: f"{pairs[i]['true']} → {pairs[i]['predicted']}: {pairs[i]['count']:,} images ({pairs[i].get('rate', 0):.0%} of {pairs[i]['true']})",
        )  # fmt: skip
    true = c2.selectbox("True class", labels, key="cm_true")
    pred = c3.selectbox("Predicted class", labels, key="cm_pred")
    return true, pred


def pair_sentence(ctx: PageContext, true: str, pred: str) -> str | None:
    """explain/'s sentence for this confused pair, when it wrote one."""
    ex = ctx.meta.get("explain") if isinstance(ctx.meta.get("explain"), dict) else {}
    for p in ex.get("pairs") or ex.get("confused_pairs") or []:
        if (
            isinstance(p, dict)
            and p.get("true") == true
            and p.get("predicted") == pred
            and p.get("sentence")
        ):
            return str(p["sentence"])
    return None


def render(ctx: PageContext) -> None:
    cm, labels = matrix_of(ctx)
    n = len(labels)
    opts = controls(n, labels)
    if opts["focus"] != "(none)" and opts["focus"] in labels:
        index = focus_index(cm, labels.index(opts["focus"]), opts["k"] if n > 4 else n)
        what = f"{opts['focus']} and the classes it is confused with"
    elif opts["scope"] == "All":
        index = charts.order_classes(cm, opts["order"])
        what = "all classes"
    else:
        index = charts.top_confused(cm, opts["k"])
        what = f"the {len(index)} most confused classes"
    if opts["order"] != "groups" and opts["scope"] != "All":
        rank = {c: i for i, c in enumerate(charts.order_classes(cm, opts["order"]))}
        index = sorted(index, key=rank.get)
    clickable = len(index) <= CLICKABLE_MAX
    with guard("The confusion matrix", ctx.path / "audit.json"):
        title = f"Which class is mistaken for which — {what}" + (
            " (share of each true class)" if opts["normalize"] else " (image counts)"
        )
        fig = charts.confusion(
            cm,
            labels,
            index,
            normalize=opts["normalize"],
            hide_diagonal=opts["hide"],
            clickable=clickable,
            title=title,
        )
        kwargs: dict[str, Any] = (
            {"on_select": "rerun", "selection_mode": "points"} if clickable else {}
        )
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
            pick_from_click(event, labels)
    st.markdown("#### Images behind a cell")
    true, pred = pair_pickers(ctx, labels)
    i, j = labels.index(true), labels.index(pred)
    support = cm[i].sum()
    kind = "correct predictions" if i == j else "mistakes"
    st.markdown(
        f"**{int(cm[i, j]):,}** images of **{true}** predicted as **{pred}** ({kind}; "
        f"{(cm[i, j] / support if support else 0):.0%} of {int(support):,} {true} images)."
    )
    sentence = pair_sentence(ctx, true, pred)
    if sentence:
        st.info(sentence[:1].upper() + sentence[1:], icon=":material/visibility:")
    with guard("The images of this cell", ctx.path / "predictions.parquet"):
        table = ctx.table()
        rows = table[(table["label"] == true) & (table["pred"] == pred)]
        # Images with heatmaps first (explain/ covers a sample of the failures), then confident mistakes.
        explained = rows["row"].isin(list(explanations(ctx.path).overlays))
        rows = rows.assign(_explained=explained).sort_values(
            ["_explained", "confidence"], ascending=[False, i == j]
        )
        gallery(ctx, rows, key="cm_gallery", per_page=8)


if __name__ == "__main__":
    run_page(
        render,
        "Confusion",
        "Where the mistakes go: pick a cell or a pair to see the images and where the model looked.",
    )
