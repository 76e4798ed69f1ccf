"""History: every audited version of the selected model's family, on one frozen set and its
corrected descendants: the headline metric with its interval, per-class recall over versions,
the release-gate verdicts between consecutive versions, and any two versions opened in Compare.

Read through the light listing (``audits.history_records``: the JSON records only) and cached
on the store's top-level signature, so a warm page at 500 runs only draws.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from audits.errors import AuditError
from audits.history import History, build_history, newest_comparison
from audits.history_records import StoreRecords, read_records
from dashboard import state
from dashboard.catalog import signature
from dashboard.charts import chart
from dashboard.components import empty_state, guard
from dashboard.markdown import md_code, md_escape
from dashboard.page import PageContext, run_page
from reports.present import fmt, history_charts
from reports.present.palette import BAD_BG, BAD_TEXT, GOOD_BG, GOOD_TEXT

METRICS = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "macro_f1": "Macro F1",
    "ece": "Calibration error (ECE)",
}
ORDERS = {"variance": "most variable first", "worst": "worst recall first", "name": "by name"}


@st.cache_resource(show_spinner=False, max_entries=4)
def _records(store: str, sig: tuple) -> StoreRecords:
    return read_records(store)


@st.cache_data(show_spinner=False, max_entries=32)
def _history(
    store: str, sig: tuple, family: str, metric: str, set_prefix: str | None, order: str
) -> History:
    found = _records(store, sig)
    return build_history(found.audits, found.comparisons, family, metric, set_prefix, order, store)


def _gate_frame(h: History) -> pd.DataFrame:
    """One row per version: its stored metric and interval and the gate from the one before."""
    rows = []
    for r in h.rows:
        gate = r.gate
        rows.append(
            {
                "version": r.version,
                "set": r.set_label,
                "date": r.created[:10],
                METRICS[h.metric]: fmt.num(r.value, 3) if h.metric == "ece" else fmt.pct(r.value),
                "95% CI": fmt.ci(r.ci_low, r.ci_high) if r.ci_low is not None else "",
                "images": fmt.count(r.n_images),
                "runs": r.n_runs,
                "gate": "" if gate is None else (gate.verdict or "not compared"),
                "why": "" if gate is None else (gate.reason if gate.verdict else gate.command),
            }
        )
    return pd.DataFrame(rows)


def _verdict_style(value: str) -> str:
    if value == "promote":
        return f"background-color: {GOOD_BG}; color: {GOOD_TEXT}; font-weight: 600"
    if value == "hold":
        return f"background-color: {BAD_BG}; color: {BAD_TEXT}; font-weight: 600"
    return ""


def _gate_table(h: History) -> None:
    frame = _gate_frame(h)
    styled = frame.style.map(_verdict_style, subset=["gate"])
    height = "content" if len(frame) <= 14 else 420
    st.dataframe(styled, hide_index=True, width="stretch", height=height)
    compared = sum(1 for r in h.rows if r.gate is not None and r.gate.verdict is not None)
    st.caption(
        f"{fmt.count(compared)} of {fmt.count(max(0, len(h.rows) - 1))} consecutive pairs have a "
        "stored comparison; 'why' is its first failed check (hold) or its overall result "
        "(promote), else the command that runs it."
    )


def _labels(h: History) -> list[str]:
    """'1.2.0 · v1 · 2026-01-05' per row (selectboxes show options as plain text)."""
    return [f"{r.version} · {r.set_label} · {r.created[:10]}" for r in h.rows]


def _open_pair(h: History, store: Path, found: StoreRecords) -> None:
    """Two versions → open their stored comparison in Compare, or the command that makes one."""
    labels = _labels(h)
    if len(labels) < 2:
        return
    left, right = st.columns(2)
    a = left.selectbox("Version A (baseline)", range(len(labels)), index=len(labels) - 2,
                       format_func=labels.__getitem__, key="history_a")  # fmt: skip
    b = right.selectbox("Version B (candidate)", range(len(labels)), index=len(labels) - 1,
                        format_func=labels.__getitem__, key="history_b")  # fmt: skip
    ra, rb = h.rows[a], h.rows[b]
    if a == b:
        st.caption("Pick two different versions.")
        return
    pair = newest_comparison(found.comparisons, rb.run_id, ra.run_id)
    shown = newest_comparison(found.comparisons, rb.run_id)
    across = " --across-corrections" if ra.fingerprint != rb.fingerprint else ""
    command = f"python -m audits compare {ra.run_id} {rb.run_id} --store {store}{across}"
    if pair is not None and shown is pair:
        st.markdown(f"Stored comparison: **{md_escape(pair.verdict)}** ({md_code(pair.run_id)}).")
        if st.button("Open in Compare", icon=":material/compare_arrows:", key="history_open"):
            state.choose(rb.run_id)
            st.switch_page("dashboard/pages/compare.py")
        return
    if pair is not None:
        st.markdown(
            f"A comparison of this pair is stored ({md_code(pair.run_id)}), but Compare shows "
            f"{md_escape(rb.version)}'s newest one, against another version. Run it again to make "
            "it the newest:"
        )
    else:
        st.markdown("No stored comparison of these two runs. Run the release gate:")
    st.code(command, language="bash", wrap_lines=True)


def render(ctx: PageContext) -> None:
    store = ctx.store
    family = ctx.info.model
    sig = signature(Path(store))
    c1, c2, c3 = st.columns([1.2, 1, 1.4])
    metric = c1.selectbox("Headline metric", list(METRICS), format_func=METRICS.get,
                          key="history_metric")  # fmt: skip
    order = c2.radio("Order", ("version", "time"), horizontal=True, key="history_order",
                     help="Semantic version (time when a version string is not one) or audit time.")  # fmt: skip
    found = _records(str(store), sig)
    for bad in found.damaged:  # the sidebar lists damaged folders too; one line each here
        st.caption(f"Skipped {md_code(bad.path.name)}: {md_escape(bad.reason)}")
    try:
        h = _history(str(store), sig, family, metric, st.session_state.get("history_set"), order)
    except AuditError:  # the remembered set belongs to another family: show this one's default
        st.session_state.pop("history_set", None)
        h = _history(str(store), sig, family, metric, None, order)
    sets = [h.root, *h.other_sets]
    if len(sets) > 1:
        c3.selectbox("Held-out set", [s.fingerprint for s in sets], key="history_set",
                     format_func=lambda fp: f"{fp[:12]} ({next(s.n_runs for s in sets if s.fingerprint == fp)} runs)")  # fmt: skip
    for note in h.notes:
        st.caption(f"Note: {md_escape(note)}")
    if not h.rows:
        empty_state(f"No audited versions of {family}", None)
        return
    st.markdown(
        f"**{md_escape(family)}**: {fmt.count(len(h.rows))} version(s) on held-out set "
        f"{md_code(h.root.fingerprint[:12])} and its corrected versions"
    )
    with guard("The metric over versions"):
        chart(
            history_charts.metric_over_versions(h),
            "each point is a version's newest audit; the band is the stored 95% interval "
            "(Wilson, accuracy only).",
            key="history_metric_chart",
        )
    with guard("The per-class recall heatmap"):
        st.markdown("#### Per-class recall over versions")
        n_classes = len(h.classes)
        k1, k2 = st.columns([1, 2])
        by = k1.selectbox("Classes", list(ORDERS), format_func=ORDERS.get, key="history_by")
        limit = (
            k2.slider("Classes shown", 5, n_classes, min(40, n_classes), key="history_limit")
            if n_classes > 5
            else n_classes
        )
        chart(
            history_charts.recall_heatmap(h, by, limit),
            f"rows are classes ({fmt.count(limit)} of {fmt.count(n_classes)}, {ORDERS[by]}), "
            "columns versions; red is low recall, green high.",
            key="history_heatmap",
        )
    with guard("The release gates"):
        st.markdown("#### Release gate between consecutive versions")
        _gate_table(h)
    with guard("Open two versions in Compare"):
        st.markdown("#### Compare any two versions")
        _open_pair(h, store, found)


if __name__ == "__main__":
    run_page(
        render,
        "History",
        "How has this model family changed over its versions, on the same held-out set?",
    )
