"""What is in the store: runs (audit, drift, comparison), damaged folders, runs still being written.

Pure Python (no Streamlit) so it is unit-testable; ``dashboard.data`` caches it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from audits.history_records import list_store


@dataclass(frozen=True)
class RunInfo:
    """One run folder, described by its record (no big arrays are read)."""

    run_id: str
    path: Path
    kind: str  # audit | drift | comparison
    model: str
    version: str
    created: str

    @property
    def label(self) -> str:
        """'2026-11-23 16:00 · e810b2' for pickers."""
        when = self.created.replace("T", " ").rstrip("Z")[:16] if self.created else "unknown time"
        return f"{when} · {self.run_id.rsplit('-', 1)[-1]}"


@dataclass(frozen=True)
class Broken:
    """A folder in the store that is not a readable run."""

    name: str
    reason: str


@dataclass
class Catalog:
    store: Path
    runs: list[RunInfo] = field(default_factory=list)  # newest first
    broken: list[Broken] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)

    @property
    def audits(self) -> list[RunInfo]:
        return [r for r in self.runs if r.kind == "audit"]

    def get(self, run_id: str) -> RunInfo | None:
        return next((r for r in self.runs if r.run_id == run_id), None)

    def models(self) -> list[str]:
        """Model names with audit runs, most recently audited first."""
        return list(dict.fromkeys(r.model for r in self.audits))

    def versions(self, model: str) -> list[str]:
        """Versions of a model, most recently audited first."""
        return list(dict.fromkeys(r.version for r in self.audits if r.model == model))

    def runs_of(self, model: str, version: str) -> list[RunInfo]:
        return [r for r in self.audits if r.model == model and r.version == version]


def signature(store: Path) -> tuple:
    """A cheap fingerprint of the store's top level: changes when a run appears or goes."""
    try:
        with os.scandir(store) as it:
            # A run being written (.tmp-*) changes with every file it gets: count it by name only.
            return tuple(
                sorted(
                    (e.name, 0 if e.name.startswith(".") else e.stat().st_mtime_ns)
                    for e in it
                    if e.is_dir()
                )
            )
    except OSError:
        return ()


def scan(store: Path) -> Catalog:
    """Every run folder's record, read lightly (``audits.history_records.list_store``: the
    fields the pickers show, type-checked, and each audit's table footer); damaged folders are
    listed with the reason, never picked. A record wrong only in a field no list reads is left
    to the page that opens the run, which names it (validating 705 records of 250 classes in
    full took 30 s of the dashboard's 56 s cold start)."""
    cat = Catalog(store=store)
    if not store.is_dir():
        return cat
    cat.in_progress = sorted(
        e.name[5:] for e in store.iterdir() if e.name.startswith(".tmp-") and e.is_dir()
    )
    found = list_store(store.resolve(), tables=True)
    cat.broken = [Broken(d.path.name, d.reason) for d in found.damaged]
    for run in found.runs:
        model = run.model  # a comparison: its candidate B
        name, version = model.name or "unknown model", model.version or "unknown version"
        cat.runs.append(RunInfo(run.run_id, run.path, run.kind, name, version, run.created))
    return cat
