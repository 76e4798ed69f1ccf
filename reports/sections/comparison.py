"""Section "Comparison with the previous version": the related comparison run (comparison.json):
the release verdict, overall and per-class differences with intervals, and speed."""

from __future__ import annotations

from typing import Any

from audits.related import RunBundle
from reports.present import fmt
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
from reports.sections.reading import dig, filled, mapping, pick, records
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
_OVERALL = ("accuracy_a", "accuracy_b", "diff", "ci_low", "ci_high", "ci_level")
_BALANCED = ("balanced_accuracy_a", "balanced_accuracy_b", "diff", "ci_low", "ci_high")
_BALANCED += ("p_value",)
_PER_CLASS = ("class", "support", "recall_a", "recall_b", "diff", "ci_low", "ci_high")
_PER_CLASS += ("p_adjusted", "status")


def _overall(o: dict[str, Any] | None) -> dict[str, Any] | None:
    """comparison.json's overall block: accuracy, McNemar, balanced accuracy."""
    if o is None:
        return None
    balanced = filled(o.get("balanced_accuracy"))
    return {
        **pick(o, *_OVERALL),
        "mcnemar": pick(o.get("mcnemar"), "p_value", "b", "c"),
        "balanced": pick(balanced, *_BALANCED) if balanced else None,
    }


def _speed(sp: dict[str, Any] | None) -> dict[str, Any] | None:
    """comparison.json's speed block: latency and throughput of A and B."""
    if sp is None:
        return None
    return {
        "a": pick(sp.get("a"), "latency_ms", "throughput"),
        "b": pick(sp.get("b"), "latency_ms", "throughput"),
        **pick(sp, "latency_ratio", "throughput_ratio"),
        "device": dig(sp, "device", "name"),
    }


def _read(b: RunBundle) -> dict[str, Any] | str:
    """comparison.json of the bundle's comparison; the reason when there is none."""
    if b.comparison is None:
        return "This version has not been compared with another one (python -m audits compare A B)."
    d = b.comparison.meta
    model_a = mapping(dig(d, "run_a", "model", default={}))
    model_b = mapping(dig(d, "run_b", "model", default={}))
    dataset = mapping(d.get("dataset"))
    return {
        **pick(d, "verdict", "summary"),
        "run_id": b.comparison.run_id,
        "a": (model_a.get("name"), model_a.get("version")),
        "b": (model_b.get("name"), model_b.get("version")),
        "reasons": [str(r) for r in d.get("reasons") or [] if r],
        "notes": [str(r) for r in d.get("notes") or [] if r],
        "n_aligned": dataset.get("n_aligned"),
        "fingerprint": dataset.get("fingerprint"),
        "overall": _overall(filled(d.get("overall"))),
        "per_class": records(d.get("per_class"), *_PER_CLASS),
        "speed": _speed(filled(d.get("speed"))),
        "speed_not_measured": d.get("speed") is None and "speed" in d,
    }


def _verdict(s: dict[str, Any]) -> Callout:
    verdict = s["verdict"]
    if verdict == "promote":
        tone, words = "good", "promote"
    elif verdict == "hold":
        tone, words = "warn", "hold for human investigation"
    else:
        tone, words = "info", fmt.text(verdict)
    return Callout(
        str(s["summary"] or verdict or "no verdict stored"), tone=tone, title=f"Verdict: {words}"
    )


def _identity(s: dict[str, Any]) -> KeyValues:
    (name_a, version_a), (name_b, version_b) = s["a"], s["b"]
    return KeyValues(
        [
            kv("Comparison run", s["run_id"], mono=True),
            kv("A (previous)", f"{fmt.text(name_a)} {fmt.text(version_a)}"),
            kv("B (this report)", f"{fmt.text(name_b)} {fmt.text(version_b)}"),
            kv("Paired images", fmt.count(s["n_aligned"])),
            kv("Held-out fingerprint", s["fingerprint"], mono=True),
        ]
    )


def _difference_row(name: str, a: Any, b: Any, o: dict[str, Any], p: Any) -> list[Cell]:
    return [
        c(name),
        pct_cell(a),
        pct_cell(b),
        c(fmt.pts(o["diff"])),
        c(fmt.pts_ci(o["ci_low"], o["ci_high"])),
        p_cell(p),
    ]


def _overall_table(o: dict[str, Any]) -> Table:
    mc, ba = o["mcnemar"], o["balanced"]
    level = fmt.pct(o["ci_level"], 0) if fmt.is_num(o["ci_level"]) else "95%"
    rows = [_difference_row("Accuracy", o["accuracy_a"], o["accuracy_b"], o, mc["p_value"])]
    if ba is not None:
        rows.append(
            _difference_row(
                "Balanced accuracy",
                ba["balanced_accuracy_a"],
                ba["balanced_accuracy_b"],
                ba,
                ba["p_value"],
            )
        )
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
        f"on the images only one version got right: A alone {fmt.count(mc['b'])}, "
        f"B alone {fmt.count(mc['c'])}.",
    )


def _by_diff(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Largest drop first; classes without a difference last."""
    return sorted(
        rows, key=lambda r: (not fmt.is_num(r["diff"]), r["diff"] if fmt.is_num(r["diff"]) else 0)
    )


def _per_class_table(per: list[dict[str, Any]]) -> Table:
    """Every class of a small model; else the flagged classes, then the largest drops."""
    ordered = _by_diff(per)
    if len(ordered) <= BODY_CLASSES:
        shown = ordered
    else:
        flagged = [r for r in per if r["status"]]
        shown = _by_diff((flagged + [r for r in ordered if not r["status"]])[:WORST_SHOWN])
    rows = [
        [
            c(r["class"]),
            count_cell(r["support"]),
            pct_cell(r["recall_a"]),
            pct_cell(r["recall_b"]),
            c(fmt.pts(r["diff"])),
            c(fmt.pts_ci(r["ci_low"], r["ci_high"])),
            p_cell(r["p_adjusted"]),
            c(fmt.text(r["status"] or ""), tone=_STATUS_TONE.get(str(r["status"]), "")),
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


def _speed_table(sp: dict[str, Any]) -> Table:
    a, b = sp["a"], sp["b"]
    rows = [
        [
            c("Latency, ms per image (batch 1)"),
            c(fmt.num(a["latency_ms"], 2)),
            c(fmt.num(b["latency_ms"], 2)),
            c(fmt.num(sp["latency_ratio"], 3)),
        ],
        [
            c("Throughput, images/s"),
            c(rounded(a["throughput"])),
            c(rounded(b["throughput"])),
            c(fmt.num(sp["throughput_ratio"], 3)),
        ],
    ]
    return Table(
        cols(("", "left", "40%"), ("A", "right"), ("B", "right"), ("B ÷ A (median)", "right")),
        rows,
        caption=f"Measured in one process on {fmt.text(sp['device'])}.",
    )


def comparison_section(b: RunBundle) -> Section | Omitted:
    """The comparison section, or why it is left out (no comparison in the store)."""
    s = _read(b)
    if isinstance(s, str):
        return Omitted(NAME, s)
    blocks: list[Block] = [_verdict(s)]
    if s["reasons"]:
        blocks += [Heading("Every check, failed ones first"), Bullets(s["reasons"])]
    if s["notes"]:
        blocks += [Heading("Notes"), Bullets(s["notes"])]
    blocks.append(_identity(s))
    if s["overall"] is not None:
        blocks += [Heading("Overall, B against A"), _overall_table(s["overall"])]
    if s["per_class"]:
        blocks += [Heading("Per class, largest drop first"), _per_class_table(s["per_class"])]
    if s["speed"] is not None:
        blocks += [Heading("Speed"), _speed_table(s["speed"])]
    elif s["speed_not_measured"]:
        blocks.append(Paragraphs(["Speed was not measured for this comparison."]))
    lead = "Is this version better than the one before it, beyond noise, and no slower?"
    return Section("comparison", NAME, blocks, lead=lead)
