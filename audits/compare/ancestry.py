"""Whether two audited held-out sets are versions of one set (``relabel`` lineage).

A set made by ``python -m audits relabel`` records its parent's fingerprint in its freeze
record, and an audit of it stores that as ``dataset.lineage``. Two runs on different sets are
related when one set descends from the other: directly (one run's lineage names the other's
fingerprint) or through intermediate versions, followed through the lineage of the audit runs
stored beside the two runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audits.errors import AuditError
from audits.history_records import list_store
from audits.runs.models_audit import LineageInfo
from audits.store import Run

#: Longest chain followed (a guard against a cycle in hand-edited records).
MAX_GENERATIONS = 1000


@dataclass(frozen=True)
class Relation:
    """``descendant`` (RUN_A or RUN_B) was made from ``ancestor`` through ``chain``."""

    ancestor: str  # "RUN_A" | "RUN_B"
    descendant: str
    chain: tuple[str, ...]  # fingerprints from the descendant's set up to the ancestor's

    @property
    def generations(self) -> int:
        return len(self.chain) - 1


def _lineage(run: Run) -> LineageInfo | None:
    try:
        return run.audit.dataset.lineage
    except AuditError:
        return None


def _parents(runs: list[Run]) -> dict[str, str]:
    """fingerprint -> parent fingerprint, from every run's stored lineage."""
    parents: dict[str, str] = {}
    for run in runs:
        lineage = _lineage(run)
        if lineage is not None:
            parents.setdefault(run.audit.dataset.fingerprint, lineage.parent_fingerprint)
    return parents


def _chain(start: str, goal: str, parents: dict[str, str]) -> tuple[str, ...] | None:
    """Fingerprints from ``start`` up through its ancestors to ``goal``, or None."""
    chain = [start]
    while chain[-1] != goal:
        parent = parents.get(chain[-1])
        if parent is None or parent in chain or len(chain) > MAX_GENERATIONS:
            return None
        chain.append(parent)
    return tuple(chain)


def _stored_parents(run_a: Run, run_b: Run) -> dict[str, str]:
    """fingerprint -> parent fingerprint from the lineage of every audit stored beside the two
    runs (the light listing: damaged runs are skipped, no record is validated whole)."""
    parents: dict[str, str] = {}
    for store in dict.fromkeys(Path(r.path).parent for r in (run_a, run_b)):
        for summary in list_store(store, kind="audit").runs:
            dataset = summary.record.dataset
            if dataset.lineage is not None and dataset.lineage.parent_fingerprint:
                parents.setdefault(dataset.fingerprint, dataset.lineage.parent_fingerprint)
    return parents


def relation(run_a: Run, run_b: Run) -> Relation | None:
    """How RUN_A's and RUN_B's held-out sets are related by ``relabel``, or None if they are not."""
    fa, fb = run_a.audit.dataset.fingerprint, run_b.audit.dataset.fingerprint
    if not fa or not fb or fa == fb:
        return None
    parents = _parents([run_a, run_b])
    for attempt in range(2):
        if chain := _chain(fb, fa, parents):
            return Relation("RUN_A", "RUN_B", chain)
        if chain := _chain(fa, fb, parents):
            return Relation("RUN_B", "RUN_A", chain)
        if attempt == 0 and (_lineage(run_a) or _lineage(run_b)):
            # Only a relabelled set can have an ancestor: follow the chain through the store.
            parents = {**_stored_parents(run_a, run_b), **parents}
        else:
            break
    return None
