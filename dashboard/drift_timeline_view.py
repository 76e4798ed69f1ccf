"""Drift page: every drift run of the model against this held-out set, as a timeline.

The points are ``audits.drift.timeline`` over the stored drift records; clicking one (or
picking it in the list) opens that drift run on the page, and selects its version's audit
when the drift run is of another version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from audits.drift.timeline import Timeline, TimelinePoint, drift_timeline
from audits.drift.timeline import when as batch_time
from audits.errors import AuditError
from audits.store import list_runs
from dashboard import data, state
from dashboard.catalog import signature
from dashboard.charts import chart
from dashboard.markdown import md_escape
from reports.present import fmt
from reports.present.charts.drift_timeline import drift_timeline as timeline_figure

#: Session key: the drift run chosen on the timeline (run id).
CHOSEN_KEY = "drift_timeline_run"


@st.cache_resource(show_spinner=False, max_entries=8)
def _timeline(store: str, sig: tuple, model: str, fingerprint: str) -> Timeline:
    return drift_timeline(list_runs(store, kind="drift"), model, fingerprint)


def timeline(store: Path, model: str, fingerprint: str) -> Timeline:
    """The model's drift runs against ``fingerprint``, rescanned when the store changes."""
    return _timeline(str(store), signature(store), model, fingerprint)


def _reference(store: Path, run_id: str | None) -> str | None:
    """The reference fingerprint of drift run ``run_id`` (None when unknown or damaged)."""
    info = data.catalog(str(store)).get(run_id) if run_id else None
    if info is None or info.kind != "drift":
        return None
    try:
        return data.run(info.path).drift.reference.fingerprint
    except AuditError:  # a damaged drift.json: the page's guard names it where it is shown
        return None


def resolve(
    store: Path, model: str, version: str, audit_fingerprint: str, latest: str | None
) -> tuple[str, str | None]:
    """(the timeline's reference fingerprint, the drift run of ``version`` to show).

    The reference is the first of: the run picked on the timeline, this audit's held-out set,
    the version's latest drift run (``latest``; an audit on a relabelled child set has its
    batches checked against the parent) that has a drift run of ``version``. The run shown is
    the picked one when it is of ``version``, else ``latest``, else the newest of ``version``.
    """
    chosen = st.session_state.get(CHOSEN_KEY)
    for fingerprint in (_reference(store, chosen), audit_fingerprint, _reference(store, latest)):
        if not fingerprint:
            continue
        ids = [p.run_id for p in timeline(store, model, fingerprint).points if p.version == version]
        if ids:
            shown = chosen if chosen in ids else latest if latest in ids else ids[-1]
            return fingerprint, shown
    return audit_fingerprint, latest


def _open(store: Path, model: str, p: TimelinePoint, current_version: str) -> None:
    """Show drift run ``p``; switch to its version's newest audit when it is another version."""
    st.session_state[CHOSEN_KEY] = p.run_id
    if p.version != current_version:
        audits = data.catalog(str(store)).runs_of(model, p.version)
        if audits:
            state.choose(audits[0].run_id)


def _clicked(event: Any) -> str | None:
    """The drift run id of the clicked marker, if any."""
    selection = (
        event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    )
    pts = (
        selection.get("points")
        if isinstance(selection, dict)
        else getattr(selection, "points", None)
    ) or []
    for pt in pts:
        cd = pt.get("customdata") if isinstance(pt, dict) else None
        if isinstance(cd, list | tuple):
            cd = cd[0] if cd else None
        if isinstance(cd, str):
            return cd
    return None


def _table(points: list[TimelinePoint]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "batch taken": [p.batch_date or "not given" for p in points],
            "checked": [p.created.replace("T", " ").rstrip("Z") for p in points],
            "version": [p.version for p in points],
            "batch": [p.batch for p in points],
            "images": [fmt.count(p.n_images) for p in points],
            "drift": ["drift" if p.drift else "no drift" for p in points],
            "MMD²": [fmt.num(p.mmd2, 4) for p in points],
            "MMD p": [fmt.p_value(p.mmd_p) for p in points],
            "prediction shift p": [fmt.p_value(p.prediction_p) for p in points],
            "properties drifted": [", ".join(p.drifted) or "none" for p in points],
            "accuracy": [
                f"{fmt.pct(p.accuracy)} ({fmt.ci(p.accuracy_low, p.accuracy_high)})"
                if p.accuracy is not None
                else "not labelled"
                for p in points
            ],
        }
    )


def render(
    store: Path, model: str, version: str, fingerprint: str, shown: str | None, alpha: float
) -> None:
    """The timeline chart, its table and the picker that opens a drift run."""
    found = timeline(store, model, fingerprint)
    points = found.points
    st.markdown("#### Drift over time")
    for run_id, reason in found.skipped:
        st.caption(f"Left out: drift run {md_escape(run_id)} cannot be read ({md_escape(reason)}).")
    if not points:
        return
    if len(points) < 2:
        st.caption(
            f"One drift run of {md_escape(model)} against this held-out set so far; check more production "
            "batches against the same reference and they line up here, oldest first."
        )
        return
    by_id = {p.run_id: p for p in points}

    # Callbacks, so that only a new click or pick opens a run (a stale selection never does).
    def on_click() -> None:
        hit = by_id.get(_clicked(st.session_state.get("drift_timeline_chart")))
        if hit is not None:
            _open(store, model, hit, version)

    labels = {
        f"{p.version} · {p.batch} · {batch_time(p)} · {p.run_id.rsplit('-', 1)[-1]}": p
        for p in points
    }

    def on_pick() -> None:
        hit = labels.get(st.session_state.get("drift_timeline_pick"))
        if hit is not None:
            _open(store, model, hit, version)

    chart(
        timeline_figure(points, alpha),
        "one column per production batch checked against this held-out set, oldest batch first (its "
        "--batch-date, else when it was checked). Red markers "
        "drifted; in the middle panel a point below the dotted line is a significant shift. Click a point "
        "to open its drift run.",
        key="drift_timeline_chart",
        on_select=on_click,
        selection_mode="points",
    )
    st.dataframe(_table(points), hide_index=True, width="stretch")
    current = next((label for label, p in labels.items() if p.run_id == shown), None)
    if current is not None:
        st.session_state["drift_timeline_pick"] = current  # the picker names the run shown
    st.selectbox("Open a drift run", list(labels), key="drift_timeline_pick", on_change=on_pick)
