"""Failure patterns: systematic model errors, told apart from label noise.

Confident learning (``audits.labels``; Northcutt, Jiang & Chuang, "Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 70, 2021) flags an image when the model
confidently says another class than its label. That is evidence against the *label* only
under the noise model the method assumes: labels are flipped by a process that does not look
at the image (random classification noise, Angluin & Laird 1988; class-conditional noise in
Northcutt et al.). A model that learned a shortcut (Geirhos et al., "Shortcut learning in deep
neural networks", Nature Machine Intelligence 2, 2020) — "red => targa" — contradicts correct
labels just as confidently, and its contradictions have a structure that random flips do not:

1. **Pair concentration.** Flips that ignore the image spread a class's wrong labels over the
   other classes. Confident-learning flags (or, without them, errors) piled into one (given -> predicted) pair far above the rate of the
   other pairs are a systematic confusion. Each off-diagonal cell of the confusion matrix is
   tested with a one-sided binomial test against the background rate ``r0`` of the cells
   that are not patterns (flags / images of the given class, pooled), re-estimated after
   removing the cells found until the set is stable — a robust estimate, so one large pattern
   does not hide a smaller one by inflating the background (the iterative outlier removal of
   robust statistics). P-values are Benjamini–Hochberg adjusted over all cells
   (``audits.multitest``); a cell is a pattern when adjusted p < alpha, it holds at least
   ``min_count`` errors and its rate is at least ``min_ratio`` times the background.
2. **Slice concentration** (two ways). Under image-independent noise, whether an image of class ``i`` is
   wrongly labelled does not depend on its metadata (colour, source, night…), so its errors
   cannot concentrate in one metadata value. For each class and each value of each metadata
   column (typed and bucketed as in ``audits.slices``), the errors left outside pair patterns
   are tested against the rest of the class with Fisher's exact test (one-sided: more errors
   in the value), Benjamini–Hochberg adjusted over all (class, value) tests. This is the slice
   test of Slice Finder (Chung et al., ICDE 2019) restricted to one class at a time, so that a
   class imbalance between slices cannot produce it. And a flipped label sits on an image of
   the class the model predicts, so the errors read as class ``j`` carry the metadata of
   ``j``'s own images; errors read as ``j`` that do not (red cars of every class read as
   targa, while only 12% of real targas are red) are a pattern of kind ``into``: Fisher's
   exact test of the errors predicted ``j`` against the images labelled ``j``, per
   metadata value, one-sided, BH over all (class, value) cells.

For each pattern the metadata values most over- or under-represented among its images
(against the rest of its class; Fisher, BH within the pattern) are listed, which is what
connects a failure to its cause: "88 of 130 images labelled targa are predicted carrera;
none of them has colour = red (vs 16 of the other 42)".

Rows in a pattern are *not* suspect labels: ``audits.labels`` drops them from the suspects.
Limits, said where the patterns are shown: labels that annotators confuse systematically
(always the same pair, or one annotator's slice) look like a pattern too — the pattern is then
real but its cause is the labels; a sample of its images settles which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binom, fisher_exact

from audits.multitest import benjamini_hochberg
from audits.slices import column_kinds, slice_labels

ALPHA = 0.05
#: A pattern holds at least this many errors: fewer cannot be told from chance in practice.
MIN_COUNT = 5
#: A pair pattern's error rate is at least this many times the background rate.
MIN_RATIO = 3.0
#: Metadata values described per pattern, and pattern rows stored per pattern.
MAX_DESCRIBED = 3
MAX_ROWS = 10_000
_MAX_ROUNDS = 50


def confusion_counts(given: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """K x K counts, rows = given label, columns = predicted class."""
    return np.bincount(given * k + predicted, minlength=k * k).reshape(k, k)


def pair_tests(
    confusion: np.ndarray,
    alpha: float = ALPHA,
    min_count: int = MIN_COUNT,
    min_ratio: float = MIN_RATIO,
) -> dict[str, Any]:
    """Off-diagonal cells tested against the background rate of the non-pattern cells.

    Returns ``{background_rate, p_value, p_value_adj, pattern}`` (K x K arrays, NaN/False on
    the diagonal) and ``rounds``, the re-estimations it took.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    k = confusion.shape[0]
    n_class = confusion.sum(axis=1)
    off = ~np.eye(k, dtype=bool) & (n_class[:, None] > 0)
    n_cell = np.broadcast_to(n_class[:, None], (k, k))
    pattern = np.zeros((k, k), dtype=bool)
    p = p_adj = np.full((k, k), np.nan)
    rate = 0.0
    for rounds in range(1, _MAX_ROUNDS + 1):  # noqa: B007 (returned below)
        base = off & ~pattern
        denom = n_cell[base].sum()
        rate = float(confusion[base].sum() / denom) if denom else 0.0
        p = np.full((k, k), np.nan)
        # P(X >= observed) under Binomial(n_i, r0): sf(x - 1).
        p[off] = binom.sf(confusion[off] - 1, n_cell[off], rate)
        adj = benjamini_hochberg(p[off].tolist())
        p_adj = np.full((k, k), np.nan)
        p_adj[off] = np.array(adj, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(n_cell > 0, confusion / np.maximum(n_cell, 1), 0.0) / max(rate, 1e-12)
        found = off & (p_adj < alpha) & (confusion >= min_count) & (ratio >= min_ratio)
        if np.array_equal(found | pattern, pattern):
            break
        pattern |= found
    return {
        "background_rate": rate,
        "p_value": p,
        "p_value_adj": p_adj,
        "pattern": pattern,
        "rounds": rounds,
    }


def metadata_slices(table: pd.DataFrame) -> dict[str, pd.Series]:
    """One slice label per row for every metadata column (as ``audits.slices`` types them)."""
    out = {}
    for name, kind in column_kinds(table).items():
        labels, _ = slice_labels(table[name], kind)
        out[name] = labels.astype(str).reset_index(drop=True)
    return out


def _fisher(a: int, b: int, c: int, d: int, alternative: str) -> float:
    return float(fisher_exact([[a, b], [c, d]], alternative=alternative).pvalue)


def describe_slices(
    member: np.ndarray,
    in_class: np.ndarray,
    slices: dict[str, pd.Series],
    alpha: float = ALPHA,
    skip: str | None = None,
) -> list[dict[str, Any]]:
    """Metadata values over- or under-represented among ``member`` rows against the rest of
    their class (Fisher two-sided, BH over this pattern's values), strongest first."""
    rest = in_class & ~member
    n_in, n_rest = int(member.sum()), int(rest.sum())
    if n_in == 0 or n_rest == 0:
        return []
    found = []
    for column, labels in slices.items():
        if column == skip:
            continue
        values = labels.to_numpy()
        for value in np.unique(values[in_class]):
            has = values == value
            a, c = int((member & has).sum()), int((rest & has).sum())
            found.append(
                {
                    "column": column,
                    "value": str(value),
                    "label": f"{column} = {value}",
                    "n_in": a,
                    "share_in": a / n_in,
                    "n_rest": c,
                    "rest_support": n_rest,
                    "share_rest": c / n_rest,
                    "direction": "over" if a / n_in > c / n_rest else "under",
                    "p_value": _fisher(a, n_in - a, c, n_rest - c, "two-sided"),
                }
            )
    for entry, q in zip(found, benjamini_hochberg([f["p_value"] for f in found]), strict=True):
        entry["p_value_adj"] = q
    kept = [f for f in found if f["p_value_adj"] is not None and f["p_value_adj"] < alpha]
    kept.sort(key=lambda f: (f["p_value"], f["direction"] != "over", f["label"]))
    # One value per column: a two-valued column's two entries are mirror images.
    best: dict[str, dict[str, Any]] = {}
    for f in kept:
        best.setdefault(f["column"], f)
    return list(best.values())


def slice_tests(
    given: np.ndarray,
    residual: np.ndarray,
    slices: dict[str, pd.Series],
    k: int,
    min_count: int = MIN_COUNT,
) -> list[dict[str, Any]]:
    """(class, metadata value) cells whose residual errors exceed the rest of the class:
    Fisher one-sided, BH over every (class, value) cell with images on both sides — the
    family is fixed before looking at the counts, so no cell is tested for being large.
    Cells with fewer than ``min_count`` errors stay in the family but are never patterns."""
    tests = []
    for column, labels in slices.items():
        values = labels.to_numpy()
        for i in range(k):
            in_class = given == i
            for value in np.unique(values[in_class]):
                has = in_class & (values == value)
                a, n = int((residual & has).sum()), int(has.sum())
                rest = in_class & ~has
                c, m = int((residual & rest).sum()), int(rest.sum())
                if m == 0:
                    continue
                tests.append(_cell_test(i, column, value, a, n, c, m))
    return _adjusted(tests)


def into_tests(
    given: np.ndarray,
    pred: np.ndarray,
    residual: np.ndarray,
    slices: dict[str, pd.Series],
    k: int,
) -> list[dict[str, Any]]:
    """(predicted class, metadata value) cells: are the images of other classes read as
    class j unlike the images labelled j? Fisher one-sided (more of the value among them),
    BH over every (class, value) cell with images on both sides."""
    tests = []
    for column, labels in slices.items():
        values = labels.to_numpy()
        for j in range(k):
            into = residual & (pred == j)
            # Against every image labelled j, not only those predicted right: a shortcut gets
            # exactly its own slice right, which would make the shortcut look normal.
            right = given == j
            n, m = int(into.sum()), int(right.sum())
            if n == 0 or m == 0:
                continue
            for value in np.unique(values[into | right]):
                has = values == value
                a, c = int((into & has).sum()), int((right & has).sum())
                tests.append(_cell_test(j, column, value, a, n, c, m))
    return _adjusted(tests)


def _cell_test(
    class_idx: int, column: str, value: Any, a: int, n: int, c: int, m: int
) -> dict[str, Any]:
    """One (class, metadata value) cell: ``a`` of ``n`` inside vs ``c`` of ``m`` outside,
    Fisher one-sided (more inside)."""
    return {
        "class_idx": class_idx,
        "column": column,
        "value": str(value),
        "errors": a,
        "support": n,
        "rest_errors": c,
        "rest_support": m,
        "p_value": _fisher(a, n - a, c, m - c, "greater"),
    }


def _adjusted(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Benjamini–Hochberg over every cell of one family of tests."""
    for entry, q in zip(tests, benjamini_hochberg([t["p_value"] for t in tests]), strict=True):
        entry["p_value_adj"] = q
    return tests


def _share_words(d: dict[str, Any], n_in: int, n_rest: int, class_name: str) -> str:
    """'80 of them have colour = red (vs 3 of the other 42 targa images)'."""
    if d["n_in"] == 0:
        lead = "none of them has"
    elif d["n_in"] == n_in:
        lead = "all of them have"
    else:
        lead = f"{d['n_in']:,} of them {'has' if d['n_in'] == 1 else 'have'}"
    return f"{lead} {d['label']} (vs {d['n_rest']:,} of the other {n_rest:,} {class_name} images)"


def _sentence(p: dict[str, Any]) -> str:
    """The pattern in one sentence with its numbers."""
    cls = p["label"]
    if p["kind"] == "into":
        return (
            f"{p['n_errors']:,} of the {p['n_class']:,} other images predicted "
            f"{p['predicted']} outside the pair patterns have {p['slice']} (vs "
            f"{p['rest_errors']:,} of the "
            f"{p['rest_support']:,} images labelled {p['predicted']})."
        )
    if p["kind"] == "pair":
        head = (
            f"{p['n_errors']:,} of {p['n_class']:,} images labelled {cls} are predicted "
            f"{p['predicted']}"
        )
    else:
        head = (
            f"{p['n_errors']:,} of {p['slice_support']:,} images labelled {cls} with "
            f"{p['slice']} are misclassified (vs {p['rest_errors']:,} of the other "
            f"{p['rest_support']:,} {cls} images)"
        )
    rest = p["n_class"] - p["n_errors"]
    described = [_share_words(d, p["n_errors"], rest, cls) for d in p["slices"][:1]]
    return head + ("; " + described[0] if described else "") + "."


def find_patterns(
    table: pd.DataFrame,
    classes: Sequence[str],
    alpha: float = ALPHA,
    min_count: int = MIN_COUNT,
    min_ratio: float = MIN_RATIO,
    max_rows: int = MAX_ROWS,
    flagged: np.ndarray | None = None,
    self_confidence: np.ndarray | None = None,
) -> dict[str, Any]:
    """Failure patterns over the labelled rows of a predictions table.

    Returns ``{method, alpha, min_count, min_ratio, n_labelled, n_errors, background_rate,
    n_in_patterns, patterns: [...]}``; each pattern has rank, kind (``pair``, ``slice`` or
    ``into``),
    label, predicted (None for a slice pattern: any wrong class), slice (a slice pattern's
    metadata value), n_class, n_errors, share, expected, p_value, p_value_adj, slices (the
    metadata values that set its images apart), n_flagged, sentence and rows (predictions
    rows of its errors; a slice pattern's rows leave out errors already in a stronger pattern,
    while its n_errors counts all the slice's errors outside pair patterns). ``flagged`` (a mask over the table's rows, confident learning's
    suspects) makes the pair test count flags instead of all errors: a flag is what a pattern
    has to explain away, and the model's unconfident mistakes stay out of the evidence.
    """
    k = len(classes)
    label_idx = table["label_idx"].to_numpy(dtype=np.int64)
    labelled = np.flatnonzero(label_idx >= 0)
    out: dict[str, Any] = {
        "method": f"{'confident-learning flags' if flagged is not None else 'errors'} per "
        "(given label -> predicted class) against the background rate of the other pairs "
        "(binomial, one-sided), and errors per (class, metadata value) against the rest of the "
        "class (Fisher, one-sided); Benjamini-Hochberg adjusted",
        "alpha": alpha,
        "min_count": min_count,
        "min_ratio": min_ratio,
        "n_labelled": int(len(labelled)),
        "n_errors": 0,
        "background_rate": None,
        "n_in_patterns": 0,
        "patterns": [],
    }
    if len(labelled) == 0:
        return out
    sub = table.iloc[labelled].reset_index(drop=True)
    given = label_idx[labelled]
    pred = sub["pred_idx"].to_numpy(dtype=np.int64)
    rows = sub["row"].to_numpy(dtype=np.int64) if "row" in sub.columns else labelled
    wrong = pred != given
    evidence = wrong if flagged is None else wrong & np.asarray(flagged, bool)[labelled]
    pairs = pair_tests(
        confusion_counts(given[evidence], pred[evidence], k)
        + np.diag(np.bincount(given[~evidence], minlength=k)),
        alpha,
        min_count,
        min_ratio,
    )
    slices = metadata_slices(sub)
    patterns: list[dict[str, Any]] = []
    covered = np.zeros(len(sub), dtype=bool)
    for i, j in zip(*np.nonzero(pairs["pattern"]), strict=True):
        member = wrong & (given == i) & (pred == j)
        if self_confidence is not None:
            # The background share of the cell is what label noise alone would put there:
            # its flags with the least confidence in the given label stay suspects.
            background = int(np.floor(pairs["background_rate"] * (given == i).sum() + 0.5))
            cell = np.flatnonzero(member & evidence)
            conf = np.asarray(self_confidence, dtype=np.float64)[labelled][cell]
            member[cell[np.argsort(conf, kind="stable")[:background]]] = False
        covered |= member
        patterns.append(
            {
                "kind": "pair",
                "label": classes[i],
                "predicted": classes[j],
                "slice": None,
                "n_class": int((given == i).sum()),
                "n_errors": int(member.sum()),
                "expected": float(pairs["background_rate"] * (given == i).sum()),
                "p_value": float(pairs["p_value"][i, j]),
                "p_value_adj": float(pairs["p_value_adj"][i, j]),
                "_member": member,
                "_described": member,
                "_class": given == i,
                "slice_column": None,
            }
        )
    pair_covered = covered.copy()
    tests = slice_tests(given, wrong & ~pair_covered, slices, k, min_count)
    found = [t for t in tests if t["p_value_adj"] is not None and t["p_value_adj"] < alpha]
    # Strongest first; a slice whose errors are mostly another slice's (night photos that are
    # also fan photos) adds a pattern only with min_count errors of its own.
    for t in sorted(found, key=lambda t: (t["p_value"], t["column"], t["value"])):
        i = t["class_idx"]
        described = wrong & ~pair_covered & (given == i)
        described &= slices[t["column"]].to_numpy() == t["value"]
        member = described & ~covered
        if t["errors"] < min_count or member.sum() < min_count:
            continue
        covered |= member
        patterns.append(
            {
                "kind": "slice",
                "label": classes[i],
                "predicted": None,
                "slice": f"{t['column']} = {t['value']}",
                "slice_column": t["column"],
                "n_class": int((given == i).sum()),
                "n_errors": t["errors"],
                "slice_support": t["support"],
                "rest_errors": t["rest_errors"],
                "rest_support": t["rest_support"],
                "expected": float(t["rest_errors"] / t["rest_support"] * t["support"]),
                "p_value": t["p_value"],
                "p_value_adj": t["p_value_adj"],
                "_member": member,
                "_described": described,
                "_class": given == i,
            }
        )
    # Errors read as one class that do not look like that class's own images (red ones read
    # as targa, whatever their label): flips would carry the metadata of the class they are.
    for t in sorted(
        (
            t
            for t in into_tests(given, pred, wrong & ~pair_covered, slices, k)
            if t["p_value_adj"] is not None and t["p_value_adj"] < alpha
        ),
        key=lambda t: (t["p_value"], t["column"], t["value"]),
    ):
        j = t["class_idx"]
        member = wrong & ~covered & (pred == j)
        member &= slices[t["column"]].to_numpy() == t["value"]
        if member.sum() < min_count:
            continue
        covered |= member
        patterns.append(
            {
                "kind": "into",
                "label": "(other classes)",
                "predicted": classes[j],
                "slice": f"{t['column']} = {t['value']}",
                "slice_column": t["column"],
                "n_class": t["support"],
                "n_errors": t["errors"],
                "rest_errors": t["rest_errors"],
                "rest_support": t["rest_support"],
                "expected": float(t["rest_errors"] / t["rest_support"] * t["support"]),
                "p_value": t["p_value"],
                "p_value_adj": t["p_value_adj"],
                "_member": member,
                "_described": member,
                "_class": np.zeros(len(sub), dtype=bool),  # no class of its own to compare
            }
        )
    in_any = covered  # each error sits in at most one pattern
    patterns.sort(key=lambda p: (-p["n_errors"], p["p_value"]))
    for rank, p in enumerate(patterns, start=1):
        member, described, in_class = p.pop("_member"), p.pop("_described"), p.pop("_class")
        p["rank"] = rank
        p["share"] = p["n_errors"] / p["n_class"]
        own = p.pop("slice_column")
        p["slices"] = describe_slices(described, in_class, slices, alpha, own)[:MAX_DESCRIBED]
        p["n_flagged"] = int((member & evidence).sum()) if flagged is not None else None
        p["sentence"] = _sentence(p)
        listed = rows[member]
        p["rows"] = [int(r) for r in listed[:max_rows]]
        p["rows_truncated"] = bool(len(listed) > max_rows)
    out["n_errors"] = int(wrong.sum())
    out["background_rate"] = pairs["background_rate"]
    out["n_in_patterns"] = int(in_any.sum())
    out["patterns"] = [{"rank": p.pop("rank"), **p} for p in patterns]
    return out


def pattern_rows(patterns: dict[str, Any]) -> dict[int, int]:
    """Predictions row -> rank of the first (largest) pattern that holds it."""
    out: dict[int, int] = {}
    for p in patterns.get("patterns", []):
        for r in p["rows"]:
            out.setdefault(int(r), int(p["rank"]))
    return out
