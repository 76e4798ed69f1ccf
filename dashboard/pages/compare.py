"""Compare: the release gate of this version against the previous one (comparison.json)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from audits.runs import ComparisonRecord
from audits.runs.models_comparison import ClassComparison, Speed
from dashboard import data, state, what_changed_view
from dashboard.charts import chart
from dashboard.components import (
    empty_state,
    esc,
    guard,
    metric_card,
    right_aligned,
    value_frame,
)
from dashboard.markdown import md_escape
from dashboard.neighbours import superseded_banner
from dashboard.page import PageContext, run_page
from reports.present import charts, fmt, neighbours
from reports.present.narrative import verdict_detail, verdict_text


def compare_command(ctx: PageContext) -> str:
    """The empty state's command, the older run first (``compare OLD NEW``)."""
    cat = data.catalog(str(ctx.store))
    found = neighbours.compare_args(
        ctx.info.model, ctx.info.version, ctx.info.run_id, cat.versions(ctx.info.model)
    )
    a, b = found or ("<previous run or name@version>", ctx.info.run_id)
    return f"python -m audits compare {a} {b} --store {ctx.store}"


def verdict_banner(c: ComparisonRecord) -> None:
    word = verdict_text(c.verdict)
    css = "ma-promote" if c.promote else "ma-hold"
    version_a, version_b = versions(c)
    st.markdown(
        f'<div class="ma-verdict {css}">{esc(word[:1].upper() + word[1:])}: {esc(version_b)} '
        f"against {esc(version_a)}</div>",
        unsafe_allow_html=True,
    )
    detail = verdict_detail(c)  # the banner already says the verdict word
    if detail:
        st.markdown(
            f'<p class="ma-sub" style="margin-top:.6rem">{esc(detail)}</p>', unsafe_allow_html=True
        )


def versions(c: ComparisonRecord) -> tuple[str, str]:
    """The versions of the two compared runs ('A' and 'B' when not recorded)."""
    return c.run_a.model.version or "A", c.run_b.model.version or "B"


def _tone(low: float | None, high: float | None) -> str:
    """Green when the interval is above zero, red when below, neutral when it straddles zero."""
    if fmt.is_num(low) and low > 0:
        return "good"
    if fmt.is_num(high) and high < 0:
        return "bad"
    return ""


def _change_card(label: str, a: float | None, b: float | None, d: Any, tip: str) -> None:
    """A paired difference B - A (``d``: diff, ci_low, ci_high) between two accuracies."""
    note = f"{fmt.pct(a)} → {fmt.pct(b)} · 95% CI {fmt.pts_ci(d.ci_low, d.ci_high)}"
    metric_card(label, fmt.pts(d.diff), note, tip, _tone(d.ci_low, d.ci_high))


def cards(c: ComparisonRecord) -> None:
    overall, balanced, speed = c.overall, c.overall.balanced_accuracy, c.speed
    cols = st.columns(4)
    with cols[0]:
        _change_card(
            "Accuracy change",
            overall.accuracy_a,
            overall.accuracy_b,
            overall,
            "Paired difference on the same images (Newcombe interval).",
        )
    with cols[1]:
        _change_card(
            "Balanced accuracy change",
            balanced.balanced_accuracy_a,
            balanced.balanced_accuracy_b,
            balanced,
            "Every class weighs the same.",
        )
    with cols[2]:
        p, counts = overall.mcnemar.p_value, overall.counts
        metric_card(
            "Images only one version gets right",
            f"{fmt.count(counts.only_b_right)} vs {fmt.count(counts.only_a_right)}",
            "{1} vs {0}".format(*versions(c))
            + (f" · McNemar {fmt.p_equals(p)}" if fmt.is_num(p) else ""),
            "The images where the two versions disagree decide the paired test.",
        )
    with cols[3]:
        if speed is not None:
            tr, lr = speed.throughput_ratio, speed.latency_ratio
            slow = lr > 1.05 or tr < 0.95
            metric_card(
                "Throughput, {1} vs {0}".format(*versions(c)),
                f"{fmt.num(tr, 2)}×",
                f"latency {fmt.num(lr, 2)}× (lower is faster)",
                "Medians of repeated, interleaved timings on one machine.",
                "warn" if slow else "",
            )
        else:
            metric_card(
                "Throughput, {1} vs {0}".format(*versions(c)),
                "not measured",
                "the comparison skipped the speed check",
            )


def reasons(c: ComparisonRecord) -> None:
    """Each stored reason, marked by whether its check failed (the stored checks say which)."""
    st.markdown("#### The checks behind the verdict")
    for text, failed in c.reason_rows:
        icon = ":material/cancel:" if failed else ":material/check_circle:"
        color = "red" if failed else "green"
        st.markdown(f":{color}[{icon}] {md_escape(text)}", unsafe_allow_html=True)
    for note in c.notes:
        st.caption(f"Note: {md_escape(note)}")


#: The per-class table: (title, field(s) of ClassComparison, formatter).
PER_CLASS = [
    ("class", "class_", fmt.text),
    ("images", "support", fmt.count),
    ("accuracy A", "recall_a", fmt.pct),
    ("accuracy B", "recall_b", fmt.pct),
    ("B − A", "diff", fmt.pts),
    ("95% CI", ("ci_low", "ci_high"), fmt.pts_ci),
    ("p", "p_value", fmt.p_value),
    ("adjusted p", "p_adjusted", fmt.p_value),
    ("status", "status", lambda s: s or ""),
]


def per_class_table(rows: list[ClassComparison]) -> None:
    """comparison.json's per-class rows, worst change first, each value as the exports write it."""
    rows = sorted(rows, key=lambda r: (r.diff is None, r.diff or 0.0))
    frame = value_frame(rows, PER_CLASS)
    height = "content" if len(frame) <= 12 else 460
    config = right_aligned(PER_CLASS[1:-1])
    st.dataframe(frame, hide_index=True, width="stretch", height=height, column_config=config)
    st.caption(
        "Worst change first. 'regression' = significantly worse after adjusting for testing many classes; "
        "'large drop' = a drop beyond the allowed points; 'watch' = large but not significant (too few images)."
    )


def speed_details(speed: Speed | None) -> None:
    if speed is None:
        return
    with st.expander("Speed measurement details"):
        sides = {
            name: [
                fmt.num(side.latency_ms, 2),
                fmt.count(round(side.throughput)),
                fmt.count(side.params),
            ]
            for name, side in (("A", speed.a), ("B", speed.b))
        }
        st.dataframe(
            pd.DataFrame(
                {
                    "": ["latency (ms/image)", "throughput (images/s)", "parameters"],
                    **sides,
                }
            ),
            hide_index=True,
        )
        device = speed.device.name if speed.device is not None else None
        st.caption(
            f"Device: {md_escape(fmt.text(device))}; settings: {md_escape(speed.settings or {})}"
        )


def render(ctx: PageContext) -> None:
    b = ctx.bundle
    superseded_banner(b)  # an older version: the newer one compared with it, and the verdict
    # This version as the candidate (B) first; else as the baseline (A) of a newer version.
    shown, other = (
        (b.comparison, b.previous) if b.comparison is not None else (b.successor, b.newer)
    )
    if shown is None:
        empty_state(
            f"No comparison of {ctx.info.model} {ctx.info.version} with another version yet",
            compare_command(ctx),
            "The release gate compares two audits on the same frozen held-out set: better overall beyond noise, "
            "no class significantly worse, and no slower.",
        )
        return
    c = shown.comparison  # an invalid comparison.json raises: the page's guard names it
    where = shown.record_file
    with guard("The verdict", where):
        verdict_banner(c)
        st.space("small")
        cards(c)
        st.space("small")
    left, right = st.columns([1.25, 1], gap="large")
    with left, guard("The per-class comparison chart", where):
        chart(
            charts.compare_per_class(c.per_class, ctx.colors, *versions(c)),
            "each row is a class: the grey dot is {}, the coloured dot {}; a red ring marks a ".format(
                *versions(c)
            )
            + "significant or large drop, a green ring a significant gain. Only the largest changes are shown.",
            key="compare_chart",
        )
    with right, guard("The checks", where):
        reasons(c)
        paired = c.dataset
        fingerprint = (paired.fingerprint or "")[:12]
        st.caption(
            f"Paired on {fmt.count(paired.n_aligned)} images of held-out set {fingerprint}"
            + (f" ({fmt.count(paired.n_groups)} groups)" if paired.n_groups else "")
            + f" · comparison {shown.run_id}"
        )
        other_version = versions(c)[0 if shown is b.comparison else 1]
        if other is not None and st.button(
            f"Open the audit of {other_version}", icon=":material/open_in_new:"
        ):
            state.choose(other.run_id)
            st.rerun()
    with guard("The per-class table", where):
        st.markdown("#### Every class")
        per_class_table(c.per_class)
    with guard("The changed images", shown.path):
        # This run is B when it is the candidate, A when a newer version was compared with it.
        runs = (other, ctx.run) if shown is b.comparison else (ctx.run, other)
        what_changed_view.render(shown, c, runs, versions(c), ctx.store)
    with guard("The speed block", where):
        speed_details(c.speed)


if __name__ == "__main__":
    run_page(
        render,
        "Compare",
        "Is this version better than the previous one, beyond noise, without a worse class, and no slower?",
    )
