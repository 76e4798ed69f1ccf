"""Every sentence of the release gate, worded once: check texts, notes and the verdict line.

The decision (``audits.compare.decision``) decides with numbers and hands the values here;
nothing reads these texts back.
"""

from __future__ import annotations

from typing import Any

from audits.compare.thresholds import secondary_of
from audits.formatting import p_equals
from audits.speed import SpeedResult

PROMOTE = "promote"
HOLD = "hold"
SUMMARY_CLASSES = 5  # failing classes named in the verdict line (all are in `checks`)
NO_CLASS_WORSE = "no class significantly worse"


def signed_points(x: float) -> str:
    """A difference of proportions in points, signed: '+2.1'."""
    return f"{100 * x:+.1f}"


def metric_text(name: str, m: dict[str, Any], primary: bool) -> str:
    """'overall +2.1 points (95% CI +0.9 to +3.3, McNemar p=0.003)'."""
    level = round(100 * m.get("ci_level", 0.95))
    ci = f"{level}% CI {signed_points(m['ci_low'])} to {signed_points(m['ci_high'])}"
    if name == "accuracy":
        mc = m["mcnemar"]
        test = (
            "clustered McNemar"
            if mc.get("p_clustered") is not None and mc["p_clustered"] > mc["p_exact"]
            else "McNemar"
        )
        label = "overall" if primary else "accuracy"
        return f"{label} {signed_points(m['diff'])} points ({ci}, {test} {p_equals(mc['p_value'])})"
    return (
        f"balanced accuracy {signed_points(m['diff'])} points "
        f"({ci}, sign-flip {p_equals(m['p_value'])})"
    )


def overall_text(outcome: str, primary_text: str, min_gain: float, agree: bool) -> str:
    """The primary metric's check; ``outcome`` is better, worse, small gain or no gain."""
    if outcome == "better":
        return primary_text
    if outcome == "worse":
        return f"{primary_text}: significantly worse"
    if outcome == "small gain":
        return f"{primary_text}: below the required gain of {min_gain:g} points"
    tail = "; the two models agree on every image" if agree else ""
    return f"no significant gain: {primary_text}{tail}"


def secondary_text(other_text: str, diff: float, worse: bool) -> str:
    """The other headline metric's check (it must not be significantly worse)."""
    if worse:
        return f"{other_text}: significantly worse"
    return other_text + (": not significantly worse" if diff < 0 else "")


def class_text(row: dict[str, Any], status: str, max_class_drop: float | None) -> str:
    """A failing class: 'targa recall -6.0 points (adjusted p=0.012)'."""
    if status == "regression":
        detail = f"adjusted {p_equals(row['p_adjusted'])}"
    else:
        detail = (
            f"{p_equals(row['p_value'])}, adjusted {p_equals(row['p_adjusted'])}; "
            f"a drop of {max_class_drop:g} points or more"
        )
    return f"{row['class']} recall {signed_points(row['diff'])} points ({detail})"


def watch_note(row: dict[str, Any]) -> str:
    """A large drop on too few images to be significant."""
    return (
        f"{row['class']} recall {signed_points(row['diff'])} points on {row['support']} images "
        f"is not significant ({p_equals(row['p_value'])}); too few images to tell, worth a look"
    )


def speed_text(speed: SpeedResult, tolerance: float, slower: bool) -> str:
    """The speed check, from the paired B/A ratios that decide it."""
    lat_pct = 100 * (speed.latency_ratio - 1)
    thr_pct = 100 * (speed.throughput_ratio - 1)
    # Percentages come from the paired B/A ratios that decide; the per-model medians (in the
    # table and the JSON) are taken over different moments and can disagree by a few percent.
    detail = f"latency {lat_pct:+.0f}%, throughput {thr_pct:+.0f}%"
    if slower:
        return f"B is slower beyond the {100 * tolerance:g}% tolerance: {detail}"
    return f"no slower: {detail} (tolerance {100 * tolerance:g}%)"


def noisy_speed_note(spread: float, tolerance: float) -> str:
    return (
        f"speed measurements are noisy (B/A ratios vary by {100 * spread:.0f}% between "
        f"repeats, more than the {100 * tolerance:g}% tolerance); re-run on a quiet "
        "machine before trusting the speed check"
    )


def verdict_reasons(verdict: str, checks: list[dict[str, Any]], secondary: str) -> str:
    """The verdict line without its ``promote: ``/``hold: `` head (for sentences elsewhere).

    A promotion lists every check but the secondary metric; a hold lists the failed metric
    checks, the worst classes (at most ``SUMMARY_CLASSES``), then speed, after "<the primary
    metric's gain> but" when that gain alone would have promoted; ``checks`` keeps all.
    """
    if verdict == PROMOTE:
        return "; ".join(c["text"] for c in checks if c["ok"] is None or c["check"] != secondary)
    failed = [c for c in checks if c["ok"] is False]
    metric_fails = [c["text"] for c in failed if c["check"] in ("overall", secondary)]
    class_fails = [c["text"] for c in failed if c["check"].startswith("class:")]
    speed_fails = [c["text"] for c in failed if c["check"] == "speed"]
    if len(class_fails) > SUMMARY_CLASSES:
        more = len(class_fails) - SUMMARY_CLASSES
        class_fails = class_fails[:SUMMARY_CLASSES] + [f"and {more} more classes worse"]
    said = "; ".join(metric_fails + class_fails + speed_fails)
    # A passed overall check's text is the primary metric's gain, worded as in metric_text.
    gain = next((c["text"] for c in checks if c["check"] == "overall" and c["ok"]), None)
    return f"{gain} but {said}" if gain is not None else said


def verdict_line(verdict: str, checks: list[dict[str, Any]], secondary: str) -> str:
    """The one-line verdict, 'promote: …' or 'hold: …' (the CLI's last line of stdout)."""
    return f"{verdict}: {verdict_reasons(verdict, checks, secondary)}"


def document_reasons(doc: dict[str, Any]) -> str:
    """``verdict_reasons`` of a stored ``comparison.json`` (its ``summary`` without the head)."""
    return verdict_reasons(
        doc["verdict"], doc["checks"], secondary_of(doc["thresholds"]["primary"])
    )
