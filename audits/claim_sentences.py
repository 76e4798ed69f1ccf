"""Claims in words: the sentence that states each verdict with its numbers, and the number
formats the sentences and reasons share (percentages through ``audits.formatting``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audits.formatting import ci, p_equals, pct, pct_short
from audits.slice_spec import describe

#: The three verdicts (stored in claims.json and stated by the sentences).
SUPPORTED, CONTRADICTED, NOT_ENOUGH = "supported", "contradicted", "not enough data"


def metric_name(metric: str) -> str:
    """``accuracy`` -> ``Accuracy``; ``recall:targa`` -> ``targa recall``."""
    name, _, cls = metric.partition(":")
    return f"{cls} {name}" if cls else name


def points(x: float, exact: bool = True) -> str:
    """Percentage points without a unit: one decimal (``exact``), or as short as possible."""
    return f"{100 * x:.1f}" if exact else pct_short(x).removesuffix("%")


def signed_points(x: float) -> str:
    """``+2.3``, ``−1.0`` (a true minus sign) or ``0.0`` percentage points."""
    return ("+" if x > 0 else "−" if x < 0 else "") + points(abs(x))


def _in(spec: Mapping[str, Any]) -> str:
    return "all images" if not spec else f"images with {describe(spec)}"


def sentence(claim: Mapping[str, Any], r: Mapping[str, Any]) -> str:
    """The plain-language result of one evaluated claim, citing its numbers."""
    kind, verdict = claim["kind"], r["verdict"]
    if kind in ("lower", "higher"):
        return _comparison_sentence(claim, r)
    value = r["target"]
    if not r["n"]:
        scope = claim["of"] if kind.startswith("share") else claim["slice"]
        return f"No images in scope ({_in(scope)}), so the claim cannot be judged."
    cite = f"95% CI {ci(r['ci_low'], r['ci_high'])}, {r['count']:,} of {r['n']:,}"
    if kind.startswith("share"):
        among = f"of {_in(claim['of'])}, " if claim["of"] else ""
        noun = "" if claim["of"] else " of images"
        body = f"{among}{pct(r['measured'])}{noun} {_having(claim['slice'])} ({cite})"
        word = "at least" if kind == "share_at_least" else "at most"
    elif kind == "confused_more_than":
        where = "" if not claim["slice"] else f" (within {_in(claim['slice'])})"
        body = (
            f"{claim['class'].capitalize()} images{where} are predicted as {claim['with']} "
            f"{pct(r['measured'])} of the time ({cite})"
        )
        word = "more than"
    else:
        where = "" if not claim["slice"] else f" on {_in(claim['slice'])}"
        body = f"{_cap(metric_name(claim['metric']))}{where} is {pct(r['measured'])} ({cite})"
        word = "at least" if kind == "at_least" else "at most"
    target = f"{word} {pct_short(value)}"
    if verdict == CONTRADICTED:
        if kind.startswith("share") and r["measured"] < value:
            body = f"{among}only {body[len(among) :]}"
        return f"{_cap(body)}, not {target}."
    body = _cap(body)
    if verdict == SUPPORTED:
        return f"{body}: {target}, as claimed."
    if r["too_few"]:
        return (
            f"{body}: too few images to judge whether it is {target} "
            f"(at least {claim['min_support']} needed)."
        )
    return (
        f"{body}: the interval includes {pct_short(value)}, "
        f"so these images cannot tell whether it is {target}."
    )


def _having(spec: Mapping[str, Any]) -> str:
    """``are tagged dog`` for a single yes/no tag, else ``have source = fan``."""
    if len(spec) == 1 and next(iter(spec.values())) is True:
        return f"are tagged {next(iter(spec))}"
    return f"have {describe(spec)}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _comparison_sentence(claim: Mapping[str, Any], r: Mapping[str, Any]) -> str:
    name = _cap(metric_name(claim["metric"]))
    a, b = r["sides"]["slice"], r["sides"]["than"]
    a_name = describe(claim["slice"])
    b_name = describe(claim["than"]) if claim["than"] else "the other images"
    word = "higher" if claim["kind"] == "higher" else "lower"

    def part(label: str, s: Mapping[str, Any]) -> str:
        if not s["n"]:
            return f"{label} (no images)"
        return (
            f"{label} {pct(s['value'])} (95% CI {ci(s['ci_low'], s['ci_high'])}, {s['n']:,} images)"
        )

    both = f"{part(a_name, a)} vs {part(b_name, b)}"
    if r["too_few"]:
        return (
            f"{name}: {both}. Too few images to judge whether it is {word} on {a_name} "
            f"(at least {claim['min_support']} needed on each side)."
        )
    interval = f"{signed_points(r['ci_low'])} to {signed_points(r['ci_high'])}"
    diff = f"{signed_points(r['measured'])} points (95% CI {interval})"
    head = f"{name}: {both}, a difference of {diff}, one-sided {p_equals(r['p_value'])}"
    if r["verdict"] == SUPPORTED:
        return f"{head}. It is {word} on {a_name}, as claimed."
    if r["verdict"] == CONTRADICTED:
        gap = points(r["margin"], False)
        return f"{head}. It is not meaningfully {word} on {a_name} (any gap is under {gap} points)."
    return f"{head}. Too uncertain to say whether it is {word} on {a_name}."
