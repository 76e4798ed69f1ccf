"""Runs that belong with an audit run: the drift runs and comparisons of the same model version.

The dashboard and the exports show them beside the audit; they are found, never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audits.store import Run, list_runs


@dataclass
class RunBundle:
    """An audit run with the latest drift run and comparison that concern the same model version."""

    audit: Run
    drift: Run | None = None
    comparison: Run | None = None  # a comparison in which this run is the candidate (run_b)
    previous: Run | None = None  # the run it was compared with (run_a), when still in the store


def _same_model(meta: dict, name: str, version: str, sha: str | None) -> bool:
    model = meta.get("model") or {}
    if model.get("name") != name or model.get("version") != version:
        return False
    return sha is None or model.get("weights_sha256") in (None, sha)


def bundle(audit: Run, store: str | Path | None = None) -> RunBundle:
    """Collect the related runs from ``store`` (default: the folder holding the audit run)."""
    store = Path(store) if store is not None else audit.path.parent
    model = audit.meta.get("model") or {}
    name, version, sha = model.get("name"), model.get("version"), model.get("weights_sha256")
    runs = list_runs(store)  # newest first
    drift = next(
        (r for r in runs if r.kind == "drift" and _same_model(r.meta, name, version, sha)), None
    )
    comparison = next(
        (
            r
            for r in runs
            if r.kind == "comparison" and (r.meta.get("run_b") or {}).get("run_id") == audit.run_id
        ),
        None,
    )
    previous = None
    if comparison is not None:
        prev_id = (comparison.meta.get("run_a") or {}).get("run_id")
        previous = next((r for r in runs if r.run_id == prev_id), None)
    return RunBundle(audit=audit, drift=drift, comparison=comparison, previous=previous)
