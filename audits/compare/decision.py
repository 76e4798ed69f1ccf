"""The release gate: promote or hold, from the paired statistics, speed and thresholds.

The rule is in ``audits.compare``'s docstring. Checks are values (``{check, ok, text}``, with
``ok=None`` for a skipped one); their sentences come from ``audits.compare.wording``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import audits.compare.wording as wording
from audits.compare.thresholds import EPS, Thresholds
from audits.speed import SpeedResult


@dataclass(frozen=True)
class Verdict:
    verdict: str  # "promote" | "hold"
    reasons: list[str]  # every check, in plain words (the failed ones first)
    summary: str  # one line: "promote: ..." or "hold: ..."
    notes: list[str] = field(default_factory=list)  # context that did not decide anything
    checks: list[dict[str, Any]] = field(default_factory=list)  # {check, ok (None: skipped), text}


def _check(name: str, ok: bool | None, text: str) -> dict[str, Any]:
    return {"check": name, "ok": ok, "text": text}


def class_status(row: dict[str, Any], t: Thresholds) -> str | None:
    """``regression``, ``large drop``, ``watch`` (large, not significant), ``improved`` or None."""
    diff, p, adj = row.get("diff"), row.get("p_value"), row.get("p_adjusted")
    if diff is None or p is None or adj is None:
        return None
    if diff < 0 and adj < t.alpha:
        return "regression"
    large = t.max_class_drop is not None and -100 * diff >= t.max_class_drop - EPS and diff < 0
    if large and p < t.alpha:
        return "large drop"
    if large:
        return "watch"
    if diff > 0 and adj < t.alpha:
        return "improved"
    return None


def metric_block(overall: dict[str, Any], name: str) -> dict[str, Any]:
    """One headline metric's diff, interval and p-value out of the ``overall`` block."""
    if name == "accuracy":
        return {**overall, "p_value": overall["mcnemar"]["p_value"]}
    return {**overall["balanced_accuracy"], "ci_level": overall.get("ci_level", 0.95)}


def _overall_outcome(primary: dict[str, Any], t: Thresholds) -> str:
    """better, worse, small gain (significant but under ``min_gain``) or no gain."""
    significant = primary["p_value"] < t.alpha
    if significant and primary["diff"] > 0 and 100 * primary["diff"] >= t.min_gain - EPS:
        return "better"
    if significant and primary["diff"] < 0:
        return "worse"
    return "small gain" if significant else "no gain"


def _secondary_check(overall: dict[str, Any], t: Thresholds) -> dict[str, Any]:
    other = metric_block(overall, t.secondary)
    worse = other["diff"] < 0 and other["p_value"] < t.alpha
    text = wording.metric_text(t.secondary, other, primary=False)
    return _check(t.secondary, not worse, wording.secondary_text(text, other["diff"], worse))


def _class_checks(statuses: list[tuple[dict[str, Any], str | None]], t: Thresholds) -> list:
    """One failed check per class that regressed or dropped a lot, worst first."""
    failing = sorted(
        ((r, s) for r, s in statuses if s in ("regression", "large drop")),
        key=lambda pair: pair[0]["diff"],
    )
    if not failing:
        return [_check("classes", True, wording.NO_CLASS_WORSE)]
    return [
        _check(f"class:{r['class']}", False, wording.class_text(r, s, t.max_class_drop))
        for r, s in failing
    ]


def _speed_spread(speed: SpeedResult) -> float:
    return max(
        speed.latency_ratio_iqr[1] - speed.latency_ratio_iqr[0],
        speed.throughput_ratio_iqr[1] - speed.throughput_ratio_iqr[0],
    )


def _speed_check(speed: SpeedResult | None, t: Thresholds, skipped: str | None) -> dict[str, Any]:
    if speed is None:
        return _check("speed", None, skipped or "speed not measured")
    slower = (
        speed.latency_ratio > 1 + t.tolerance + EPS
        or speed.throughput_ratio < 1 - t.tolerance - EPS
    )
    return _check("speed", not slower, wording.speed_text(speed, t.tolerance, slower))


def _notes(
    statuses: list[tuple[dict[str, Any], str | None]], speed: SpeedResult | None, t: Thresholds
) -> list[str]:
    """Context that decides nothing: large drops on too few images, noisy speed numbers."""
    notes = [wording.watch_note(r) for r, s in statuses if s == "watch"]
    if speed is not None and _speed_spread(speed) > t.tolerance:
        notes.append(wording.noisy_speed_note(_speed_spread(speed), t.tolerance))
    return notes


def decide(
    overall: dict[str, Any],
    per_class: list[dict[str, Any]],
    speed: SpeedResult | None,
    thresholds: Thresholds | None = None,
    speed_skipped: str | None = "speed not measured",
) -> Verdict:
    """Apply the decision rule of ``audits.compare``'s docstring; ``speed=None`` skips rule 5."""
    t = thresholds or Thresholds()
    primary = metric_block(overall, t.primary)
    primary_text = wording.metric_text(t.primary, primary, primary=True)
    outcome = _overall_outcome(primary, t)
    counts = overall["counts"]
    agree = counts["only_a_right"] + counts["only_b_right"] == 0
    statuses = [(r, class_status(r, t)) for r in per_class]
    checks = [
        _check(
            "overall",
            outcome == "better",
            wording.overall_text(outcome, primary_text, t.min_gain, agree),
        ),
        _secondary_check(overall, t),
        *_class_checks(statuses, t),
        _speed_check(speed, t, speed_skipped),
    ]
    better = outcome == "better"
    blocking = [c["text"] for c in checks if c["ok"] is False]
    verdict = wording.PROMOTE if better and not blocking else wording.HOLD
    return Verdict(
        verdict=verdict,
        reasons=blocking + [c["text"] for c in checks if c["ok"] is not False],
        summary=wording.verdict_line(verdict, checks, t.secondary),
        notes=_notes(statuses, speed, t),
        checks=checks,
    )
