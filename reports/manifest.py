"""The export folder's integrity manifest: sha256 and size of every file, and its check.

``manifest.json`` lists every other file of the folder (sorted paths, POSIX separators).
``verify(folder)`` recomputes each digest and returns one line per problem: a file altered,
missing, or present but not in the manifest. An empty list means the folder is exactly as
exported. The manifest cannot prove who wrote it; publish its sha256 (printed by the export)
through another channel when the reader must be sure the manifest itself is genuine.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from audits.errors import AuditError
from audits.fsio import write_json
from audits.hashing import file_sha256

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST
    )


def build_manifest(folder: Path, run_id: str | None = None) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "algorithm": "sha256",
        "run_id": run_id,
        "files": [
            {
                "path": rel,
                "sha256": file_sha256(folder / rel),
                "bytes": (folder / rel).stat().st_size,
            }
            for rel in _files(folder)
        ],
    }


def write_manifest(folder: Path, run_id: str | None = None) -> Path:
    path = folder / MANIFEST
    write_json(path, build_manifest(folder, run_id))
    return path


def _load(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise AuditError(f"{folder}: no such export folder")
    if not path.is_file():
        raise AuditError(
            f"{folder}: no {MANIFEST}; not an export folder (python -m audits export RUN --out DIR)"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditError(f"{path}: unreadable ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise AuditError(f"{path}: not a manifest (no 'files' list)")
    return doc


def _safe_rel(rel: Any) -> bool:
    """A manifest path must stay inside the folder: relative, no '..'."""
    if not isinstance(rel, str) or not rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts and "\\" not in rel


def verify(folder: str | Path) -> list[str]:
    """Problems with an export folder against its manifest; empty when everything matches."""
    folder = Path(folder)
    doc = _load(folder)
    problems: list[str] = []
    listed: set[str] = set()
    for entry in doc["files"]:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not _safe_rel(rel):
            problems.append(f"invalid manifest entry: {rel!r}")
            continue
        listed.add(rel)
        path = folder / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
        elif file_sha256(path) != entry.get("sha256"):
            problems.append(f"altered: {rel} (sha256 differs from the manifest)")
        elif entry.get("bytes") is not None and path.stat().st_size != entry.get("bytes"):
            problems.append(f"altered: {rel} (size differs from the manifest)")
    for rel in _files(folder):
        if rel not in listed:
            problems.append(f"not in the manifest: {rel}")
    return problems
