"""The JSON export: the run's stored results, the related drift run and comparison, and the
report's plain-language summary, in one document that validates against
``reports/schema/audit-export.schema.json`` (schema_version 1).

Values are copied from the stored files unchanged (floats keep every digit), so a client can
check any number in the PDF against it. The output is byte-identical for the same run: no
export time inside, keys in a fixed order, ``json.dumps`` with fixed settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audits.errors import AuditError
from audits.fsio import to_jsonable
from audits.related import RunBundle
from audits.runs import StageError
from audits.store import Run
from reports.changed_export import changed_records
from reports.content import ReportContent
from reports.sections.explain import explain_files

SCHEMA_VERSION = 1
KIND = "audit-export"
SCHEMA_FILE = Path(__file__).parent / "schema" / "audit-export.schema.json"
#: audit.json keys placed first, in this order (the rest follow in the file's own order).
_FIRST = ("model", "dataset", "auditor", "device", "timings", "skipped", "metrics")
#: audit.json keys this export rebuilds from the stored files instead of copying.
_REBUILT = {"schema_version", "kind", "run_id", "created", "explain", "integrity", "comparison"}


def _explain(run: Run, block: Any) -> dict[str, Any] | None:
    """audit.json's explain block, explain/summary.json, regions.parquet's rows as stored, and
    the overlay files; None when the run has none of them (a damaged file counts as none)."""
    summary, regions = explain_files(run.explain)
    if block is None and summary is None and regions is None:
        return None
    overlays = run.explain.overlays.values() if run.explain is not None else ()
    return {
        "audit": block,
        "summary": summary.as_dict() if summary is not None else None,
        "regions": regions.to_dict("records") if regions is not None else None,
        "overlays": sorted(p.relative_to(run.path).as_posix() for p in overlays),
    }


def _integrity(run: Run, block: Any) -> dict[str, Any] | None:
    """integrity.json as stored; audit.json's summary when the file is missing or damaged."""
    try:
        record = run.integrity
    except AuditError:
        record = None
    return record.as_dict() if record is not None else block


def _claims(run: Run) -> list[dict[str, Any]]:
    """Every claims-*/claims.json as stored, by folder name (none when one is damaged)."""
    try:
        found = sorted(run.claims, key=lambda c: c.path.name)
    except AuditError:
        return []
    return [{"folder": c.path.name, "files": {"claims.json": c.record.as_dict()}} for c in found]


def _related(other: Run | None) -> dict[str, Any] | None:
    """A related run's record as stored, with its run id; None when absent or damaged."""
    if other is None:
        return None
    try:
        return {**other.record.as_dict(), "run_id": other.run_id}
    except AuditError:
        return None


def _with_changed(comparison: Run | None) -> dict[str, Any] | None:
    """A comparison's record (``_related``) with its stored "what changed" lists, if any."""
    block = _related(comparison)
    changed = changed_records(comparison) if block is not None else None
    if changed is not None:
        block["changed_images"] = changed
    return block


def _stage_errors(run: Run) -> dict[str, str]:
    """The stages of the audit that stored ``{"error": …}`` instead of their result."""
    audit = run.audit
    blocks = (("explain", audit.explain), ("integrity", audit.integrity))
    return {k: b.error for k, b in blocks if isinstance(b, StageError) and b.error}


def export_document(run: Run, related: RunBundle, content: ReportContent) -> dict[str, Any]:
    """The export document (plain JSON values, NaN as null)."""
    audit = run.audit
    stored = audit.as_dict()  # audit.json as stored: its values and key order are copied
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "run_schema_version": audit.schema_version,
        "run_id": run.run_id,
        "created": audit.created,
    }
    for key in _FIRST:
        doc[key] = stored.get(key)  # an optional block the run lacks is null
    for key, value in stored.items():
        if key not in doc and key not in _REBUILT:
            doc[key] = value  # fields added to runs later travel along unchanged
    doc["explain"] = _explain(run, stored.get("explain"))
    doc["integrity"] = _integrity(run, stored.get("integrity"))
    doc["claims"] = _claims(run)
    doc["drift"] = _related(related.drift)
    doc["comparison"] = _with_changed(related.comparison)
    doc["previous_run_id"] = related.previous.run_id if related.previous else None
    doc["successor"] = _with_changed(related.successor)  # a newer version compared with this one
    doc["newer_run_id"] = related.newer.run_id if related.newer else None
    doc["stage_errors"] = _stage_errors(run)
    doc["report"] = {
        "title": content.title,
        "headline": content.headline,
        "verdict": content.verdict,
        "executive_summary": content.summary,
        "warnings": content.warnings,
        "sections": [{"id": s.id, "title": s.title} for s in content.all_sections()],
        "omitted": [{"section": name, "reason": why} for name, why in content.omitted],
    }
    doc["sources"] = content.sources
    return to_jsonable(doc)


def dumps(doc: dict[str, Any]) -> str:
    """Deterministic JSON text (the same document always gives the same bytes)."""
    # default=str: dates and other odd values in optional tables become their ISO/str form.
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def write_json(run: Run, related: RunBundle, content: ReportContent, path: Path) -> Path:
    path.write_text(dumps(export_document(run, related, content)), encoding="utf-8")
    return path


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
