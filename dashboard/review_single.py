"""Review, one image at a time: the image, its stored heatmaps, top-5, the other versions'
predictions, and the keys K keep, R relabel, X exclude, S or → skip, ← back.

The card is an ``st.fragment``: a decision reruns the card only, not the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from audits.errors import AuditError
from dashboard import data
from dashboard.components import esc, placeholder
from dashboard.images import data_root, heat_panels, image_file
from dashboard.markdown import md_escape as md
from dashboard.page import PageContext
from dashboard.review_browser import bind_keys
from dashboard.review_state import Walk, decide, in_force, n_reviewed
from reports.present import fmt

IMAGE_SIDE = 420


def top5_html(top5: list[tuple[str, float]], label: str) -> str:
    """Top-5 as horizontal bars (the given label in bold)."""
    rows = []
    for name, p in top5:
        share = max(0.0, min(1.0, float(p)))
        strong = "font-weight:600" if name == label else ""
        rows.append(
            f'<div style="display:flex;align-items:center;gap:.5rem;margin:.1rem 0;{strong}">'
            f'<span style="width:7rem;overflow:hidden;text-overflow:ellipsis">{esc(name)}</span>'
            f'<span style="flex:1;background:var(--ma-grid,#eee);height:.7rem;border-radius:3px">'
            f'<span style="display:block;width:{share * 100:.1f}%;height:100%;background:#4c78a8;border-radius:3px"></span></span>'
            f'<span style="width:3.5rem;text-align:right">{fmt.pct(share, 1)}</span></div>'
        )
    return "".join(rows)


def _image(ctx: PageContext, item: dict[str, Any]) -> Path | None:
    root = data_root(ctx.audit.dataset)
    row = int(item["row"])
    explain = ctx.run.explain
    return (
        image_file(root, item["path"])
        or (explain.overlay(row) if explain is not None else None)
        or ctx.run.row_thumb(row)
    )


def _on_decide(w: Walk, file: Path, verdict: str, reviewer: str) -> None:
    if w.current is None:
        return
    row = int(w.current["row"])
    reason = st.session_state.get(f"rv_reason_{row}", "") or ""
    new = st.session_state.get(f"rv_new_{row}", "") if verdict == "relabel" else ""
    try:
        decide(w, file, verdict, reviewer, new_label=new, reason=reason)
    except AuditError as exc:
        st.session_state["rv_error"] = str(exc)


def _move(w: Walk, step: int) -> None:
    w.pos = max(0, min(len(w.items), w.pos + step))


def _undo(w: Walk) -> None:
    if w.history:
        w.pos = w.history.pop()


@st.fragment
def single(ctx: PageContext, w: Walk, file: Path, classes: list[str], reviewer: str) -> None:
    """The card of the current image and its decision buttons."""
    done = n_reviewed(w, file)
    st.progress(
        done / len(w.items) if w.items else 1.0,
        text=f"{fmt.count(done)} of {fmt.count(len(w.items))} reviewed",
    )
    if error := st.session_state.pop("rv_error", None):
        st.error(error)
    item = w.current
    if item is None:
        st.success("End of the queue. Use ← back to revisit an image, or pick another queue.")
        st.button("← Back", key="rv_back", shortcut="Left", on_click=_move, args=(w, -1))
        return
    pos, row = w.pos, int(item["row"])
    st.markdown(
        f'<div class="rv-card" data-row="{row}" data-pos="{pos}" data-path="{esc(item["path"])}" data-why="{esc(item["why"])}">'
        f"<b>{pos + 1}</b> of {len(w.items)} · <code>{esc(item['path'])}</code> · row {row}</div>",
        unsafe_allow_html=True,
    )
    left, right = st.columns([1.1, 1])
    with left:
        file_img = _image(ctx, item)
        pixels = data.thumbnail(file_img, IMAGE_SIDE) if file_img is not None else None
        if pixels:
            st.image(pixels, width=IMAGE_SIDE)
        else:
            placeholder("image file not available")
        panels = heat_panels(
            ctx.run.explain,
            row,
            image_file(data_root(ctx.audit.dataset), item["path"]),
            0.5,
            side=200,
        )
        if panels[1:]:
            cols = st.columns(len(panels) - 1)
            for col, (px, caption) in zip(cols, panels[1:], strict=True):
                col.image(px, caption=md(caption), width="stretch")
        else:
            st.caption("No stored heatmap for this image (not in the explained sample).")
    with right:
        st.markdown(
            f"**Label** {md(item['label'])} · **predicted** {md(item['pred'])} "
            f"({fmt.pct(item['confidence'], 1)}) · p(label) {fmt.pct(item['p_label'], 1)}"
        )
        st.markdown(top5_html(item["top5"], item["label"]), unsafe_allow_html=True)
        if item["versions"]:
            st.markdown(
                "**Other versions:** "
                + ", ".join(f"{md(v)} → {md(p or '—')}" for v, p in item["versions"].items())
            )
        st.caption(f"In the queue because: {md(item['why'])}")
        force = in_force(file)
        prior = force[(force["path"] == item["path"]) & (force["sha256"] == item["sha256"])]
        if len(prior):
            last = prior.iloc[-1]
            st.info(
                f"Decision in force: **{md(last['decision'])}** {md(last['new_label'])} by "
                f"{md(last['reviewer'])} at {md(last['time'])}. A new decision supersedes it "
                "(the corrections file is append-only)."
            )
        pred = item["pred"] if item["pred"] in classes else classes[0]
        st.selectbox(
            "Relabel to (type to search)",
            classes,
            index=classes.index(pred),
            key=f"rv_new_{row}",
        )
        st.text_input("Reason (optional)", key=f"rv_reason_{row}", placeholder="e.g. roof visible")
        off = not reviewer
        # (label, widget key, shortcut, decision); R is bound by review_browser (Streamlit
        # reserves it), so its button has no shortcut of its own.
        decisions = (
            ("Keep", "rv_keep", "K", "keep"),
            ("Relabel (R)", "rv_relabel", None, "relabel"),
            ("Exclude", "rv_exclude", "X", "exclude"),
        )
        for col, (label, key, shortcut, decision) in zip(st.columns(3), decisions, strict=True):
            col.button(
                label,
                key=key,
                type="primary" if decision == "relabel" else "secondary",
                shortcut=shortcut,
                disabled=off,
                on_click=_on_decide,
                args=(w, file, decision, reviewer),
                width="stretch",
            )
        c = st.columns(3)
        c[0].button(
            "← Back",
            key="rv_back",
            shortcut="Left",
            on_click=_move,
            args=(w, -1),
            disabled=pos == 0,
            width="stretch",
        )
        c[1].button(
            "Skip", key="rv_skip", shortcut="S", on_click=_move, args=(w, 1), width="stretch"
        )
        c[2].button(
            "Next →", key="rv_next", shortcut="Right", on_click=_move, args=(w, 1), width="stretch"
        )
        st.button(
            "Undo last decision",
            key="rv_undo",
            icon=":material/undo:",
            disabled=not w.history,
            on_click=_undo,
            args=(w,),
            help="Shows the last decided image again; your next decision on it supersedes the "
            "last one. The corrections file is append-only: nothing is deleted.",
        )
        if off:
            st.warning("Enter your name above before deciding.")
    bind_keys()
