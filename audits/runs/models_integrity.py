"""``integrity.json`` and its summary in ``audit.json["integrity"]`` (audits/integrity.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag

from audits.runs.base import Num, Part, StageError, stage


class Unavailable(Part):
    """A check that could not run (e.g. no training manifest), and why."""

    available: Literal[False]
    reason: str | None


class AccuracyBlock(Part):
    n: int
    correct: int
    accuracy: Num
    ci_low: Num
    ci_high: Num


class LeakageAccuracy(Part):
    all: AccuracyBlock
    without_leaked: AccuracyBlock
    leaked: AccuracyBlock


class LeakCounts(Part):
    exact: int
    group: int
    group_test_images: int
    near: int
    leaked_images: int


class LeakPair(Part):
    """A held-out image found in the training set (exact or near duplicate)."""

    test_row: int
    test_path: str
    label: str | None
    train_path: str
    train_label: str | None
    n_matches: int | None = None
    found_by: list[str] | str | None = None
    phash_distance: int | None = None
    thumb_rms: Num = None
    cosine: Num = None
    test_thumb: str | None = None
    train_thumb: str | None = None


class LeakGroup(Part):
    """A ``group`` (one physical object) with images on both sides."""

    group: Any
    n_test: int
    n_train: int
    test_rows: list[int]
    test_paths: list[str]
    train_paths: list[str]
    test_thumb: str | None = None
    train_thumb: str | None = None


class NearCheck(Part):
    """The near-duplicate rule as run."""

    method: str | None = None
    phash_max_distance: int | None = None
    thumb_rms_max: Num = None
    cosine_min: Num = None
    embeddings: bool | None = None
    n_train_searched: int | None = None
    sampled: bool | None = None
    n_train_embedded: int | None = None
    unreadable_test_images: int | None = None
    closest_unflagged: dict[str, Any] | None = None
    note: str | None = None
    embedding_source: str | None = None


class LeakageChecks(Part):
    exact: str
    group: str
    near: NearCheck


class Leakage(Part):
    """Training/held-out overlap: counts are complete, the lists capped (see ``truncated``)."""

    available: Literal[True]
    n_test: int
    n_train: int
    checks: LeakageChecks
    counts: LeakCounts
    exact: list[LeakPair]
    groups: list[LeakGroup]
    near: list[LeakPair]
    truncated: dict[str, bool]
    leaked_rows: list[int]
    accuracy: LeakageAccuracy
    training_manifest: str | None = None
    training_root: str | None = None


def _leakage_tag(value: Any) -> str:
    if isinstance(value, dict):
        if "error" in value:
            return "<error>"
        return "<result>" if value.get("available") is True else "<unavailable>"
    return {Leakage: "<result>", Unavailable: "<unavailable>"}.get(type(value), "<error>")


LeakageSection = Annotated[
    Annotated[Leakage, Tag("<result>")]
    | Annotated[Unavailable, Tag("<unavailable>")]
    | Annotated[StageError, Tag("<error>")],
    Discriminator(_leakage_tag),
]


class SuspectRow(Part):
    rank: int
    row: int
    path: str
    label: str
    suggested: str
    predicted: str
    confidence: float
    self_confidence: float
    thumb: str | None = None


class SuspectLabels(Part):
    """Confident-learning suspects, lowest self-confidence first (``rows`` capped)."""

    method: str
    n_labelled: int
    n_flagged: int
    flagged_share: float
    thresholds: dict[str, float]
    rows: list[SuspectRow]
    note: str | None = None


class SliceColumn(Part):
    column: str
    kind: str
    bucketing: str | None
    n_slices: int


class SliceRow(Part):
    """One metadata value: accuracy, Wilson CI, Fisher test against the rest (BH-adjusted)."""

    rank: int | None = None  # in ``weakest`` only
    column: str
    kind: str
    value: Any
    label: str
    support: int
    correct: int
    accuracy: float
    ci_low: Num
    ci_high: Num
    rest_support: int
    rest_accuracy: Num
    p_value: Num
    p_lower: Num
    p_value_adj: Num
    p_lower_adj: Num
    significantly_lower: bool


class Slices(Part):
    test: str
    min_support: int
    alpha: float
    n_labelled: int
    accuracy: Num
    columns: list[SliceColumn]
    slices: list[SliceRow]
    weakest: list[SliceRow]


class IntegrityRecord(Part):
    """``integrity.json``: each section is its result or the error that stopped it."""

    options: dict[str, Any] | None = None
    leakage: LeakageSection
    suspect_labels: stage(SuspectLabels)
    slices: stage(Slices)
    timings: dict[str, Num] | None = None


# --- the compact copy in audit.json -----------------------------------------------------------


class LeakageSummary(Part):
    """Counts and accuracies when ``available``; otherwise ``reason``."""

    available: bool
    reason: str | None = None
    exact: int | None = None
    group: int | None = None
    group_test_images: int | None = None
    near: int | None = None
    leaked_images: int | None = None
    accuracy: Num = None
    accuracy_without_leaked: Num = None


class SuspectSummary(Part):
    n_flagged: int
    top: list[str]


class SliceBrief(Part):
    label: str
    support: int
    accuracy: float
    ci_low: Num
    ci_high: Num
    p_lower_adj: Num


class SlicesSummary(Part):
    n_slices: int
    n_significantly_lower: int
    weakest: list[SliceBrief]


class IntegrityBlock(Part):
    """``audit.json["integrity"]``: the summary of ``integrity.json``."""

    file: str | None = None
    leakage: LeakageSummary
    suspect_labels: stage(SuspectSummary)
    slices: stage(SlicesSummary)
