"""Compare: the release gate of this version against the previous one (comparison.json)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, state, stored
from dashboard.charts import chart
from dashboard.components import (
    empty_state,
    esc,
    guard,
    metric_card,
    right_aligned,
    value_frame,
)
from dashboard.page import PageContext, run_page
from reports.present import charts, fmt
from reports.present.narrative import verdict_detail, verdict_text


def previous_version(ctx: PageContext) -> str | None:
    """The newest other version of this model in the store (for the empty state's command)."""
    cat = data.catalog(str(ctx.store))
    return next((v for v in cat.versions(ctx.info.model) if v != ctx.info.version), None)


def verdict_banner(c: dict[str, Any], doc: dict[str, Any]) -> None:
    word = verdict_text(c["verdict"])
    css = "ma-promote" if c["verdict"] == "promote" else "ma-hold"
    st.markdown(
        f'<div class="ma-verdict {css}">{esc(word[:1].upper() + word[1:])}: {esc(c["version_b"])} '
        f"against {esc(c['version_a'])}</div>",
        unsafe_allow_html=True,
    )
    detail = verdict_detail(doc)  # the banner already says the verdict word
    if detail:
        st.markdown(
            f'<p class="ma-sub" style="margin-top:.6rem">{esc(detail)}</p>', unsafe_allow_html=True
        )


def _tone(low: Any, high: Any) -> str:
    """Green when the interval is above zero, red when below, neutral when it straddles zero."""
    if fmt.is_num(low) and low > 0:
        return "good"
    if fmt.is_num(high) and high < 0:
        return "bad"
    return ""


def _change_card(label: str, d: dict[str, Any], tip: str) -> None:
    note = (
        f"{fmt.pct(d['accuracy_a'])} → {fmt.pct(d['accuracy_b'])} · "
        f"95% CI {fmt.pts_ci(d['ci_low'], d['ci_high'])}"
    )
    metric_card(label, fmt.pts(d["diff"]), note, tip, _tone(d["ci_low"], d["ci_high"]))


def cards(c: dict[str, Any]) -> None:
    cols = st.columns(4)
    with cols[0]:
        _change_card(
            "Accuracy change",
            c["accuracy"],
            "Paired difference on the same images (Newcombe interval).",
        )
    with cols[1]:
        _change_card("Balanced accuracy change", c["balanced"], "Every class weighs the same.")
    with cols[2]:
        p = c["mcnemar_p"]
        metric_card("Images only one version gets right", f"{fmt.count(c['only_b_right'])} vs {fmt.count(c['only_a_right'])}",
                    f"this version vs {c['version_a']}" + (f" · McNemar {fmt.p_equals(p)}" if fmt.is_num(p) else ""),
                    "The images where the two versions disagree decide the paired test.")  # fmt: skip
    with cols[3]:
        tr, lr = c["throughput_ratio"], c["latency_ratio"]
        if fmt.is_num(tr):
            slow = fmt.is_num(lr) and (lr > 1.05 or tr < 0.95)
            metric_card("Throughput vs previous", f"{fmt.num(tr, 2)}×", f"latency {fmt.num(lr, 2)}× (lower is faster)" if fmt.is_num(lr) else None,
                        "Medians of repeated, interleaved timings on one machine.", "warn" if slow else "")  # fmt: skip
        else:
            metric_card(
                "Throughput vs previous", "not measured", "the comparison skipped the speed check"
            )


def reasons(c: dict[str, Any]) -> None:
    """Each stored reason, marked by whether its check failed (the stored checks say which)."""
    st.markdown("#### The checks behind the verdict")
    for text, failed in c["reasons"]:
        icon = ":material/cancel:" if failed else ":material/check_circle:"
        color = "red" if failed else "green"
        st.markdown(f":{color}[{icon}] {esc(text)}", unsafe_allow_html=True)
    for note in c["notes"]:
        st.caption(f"Note: {note}")


#: The per-class table: (title, stored key(s), formatter).
PER_CLASS = [
    ("class", "class", fmt.text),
    ("images", "support", fmt.count),
    ("accuracy A", "recall_a", fmt.pct),
    ("accuracy B", "recall_b", fmt.pct),
    ("B − A", "diff", fmt.pts),
    ("95% CI", ("ci_low", "ci_high"), fmt.pts_ci),
    ("p", "p_value", fmt.p_value),
    ("adjusted p", "p_adjusted", fmt.p_value),
    ("status", "status", lambda s: s or ""),
]


def per_class_table(rows: list[dict[str, Any]]) -> None:
    """comparison.json's per-class rows, worst change first, each value as the exports write it."""
    rows = sorted(rows, key=lambda r: (not fmt.is_num(r.get("diff")), r.get("diff") or 0.0))
    frame = value_frame(rows, PER_CLASS)
    height = "content" if len(frame) <= 12 else 460
    config = right_aligned(PER_CLASS[1:-1])
    st.dataframe(frame, hide_index=True, width="stretch", height=height, column_config=config)
    st.caption("Worst change first. 'regression' = significantly worse after adjusting for testing many classes; "
               "'large drop' = a drop beyond the allowed points; 'watch' = large but not significant (too few images).")  # fmt: skip


def speed_details(doc: dict[str, Any]) -> None:
    speed = stored.speed_details(doc)
    if speed is None:
        return
    with st.expander("Speed measurement details"):
        show = (
            lambda x: fmt.num(x, 2),
            lambda x: fmt.count(round(x)) if fmt.is_num(x) else fmt.NA,
            fmt.count,
        )
        st.dataframe(pd.DataFrame({
            "": ["latency (ms/image)", "throughput (images/s)", "parameters"],
            "A": [f(v) for f, v in zip(show, speed["a"], strict=True)],
            "B": [f(v) for f, v in zip(show, speed["b"], strict=True)],
        }), hide_index=True)  # fmt: skip
        st.caption(f"Device: {fmt.text(speed['device'])}; settings: {speed['settings']}")


def render(ctx: PageContext) -> None:
    b = ctx.bundle
    if b.comparison is None:
        prev = previous_version(ctx)
        a = f"{ctx.info.model}@{prev}" if prev else "<previous run or name@version>"
        empty_state(
            f"No comparison of {ctx.info.model} {ctx.info.version} with a previous version yet",
            f"python -m audits compare {a} {ctx.info.run_id} --store {ctx.store}",
            "The release gate compares two audits on the same frozen held-out set: better overall beyond noise, "
            "no class significantly worse, and no slower.",
        )
        return
    doc = b.comparison.meta
    c = stored.comparison(doc)
    where = b.comparison.path / "comparison.json"
    with guard("The verdict", where):
        verdict_banner(c, doc)
        st.space("small")
        cards(c)
        st.space("small")
    left, right = st.columns([1.25, 1], gap="large")
    with left, guard("The per-class comparison chart", where):
        chart(
            charts.compare_per_class(c["per_class"], ctx.colors, c["version_a"], c["version_b"]),
            "each row is a class: the grey dot is the previous version, the coloured dot this one; a red ring marks a "
            "significant or large drop, a green ring a significant gain. Only the largest changes are shown.",
            key="compare_chart",
        )
    with right, guard("The checks", where):
        reasons(c)
        st.caption(
            f"Paired on {fmt.count(c['n_aligned'])} images of held-out set {c['fingerprint'][:12]}"
            + (f" ({fmt.count(c['n_groups'])} groups)" if c["n_groups"] else "")
            + f" · comparison {b.comparison.run_id}"
        )
        if b.previous is not None and st.button(
            f"Open the audit of {c['version_a']}", icon=":material/open_in_new:"
        ):
            state.choose(b.previous.run_id)
            st.rerun()
    with guard("The per-class table", where):
        st.markdown("#### Every class")
        per_class_table(c["per_class"])
    with guard("The speed block", where):
        speed_details(doc)


if __name__ == "__main__":
    run_page(
        render,
        "Compare",
        "Is this version better than the previous one, beyond noise, without a worse class, and no slower?",
    )
