"""Review: walk suspect labels, confusions, failure patterns or any filter, and decide.

Decisions go to the corrections file beside the audited held-out set (never into it); the
page reads the set's place from the run (``audit.json`` ``dataset.path``).
"""

from __future__ import annotations

import streamlit as st

from audits.errors import AuditError
from audits.review_queue import QueueSpec, corrections_for
from dashboard.markdown import md_code, md_escape
from dashboard.page import PageContext, run_page
from dashboard.review_browser import cookie_reviewer, remember_reviewer
from dashboard.review_grid import grid
from dashboard.review_single import single
from dashboard.review_state import choices, queue, walk
from dashboard.slicing import ALL, slice_options


def reviewer_field() -> str:
    """The reviewer's name, remembered in this browser (cookie); required before deciding."""
    if "rv_reviewer" not in st.session_state:
        st.session_state["rv_reviewer"] = cookie_reviewer()
    name = st.text_input(
        "Reviewer",
        key="rv_reviewer",
        placeholder="your name (kept in this browser)",
        help="Written with each decision. There is no login: the name is what you type, "
        "remembered in a cookie of this browser.",
    ).strip()
    if name and name != st.session_state.get("rv_saved_name"):
        remember_reviewer(name)
        st.session_state["rv_saved_name"] = name
    return name


def filter_spec(ctx: PageContext) -> QueueSpec:
    """The free filter: true class, predicted class, slice, right or wrong."""
    a, b, c, d = st.columns(4)
    true = a.multiselect("True class", ctx.classes, key="rv_f_true", placeholder="any")
    pred = b.multiselect("Predicted class", ctx.classes, key="rv_f_pred", placeholder="any")
    options, _ = slice_options(ctx.path)
    pick = c.selectbox("Slice", options, key="rv_f_slice")
    which = d.segmented_control(
        "Predictions", ["all", "wrong", "right"], default="all", key="rv_f_correct"
    )
    col, _, value = pick.partition(" = ")
    return QueueSpec(
        "filter",
        true=tuple(true),
        pred=tuple(pred),
        slice=None if pick == ALL else (col, value),
        correct={"wrong": False, "right": True}.get(which or "all"),
    )


def render(ctx: PageContext) -> None:
    try:
        file = corrections_for(ctx.audit.dataset)
    except AuditError as exc:  # e.g. a store viewed on another machine than its data
        st.warning(f"{md_escape(exc)} Nothing can be reviewed here.")
        return
    top = st.columns([1, 2, 1])
    with top[0]:
        reviewer = reviewer_field()
    options = choices(ctx)
    labels = [o.label for o in options]
    with top[1]:
        picked = st.selectbox("Queue", labels, key="rv_queue")
    with top[2]:
        mode = st.segmented_control(
            "Mode", ["One at a time", "Grid"], default="One at a time", key="rv_mode"
        )
    spec = options[labels.index(picked)].spec
    if spec.kind == "filter":
        spec = filter_spec(ctx)
    show_decided = st.toggle(
        "Show decided",
        key="rv_show_decided",
        help="Images with a decision in force are hidden unless this is on.",
    )
    candidates = queue(ctx, spec)
    w = walk((ctx.info.run_id, spec, show_decided), candidates, file, show_decided)
    st.caption(
        f"Decisions are appended to {md_code(file)} beside the frozen set (never into it); "
        "the file is append-only, so a later decision on an image supersedes an earlier one."
    )
    if not len(candidates):
        st.info("This queue is empty.")
        return
    if mode == "Grid":
        grid(ctx, w, file, ctx.classes, reviewer)
    else:
        single(ctx, w, file, ctx.classes, reviewer)


if __name__ == "__main__":
    run_page(
        render,
        "Review",
        "Decide on suspect labels and confusions: keep, relabel or exclude, one image at a "
        "time or a page at a time.",
    )
