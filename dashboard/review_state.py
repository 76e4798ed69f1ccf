"""The Review page's state: the queue choices of a run, the queue being walked, and deciding.

The queue is computed by ``audits.review_queue`` from the stored run (cached per run and
choice); the walk (which item, what was decided here) lives in ``st.session_state``. Every
decision is appended at once to the corrections file beside the frozen set
(``audits.corrections.append_decisions``); nothing is ever rewritten, so "undo" shows the image
again and the next decision on it supersedes the last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from audits.corrections import append_decisions
from audits.review_queue import (
    QueueSpec,
    decided_mask,
    decision,
    decisions_in_force,
    queue_for_run,
)
from audits.runs import AuditRecord
from dashboard import data, stored
from dashboard.page import PageContext

KEY = "rv_walk"


@dataclass(frozen=True)
class QueueChoice:
    """One entry of the queue picker."""

    label: str
    spec: QueueSpec


def choices(ctx: PageContext) -> list[QueueChoice]:
    """Suspect labels, least confident, each failure pattern, each confused pair (most images
    first), and a free filter."""
    out: list[QueueChoice] = []
    integrity = stored.integrity(ctx.run)
    block = stored.suspect_block(integrity)
    if block is not None:
        out.append(QueueChoice(f"Suspect labels ({block.n_flagged})", QueueSpec("suspects")))
    out.append(QueueChoice("Least confident in the given label", QueueSpec("least-confident")))
    patterns = getattr(getattr(integrity, "failure_patterns", None), "patterns", None) or []
    for p in patterns:
        what = f"{p.label} → {p.predicted}" if p.predicted else p.label
        if p.slice:
            what += f", {p.slice}"
        out.append(
            QueueChoice(
                f"Failure pattern {p.rank}: {what} ({len(p.rows)})",
                QueueSpec("pattern", pattern=p.rank),
            )
        )
    for true, pred, n in confused_pairs(ctx.audit):
        out.append(
            QueueChoice(f"{true} → {pred} ({n})", QueueSpec("pair", true=(true,), pred=(pred,)))
        )
    out.append(QueueChoice("Filter: class, slice, right or wrong", QueueSpec("filter")))
    return out


def confused_pairs(audit: AuditRecord) -> list[tuple[str, str, int]]:
    """(true, predicted, count) of every off-diagonal cell of the stored confusion matrix."""
    labels = list(audit.metrics.confusion.labels)
    cm = np.asarray(audit.metrics.confusion.matrix)
    cells = [
        (labels[i], labels[j], int(cm[i, j]))
        for i in range(len(labels))
        for j in range(len(labels))
        if i != j and cm[i, j] > 0
    ]
    return sorted(cells, key=lambda c: (-c[2], c[0], c[1]))


@st.cache_data(show_spinner=False, max_entries=32)
def _queue(path: str, stamp: int, spec: QueueSpec) -> pd.DataFrame:
    return queue_for_run(data.run(Path(path)), spec)


def queue(ctx: PageContext, spec: QueueSpec) -> pd.DataFrame:
    """The run's queue for ``spec`` (every candidate, decided or not)."""
    return _queue(str(ctx.path), data.mtime(ctx.path), spec)


@st.cache_data(show_spinner=False, max_entries=16)
def _in_force(file: str, stamp: int) -> pd.DataFrame:
    return decisions_in_force(Path(file))


def in_force(file: Path) -> pd.DataFrame:
    """The decision in force per image, re-read only when the corrections file changes."""
    return _in_force(str(file), data.mtime(file))


@dataclass
class Walk:
    """A queue being reviewed in this session: its items, where we are, what we decided."""

    ident: tuple
    items: list[dict[str, Any]]
    pos: int = 0
    page: int = 0
    history: list[int] | None = None  # positions decided here, last last

    @property
    def current(self) -> dict[str, Any] | None:
        return self.items[self.pos] if 0 <= self.pos < len(self.items) else None


def walk(ident: tuple, candidates: pd.DataFrame, file: Path, show_decided: bool) -> Walk:
    """The session's walk over this queue; started afresh when the queue or toggle changes.

    Decided images are left out when the walk starts (unless ``show_decided``), and stay in
    it once it has started, so that back and undo can show them again."""
    current = st.session_state.get(KEY)
    if isinstance(current, Walk) and current.ident == ident:
        return current
    items = candidates
    if not show_decided:
        items = candidates[~decided_mask(candidates, in_force(file))]
    new = Walk(ident=ident, items=items.to_dict("records"), history=[])
    st.session_state[KEY] = new
    return new


def n_reviewed(w: Walk, file: Path) -> int:
    """Items of the walk with a decision in force for their exact file."""
    if not w.items:
        return 0
    frame = pd.DataFrame(
        {"path": [i["path"] for i in w.items], "sha256": [i["sha256"] for i in w.items]}
    )
    return int(decided_mask(frame, in_force(file)).sum())


def decide(
    w: Walk, file: Path, verdict: str, reviewer: str, new_label: str = "", reason: str = ""
) -> None:
    """Append the current item's decision and move to the next item."""
    item = w.current
    if item is None:
        return
    append_decisions(file, [decision(item, verdict, reviewer, new_label=new_label, reason=reason)])
    w.history = [*(w.history or []), w.pos]
    w.pos += 1


def decide_page(
    items: list[dict[str, Any]],
    not_class: set[int],
    file: Path,
    reviewer: str,
    verdict: str,
    new_label: str,
) -> int:
    """Grid mode: the clicked items (``not_class``, predictions rows) get ``verdict``
    (relabel to ``new_label``, or exclude), the others ``keep``; one append for the page."""
    decisions = [
        decision(i, verdict, reviewer, new_label=new_label)
        if int(i["row"]) in not_class
        else decision(i, "keep", reviewer)
        for i in items
    ]
    append_decisions(file, decisions)
    return len(decisions)
