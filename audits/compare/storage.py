"""Comparison folders in the store, the runs they name, and class-map files."""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path
from typing import Any

from audits.compare.align import Aligned
from audits.errors import AuditError
from audits.history_records import list_store
from audits.runs import write_record
from audits.store import (
    DamagedRun,
    Run,
    create_run,
    load_run,
    new_run_id,
    open_checked,
    warn_damaged,
)
from audits.what_changed import CHANGED_FILE, changed_images


def save_comparison(doc: dict[str, Any], aligned: Aligned, store: str | Path) -> Path:
    """Store the comparison as ``<store>/<run_id>/``: comparison.json, pairs.parquet and
    changed.parquet (the images only one version gets right, ``audits.what_changed``)."""
    model_a, model_b = doc["run_a"]["model"], doc["run_b"]["model"]
    versions = f"{model_a.get('version')}-vs-{model_b.get('version')}"
    run_id = new_run_id("comparison", str(model_b.get("name") or "model"), versions)
    doc["run_id"] = run_id
    with create_run(store, run_id) as tmp:
        aligned.frame.assign(group=aligned.frame["group"].astype("string")).to_parquet(
            tmp / "pairs.parquet", index=False
        )
        changed_images(aligned.frame).to_parquet(tmp / CHANGED_FILE, index=False)
        write_record(tmp, doc, "comparison")
    return Path(store) / run_id


def resolve_run(ref: str, store: str | Path, same_set_as: Run | None = None) -> Run:
    """A run folder path, a run id in ``store``, or ``name@version`` (its newest audit there;
    with ``same_set_as``, its newest audit on that run's held-out set when there is one, so that
    ``compare name@1.0.0 name@1.1.0`` pairs runs on one set, not a set and its corrected child)."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return load_run(path)
    candidate = Path(store) / ref
    if candidate.is_dir():
        return load_run(candidate)
    if "@" in ref:
        return _newest_audit(ref, store, same_set_as)
    raise AuditError(
        f"{ref}: not a run folder, nor a run id in {store} (or name@version; see python -m audits list --store {store})"
    )


def _newest_audit(ref: str, store: str | Path, same_set_as: Run | None) -> Run:
    """``name@version``'s newest audit: picked from the light listing, then only the picks are
    opened and checked (a store of 500 audits is not validated whole for one name)."""
    name, version = ref.split("@", 1)
    listing = list_store(store, kind="audit")
    warn_damaged(listing.damaged)  # a damaged run is skipped, never a reason to fail
    picks = [s for s in listing.runs if s.model.name == name and s.model.version == version]
    if picks and same_set_as is not None and same_set_as.kind == "audit":
        wanted = same_set_as.audit.dataset.fingerprint
        same = [s for s in picks if s.record.dataset.fingerprint == wanted]
        # A damaged same-set run falls back to a readable run on another set, as before.
        picks = same + [s for s in picks if s not in same]
    damaged: list[DamagedRun] = []
    for pick in picks:
        opened = open_checked(pick.path)
        if isinstance(opened, DamagedRun):
            damaged.append(opened)
            continue
        warn_damaged(damaged)
        return opened
    warn_damaged(damaged)
    if not damaged:  # a record too damaged to list may still name the model: say what is wrong
        damaged = [
            d for d in map(open_checked, (b.path for b in listing.damaged)) if _names(d, ref)
        ]
    if damaged:  # the only matches are damaged: say what is wrong with one
        raise AuditError(f"{ref}: the only audit run of it is damaged: {damaged[0]}")
    raise AuditError(f"{ref}: no audit run of {name} version {version} in {store}")


def _names(found: Run | DamagedRun, ref: str) -> bool:
    """Whether a damaged audit run's record still names ``ref`` (``name@version``)."""
    run = found.run if isinstance(found, DamagedRun) else None
    if run is None or run.kind != "audit":
        return False
    try:
        return f"{run.identity.name}@{run.identity.version}" == ref
    except AuditError:
        return False


def _toml_pairs(path: Path) -> list[tuple[str, str]]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuditError(f"{path}: not valid TOML ({exc})") from None
    if set(raw) == {"classes"} and isinstance(raw["classes"], dict):
        raw = raw["classes"]
    pairs = []
    for old, new in raw.items():
        if not isinstance(new, str):
            raise AuditError(
                f"{path}: '{old}' must map to a class name (old = \"new\"), got {type(new).__name__}"
            )
        pairs.append((old.strip(), new.strip()))
    return pairs


def _csv_pairs(path: Path) -> list[tuple[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AuditError(f"{path}: cannot read the class map ({exc})") from None
    if rows and [c.strip().lower() for c in rows[0]] == ["old", "new"]:
        rows = rows[1:]
    pairs = []
    for i, row in enumerate(rows, start=1):
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise AuditError(f"{path}: row {i} must be 'old,new' (two class names), got {row}")
        pairs.append((row[0].strip(), row[1].strip()))
    return pairs


def load_class_map(path: str | Path) -> dict[str, str]:
    """Read an old-name -> new-name class map from TOML or CSV.

    TOML: ``old = "new"`` pairs, at the top level or in a ``[classes]`` table.
    CSV: two columns, old then new, one rename per row; a first row ``old,new`` is a header.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise AuditError(f"{path}: class map not found")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        pairs = _toml_pairs(path)
    elif suffix == ".csv":
        pairs = _csv_pairs(path)
    else:
        raise AuditError(f'{path}: a class map is a .toml (old = "new") or .csv (old,new) file')
    mapping: dict[str, str] = {}
    for old, new in pairs:
        if old in mapping and mapping[old] != new:
            raise AuditError(
                f"{path}: class '{old}' is mapped twice ('{mapping[old]}' and '{new}')"
            )
        mapping[old] = new
    if not mapping:
        raise AuditError(f"{path}: the class map is empty")
    return mapping
