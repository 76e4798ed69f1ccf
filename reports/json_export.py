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

from audits.fsio import to_jsonable
from audits.related import RunBundle
from audits.store import Run
from reports.content import ReportContent
from reports.sections.reading import error_of, read_json, read_parquet_records

SCHEMA_VERSION = 1
KIND = "audit-export"
SCHEMA_FILE = Path(__file__).parent / "schema" / "audit-export.schema.json"
#: audit.json keys placed first, in this order (the rest follow in the file's own order).
_FIRST = ("model", "dataset", "auditor", "device", "timings", "skipped", "metrics")
#: audit.json keys this export rebuilds from the stored files instead of copying.
_REBUILT = {"schema_version", "kind", "run_id", "created", "explain", "integrity", "comparison"}


def _explain(run: Run) -> dict[str, Any] | None:
    """audit.json's explain block, explain/summary.json, regions.parquet's rows as stored, and
    the overlay files; None when the run has none of them."""
    folder = run.path / "explain"
    block = run.meta.get("explain")
    summary = read_json(folder / "summary.json")
    regions = read_parquet_records(folder / "regions.parquet")
    if block is None and summary is None and regions is None:
        return None
    overlays = folder / "overlays"
    listed = (
        sorted(p.relative_to(run.path).as_posix() for p in overlays.glob("*.png"))
        if overlays.is_dir()
        else []
    )
    return {"audit": block, "summary": summary, "regions": regions, "overlays": listed}


def _integrity(run: Run) -> dict[str, Any] | None:
    doc = read_json(run.path / "integrity.json")
    if isinstance(doc, dict):
        return doc
    block = run.meta.get("integrity")
    return block if isinstance(block, dict) else None


def _claims(run: Run) -> list[dict[str, Any]]:
    out = []
    for folder in sorted(p for p in run.path.glob("claims-*") if p.is_dir()):
        files = {}
        for file in sorted(folder.glob("*.json")):
            doc = read_json(file)
            if doc is not None:
                files[file.name] = doc
        out.append({"folder": folder.name, "files": files})
    return out


def _related(other: Run | None) -> dict[str, Any] | None:
    if other is None:
        return None
    return {**other.meta, "run_id": other.run_id}


def export_document(run: Run, related: RunBundle, content: ReportContent) -> dict[str, Any]:
    """The export document (plain JSON values, NaN as null)."""
    meta = run.meta
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "run_schema_version": meta.get("schema_version"),
        "run_id": run.run_id,
        "created": meta.get("created"),
    }
    for key in _FIRST:
        doc[key] = meta.get(key)
    for key, value in meta.items():
        if key not in doc and key not in _REBUILT:
            doc[key] = value  # fields added to runs later travel along unchanged
    explain = _explain(run)
    doc["explain"] = explain
    integrity = _integrity(run)
    doc["integrity"] = integrity
    doc["claims"] = _claims(run)
    doc["drift"] = _related(related.drift)
    doc["comparison"] = _related(related.comparison)
    doc["previous_run_id"] = related.previous.run_id if related.previous else None
    doc["stage_errors"] = {
        k: error_of(meta.get(k)) for k in ("explain", "integrity") if error_of(meta.get(k))
    }
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
