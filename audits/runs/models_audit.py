"""``audit.json``: the record of an audit run (auditapp/pipeline/audit.py, audits/metrics.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from audits.runs.base import (
    Auditor,
    Created,
    DataKind,
    DeviceInfo,
    ModelInfo,
    Num,
    Part,
    Skipped,
    stage,
)
from audits.runs.models_explain import ExplainBlock
from audits.runs.models_integrity import IntegrityBlock


class DatasetInfo(Part):
    """The held-out set: DESIGN.md's fields, then where it is and what it holds."""

    fingerprint: str
    n_images: int
    n_skipped: int
    n_listed: int | None = None
    path: str | None = None
    kind: DataKind | None = None
    frozen: bool | None = None
    metadata_columns: list[str] | None = None
    has_roi: bool | None = None


class Timings(Part):
    inference_s: Num = None
    images_per_s: Num = None
    total_s: Num = None


class TopK(Part):
    """Top-k accuracy for k = 1, 3, 5 (null when k exceeds the number of classes)."""

    top1: Num = Field(alias="1")
    top3: Num = Field(alias="3")
    top5: Num = Field(alias="5")


class ClassMetrics(Part):
    """One class: ``recall`` is its accuracy, ``ci_low``/``ci_high`` its Wilson 95% interval."""

    class_: str = Field(alias="class")
    support: int
    correct: int
    recall: Num
    precision: Num
    f1: Num
    ci_low: Num
    ci_high: Num
    predicted: int | None = None


class Confusion(Part):
    """Rows true classes, columns predicted, in ``labels`` order; ``normalized`` by row."""

    labels: list[str]
    matrix: list[list[int]]
    normalized: list[list[float]] | None = None


class ConfusedPair(Part):
    true: str
    predicted: str
    count: int
    rate: float


class Imbalance(Part):
    """Test (and training) images per class; ``ratio`` = largest / smallest non-zero count."""

    test_counts: dict[str, int]
    train_counts: dict[str, int] | None = None
    ratio: Num = None
    largest: str | None = None
    smallest: str | None = None
    min_support: int
    too_few: list[str]
    train_ratio: Num = None
    train_largest: str | None = None
    train_smallest: str | None = None


class CalibrationBin(Part):
    low: float
    high: float
    count: int
    confidence: Num
    accuracy: Num


class Calibration(Part):
    ece: Num
    n_bins: int
    bins: list[CalibrationBin]


class Metrics(Part):
    """The ``metrics`` block (audits.metrics.audit_metrics)."""

    accuracy: float
    accuracy_ci_low: Num = None
    accuracy_ci_high: Num = None
    balanced_accuracy: float
    macro_f1: float
    ece: Num
    top_k_accuracy: TopK
    per_class: list[ClassMetrics]
    confusion: Confusion
    n_classes: int | None = None
    n_labelled: int | None = None
    most_confused: list[ConfusedPair] | None = None
    imbalance: Imbalance | None = None
    calibration: Calibration | None = None


class AuditRecord(Part):
    """``audit.json``; ``explain`` and ``integrity`` are absent when skipped, an error if failed."""

    schema_version: int
    kind: Literal["audit"]
    run_id: str
    created: Created
    model: ModelInfo
    dataset: DatasetInfo
    auditor: Auditor
    device: DeviceInfo | None = None
    embedding_source: str | None = None
    timings: Timings | None = None
    skipped: list[Skipped] | None = None
    metrics: Metrics
    explain: stage(ExplainBlock) | None = None
    integrity: stage(IntegrityBlock) | None = None
    comparison: dict[str, Any] | None = None
