"""The published JSON Schemas of ``audit.json``, ``drift.json`` and ``comparison.json``.

They are generated from the models; ``python -m audits.runs.schemas`` rewrites the committed
files here, and a test checks that they match the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audits.fsio import json_text
from audits.runs.base import SCHEMA_VERSION
from audits.runs.kinds import record_kind

FOLDER = Path(__file__).resolve().parent
PUBLISHED = ("audit", "drift", "comparison")
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_file(kind: str) -> Path:
    return FOLDER / f"{kind}.schema.json"


def _any_of(node: Any) -> Any:
    """``oneOf`` -> ``anyOf``: unknown keys are allowed, so only "at least one" is safe to ask."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _any_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_any_of(v) for v in node]
    return node


def build_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one record kind, as published."""
    spec = record_kind(kind)
    body = spec.model.model_json_schema(by_alias=True, mode="validation")
    head = {"$schema": DIALECT, "$id": schema_file(kind).name}
    body["description"] = f"schema_version {SCHEMA_VERSION}. {body.get('description', '')}".strip()
    return _any_of(head | body)


def schema_text(kind: str) -> str:
    return json_text(build_schema(kind))


def write_schemas(folder: Path = FOLDER) -> list[Path]:
    """Regenerate the published schema files; returns their paths."""
    written = []
    for kind in PUBLISHED:
        file = folder / schema_file(kind).name
        file.write_text(schema_text(kind), encoding="utf-8")
        written.append(file)
    return written
