"""The audit store: one immutable folder per run, created atomically.

A run is built in ``<store>/.tmp-<run_id>/`` and renamed to ``<store>/<run_id>/`` only when
complete, so a run killed half-way leaves nothing under a run's name. Readers (dashboard,
exports) load runs through ``load_run`` and never recompute what is stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audits.errors import AuditError
from audits.fsio import atomic_dir
from audits.text import slug
from audits.version import __version__

DEFAULT_STORE = Path("audit-store")
META_FILES = {"audit": "audit.json", "drift": "drift.json", "comparison": "comparison.json"}


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def new_run_id(kind: str, name: str, version: str, when: datetime | None = None) -> str:
    when = when or utc_now()
    return f"{when:%Y%m%dT%H%M%S}-{slug(name)}-{slug(version)}-{kind}-{secrets.token_hex(3)}"


def auditor_identity() -> dict[str, str]:
    """This tool's own version and git commit (``+dirty`` when the checkout has edits)."""
    here = Path(__file__).resolve().parent.parent
    commit = "unknown"
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        if out.returncode == 0:
            commit = out.stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
            if dirty.returncode == 0 and dirty.stdout.strip():
                commit += "+dirty"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"version": __version__, "commit": commit}


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


@dataclass
class Run:
    """A stored run; the big arrays are memory-mapped on first use."""

    path: Path
    meta: dict[str, Any]
    kind: str
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def run_id(self) -> str:
        return self.path.name

    @cached_property
    def table(self) -> pd.DataFrame:
        file = self.path / "predictions.parquet"
        if not file.is_file():
            raise AuditError(
                f"{self.path}: has no predictions.parquet (not an audit run, or damaged)"
            )
        return pd.read_parquet(file)

    @cached_property
    def probabilities(self) -> np.ndarray:
        return np.load(self.path / "probabilities.npy", mmap_mode="r")

    @cached_property
    def embeddings(self) -> np.ndarray:
        return np.load(self.path / "embeddings.npy", mmap_mode="r")

    def read_json(self, name: str) -> dict[str, Any] | None:
        """An optional JSON file of the run (``integrity.json``, ``explain/summary.json``…)."""
        file = self.path / name
        if not file.is_file():
            return None
        return json.loads(file.read_text(encoding="utf-8"))


def load_run(path: str | Path) -> Run:
    """Open a run folder (audit, drift or comparison)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise AuditError(f"{path}: no such run folder")
    for kind, name in META_FILES.items():
        file = path / name
        if file.is_file():
            try:
                meta = json.loads(file.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise AuditError(f"{file}: damaged ({exc})") from None
            return Run(path=path.resolve(), meta=meta, kind=kind)
    raise AuditError(f"{path}: not a run folder (no audit.json, drift.json or comparison.json)")


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
    runs.sort(key=lambda r: (r.meta.get("created", ""), r.run_id), reverse=True)
    return runs
