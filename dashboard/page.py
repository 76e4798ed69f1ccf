"""The frame every page runs in: the selected run, its colours, and an error guard."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import streamlit as st

from audits.errors import AuditError
from audits.related import RunBundle
from audits.runs import AuditRecord
from audits.runs.models_audit import Metrics
from audits.store import Run
from dashboard import data, state, stored
from dashboard.catalog import RunInfo
from dashboard.components import code, empty_state, esc, footer, guard, header
from reports.present import fmt
from reports.present.palette import class_colors

log = logging.getLogger("dashboard")

AUDIT_HINT = "python -m audits run --model fixtures/models/car-variants/1.1.0 --data fixtures/data/heldout/manifest.csv"


@dataclass
class PageContext:
    """What a page renders: the selected audit run and lazily its related runs."""

    store: Path
    info: RunInfo
    run: Run
    _extra: dict[str, Any] = field(default_factory=dict)

    @property
    def audit(self) -> AuditRecord:
        """audit.json, typed; an invalid one raises AuditError naming the file."""
        return self.run.audit

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def metrics(self) -> Metrics:
        return self.audit.metrics

    @property
    def record_file(self) -> Path:
        """audit.json (error messages name it)."""
        return self.run.record_file

    @cached_property
    def classes(self) -> list[str]:
        """The model's class order (colours and matrix axes follow it)."""
        return stored.class_names(self.audit)

    @cached_property
    def colors(self) -> dict[str, str]:
        return class_colors(self.classes)

    @cached_property
    def bundle(self) -> RunBundle:
        return data.related(self.path)

    def table(self) -> Any:
        return data.table(self.path)

    def view(self) -> Any:
        """The predictions table without the top-k lists, hashes and sizes (``data.view``)."""
        return data.view(self.path)

    @property
    def title_suffix(self) -> str:
        return f"{self.info.model} {self.info.version}"


def context_line(info: RunInfo, run: Run | None) -> str:
    """'car-variants 1.1.0 · audited 2026-11-23 16:25 UTC · 1,200 held-out images · run …' (HTML)."""
    try:
        n = run.audit.dataset.n_images if run is not None else None
    except AuditError:  # the page below says what is wrong with the run
        n = None
    images = f" · {fmt.count(n)} held-out images" if n is not None else ""
    when = (
        info.created.replace("T", " ").rstrip("Z")[:16] + " UTC" if info.created else "unknown date"
    )
    return (
        f"<b>{esc(info.model)} {esc(info.version)}</b> · audited {esc(when)}{images} · run "
        f"{code(info.run_id.rsplit('-', 1)[-1])}"
    )


def run_page(
    render: Callable[[PageContext], None], title: str, subtitle: str | None = None
) -> None:
    """Render a page for the selected run; an empty store or a failure becomes a clear message."""
    sel = state.current()
    page = title.split()[0].lower()
    if sel.run is None:
        header(title, subtitle)
        empty_state(
            f"No audit runs in `{sel.store}` yet",
            AUDIT_HINT + f" --store {sel.store}",
            f"Audit a model on a held-out set to fill the store (below), build the bundled demo with "
            f"`python -m audits demo --store {sel.store}`, or point the dashboard at another store: "
            "`AUDIT_STORE=path streamlit run streamlit_app.py`.",
        )
        footer(page, f"Store {sel.store} · empty")
        return
    try:
        run = data.run(sel.run.path)
    except Exception as exc:  # the folder vanished or broke since the catalog was read
        log.warning("run %s: %s", sel.run.path, exc)
        run = None
    header(title, subtitle, context_line(sel.run, run))
    if sel.note:
        st.warning(sel.note)
    if run is None:
        st.error(
            f"The run folder `{sel.run.path}` can no longer be read; pick another run in the sidebar."
        )
    else:
        with guard(f"The {title} page for run {sel.run.run_id}", sel.run.path):
            render(PageContext(store=sel.store, info=sel.run, run=run))
    footer(
        page,
        f"Run {sel.run.run_id} · store {sel.store} · read-only: numbers come from the stored run, nothing is recomputed",
    )
