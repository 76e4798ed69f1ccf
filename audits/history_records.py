"""A light listing of the store for the history of a model family: only the JSON records.

``scan_store`` validates every record in full and reads each audit's parquet footer; at 500
runs of a 250-class model that is 900 MB of ``audit.json`` (the confusion matrix is most of it)
through pydantic. The history needs a dozen fields per run, so this reads ``audit.json`` and
``comparison.json`` only and decodes just those fields with msgspec, which skips the rest
without building it (1.5 ms for a 1.8 MB record against 18 ms for ``json.loads`` alone).
The fields it reads are type-checked; a folder whose record is not JSON, lacks them or has
the wrong types is set apart as a ``DamagedRun`` with the reason, as ``scan_store`` does.
Tables and arrays are never opened, so a damaged table is left to the pages that read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import msgspec


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
    name: str | None = None
    version: str | None = None


class AuditModel(msgspec.Struct, frozen=True):
    name: str
    version: str


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
    """The fields of one ``audit.json`` the history shows; ``run_id`` is the folder's name."""

    created: str
    model: AuditModel
    dataset: DatasetRef
    metrics: HeadlineMetrics
    run_id: str = ""
    path: str = ""


class RunRef(msgspec.Struct, frozen=True):
    run_id: str
    model: ModelRef = ModelRef()


class PairedSet(msgspec.Struct, frozen=True):
    fingerprint: str | None = None


class Check(msgspec.Struct, frozen=True):
    check: str
    ok: bool | None
    text: str


class ComparisonEntry(msgspec.Struct, frozen=True):
    """The fields of one ``comparison.json`` the history shows (the release gate's verdict)."""

    created: str
    run_a: RunRef
    run_b: RunRef
    verdict: str
    checks: list[Check]
    dataset: PairedSet = PairedSet()
    run_id: str = ""


_AUDIT = msgspec.json.Decoder(AuditEntry)
_COMPARISON = msgspec.json.Decoder(ComparisonEntry)
#: The record files in the order ``audits.runs.open_run`` tries them (the first found decides).
_FILES = ("audit.json", "drift.json", "comparison.json")


@dataclass
class StoreRecords:
    """The store's audits and comparisons (in folder-name order) and its damaged folders."""

    audits: list[AuditEntry] = field(default_factory=list)
    comparisons: list[ComparisonEntry] = field(default_factory=list)
    damaged: list[DamagedRun] = field(default_factory=list)


def _decode(entry: Path, name: str, decoder: msgspec.json.Decoder) -> object:
    """The record of ``entry/name``; a ``DamagedRun`` naming the file and the problem."""
    kind = name.removesuffix(".json")
    try:
        return decoder.decode((entry / name).read_bytes())
    except msgspec.ValidationError as exc:
        return DamagedRun(entry, f"{name}: invalid {kind} record: {exc}")
    except msgspec.DecodeError as exc:
        return DamagedRun(entry, f"{name}: damaged ({exc})")
    except OSError as exc:
        return DamagedRun(entry, f"unreadable ({exc.strerror or exc})")


def read_records(store: str | Path) -> StoreRecords:
    """Every audit and comparison record in ``store`` (drift runs are skipped), read lightly.

    Hidden folders (runs still being written) and loose files are ignored, as in ``scan_store``.
    """
    store = Path(store)
    found = StoreRecords()
    try:
        with os.scandir(store) as it:
            entries = sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())
    except OSError:
        return found
    for name in entries:
        entry = store / name
        record_file = next((f for f in _FILES if (entry / f).is_file()), None)
        if record_file is None:
            found.damaged.append(
                DamagedRun(entry, "not a run folder (no audit.json, drift.json or comparison.json)")
            )
        elif record_file == "audit.json":
            _keep(found, found.audits, _decode(entry, record_file, _AUDIT), entry)
        elif record_file == "comparison.json":
            _keep(found, found.comparisons, _decode(entry, record_file, _COMPARISON), entry)
    return found


def _keep(found: StoreRecords, into: list, record: object, entry: Path) -> None:
    if isinstance(record, DamagedRun):
        found.damaged.append(record)
    elif isinstance(record, AuditEntry):
        into.append(msgspec.structs.replace(record, run_id=entry.name, path=str(entry)))
    else:
        into.append(msgspec.structs.replace(record, run_id=entry.name))
