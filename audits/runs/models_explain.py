"""``explain/summary.json`` and its compact copy in ``audit.json["explain"]`` (explain/stage.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from audits.runs.base import Num, Part, Skipped

#: ``energy_threshold``: "box area" (each image's box share) or a fixed share such as 0.1.
Threshold = Literal["box area"] | float


class PairSummary(Part):
    """Region numbers of one confused pair (true -> predicted) and the sentence that states them.

    The region fields are absent when the data set has no region box.
    """

    true: str
    predicted: str
    n_explained: int
    n_failures: int
    confidence_median: Num
    n_baseline: int | None = None
    threshold: Threshold | None = None
    n_with_box: int | None = None
    energy_median: Num = None
    area_median: Num = None
    lift_median: Num = None
    below_threshold: int | None = None
    peak_in_box_rate: Num = None
    true_class_energy_median: Num = None
    n_baseline_with_box: int | None = None
    baseline_energy_median: Num = None
    baseline_lift_median: Num = None
    baseline_below_threshold: int | None = None
    baseline_peak_in_box_rate: Num = None
    separation_auc: Num = None
    sentence: str


class ClassBaseline(Part):
    """Region numbers of the correctly classified images of one class."""

    class_: str = Field(alias="class")
    n: int
    n_with_box: int
    energy_median: Num
    area_median: Num
    lift_median: Num
    peak_in_box_rate: Num


class ExplainBlock(Part):
    """``audit.json["explain"]``: the part of ``summary.json`` kept in the audit record."""

    method: str
    layer: str | None
    folder: str | None = None
    n_failures: int
    n_explained: int
    n_baseline: int | None = None
    capped: bool | None = None
    top_by_loss: bool | None = None
    has_roi: bool | None = None
    energy_threshold: Threshold | None = None
    pairs: list[PairSummary]
    baselines: list[ClassBaseline] | None = None
    heatmaps_per_s: Num = None


class ExplainSummary(ExplainBlock):
    """``explain/summary.json`` (or ``explain-<method>/summary.json``)."""

    skipped: list[Skipped] | None = None
    device: str | None = None
    input_size: list[int] | None = None
    heatmap_size: list[int] | None = None
    normalisation: str | None = None
    layout: dict[str, str | None] | None = None
    options: dict[str, Any] | None = None
    timings: dict[str, Num] | None = None
    # ``explain`` on a stored run: whether the model code changed since the audit (null: the
    # run recorded no code hash); the changes when it did (--allow-code-change).
    code_changed: bool | None = None
    code_changes: list[dict[str, Any]] | None = None
