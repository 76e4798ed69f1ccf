"""Compare: the release gate of this version against the previous one (comparison.json)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, data, state
from dashboard.components import chart, empty_state, esc, guard, metric_card
from dashboard.page import PageContext, get, run_page
from reports.present.narrative import pct


def pts(x: Any) -> str:
    return "n/a" if not isinstance(x, int | float) else f"{100 * x:+.1f} pts"


def previous_version(ctx: PageContext) -> str | None:
    """The newest other version of this model in the store (for the empty state's command)."""
    cat = data.catalog(str(ctx.store))
    return next((v for v in cat.versions(ctx.info.model) if v != ctx.info.version), None)


def verdict_banner(doc: dict[str, Any]) -> None:
    verdict = doc.get("verdict", "?")
    a = get(doc, "run_a", "model", "version", default="A")
    b = get(doc, "run_b", "model", "version", default="B")
    word = (
        "Promote"
        if verdict == "promote"
        else "Hold for human investigation"
        if verdict == "hold"
        else str(verdict)
    )
    css = "ma-promote" if verdict == "promote" else "ma-hold"
    st.markdown(
        f'<div class="ma-verdict {css}">{esc(word)}: {esc(b)} against {esc(a)}</div>',
        unsafe_allow_html=True,
    )
    summary = str(doc.get("summary") or "")
    head, sep, rest = summary.partition(": ")
    if summary:  # the banner already says the verdict word the summary starts with
        text = rest if sep and head in ("promote", "hold") else summary
        st.markdown(
            f'<p class="ma-sub" style="margin-top:.6rem">{esc(text[:1].upper() + text[1:])}</p>',
            unsafe_allow_html=True,
        )


def _tone(diff: Any, low: Any, high: Any) -> str:
    """Green when the interval is above zero, red when below, neutral when it straddles zero."""
    if isinstance(low, int | float) and low > 0:
        return "good"
    if isinstance(high, int | float) and high < 0:
        return "bad"
    return ""


def cards(doc: dict[str, Any]) -> None:
    o = doc.get("overall") or {}
    ba = o.get("balanced_accuracy") or {}
    counts = o.get("counts") or {}
    speed = doc.get("speed") or {}
    a = get(doc, "run_a", "model", "version", default="A")
    cols = st.columns(4)
    with cols[0]:
        metric_card("Accuracy change", pts(o.get("diff")),
                    f"{pct(o.get('accuracy_a'))} → {pct(o.get('accuracy_b'))} · 95% CI {pts(o.get('ci_low'))} to {pts(o.get('ci_high'))}",
                    "Paired difference on the same images (Newcombe interval).", _tone(o.get("diff"), o.get("ci_low"), o.get("ci_high")))  # fmt: skip
    with cols[1]:
        metric_card("Balanced accuracy change", pts(ba.get("diff")),
                    f"{pct(ba.get('balanced_accuracy_a'))} → {pct(ba.get('balanced_accuracy_b'))} · 95% CI {pts(ba.get('ci_low'))} to {pts(ba.get('ci_high'))}",
                    "Every class weighs the same.", _tone(ba.get("diff"), ba.get("ci_low"), ba.get("ci_high")))  # fmt: skip
    with cols[2]:
        p = get(o, "mcnemar", "p_value")
        metric_card("Images only one version gets right", f"{counts.get('only_b_right', 'n/a')} vs {counts.get('only_a_right', 'n/a')}",
                    f"this version vs {a} · McNemar p {p:.3g}" if isinstance(p, int | float) else f"this version vs {a}",
                    "The images where the two versions disagree decide the paired test.")  # fmt: skip
    with cols[3]:
        tr, lr = speed.get("throughput_ratio"), speed.get("latency_ratio")
        if isinstance(tr, int | float):
            slow = isinstance(lr, int | float) and (lr > 1.05 or tr < 0.95)
            metric_card("Throughput vs previous", f"{tr:.2f}×", f"latency {lr:.2f}× (lower is faster)" if isinstance(lr, int | float) else None,
                        "Medians of repeated, interleaved timings on one machine.", "warn" if slow else "")  # fmt: skip
        else:
            metric_card(
                "Throughput vs previous", "not measured", "the comparison skipped the speed check"
            )


def reasons(doc: dict[str, Any]) -> None:
    st.markdown("#### The checks behind the verdict")
    summary = str(doc.get("summary") or "")
    hold = doc.get("verdict") == "hold"
    for r in doc.get("reasons") or []:
        failed = hold and str(r) in summary.partition(":")[2]
        icon = ":material/cancel:" if failed else ":material/check_circle:"
        color = "red" if failed else "green"
        st.markdown(f":{color}[{icon}] {esc(r)}", unsafe_allow_html=True)
    for note in doc.get("notes") or []:
        st.caption(f"Note: {note}")


def per_class_table(rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame.from_records(rows)
    want = [
        "class",
        "support",
        "recall_a",
        "recall_b",
        "diff",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
        "status",
    ]
    frame = frame[[c for c in want if c in frame.columns]]
    if "diff" in frame.columns:
        frame = frame.sort_values("diff", na_position="last")
    if "status" in frame.columns:
        frame["status"] = frame["status"].fillna("")
    num = st.column_config.NumberColumn
    st.dataframe(frame, hide_index=True, width="stretch", height="content" if len(frame) <= 12 else 460, column_config={
        "support": num("images"), "recall_a": num("accuracy A", format="percent"), "recall_b": num("accuracy B", format="percent"),
        "diff": num("B − A", format="percent"), "ci_low": num("95% CI low", format="percent"), "ci_high": num("95% CI high", format="percent"),
        "p_value": num("p", format="%.3g"), "p_adjusted": num("adjusted p", format="%.3g"), "status": "status",
    })  # fmt: skip
    st.caption("Worst change first. 'regression' = significantly worse after adjusting for testing many classes; "
               "'large drop' = a drop beyond the allowed points; 'watch' = large but not significant (too few images).")  # fmt: skip


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
    where = b.comparison.path / "comparison.json"
    with guard("The verdict", where):
        verdict_banner(doc)
        st.space("small")
        cards(doc)
        st.space("small")
    left, right = st.columns([1.25, 1], gap="large")
    with left, guard("The per-class comparison chart", where):
        chart(
            charts.compare_per_class(
                doc.get("per_class") or [],
                ctx.colors,
                str(get(doc, "run_a", "model", "version", default="A")),
                str(get(doc, "run_b", "model", "version", default="B")),
            ),  # fmt: skip
            "each row is a class: the grey dot is the previous version, the coloured dot this one; a red ring marks a "
            "significant or large drop, a green ring a significant gain. Only the largest changes are shown.",
            key="compare_chart",
        )
    with right, guard("The checks", where):
        reasons(doc)
        ds = doc.get("dataset") or {}
        st.caption(
            f"Paired on {ds.get('n_aligned', 'n/a')} images of held-out set {str(ds.get('fingerprint') or '')[:12]}"
            + (f" ({ds['n_groups']} groups)" if ds.get("n_groups") else "")
            + f" · comparison {b.comparison.run_id}"
        )
        if b.previous is not None and st.button(
            f"Open the audit of {get(doc, 'run_a', 'model', 'version', default='A')}",
            icon=":material/open_in_new:",
        ):
            state.choose(b.previous.run_id)
            st.rerun()
    with guard("The per-class table", where):
        st.markdown("#### Every class")
        per_class_table(doc.get("per_class") or [])
    speed = doc.get("speed")
    if speed:
        with guard("The speed block", where), st.expander("Speed measurement details"):
            sa, sb = speed.get("a") or {}, speed.get("b") or {}
            st.dataframe(pd.DataFrame({
                "": ["latency (ms/image)", "throughput (images/s)", "parameters"],
                "A": [sa.get("latency_ms"), sa.get("throughput"), sa.get("params")],
                "B": [sb.get("latency_ms"), sb.get("throughput"), sb.get("params")],
            }), hide_index=True)  # fmt: skip
            st.caption(
                f"Device: {get(speed, 'device', 'name', default='n/a')}; settings: {speed.get('settings') or {}}"
            )


if __name__ == "__main__":
    run_page(
        render,
        "Compare",
        "Is this version better than the previous one, beyond noise, without a worse class, and no slower?",
    )
