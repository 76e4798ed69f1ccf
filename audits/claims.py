"""Claims: check what people say about a model against an audit run's stored predictions.

A claim is a small table (TOML ``[[claim]]``, YAML ``claims:`` list, or a dict typed in the
dashboard)::

    [[claim]]
    text = "At least half of the photos have a dog in them"   # the person's own words
    kind = "share_at_least"
    slice = { dog = true }
    value = 0.5

Kinds (``slice``, ``than`` and ``of`` are slice specs, see ``audits.slice_spec.slice_mask``):

==================== =========================================================================
``lower``            ``metric`` on ``slice`` is lower than on ``than`` (default: the rest)
``higher``           ... higher than on ``than``
``at_least``         ``metric`` on ``slice`` (default: all images) is at least ``value``
``at_most``          ... at most ``value``
``share_at_least``   the share of ``of`` (default: all images) that is in ``slice`` >= ``value``
``share_at_most``    ... <= ``value``
``confused_more_than`` images of true ``class`` are predicted as ``with`` more than ``value``
==================== =========================================================================

``metric`` is ``accuracy`` (default), ``recall:<class>`` or ``precision:<class>``. A value is
a fraction (0.5) or a percentage string ("50%").

Verdicts: **supported**, **contradicted** or **not enough data**, decided by a 95% interval
(``alpha`` = 0.05):

* fewer than ``min_support`` images (default 30) on any side: not enough data, whatever
  the numbers say (a handful of images cannot carry an executive's claim);
* proportions: Wilson interval. Supported when it lies entirely on the claim's side of the
  value, contradicted when entirely on the other side, else not enough data. The p-value is
  the one-sided score test in the direction the data point; the Wilson interval is that
  test inverted, so a decided claim is exactly one with p < alpha / 2;
* comparisons: the difference A - B with Newcombe's hybrid score interval (built from the
  two Wilson intervals; robust at 0% and 100%). ``lower`` is supported when the interval is
  entirely below 0, contradicted when it rules out a drop larger than ``margin`` (default 2
  points: a smaller gap is not what people mean by "worse"), else not enough data. The
  p-value is Fisher's exact one-sided test of A < B (A > B for ``higher``); it is shown for
  the record, and is below alpha / 2 (0.025) for a supported claim up to the small
  difference between the two constructions at the boundary.

Deciding every claim by its two-sided 95% interval keeps the verdict consistent with the
intervals shown on the page and in the sentence; the cost is that a one-sided p between
0.025 and 0.05 reads "not enough data".

**One question, one answer.** A ``lower`` claim about one slice against the rest is the same
comparison the slice scan (``audits.slices``) makes, with the same test: Fisher's exact test,
one-sided, on the same 2x2 table, so the two p-values are equal. They differ in the multiplicity
rule, on purpose: a claim is one hypothesis stated before looking (a confirmatory test, no
correction); the scan tests every slice without a prior hypothesis (exploratory, Benjamini-
Hochberg across all slices). When the run stores a scan, such a claim's result carries the scan's
numbers (``scan``) and one sentence saying whether the two agree and, if not, why
(``scan_note``). Every result also lists up to 12 of the images behind it (``examples``; the
model's failures first) and how many there are (``n_behind``).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, norm
from statsmodels.stats.proportion import confint_proportions_2indep

from audits.claim_sentences import (
    CONTRADICTED,
    NOT_ENOUGH,
    SUPPORTED,
    points,
    sentence,
    signed_points,
)
from audits.errors import AuditError
from audits.formatting import ci, p_equals, pct_short
from audits.intervals import proportion_with_ci
from audits.runs.models_claims import ClaimKind
from audits.slice_spec import resolve_column, slice_mask
from audits.slices import slice_labels

#: The claim kinds, in the order error messages list them (the stored record's ``ClaimKind``).
KINDS: tuple[str, ...] = get_args(ClaimKind)
MIN_SUPPORT = 30
MAX_EXAMPLES = 12
MARGIN = 0.02
ALPHA = 0.05
_KEYS = {
    "text",
    "kind",
    "metric",
    "slice",
    "than",
    "of",
    "value",
    "class",
    "with",
    "margin",
    "min_support",
    "id",
}
_NEEDS_VALUE = {"at_least", "at_most", "share_at_least", "share_at_most", "confused_more_than"}
#: Claim direction against its value: "above" (>= or >) or "below" (<=).
_DIRECTION = {
    "at_least": "above",
    "share_at_least": "above",
    "confused_more_than": "above",
    "at_most": "below",
    "share_at_most": "below",
}


# -- reading and validating ------------------------------------------------------------------


def load_claims(path: str | Path) -> list[dict[str, Any]]:
    """Claims from a TOML (``[[claim]]`` tables) or YAML (``claims:`` list) file, validated."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditError(f"{path}: cannot read the claims file ({exc.strerror or exc})") from None
    if path.suffix.lower() == ".json":  # claims typed in the dashboard are stored as JSON
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AuditError(f"{path}: not valid JSON ({exc})") from None
    elif path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AuditError(f"{path}: not valid YAML ({exc})") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AuditError(f"{path}: not valid TOML ({exc})") from None
    items = data.get("claim", data.get("claims")) if isinstance(data, Mapping) else data
    if not isinstance(items, list) or not items:
        raise AuditError(
            f"{path}: no claims; write one [[claim]] table per claim (TOML) "
            "or a 'claims:' list (YAML)"
        )
    return [validate_claim(c, i) for i, c in enumerate(items, start=1)]


def _fraction(value: Any, where: str) -> float:
    """0.5, or "50%" -> 0.5; must lie in [0, 1]."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            raise AuditError(f"{where}: value '{value}' is not a percentage") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AuditError(
            f'{where}: value must be a fraction such as 0.5 or a percentage such as "50%"'
        )
    if not 0.0 <= float(value) <= 1.0:
        hint = f' (for {value}% write "{value}%" or {value / 100:g})' if 1 < value <= 100 else ""
        raise AuditError(f"{where}: value {value} is not between 0 and 1{hint}")
    return float(value)


def validate_claim(claim: Mapping[str, Any], index: int = 1) -> dict[str, Any]:
    """A normalised copy of one claim; an ``AuditError`` names what is wrong with it."""
    if not isinstance(claim, Mapping):
        raise AuditError(f"claim {index}: expected a table of fields, got {type(claim).__name__}")
    where = f"claim {index}" + (
        f" ('{claim['text']}')" if isinstance(claim.get("text"), str) else ""
    )
    unknown = sorted(set(claim) - _KEYS)
    if unknown:
        raise AuditError(
            f"{where}: unknown field(s) {', '.join(unknown)}; fields: {', '.join(sorted(_KEYS))}"
        )
    kind = claim.get("kind")
    if kind not in KINDS:
        raise AuditError(f"{where}: kind must be one of {', '.join(KINDS)}; got {kind!r}")
    out: dict[str, Any] = {
        "id": str(claim.get("id", index)),
        "text": str(claim.get("text", "")),
        "kind": kind,
    }
    for key in ("slice", "than", "of"):
        spec = claim.get(key)
        if spec is not None and not isinstance(spec, Mapping):
            raise AuditError(f'{where}: {key} must be a table such as {{ source = "fan" }}')
        out[key] = dict(spec) if spec else {}
    out["metric"] = str(claim.get("metric", "accuracy"))
    if kind in _NEEDS_VALUE:
        if "value" not in claim:
            raise AuditError(f"{where}: kind '{kind}' needs a value (a fraction such as 0.5)")
        out["value"] = _fraction(claim["value"], where)
    if kind in ("lower", "higher"):
        if not out["slice"]:
            raise AuditError(
                f"{where}: kind '{kind}' needs a slice to compare, "
                'e.g. slice = { source = "fan" }'
            )
        out["margin"] = _fraction(claim.get("margin", MARGIN), where)
    if kind == "confused_more_than":
        for key in ("class", "with"):
            if not isinstance(claim.get(key), str):
                raise AuditError(
                    f"{where}: kind 'confused_more_than' needs "
                    'class = "<true class>" and with = "<predicted class>"'
                )
            out[key] = claim[key]
    min_support = claim.get("min_support", MIN_SUPPORT)
    if isinstance(min_support, bool) or not isinstance(min_support, int) or min_support < 1:
        raise AuditError(f"{where}: min_support must be a whole number of images >= 1")
    out["min_support"] = min_support
    return out


# -- measuring --------------------------------------------------------------------------------


def _metric_counts(
    table: pd.DataFrame, classes: Sequence[str], metric: str, mask: np.ndarray
) -> tuple[int, int]:
    """(successes, trials) of a proportion metric over the masked rows."""
    labelled = table["label_idx"].to_numpy() >= 0
    rows = mask & labelled
    if metric == "accuracy":
        return int(table["correct"].to_numpy(dtype=bool)[rows].sum()), int(rows.sum())
    name, _, cls = metric.partition(":")
    if name in ("recall", "precision") and cls:
        if cls not in classes:
            raise AuditError(
                f"metric '{metric}': '{cls}' is not a class of the model ({', '.join(classes)})"
            )
        label = table["label"].to_numpy()
        pred = table["pred"].to_numpy()
        base = rows & (label == cls) if name == "recall" else rows & (pred == cls)
        return int((base & (label == pred)).sum()), int(base.sum())
    raise AuditError(f"metric '{metric}': use accuracy, recall:<class> or precision:<class>")


def _score_p(k: int, n: int, value: float) -> tuple[float, str]:
    """One-sided score test of the proportion against ``value``, in the direction of the data."""
    p_hat = k / n
    side = ">" if p_hat >= value else "<"
    if value in (0.0, 1.0):
        return (1.0 if p_hat == value else 0.0), side
    z = (p_hat - value) / math.sqrt(value * (1 - value) / n)
    return float(norm.sf(z) if side == ">" else norm.cdf(z)), side


def _proportion(
    k: int, n: int, value: float, direction: str, alpha: float, min_support: int
) -> dict[str, Any]:
    """Verdict, interval and test for ``proportion >= / > value`` (above) or ``<= value``
    (below)."""
    measured, lo, hi = proportion_with_ci(k, n, alpha=alpha)
    out: dict[str, Any] = {
        "measured": measured,
        "ci_low": lo,
        "ci_high": hi,
        "target": value,
        "count": k,
        "n": n,
        "test": None,
        "p_value": None,
        "reason": None,
        "too_few": False,
    }
    if n < min_support:
        out["verdict"], out["too_few"] = NOT_ENOUGH, True
        out["reason"] = (
            f"only {n} image{'s' if n != 1 else ''} in scope; at least {min_support} needed"
        )
        return out
    p, side = _score_p(k, n, value)
    out["test"] = f"one-sided score test (Wilson), H1: proportion {side} {value:g}"
    out["p_value"] = p
    above, below = lo > value, hi < value
    if direction == "above":
        out["verdict"] = SUPPORTED if above else CONTRADICTED if below else NOT_ENOUGH
    else:
        out["verdict"] = SUPPORTED if below else CONTRADICTED if above else NOT_ENOUGH
    if out["verdict"] == NOT_ENOUGH:
        out["reason"] = f"the 95% interval {ci(lo, hi)} includes {pct_short(value)}"
    return out


def _side(k: int, n: int, alpha: float) -> dict[str, Any]:
    """One side of a comparison: counts, proportion and its Wilson interval."""
    value, lo, hi = proportion_with_ci(k, n, alpha=alpha)
    return {"count": k, "n": n, "value": value, "ci_low": lo, "ci_high": hi}


def _comparison(
    a: tuple[int, int],
    b: tuple[int, int],
    higher: bool,
    margin: float,
    alpha: float,
    min_support: int,
) -> dict[str, Any]:
    """Verdict for ``A < B`` (or ``A > B`` when ``higher``) with a Newcombe interval of A - B."""
    (ka, na), (kb, nb) = a, b
    out: dict[str, Any] = {
        "sides": {"slice": _side(ka, na, alpha), "than": _side(kb, nb, alpha)},
        "measured": ka / na - kb / nb if na and nb else None,
        "ci_low": None,
        "ci_high": None,
        "target": 0.0,
        "margin": margin,
        "count": None,
        "n": min(na, nb),
        "test": None,
        "p_value": None,
        "reason": None,
        "too_few": False,
    }
    if min(na, nb) < min_support:
        which = "the slice" if na < nb else "the comparison group"
        out["verdict"], out["too_few"] = NOT_ENOUGH, True
        out["reason"] = (
            f"only {min(na, nb)} image{'s' if min(na, nb) != 1 else ''} in {which}; "
            f"at least {min_support} needed"
        )
        return out
    lo, hi = confint_proportions_2indep(
        ka, na, kb, nb, method="newcomb", compare="diff", alpha=alpha
    )
    lo, hi = float(lo), float(hi)
    out["ci_low"], out["ci_high"] = lo, hi
    alternative = "greater" if higher else "less"
    out["p_value"] = float(
        fisher_exact([[ka, na - ka], [kb, nb - kb]], alternative=alternative).pvalue
    )
    out["test"] = f"Fisher exact, one-sided, H1: slice {'>' if higher else '<'} comparison"
    if higher:
        verdict = SUPPORTED if lo > 0 else CONTRADICTED if hi < margin else NOT_ENOUGH
    else:
        verdict = SUPPORTED if hi < 0 else CONTRADICTED if lo > -margin else NOT_ENOUGH
    out["verdict"] = verdict
    if verdict == NOT_ENOUGH:
        out["reason"] = (
            f"the 95% interval of the difference "
            f"({signed_points(lo)} to {signed_points(hi)} points) "
            f"neither excludes 0 nor rules out a gap of {points(margin, False)} points"
        )
    return out


# -- evaluating --------------------------------------------------------------------------------


def evaluate_claim(
    table: pd.DataFrame,
    classes: Sequence[str],
    claim: Mapping[str, Any],
    alpha: float = ALPHA,
    scan: Any = None,
) -> dict[str, Any]:
    """One validated claim against a predictions table: the claim, verdict, numbers, sentence.

    ``scan`` is the run's stored slice scan (integrity.json's ``slices``, typed or as a dict);
    when the claim compares one of its slices with the rest, the result says how the scan
    answered the same question (``scan``, ``scan_note``).
    """
    c = claim
    kind, min_support = c["kind"], c["min_support"]
    labelled = table["label_idx"].to_numpy() >= 0
    scan_row = None
    if kind in ("lower", "higher"):
        mask_a = slice_mask(table, c["slice"])
        mask_b = slice_mask(table, c["than"]) if c["than"] else ~mask_a
        a = _metric_counts(table, classes, c["metric"], mask_a)
        b = _metric_counts(table, classes, c["metric"], mask_b)
        result = _comparison(a, b, kind == "higher", c["margin"], alpha, min_support)
        behind = mask_a & labelled
        if c["metric"] == "accuracy":
            scan_row = scan_match(table, c["slice"], mask_a & labelled, mask_b & labelled, scan)
    elif kind in ("at_least", "at_most"):
        mask = slice_mask(table, c["slice"])
        k, n = _metric_counts(table, classes, c["metric"], mask)
        result = _proportion(k, n, c["value"], _DIRECTION[kind], alpha, min_support)
        behind = _metric_scope(table, c["metric"], mask & labelled)
    elif kind in ("share_at_least", "share_at_most"):
        population = slice_mask(table, c["of"])
        in_slice = slice_mask(table, c["slice"]) & population
        result = _proportion(
            int(in_slice.sum()),
            int(population.sum()),
            c["value"],
            _DIRECTION[kind],
            alpha,
            min_support,
        )
        behind = in_slice
    else:
        for key in ("class", "with"):
            if c[key] not in classes:
                raise AuditError(
                    f"claim '{c['text'] or c['id']}': '{c[key]}' is not a class of the model "
                    f"({', '.join(classes)})"
                )
        rows = slice_mask(table, c["slice"]) & (table["label"].to_numpy() == c["class"])
        confused = rows & (table["pred"].to_numpy() == c["with"])
        k = int(confused.sum())
        result = _proportion(k, int(rows.sum()), c["value"], "above", alpha, min_support)
        behind = confused
    result = {
        "id": c["id"],
        "text": c["text"],
        "kind": kind,
        "claim": dict(c),
        "verdict": result.pop("verdict"),
    } | result
    result["ci_level"] = 1 - alpha
    result["sentence"] = sentence(c, result)
    if scan_row is not None:
        result["scan"] = scan_summary(scan_row, scan)
        result["scan_note"] = scan_sentence(kind, result["verdict"], result["scan"])
    result["n_behind"] = int(behind.sum())
    result["examples"] = examples(table, behind)
    return result


def _metric_scope(table: pd.DataFrame, metric: str, rows: np.ndarray) -> np.ndarray:
    """The rows a proportion metric is measured on: all (accuracy), a true class (recall) or a
    predicted class (precision)."""
    name, _, cls = metric.partition(":")
    if name == "recall":
        return rows & (table["label"].to_numpy() == cls)
    if name == "precision":
        return rows & (table["pred"].to_numpy() == cls)
    return rows


def examples(table: pd.DataFrame, rows: np.ndarray, limit: int = MAX_EXAMPLES) -> list[dict]:
    """Up to ``limit`` of the images behind a claim, the model's failures among them first."""
    picked = table[rows]
    if "correct" in picked.columns:
        picked = picked.sort_values("correct", kind="stable")
    return [
        {
            "row": int(r["row"]),
            "path": str(r["path"]) if "path" in picked.columns else None,
            "label": None if pd.isna(r["label"]) else str(r["label"]),
            "pred": str(r["pred"]),
            "correct": bool(r["correct"]) if "correct" in picked.columns else None,
        }
        for _, r in picked.head(limit).iterrows()
    ]


# -- the same question in the slice scan -----------------------------------------------------


def _get(row: Any, key: str) -> Any:
    return row[key] if isinstance(row, Mapping) else getattr(row, key)


def scan_match(
    table: pd.DataFrame, spec: Mapping[str, Any], a: np.ndarray, b: np.ndarray, scan: Any
) -> Any:
    """The scan's slice row when the claim compares exactly that slice with the rest of the
    labelled images (``a``/``b``: the two sides' labelled rows), else None."""
    if scan is None or len(spec) != 1:
        return None
    labelled = table["label_idx"].to_numpy() >= 0
    if (a & b).any() or not np.array_equal(a | b, labelled):
        return None  # not "this slice vs the rest"
    column = resolve_column(table, str(next(iter(spec))))
    rows = [r for r in _get(scan, "slices") if _get(r, "column") == column]
    if not rows:
        return None
    labels = slice_labels(table.loc[labelled, column], _get(rows[0], "kind"))[0]
    labels = labels.astype(str).to_numpy()
    for r in rows:
        value = _get(r, "label").removeprefix(f"{column} = ")
        if np.array_equal(labels == value, a[labelled]):
            return r
    return None


def scan_summary(row: Any, scan: Any) -> dict[str, Any]:
    """What the slice scan stored for the same comparison."""
    return {
        "label": _get(row, "label"),
        "test": "Fisher exact, slice vs rest, Benjamini-Hochberg adjusted across the scan",
        "n_slices": len(_get(scan, "slices")),
        "p_lower": _get(row, "p_lower"),
        "p_lower_adj": _get(row, "p_lower_adj"),
        "p_value": _get(row, "p_value"),
        "p_value_adj": _get(row, "p_value_adj"),
        "significantly_lower": bool(_get(row, "significantly_lower")),
    }


def scan_sentence(kind: str, verdict: str, s: Mapping[str, Any]) -> str:
    """One sentence: how the slice scan answered the same question, and why it may differ."""
    label, n = s["label"], f"{s['n_slices']:,}"
    if kind == "higher":
        return (
            f"The Slices scan only flags slices less accurate than the rest; it tests {label} "
            f"two-sided (Fisher exact, {p_equals(s['p_value'])}, Benjamini–Hochberg adjusted over "
            f"{n} slices {p_equals(s['p_value_adj'])}), while this claim is one one-sided test "
            "stated in advance, so it is not adjusted."
        )
    p, q = p_equals(s["p_lower"]), p_equals(s["p_lower_adj"])
    flagged, supported = s["significantly_lower"], verdict == SUPPORTED
    if supported and flagged:
        return (
            f"The Slices scan gives the same answer: the same one-sided Fisher test ({p}) flags "
            f"{label} even after adjusting for its {n} slices (Benjamini–Hochberg, adjusted {q})."
        )
    if supported:
        return (
            f"The Slices scan runs the same one-sided Fisher test on this comparison ({p}) but "
            f"does not flag {label}: it scans {n} slices without a prior hypothesis and adjusts "
            f"for them (Benjamini–Hochberg, adjusted {q}), while this claim was stated before "
            "looking, so it is a single test and needs no correction."
        )
    if flagged:
        return (
            f"The Slices scan flags {label} (one-sided Fisher {p}, Benjamini–Hochberg adjusted "
            f"{q}), but a claim is supported only when the 95% interval of the difference lies "
            "entirely below 0, and here it does not."
        )
    return (
        f"The Slices scan gives the same answer: it does not flag {label} (the same one-sided "
        f"Fisher test, {p}; adjusted over its {n} slices, {q})."
    )


def evaluate_claims(
    run: Any, claims: Sequence[Mapping[str, Any]] | str | Path, alpha: float = ALPHA
) -> list[dict[str, Any]]:
    """Check claims against a stored audit run (a ``Run`` or its folder); the dashboard's entry.

    ``claims`` are dicts (validated here, e.g. typed into the dashboard) or a claims file.
    Reads only the stored predictions table; an invalid claim raises ``AuditError``.
    """
    from audits.store import Run, load_run

    if not isinstance(run, Run):
        run = load_run(run)
    if run.kind != "audit":
        raise AuditError(f"{run.path}: claims need an audit run, not a {run.kind} run")
    classes = list(run.audit.model.classes or [])
    if isinstance(claims, str | Path):
        checked = load_claims(claims)
    else:
        checked = [validate_claim(c, i) for i, c in enumerate(claims, start=1)]
    table = run.table
    if not classes:
        classes = sorted(set(table["label"].dropna()) | set(table["pred"].dropna()))
    return [evaluate_claim(table, classes, c, alpha, stored_scan(run)) for c in checked]


def stored_scan(run: Any) -> Any:
    """The run's stored slice scan (integrity.json's ``slices``), or None when absent."""
    from audits.runs.models_integrity import Slices

    try:
        integrity = run.integrity
    except AuditError:
        return None
    block = integrity.slices if integrity is not None else None
    return block if isinstance(block, Slices) else None
