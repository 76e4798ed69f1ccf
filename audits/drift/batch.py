"""What a reader calls a drift run's current batch: ``--label`` or the data set's folder name.

Import-light on purpose: the run model and the renderers call ``batch_name`` for older records."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from audits.errors import AuditError

#: Manifest stems that say nothing about the batch; the folder holding them names it instead.
_GENERIC_STEMS = {"manifest", "data", "dataset", "index", "labels", "images", "list", "files"}
MAX_LABEL = 80
#: The earliest year a ``--batch-date`` may name (photographs, and four-digit ISO years).
MIN_YEAR = 1900


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


def check_batch_date(text: str | None) -> str | None:
    """``--batch-date``: when the batch's images were taken, as ``YYYY-MM-DD`` or an ISO time.

    A date stays a date; a time is stored in UTC (``YYYY-MM-DDTHH:MM:SSZ``; one without a zone
    is taken as UTC). AuditError with an example when it is neither.
    """
    if text is None:
        return None
    raw = text.strip()
    bad = AuditError(
        f"--batch-date {text!r}: give the day the batch was taken as YYYY-MM-DD "
        "(e.g. --batch-date 2026-05-31) or an ISO time (2026-05-31T14:00:00Z)"
    )
    try:
        day: date | None = date.fromisoformat(raw)
    except ValueError:
        day = None
    try:
        if day is not None:
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad from None
    if moment.year < MIN_YEAR:  # also keeps the stamps four-digit, so they sort as text
        raise bad
    if day is not None:
        return day.isoformat()
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
