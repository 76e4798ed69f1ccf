"""What a reader calls a drift run's current batch: ``--label`` or the data set's folder name.

Import-light on purpose: the run model and the renderers call ``batch_name`` for older records."""

from __future__ import annotations

from pathlib import Path

from audits.errors import AuditError

#: Manifest stems that say nothing about the batch; the folder holding them names it instead.
_GENERIC_STEMS = {"manifest", "data", "dataset", "index", "labels", "images", "list", "files"}
MAX_LABEL = 80


def batch_name(source: str | Path) -> str:
    """``fixtures/data/fan_batch/manifest.csv`` -> ``fan_batch``; ``shots/may.csv`` -> ``may``;
    an ImageFolder -> its folder name."""
    path = Path(str(source).rstrip("/\\") or ".")
    if path.suffix.lower() in (".csv", ".parquet"):
        stem = path.stem
        if stem.lower() in _GENERIC_STEMS and path.parent.name:
            return path.parent.name
        return stem
    return path.name or str(path)


def check_label(label: str | None) -> str | None:
    """The ``--label`` text, stripped; AuditError when it is empty, too long or multi-line."""
    if label is None:
        return None
    text = label.strip()
    if not text or len(text) > MAX_LABEL or any(ch in text for ch in "\r\n\t"):
        raise AuditError(
            f"--label {label!r}: give a short one-line name for the batch "
            f"(1 to {MAX_LABEL} characters, e.g. --label 'fan photos, May')"
        )
    return text
