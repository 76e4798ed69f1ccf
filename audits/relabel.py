"""A new frozen version of a held-out set: the parent plus the expert decisions in force.

``relabel`` never edits the parent. It checks the parent is frozen and unchanged, checks every
decision against it (``audits.corrections.check_corrections``), applies the decision in force
per image (the last one in the file: ``keep`` leaves the row, ``relabel`` changes its label,
``exclude`` drops it), writes a new manifest with every metadata column kept, and freezes it
with a ``lineage`` block naming the parent's fingerprint and the corrections file's sha256.

The child's image paths are the parent's paths, always: a new manifest in the parent's folder
refers to the same files; one in another folder gets the images hard-linked there at the same
relative paths (copied only where a link cannot be made, e.g. across file systems), so nothing
escapes the new manifest's folder and ``compare --across-corrections`` pairs rows by path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from audits.corrections import (
    check_corrections,
    corrections_file,
    latest_decisions,
    parse_corrections,
    read_corrections_bytes,
)
from audits.datasets import (
    MANIFEST_NAMES,
    freeze,
    freeze_status,
    hash_files,
    load_dataset,
    read_freeze,
)
from audits.errors import AuditError
from audits.hashing import bytes_sha256

OUT_SUFFIXES = (".csv", ".parquet")


@dataclass
class RelabelResult:
    """The new manifest, its freeze record, and how its images were placed."""

    manifest: Path
    record: dict[str, Any]
    n_linked: int = 0
    n_copied: int = 0

    @property
    def lineage(self) -> dict[str, Any]:
        return self.record["lineage"]


def _relative_or_absolute(target: Path, folder: Path) -> str:
    """``target`` relative to ``folder`` (``../heldout/manifest.csv``), else absolute."""
    try:
        return Path(os.path.relpath(target, folder)).as_posix()
    except ValueError:  # another drive on Windows
        return str(target)


def _check_out(out: Path, parent: Path, force: bool) -> None:
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise AuditError(f"{out}: --out must be a .csv or .parquet manifest file")
    if out == parent:
        raise AuditError(f"{out}: --out is the parent manifest; a new version needs a new file")
    if out.is_dir():
        raise AuditError(f"{out}: --out is a folder; give the new manifest's file name")
    if out.exists() and not force:
        raise AuditError(f"{out}: already exists; choose another --out, or pass --force")


def _parent(data: str | Path) -> tuple[Any, list[str | None], dict[str, Any]]:
    """The parent set, its file hashes and its freeze record; refuses an unfrozen or moved set."""
    image_set = load_dataset(data)
    record = read_freeze(image_set)
    if record is None:
        raise AuditError(
            f"{image_set.source}: not frozen; decisions apply to a frozen set: freeze it first "
            f"(python -m audits freeze {image_set.source})"
        )
    hashes = hash_files(image_set)
    status = freeze_status(image_set, hashes)  # refuses moved files and labels, naming them
    if status.metadata_changed:
        raise AuditError(
            f"{image_set.source}: changed since it was frozen ({image_set.freeze_file.name}): "
            f"{status.describe_changes()}; restore it, or freeze it again as a new set first"
        )
    return image_set, hashes, record


def _raw_frame(image_set: Any) -> pd.DataFrame:
    """The parent's rows as written (every column, cells as text), aligned with its items."""
    if image_set.kind != "manifest":
        return image_set.items[["path", "label"]].copy()
    if image_set.source.suffix.lower() == ".parquet":
        raw = pd.read_parquet(image_set.source)
    else:
        raw = pd.read_csv(image_set.source, dtype=str, keep_default_na=False)
    raw.columns = [str(c).strip() for c in raw.columns]
    raw["path"] = image_set.items["path"].to_numpy()
    return raw


def _apply(image_set: Any, in_force: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The child's rows: relabelled rows changed, excluded rows dropped, the rest as they were."""
    raw = _raw_frame(image_set)
    raw["label"] = [
        "" if lab is None else lab for lab in image_set.items["label"]
    ]  # stripped, as the loader reads it
    by_path = in_force.set_index("path")
    decision = raw["path"].map(by_path["decision"])
    new_label = raw["path"].map(by_path["new_label"])
    changes = (decision == "relabel") & (new_label != raw["label"])
    raw.loc[changes, "label"] = new_label[changes]
    keep = decision != "exclude"
    counts = {
        "n_relabelled": int(changes.sum()),
        "n_excluded": int((~keep).sum()),
        "n_kept": int(((decision == "keep") | ((decision == "relabel") & ~changes)).sum()),
    }
    child = raw[keep].reset_index(drop=True)
    if child.empty:
        raise AuditError("every image is excluded by the corrections; a new set needs images")
    return child, counts


def _place_images(paths: list[str], src_root: Path, dst_root: Path) -> tuple[int, int]:
    """Hard-link (else copy) each image to the same relative path under ``dst_root``."""
    if dst_root.resolve() == src_root.resolve():
        return 0, 0
    linked = copied = 0
    for rel in paths:
        src, dst = src_root / rel, dst_root / rel
        if dst.exists():
            if os.path.samefile(src, dst):
                continue
            raise AuditError(
                f"{dst}: a different file is already there; the new set's images go to the "
                "parent's relative paths: choose an empty folder for --out"
            )
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
            linked += 1
        except OSError:  # another file system, or links not allowed: copy the bytes
            shutil.copy2(src, dst)
            copied += 1
    return linked, copied


def _write(frame: pd.DataFrame, out: Path) -> None:
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if out.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        tmp.replace(out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _lineage(
    parent: Any,
    record: dict[str, Any],
    out: Path,
    corrections: Path,
    digest: str,
    in_force: pd.DataFrame,
    counts: dict[str, int],
) -> dict[str, Any]:
    times = sorted(in_force["time"])
    generation = int((record.get("lineage") or {}).get("generation") or 1) + 1
    return {
        "parent_fingerprint": record["fingerprint"],
        "parent_source": _relative_or_absolute(parent.source, out.parent),
        "corrections_file": _relative_or_absolute(corrections, out.parent),
        "corrections_sha256": digest,
        **counts,
        "reviewers": sorted({r for r in in_force["reviewer"] if r}),
        "first_decision": times[0],
        "last_decision": times[-1],
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generation": generation,
        "parent_n_images": int(len(parent.items)),
    }


def known_classes(parent: Any, classes: list[str] | None) -> list[str]:
    """The classes a relabel may name: the model's when given, else the parent's labels."""
    if classes is not None:
        return list(classes)
    return sorted({lab for lab in parent.items["label"] if lab is not None})


def relabel(
    data: str | Path,
    out: str | Path,
    corrections: str | Path | None = None,
    *,
    classes: list[str] | None = None,
    force: bool = False,
) -> RelabelResult:
    """Apply the corrections to the frozen set ``data`` as a new frozen manifest at ``out``."""
    parent, hashes, record = _parent(data)
    out = Path(out).expanduser().resolve()  # a link to the parent is the parent
    _check_out(out, parent.source, force)
    file = (
        Path(corrections).expanduser()
        if corrections is not None
        else corrections_file(parent.source, parent.kind)
    )
    if out == file.resolve():
        raise AuditError(f"{out}: --out is the corrections file; give a new manifest's name")
    if parent.kind == "imagefolder" and out.parent == parent.root and out.name in MANIFEST_NAMES:
        raise AuditError(
            f"{out}: a {out.name} in the ImageFolder would make the folder read as that "
            "manifest; choose another name or folder"
        )
    data_bytes = read_corrections_bytes(file)
    decisions = parse_corrections(data_bytes, file)
    if decisions.empty:
        raise AuditError(f"{file}: holds no decisions; nothing to apply")
    check_corrections(parent, decisions, hashes, known_classes(parent, classes), file)
    in_force = latest_decisions(decisions)
    child, counts = _apply(parent, in_force)
    out.parent.mkdir(parents=True, exist_ok=True)
    linked, copied = _place_images(child["path"].tolist(), parent.root, out.parent)
    _write(child, out)
    lineage = _lineage(
        parent, record, out, file.absolute(), bytes_sha256(data_bytes), in_force, counts
    )
    child_set = load_dataset(out)
    # Linked files are the parent's files, hashed a moment ago; copies are hashed again.
    by_path = dict(zip(parent.items["path"], hashes, strict=True))
    child_hashes = None if copied else [by_path[p] for p in child_set.items["path"]]
    new_record = freeze(child_set, hashes=child_hashes, lineage=lineage)
    return RelabelResult(out, new_record, linked, copied)
