"""Runs that belong with an audit run: the drift runs and comparisons of the same model version.

The dashboard and the exports show them beside the audit; they are found, never recomputed.
The store is listed lightly (``audits.history_records.list_store``: the ids and model names
of each record, not 500 records validated in full); only the runs picked are opened and
checked (``audits.store.open_checked``), and a damaged one is skipped with the store's one
warning line naming it, so the pick is the one a fully checked listing would make.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from audits.history_records import ComparisonEntry, ModelRef, RunSummary, list_store
from audits.runs.base import ModelIdentity
from audits.store import DamagedRun, Run, open_checked, warn_damaged


@dataclass
class RunBundle:
    """An audit run with the latest drift run and comparison that concern the same model version."""

    audit: Run
    drift: Run | None = None
    comparison: Run | None = None  # a comparison in which this run is the candidate (run_b)
    previous: Run | None = None  # the run it was compared with (run_a), when still in the store
    successor: Run | None = None  # the latest comparison in which this run is the baseline (run_a)
    newer: Run | None = None  # that comparison's candidate (run_b), when still in the store


def _same_model(other: ModelRef, model: ModelIdentity) -> bool:
    """Same name and version, and the same weights where both record them."""
    if other.name != model.name or other.version != model.version:
        return False
    return model.weights_sha256 is None or other.weights_sha256 in (None, model.weights_sha256)


def _compared(run: RunSummary, side: str, run_id: str) -> bool:
    """Whether ``run`` is a comparison with ``run_id`` as its ``side`` (run_a or run_b)."""
    rec = run.record
    return isinstance(rec, ComparisonEntry) and getattr(rec, side).run_id == run_id


def _opened(candidates: Iterator[RunSummary]) -> Run | None:
    """The first candidate (newest first) whose folder opens and passes ``check_run``."""
    for summary in candidates:
        run = open_checked(summary.path)
        if not isinstance(run, DamagedRun):
            return run
        warn_damaged([run])
    return None


def _first(runs: list[RunSummary], match: Callable[[RunSummary], bool]) -> Run | None:
    return _opened(r for r in runs if match(r))


def bundle(audit: Run, store: str | Path | None = None) -> RunBundle:
    """Collect the related runs from ``store`` (default: the folder holding the audit run)."""
    store = Path(store) if store is not None else audit.path.parent
    found = list_store(store)  # newest first
    warn_damaged(found.damaged)
    runs, model, run_id = found.runs, audit.identity, audit.run_id
    drift = _first(runs, lambda r: r.kind == "drift" and _same_model(r.model, model))
    comparison = _first(runs, lambda r: _compared(r, "run_b", run_id))
    previous = None
    if comparison is not None:
        prev_id = comparison.comparison.run_a.run_id
        previous = _first(runs, lambda r: r.run_id == prev_id)
    # An older version learns that it was replaced: the comparison where it is the baseline.
    successor = _first(runs, lambda r: _compared(r, "run_a", run_id))
    newer = None
    if successor is not None:
        new_id = successor.comparison.run_b.run_id
        newer = _first(runs, lambda r: r.run_id == new_id)
    return RunBundle(
        audit=audit,
        drift=drift,
        comparison=comparison,
        previous=previous,
        successor=successor,
        newer=newer,
    )
