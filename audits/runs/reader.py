"""Opening a stored run: its typed records, parsed on first use, and the locators of its files.

Every reader of a run (dashboard, exports, commands) goes through ``StoredRun``: no one else
builds a path into a run folder or parses one of its JSON files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from audits.errors import AuditError
from audits.runs.base import ModelIdentity
from audits.runs.kinds import RUN_FILES, first_error, record_kind
from audits.runs.models_audit import AuditRecord, EmbeddingMapBlock
from audits.runs.models_claims import ClaimsRecord
from audits.runs.models_comparison import ComparisonRecord
from audits.runs.models_drift import DriftRecord
from audits.runs.models_explain import ExplainSummary
from audits.runs.models_integrity import IntegrityRecord
from audits.runs.tables import Filter, LazyTable

EXPLAIN_DIR = "explain"
INTEGRITY_FILE = "integrity.json"
CLAIMS_PREFIX = "claims-"
MAP_DIR = "embedding-map"  # map.parquet (row, x, y float32) and map.json (audits/embedding_map.py)


def read_json_file(file: Path) -> Any:
    """Parsed JSON; a file that is not JSON is an ``AuditError`` naming it."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AuditError(f"{file}: damaged ({exc})") from None


def parse_record(data: Any, kind: str, file: Path) -> Any:
    """``data`` as the record of ``kind``, or an ``AuditError`` naming the file and the field."""
    try:
        return record_kind(kind).model.from_dict(data)
    except ValidationError as exc:
        raise AuditError(f"{file}: invalid {kind} record: {first_error(exc)}") from None


def _record(file: Path, kind: str) -> Any:
    """The record in ``file``, or None when there is no such file."""
    return parse_record(read_json_file(file), kind, file) if file.is_file() else None


def _parquet(file: Path) -> pd.DataFrame | None:
    if not file.is_file():
        return None
    try:
        return pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise AuditError(f"{file}: damaged ({type(exc).__name__}: {exc})") from None


def _npy(file: Path) -> np.ndarray:
    """A stored array, memory-mapped; a missing or truncated file is an ``AuditError``."""
    if not file.is_file():
        raise AuditError(f"{file}: missing (the run is incomplete or damaged)")
    try:
        return np.load(file, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:  # a short file fails the mmap or the header
        raise AuditError(f"{file}: damaged ({type(exc).__name__}: {exc})") from None


def file_inside(base: Path, candidate: str | Path | None) -> Path | None:
    """``candidate`` (relative to ``base``, or absolute) if it is a file inside ``base``."""
    if not isinstance(candidate, str | Path) or not str(candidate):
        return None
    try:
        p = Path(candidate)
        p = (p if p.is_absolute() else base / p).resolve()
        base = base.resolve()
    except (OSError, ValueError):
        return None
    if base != p and base not in p.parents:
        return None  # a path in a record must not lead out of the run
    return p if p.is_file() else None


@dataclass
class ExplainFolder:
    """``explain/`` (or ``explain-<method>/``): summary, heatmaps, regions and overlays."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def summary(self) -> ExplainSummary | None:
        return _record(self.path / "summary.json", "explain")

    @cached_property
    def heatmaps(self) -> np.ndarray | None:
        """float16 [n_explained, 2 (predicted, true), h, w], memory-mapped."""
        file = self.path / "heatmaps.npy"
        return _npy(file) if file.is_file() else None

    @cached_property
    def regions(self) -> pd.DataFrame | None:
        """One row per (explained image, slot); row ``index`` is the heatmaps' axis 0."""
        return _parquet(self.path / "regions.parquet")

    def overlay(self, row: int) -> Path | None:
        """The overlay PNG of predictions row ``row``, if one was written."""
        file = self.path / "overlays" / f"{int(row)}.png"
        return file if file.is_file() else None

    @cached_property
    def overlays(self) -> dict[int, Path]:
        """Every overlay PNG by predictions row, in row order."""
        folder = self.path / "overlays"
        found = [p for p in folder.glob("*.png") if p.stem.isdigit()] if folder.is_dir() else []
        return {int(p.stem): p for p in sorted(found, key=lambda p: int(p.stem))}


@dataclass
class StoredClaims:
    """One ``claims-<sha>/`` folder of a run."""

    path: Path
    record: ClaimsRecord


@dataclass
class StoredMap:
    """``embedding-map/``: the 2-D map's record (``map.json``) and its points, read on use."""

    path: Path
    record: EmbeddingMapBlock

    @cached_property
    def points(self) -> pd.DataFrame:
        """``row``, ``x``, ``y`` (float32), one row per predictions row."""
        table = _parquet(self.path / "map.parquet")
        if table is None:
            raise AuditError(f"{self.path}: has map.json but no map.parquet (damaged)")
        return table


@dataclass
class StoredRun:
    """A stored run: ``meta`` is its parsed record file; everything else is read on first use."""

    path: Path
    meta: dict[str, Any]
    kind: str

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def record_file(self) -> Path:
        return self.path / RUN_FILES[self.kind]

    @property
    def created(self) -> str:
        """``created`` of the record ('' when missing), for sorting without validating it all."""
        created = self.meta.get("created")
        return created if isinstance(created, str) else ""

    @cached_property
    def identity(self) -> ModelIdentity:
        """The model the run is about (a comparison: its candidate B); empty when not recorded.

        Only this block is validated, so listing and matching runs stays cheap.
        """
        block = self.meta.get("model")
        if self.kind == "comparison":
            run_b = self.meta.get("run_b")
            block = run_b.get("model") if isinstance(run_b, dict) else None
        try:
            return ModelIdentity.from_dict(block if isinstance(block, dict) else {})
        except ValidationError:
            return ModelIdentity()

    # --- the record of the run's kind -----------------------------------------------------------

    @cached_property
    def record(self) -> AuditRecord | DriftRecord | ComparisonRecord:
        return parse_record(self.meta, self.kind, self.record_file)

    def _of_kind(self, kind: str) -> Any:
        if self.kind != kind:
            raise AuditError(f"{self.path}: a {self.kind} run, not the {kind} run this needs")
        return self.record

    @property
    def audit(self) -> AuditRecord:
        return self._of_kind("audit")

    @property
    def drift(self) -> DriftRecord:
        return self._of_kind("drift")

    @property
    def comparison(self) -> ComparisonRecord:
        return self._of_kind("comparison")

    # --- an audit run's arrays and analyses ---------------------------------------------------

    @cached_property
    def table(self) -> pd.DataFrame:
        table = _parquet(self.path / "predictions.parquet")
        if table is None:
            raise AuditError(
                f"{self.path}: has no predictions.parquet (not an audit run, or damaged)"
            )
        return table

    @cached_property
    def predictions(self) -> LazyTable:
        """``predictions.parquet`` opened lazily: only its footer is read here."""
        file = self.path / "predictions.parquet"
        if not file.is_file():
            raise AuditError(
                f"{self.path}: has no predictions.parquet (not an audit run, or damaged)"
            )
        return LazyTable(file)

    def table_columns(self, columns: Sequence[str]) -> pd.DataFrame:
        """Only the named columns of every row (columns an older run lacks are left out)."""
        return self.predictions.read(columns)

    def rows(self, filters: Filter, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows matching ``filters`` (pyarrow DNF, e.g. ``[("correct", "=", False)]``),
        indexed by their position as in ``table``; only the named columns when given."""
        return self.predictions.read(columns, filters)

    def take(
        self, rows: Sequence[int] | np.ndarray, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The rows at these positions, in the order given, reading only their row groups."""
        return self.predictions.take(rows, columns)

    @cached_property
    def probabilities(self) -> np.ndarray:
        """float16 [n, n_classes], memory-mapped read-only: index rows, never copy it whole."""
        return _npy(self.path / "probabilities.npy")

    def probability_rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The probabilities of these rows only (gathered from the memory map)."""
        return np.asarray(self.probabilities[np.asarray(rows, dtype=np.int64)])

    @cached_property
    def embeddings(self) -> np.ndarray:
        return _npy(self.path / "embeddings.npy")

    @cached_property
    def explain(self) -> ExplainFolder | None:
        """``explain/``, written by the audit (or the first ``python -m audits explain``)."""
        folder = self.path / EXPLAIN_DIR
        return ExplainFolder(folder) if folder.is_dir() else None

    @cached_property
    def explain_folders(self) -> list[ExplainFolder]:
        """``explain/`` then every ``explain-<method>/``, by name."""
        extra = sorted(p for p in self.path.glob(f"{EXPLAIN_DIR}-*") if p.is_dir())
        return ([self.explain] if self.explain else []) + [ExplainFolder(p) for p in extra]

    @cached_property
    def integrity(self) -> IntegrityRecord | None:
        return _record(self.path / INTEGRITY_FILE, "integrity")

    def thumb(self, rel: str | None) -> Path | None:
        """A thumbnail an integrity record names (``integrity/thumbs/…``), if it is there."""
        return file_inside(self.path, rel)

    @cached_property
    def embedding_maps(self) -> dict[str, StoredMap]:
        """The stored 2-D embedding maps by method: ``embedding-map/`` (the audit's), then any
        ``embedding-map-<method>/`` added later (audits/embedding_map.py)."""
        found: dict[str, StoredMap] = {}
        folders = [self.path / MAP_DIR, *sorted(self.path.glob(f"{MAP_DIR}-*"))]
        for folder in folders:
            record = _record(folder / "map.json", "embedding_map") if folder.is_dir() else None
            if record is not None:
                found.setdefault(record.method, StoredMap(folder, record))
        return found

    @property
    def embedding_map(self) -> StoredMap | None:
        """The map to show first (UMAP when stored, else the audit's), or None when none."""
        maps = self.embedding_maps
        return maps.get("umap") or next(iter(maps.values()), None)

    def row_thumb(self, row: int) -> Path | None:
        """The stored thumbnail of predictions row ``row``, if the integrity stage wrote one."""
        return file_inside(self.path, f"integrity/thumbs/test-{int(row)}.jpg")

    @cached_property
    def claims(self) -> list[StoredClaims]:
        """Every ``claims-*/claims.json``, newest first."""
        found = []
        for folder in self.path.glob(f"{CLAIMS_PREFIX}*"):
            record = _record(folder / "claims.json", "claims") if folder.is_dir() else None
            if record is not None:
                found.append(StoredClaims(folder, record))
        return sorted(found, key=lambda c: (c.record.created, c.path.name), reverse=True)

    # --- a drift run's and a comparison's files -----------------------------------------------

    @property
    def evidently_html(self) -> Path | None:
        return file_inside(self.path, "evidently.html")

    @property
    def evidently_json(self) -> Path | None:
        return file_inside(self.path, "evidently.json")

    @cached_property
    def properties(self) -> pd.DataFrame | None:
        """Image properties, one row per image and ``side`` (reference / current)."""
        return _parquet(self.path / "properties.parquet")

    @cached_property
    def pairs(self) -> pd.DataFrame | None:
        """One row per image paired between the two compared runs."""
        return _parquet(self.path / "pairs.parquet")

    @cached_property
    def changed(self) -> pd.DataFrame | None:
        """The images only one compared version gets right (``audits.what_changed``); None
        for comparisons made before it was stored."""
        return _parquet(self.path / "changed.parquet")

    def read_json(self, name: str) -> dict[str, Any] | None:
        """An optional JSON file of the run, untyped (prefer the typed properties)."""
        file = self.path / name
        return read_json_file(file) if file.is_file() else None


def open_run(path: str | Path) -> StoredRun:
    """Open a run folder (audit, drift or comparison); its record is validated on first use."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise AuditError(f"{path}: no such run folder")
    for kind, name in RUN_FILES.items():
        file = path / name
        if file.is_file():
            meta = read_json_file(file)
            if not isinstance(meta, dict):
                raise AuditError(f"{file}: damaged (not a JSON object)")
            return StoredRun(path=path.resolve(), meta=meta, kind=kind)
    raise AuditError(f"{path}: not a run folder (no audit.json, drift.json or comparison.json)")
