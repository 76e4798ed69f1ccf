"""Runs that belong with an audit run: the drift runs and comparisons of the same model version.

The dashboard and the exports show them beside the audit; they are found, never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audits.errors import AuditError
from audits.runs.base import ModelIdentity
from audits.store import Run, list_runs


@dataclass
class RunBundle:
    """An audit run with the latest drift run and comparison that concern the same model version."""

    audit: Run
    drift: Run | None = None
    comparison: Run | None = None  # a comparison in which this run is the candidate (run_b)
    previous: Run | None = None  # the run it was compared with (run_a), when still in the store
    successor: Run | None = None  # the latest comparison in which this run is the baseline (run_a)
    newer: Run | None = None  # that comparison's candidate (run_b), when still in the store


def _same_model(other: ModelIdentity, model: ModelIdentity) -> bool:
    """Same name and version, and the same weights where both record them."""
    if other.name != model.name or other.version != model.version:
        return False
    return model.weights_sha256 is None or other.weights_sha256 in (None, model.weights_sha256)


def _candidate_of(run: Run, run_id: str) -> bool:
    """Whether comparison ``run`` has ``run_id`` as its candidate (an invalid one has none)."""
    try:
        return run.comparison.run_b.run_id == run_id
    except AuditError:
        return False


def _baseline_of(run: Run, run_id: str) -> bool:
    """Whether comparison ``run`` has ``run_id`` as its baseline (an invalid one has none)."""
    try:
        return run.comparison.run_a.run_id == run_id
    except AuditError:
        return False


def bundle(audit: Run, store: str | Path | None = None) -> RunBundle:
    """Collect the related runs from ``store`` (default: the folder holding the audit run)."""
    store = Path(store) if store is not None else audit.path.parent
    runs = list_runs(store)  # newest first
    drift = next(
        (r for r in runs if r.kind == "drift" and _same_model(r.identity, audit.identity)), None
    )
    comparison = next(
        (r for r in runs if r.kind == "comparison" and _candidate_of(r, audit.run_id)), None
    )
    previous = None
    if comparison is not None:
        prev_id = comparison.comparison.run_a.run_id
        previous = next((r for r in runs if r.run_id == prev_id), None)
    # An older version learns that it was replaced: the comparison where it is the baseline.
    successor = next(
        (r for r in runs if r.kind == "comparison" and _baseline_of(r, audit.run_id)), None
    )
    newer = None
    if successor is not None:
        new_id = successor.comparison.run_b.run_id
        newer = next((r for r in runs if r.run_id == new_id), None)
    return RunBundle(
        audit=audit,
        drift=drift,
        comparison=comparison,
        previous=previous,
        successor=successor,
        newer=newer,
    )
