"""``integrity.json`` and its summary in ``audit.json["integrity"]`` (audits/integrity.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

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
    versions_compared: int | None = None
    versions_against: int | None = None


class SuspectLabels(Part):
    """Confident-learning suspects, lowest self-confidence first (``rows`` capped)."""

    method: str
    n_labelled: int
    n_flagged: int
    flagged_share: float
    thresholds: dict[str, float]
    rows: list[SuspectRow]
    note: str | None = None
    n_confident_learning: int | None = None  # all flags, before failure patterns are left out
    n_in_patterns: int | None = None  # flags inside a failure pattern: not suspects
    versions: list[str] | None = None  # other audited versions on the same frozen set
    n_cleared_by_versions: int | None = None  # flags another version predicts as labelled


class PatternSlice(Part):
    """A metadata value over- or under-represented among a pattern's images (Fisher, BH)."""

    column: str
    value: str
    label: str
    n_in: int
    share_in: float
    n_rest: int
    rest_support: int
    share_rest: float
    direction: str
    p_value: Num
    p_value_adj: Num


class FailurePattern(Part):
    """A confusion concentrated in a class pair or a metadata value: the model's, not noise."""

    rank: int
    kind: str  # "pair" | "slice"
    label: str
    predicted: str | None = None
    slice: str | None = None
    n_class: int
    n_errors: int
    n_flagged: int | None = None
    share: float
    expected: Num = None
    p_value: Num = None
    p_value_adj: Num = None
    slice_support: int | None = None
    rest_errors: int | None = None
    rest_support: int | None = None
    slices: list[PatternSlice] = []
    sentence: str
    rows: list[int] = []
    rows_truncated: bool = False
    thumbs: list[str] = []


class FailurePatterns(Part):
    """``integrity.json["failure_patterns"]`` (audits/failure_patterns.py)."""

    method: str
    alpha: float
    min_count: int
    min_ratio: float
    n_labelled: int
    n_errors: int
    background_rate: Num = None
    n_in_patterns: int
    patterns: list[FailurePattern]


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
    note: str | None = None  # why a pre-stated claim and this scan can answer differently


class ClassSliceRow(Part):
    """A class's recall within one metadata value vs on the rest of its images (the value
    with the largest gap of its class x column), Fisher exact, BH-adjusted (class_slices.py)."""

    class_: str = Field(alias="class")
    column: str
    kind: str
    value: Any
    label: str
    support: int
    correct: int
    recall: float
    ci_low: Num
    ci_high: Num
    rest_support: int
    rest_correct: int
    rest_recall: float
    rest_ci_low: Num
    rest_ci_high: Num
    gap: float
    p_value: Num
    p_adj: Num
    significant: bool


class RootCause(Part):
    """The association the summary leads with, in stored sentences."""

    class_: str = Field(alias="class")
    column: str
    value: Any
    label: str
    chosen_as: str | None = None
    top_confusion: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    #: The training mix makes the value a stand-in for the class (then the page says "Why").
    shortcut: bool | None = None
    also_affects: list[str] = []
    sentence: str
    advice: str


class ClassSlices(Part):
    """The class x slice cross-tab (``audits/class_slices.py``)."""

    test: str
    min_support: int
    min_gap: float
    alpha: float
    n_tested: int
    rows: list[ClassSliceRow]
    root_cause: RootCause | None = None


class IntegrityRecord(Part):
    """``integrity.json``: each section is its result or the error that stopped it."""

    options: dict[str, Any] | None = None
    leakage: LeakageSection
    suspect_labels: stage(SuspectLabels)
    slices: stage(Slices)
    class_slices: stage(ClassSlices) | None = None
    timings: dict[str, Num] | None = None
    failure_patterns: stage(FailurePatterns) | None = None  # absent before it existed


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
    n_in_patterns: int | None = None
    n_patterns: int | None = None


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
