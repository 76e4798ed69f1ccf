"""The integrity sections (leakage, suspect labels, slices), from integrity.json; each is left out
with the reason when its result is missing, failed, or the file is damaged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from audits.errors import AuditError
from audits.runs import IntegrityRecord, StageError
from audits.store import Run
from reports.sections.base import Omitted, unavailable
from reports.sections.failure_patterns import failure_patterns_section
from reports.sections.labels import labels_section
from reports.sections.leakage import leakage_section
from reports.sections.slices import slices_section
from reports.tree import Section

#: (name on the contents page, the record's part, the builder of its section)
_PARTS: tuple[tuple[str, Callable[[IntegrityRecord], Any], Callable[[Any, Run], Section]], ...] = (
    ("Leakage", lambda r: r.leakage, leakage_section),
    ("Failure patterns", lambda r: r.failure_patterns, failure_patterns_section),
    ("Suspect labels", lambda r: r.suspect_labels, labels_section),
    ("Slices", lambda r: r.slices, slices_section),
)


def _not_run(run: Run) -> str:
    """Why there is no integrity.json: the stage failed, it never ran, or the file is gone."""
    block = run.audit.integrity
    if isinstance(block, StageError):
        return f"Integrity checks failed when the audit ran: {block.error}"
    if block is None:
        return "Integrity checks were not run for this audit."
    return "Unavailable: the checks ran, but the run's integrity.json is missing."


def integrity_sections(run: Run) -> list[Section | Omitted]:
    """Leakage, suspect labels and slices, in that order: each a section or why it is left out."""
    try:
        record = run.integrity
    except AuditError as exc:  # damaged or invalid integrity.json
        return [unavailable(name, exc) for name, _, _ in _PARTS]
    if record is None:
        return [Omitted(name, _not_run(run)) for name, _, _ in _PARTS]
    out: list[Section | Omitted] = []
    for name, part, builder in _PARTS:
        value = part(record)
        if value is None:  # a run audited before this part existed
            out.append(Omitted(name, "not computed when this run was audited"))
        elif isinstance(value, StageError):
            out.append(Omitted(name, f"failed: {value.error}"))
        else:
            out.append(builder(value, run))
    return out
