"""Class x slice cross-tab: where a class's recall depends on a metadata value, and why.

For every slicing column (``audits.slices.column_kinds``, bucketed as the slice scan does) and
every class, the recall of that class *within* each value is set against its recall on the
rest of the class's images, each with its Wilson 95% interval. Each (class, value) cell with at
least ``min_support`` images on both sides is tested with Fisher's exact test (two-sided) on
the 2x2 table (in value / rest x right / wrong); for a column of exactly two values only one
value is tested (the other is the same table). Every tested cell is adjusted together with
Benjamini-Hochberg, so picking the largest gap of a class x column afterwards does not make its
p-value look better than it is. ``rows`` keeps, per class x column, the value with the largest
gap.

The **root cause** is the association the summary leads with: among significant cells (adjusted
p < ``alpha``) with a gap of at least ``min_gap``, the one for the true class of the most
frequent confusion (what fails most) when there is one, else the smallest adjusted p. When the
training manifest is given, the same value's share among that class's training images and among
the other classes' is stored beside it: a value that nearly always comes with one class in
training is a shortcut the model can learn (Geirhos et al., "Shortcut learning in deep neural
networks", Nature Machine Intelligence 2020).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from audits.formatting import count, pct
from audits.intervals import wilson_interval
from audits.multitest import benjamini_hochberg
from audits.slices import MISSING, as_bool, column_kinds, slice_labels

MIN_SUPPORT = 10
MIN_GAP = 0.10
ALPHA = 0.05
TEST = (
    "Fisher exact, two-sided: the class's recall within a metadata value vs on the rest of the "
    "class's images; Benjamini-Hochberg adjusted across every tested class x value"
)


def _cells(
    labelled: pd.DataFrame, column: str, kind: str, classes: list[str], min_support: int
) -> list[dict[str, Any]]:
    """Every (class, value) cell of one column with both sides large enough, unadjusted.

    Counts come from one ``bincount`` over (class, value) codes, so the cost is one pass over
    the rows per column whatever the number of classes and values."""
    labels = slice_labels(labelled[column], kind)[0].astype(str)
    codes, values = pd.factorize(labels, sort=True)
    tested = range(1 if len(values) == 2 else len(values))  # 2 values: the same table twice
    index = {c: i for i, c in enumerate(classes)}
    cls = labelled["label"].astype(str).map(index).to_numpy(dtype=float)
    keep = ~np.isnan(cls)
    cell = cls[keep].astype(np.int64) * len(values) + codes[keep]
    size = len(classes) * len(values)
    n = np.bincount(cell, minlength=size).reshape(len(classes), len(values))
    right = labelled["correct"].to_numpy(dtype=bool)[keep]
    k = np.bincount(cell, weights=right, minlength=size).reshape(n.shape).astype(np.int64)
    n_all, k_all = n.sum(axis=1), k.sum(axis=1)
    out = []
    for i, name in enumerate(classes):
        for j in tested:
            n_in, k_in = int(n[i, j]), int(k[i, j])
            n_out, k_out = int(n_all[i]) - n_in, int(k_all[i]) - k_in
            if min(n_in, n_out) < min_support:
                continue
            lo_in, hi_in = wilson_interval(k_in, n_in)
            lo_out, hi_out = wilson_interval(k_out, n_out)
            grid = [[k_in, n_in - k_in], [k_out, n_out - k_out]]
            out.append(
                {
                    "class": name,
                    "column": column,
                    "kind": kind,
                    "value": str(values[j]),
                    "label": f"{column} = {values[j]}",
                    "support": n_in,
                    "correct": k_in,
                    "recall": k_in / n_in,
                    "ci_low": lo_in,
                    "ci_high": hi_in,
                    "rest_support": n_out,
                    "rest_correct": k_out,
                    "rest_recall": k_out / n_out,
                    "rest_ci_low": lo_out,
                    "rest_ci_high": hi_out,
                    "gap": k_in / n_in - k_out / n_out,
                    "p_value": float(fisher_exact(grid).pvalue),
                }
            )
    return out


def _top_confused_class(labelled: pd.DataFrame) -> tuple[str, str, int] | None:
    """(true, predicted, count) of the most frequent confusion, or None without errors."""
    wrong = labelled[~labelled["correct"].to_numpy(dtype=bool)]
    if wrong.empty:
        return None
    pairs = wrong.groupby(["label", "pred"], observed=True).size().sort_values(ascending=False)
    (true, pred), n = pairs.index[0], int(pairs.iloc[0])
    return str(true), str(pred), n


def _in_words(cell: dict[str, Any]) -> tuple[str, str]:
    """How the value and its complement read in a sentence: ('red', 'non-red')."""
    column, value, kind = cell["column"], cell["value"], cell["kind"]
    if kind == "boolean":
        return (column, f"non-{column}") if value == "true" else (f"non-{column}", column)
    if kind == "category" and value != MISSING:
        return value, f"non-{value}"
    return f"{column} {value}", f"other-{column}"


def training_share(training: pd.DataFrame, cell: dict[str, Any]) -> dict[str, Any] | None:
    """The value's share among the class's training images and among the other classes'."""
    column, kind, value = cell["column"], cell["kind"], cell["value"]
    if column not in training.columns or "label" not in training.columns:
        return None
    series = training[column]
    if kind == "boolean":
        flags = as_bool(series)
        if flags is None:
            return None
        has = flags.map(lambda v: v is (value == "true")).to_numpy(dtype=bool)
    elif kind == "category":
        has = series.map(lambda v: MISSING if pd.isna(v) else str(v)).to_numpy() == value
    else:
        return None  # dates and numeric bins are bucketed per set; no like-for-like share
    labels = training["label"].astype(str).to_numpy()
    mine, other = labels == cell["class"], training["label"].notna().to_numpy()
    other &= ~mine
    n, m = int(mine.sum()), int(other.sum())
    if not n:
        return None
    k, j = int((has & mine).sum()), int((has & other).sum())
    return {
        "class_n": n,
        "class_k": k,
        "class_share": k / n,
        "other_n": m,
        "other_k": j,
        "other_share": j / m if m else None,
    }


def root_cause_sentence(cell: dict[str, Any], training: dict[str, Any] | None) -> str:
    """'Targa recall 2.6% on non-red images vs 100.0% on red ones (n = 114 and 16); the training
    set's Targas are 93.0% red (other classes: 0.3%).'"""
    inside, outside = _in_words(cell)
    name = cell["class"][:1].upper() + cell["class"][1:]
    low_first = cell["gap"] >= 0  # lead with the weak side
    parts = [
        (pct(cell["rest_recall"]), outside, cell["rest_support"]),
        (pct(cell["recall"]), inside, cell["support"]),
    ]
    weak, strong = parts if low_first else parts[::-1]
    text = (
        f"{name} recall {weak[0]} on {weak[1]} images vs {strong[0]} on {strong[1]} ones "
        f"(n = {count(weak[2])} and {count(strong[2])})"
    )
    if training is not None:
        other = (
            f" (other classes: {pct(training['other_share'])})"
            if training["other_share"] is not None
            else ""
        )
        text += f"; the training set's {name}s are {pct(training['class_share'])} {inside}{other}"
        if training["other_share"] is not None and not is_shortcut(training):
            text += ", so the training mix alone does not explain the gap"
    return text + "."


#: A metadata value is a training shortcut when it is this much more common among the class's
#: training images than among the other classes' (e.g. 93% of training Targas red vs 0.5%).
SHORTCUT_GAP = 0.5


def is_shortcut(training: dict[str, Any] | None) -> bool:
    """Does the training set's mix make the value a stand-in for the class?"""
    return (
        training is not None
        and training["other_share"] is not None
        and training["class_share"] - training["other_share"] >= SHORTCUT_GAP
    )


def advice_sentence(cell: dict[str, Any], training: dict[str, Any] | None) -> str:
    """What to do about the association, from the stored numbers."""
    inside, outside = _in_words(cell)
    name = cell["class"][:1].upper() + cell["class"][1:]
    weak = outside if cell["gap"] >= 0 else inside
    have = ""
    if training is not None:
        k = training["class_k"] if cell["gap"] < 0 else training["class_n"] - training["class_k"]
        have = f" (the training set has {count(k)} of {count(training['class_n'])})"
    if is_shortcut(training):
        return (
            f"Add {weak} {name}s to the training data{have}: in training, {inside} nearly "
            f"always means {name}, so the model can take the shortcut '{inside} ⇒ {name}'. "
            f"Then audit again and check {name} recall on {weak} images."
        )
    return (
        f"Look at the {name} failures on {weak} images (filter by {cell['column']}) for what "
        f"they share, and add such images to the training data if they are rare there{have}."
    )


def _pick(
    rows: list[dict[str, Any]], top: tuple[str, str, int] | None, min_gap: float
) -> tuple[dict[str, Any] | None, str | None]:
    """The root-cause cell and why it was chosen."""
    strong = [r for r in rows if r["significant"] and abs(r["gap"]) >= min_gap]
    if not strong:
        return None, None
    if top is not None:
        mine = [r for r in strong if r["class"] == top[0]]
        if mine:
            return mine[0], f"the class behind the most frequent error ({top[0]} → {top[1]})"
    return strong[0], "the smallest adjusted p-value"


def class_slice_report(
    table: pd.DataFrame,
    classes: list[str] | None = None,
    training: pd.DataFrame | None = None,
    min_support: int = MIN_SUPPORT,
    min_gap: float = MIN_GAP,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """The cross-tab over the labelled rows, and the root-cause sentence: ``{rows, root_cause}``."""
    labelled = table[table["label_idx"].to_numpy() >= 0]
    if classes is None:
        classes = sorted(labelled["label"].dropna().astype(str).unique())
    cells: list[dict[str, Any]] = []
    for column, kind in column_kinds(labelled).items():
        if column in ("label", "pred"):
            continue
        cells.extend(_cells(labelled, column, kind, list(classes), min_support))
    for cell, q in zip(cells, benjamini_hochberg([c["p_value"] for c in cells]), strict=True):
        cell["p_adj"] = q
        cell["significant"] = bool(q is not None and q < alpha)
    largest: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in cells:
        key = (cell["class"], cell["column"])
        # A two-valued column has two mirror cells with one |gap|: keep the weak side (the
        # value where recall is lower), which is the one a reader should look at.
        if key not in largest or (abs(cell["gap"]), cell["gap"] < 0) > (
            abs(largest[key]["gap"]),
            largest[key]["gap"] < 0,
        ):
            largest[key] = cell
    rows = sorted(largest.values(), key=lambda r: (r["p_adj"], -abs(r["gap"])))
    top = _top_confused_class(labelled)
    cause, why = _pick(rows, top, min_gap)
    root = None
    if cause is not None:
        share = training_share(training, cause) if training is not None else None
        also = sorted(
            {
                r["class"]
                for r in cells
                if r["significant"]
                and abs(r["gap"]) >= min_gap
                and (r["column"], r["value"]) == (cause["column"], cause["value"])
                and r["class"] != cause["class"]
            }
        )
        root = {
            **{k: cause[k] for k in ("class", "column", "value", "label")},
            "chosen_as": why,
            "top_confusion": None
            if top is None
            else {"true": top[0], "predicted": top[1], "count": top[2]},
            "training": share,
            "shortcut": is_shortcut(share),
            "also_affects": also,
            "sentence": root_cause_sentence(cause, share),
            "advice": advice_sentence(cause, share),
        }
    return {
        "test": TEST,
        "min_support": int(min_support),
        "min_gap": float(min_gap),
        "alpha": float(alpha),
        "n_tested": len(cells),
        "rows": rows,
        "root_cause": root,
    }


def training_table(card: Any) -> pd.DataFrame | None:
    """The rows (path, label, metadata) of a model card's training manifest; None when the
    card names none or it cannot be read (the cross-tab then goes without training shares)."""
    manifest = getattr(card, "training_manifest", None)
    if manifest is None:
        return None
    from audits.datasets import load_dataset
    from audits.errors import AuditError

    try:
        return load_dataset(manifest).items
    except AuditError:
        return None
