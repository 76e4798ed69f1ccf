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


class CodeFile(Part):
    """A source file of the model's architecture and its sha256 at audit time."""

    path: str  # relative to the model folder, or absolute for an installed package's file
    sha256: str


class ExternalFile(Part):
    """A file the card names by an absolute path outside the model folder."""

    field: str | None = None  # the card field: weights or classes
    path: str
    sha256: str


class AuditModelInfo(ModelInfo):
    """The audited model, with the code it ran: ``code_sha256`` is the architecture's source
    file, ``code_files`` every hashed source file, ``code_library`` a registry's package and
    version. Runs written before these were recorded have none of them."""

    code_sha256: str | None = None
    code_files: list[CodeFile] | None = None
    code_library: str | None = None
    external_files: list[ExternalFile] | None = None
    #: A graph format's name (torchscript, torch.export, onnx); None: architecture + weights.
    format: str | None = None
    #: The analyses the format supports (``audits.formats``); None: all of them.
    analyses: list[str] | None = None


class MetadataChange(Part):
    """A metadata value of a frozen set that changed since ``freeze`` (row, column, old → new)."""

    path: str
    column: str
    old: Any = None
    new: Any = None


class FreezeInfo(Part):
    """What the set's freeze record covers, and metadata changed since it (audits/freezing.py).

    ``covers_metadata`` is False for a record written before metadata was frozen;
    ``metadata_changes`` keeps the first 200 of ``n_metadata_changes``.
    """

    covers_metadata: bool | None = None
    metadata_sha256: str | None = None
    n_metadata_changes: int | None = None
    metadata_changes: list[MetadataChange] | None = None
    columns_added: list[str] | None = None
    columns_removed: list[str] | None = None
    note: str | None = None


class LineageInfo(Part):
    """Where a set made by ``relabel`` came from (its freeze record's ``lineage``): the parent
    set's fingerprint and manifest, the corrections file and its sha256, and what was applied.
    ``generation`` is 2 for a child of an original set, 3 for a grandchild…"""

    parent_fingerprint: str
    parent_source: str | None = None
    corrections_file: str | None = None
    corrections_sha256: str | None = None
    n_relabelled: int | None = None
    n_excluded: int | None = None
    n_kept: int | None = None
    reviewers: list[str] | None = None
    first_decision: str | None = None
    last_decision: str | None = None
    created: str | None = None
    generation: int | None = None
    parent_n_images: int | None = None


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
    freeze: FreezeInfo | None = None
    lineage: LineageInfo | None = None


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


class EmbeddingMapBlock(Part):
    """The 2-D embedding map (``audits/embedding_map.py``): ``method`` umap or pca, ``n`` points,
    ``seconds`` to compute, ``params`` as used; also ``embedding-map/map.json``."""

    method: Literal["umap", "pca"]
    n: int
    seconds: float
    params: dict[str, Any]
    file: str | None = None


class EngineInfo(Part):
    """Where the per-image stage ran when not in the auditing process (``--engine ray``):
    the cluster's address, Ray's version, the actors and their resources. Absent: local."""

    name: str
    address: str | None = None
    ray_version: str | None = None
    n_actors: int | None = None
    cpus_per_actor: Num = None
    gpus_per_actor: Num = None
    cluster_cpus: Num = None
    cluster_gpus: Num = None
    batch_size: int | None = None
    first_result_s: Num = None  # actors started and the first batch back, in seconds
    actors_reused: bool | None = None  # the actors of an earlier audit of this model, kept warm
    actor_start_s: Num = None  # seconds to start (or find) the actors
    explain: str | None = None  # where Grad-CAM ran: "local" (this process)


class AuditRecord(Part):
    """``audit.json``; ``explain`` and ``integrity`` are absent when skipped, an error if failed."""

    schema_version: int
    kind: Literal["audit"]
    run_id: str
    created: Created
    model: AuditModelInfo
    dataset: DatasetInfo
    auditor: Auditor
    device: DeviceInfo | None = None
    engine: EngineInfo | None = None
    embedding_source: str | None = None
    #: Stages the model's format cannot do, each with why (ONNX: explain, no gradients).
    unsupported_stages: dict[str, str] | None = None
    timings: Timings | None = None
    skipped: list[Skipped] | None = None
    metrics: Metrics
    explain: stage(ExplainBlock) | None = None
    integrity: stage(IntegrityBlock) | None = None
    comparison: dict[str, Any] | None = None
    embedding_map: stage(EmbeddingMapBlock) | None = None
