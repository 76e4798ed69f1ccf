"""Review candidates: which images of an audited held-out set an expert should look at next.

Pure functions over a stored run's tables (the predictions table, the probabilities, the
integrity record) and the corrections file beside the frozen set (``audits.corrections``).
Nothing here writes; the dashboard's Review page and ``python -m audits review`` append the
decisions through ``audits.corrections.append_decisions``.

A queue is one of: the suspect labels of the integrity check, the least-confident labelled
images (lowest probability of the given label), a failure pattern's images, a confusion pair
(true -> predicted), or any filter (true class, predicted class, slice, correct or wrong).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audits.corrections import Decision, corrections_file, latest_decisions, read_corrections
from audits.errors import AuditError

QUEUE_KINDS = ("suspects", "least-confident", "pair", "pattern", "filter")

#: The columns of a queue, in order (``versions`` maps a version to its prediction).
COLUMNS = (
    "row",
    "path",
    "sha256",
    "label",
    "pred",
    "confidence",
    "p_label",
    "margin",
    "top5",
    "why",
    "versions",
)


@dataclass(frozen=True)
class QueueSpec:
    """Which images to review. ``kind`` is one of ``QUEUE_KINDS``.

    ``true``/``pred`` name the pair (``pair``) or filter classes; ``pattern`` is a failure
    pattern's rank; ``slice`` is (column, value); ``correct`` keeps right (True) or wrong
    (False) predictions only.
    """

    kind: str
    true: tuple[str, ...] = ()
    pred: tuple[str, ...] = ()
    pattern: int | None = None
    slice: tuple[str, str] | None = None
    correct: bool | None = None

    def __post_init__(self) -> None:
        if self.kind not in QUEUE_KINDS:
            raise AuditError(f"queue {self.kind!r} is not one of {', '.join(QUEUE_KINDS)}")
        if self.kind == "pair" and (len(self.true) != 1 or len(self.pred) != 1):
            raise AuditError("a pair queue needs one true and one predicted class (TRUE:PRED)")
        if self.kind == "pattern" and self.pattern is None:
            raise AuditError("a pattern queue needs the pattern's rank (pattern N)")

    @property
    def title(self) -> str:
        """The queue in words: 'targa → carrera', 'failure pattern 2', 'suspect labels'."""
        if self.kind == "pair":
            return f"{self.true[0]} → {self.pred[0]}"
        if self.kind == "pattern":
            return f"failure pattern {self.pattern}"
        if self.kind == "suspects":
            return "suspect labels"
        if self.kind == "least-confident":
            return "least confident"
        return "filtered images"


def parse_queue(kind: str, value: str | None = None) -> QueueSpec:
    """``--queue suspects|least-confident|pair TRUE:PRED|pattern N`` as a ``QueueSpec``."""
    if kind == "pair":
        true, sep, pred = (value or "").partition(":")
        if not sep or not true.strip() or not pred.strip():
            raise AuditError(f"--queue pair needs TRUE:PRED (e.g. targa:carrera), got {value!r}")
        return QueueSpec("pair", true=(true.strip(),), pred=(pred.strip(),))
    if kind == "pattern":
        try:
            rank = int(value or "")
        except ValueError:
            raise AuditError(f"--queue pattern needs the pattern's rank N, got {value!r}") from None
        return QueueSpec("pattern", pattern=rank)
    if value:
        raise AuditError(f"--queue {kind} takes no value, got {value!r}")
    return QueueSpec(kind)


def label_probability(table: pd.DataFrame, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probability of the given label, its margin over the best other class) per row; NaN for
    unlabelled rows. The margin is negative when the model prefers another class."""
    p = np.asarray(probs, dtype=np.float64)
    idx = table["label_idx"].to_numpy()
    rows = table["row"].to_numpy()
    labelled = idx >= 0
    p_label = np.full(len(table), np.nan)
    margin = np.full(len(table), np.nan)
    if labelled.any():
        sub = p[rows[labelled]]
        own = sub[np.arange(len(sub)), idx[labelled]]
        other = sub.copy()
        other[np.arange(len(sub)), idx[labelled]] = -np.inf
        p_label[labelled] = own
        margin[labelled] = own - other.max(axis=1)
    return p_label, margin


def _top5(table: pd.DataFrame, classes: list[str]) -> list[list[tuple[str, float]]]:
    out = []
    for idx, prob in zip(table["topk_idx"], table["topk_prob"], strict=True):
        out.append(
            [
                (classes[int(i)] if 0 <= int(i) < len(classes) else str(i), float(p))
                for i, p in zip(idx, prob, strict=False)
            ]
        )
    return out


def _pattern_rows(integrity: Any, rank: int) -> list[int]:
    patterns = getattr(getattr(integrity, "failure_patterns", None), "patterns", None)
    if not patterns:
        raise AuditError("this run has no failure patterns (integrity.json has none)")
    for p in patterns:
        if p.rank == rank:
            return list(p.rows)
    ranks = ", ".join(str(p.rank) for p in patterns)
    raise AuditError(f"no failure pattern {rank} in this run (patterns: {ranks})")


def _suspect_rows(integrity: Any) -> list[int]:
    block = getattr(integrity, "suspect_labels", None)
    rows = getattr(block, "rows", None)
    if rows is None:
        raise AuditError("this run has no suspect-label results (integrity.json has none)")
    return [r.row for r in sorted(rows, key=lambda r: r.rank)]


def _check_classes(names: tuple[str, ...], classes: list[str]) -> None:
    for name in names:
        if name not in classes:
            raise AuditError(
                f"class {name!r} is not one of the model's classes: {', '.join(classes)}"
            )


def candidates(
    table: pd.DataFrame,
    probs: np.ndarray,
    classes: list[str],
    spec: QueueSpec,
    integrity: Any = None,
    versions: dict[str, pd.Series] | None = None,
) -> pd.DataFrame:
    """The images of the queue, in review order, one row each with ``COLUMNS``.

    ``versions`` maps another audited version to its predictions by image path (the same
    frozen rows, from ``other_versions``). Unlabelled images are never candidates.
    """
    _check_classes(spec.true + spec.pred, classes)
    p_label, margin = label_probability(table, probs)
    base = table.assign(p_label=p_label, margin=margin)
    base = base[base["label_idx"].to_numpy() >= 0]
    why = ""
    if spec.kind == "suspects":
        order = _suspect_rows(integrity)
        picked = base.set_index("row", drop=False).reindex(order).dropna(subset=["path"])
        why = "suspect label: the model confidently contradicts it"
    elif spec.kind == "pattern":
        order = _pattern_rows(integrity, int(spec.pattern))  # type: ignore[arg-type]
        picked = base.set_index("row", drop=False).reindex(order).dropna(subset=["path"])
        why = f"failure pattern {spec.pattern}"
    else:
        mask = np.ones(len(base), bool)
        if spec.true:
            mask &= base["label"].isin(spec.true).to_numpy()
        if spec.pred:
            mask &= base["pred"].isin(spec.pred).to_numpy()
        if spec.slice is not None:
            col, value = spec.slice
            if col not in base.columns:
                raise AuditError(f"slice column {col!r} is not in the predictions table")
            mask &= (base[col].astype(str) == value).to_numpy()
        if spec.correct is not None:
            mask &= base["correct"].to_numpy() == spec.correct
        picked = base[mask].sort_values(["p_label", "row"], kind="stable")
        why = {
            "pair": f"confused: {spec.title}",
            "least-confident": "least confidence in the given label",
        }.get(spec.kind, "filter")
    picked = picked.reset_index(drop=True)
    out = pd.DataFrame(
        {
            "row": picked["row"].astype("int64"),
            "path": picked["path"].astype(str),
            "sha256": picked["file_sha256"].astype(str),
            "label": picked["label"].astype(str),
            "pred": picked["pred"].astype(str),
            "confidence": picked["confidence"].astype(float),
            "p_label": picked["p_label"].astype(float),
            "margin": picked["margin"].astype(float),
        }
    )
    out["top5"] = _top5(picked, classes) if len(picked) else []
    out["why"] = why
    out["versions"] = [
        {
            v: (None if pd.isna(s.get(path)) else str(s.get(path)))
            for v, s in (versions or {}).items()
        }
        for path in out["path"]
    ]
    return out


def other_versions(store: str | Path, audit: Any, table: pd.DataFrame) -> dict[str, pd.Series]:
    """Predictions of the other audited versions of the same model on the same frozen rows
    (newest audit of each), by image path; empty when there are none."""
    from audits.label_consensus import other_versions as found
    from audits.label_consensus import table_fingerprint

    return dict(found(Path(store), audit.model.name, audit.model.version, table_fingerprint(table)))


def corrections_for(dataset: Any) -> Path:
    """The corrections file of an audit's held-out set (``audit.json``'s ``dataset``).

    Refused, in one line, when the record names no data set or the set is not on this machine
    (decisions are written beside the frozen set, never anywhere else).
    """
    if not getattr(dataset, "path", None):
        raise AuditError("audit.json names no data set path (dataset.path); re-run the audit")
    source = Path(dataset.path)
    kind = dataset.kind or ("imagefolder" if source.is_dir() else "manifest")
    if not source.exists():
        raise AuditError(
            f"{source}: the audited held-out set is not on this machine; decisions are written "
            "beside it (copy the set back to this path, or review where it lives)"
        )
    return corrections_file(source, kind)


def decisions_in_force(file: Path) -> pd.DataFrame:
    """The decision in force for each image of the corrections file (empty when none yet)."""
    if not file.is_file():
        return pd.DataFrame(columns=["path", "sha256", "decision", "new_label", "reviewer", "time"])
    return latest_decisions(read_corrections(file))


def decided_mask(queue: pd.DataFrame, in_force: pd.DataFrame) -> np.ndarray:
    """Which queue rows already have a decision in force for this exact file (path and
    sha256): a decision about an older file at the same path does not count."""
    if in_force.empty or queue.empty:
        return np.zeros(len(queue), bool)
    keys = set(zip(in_force["path"], in_force["sha256"], strict=True))
    return np.array([(p, s) in keys for p, s in zip(queue["path"], queue["sha256"], strict=True)])


def decision(
    item: dict[str, Any] | pd.Series,
    verdict: str,
    reviewer: str,
    new_label: str = "",
    reason: str = "",
) -> Decision:
    """One queue row's decision (``keep``/``relabel``/``exclude``); a reviewer is required."""
    reviewer = reviewer.strip()
    if not reviewer:
        raise AuditError("a reviewer name is required before deciding (--reviewer NAME)")
    if verdict == "relabel" and new_label == item["label"]:
        verdict, new_label = "keep", ""  # relabelling to the same class keeps it
    return Decision(
        path=str(item["path"]),
        sha256=str(item["sha256"]),
        old_label=str(item["label"]),
        decision=verdict,
        new_label=new_label if verdict == "relabel" else "",
        reviewer=reviewer,
        reason=reason.strip(),
    )


def run_classes(audit: Any) -> list[str]:
    """The model's class order as the audit recorded it."""
    classes = list(audit.model.classes or [])
    if not classes:
        classes = list(audit.metrics.confusion.labels)
    return classes


def queue_for_run(run: Any, spec: QueueSpec, store: str | Path | None = None) -> pd.DataFrame:
    """``candidates`` of a stored audit run, with the other versions in ``store`` (default: the
    folder that holds the run)."""
    audit = run.audit
    table = run.table
    versions = other_versions(store if store is not None else run.path.parent, audit, table)
    return candidates(table, run.probabilities, run_classes(audit), spec, run.integrity, versions)
