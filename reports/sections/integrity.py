"""The integrity sections (leakage, suspect labels, slices), from integrity.json merged over
audit.json's compact summary; each is left out with the reason when its result is missing."""

from __future__ import annotations

from typing import Any

from audits.store import Run
from reports.sections.base import Omitted
from reports.sections.labels import labels_section
from reports.sections.leakage import leakage_section
from reports.sections.reading import error_of, read_json, safe_call
from reports.sections.slices import slices_section
from reports.tree import Section

#: (name on the contents page, key in integrity.json, builder)
_PARTS = (
    ("Leakage", "leakage", leakage_section),
    ("Suspect labels", "suspect_labels", labels_section),
    ("Slices", "slices", slices_section),
)


def integrity_results(run: Run) -> tuple[dict[str, Any] | None, str | None]:
    """integrity.json over audit.json's summary (a damaged file: the summary alone); else the
    stage's error, or (None, None) when integrity was not run."""
    doc = read_json(run.path / "integrity.json")
    block = run.meta.get("integrity")
    if isinstance(doc, dict):
        merged = dict(block) if isinstance(block, dict) and not error_of(block) else {}
        merged.update(doc)
        return merged, None
    err = error_of(block)
    if err:
        return None, err
    if isinstance(block, dict) and block:
        return block, None
    return None, None


def integrity_sections(run: Run) -> list[Section | Omitted]:
    """Leakage, suspect labels and slices, in that order: each a section or why it is left out."""
    integrity, why = integrity_results(run)
    if integrity is None:
        reason = (
            f"Integrity checks failed when the audit ran: {why}"
            if why
            else "Integrity checks were not run for this audit."
        )
        return [Omitted(name, reason) for name, _, _ in _PARTS]
    out: list[Section | Omitted] = []
    for name, key, builder in _PARTS:
        value = integrity.get(key)
        err = error_of(value)
        section = None if err else safe_call(lambda v=value, f=builder: f(v, run), None)
        if section is not None:
            out.append(section)
        else:
            out.append(
                Omitted(name, f"failed: {err}" if err else "not in this run's integrity results.")
            )
    return out
