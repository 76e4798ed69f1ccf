"""``drift.json``: the record of a drift run (audits/drift.py); DESIGN.md's fields come first."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from audits.runs.base import (
    Auditor,
    Created,
    DeviceInfo,
    ModelInfo,
    Num,
    Part,
    Skipped,
)


class EmbeddingDrift(Part):
    """MMD² permutation test on the embeddings; ``drift`` when p < alpha.

    ``permutations`` is the number the p-value rests on. Newer runs say how it was reached:
    ``method`` (sequential, stopping once settled, or fixed), ``permutations_used`` (=
    ``permutations``) of at most ``permutations_max``, ``stopped_early``, the ``boundary``
    reached ("p <= alpha" / "p > alpha"; none when truncated) and the ``resampling_risk``.
    """

    mmd2: float
    p_value: float
    permutations: int
    drift: bool
    elapsed_s: Num = None
    method: str | None = None
    permutations_used: int | None = None
    permutations_max: int | None = None
    permutations_computed: int | None = None
    stopped_early: bool | None = None
    boundary: str | None = None
    resampling_risk: Num = None


class ClassCount(Part):
    class_: str = Field(alias="class")
    reference: int
    current: int
    reference_share: float
    current_share: float


class ClassTest(Part):
    """Chi-square test of side x predicted class."""

    test: str
    merged_into_other: list[str] | None = None
    p_value: float
    statistic: Num = None
    dof: int | None = None
    note: str | None = None
    counts: list[ClassCount] | None = None


class SideStats(Part):
    """Mean and median of a value on each side."""

    reference_mean: Num = None
    current_mean: Num = None
    reference_median: Num = None
    current_median: Num = None


class ConfidenceTest(SideStats):
    """Kolmogorov-Smirnov test on the max-softmax confidence."""

    test: str
    p_value: float
    statistic: Num = None


class DriftAccuracy(Part):
    """Accuracy on each labelled side; the counts and Wilson 95% intervals in newer runs."""

    reference: Num
    current: Num
    n_reference_labelled: int
    n_current_labelled: int
    reference_correct: int | None = None
    reference_ci_low: Num = None
    reference_ci_high: Num = None
    current_correct: int | None = None
    current_ci_low: Num = None
    current_ci_high: Num = None


class PredictionDrift(Part):
    """Predicted classes and confidence, combined by Bonferroni."""

    p_value: float
    drift: bool
    combined: str | None = None
    classes: ClassTest | None = None
    confidence: ConfidenceTest | None = None
    accuracy: DriftAccuracy | None = None


class PropertyDrift(SideStats):
    """One image property; ``drift`` when its Holm-adjusted p-value is below alpha.

    Numeric properties have the side statistics, categorical ones the shares of each value.
    """

    name: str
    p_value: Num
    drift: bool
    kind: Literal["numeric", "categorical"] | None = None
    test: str | None = None
    reference_share: dict[str, float] | None = None
    current_share: dict[str, float] | None = None
    note: str | None = None
    p_adjusted: Num = None


class DriftSet(Part):
    """The reference or the current set."""

    path: str
    name: str | None = None  # what a reader calls the set: ``--label`` or its folder's name
    date: str | None = None  # the current batch's ``--batch-date``: YYYY-MM-DD or a UTC time
    root: str | None = None
    kind: str | None = None
    fingerprint: str
    n_images: int
    n_skipped: int | None = None
    n_listed: int | None = None
    n_labelled: int | None = None
    frozen: bool | None = None


class DriftExample(Part):
    """A current image far from the reference (``ratio``: distance / typical distance)."""

    path: str
    abspath: str | None = None
    distance: float
    ratio: Num
    pred: str
    confidence: float
    label: str | None
    thumb: str | None = None  # a small PNG inside the run (``thumbs/…``), when written


class DriftRecord(Part):
    """``drift.json``: drift = embedding OR predictions OR any property."""

    drift: bool
    embedding: EmbeddingDrift
    predictions: PredictionDrift
    properties: list[PropertyDrift]
    properties_method: dict[str, Any] | None = None
    schema_version: int
    kind: Literal["drift"]
    run_id: str
    created: Created
    alpha: float
    drift_rule: str | None = None
    drift_rule_text: str | None = None  # the rule in words
    model: ModelInfo
    reference: DriftSet
    current: DriftSet
    examples: list[DriftExample]
    examples_method: dict[str, Any] | None = None
    auditor: Auditor
    device: DeviceInfo | None = None
    skipped: dict[str, list[Skipped]] | None = None
    timings: dict[str, Num] | None = None
    files: dict[str, str] | None = None

    @property
    def drifted_properties(self) -> list[PropertyDrift]:
        return [p for p in self.properties if p.drift]

    @property
    def batch(self) -> str:
        """What a reader calls the current batch: the stored name, else its folder's name."""
        from audits.drift.batch import batch_name  # the runs package stays import-light

        return self.current.name or batch_name(self.current.path)
