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


class ClaimsRecord(Part):
    """``claims.json``: the results of one claims file (its sha256 names the folder)."""

    kind: Literal["claims"]
    run_id: str
    created: Created
    claims_file: str
    claims_sha256: str
    results: list[ClaimResult]
