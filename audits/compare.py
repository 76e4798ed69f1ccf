"""Compare two audit runs of a model on the same frozen held-out set, and gate the release.

``python -m audits compare RUN_A RUN_B`` answers: is B better than A overall, beyond noise,
without a class that got worse, and no slower? The answer is ``promote`` or ``hold`` (for
human investigation) with reasons in plain words, stored as a comparison folder in the store.

The decision rule (``decide``; every threshold is a CLI flag):

1. Better overall: the primary metric (accuracy by default) improved significantly, i.e. the
   paired test gives p < alpha and the gain is at least ``min_gain`` points. For accuracy the
   test is McNemar's exact test on the images one model got right and the other wrong (the
   larger of that and the clustered McNemar p when the set has groups of several shots).
2. Not worse on the other headline metric: balanced accuracy (or accuracy, when balanced
   accuracy is primary) did not fall significantly; an overall gain bought by hurting the
   rare classes is not "better overall".
3. No class regression: no class whose recall fell with a Benjamini-Hochberg adjusted
   p < alpha (the per-class test is McNemar on that class's images).
4. No large class drop: no class whose recall fell by ``max_class_drop`` points or more with
   an unadjusted p < alpha. BH keeps false alarms rare across many classes, but a release owner
   does not wave through a 10-point drop on one variant because 40 other variants were tested
   too; a large drop that is nominally significant goes to a human. A large drop that is not
   even nominally significant (too few images to tell) is listed as a note, not a hold.
5. No slower: B's throughput >= A's x (1 - tolerance) and B's latency <= A's x (1 + tolerance),
   both as medians of per-repeat B/A ratios measured in one process (``audits.speed``). With
   ``--no-speed`` this check is skipped and the verdict says so.

Promote only when all five hold; otherwise hold, naming every failed check.
"""

from __future__ import annotations

import csv
import math
import sys
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audits.errors import AuditError
from audits.fsio import write_json
from audits.paired_stats import balanced_accuracy_diff, bh_adjust, cluster_codes, paired_outcome
from audits.speed import SpeedResult
from audits.store import (
    Run,
    auditor_identity,
    create_run,
    load_run,
    new_run_id,
    utc_now,
)

SCHEMA_VERSION = 1
PRIMARY_METRICS = ("accuracy", "balanced_accuracy")
CI_METHOD = (
    "Newcombe square-and-add interval for paired proportions (Newcombe 1998, method 10), "
    "widened by the square root of the design effect when images come in groups"
)
SUMMARY_CLASSES = 5  # failing classes named in the verdict line (all are in `checks`)
# Points are compared with a little slack so that "-5.0 points" meets a 5-point limit.
_EPS = 1e-9


# ---------------------------------------------------------------------------------------------
# thresholds and class maps


@dataclass(frozen=True)
class Thresholds:
    """What "better" and "no slower" mean; differences are in percentage points."""

    alpha: float = 0.05
    min_gain: float = 0.0
    max_class_drop: float | None = 5.0
    tolerance: float = 0.05
    primary: str = "accuracy"

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise AuditError(f"--alpha {self.alpha}: must be between 0 and 1 (e.g. 0.05)")
        if self.min_gain < 0 or not math.isfinite(self.min_gain):
            raise AuditError(f"--min-gain {self.min_gain}: must be 0 or more points")
        if self.max_class_drop is not None and (
            self.max_class_drop < 0 or not math.isfinite(self.max_class_drop)
        ):
            raise AuditError(
                f"--max-class-drop {self.max_class_drop}: must be 0 or more points (or 'off')"
            )
        if not 0.0 <= self.tolerance < 1.0:
            raise AuditError(
                f"--tolerance {self.tolerance}: must be a fraction in [0, 1), e.g. 0.05 for 5%"
            )
        if self.primary not in PRIMARY_METRICS:
            raise AuditError(
                f"--primary {self.primary}: expected one of {', '.join(PRIMARY_METRICS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_class_map(path: str | Path) -> dict[str, str]:
    """Read an old-name -> new-name class map from TOML or CSV.

    TOML: ``old = "new"`` pairs, at the top level or in a ``[classes]`` table.
    CSV: two columns, old then new, one rename per row; a first row ``old,new`` is a header.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise AuditError(f"{path}: class map not found")
    pairs: list[tuple[str, str]] = []
    if path.suffix.lower() == ".toml":
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise AuditError(f"{path}: not valid TOML ({exc})") from None
        if set(raw) == {"classes"} and isinstance(raw["classes"], dict):
            raw = raw["classes"]
        for old, new in raw.items():
            if not isinstance(new, str):
                raise AuditError(
                    f"{path}: '{old}' must map to a class name (old = \"new\"), got {type(new).__name__}"
                )
            pairs.append((old.strip(), new.strip()))
    elif path.suffix.lower() == ".csv":
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.reader(fh) if any(cell.strip() for cell in r)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise AuditError(f"{path}: cannot read the class map ({exc})") from None
        if rows and [c.strip().lower() for c in rows[0]] == ["old", "new"]:
            rows = rows[1:]
        for i, row in enumerate(rows, start=1):
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise AuditError(f"{path}: row {i} must be 'old,new' (two class names), got {row}")
            pairs.append((row[0].strip(), row[1].strip()))
    else:
        raise AuditError(f'{path}: a class map is a .toml (old = "new") or .csv (old,new) file')
    mapping: dict[str, str] = {}
    for old, new in pairs:
        if old in mapping and mapping[old] != new:
            raise AuditError(
                f"{path}: class '{old}' is mapped twice ('{mapping[old]}' and '{new}')"
            )
        mapping[old] = new
    if not mapping:
        raise AuditError(f"{path}: the class map is empty")
    return mapping


def _few(names: list[str], n: int = 8) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def matched_classes(
    classes_a: list[str], classes_b: list[str], class_map: dict[str, str] | None = None
) -> list[str]:
    """B's class list once A's names are mapped; refuses lists that differ after mapping."""
    if class_map:
        unknown = sorted(set(class_map) - set(classes_a))
        if unknown:
            hint = (
                " (the map goes from RUN_A's names to RUN_B's)"
                if set(unknown) <= set(classes_b)
                else ""
            )
            raise AuditError(f"--class-map: {_few(unknown)} not a class of RUN_A{hint}")
        targets = sorted(set(class_map.values()) - set(classes_b))
        if targets:
            raise AuditError(f"--class-map: {_few(targets)} not a class of RUN_B")
    mapped = [(class_map or {}).get(c, c) for c in classes_a]
    merged = sorted({c for c in mapped if mapped.count(c) > 1})
    if merged:
        raise AuditError(
            f"--class-map: several RUN_A classes map to {_few(merged)}; merging classes is not a like-for-like comparison"
        )
    only_a = [c for c in mapped if c not in set(classes_b)]
    only_b = [c for c in classes_b if c not in set(mapped)]
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"only RUN_A has {_few(only_a)}")
        if only_b:
            parts.append(f"only RUN_B has {_few(only_b)}")
        advice = (
            "fix the class map"
            if class_map
            else 'if these are renames, pass --class-map FILE (a CSV of old,new rows or a TOML of old = "new")'
        )
        raise AuditError(f"the models' class lists differ: {'; '.join(parts)}; {advice}")
    return list(classes_b)


# ---------------------------------------------------------------------------------------------
# alignment


@dataclass
class Aligned:
    """Both runs' outcomes on the images both decoded, one row per image (data-set order of A)."""

    frame: pd.DataFrame  # path, label, group, pred_a, pred_b, correct_a, correct_b, row_a, row_b
    classes: list[str]  # RUN_B's class names and order
    n_only_a: int = 0
    n_only_b: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def groups(self) -> np.ndarray | None:
        g = self.frame["group"]
        return None if g.isna().all() else g.to_numpy(dtype=object)


def _check_audit(run: Run, which: str) -> None:
    if run.kind != "audit":
        raise AuditError(
            f"{which} {run.path}: is a {run.kind} run; compare needs two audit runs (python -m audits run ...)"
        )
    for key in ("model", "dataset"):
        if not isinstance(run.meta.get(key), dict):
            raise AuditError(f"{which} {run.path}: audit.json has no '{key}' block (damaged run?)")


def _outcomes(run: Run, which: str) -> pd.DataFrame:
    table = run.table
    missing = [
        c for c in ("path", "label", "label_idx", "pred", "pred_idx") if c not in table.columns
    ]
    if missing:
        raise AuditError(
            f"{which} {run.path}: predictions.parquet lacks {', '.join(missing)} (damaged run?)"
        )
    labelled = table[table["label_idx"] >= 0]
    out = pd.DataFrame(
        {
            "path": labelled["path"].astype(str).to_numpy(),
            "label": labelled["label"].astype(str).to_numpy(),
            "pred": labelled["pred"].astype(str).to_numpy(),
            # Recomputed, not read from the stored `correct` column (as audits.metrics does).
            "correct": (labelled["pred_idx"].to_numpy() == labelled["label_idx"].to_numpy()),
            "row": labelled["row"].to_numpy()
            if "row" in labelled.columns
            else np.arange(len(labelled)),
        }
    )
    if "group" in labelled.columns:
        out["group"] = labelled["group"].to_numpy(dtype=object)
    return out


def align_runs(run_a: Run, run_b: Run, class_map: dict[str, str] | None = None) -> Aligned:
    """Check the runs are comparable and pair their outcomes image by image (on ``path``)."""
    _check_audit(run_a, "RUN_A")
    _check_audit(run_b, "RUN_B")
    da, db = run_a.meta["dataset"], run_b.meta["dataset"]
    fa, fb = da.get("fingerprint"), db.get("fingerprint")
    if not fa or not fb or fa != fb:
        raise AuditError(
            f"the runs were made on different held-out sets (RUN_A fingerprint {str(fa)[:12]} from {da.get('path')}, "
            f"RUN_B fingerprint {str(fb)[:12]} from {db.get('path')}); a comparison needs both models audited "
            "on the same frozen held-out set: audit one of them again with the other's --data"
        )
    classes = matched_classes(
        list(run_a.meta["model"].get("classes") or []),
        list(run_b.meta["model"].get("classes") or []),
        class_map,
    )
    notes: list[str] = []
    if run_a.path == run_b.path:
        notes.append("RUN_A and RUN_B are the same run")
    if not da.get("frozen", False):
        notes.append(
            "the held-out set was not frozen when audited (python -m audits freeze DATA); the fingerprints still match"
        )
    name_a, name_b = run_a.meta["model"].get("name"), run_b.meta["model"].get("name")
    if name_a != name_b:
        notes.append(f"different model families: '{name_a}' and '{name_b}'")

    a, b = _outcomes(run_a, "RUN_A"), _outcomes(run_b, "RUN_B")
    if class_map:
        a["pred"] = a["pred"].map(lambda p: class_map.get(p, p))
    merged = a.merge(b, on="path", how="inner", suffixes=("_a", "_b"), validate="one_to_one")
    n_only_a, n_only_b = len(a) - len(merged), len(b) - len(merged)
    if merged.empty:
        raise AuditError("the runs share no labelled image that both decoded; nothing to compare")
    mismatch = merged["label_a"] != merged["label_b"]
    if mismatch.any():
        raise AuditError(
            f"{int(mismatch.sum())} image(s) have different labels in the two runs although the fingerprints match, "
            f"e.g. '{merged.loc[mismatch, 'path'].iloc[0]}'; one run's predictions table is damaged"
        )
    if n_only_a or n_only_b:
        notes.append(
            f"aligned on the {len(merged)} images both runs decoded; {n_only_a} were scored only in RUN_A "
            f"and {n_only_b} only in RUN_B, and are left out"
        )
    group = merged["group_a"] if "group_a" in merged.columns else merged.get("group")
    frame = pd.DataFrame(
        {
            "path": merged["path"],
            "label": merged["label_a"],
            "group": group if group is not None else pd.Series([None] * len(merged), dtype=object),
            "pred_a": merged["pred_a"],
            "pred_b": merged["pred_b"],
            "correct_a": merged["correct_a"].astype(bool),
            "correct_b": merged["correct_b"].astype(bool),
            "row_a": merged["row_a"].astype(np.int64),
            "row_b": merged["row_b"].astype(np.int64),
        }
    ).reset_index(drop=True)
    return Aligned(frame=frame, classes=classes, n_only_a=n_only_a, n_only_b=n_only_b, notes=notes)


# ---------------------------------------------------------------------------------------------
# statistics


def paired_statistics(aligned: Aligned, alpha: float = 0.05) -> dict[str, Any]:
    """Overall and per-class paired statistics (no thresholds other than the CI level)."""
    f = aligned.frame
    ca, cb = f["correct_a"].to_numpy(), f["correct_b"].to_numpy()
    # Integer codes once, so that hundreds of classes over 250,000 images stay fast.
    label_codes, label_names = pd.factorize(f["label"].astype(str))
    groups = aligned.groups
    clusters = None if groups is None else cluster_codes(groups, len(f))
    o = paired_outcome(ca, cb, clusters, alpha)
    ba = balanced_accuracy_diff(ca, cb, label_codes, clusters, alpha)
    overall = {
        "n": o.n,
        "accuracy_a": o.accuracy_a,
        "accuracy_b": o.accuracy_b,
        "diff": o.diff,
        "ci_low": o.ci_low,
        "ci_high": o.ci_high,
        "ci_level": 1 - alpha,
        "ci_method": CI_METHOD,
        "counts": {
            "both_right": o.both,
            "only_a_right": o.a_only,
            "only_b_right": o.b_only,
            "both_wrong": o.neither,
        },
        "mcnemar": {
            "b": o.a_only,
            "c": o.b_only,
            "statistic": o.statistic,
            "p_value": o.p_value,
            "p_exact": o.p_exact,
            "p_clustered": o.p_clustered,
            "n_clusters": o.n_clusters,
            "design_effect": o.design_effect,
        },
        "balanced_accuracy": ba,
    }
    order = np.argsort(label_codes, kind="stable")
    bounds = np.searchsorted(label_codes[order], np.arange(len(label_names) + 1))
    index = {name: order[bounds[i] : bounds[i + 1]] for i, name in enumerate(label_names)}
    rows: list[dict[str, Any]] = []
    for cls in aligned.classes:
        idx = index.get(cls, np.zeros(0, dtype=np.int64))
        n = len(idx)
        row: dict[str, Any] = {"class": cls, "support": n}
        if n == 0:
            row.update(recall_a=None, recall_b=None, diff=None, ci_low=None, ci_high=None, a_only=0, b_only=0,
                       p_value=None, p_exact=None, p_clustered=None, p_adjusted=None)  # fmt: skip
        else:
            c = paired_outcome(ca[idx], cb[idx], None if clusters is None else clusters[idx], alpha)
            row.update(
                recall_a=c.accuracy_a, recall_b=c.accuracy_b, diff=c.diff, ci_low=c.ci_low, ci_high=c.ci_high,
                a_only=c.a_only, b_only=c.b_only, p_value=c.p_value, p_exact=c.p_exact, p_clustered=c.p_clustered,
                p_adjusted=None,
            )  # fmt: skip
        rows.append(row)
    tested = [r for r in rows if r["p_value"] is not None]
    for r, adj in zip(tested, bh_adjust([r["p_value"] for r in tested]), strict=True):
        r["p_adjusted"] = float(adj)
    return {"overall": overall, "per_class": rows}


# ---------------------------------------------------------------------------------------------
# the decision


@dataclass(frozen=True)
class Verdict:
    verdict: str  # "promote" | "hold"
    reasons: list[str]  # every check, in plain words (the failed ones first)
    summary: str  # one line: "promote: ..." or "hold: ..."
    notes: list[str] = field(default_factory=list)  # context that did not decide anything
    checks: list[dict[str, Any]] = field(default_factory=list)  # {check, ok (None: skipped), text}


def fmt_p(p: float | None) -> str:
    """p-values as people read them: 0.52, 0.031, 0.003, <0.001."""
    if p is None or not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "<0.001"
    if p < 0.1:
        return f"{p:.3f}"
    return f"{p:.2f}"


def _eq_p(p: float | None) -> str:
    text = fmt_p(p)
    return text if text.startswith("<") else f"={text}"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def class_status(row: dict[str, Any], t: Thresholds) -> str | None:
    """``regression``, ``large drop``, ``watch`` (large but not significant), ``improved`` or None."""
    diff, p, adj = row.get("diff"), row.get("p_value"), row.get("p_adjusted")
    if diff is None or p is None or adj is None:
        return None
    if diff < 0 and adj < t.alpha:
        return "regression"
    large = t.max_class_drop is not None and -100 * diff >= t.max_class_drop - _EPS and diff < 0
    if large and p < t.alpha:
        return "large drop"
    if large:
        return "watch"
    if diff > 0 and adj < t.alpha:
        return "improved"
    return None


def _metric_text(name: str, m: dict[str, Any], primary: bool) -> str:
    """'overall +2.1 points (95% CI +0.9 to +3.3, McNemar p=0.003)'."""
    level = round(100 * m.get("ci_level", 0.95))
    ci = f"{level}% CI {_pts(m['ci_low'])} to {_pts(m['ci_high'])}"
    if name == "accuracy":
        mc = m["mcnemar"]
        test = (
            "clustered McNemar"
            if mc.get("p_clustered") is not None and mc["p_clustered"] > mc["p_exact"]
            else "McNemar"
        )
        label = "overall" if primary else "accuracy"
        return f"{label} {_pts(m['diff'])} points ({ci}, {test} p{_eq_p(mc['p_value'])})"
    return f"balanced accuracy {_pts(m['diff'])} points ({ci}, sign-flip p{_eq_p(m['p_value'])})"


def _metric_block(overall: dict[str, Any], name: str) -> dict[str, Any]:
    if name == "accuracy":
        return {**overall, "p_value": overall["mcnemar"]["p_value"]}
    return {**overall["balanced_accuracy"], "ci_level": overall.get("ci_level", 0.95)}


def _speed_text(speed: SpeedResult, t: Thresholds) -> tuple[bool, str]:
    lat_pct = 100 * (speed.latency_ratio - 1)
    thr_pct = 100 * (speed.throughput_ratio - 1)
    slow_lat = speed.latency_ratio > 1 + t.tolerance + _EPS
    slow_thr = speed.throughput_ratio < 1 - t.tolerance - _EPS
    # Percentages come from the paired B/A ratios that decide; the per-model medians (in the
    # table and the JSON) are taken over different moments and can disagree by a few percent.
    detail = f"latency {lat_pct:+.0f}%, throughput {thr_pct:+.0f}%"
    if slow_lat or slow_thr:
        return False, f"B is slower beyond the {100 * t.tolerance:g}% tolerance: {detail}"
    return True, f"no slower: {detail} (tolerance {100 * t.tolerance:g}%)"


def decide(
    overall: dict[str, Any],
    per_class: list[dict[str, Any]],
    speed: SpeedResult | None,
    thresholds: Thresholds | None = None,
    speed_skipped: str | None = "speed not measured",
) -> Verdict:
    """Apply the decision rule of this module's docstring; ``speed=None`` skips rule 5."""
    t = thresholds or Thresholds()
    checks: list[dict[str, Any]] = []
    notes: list[str] = []

    def check(name: str, ok: bool | None, text: str) -> None:
        checks.append({"check": name, "ok": ok, "text": text})

    primary = _metric_block(overall, t.primary)
    primary_text = _metric_text(t.primary, primary, primary=True)
    significant = primary["p_value"] < t.alpha
    better = significant and primary["diff"] > 0 and 100 * primary["diff"] >= t.min_gain - _EPS
    if better:
        check("overall", True, primary_text)
    elif significant and primary["diff"] < 0:
        check("overall", False, f"{primary_text}: significantly worse")
    elif significant:
        check("overall", False, f"{primary_text}: below the required gain of {t.min_gain:g} points")
    else:
        agree = overall["counts"]["only_a_right"] + overall["counts"]["only_b_right"] == 0
        tail = "; the two models agree on every image" if agree else ""
        check("overall", False, f"no significant gain: {primary_text}{tail}")

    other_name = "balanced_accuracy" if t.primary == "accuracy" else "accuracy"
    other = _metric_block(overall, other_name)
    other_text = _metric_text(other_name, other, primary=False)
    if other["diff"] < 0 and other["p_value"] < t.alpha:
        check(other_name, False, f"{other_text}: significantly worse")
    else:
        check(
            other_name,
            True,
            other_text + (": not significantly worse" if other["diff"] < 0 else ""),
        )

    statuses = [(r, class_status(r, t)) for r in per_class]
    failing = sorted(
        (r for r, s in statuses if s in ("regression", "large drop")), key=lambda r: r["diff"]
    )
    for r in failing:
        if class_status(r, t) == "regression":
            detail = f"adjusted p{_eq_p(r['p_adjusted'])}"
        else:
            detail = (
                f"p{_eq_p(r['p_value'])}, adjusted p{_eq_p(r['p_adjusted'])}; "
                f"a drop of {t.max_class_drop:g} points or more"
            )
        check(
            f"class:{r['class']}", False, f"{r['class']} recall {_pts(r['diff'])} points ({detail})"
        )
    if not failing:
        check("classes", True, "no class significantly worse")
    for r, s in statuses:
        if s == "watch":
            notes.append(
                f"{r['class']} recall {_pts(r['diff'])} points on {r['support']} images is not "
                f"significant (p{_eq_p(r['p_value'])}); too few images to tell, worth a look"
            )

    if speed is None:
        check("speed", None, speed_skipped or "speed not measured")
    else:
        ok, text = _speed_text(speed, t)
        check("speed", ok, text)
        spread = max(
            speed.latency_ratio_iqr[1] - speed.latency_ratio_iqr[0],
            speed.throughput_ratio_iqr[1] - speed.throughput_ratio_iqr[0],
        )
        if spread > t.tolerance:
            notes.append(
                f"speed measurements are noisy (B/A ratios vary by {100 * spread:.0f}% between "
                f"repeats, more than the {100 * t.tolerance:g}% tolerance); re-run on a quiet "
                "machine before trusting the speed check"
            )

    blocking = [c["text"] for c in checks if c["ok"] is False]
    verdict = "promote" if better and not blocking else "hold"
    # The verdict line: metric failures, the worst classes, then speed; `checks` keeps all.
    failed = [c for c in checks if c["ok"] is False]
    metric_fails = [c["text"] for c in failed if c["check"] in ("overall", other_name)]
    class_fails = [c["text"] for c in failed if c["check"].startswith("class:")]
    other_fails = [c["text"] for c in failed if c["check"] == "speed"]
    if len(class_fails) > SUMMARY_CLASSES:
        more = len(class_fails) - SUMMARY_CLASSES
        class_fails = class_fails[:SUMMARY_CLASSES] + [f"and {more} more classes worse"]
    said = metric_fails + class_fails + other_fails
    if verdict == "promote":
        summary = "promote: " + "; ".join(
            c["text"] for c in checks if c["ok"] is None or c["check"] != other_name
        )
    elif better:
        summary = f"hold: {primary_text} but " + "; ".join(said)
    else:
        summary = "hold: " + "; ".join(said)
    reasons = blocking + [c["text"] for c in checks if c["ok"] is not False]
    return Verdict(verdict=verdict, reasons=reasons, summary=summary, notes=notes, checks=checks)


# ---------------------------------------------------------------------------------------------
# the whole comparison, stored


def _run_block(run: Run) -> dict[str, Any]:
    model = run.meta.get("model") or {}
    metrics = run.meta.get("metrics") or {}
    return {
        "run_id": run.run_id,
        "path": str(run.path),
        "model": {
            k: model.get(k) for k in ("name", "version", "weights_sha256", "code_commit", "dir")
        },
        "accuracy": metrics.get("accuracy"),
        "balanced_accuracy": metrics.get("balanced_accuracy"),
        "device": run.meta.get("device"),
    }


def compare_runs(
    run_a: Run,
    run_b: Run,
    thresholds: Thresholds | None = None,
    class_map: dict[str, str] | None = None,
    speed: SpeedResult | None = None,
    measure: bool = False,
    speed_options: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Aligned]:
    """The comparison document (``comparison.json`` without its run id) and the aligned pairs.

    ``measure=True`` times both models (``audits.speed.measure_speed``); otherwise ``speed`` is
    used as given, and ``None`` skips the speed check.
    """
    t = thresholds or Thresholds()
    aligned = align_runs(run_a, run_b, class_map)
    stats = paired_statistics(aligned, t.alpha)
    if measure:
        from audits.speed import measure_speed

        speed = measure_speed(run_a, run_b, aligned.frame["path"].tolist(), **(speed_options or {}))
    skipped = None if speed is not None else "speed not measured (--no-speed)"
    verdict = decide(stats["overall"], stats["per_class"], speed, t, speed_skipped=skipped)
    for row in stats["per_class"]:
        row["status"] = class_status(row, t)
    groups = aligned.groups
    data = run_a.meta["dataset"]
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "comparison",
        "run_id": None,
        "created": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_a": _run_block(run_a),
        "run_b": _run_block(run_b),
        "dataset": {
            "fingerprint": data.get("fingerprint"),
            "path": data.get("path"),
            "frozen": bool(data.get("frozen", False)),
            "n_images": int(len(aligned.frame)),  # the paired images (as in audit.json)
            "n_aligned": int(len(aligned.frame)),
            "n_only_a": aligned.n_only_a,
            "n_only_b": aligned.n_only_b,
            "n_groups": None if groups is None else stats["overall"]["mcnemar"]["n_clusters"],
        },
        "classes": aligned.classes,
        "class_map": class_map or None,
        "overall": stats["overall"],
        "per_class": stats["per_class"],
        "speed": None if speed is None else speed.to_dict(),
        "thresholds": t.to_dict(),
        "verdict": verdict.verdict,
        "reasons": verdict.reasons,
        "checks": verdict.checks,
        "notes": aligned.notes + verdict.notes,
        "summary": verdict.summary,
        "auditor": auditor_identity(),
    }
    return doc, aligned


def save_comparison(doc: dict[str, Any], aligned: Aligned, store: str | Path) -> Path:
    """Store the comparison as ``<store>/<run_id>/`` with comparison.json and pairs.parquet."""
    model_a, model_b = doc["run_a"]["model"], doc["run_b"]["model"]
    versions = f"{model_a.get('version')}-vs-{model_b.get('version')}"
    run_id = new_run_id("comparison", str(model_b.get("name") or "model"), versions)
    doc["run_id"] = run_id
    with create_run(store, run_id) as tmp:
        aligned.frame.assign(group=aligned.frame["group"].astype("string")).to_parquet(
            tmp / "pairs.parquet", index=False
        )
        write_json(tmp / "comparison.json", doc)
    return Path(store) / run_id


def resolve_run(ref: str, store: str | Path) -> Run:
    """A run folder path, a run id in ``store``, or ``name@version`` (its newest audit there)."""
    from audits.store import list_runs

    path = Path(ref).expanduser()
    if path.is_dir():
        return load_run(path)
    candidate = Path(store) / ref
    if candidate.is_dir():
        return load_run(candidate)
    if "@" in ref:
        name, version = ref.split("@", 1)
        for run in list_runs(store, kind="audit"):
            model = run.meta.get("model") or {}
            if model.get("name") == name and model.get("version") == version:
                return run
        raise AuditError(f"{ref}: no audit run of {name} version {version} in {store}")
    raise AuditError(
        f"{ref}: not a run folder, nor a run id in {store} (or name@version; see python -m audits list --store {store})"
    )


# ---------------------------------------------------------------------------------------------
# printing (reads the document; computes nothing)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def print_comparison(doc: dict[str, Any], console: Any = None) -> None:
    """Readable tables of a comparison document (the verdict line is printed by the caller)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # Piped into a CI log there is no terminal width: use a readable one instead of 80.
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    ma, mb = doc["run_a"]["model"], doc["run_b"]["model"]
    ds, o = doc["dataset"], doc["overall"]
    console.print(
        f"[bold]{escape(str(ma['name']))} {escape(str(ma['version']))}[/] (A) vs "
        f"[bold]{escape(str(mb['name']))} {escape(str(mb['version']))}[/] (B) on "
        f"{ds['n_aligned']} paired images (fingerprint {str(ds['fingerprint'])[:12]}"
        + (f", {ds['n_groups']} groups" if ds.get("n_groups") else "")
        + ")"
    )
    level = round(100 * o["ci_level"])
    table = Table(title="overall (B - A)")
    for col in ("metric", "A", "B", "diff (points)", f"{level}% CI", "p"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    mc, ba = o["mcnemar"], o["balanced_accuracy"]
    table.add_row("accuracy", _pct(o["accuracy_a"]), _pct(o["accuracy_b"]), _pts(o["diff"]),
                  f"{_pts(o['ci_low'])} to {_pts(o['ci_high'])}", fmt_p(mc["p_value"]))  # fmt: skip
    table.add_row("balanced accuracy", _pct(ba["balanced_accuracy_a"]), _pct(ba["balanced_accuracy_b"]), _pts(ba["diff"]),
                  f"{_pts(ba['ci_low'])} to {_pts(ba['ci_high'])}", fmt_p(ba["p_value"]))  # fmt: skip
    console.print(table)
    console.print(
        f"images only A got right: {mc['b']}, only B got right: {mc['c']}"
        + (
            f" (design effect {mc['design_effect']:.2f} from groups)"
            if mc.get("p_clustered") is not None
            else ""
        )
    )

    rows = sorted(
        doc["per_class"],
        key=lambda r: (r["diff"] is None, r["diff"] if r["diff"] is not None else 0),
    )
    ct = Table(title="per class recall (B - A), worst first")
    for col in ("class", "n", "A", "B", "diff", f"{level}% CI", "p", "adj. p", ""):
        ct.add_column(col, justify="left" if col in ("class", "") else "right")
    for r in rows:
        if r["diff"] is None:
            ct.add_row(escape(r["class"]), "0", "n/a", "n/a", "", "", "", "", "no images")
            continue
        status = r.get("status") or ""
        style = {
            "regression": "bold red",
            "large drop": "red",
            "watch": "yellow",
            "improved": "green",
        }.get(status, "")
        ct.add_row(
            escape(r["class"]), str(r["support"]), _pct(r["recall_a"]), _pct(r["recall_b"]), _pts(r["diff"]),
            f"{_pts(r['ci_low'])} to {_pts(r['ci_high'])}", fmt_p(r["p_value"]), fmt_p(r["p_adjusted"]),
            f"[{style}]{status}[/]" if style else status,
        )  # fmt: skip
    console.print(ct)

    sp = doc.get("speed")
    if sp:
        settings = sp.get("settings") or {}
        where = (sp.get("device") or {}).get("name", "given numbers")
        threads = (sp.get("device") or {}).get("threads")
        clock = settings.get("clock")
        st = Table(
            title=f"speed on {where}"
            + (f", {threads} thread(s)" if threads else "")
            + (f", {clock}" if clock else "")
        )
        for col in ("", "A", "B", "B/A (median, IQR)"):
            st.add_column(col, justify="left" if not col else "right")
        a, b = sp["a"], sp["b"]
        st.add_row("latency ms/image (batch 1)", f"{a['latency_ms']:.2f}", f"{b['latency_ms']:.2f}",
                   f"{sp['latency_ratio']:.3f} ({sp['latency_ratio_iqr'][0]:.3f}-{sp['latency_ratio_iqr'][1]:.3f})")  # fmt: skip
        batch = settings.get("batch_size", "")
        st.add_row(f"throughput images/s (batch {batch})", f"{a['throughput']:.0f}", f"{b['throughput']:.0f}",
                   f"{sp['throughput_ratio']:.3f} ({sp['throughput_ratio_iqr'][0]:.3f}-{sp['throughput_ratio_iqr'][1]:.3f})")  # fmt: skip
        if a.get("params") is not None and b.get("params") is not None:
            st.add_row(
                "parameters",
                f"{a['params']:,}",
                f"{b['params']:,}",
                f"{b['params'] / max(a['params'], 1):.3f}",
            )
        if a.get("weights_bytes") and b.get("weights_bytes"):
            st.add_row("weights MB", f"{a['weights_bytes'] / 1e6:.2f}", f"{b['weights_bytes'] / 1e6:.2f}",
                       f"{b['weights_bytes'] / a['weights_bytes']:.3f}")  # fmt: skip
        console.print(st)
    marks = {True: "[green]ok  [/]", False: "[bold red]HOLD[/]", None: "[yellow]skip[/]"}
    for c in doc.get("checks") or [{"ok": False, "text": r} for r in doc["reasons"]]:
        console.print(f"  {marks[c['ok']]} {escape(c['text'])}", highlight=False)
    for note in doc["notes"]:
        console.print(f"  [dim]note: {escape(note)}[/]", highlight=False)
