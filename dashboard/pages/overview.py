"""Overview: the plain-language summary, headline numbers with intervals, then what was audited."""

from __future__ import annotations

import streamlit as st

from audits.runs.models_integrity import SuspectSummary
from dashboard import stored
from dashboard.charts import chart
from dashboard.class_slices_view import root_cause_callout
from dashboard.components import chip, esc, guard, interval, metric_card, version_block
from dashboard.markdown import md_escape
from dashboard.neighbours import superseded_banner
from dashboard.page import PageContext, run_page
from reports.present import charts, findings, fmt, narrative, neighbours
from reports.present.lineage import lineage_sentence
from reports.present.pair_words import pair_sentence
from reports.present.palette import ACCENT
from reports.present.rows import record_or_none
from reports.present.topk import shown_topk


def headline_cards(ctx: PageContext) -> None:
    m, data = ctx.metrics, ctx.audit.dataset
    ece = m.ece
    n_classes = m.n_classes if m.n_classes is not None else len(m.per_class)
    cards = [
        (
            "Accuracy",
            fmt.pct(m.accuracy),
            interval(m.accuracy_ci_low, m.accuracy_ci_high),
            "Share of held-out images classified correctly, with its Wilson 95% interval.",
        ),
        (
            "Balanced accuracy",
            fmt.pct(m.balanced_accuracy),
            "every class counts the same",
            "The mean of the per-class accuracies: rare classes weigh as much as common ones.",
        ),
        (
            "Macro F1",
            fmt.pct(m.macro_f1),
            "precision and recall, per class",
            "Harmonic mean of precision and recall, averaged over classes.",
        ),
        *(
            (
                f"Top-{k} accuracy",
                fmt.pct(v),
                f"{k} guesses of {n_classes} classes",
                f"The true class is among the model's {k} most likely answers.",
            )
            for k, v in shown_topk(m.top_k_accuracy, n_classes)[:1]
        ),
        (
            "Calibration error",
            fmt.pct(ece),
            "confidence can be trusted"
            if ece is not None and ece < 0.05
            else "stated confidence is off",
            "Expected calibration error: the average gap between stated confidence and actual accuracy.",
        ),
        (
            "Images tested",
            fmt.count(data.n_images),
            f"{fmt.count(n_classes)} classes · {fmt.count(data.n_skipped)} unreadable",
            "Held-out images the model was run on.",
        ),
    ]
    for col, (label, value, note, tip) in zip(st.columns(len(cards)), cards, strict=True):
        with col:
            metric_card(label, value, note, tip)


def summary(ctx: PageContext) -> list[str]:
    """The executive summary (shared with the PDF), warnings set apart."""
    sentences = narrative.executive_summary(ctx.bundle)
    warns = narrative.warnings(ctx.bundle)
    shown = findings.finding_lines(ctx.run) if findings.root_cause(ctx.run) else []
    body = [s for s in sentences if s not in warns and s not in shown]
    with st.container(border=True):
        st.markdown("#### In plain words")
        # The headline, then what fails, why and what to do (stored by the integrity stage).
        for part in (body[:1], None, body[1:]):
            if part is None:
                root_cause_callout(ctx.run)
            elif part:
                st.markdown(
                    '<div class="ma-summary">'
                    + "".join(f"<p>{esc(s)}</p>" for s in part)
                    + "</div>",
                    unsafe_allow_html=True,
                )
    return warns


def worst(ctx: PageContext) -> None:
    st.markdown("#### Weakest classes")
    rows = narrative.worst_classes(ctx.audit, 5)
    if not rows:
        st.caption("No class has test images.")
        return
    for sentence in rows:
        name, _, rest = sentence.partition(": ")
        st.markdown(
            f"{chip(name, ctx.colors.get(name, ACCENT))} {esc(rest)}", unsafe_allow_html=True
        )
    st.page_link("dashboard/pages/classes.py", label="All classes", icon=":material/arrow_forward:")


UNREADABLE = ":material/error:"


def _comparison_item(ctx: PageContext) -> tuple[str, str, str]:
    later = neighbours.successor_record(ctx.bundle)
    if ctx.bundle.comparison is None and later is not None:  # an older version: name its successor
        # A page link is one line: the full sentence is in the banner above.
        version = later.run_b.model.version or "a newer version"
        return ":material/update:", f"Compared with newer {version}: **{later.verdict}**", "compare"
    if ctx.bundle.comparison is None:
        return (
            ":material/radio_button_unchecked:",
            "No comparison with a previous version yet",
            "compare",
        )
    c = record_or_none(ctx.bundle.comparison, "comparison")
    if c is None:
        return UNREADABLE, "The latest comparison could not be read", "compare"
    icon = ":material/check_circle:" if c.promote else ":material/pause_circle:"
    against = c.run_a.model.version or "A"
    return icon, f"Release gate against {against}: **{fmt.text(c.verdict)}**", "compare"


def _drift_item(ctx: PageContext) -> tuple[str, str, str]:
    if ctx.bundle.drift is None:
        return ":material/radio_button_unchecked:", "No drift check for this version yet", "drift"
    d = record_or_none(ctx.bundle.drift, "drift")
    if d is None:
        return UNREADABLE, "The latest drift run could not be read", "drift"
    if d.drift:
        return ":material/warning:", "Production images **have drifted**", "drift"
    return ":material/check_circle:", "No drift in the latest production batch", "drift"


def _integrity_item(ctx: PageContext) -> tuple[str, str, str]:
    s = stored.integrity_summary(ctx.audit)
    if s is None:
        return (
            ":material/radio_button_unchecked:",
            "Integrity checks not available for this run",
            "integrity",
        )
    leaked = s.leakage.leaked_images or 0
    suspects = s.suspect_labels.n_flagged if isinstance(s.suspect_labels, SuspectSummary) else None
    if not s.leakage.available:
        text = "Leakage not checked (no training manifest)"
    elif leaked:
        text = f"{fmt.count(leaked)} test image(s) also in the training data"
    else:
        text = "No train/test leakage found"
    if suspects:
        text += f", {fmt.count(suspects)} suspect label(s)"
    return (":material/warning:" if leaked else ":material/check_circle:"), text, "integrity"


def checks(ctx: PageContext) -> None:
    """Status of the other checks: comparison, drift, integrity."""
    st.markdown("#### Checks on this version")
    for icon, text, page in (_comparison_item(ctx), _drift_item(ctx), _integrity_item(ctx)):
        st.page_link(f"dashboard/pages/{page}.py", label=text, icon=icon)


def explanations(ctx: PageContext) -> None:
    """Per-confused-pair sentences written by explain/ (what the model looked at)."""
    pairs = sorted(stored.pair_sentences(ctx.audit), key=lambda p: -p.n_failures)
    sentences = [pair_sentence(p) for p in pairs]  # plain words, largest pair first
    if sentences:
        st.markdown("#### Where the model looks when it fails")
        for s in sentences[:4]:
            st.markdown(f"- {esc(s)}", unsafe_allow_html=True)


def render(ctx: PageContext) -> None:
    warns: list[str] = []
    superseded_banner(ctx.bundle)
    with guard("The summary", ctx.record_file):
        warns = summary(ctx)
    with guard("The headline numbers", ctx.record_file):
        headline_cards(ctx)
    for w in warns:
        st.warning(w, icon=":material/warning:")
    st.space("small")
    left, right = st.columns([1.2, 1], gap="large")
    with left, guard("The weakest classes", ctx.record_file):
        worst(ctx)
    with right, guard("The checks", ctx.path):
        checks(ctx)
        explanations(ctx)
    st.divider()
    with guard("The calibration chart", ctx.record_file):
        chart(
            charts.reliability(ctx.metrics.calibration),
            "each bar is the accuracy of the images whose confidence fell in that range; bars on the dotted "
            "diagonal mean the stated confidence can be trusted, bars below it mean over-confidence. The "
            "grey bars underneath count the images per range.",
            key="reliability",
        )
    st.markdown("#### What was audited")
    with guard("The version block", ctx.record_file):
        lineage = lineage_sentence(ctx.audit.dataset.lineage)  # a set made by `relabel`
        if lineage:
            st.markdown(f":material/account_tree: {md_escape(lineage)}")
        version_block(ctx.audit)


if __name__ == "__main__":
    run_page(
        render, "Overview", "What was tested, how well the model does, and what to look at first."
    )
