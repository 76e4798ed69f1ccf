"""What more than one page reads from a run's typed records (``audits.runs``).

Pages read the records directly (``run.audit.metrics.per_class``); this module holds what
several pages share: the class order, the confusion block as arrays, and the results of the
optional stages (explain, integrity), which may be absent, may have failed (a stored
``{"error": …}``) or may be damaged. Absent or failed reads as None; a block a page cannot do
without raises ``AuditError`` naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audits.errors import AuditError
from audits.runs import AuditRecord, IntegrityRecord, StageError, StoredRun
from audits.runs.models_audit import ClassMetrics, ConfusedPair
from audits.runs.models_explain import ExplainBlock, PairSummary
from audits.runs.models_integrity import IntegrityBlock, Leakage, SuspectLabels, SuspectRow

log = logging.getLogger("dashboard")


def stage_error(block: Any) -> str | None:
    """The error a failed stage stored instead of its result, else None."""
    return block.error if isinstance(block, StageError) else None


# ---------------------------------------------------------------- audit.json


def class_names(audit: AuditRecord) -> list[str]:
    """The model's class order (colours and matrix axes follow it)."""
    return list(audit.model.classes or audit.metrics.confusion.labels)


@dataclass
class Confusion:
    """metrics.confusion (counts and the stored share of each true class) and the pairs."""

    labels: list[str]
    matrix: np.ndarray
    normalized: np.ndarray
    pairs: list[ConfusedPair] = field(default_factory=list)  # metrics.most_confused
    per_class: list[ClassMetrics] = field(default_factory=list)

    def support(self, name: str) -> int | None:
        """Test images of class ``name``, as stored."""
        return next((r.support for r in self.per_class if r.class_ == name), None)


def confusion(audit: AuditRecord, where: Path) -> Confusion:
    """The stored confusion block; AuditError when its shapes disagree."""
    m = audit.metrics
    labels = list(m.confusion.labels or class_names(audit))
    cm = np.asarray(m.confusion.matrix, dtype=np.float64)
    rates = np.asarray(m.confusion.normalized or [], dtype=np.float64)
    n = len(labels)
    if cm.shape != (n, n) or rates.shape != (n, n):
        raise AuditError(
            f"{where} has no usable confusion matrix (shape {cm.shape}, normalised "
            f"{rates.shape}, expected {n}×{n}): the run is incomplete or damaged"
        )
    pairs = [p for p in m.most_confused or [] if p.true in labels and p.predicted in labels]
    return Confusion(labels, cm, rates, pairs, list(m.per_class))


def explain_block(audit: AuditRecord) -> ExplainBlock | None:
    """audit.json's explain summary, or None when the stage was skipped or failed."""
    return audit.explain if isinstance(audit.explain, ExplainBlock) else None


def pair_sentences(audit: AuditRecord) -> list[PairSummary]:
    """explain's per-confused-pair results that carry a sentence."""
    block = explain_block(audit)
    return [p for p in block.pairs if p.sentence] if block is not None else []


def pair_sentence(audit: AuditRecord, true: str, pred: str) -> str | None:
    """explain's sentence for one confused pair, when it wrote one."""
    return next(
        (p.sentence for p in pair_sentences(audit) if p.true == true and p.predicted == pred),
        None,
    )


def integrity_summary(audit: AuditRecord) -> IntegrityBlock | None:
    """audit.json's compact integrity block, or None when the stage did not run or failed."""
    return audit.integrity if isinstance(audit.integrity, IntegrityBlock) else None


# ---------------------------------------------------------------- integrity.json


def integrity(run: StoredRun) -> IntegrityRecord | None:
    """integrity.json, or None when the run has none or it cannot be read (the Integrity page
    says why; the other pages go on without its flags)."""
    try:
        return run.integrity
    except AuditError as exc:
        log.warning("integrity of %s: %s", run.path, exc)
        return None


def suspect_block(report: IntegrityRecord | None) -> SuspectLabels | None:
    """The suspect-label results, or None when absent or failed."""
    block = report.suspect_labels if report is not None else None
    return block if isinstance(block, SuspectLabels) else None


def suspects(report: IntegrityRecord | None) -> dict[int, SuspectRow]:
    """The listed suspect-label rows keyed by predictions row."""
    block = suspect_block(report)
    return {r.row: r for r in block.rows} if block is not None else {}


def n_suspects(report: IntegrityRecord | None, listed: int) -> int:
    """How many labels the integrity check flagged (more than it lists, possibly)."""
    block = suspect_block(report)
    return block.n_flagged if block is not None else listed


def leaked_rows(report: IntegrityRecord | None) -> set[int]:
    """Predictions rows of test images found in the training data."""
    leak = report.leakage if report is not None else None
    return set(leak.leaked_rows) if isinstance(leak, Leakage) else set()
