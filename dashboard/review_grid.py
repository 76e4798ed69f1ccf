"""Review in bulk: a page of thumbnails said to be one class; tick the ones that are not,
then confirm the page (Enter): the ticked ones are relabelled (or excluded), the rest kept.

The ticks live in an ``st.form``, so ticking costs no round trip; a CSS rule marks a ticked
cell. The grid is an ``st.fragment``: confirming reruns the grid only.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import streamlit as st

from audits.errors import AuditError
from dashboard import data
from dashboard.components import esc
from dashboard.images import data_root, image_file
from dashboard.markdown import md_escape as md
from dashboard.page import PageContext
from dashboard.review_browser import bind_keys
from dashboard.review_state import Walk, decide_page, n_reviewed
from reports.present import fmt

PER_ROW = 8
THUMB = 160
#: A ticked cell: dimmed with a red frame, visible without a rerun.
CSS = """<style>
[class*="st-key-rv_cell_"]:has(input:checked) img {outline: 5px solid #d62728; opacity: .45;}
[class*="st-key-rv_cell_"]:has(input:checked) {background: rgba(214,39,40,.08); border-radius: 6px;}
</style>"""


def page_items(w: Walk, said: str, per_page: int) -> tuple[list[dict[str, Any]], int]:
    """(the items on the walk's current page of class ``said``, the number of pages)."""
    items = [i for i in w.items if i["label"] == said]
    pages = max(1, -(-len(items) // per_page))
    start = min(w.page, pages) * per_page
    return items[start : start + per_page], pages


@st.cache_data(show_spinner=False, max_entries=4096)
def _uri(file: str, stamp: int) -> str | None:
    """A small JPEG of the image as a data URI: the page arrives with its pictures, with no
    request per thumbnail (48 media requests cost most of a page turn)."""
    import base64
    import io

    from PIL import Image

    try:
        with Image.open(file) as img:
            img = img.convert("RGB")
            img.thumbnail((THUMB, THUMB))
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=85)
    except Exception:  # a broken image is a placeholder, never a crash
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _thumb(ctx: PageContext, item: dict[str, Any]) -> str | None:
    file = image_file(data_root(ctx.audit.dataset), item["path"]) or ctx.run.row_thumb(
        int(item["row"])
    )
    return _uri(str(file), data.mtime(file)) if file is not None else None


def _confirm(w: Walk, items: list[dict[str, Any]], file: Path, reviewer: str) -> None:
    ticked = {int(i["row"]) for i in items if st.session_state.get(f"rv_not_{int(i['row'])}")}
    verdict = "exclude" if st.session_state.get("rv_grid_verdict") == "excluded" else "relabel"
    try:
        decide_page(items, ticked, file, reviewer, verdict, st.session_state.get("rv_grid_to", ""))
    except AuditError as exc:
        st.session_state["rv_error"] = str(exc)
        return
    w.page += 1


@st.fragment
def grid(ctx: PageContext, w: Walk, file: Path, classes: list[str], reviewer: str) -> None:
    """One page of thumbnails of one class, with the confirm button."""
    st.html(CSS)
    if error := st.session_state.pop("rv_error", None):
        st.error(error)
    counts = Counter(i["label"] for i in w.items)
    if not counts:
        st.success("Nothing to review in this queue.")
        return
    said_options = [c for c, _ in counts.most_common()]
    a, b, c = st.columns([2, 1, 2])
    said = a.selectbox(
        "Said to be", said_options, key="rv_grid_class", format_func=lambda s: f"{s} ({counts[s]})"
    )
    per_page = b.selectbox("Per page", [24, 36, 48], index=2, key="rv_grid_n")
    items, pages = page_items(w, said, per_page)
    done = n_reviewed(w, file)
    c.markdown(
        f"Page **{min(w.page + 1, pages)}** of {pages} · {fmt.count(done)} of "
        f"{fmt.count(len(w.items))} reviewed"
    )
    if not items:
        st.success(f"Every page of {md(said)} is done. Pick another class or queue.")
        if st.button("Start this class again", key="rv_grid_restart"):
            w.page = 0
            st.rerun(scope="fragment")
        return
    st.markdown(
        f'<div class="rv-grid" data-page="{w.page}" data-n="{len(items)}">Tick every image that '
        f"is <b>not</b> a {md(said)}.</div>",
        unsafe_allow_html=True,
    )
    others = [x for x in classes if x != said] or classes
    with st.form("rv_grid_form", clear_on_submit=True, border=False):
        for start in range(0, len(items), PER_ROW):
            cols = st.columns(PER_ROW)
            for col, item in zip(cols, items[start : start + PER_ROW], strict=False):
                row = int(item["row"])
                with col.container(key=f"rv_cell_{row}"):
                    uri = _thumb(ctx, item)
                    st.markdown(
                        f'<img src="{uri}" alt="{esc(item["path"])}" '
                        'style="width:100%;border-radius:4px">'
                        if uri
                        else '<div class="ma-ph">no image</div>',
                        unsafe_allow_html=True,
                    )
                    st.checkbox(f"not {said}", key=f"rv_not_{row}", help=item["path"])
        v, t, s = st.columns([1.2, 1.2, 1.6])
        v.radio(
            "Ticked ones are", ["relabelled", "excluded"], key="rv_grid_verdict", horizontal=True
        )
        t.selectbox("Relabelled to", others, key="rv_grid_to")
        s.form_submit_button(
            "Confirm page (Enter): ticked → decision, rest → keep",
            type="primary",
            key="rv_confirm",
            disabled=not reviewer,
            on_click=_confirm,
            args=(w, items, file, reviewer),
        )
    if not reviewer:
        st.warning("Enter your name above before deciding.")
    bind_keys()
