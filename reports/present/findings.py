"""Page one's findings: what fails, why, what to do, and the answer to every stored claim.

All from stored values: the most confused pair in ``audit.json``, the root cause that
``audits/class_slices.py`` stored in ``integrity.json`` (its sentence and advice are stored
text), and the verdict sentences in ``claims-*/claims.json``. Nothing is recomputed here.
"""

from __future__ import annotations

from audits.errors import AuditError
from audits.runs import AuditRecord, StoredRun
from audits.runs.models_claims import ClaimResult
from audits.runs.models_integrity import ClassSlices, RootCause
from reports.present.fmt import ci, count, pct, pts, pts_ci

WHAT_FAILS, WHY, WHERE, WHAT_TO_DO = "What fails: ", "Why: ", "Where: ", "What to do: "


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def what_fails(audit: AuditRecord) -> str | None:
    """The most frequent confusion with its count and share of the true class."""
    pairs = audit.metrics.most_confused or []
    if not pairs:
        return None
    top = pairs[0]
    support = next((c.support for c in audit.metrics.per_class if c.class_ == top.true), None)
    of = f" of {count(support)}" if support else ""
    return (
        f"{_cap(top.true)} images are most often read as {top.predicted}: "
        f"{count(top.count)}{of} ({pct(top.rate)})."
    )


def root_cause(run: StoredRun) -> RootCause | None:
    """The stored root cause of the run's failures (None when absent or unreadable)."""
    try:
        record = run.integrity
    except AuditError:
        return None
    block = getattr(record, "class_slices", None) if record is not None else None
    return block.root_cause if isinstance(block, ClassSlices) else None


def why(cause: RootCause) -> str:
    """The stored root-cause sentence, and the other classes the same value hurts."""
    also = cause.also_affects
    if not also:
        return cause.sentence
    names = ", ".join(also[:-1]) + (" and " if len(also) > 1 else "") + also[-1]
    return f"{cause.sentence} The same slice ({cause.label}) also lowers the recall of {names}."


def finding_lines(run: StoredRun) -> list[str]:
    """'What fails: …', 'Why: …' (or 'Where: …' without a training shortcut), 'What to do: …'
    (the last two only with a stored cause)."""
    out = []
    fails = what_fails(run.audit)
    if fails:
        out.append(WHAT_FAILS + fails)
    cause = root_cause(run)
    if cause is not None:
        # "Why" only when the training mix explains the association (a stored shortcut);
        # otherwise the numbers show where the model fails, not why.
        head = WHY if cause.shortcut else WHERE
        out += [head + why(cause), WHAT_TO_DO + cause.advice]
    return out


_VERDICT_WORDS = {
    "supported": "supported",
    "contradicted": "contradicted",
    "not enough data": "not enough data to decide",
}


def claim_answer(r: ClaimResult) -> str:
    """One claim in plain words: what was said, the verdict, the measured value and interval."""
    said = f"“{r.text}”" if r.text else f"Claim {r.id}"
    verdict = _VERDICT_WORDS.get(r.verdict, r.verdict)
    if r.kind in ("lower", "higher"):
        value = f"a difference of {pts(r.measured)}"
        interval = pts_ci(r.ci_low, r.ci_high)
    else:
        value, interval = f"{pct(r.measured)} measured", ci(r.ci_low, r.ci_high)
    if r.measured is None:
        return f"{said}: {verdict} ({r.reason or 'no images in scope'})."
    cite = f" (95% CI {interval})" if r.ci_low is not None and r.ci_high is not None else ""
    return f"{said}: {verdict}, {value}{cite}."


def claim_answers(run: StoredRun) -> list[str]:
    """One sentence per stored claim (from the CLI or the dashboard), newest first."""
    try:
        stored = run.claims
    except AuditError:
        return []
    return [claim_answer(r) for found in stored for r in found.record.results]
