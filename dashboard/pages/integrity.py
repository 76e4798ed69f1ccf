"""Integrity & claims: leakage, suspect labels, slices (integrity.json) and claims checked on the page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from audits.runs import IntegrityRecord, StageError
from audits.runs.models_integrity import Leakage, LeakPair, SuspectLabels
from dashboard import data, stored
from dashboard.charts import chart
from dashboard.claims_view import claims
from dashboard.class_slices_view import cross_tab
from dashboard.components import empty_state, esc, guard, metric_card, placeholder, suspect_table
from dashboard.markdown import md_escape
from dashboard.page import PageContext, run_page
from reports.present import charts, fmt


def thumb(ctx: PageContext, rel: str | None) -> None:
    """A thumbnail stored in the run by the integrity stage, or a placeholder."""
    file = ctx.run.thumb(rel)
    img = data.thumbnail(file, 240) if file else None
    if img:
        st.image(img, width="stretch")
    else:
        placeholder("no thumbnail stored")


# ---------------------------------------------------------------- leakage


FOUND_BY = {"perceptual": "perceptual hash + thumbnail", "embedding": "embedding similarity"}


def found_by(entry: LeakPair) -> str:
    """'perceptual hash + thumbnail and embedding similarity' from the stored list."""
    items = [entry.found_by] if isinstance(entry.found_by, str) else entry.found_by or []
    return " and ".join(FOUND_BY.get(str(h), str(h)) for h in items) or "similarity"


def leakage_cards(leak: Leakage) -> None:
    counts, acc = leak.counts, leak.accuracy
    cols = st.columns(4)
    with cols[0]:
        metric_card(
            "Leaked test images",
            fmt.count(counts.leaked_images),
            f"of {fmt.count(leak.n_test)} test images",
            "Test images whose file, physical object (group) or near-duplicate is in the training data.",
        )
    with cols[1]:
        metric_card("Exact copies", fmt.count(counts.exact), "same file bytes")
    with cols[2]:
        metric_card(
            "Shared objects",
            fmt.count(counts.group),
            f"{fmt.count(counts.group_test_images)} test images in shared groups",
        )
    with cols[3]:
        metric_card(
            "Accuracy without leaked",
            fmt.pct(acc.without_leaked.accuracy),
            f"vs {fmt.pct(acc.all.accuracy)} with them",
            "If leaked images inflate accuracy, the clean number is the honest one.",
        )


def leaked_pairs(ctx: PageContext, pairs: list[tuple[str, LeakPair]]) -> None:
    """The test images found in the training data: thumbnails side by side, or a table."""
    st.markdown("#### Test images found in the training data")
    if not any(e.test_thumb or e.train_thumb for _, e in pairs):
        # A wall of placeholders says nothing: list them instead.
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "found as": what,
                        "class": e.label,
                        "test image": e.test_path,
                        "training image": e.train_path,
                    }
                    for what, e in pairs
                ]
            ),
            hide_index=True,
            width="stretch",
            height="content" if len(pairs) <= 8 else 320,
        )
        return
    for i in range(0, min(len(pairs), 12), 4):
        cols = st.columns(4)
        for col, (what, e) in zip(cols, pairs[i : i + 4], strict=False):
            with col.container(border=True):
                a, b = st.columns(2)
                with a:
                    thumb(ctx, e.test_thumb)
                    st.caption("test")
                with b:
                    thumb(ctx, e.train_thumb)
                    st.caption("training")
                st.markdown(
                    f'<div class="ma-muted">{esc(what)} · {esc(e.label)}</div>',
                    unsafe_allow_html=True,
                )


def leakage(ctx: PageContext, report: IntegrityRecord) -> None:
    leak = report.leakage
    if isinstance(leak, StageError):
        st.error(f"The leakage check failed during the audit: {md_escape(leak.error)}")
        return
    if not isinstance(leak, Leakage):
        empty_state(
            "Leakage between training and test images was not checked",
            detail=esc(leak.reason or "No training manifest is known for this model."),
        )
        return
    leakage_cards(leak)
    if not leak.counts.leaked_images:
        st.success(
            "No test image was found in the training data: no identical file, no shared object (group), "
            "no near duplicate.",
            icon=":material/check_circle:",
        )
    pairs = [("exact copy", e) for e in leak.exact] + [
        (f"near duplicate (by {found_by(e)})", e) for e in leak.near
    ]
    if pairs:
        leaked_pairs(ctx, pairs)
    if leak.groups:
        with st.expander(f"{fmt.count(len(leak.groups))} object group(s) on both sides"):
            st.dataframe(
                pd.DataFrame(
                    [
                        {"group": g.group, "n_test": g.n_test, "n_train": g.n_train}
                        for g in leak.groups
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
    if leak.checks.near.note:
        st.caption(leak.checks.near.note)


# ---------------------------------------------------------------- suspect labels


def failure_patterns(ctx: PageContext, report: IntegrityRecord) -> None:
    """The stored failure patterns: the model's systematic errors, not suspect labels."""
    block = report.failure_patterns
    if block is None:
        return
    st.markdown("##### Failure patterns")
    if isinstance(block, StageError):
        st.error(f"The failure-pattern check failed during the audit: {md_escape(block.error)}")
        return
    if not block.patterns:
        st.caption(
            "No failure pattern: the errors are not concentrated in a class pair or a slice."
        )
        return
    st.markdown(
        f"**{fmt.count(block.n_in_patterns)}** of {fmt.count(block.n_errors)} errors fall into "
        f"{fmt.count(len(block.patterns))} failure pattern(s): confusions concentrated in one class "
        "pair or one metadata value, which random label noise does not produce. They are the "
        "model's systematic errors and are not counted as suspect labels."
    )
    for p in block.patterns[:6]:
        with st.container(border=True):
            st.markdown(
                f"**#{p.rank}** {md_escape(p.sentence)} (adjusted {fmt.p_equals(p.p_value_adj)})"
            )
            if p.thumbs:
                cols = st.columns(4)
                for col, t in zip(cols, p.thumbs[:4], strict=False):
                    with col:
                        thumb(ctx, t)
    st.caption(f"Method: {esc(block.method)}.")
    st.markdown("##### Suspect labels")


def suspect_labels(ctx: PageContext, report: IntegrityRecord) -> None:
    failure_patterns(ctx, report)
    block = report.suspect_labels
    if not isinstance(block, SuspectLabels):
        st.error(f"The suspect-label check failed during the audit: {md_escape(block.error)}")
        return
    rows = block.rows
    st.markdown(
        f"**{fmt.count(block.n_flagged)}** of {fmt.count(block.n_labelled)} labelled images are "
        "candidates for review: the model confidently contradicts their label outside any failure "
        "pattern. They are not proven label errors. "
        f"Method: {esc(block.method)}."
    )
    if not rows:
        st.success("No suspect labels: the model never confidently contradicts a given label.")
        return
    for i in range(0, min(len(rows), 8), 4):
        cols = st.columns(4)
        for col, r in zip(cols, rows[i : i + 4], strict=False):
            with col.container(border=True):
                thumb(ctx, r.thumb)
                st.markdown(f"labelled **{esc(r.label)}**, looks like **{esc(r.suggested)}**")
                st.caption(f"p(given label) {fmt.pct(r.self_confidence)} · row {r.row}")
    suspect_table(rows, height=300)
    st.caption(
        "Likeliest candidates first. The Failures page can show only these images, with their heatmaps."
    )


# ---------------------------------------------------------------- slices


def slices(ctx: PageContext, report: IntegrityRecord) -> None:
    block = report.slices
    if isinstance(block, StageError):
        st.error(f"The slice analysis failed during the audit: {md_escape(block.error)}")
        return
    rows = block.slices
    if not rows:
        empty_state(
            "No metadata to slice by",
            detail="The held-out set has no metadata columns (source, tags, dates…).",
        )
        return
    columns = sorted({r.column for r in rows})
    c1, c2 = st.columns([1, 2])
    col = c1.selectbox("Metadata column", ["Weakest slices", *columns], key="slice_col")
    weakest = block.weakest or rows[:10]
    shown = weakest if col == "Weakest slices" else [r for r in rows if r.column == col]
    lower = sum(r.significantly_lower for r in rows)
    c2.markdown(
        f"<br>{fmt.count(lower)} of {fmt.count(len(rows))} slices are significantly less accurate than the rest.",
        unsafe_allow_html=True,
    )
    chart(
        charts.slices(shown, block.accuracy),
        "each bar is the accuracy on images with that metadata value, with its 95% interval; red bars are "
        "significantly worse than the rest of the set (Fisher's test, adjusted for testing many slices).",
        key="slices_chart",
    )
    if block.note:  # why a claim about one slice can answer differently (stored sentence)
        st.caption(esc(block.note))
    cross_tab(report)


def not_stored(ctx: PageContext, tabs: list) -> None:
    """The three integrity tabs of a run without (readable) integrity results."""
    audit = ctx.audit
    reason = stored.stage_error(audit.integrity)
    data_path = audit.dataset.path or "<held-out set>"
    for tab in tabs:
        with tab:
            empty_state(
                "No integrity results in this run",
                f"python -m audits run --model <model dir> --data {data_path}",
                (f"The integrity stage did not run: {esc(reason)}. " if reason else "")
                + "A new audit runs the leakage, suspect-label and slice checks (runs are immutable, so an old run is not changed).",
            )


def render(ctx: PageContext) -> None:
    where = ctx.path
    report = None
    with guard("The integrity report", where):
        report = ctx.run.integrity
    tabs = st.tabs(["Leakage", "Suspect labels", "Slices", "Claims"])
    if report is None:
        with guard("The integrity tabs", ctx.record_file):
            not_stored(ctx, tabs[:3])
    else:
        with tabs[0], guard("The leakage check", where):
            leakage(ctx, report)
        with tabs[1], guard("The suspect labels", where):
            suspect_labels(ctx, report)
        with tabs[2], guard("The slices", where):
            slices(ctx, report)
    with tabs[3], guard("The claims", ctx.path):
        claims(ctx)


if __name__ == "__main__":
    run_page(
        render,
        "Integrity & claims",
        "Can the numbers be trusted — and is what people say about the model true?",
    )
