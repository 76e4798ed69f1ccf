"""The audit store: one immutable folder per run, created atomically.

A run is built in ``<store>/.tmp-<run_id>/`` and renamed to ``<store>/<run_id>/`` only when
complete, so a run killed half-way leaves nothing under a run's name. Readers (dashboard,
exports) load runs through ``load_run`` and never recompute what is stored.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from audits.errors import AuditError
from audits.fsio import atomic_dir
from audits.runs.reader import StoredRun, open_run
from audits.runs.stamp import auditor_identity, utc_now, utc_stamp
from audits.text import slug

DEFAULT_STORE = Path("audit-store")
#: A stored run (the typed reader of audits.runs); ``Run`` is the name the code base uses.
Run = StoredRun
__all__ = [
    "DEFAULT_STORE",
    "Run",
    "add_to_run",
    "auditor_identity",
    "create_run",
    "list_runs",
    "load_run",
    "new_run_id",
    "utc_now",
    "utc_stamp",
]


def new_run_id(kind: str, name: str, version: str, when: datetime | None = None) -> str:
    when = when or utc_now()
    return f"{when:%Y%m%dT%H%M%S}-{slug(name)}-{slug(version)}-{kind}-{secrets.token_hex(3)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(store: Path) -> None:
    """Remove temporary folders of runs whose process died (a kill leaves them behind)."""
    for tmp in store.glob(".tmp-*"):
        try:
            pid = int((tmp / ".pid").read_text())
        except (OSError, ValueError):
            pid = -1
        if pid < 0 or not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def create_run(store: str | Path, run_id: str) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it is renamed to ``<store>/<run_id>``.

    On any exception (including Ctrl-C) the temporary folder is removed.
    """
    store = Path(store)
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"{store}: cannot create the audit store ({exc.strerror})") from None
    _clean_stale(store)
    final = store / run_id
    if final.exists():
        raise AuditError(f"{final}: a run with this id exists already")
    with atomic_dir(final, marker=".pid") as tmp:
        yield tmp


@contextlib.contextmanager
def add_to_run(run_dir: Path, name: str) -> Iterator[Path]:
    """Add a new sub-folder ``name`` to an existing run atomically; never overwrites."""
    final = run_dir / name
    if final.exists():
        raise AuditError(f"{final}: exists already; runs are immutable (start a new run instead)")
    with atomic_dir(final) as tmp:
        yield tmp


def load_run(path: str | Path) -> Run:
    """Open a run folder (audit, drift or comparison): ``audits.runs.open_run``."""
    return open_run(path)


def list_runs(store: str | Path = DEFAULT_STORE, kind: str | None = None) -> list[Run]:
    """Every complete run in the store, newest first; damaged folders are skipped."""
    store = Path(store)
    if not store.is_dir():
        return []
    runs = []
    for entry in store.iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            run = load_run(entry)
        except AuditError:
            continue
        if kind is None or run.kind == kind:
            runs.append(run)
    runs.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    return runs
