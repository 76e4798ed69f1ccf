"""A light listing of the store: each run folder's kind and the few record fields lists show.

``scan_store`` validates every record in full and reads each audit's parquet footer; at 500
runs of a 250-class model that is 900 MB of ``audit.json`` (the confusion matrix is most of it)
through ``json.loads`` and pydantic, about 30 ms a run. The history, the dashboard's run
pickers, the related-run lookup and ``list`` need a dozen fields per run, so this reads the
record files only and decodes just those fields with msgspec, which skips the rest without
building it (about 2 ms for a 1.8 MB record). The fields it reads are type-checked, each at
most as strictly as the full record model, so a run valid in full is never set apart here;
a folder whose record is not JSON, lacks them or has the wrong types is set apart as a
``DamagedRun`` with the reason, as ``scan_store`` does. Tables and arrays are never opened
unless asked (``list_store(tables=True)``: the parquet footer, as ``check_run`` reads it).

An audit run also carries ``.listing.json`` (``write_listing``, at run creation): its
``audit.json`` decoded as ``AuditEntry`` (a few kB), stamped with the size, mtime and ctime of the
``audit.json`` it came from and with the entry's field layout. It is used only while all of
them still match, so a record edited or damaged after the run was written, a copied run, or a
newer entry layout all fall back to decoding ``audit.json`` (older runs have no sidecar).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import msgspec

#: The audit run's listing sidecar (hidden: exports and the evidence list skip dot-files).
LISTING_FILE = ".listing.json"


@dataclass(frozen=True)
class DamagedRun:
    """A folder whose record cannot be read, and why (printed as ``scan_store``'s are).

    Not ``audits.store.DamagedRun``: importing the store pulls pandas and the pydantic run
    models, which cost more than reading 500 records."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class Lineage(msgspec.Struct, frozen=True):
    """``dataset.lineage``: the set is a corrected child of ``parent_fingerprint``."""

    parent_fingerprint: str | None = None
    n_relabelled: int | None = None
    n_excluded: int | None = None


class DatasetRef(msgspec.Struct, frozen=True):
    fingerprint: str
    n_images: int
    path: str | None = None
    lineage: Lineage | None = None


class ModelRef(msgspec.Struct, frozen=True):
    """A model as a drift run or a comparison names it (every field may be missing)."""

    name: str | None = None
    version: str | None = None
    weights_sha256: str | None = None


class AuditModel(msgspec.Struct, frozen=True):
    name: str
    version: str
    weights_sha256: str | None = None


class ClassRecall(msgspec.Struct, frozen=True, rename={"class_": "class"}):
    class_: str
    recall: float | None
    support: int = 0


class HeadlineMetrics(msgspec.Struct, frozen=True):
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    ece: float | None
    accuracy_ci_low: float | None = None
    accuracy_ci_high: float | None = None
    per_class: list[ClassRecall] = []


class AuditEntry(msgspec.Struct, frozen=True):
    """The fields of one ``audit.json`` the lists show; ``run_id`` is the folder's name."""

    created: str
    model: AuditModel
    dataset: DatasetRef
    metrics: HeadlineMetrics
    run_id: str = ""
    path: str = ""


class DriftSetRef(msgspec.Struct, frozen=True):
    n_images: int
    path: str | None = None


class DriftEntry(msgspec.Struct, frozen=True):
    """The fields of one ``drift.json`` the lists show (its model, batch and verdict)."""

    created: str
    model: ModelRef
    current: DriftSetRef
    drift: bool
    run_id: str = ""


class RunRef(msgspec.Struct, frozen=True):
    run_id: str
    model: ModelRef = ModelRef()


class PairedSet(msgspec.Struct, frozen=True):
    fingerprint: str | None = None
    path: str | None = None
    n_images: int | None = None


class Check(msgspec.Struct, frozen=True):
    check: str
    ok: bool | None
    text: str


class ComparisonEntry(msgspec.Struct, frozen=True):
    """The fields of one ``comparison.json`` the lists show (the release gate's verdict)."""

    created: str
    run_a: RunRef
    run_b: RunRef
    verdict: str
    checks: list[Check]
    dataset: PairedSet = PairedSet()
    run_id: str = ""


Entry = AuditEntry | DriftEntry | ComparisonEntry
#: The record files in the order ``audits.runs.open_run`` tries them (the first found decides).
_FILES = {"audit": "audit.json", "drift": "drift.json", "comparison": "comparison.json"}
_DECODERS: dict[str, msgspec.json.Decoder] = {
    "audit": msgspec.json.Decoder(AuditEntry),
    "drift": msgspec.json.Decoder(DriftEntry),
    "comparison": msgspec.json.Decoder(ComparisonEntry),
}


@dataclass(frozen=True)
class RunSummary:
    """One readable run folder as a listing shows it: its kind and the light record."""

    path: Path
    kind: str  # audit | drift | comparison
    record: Entry

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def created(self) -> str:
        return self.record.created

    @property
    def model(self) -> ModelRef:
        """The model the run is about (a comparison: its candidate B), as ``StoredRun.identity``."""
        rec = self.record
        if isinstance(rec, ComparisonEntry):
            return rec.run_b.model
        return ModelRef(rec.model.name, rec.model.version, rec.model.weights_sha256)


@dataclass
class Listing:
    """The store's readable runs (newest first) and its damaged folders (by name)."""

    runs: list[RunSummary] = field(default_factory=list)
    damaged: list[DamagedRun] = field(default_factory=list)

    def get(self, run_id: str) -> RunSummary | None:
        return next((r for r in self.runs if r.run_id == run_id), None)


@dataclass
class StoreRecords:
    """The store's audits and comparisons (in folder-name order) and its damaged folders."""

    audits: list[AuditEntry] = field(default_factory=list)
    comparisons: list[ComparisonEntry] = field(default_factory=list)
    damaged: list[DamagedRun] = field(default_factory=list)


# --- the sidecar -----------------------------------------------------------------------------


class _Source(msgspec.Struct, frozen=True):
    """What the sidecar was made from: ``audit.json``'s size and times, ``AuditEntry``'s layout."""

    size: int
    mtime_ns: int
    ctime_ns: int  # any later write, copy or restore of the record changes it
    layout: str


class _Sidecar(msgspec.Struct, frozen=True):
    source: _Source
    record: msgspec.Raw


_SIDECAR = msgspec.json.Decoder(_Sidecar)


@cache
def _layout() -> str:
    """A digest of ``AuditEntry``'s JSON schema: a sidecar written for other fields is unused."""
    schema = msgspec.json.encode(msgspec.json.schema(AuditEntry), order="sorted")
    return hashlib.sha256(schema).hexdigest()[:16]


def write_listing(folder: Path) -> Path | None:
    """Write ``folder/.listing.json`` from ``folder/audit.json``; the sidecar's path, or None
    when there is no audit record, it does not decode (readers then name its problem) or the
    sidecar cannot be written (it is only a shortcut: the run is complete without it)."""
    record = folder / _FILES["audit"]
    out = folder / LISTING_FILE
    try:
        stat = record.stat()
        entry = _DECODERS["audit"].decode(record.read_bytes())
        source = _Source(stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, _layout())
        out.write_bytes(msgspec.json.encode({"source": source, "record": entry}))
    except (OSError, msgspec.DecodeError):
        out.unlink(missing_ok=True)
        return None
    return out


def _from_sidecar(entry: Path) -> AuditEntry | None:
    """The audit entry from the sidecar, when it matches ``audit.json`` as it is now."""
    try:
        side = _SIDECAR.decode((entry / LISTING_FILE).read_bytes())
        stat = (entry / _FILES["audit"]).stat()
        if side.source != _Source(stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, _layout()):
            return None
        return _DECODERS["audit"].decode(side.record)
    except (OSError, msgspec.DecodeError):  # none, damaged or stale: read the record
        return None


# --- reading ---------------------------------------------------------------------------------


def _decode(entry: Path, kind: str) -> Entry | DamagedRun:
    """The light record of ``entry``; a ``DamagedRun`` naming the file and the problem."""
    name = _FILES[kind]
    if kind == "audit":
        found = _from_sidecar(entry)
        if found is not None:
            return found
    try:
        return _DECODERS[kind].decode((entry / name).read_bytes())
    except msgspec.ValidationError as exc:
        if str(exc).startswith("Expected `object`") and "at `$" not in str(exc):
            return DamagedRun(entry, f"{name}: damaged (not a JSON object)")  # as open_run says
        return DamagedRun(entry, f"{name}: invalid {kind} record: {exc}")
    except msgspec.DecodeError as exc:
        return DamagedRun(entry, f"{name}: damaged ({exc})")
    except OSError as exc:
        return DamagedRun(entry, f"unreadable ({exc.strerror or exc})")


def _folders(store: Path) -> list[Path]:
    """The run folders of ``store`` by name: hidden folders (runs still being written) and
    loose files are ignored, as in ``scan_store``."""
    try:
        with os.scandir(store) as it:
            names = sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())
    except OSError:
        return []
    return [store / name for name in names]


def run_kind(entry: Path) -> str | None:
    """The kind of run folder ``entry`` by its record file, as ``open_run`` decides it; None
    when it has none."""
    return next((k for k, f in _FILES.items() if (entry / f).is_file()), None)


def _not_a_run(entry: Path) -> DamagedRun:
    return DamagedRun(entry, "not a run folder (no audit.json, drift.json or comparison.json)")


def _table_problem(entry: Path) -> str | None:
    """Why ``predictions.parquet``'s footer does not read (None when it does, or is missing)."""
    table = entry / "predictions.parquet"
    if not table.is_file():
        return None  # left to the pages that need it, as ``check_run`` does
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(table)
    except Exception as exc:  # pyarrow raises several types for a broken file
        return f"predictions.parquet: damaged ({type(exc).__name__}: {exc})"
    return None


def list_store(store: str | Path, kind: str | None = None, tables: bool = False) -> Listing:
    """Every readable run in ``store`` (newest first: ``created``, then the run id), read
    lightly, and the damaged folders; ``kind`` reads only the runs of one kind (as
    ``scan_store``); ``tables`` also reads each audit's parquet footer."""
    found = Listing()
    for entry in _folders(Path(store)):
        folder_kind = run_kind(entry)
        if folder_kind is None:
            found.damaged.append(_not_a_run(entry))
            continue
        if kind is not None and folder_kind != kind:
            continue
        record = _decode(entry, folder_kind)
        if isinstance(record, DamagedRun):
            found.damaged.append(record)
            continue
        problem = _table_problem(entry) if tables and folder_kind == "audit" else None
        if problem is not None:
            found.damaged.append(DamagedRun(entry, problem))
        else:
            found.runs.append(RunSummary(entry, folder_kind, record))
    found.runs.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    return found


def read_records(store: str | Path) -> StoreRecords:
    """Every audit and comparison record in ``store`` (drift runs are skipped), read lightly."""
    found = StoreRecords()
    for entry in _folders(Path(store)):
        folder_kind = run_kind(entry)
        if folder_kind is None:
            found.damaged.append(_not_a_run(entry))
            continue
        if folder_kind == "drift":
            continue
        record = _decode(entry, folder_kind)
        if isinstance(record, DamagedRun):
            found.damaged.append(record)
        elif isinstance(record, AuditEntry):
            found.audits.append(msgspec.structs.replace(record, run_id=entry.name, path=str(entry)))
        else:
            found.comparisons.append(msgspec.structs.replace(record, run_id=entry.name))
    return found
