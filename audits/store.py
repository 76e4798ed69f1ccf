"""The audit store: one immutable folder per run, created atomically.

A run is built in ``<store>/.tmp-<run_id>-<hex>/`` and renamed to ``<store>/<run_id>/`` only
when complete, so a run killed half-way leaves nothing under a run's name. The temporary folder
appears with an flock already held on its ``.lock`` (``fsio.atomic_dir``); the next run's
sweep removes only folders whose lock is free, so it never touches a live run's.

Readers (dashboard, exports) load runs through ``load_run`` and never recompute what is
stored. ``scan_store``/``list_runs`` check each run (``check_run``) and set a damaged folder
apart with the reason, so one bad folder never stops the rest of the store being served.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from audits.errors import AuditError
from audits.fsio import LOCK_FILE, atomic_dir, lock_is_free
from audits.history_records import DamagedRun as LightDamagedRun
from audits.history_records import run_kind, write_listing
from audits.runs.reader import StoredRun, open_run
from audits.runs.stamp import auditor_identity, utc_now, utc_stamp
from audits.text import slug

DEFAULT_STORE = Path("audit-store")
log = logging.getLogger("audits.store")
#: A stored run (the typed reader of audits.runs); ``Run`` is the name the code base uses.
Run = StoredRun
__all__ = [
    "DEFAULT_STORE",
    "DamagedRun",
    "Run",
    "StoreScan",
    "add_to_run",
    "auditor_identity",
    "check_run",
    "create_run",
    "list_runs",
    "load_run",
    "new_run_id",
    "open_checked",
    "scan_store",
    "utc_now",
    "utc_stamp",
    "warn_damaged",
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


#: A staging folder (``fsio.atomic_dir``) lives for microseconds; one this old was orphaned.
STAGE_MAX_AGE_S = 3600


def _owner_dead(tmp: Path) -> bool:
    """Whether the run building ``tmp`` is gone; False unless that is certain.

    A run holds an flock on ``tmp/.lock`` from before the folder is visible until it is
    renamed (``fsio.atomic_dir``), so a free lock is proof. Folders of older versions carry a
    ``.pid`` instead; a folder with neither (a run between dropping its lock and its rename)
    is left alone.
    """
    lock = tmp / LOCK_FILE
    if lock.is_file():
        return lock_is_free(lock)
    try:
        pid = int((tmp / ".pid").read_text())
    except (OSError, ValueError):
        return False
    return not _pid_alive(pid)


def _clean_stale(store: Path) -> None:
    """Remove temporary folders of runs whose process died (a kill leaves them behind)."""
    for tmp in store.glob(".tmp-*"):
        if tmp.is_dir() and _owner_dead(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    now = time.time()
    for stage in store.glob(".stage-*"):
        try:
            old = now - stage.stat().st_mtime > STAGE_MAX_AGE_S
        except OSError:
            continue
        if old:
            shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def create_run(store: str | Path, run_id: str) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it is renamed to ``<store>/<run_id>``.

    On any exception (including Ctrl-C) the temporary folder is removed. An audit run gets
    its listing sidecar (``history_records.write_listing``) once filled, before the rename.
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
    with atomic_dir(final, locked=True) as tmp:
        yield tmp
        write_listing(tmp)  # listings then skip the 1.8 MB audit.json of a 250-class run


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


@dataclass(frozen=True)
class DamagedRun:
    """A folder in the store that is not a readable run, and why (its file and field)."""

    path: Path
    reason: str
    run: Run | None = None  # opened, when only its record's content is wrong

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class StoreScan:
    """The store's readable runs (newest first) and its damaged folders (by name)."""

    runs: list[Run] = field(default_factory=list)
    damaged: list[DamagedRun] = field(default_factory=list)


def _reason(entry: Path, exc: Exception) -> str:
    """The error without the folder's own path in front (the warning names the folder)."""
    text = " ".join(str(exc).split())  # one line
    for prefix in (str(entry), str(entry.resolve())):
        if text.startswith(prefix + os.sep):
            return text[len(prefix) + 1 :]
        if text.startswith(prefix + ":"):
            return text[len(prefix) + 1 :].lstrip()
    return text


def check_run(run: Run) -> None:
    """Raise ``AuditError`` unless the run's record is valid and its table's footer reads.

    Cheap: the record is validated (and kept on the run), the predictions table only has its
    parquet footer read. A table that is missing is left to the pages that need it.
    """
    run.record  # noqa: B018 - validates (AuditError naming the file and the field)
    table = run.path / "predictions.parquet"
    if run.kind == "audit" and table.is_file():
        import pyarrow.parquet as pq

        try:
            pq.read_metadata(table)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise AuditError(f"{table}: damaged ({type(exc).__name__}: {exc})") from None


def open_checked(entry: Path) -> Run | DamagedRun:
    """The run in folder ``entry``, checked by ``check_run``, or why it is damaged."""
    run = None
    try:
        run = load_run(entry)
        check_run(run)
    except AuditError as exc:
        return DamagedRun(entry, _reason(entry, exc), run)
    except OSError as exc:
        return DamagedRun(entry, f"unreadable ({exc.strerror or exc})", run)
    return run


def scan_store(store: str | Path = DEFAULT_STORE, kind: str | None = None) -> StoreScan:
    """Every complete run in the store, checked by ``check_run``; damaged ones set apart.

    Hidden folders (runs still being written, ``.tmp-*``) and loose files are ignored. With
    ``kind``, only the runs of that kind are opened and checked (a folder's kind is the record
    file it holds, ``history_records.run_kind``); a folder with no record is still named.
    """
    store = Path(store)
    found = StoreScan()
    if not store.is_dir():
        return found
    for entry in sorted(store.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if kind is not None and run_kind(entry) not in (kind, None):
            continue  # validating the other kinds in full would cost 30 ms a 250-class audit
        run = open_checked(entry)
        if isinstance(run, DamagedRun):
            found.damaged.append(run)
        elif kind is None or run.kind == kind:
            found.runs.append(run)
    found.runs.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    return found


_warned: set[tuple[Path, str]] = set()


def warn_damaged(damaged: Iterable[DamagedRun | LightDamagedRun]) -> None:
    """Log each damaged folder once per process: ``warning: skipped <folder>: <reason>``."""
    for d in damaged:
        if (d.path, d.reason) not in _warned:
            _warned.add((d.path, d.reason))
            log.warning("warning: skipped %s", d)


def list_runs(store: str | Path = DEFAULT_STORE, kind: str | None = None) -> list[Run]:
    """Every readable run in the store, newest first; damaged folders are skipped with a
    logged warning naming them (``scan_store`` returns them too)."""
    found = scan_store(store, kind)
    warn_damaged(found.damaged)
    return found.runs
