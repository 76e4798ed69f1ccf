"""Appendix E: the stored files the report was made from, with their sha256 (the evidence trail)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from audits.errors import AuditError
from audits.hashing import file_sha256
from audits.related import RunBundle
from audits.store import Run
from reports.present import fmt
from reports.sections.base import c, cols
from reports.tree import Paragraphs, Section, Table


def _claims_folders(run: Run) -> list[Path]:
    try:
        return sorted(c.path for c in run.claims)
    except AuditError:
        return []  # damaged: the report does not use them (its Claims section says so)


def _files(run: Run) -> list[Path]:
    """The run's top-level files, then the JSON and parquet files of explain/ and claims-*/."""
    files = sorted(p for p in run.path.iterdir() if p.is_file() and not p.name.startswith("."))
    folders = ([run.explain.path] if run.explain is not None else []) + _claims_folders(run)
    for folder in folders:
        files += sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix in (".json", ".parquet")
        )
    return files


def evidence_files(run: Run, b: RunBundle) -> list[dict[str, Any]]:
    """{"file", "sha256", "bytes"} of the audit run's files and the related runs' JSON files."""
    found = [(run, f) for f in _files(run)]
    for other in (b.drift, b.comparison, b.successor):
        if other is not None:
            found += [
                (other, f)
                for f in sorted(
                    p for p in other.path.iterdir() if p.is_file() and p.suffix == ".json"
                )
            ]
    out = []
    for owner, file in found:
        with contextlib.suppress(OSError):  # a file vanishing mid-export is left out, not fatal
            out.append(
                {
                    "file": f"{owner.run_id}/" + file.relative_to(owner.path).as_posix(),
                    "sha256": file_sha256(file),
                    "bytes": file.stat().st_size,
                }
            )
    return out


def evidence_section(sources: list[dict[str, Any]]) -> Section:
    """Appendix E: the evidence files (``evidence_files``) with their sha256."""
    intro = (
        "This report was rendered from these stored files and nothing else; their sha256 "
        "identifies them. The export folder's manifest.json lists the sha256 of every exported "
        "file: python -m audits verify FOLDER names any file altered since."
    )
    table = Table(
        cols(("File", "left", "44%"), ("Bytes", "right", "12%"), ("sha256", "left")),
        [
            [c(s["file"], mono=True), c(fmt.count(s["bytes"])), c(s["sha256"], mono=True)]
            for s in sources
        ],
        css="compact",
    )
    return Section(
        "appendix-sources",
        "Appendix E — Evidence files",
        [Paragraphs([intro]), table],
        appendix=True,
    )
