"""Which model describes which stored file, and validation errors in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from audits.runs.base import Part
from audits.runs.models_audit import AuditRecord, EmbeddingMapBlock
from audits.runs.models_claims import ClaimsRecord
from audits.runs.models_comparison import ComparisonRecord
from audits.runs.models_drift import DriftRecord
from audits.runs.models_explain import ExplainSummary
from audits.runs.models_integrity import IntegrityRecord


@dataclass(frozen=True)
class RecordKind:
    """A stored JSON file: its model, its file name and what the writer stamps when absent."""

    model: type[Part]
    file: str
    stamps: tuple[str, ...]


#: Stamps only where today's files carry the field, so that the bytes stay the same.
KINDS: dict[str, RecordKind] = {
    "audit": RecordKind(AuditRecord, "audit.json", ("schema_version", "created", "auditor")),
    "drift": RecordKind(DriftRecord, "drift.json", ("schema_version", "created", "auditor")),
    "comparison": RecordKind(
        ComparisonRecord, "comparison.json", ("schema_version", "created", "auditor")
    ),
    "explain": RecordKind(ExplainSummary, "summary.json", ()),
    "integrity": RecordKind(IntegrityRecord, "integrity.json", ()),
    "claims": RecordKind(ClaimsRecord, "claims.json", ("created",)),
    "embedding_map": RecordKind(EmbeddingMapBlock, "map.json", ()),
}
#: The run kinds, each named by its record file (the first one found decides).
RUN_FILES = {kind: KINDS[kind].file for kind in ("audit", "drift", "comparison")}


def record_kind(kind: str) -> RecordKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}; known: {', '.join(KINDS)}") from None


def first_error(exc: ValidationError) -> str:
    """'metrics.per_class.0.support: Input should be a valid integer (got 'x')'."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    where = ".".join(str(p) for p in err["loc"] if not _is_tag(p)) or "(top level)"
    text = f"{where}: {err['msg']}"
    if err["type"] != "missing":
        text += f" (got {_short(err.get('input'))})"
    if len(errors) > 1:
        text += f"; and {len(errors) - 1} more problem(s)"
    return text


def _is_tag(part: Any) -> bool:
    # Discriminated unions put the chosen tag ("<result>", "<error>"…) into the location.
    return isinstance(part, str) and part.startswith("<")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
