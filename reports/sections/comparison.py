"""Section "Comparison with the previous version": the related comparison run (comparison.json):
the release verdict, overall and per-class differences with intervals, and speed."""

from __future__ import annotations

from typing import Any

from audits.related import RunBundle
from audits.runs.models_comparison import ClassComparison, ComparisonRecord, Speed
from audits.store import Run
from audits.what_changed import ONLY_A, ONLY_B
from reports.changed_export import changed_frame
from reports.present import fmt, narrative, neighbours
from reports.sections.base import (
    Omitted,
    c,
    cols,
    count_cell,
    kv,
    more,
    p_cell,
    pct_cell,
    rounded,
)
from reports.tree import (
    BODY_CLASSES,
    WORST_SHOWN,
    Block,
    Bullets,
    Callout,
    Cell,
    Heading,
    KeyValues,
    Paragraphs,
    Section,
    Table,
)

NAME = "Comparison with the previous version"
_STATUS_TONE = {"regression": "bad", "large drop": "bad", "watch": "warn", "improved": "good"}
_VERDICT_TONE = {"promote": "good", "hold": "warn"}


NEWER_NAME = "Comparison with a newer version"


def _read(b: RunBundle) -> tuple[str, ComparisonRecord, bool] | str:
    """The comparison's run id, record and whether this run is its baseline (an older version
    compared with a newer one); the reason when there is none."""
    if b.comparison is not None:
        return b.comparison.run_id, b.comparison.comparison, False
    if b.successor is not None:
        return b.successor.run_id, b.successor.comparison, True
    return (
        "This version has not been compared with another one "
        "(python -m audits compare OLDER_RUN NEWER_RUN, the older version first)."
    )


def _verdict(d: ComparisonRecord) -> Callout:
    return Callout(
        narrative.verdict_detail(d) or d.summary or d.verdict,
        tone=_VERDICT_TONE.get(d.verdict, "info"),
        title=f"Verdict: {narrative.verdict_text(d.verdict)}",
    )


def _identity(run_id: str, d: ComparisonRecord, baseline: bool) -> KeyValues:
    a, b = d.run_a.model, d.run_b.model
    a_role, b_role = ("this report", "newer") if baseline else ("previous", "this report")
    return KeyValues(
        [
            kv("Comparison run", run_id, mono=True),
            kv(f"A ({a_role})", f"{fmt.text(a.name)} {fmt.text(a.version)}"),
            kv(f"B ({b_role})", f"{fmt.text(b.name)} {fmt.text(b.version)}"),
            kv("Paired images", fmt.count(d.dataset.n_aligned)),
            kv("Held-out fingerprint", d.dataset.fingerprint, mono=True),
        ]
    )


def _difference_row(name: str, a: Any, b: Any, diff: tuple[Any, Any, Any], p: Any) -> list[Cell]:
    """One metric of A and B: the values, B − A with its interval, and the p-value."""
    value, low, high = diff
    return [
        c(name),
        pct_cell(a),
        pct_cell(b),
        c(fmt.pts(value)),
        c(fmt.pts_ci(low, high)),
        p_cell(p),
    ]


def _overall_table(d: ComparisonRecord) -> Table:
    o = d.overall
    mc, ba = o.mcnemar, o.balanced_accuracy
    level = fmt.pct(o.ci_level, 0) if fmt.is_num(o.ci_level) else "95%"
    rows = [
        _difference_row(
            "Accuracy", o.accuracy_a, o.accuracy_b, (o.diff, o.ci_low, o.ci_high), mc.p_value
        ),
        _difference_row(
            "Balanced accuracy",
            ba.balanced_accuracy_a,
            ba.balanced_accuracy_b,
            (ba.diff, ba.ci_low, ba.ci_high),
            ba.p_value,
        ),
    ]
    return Table(
        cols(
            ("Metric", "left", "24%"),
            ("A", "right"),
            ("B", "right"),
            ("B − A", "right"),
            (f"{level} CI", "right", "22%"),
            ("p", "right"),
        ),
        rows,
        caption="Measured on the same images for both versions (paired). p is McNemar's test "
        f"on the images only one version got right: A alone {fmt.count(mc.b)}, "
        f"B alone {fmt.count(mc.c)}.",
    )


def _by_diff(rows: list[ClassComparison]) -> list[ClassComparison]:
    """Largest drop first; classes without a difference last."""
    return sorted(rows, key=lambda r: (not fmt.is_num(r.diff), r.diff if fmt.is_num(r.diff) else 0))


def _per_class_table(per: list[ClassComparison]) -> Table:
    """Every class of a small model; else the flagged classes, then the largest drops."""
    ordered = _by_diff(per)
    if len(ordered) <= BODY_CLASSES:
        shown = ordered
    else:
        flagged = [r for r in per if r.status]
        shown = _by_diff((flagged + [r for r in ordered if not r.status])[:WORST_SHOWN])
    rows = [
        [
            c(r.class_),
            count_cell(r.support),
            pct_cell(r.recall_a),
            pct_cell(r.recall_b),
            c(fmt.pts(r.diff)),
            c(fmt.pts_ci(r.ci_low, r.ci_high)),
            p_cell(r.p_adjusted),
            c(r.status or "", tone=_STATUS_TONE.get(str(r.status), "")),
        ]
        for r in shown
    ]
    where = "the flagged classes and the largest drops are shown, every class is in the JSON export"
    return Table(
        cols(
            ("Class", "left", "22%"),
            ("Images", "right"),
            ("A", "right"),
            ("B", "right"),
            ("B − A", "right"),
            ("95% CI", "right", "19%"),
            ("adj. p", "right"),
            ("Status", "left"),
        ),
        rows,
        caption="Recall of each class in both versions. adj. p is Benjamini–Hochberg adjusted "
        "across classes; a regression is a significant drop." + more(len(per), len(shown), where),
        css="compact",
    )


def _speed_table(sp: Speed) -> Table:
    a, b = sp.a, sp.b
    rows = [
        [
            c("Latency, ms per image (batch 1)"),
            c(fmt.num(a.latency_ms, 2)),
            c(fmt.num(b.latency_ms, 2)),
            c(fmt.num(sp.latency_ratio, 3)),
        ],
        [
            c("Throughput, images/s"),
            c(rounded(a.throughput)),
            c(rounded(b.throughput)),
            c(fmt.num(sp.throughput_ratio, 3)),
        ],
    ]
    # ``speed.device`` is free-form in the record (what the timing ran on).
    device = sp.device.name if sp.device is not None else None
    return Table(
        cols(("", "left", "40%"), ("A", "right"), ("B", "right"), ("B ÷ A (median)", "right")),
        rows,
        caption=f"Measured in one process on {fmt.text(device)}.",
    )


#: Examples of each side shown in the report (every image is in the JSON and CSV exports).
CHANGED_EXAMPLES = 5


def _changed_blocks(run: Run | None, d: ComparisonRecord) -> list[Block]:
    """The images only one version gets right: the counts and a few of each side."""
    frame = changed_frame(run)
    if frame is None:
        return []
    a, b = d.run_a.model.version or "A", d.run_b.model.version or "B"
    sides = frame["side"].astype(str)
    n_a, n_b = int((sides == ONLY_A).sum()), int((sides == ONLY_B).sum())
    rows: list[list[Cell]] = []
    for side, who in ((ONLY_B, f"only {b}"), (ONLY_A, f"only {a}")):
        for rec in frame[sides == side].head(CHANGED_EXAMPLES).itertuples(index=False):
            rows.append([c(who), c(rec.path), c(rec.label), c(rec.pred_a), c(rec.pred_b)])
    lead = Paragraphs(
        [
            f"{fmt.count(n_b)} images only {b} gets right and {fmt.count(n_a)} only {a} gets right: "
            "the pairs McNemar's test counts. A few of each follow; every one is in the JSON and CSV exports."
        ]
    )
    table = Table(
        cols(
            ("Right in", "left", "16%"),
            ("Image", "left", "36%"),
            ("True class", "left"),
            (f"{a} predicted", "left"),
            (f"{b} predicted", "left"),
        ),
        rows,
        caption=f"The first {CHANGED_EXAMPLES} of each list, in held-out set order.",
        css="compact",
    )
    return [Heading("What changed, image by image"), lead, table] if rows else [lead]


def comparison_section(b: RunBundle) -> Section | Omitted:
    """The comparison section, or why it is left out (no comparison in the store)."""
    read = _read(b)
    if isinstance(read, str):
        return Omitted(NAME, read)
    run_id, d, baseline = read
    blocks: list[Block] = [_verdict(d)]
    if baseline:
        blocks.insert(0, Paragraphs([neighbours.superseded_sentence(b) or ""]))
    else:
        newer = neighbours.superseded_sentence(b)
        if newer:  # a middle version: compared with the one before and the one after it
            blocks.insert(0, Paragraphs([newer]))
    reasons, notes = [r for r in d.reasons if r], [n for n in d.notes if n]
    if reasons:
        blocks += [Heading("Every check, failed ones first"), Bullets(reasons)]
    if notes:
        blocks += [Heading("Notes"), Bullets(notes)]
    blocks += [_identity(run_id, d, baseline), Heading("Overall, B against A"), _overall_table(d)]
    if d.per_class:
        blocks += [Heading("Per class, largest drop first"), _per_class_table(d.per_class)]
    blocks += _changed_blocks(b.successor if baseline else b.comparison, d)
    if d.speed is not None:
        blocks += [Heading("Speed"), _speed_table(d.speed)]
    elif "speed" in d.model_fields_set:  # stored as null: the user skipped the measurement
        blocks.append(Paragraphs(["Speed was not measured for this comparison."]))
    if baseline:
        lead = "Is the newer version better than this one, beyond noise, and no slower?"
        return Section("comparison", NEWER_NAME, blocks, lead=lead)
    lead = "Is this version better than the one before it, beyond noise, and no slower?"
    return Section("comparison", NAME, blocks, lead=lead)
