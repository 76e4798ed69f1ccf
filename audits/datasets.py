"""Image sets: an ImageFolder or a CSV/Parquet manifest, fingerprints, and freezing.

A held-out set is frozen by fingerprint: sha256 over the sorted (path, file sha256, label)
rows. ``freeze`` records the fingerprint, every file's hash and label and every row's metadata
beside the data (``audits.freezing``); a later audit re-checks them and refuses a set whose
files or labels moved, naming the changed, added and missing files, and reports changed
metadata (row, column, old → new) as not frozen. Every image path must stay inside the data
set's folder after symbolic links are resolved (``audits.data_paths``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from audits.data_paths import Containment, refuse_outside, walk_images
from audits.errors import AuditError
from audits.freezing import FreezeStatus, Metadata, compare_metadata, lineage_block
from audits.freezing import read_record as _read_record
from audits.hashing import Digests
from audits.hashing import file_sha256 as _sha256
from audits.progress import tracked

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
MANIFEST_NAMES = ("manifest.csv", "manifest.parquet")
ROI_COLUMNS = ["roi_x0", "roi_y0", "roi_x1", "roi_y1"]
#: The predictions table's own columns, in order (``audits.inference.PredictionRows``); manifest
#: columns with these names are kept as meta_<name> (``RESERVED``).
TABLE_COLUMNS = (
    "row",
    "path",
    "label",
    "label_idx",
    "pred",
    "pred_idx",
    "confidence",
    "loss",
    "correct",
    "topk_idx",
    "topk_prob",
    "width",
    "height",
    "file_sha256",
)
RESERVED = set(TABLE_COLUMNS)


@dataclass
class ImageSet:
    """A data set: its root folder and one row per image (``path`` relative to ``root``)."""

    source: Path  # the manifest file or the ImageFolder folder
    root: Path
    kind: str  # "manifest" | "imagefolder"
    items: pd.DataFrame  # path, label (None when unlabelled), group?, roi_*?, metadata...

    @property
    def labelled(self) -> bool:
        return bool(self.items["label"].notna().any())

    @property
    def metadata_columns(self) -> list[str]:
        return [c for c in self.items.columns if c not in {"path", "label"}]

    @property
    def has_roi(self) -> bool:
        return all(c in self.items.columns for c in ROI_COLUMNS)

    @property
    def freeze_file(self) -> Path:
        if self.kind == "manifest":
            return self.source.with_name(self.source.stem + ".freeze.json")
        return self.root / "freeze.json"

    def abspath(self, rel: str) -> Path:
        return self.root / rel


def load_dataset(path: str | Path) -> ImageSet:
    """Open an ImageFolder, a flat folder of images (unlabelled), or a manifest file.

    A folder that holds ``manifest.csv`` or ``manifest.parquet`` is read as that manifest.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise AuditError(
            f"{path}: data set not found (expected an ImageFolder or a .csv/.parquet manifest)"
        )
    path = path.resolve()
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return _load_manifest(path / name)
        return _load_imagefolder(path)
    if path.suffix.lower() in {".csv", ".parquet"}:
        return _load_manifest(path)
    raise AuditError(
        f"{path}: not a data set; give an ImageFolder folder or a .csv/.parquet manifest"
    )


def _load_imagefolder(root: Path) -> ImageSet:
    rows: list[tuple[str, str | None]] = []
    within = Containment(root)
    outside: list[tuple[str, str]] = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            files, escaping = walk_images(entry, within, IMAGE_SUFFIXES)
            outside += escaping
            # sorted by path components, the order Path sorting gave ('a/b' before 'a-b')
            rows += [(rel, entry.name) for rel in sorted(files, key=lambda r: r.split("/"))]
        elif entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            rows.append((entry.name, None))
    labelled = {label for _, label in rows if label is not None}
    if labelled and any(label is None for _, label in rows):
        # A labelled ImageFolder with stray top-level files: those files have no class.
        rows = [r for r in rows if r[1] is not None]
    outside += within.outside(rel for rel, label in rows if label is None)
    refuse_outside(root, root, outside, "copy those images into the folder or remove the links")
    if not rows:
        raise AuditError(
            f"{root}: no images found (ImageFolder: one sub-folder per class holding image files)"
        )
    items = pd.DataFrame(rows, columns=["path", "label"])
    return ImageSet(source=root, root=root, kind="imagefolder", items=items)


def _refuse_repeated_header(file: Path) -> None:
    """A CSV header naming a column twice (pandas would silently keep the second as
    ``label.1``): which column is the label, or the group, would be a guess."""
    if file.suffix.lower() == ".parquet":
        return  # Parquet cannot hold two columns of one name
    try:
        with file.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return  # pandas has read it already; its own error stands for odd files
    names = [h.strip() for h in header]
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        raise AuditError(
            f"{file}: the header names column(s) {', '.join(repr(n) for n in twice)} more than "
            "once; rename or remove the extra column(s) so each name appears once"
        )


def _load_manifest(file: Path) -> ImageSet:
    try:
        if file.suffix.lower() == ".parquet":
            frame = pd.read_parquet(file)
        else:
            frame = pd.read_csv(
                file, dtype={"path": str, "label": str, "group": str}, keep_default_na=True
            )
    except Exception as exc:  # pandas raises many types for a bad file
        raise AuditError(
            f"{file}: cannot read the manifest ({type(exc).__name__}: {exc})"
        ) from None
    _refuse_repeated_header(file)
    if "path" not in frame.columns:
        raise AuditError(
            f"{file}: the manifest has no 'path' column (columns: {', '.join(map(str, frame.columns))})"
        )
    if frame.empty:
        raise AuditError(f"{file}: the manifest lists no images")
    if frame["path"].isna().any():
        raise AuditError(
            f"{file}: row {int(frame['path'].isna().idxmax()) + 2} has an empty 'path'"
        )
    root = file.parent
    frame["path"] = frame["path"].astype(str).str.replace("\\", "/", regex=False)
    paths = frame["path"]
    # Only absolute paths, drive letters, '..' and empty paths can leave lexically.
    suspect = (
        paths.str.startswith("/")
        | paths.str.contains("..", regex=False)
        | (paths.str[1:2] == ":")
        | (paths == "")
    )
    escaping = [p for p in paths[suspect] if not _inside(root, p)]
    if escaping:
        raise AuditError(
            f"{file}: {len(escaping)} path(s) leave the manifest's folder, e.g. '{escaping[0]}'; "
            "paths must be relative and stay inside it"
        )
    refuse_outside(
        file,
        root,
        Containment(root).outside(frame["path"].tolist()),
        "copy those images into the manifest's folder or remove those rows",
    )
    dupes = frame["path"][frame["path"].duplicated()]
    if not dupes.empty:
        raise AuditError(f"{file}: path '{dupes.iloc[0]}' is listed more than once")
    if "label" not in frame.columns:
        frame["label"] = None
    frame["label"] = frame["label"].astype(object).where(frame["label"].notna(), None)
    frame["label"] = frame["label"].map(lambda v: None if v is None else str(v).strip())
    missing_roi = [c for c in ROI_COLUMNS if c in frame.columns]
    if missing_roi and len(missing_roi) != 4:
        raise AuditError(
            f"{file}: region box needs all of {', '.join(ROI_COLUMNS)}; found only {', '.join(missing_roi)}"
        )
    rename = {c: f"meta_{c}" for c in frame.columns if c in RESERVED and c not in {"path", "label"}}
    frame = frame.rename(columns=rename)
    clashes = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if clashes:  # e.g. both 'pred' (kept as meta_pred: the name is reserved) and 'meta_pred'
        raise AuditError(
            f"{file}: column name(s) {', '.join(clashes)} appear twice once reserved names are "
            f"kept as meta_<name> (reserved: {', '.join(sorted(RESERVED - {'path', 'label'}))}); "
            "rename one of the columns"
        )
    frame = frame[["path", "label"] + [c for c in frame.columns if c not in {"path", "label"}]]
    return ImageSet(source=file, root=root, kind="manifest", items=frame.reset_index(drop=True))


def _inside(root: Path, rel: str) -> bool:
    """Whether a manifest path stays inside its folder lexically (no absolute path, no '..' out).

    The first, cheap check; symbolic links are resolved after it (``data_paths.Containment``).
    """
    if not rel or os.path.isabs(rel) or rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return False
    norm = os.path.normpath(rel)
    return norm != ".." and not norm.startswith("../")


def check_labels(image_set: ImageSet, classes: list[str]) -> None:
    """Refuse labels that are not classes of the model, listing them."""
    known = set(classes)
    labels = image_set.items["label"].dropna()
    unknown = sorted(set(labels) - known)
    if unknown:
        count = int(labels.isin(unknown).sum())
        shown = ", ".join(repr(u) for u in unknown[:10]) + (" …" if len(unknown) > 10 else "")
        raise AuditError(
            f"{image_set.source}: {count} image(s) have labels that are not classes of the model: {shown}; "
            "rename them to the model's classes or remove those rows"
        )


def file_sha256(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it cannot be read."""
    try:
        return _sha256(path)
    except OSError:
        return None


def hash_files(image_set: ImageSet, threads: int = 8) -> list[str | None]:
    """sha256 of every listed file (None for unreadable ones), in item order; hashlib frees the GIL."""
    paths = [image_set.abspath(p) for p in image_set.items["path"]]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(tracked(pool.map(file_sha256, paths, chunksize=64), len(paths), "hashing"))


def fingerprint_rows(rows: Iterable[tuple[str, str | None, str | None]]) -> str:
    """sha256 over the sorted (path, file sha256, label) rows."""
    return _digest_sorted(sorted(rows, key=lambda r: r[0]))


def _digest_sorted(rows: Iterable[tuple[str, str | None, str | None]]) -> str:
    # Streamed into one digest: joining 250,000 rows first for bytes_sha256 is slower.
    digest = hashlib.sha256()
    for path, sha, label in rows:
        digest.update(f"{path}\t{sha or ''}\t{'' if label is None else label}\n".encode())
    return digest.hexdigest()


def fingerprint(image_set: ImageSet, hashes: Sequence[str | None] | None = None) -> str:
    """The data set's fingerprint (hashes every file unless given)."""
    hashes = hash_files(image_set) if hashes is None else hashes
    if not isinstance(hashes, Digests):  # by position, whatever sequence was given
        hashes = list(hashes)
    paths = image_set.items["path"].to_numpy(dtype=object)
    labels = image_set.items["label"].to_numpy(dtype=object)
    if len(hashes) != len(paths):
        raise ValueError(f"{len(hashes)} hashes for {len(paths)} rows")
    # Sorted by index, each row's strings made as it is digested: sorting the rows themselves
    # would hold every hex hash and tuple at once (35 MB at 200,000 rows).
    order = np.argsort(paths, kind="stable")
    return _digest_sorted((paths[i], hashes[i], labels[i]) for i in order.tolist())


def freeze(
    image_set: ImageSet, hashes: Sequence[str | None] | None = None, lineage: dict | None = None
) -> dict:
    """Record the fingerprint, every file's hash and label and every row's metadata beside the
    data; returns the record. ``lineage`` (``audits.relabel``) names the set it was made from."""
    hashes = hash_files(image_set) if hashes is None else hashes
    unreadable = [p for p, h in zip(image_set.items["path"], hashes, strict=True) if h is None]
    if unreadable:
        raise AuditError(
            f"{image_set.abspath(unreadable[0])}: missing or unreadable; cannot freeze a set with missing files ({len(unreadable)} in all)"
        )
    meta = Metadata.of(image_set.items, image_set.metadata_columns)
    record = {
        "fingerprint": fingerprint(image_set, hashes),
        "frozen_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": image_set.source.name,
        "n_images": len(hashes),
        "metadata_columns": meta.columns,
        "metadata_sha256": meta.sha256(),
        "files": {
            p: {"sha256": h, "label": lab, "meta": m}
            for p, h, lab, m in zip(
                meta.paths, hashes, image_set.items["label"], meta.rows(), strict=True
            )
        },
    }
    if lineage is not None:
        record["lineage"] = lineage
    tmp = image_set.freeze_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(image_set.freeze_file)
    return record


def read_freeze(image_set: ImageSet) -> dict | None:
    """The freeze record of a set, or None when it was never frozen; a damaged one is refused."""
    return _read_record(image_set.freeze_file, image_set.source)


def freeze_status(image_set: ImageSet, hashes: Sequence[str | None]) -> FreezeStatus:
    """Compare the set with its freeze record.

    Files or labels that moved are refused (``AuditError`` naming them); changed metadata is
    returned, each value listed, and makes the set not frozen; a record from before metadata
    was covered is accepted with ``covers_metadata`` False.
    """
    record = read_freeze(image_set)
    if record is not None:
        _check_files(image_set, hashes, record)
    now = Metadata.of(image_set.items, image_set.metadata_columns)
    status = compare_metadata(record, image_set.freeze_file, image_set.source, now)
    status.lineage = lineage_block(record, image_set.freeze_file, image_set.source)
    return status


def check_frozen(image_set: ImageSet, hashes: Sequence[str | None]) -> bool:
    """Compare the set with its freeze record; refuse one whose files moved. Returns whether
    it is frozen (a record exists and no file, label or metadata value changed)."""
    return freeze_status(image_set, hashes).frozen


def _check_files(image_set: ImageSet, hashes: Sequence[str | None], record: dict) -> None:
    """Refuse a set whose files or labels moved since ``record``, naming them."""
    # One pass over the rows against the record (paths are unique: ``load_dataset`` refuses
    # duplicates), not a dict of every row on each side: that was 90 MB at 200,000 rows.
    then = record["files"]
    added: list[str] = []
    missing: list[str] = []
    changed: list[str] = []
    relabelled: list[str] = []
    matched = 0
    for p, h, lab in zip(image_set.items["path"], hashes, image_set.items["label"], strict=True):
        recorded = then.get(p)
        if recorded is None:
            added.append(p)
            continue
        matched += 1
        if h is None:
            missing.append(p)
        elif h != recorded["sha256"]:
            changed.append(p)
        elif lab != recorded.get("label"):
            relabelled.append(p)
    if matched < len(then):  # some recorded paths are no longer listed
        listed = set(image_set.items["path"])
        missing += [p for p in then if p not in listed]
    added, missing, changed, relabelled = map(sorted, (added, missing, changed, relabelled))
    if added or missing or changed or relabelled:
        parts = []
        for name, paths in (
            ("changed", changed),
            ("relabelled", relabelled),
            ("added", added),
            ("missing", missing),
        ):
            if paths:
                parts.append(
                    f"{len(paths)} {name} ({', '.join(paths[:5])}{' …' if len(paths) > 5 else ''})"
                )
        raise AuditError(
            f"{image_set.source}: the held-out set moved since it was frozen ({image_set.freeze_file.name}): "
            f"{'; '.join(parts)}. Once an image is test it stays test: restore the files, or freeze a new "
            "set under a new name"
        )
