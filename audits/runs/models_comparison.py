"""``comparison.json``: is version B better than A and no slower (audits/compare.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from audits.runs.base import Auditor, Created, DeviceInfo, ModelIdentity, Num, Part

Verdict = Literal["promote", "hold"]
ClassStatus = Literal["regression", "large drop", "watch", "improved"]


class RunRef(Part):
    """One of the two compared audit runs."""

    run_id: str
    path: str | None = None
    model: ModelIdentity
    accuracy: Num = None
    balanced_accuracy: Num = None
    device: DeviceInfo | None = None


class PairedData(Part):
    """The held-out set both runs were scored on, and how many images paired up."""

    fingerprint: str | None
    path: str | None
    frozen: bool
    n_images: int
    n_aligned: int
    n_only_a: int
    n_only_b: int
    n_groups: int | None


class PairCounts(Part):
    both_right: int
    only_a_right: int
    only_b_right: int
    both_wrong: int


class McNemar(Part):
    b: int
    c: int
    statistic: Num
    p_value: Num
    p_exact: Num
    p_clustered: Num
    n_clusters: int | None
    design_effect: Num


class BalancedAccuracyDiff(Part):
    balanced_accuracy_a: Num
    balanced_accuracy_b: Num
    diff: Num
    ci_low: Num
    ci_high: Num
    p_value: Num
    method: str | None = None
    n_boot: int | None = None
    n_perm: int | None = None
    seed: int | None = None


class Overall(Part):
    """Paired accuracy difference B - A (Newcombe CI), McNemar, balanced accuracy."""

    n: int
    accuracy_a: Num
    accuracy_b: Num
    diff: Num
    ci_low: Num
    ci_high: Num
    ci_level: float
    ci_method: str | None = None
    counts: PairCounts
    mcnemar: McNemar
    balanced_accuracy: BalancedAccuracyDiff


class ClassComparison(Part):
    """Per-class recall difference B - A; ``p_adjusted`` is Benjamini-Hochberg."""

    class_: str = Field(alias="class")
    support: int
    recall_a: Num
    recall_b: Num
    diff: Num
    ci_low: Num
    ci_high: Num
    a_only: int
    b_only: int
    p_value: Num
    p_exact: Num
    p_clustered: Num
    p_adjusted: Num
    status: ClassStatus | None = None


class ModelSpeed(Part):
    latency_ms: float
    latency_ms_iqr: list[float]
    throughput: float
    throughput_iqr: list[float]
    params: int | None = None
    weights_bytes: int | None = None
    latency_ms_repeats: list[float] | None = None
    throughput_repeats: list[float] | None = None


class Speed(Part):
    """Ratios are B over A (latency > 1: B slower; throughput < 1: B slower)."""

    a: ModelSpeed
    b: ModelSpeed
    latency_ratio: float
    latency_ratio_iqr: list[float]
    throughput_ratio: float
    throughput_ratio_iqr: list[float]
    device: DeviceInfo | None = None
    settings: dict[str, Any] | None = None
    code_changed: bool | None = None  # a model's code changed since its audit (timed anyway)
    code_changes: list[dict[str, Any]] | None = None


class Thresholds(Part):
    alpha: float
    min_gain: float
    max_class_drop: float | None
    tolerance: float
    primary: str


class Check(Part):
    """One rule of the release gate: ``ok`` is None when it was skipped."""

    check: str
    ok: bool | None
    text: str


class WhatChanged(Part):
    """The images only one version gets right (McNemar's b and c); the list is ``file``."""

    only_a_right: int
    only_b_right: int
    file: str | None = None


class ComparisonRecord(Part):
    """``comparison.json``. Read the verdict from ``verdict``/``checks``, never from ``summary``."""

    schema_version: int
    kind: Literal["comparison"]
    run_id: str
    created: Created
    run_a: RunRef
    run_b: RunRef
    dataset: PairedData
    classes: list[str]
    class_map: dict[str, str] | None = None
    overall: Overall
    per_class: list[ClassComparison]
    what_changed: WhatChanged | None = None  # newer comparisons: counts of changed.parquet
    speed: Speed | None = None
    thresholds: Thresholds
    verdict: Verdict
    reasons: list[str]
    checks: list[Check]
    notes: list[str]
    summary: str
    auditor: Auditor

    @property
    def promote(self) -> bool:
        return self.verdict == "promote"

    @property
    def failed_checks(self) -> list[Check]:
        """The checks that block promotion, in stored order."""
        return [c for c in self.checks if c.ok is False]

    @property
    def reason_rows(self) -> list[tuple[str, bool]]:
        """Each of ``reasons`` with whether its check failed (the failed ones come first)."""
        failed = {c.text for c in self.failed_checks}
        return [(r, r in failed) for r in self.reasons]

    @property
    def summary_detail(self) -> str:
        """The summary line after its leading verdict word ("hold: ..." -> "...")."""
        return self.summary.removeprefix(f"{self.verdict}: ")
