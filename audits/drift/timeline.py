"""Drift over time: every drift run of a model against one reference set, oldest batch first.

A batch's time is its ``--batch-date`` when one was given, else the time of its drift run.

A pure function over stored drift records (read through the run model): nothing is
recomputed, each point carries the stored numbers of one ``drift.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from audits.errors import AuditError
from audits.runs import DriftRecord, StoredRun


@dataclass(frozen=True)
class TimelinePoint:
    """One drift run: when, which batch and version, and its stored statistics."""

    run_id: str
    created: str
    batch: str
    version: str
    n_images: int
    drift: bool
    mmd2: float
    mmd_p: float
    prediction_p: float
    prediction_drift: bool
    drifted: tuple[str, ...]  # the properties that drifted, in stored order
    batch_date: str | None = None  # ``--batch-date`` as stored
    property_p: dict[str, float | None] = field(default_factory=dict)  # Holm-adjusted when stored
    accuracy: float | None = None  # only where the batch was labelled
    accuracy_low: float | None = None
    accuracy_high: float | None = None
    n_labelled: int | None = None


@dataclass
class Timeline:
    """The points, oldest first, and the drift runs that could not be read (run id, reason)."""

    points: list[TimelinePoint]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def point(run_id: str, d: DriftRecord) -> TimelinePoint:
    """A drift record as one point of the timeline."""
    acc = d.predictions.accuracy
    labelled = acc is not None and acc.current is not None and acc.n_current_labelled > 0
    return TimelinePoint(
        run_id=run_id,
        created=d.created,
        batch_date=d.current.date,
        batch=d.batch,
        version=d.model.version,
        n_images=d.current.n_images,
        drift=d.drift,
        mmd2=d.embedding.mmd2,
        mmd_p=d.embedding.p_value,
        prediction_p=d.predictions.p_value,
        prediction_drift=d.predictions.drift,
        drifted=tuple(p.name for p in d.drifted_properties),
        property_p={
            p.name: p.p_adjusted if p.p_adjusted is not None else p.p_value for p in d.properties
        },
        accuracy=acc.current if labelled else None,
        accuracy_low=acc.current_ci_low if labelled else None,
        accuracy_high=acc.current_ci_high if labelled else None,
        n_labelled=acc.n_current_labelled if labelled else None,
    )


def when(p: TimelinePoint) -> str:
    """The batch's time on the timeline: its ``--batch-date``, else its drift run's time."""
    return p.batch_date or p.created


def drift_timeline(runs: Iterable[StoredRun], model: str, fingerprint: str) -> Timeline:
    """The drift runs of ``model`` (any version) against reference ``fingerprint``, oldest first.

    Ordered by ``when`` (the batch date, else the run's time; ISO strings, so a day sorts
    before the times within it), then ``created`` and run id (run ids start with the UTC time,
    so ties stay stable). A damaged drift run is skipped and named in ``skipped``.
    """
    points: list[TimelinePoint] = []
    skipped: list[tuple[str, str]] = []
    for run in runs:
        if run.kind != "drift" or run.identity.name != model:
            continue
        try:
            record = run.drift
        except AuditError as exc:
            skipped.append((run.run_id, str(exc)))
            continue
        if record.reference.fingerprint == fingerprint:
            points.append(point(run.run_id, record))
    points.sort(key=lambda p: (when(p), p.created, p.run_id))
    return Timeline(points, skipped)


def timeline_frame(points: list[TimelinePoint]) -> pd.DataFrame:
    """One row per point (its fields; ``p <property>`` columns for each property's p-value)."""
    names: list[str] = []
    for p in points:
        names += [n for n in p.property_p if n not in names]
    rows = []
    for p in points:
        row = {
            "run_id": p.run_id,
            "when": when(p),
            "batch_date": p.batch_date,
            "created": p.created,
            "batch": p.batch,
            "version": p.version,
            "n_images": p.n_images,
            "drift": p.drift,
            "mmd2": p.mmd2,
            "mmd_p": p.mmd_p,
            "prediction_p": p.prediction_p,
            "prediction_drift": p.prediction_drift,
            "drifted": ", ".join(p.drifted),
            "accuracy": p.accuracy,
            "accuracy_low": p.accuracy_low,
            "accuracy_high": p.accuracy_high,
            "n_labelled": p.n_labelled,
        }
        row.update({f"p {n}": p.property_p.get(n) for n in names})
        rows.append(row)
    return pd.DataFrame(rows)
