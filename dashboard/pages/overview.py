"""Overview: the plain-language summary, headline numbers with intervals, then what was audited."""

from __future__ import annotations

import streamlit as st

from dashboard import stored
from dashboard.charts import chart
from dashboard.components import chip, esc, guard, interval, metric_card, version_block
from dashboard.page import PageContext, run_page
from reports.present import charts, fmt, narrative
from reports.present.palette import ACCENT


def headline_cards(ctx: PageContext) -> None:
    h = stored.headline(ctx.meta, ctx.audit_json)
    ece = h["ece"]
    cards = [
        ("Accuracy", fmt.pct(h["accuracy"]), interval(*h["ci"]),
         "Share of held-out images labelled correctly, with its Wilson 95% interval."),
        ("Balanced accuracy", fmt.pct(h["balanced_accuracy"]), "every class counts the same",
         "The mean of the per-class accuracies: rare classes weigh as much as common ones."),
        ("Macro F1", fmt.pct(h["macro_f1"]), "precision and recall, per class",
         "Harmonic mean of precision and recall, averaged over classes."),
        ("Top-3 accuracy", fmt.pct(h["top3"]), f"top-5: {fmt.pct(h['top5'])}",
         "The true class is among the model's three most likely answers."),
        ("Calibration error", fmt.pct(ece),
         "confidence can be trusted" if isinstance(ece, float) and ece < 0.05 else "stated confidence is off",
         "Expected calibration error: the average gap between stated confidence and actual accuracy."),
        ("Images tested", fmt.count(h["n_images"]),
         f"{fmt.count(h['n_classes'])} classes · {fmt.count(h['n_skipped'] or 0)} unreadable",
         "Held-out images the model was run on."),
    ]  # fmt: skip
    for col, (label, value, note, tip) in zip(st.columns(6), cards, strict=True):
        with col:
            metric_card(label, value, note, tip)


def summary(ctx: PageContext) -> list[str]:
    """The executive summary (shared with the PDF), warnings set apart."""
    sentences = narrative.executive_summary(ctx.bundle)
    warns = narrative.warnings(ctx.bundle)
    body = [s for s in sentences if s not in warns]
    with st.container(border=True):
        st.markdown("#### In plain words")
        st.markdown(
            '<div class="ma-summary">' + "".join(f"<p>{esc(s)}</p>" for s in body) + "</div>",
            unsafe_allow_html=True,
        )
    return warns


def worst(ctx: PageContext) -> None:
    st.markdown("#### Weakest classes")
    rows = narrative.worst_classes(ctx.meta, 5)
    if not rows:
        st.caption("No class has test images.")
        return
    for sentence in rows:
        name, _, rest = sentence.partition(": ")
        st.markdown(
            f"{chip(name, ctx.colors.get(name, ACCENT))} {esc(rest)}", unsafe_allow_html=True
        )
    st.page_link("dashboard/pages/classes.py", label="All classes", icon=":material/arrow_forward:")


def _comparison_item(ctx: PageContext) -> tuple[str, str, str]:
    if ctx.bundle.comparison is None:
        return (
            ":material/radio_button_unchecked:",
            "No comparison with a previous version yet",
            "compare",
        )
    c = stored.comparison(ctx.bundle.comparison.meta)
    icon = ":material/check_circle:" if c["verdict"] == "promote" else ":material/pause_circle:"
    return icon, f"Release gate against {c['version_a']}: **{fmt.text(c['verdict'])}**", "compare"


def _drift_item(ctx: PageContext) -> tuple[str, str, str]:
    if ctx.bundle.drift is None:
        return ":material/radio_button_unchecked:", "No drift check for this version yet", "drift"
    if stored.drift(ctx.bundle.drift.meta)["drift"]:
        return ":material/warning:", "Production images **have drifted**", "drift"
    return ":material/check_circle:", "No drift in the latest production batch", "drift"


def _integrity_item(ctx: PageContext) -> tuple[str, str, str]:
    s = stored.integrity_summary(ctx.meta)
    if s is None:
        return (
            ":material/radio_button_unchecked:",
            "Integrity checks not available for this run",
            "integrity",
        )
    if not s["leakage_checked"]:
        text = "Leakage not checked (no training manifest)"
    elif s["leaked"]:
        text = f"{fmt.count(s['leaked'])} test image(s) also in the training data"
    else:
        text = "No train/test leakage found"
    if s["suspects"]:
        text += f", {fmt.count(s['suspects'])} suspect label(s)"
    return (":material/warning:" if s["leaked"] else ":material/check_circle:"), text, "integrity"


def checks(ctx: PageContext) -> None:
    """Status of the other checks: comparison, drift, integrity."""
    st.markdown("#### Checks on this version")
    for icon, text, page in (_comparison_item(ctx), _drift_item(ctx), _integrity_item(ctx)):
        st.page_link(f"dashboard/pages/{page}.py", label=text, icon=icon)


def explanations(ctx: PageContext) -> None:
    """Per-confused-pair sentences written by explain/ (what the model looked at)."""
    sentences = [str(p["sentence"]) for p in stored.pair_sentences(ctx.meta)]
    if sentences:
        st.markdown("#### Where the model looks when it fails")
        for s in sentences[:4]:
            st.markdown(f"- {esc(s[:1].upper() + s[1:])}", unsafe_allow_html=True)


def render(ctx: PageContext) -> None:
    warns: list[str] = []
    with guard("The summary", ctx.audit_json):
        warns = summary(ctx)
    with guard("The headline numbers", ctx.audit_json):
        headline_cards(ctx)
    for w in warns:
        st.warning(w, icon=":material/warning:")
    st.space("small")
    left, right = st.columns([1.2, 1], gap="large")
    with left, guard("The weakest classes", ctx.audit_json):
        worst(ctx)
    with right, guard("The checks", ctx.path):
        checks(ctx)
        explanations(ctx)
    st.divider()
    with guard("The calibration chart", ctx.audit_json):
        chart(
            charts.reliability(ctx.metrics.get("calibration")),
            "each bar is the accuracy of the images whose confidence fell in that range; bars on the dotted "
            "diagonal mean the stated confidence can be trusted, bars below it mean over-confidence. The "
            "grey bars underneath count the images per range.",
            key="reliability",
        )
    st.markdown("#### What was audited")
    with guard("The version block", ctx.audit_json):
        version_block(ctx.meta)


if __name__ == "__main__":
    run_page(
        render, "Overview", "What was tested, how well the model does, and what to look at first."
    )
