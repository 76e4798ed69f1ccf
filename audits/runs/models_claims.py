"""``claims-<sha>/claims.json``: claims checked against an audit run (audits/claims.py)."""

from __future__ import annotations

from typing import Any, Literal

from audits.runs.base import Created, Num, Part

ClaimKind = Literal[
    "lower",
    "higher",
    "at_least",
    "at_most",
    "share_at_least",
    "share_at_most",
    "confused_more_than",
]
ClaimVerdict = Literal["supported", "contradicted", "not enough data"]


class ClaimSide(Part):
    """One side of a comparison claim (``lower``/``higher``)."""

    count: int
    n: int
    value: Num
    ci_low: Num
    ci_high: Num


class ClaimScan(Part):
    """How the slice scan (integrity.json) answered the same comparison."""

    label: str
    test: str | None = None
    n_slices: int
    p_lower: Num
    p_lower_adj: Num
    p_value: Num = None
    p_value_adj: Num = None
    significantly_lower: bool


class ClaimExample(Part):
    """One image behind a claim; ``thumb`` is a thumbnail's path inside the run."""

    row: int
    path: str | None = None
    label: str | None = None
    pred: str | None = None
    correct: bool | None = None
    thumb: str | None = None


class ClaimResult(Part):
    """One claim: the claim as validated, its verdict, the numbers and one plain sentence."""

    id: str
    text: str
    kind: ClaimKind
    claim: dict[str, Any]
    verdict: ClaimVerdict
    sides: dict[str, ClaimSide] | None = None
    measured: Num
    ci_low: Num
    ci_high: Num
    target: Num
    margin: Num = None
    count: int | None
    n: int
    test: str | None
    p_value: Num
    reason: str | None
    too_few: bool
    ci_level: float
    sentence: str
    scan: ClaimScan | None = None
    scan_note: str | None = None
    n_behind: int | None = None
    examples: list[ClaimExample] | None = None


class ClaimsRecord(Part):
    """``claims.json``: the results of one claims file (its sha256 names the folder)."""

    kind: Literal["claims"]
    run_id: str
    created: Created
    claims_file: str
    claims_sha256: str
    results: list[ClaimResult]
    source: str | None = None  # "cli" or "dashboard"
