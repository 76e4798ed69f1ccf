"""Overview: the plain-language summary, headline numbers with intervals, then what was audited."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.components import chart, chip, esc, guard, interval, metric_card, version_block
from dashboard.page import PageContext, get, run_page
from reports.present import narrative
from reports.present.narrative import pct


def headline_cards(ctx: PageContext) -> None:
    m = ctx.metrics
    data = ctx.meta.get("dataset") or {}
    topk = m.get("top_k_accuracy") or {}
    ece = m.get("ece")
    n = data.get("n_images")
    cards = [
        ("Accuracy", pct(m.get("accuracy")), interval(m.get("accuracy_ci_low"), m.get("accuracy_ci_high")),
         "Share of held-out images labelled correctly, with its Wilson 95% interval."),
        ("Balanced accuracy", pct(m.get("balanced_accuracy")), "every class counts the same",
         "The mean of the per-class accuracies: rare classes weigh as much as common ones."),
        ("Macro F1", pct(m.get("macro_f1")), "precision and recall, per class",
         "Harmonic mean of precision and recall, averaged over classes."),
        ("Top-3 accuracy", pct(topk.get("3")), f"top-5: {pct(topk.get('5'))}",
         "The true class is among the model's three most likely answers."),
        ("Calibration error", pct(ece),
         "confidence can be trusted" if isinstance(ece, float) and ece < 0.05 else "stated confidence is off",
         "Expected calibration error: the average gap between stated confidence and actual accuracy."),
        ("Images tested", f"{n:,}" if isinstance(n, int) else "n/a",
         f"{m.get('n_classes', len(ctx.classes))} classes · {data.get('n_skipped') or 0} unreadable",
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
            f"{chip(name, ctx.colors.get(name, charts.ACCENT))} {esc(rest)}", unsafe_allow_html=True
        )
    st.page_link("dashboard/pages/classes.py", label="All classes", icon=":material/arrow_forward:")


def checks(ctx: PageContext) -> None:
    """Status of the other checks: comparison, drift, integrity, explanations."""
    st.markdown("#### Checks on this version")
    b = ctx.bundle
    items: list[tuple[str, str, str]] = []  # (icon, text, page)
    if b.comparison is not None:
        verdict = b.comparison.meta.get("verdict", "?")
        other = get(b.comparison.meta, "run_a", "model", "version", default="the previous version")
        icon = ":material/check_circle:" if verdict == "promote" else ":material/pause_circle:"
        items.append((icon, f"Release gate against {other}: **{verdict}**", "compare"))
    else:
        items.append(
            (
                ":material/radio_button_unchecked:",
                "No comparison with a previous version yet",
                "compare",
            )
        )
    if b.drift is not None:
        drifted = bool(b.drift.meta.get("drift"))
        items.append((":material/warning:" if drifted else ":material/check_circle:",
                      "Production images **have drifted**" if drifted else "No drift in the latest production batch", "drift"))  # fmt: skip
    else:
        items.append(
            (":material/radio_button_unchecked:", "No drift check for this version yet", "drift")
        )
    integ = ctx.meta.get("integrity")
    if isinstance(integ, dict) and not integ.get("error"):
        leaked = get(integ, "leakage", "leaked_images", default=0) or get(
            integ, "leakage", "n_leaked", default=0
        )
        suspects = get(integ, "suspect_labels", "n_flagged", default=None)
        if get(integ, "leakage", "available") is False:
            text = "Leakage not checked (no training manifest)"
        else:
            text = (
                f"{leaked:,} test image(s) also in the training data"
                if leaked
                else "No train/test leakage found"
            )
        if suspects:
            text += f", {suspects} suspect label(s)"
        items.append(
            (":material/warning:" if leaked else ":material/check_circle:", text, "integrity")
        )
    else:
        items.append(
            (
                ":material/radio_button_unchecked:",
                "Integrity checks not available for this run",
                "integrity",
            )
        )
    for icon, text, page in items:
        st.page_link(f"dashboard/pages/{page}.py", label=text, icon=icon)


def explanations(ctx: PageContext) -> None:
    """Per-confused-pair sentences written by explain/ (what the model looked at)."""
    ex = ctx.meta.get("explain")
    if not isinstance(ex, dict) or ex.get("error"):
        return
    sentences = [str(s) for s in ex.get("sentences") or [] if s]
    for pair in ex.get("pairs") or ex.get("confused_pairs") or []:
        if isinstance(pair, dict) and pair.get("sentence"):
            sentences.append(str(pair["sentence"]))
    if ex.get("summary") and isinstance(ex["summary"], str):
        sentences.insert(0, ex["summary"])
    if sentences:
        st.markdown("#### Where the model looks when it fails")
        for s in sentences[:4]:
            st.markdown(f"- {esc(s[:1].upper() + s[1:])}", unsafe_allow_html=True)


def render(ctx: PageContext) -> None:
    warns: list[str] = []
    with guard("The summary", ctx.path / "audit.json"):
        warns = summary(ctx)
    with guard("The headline numbers", ctx.path / "audit.json"):
        headline_cards(ctx)
    for w in warns:
        st.warning(w, icon=":material/warning:")
    st.space("small")
    left, right = st.columns([1.2, 1], gap="large")
    with left, guard("The weakest classes", ctx.path / "audit.json"):
        worst(ctx)
    with right, guard("The checks", ctx.path):
        checks(ctx)
        explanations(ctx)
    st.divider()
    with guard("The calibration chart", ctx.path / "audit.json"):
        chart(
            charts.reliability(ctx.metrics.get("calibration")),
            "each bar is the accuracy of the images whose confidence fell in that range; bars on the dotted "
            "diagonal mean the stated confidence can be trusted, bars below it mean over-confidence. The "
            "grey bars underneath count the images per range.",
            key="reliability",
        )
    st.markdown("#### What was audited")
    with guard("The version block", ctx.path / "audit.json"):
        version_block(ctx.meta)


if __name__ == "__main__":
    run_page(
        render, "Overview", "What was tested, how well the model does, and what to look at first."
    )
