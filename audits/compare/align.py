"""Pair two audit runs image by image: same frozen held-out set, matching classes, one row each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from audits.compare.ancestry import Relation, relation
from audits.errors import AuditError
from audits.runs.models_audit import AuditRecord
from audits.store import Run


@dataclass
class Aligned:
    """Both runs' outcomes on the images both decoded, one row per image (data-set order of A)."""

    frame: pd.DataFrame  # path, label, group, pred_a, pred_b, correct_a, correct_b, row_a, row_b
    classes: list[str]  # RUN_B's class names and order
    n_only_a: int = 0
    n_only_b: int = 0
    notes: list[str] = field(default_factory=list)
    #: Set when the runs are on two versions of one set (``--across-corrections``): counts.
    across_corrections: dict[str, Any] | None = None

    @property
    def groups(self) -> np.ndarray | None:
        g = self.frame["group"]
        return None if g.isna().all() else g.to_numpy(dtype=object)


def _few(names: list[str], n: int = 8) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def _check_class_map(classes_a: list[str], classes_b: list[str], class_map: dict[str, str]) -> None:
    """Every key of the map is one of A's classes and every value one of B's."""
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


def matched_classes(
    classes_a: list[str], classes_b: list[str], class_map: dict[str, str] | None = None
) -> list[str]:
    """B's class list once A's names are mapped; refuses lists that differ after mapping."""
    if class_map:
        _check_class_map(classes_a, classes_b, class_map)
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


def _audit_record(run: Run, which: str) -> AuditRecord:
    """The run's validated ``audit.json``; a damaged one is an ``AuditError`` naming the field."""
    if run.kind != "audit":
        raise AuditError(
            f"{which} {run.path}: is a {run.kind} run; compare needs two audit runs (python -m audits run ...)"
        )
    return run.audit


def _check_same_set(run_a: Run, run_b: Run, across_corrections: bool = False) -> Relation | None:
    """None for one set; the relation of two versions of a set with ``across_corrections``."""
    da, db = run_a.audit.dataset, run_b.audit.dataset
    fa, fb = da.fingerprint, db.fingerprint
    if fa and fb and fa != fb and (related := relation(run_a, run_b)) is not None:
        if across_corrections:
            return related
        gens = "" if related.generations == 1 else f" ({related.generations} generations)"
        raise AuditError(
            f"the runs were made on two versions of one held-out set: {related.descendant}'s set "
            f"(fingerprint {str(fb if related.descendant == 'RUN_B' else fa)[:12]}) was made from "
            f"{related.ancestor}'s by relabel{gens}; pass --across-corrections to compare on the "
            "images both versions share with the same label"
        )
    if not fa or not fb or fa != fb:
        raise AuditError(
            f"the runs were made on different held-out sets (RUN_A fingerprint {str(fa)[:12]} from {da.path}, "
            f"RUN_B fingerprint {str(fb)[:12]} from {db.path}); a comparison needs both models audited "
            "on the same frozen held-out set: audit one of them again with the other's --data"
        )


def _context_notes(run_a: Run, run_b: Run) -> list[str]:
    """What the reader should know about the pair that does not stop the comparison."""
    notes: list[str] = []
    if run_a.path == run_b.path:
        notes.append("RUN_A and RUN_B are the same run")
    if not run_a.audit.dataset.frozen:
        notes.append(
            "the held-out set was not frozen when audited (python -m audits freeze DATA); the fingerprints still match"
        )
    name_a, name_b = run_a.audit.model.name, run_b.audit.model.name
    if name_a != name_b:
        notes.append(f"different model families: '{name_a}' and '{name_b}'")
    return notes


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
    if "file_sha256" in labelled.columns:  # across corrections: the same path is the same file
        out["file_sha256"] = labelled["file_sha256"].to_numpy(dtype=object)
    return out


def _merge(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """The images both runs scored, refusing pairs whose labels disagree."""
    merged = a.merge(b, on="path", how="inner", suffixes=("_a", "_b"), validate="one_to_one")
    if merged.empty:
        raise AuditError("the runs share no labelled image that both decoded; nothing to compare")
    mismatch = merged["label_a"] != merged["label_b"]
    if mismatch.any():
        raise AuditError(
            f"{int(mismatch.sum())} image(s) have different labels in the two runs although the fingerprints match, "
            f"e.g. '{merged.loc[mismatch, 'path'].iloc[0]}'; one run's predictions table is damaged"
        )
    return merged


def _merge_across(
    a: pd.DataFrame, b: pd.DataFrame, related: Relation, run_a: Run, run_b: Run
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The images both versions hold as the same file with the same label; the rest counted."""
    shared = a.merge(b, on="path", how="inner", suffixes=("_a", "_b"), validate="one_to_one")
    same_file = pd.Series(True, index=shared.index)
    if "file_sha256_a" in shared.columns and "file_sha256_b" in shared.columns:
        same_file = shared["file_sha256_a"] == shared["file_sha256_b"]
    same_label = shared["label_a"] == shared["label_b"]
    merged = shared[same_file & same_label].reset_index(drop=True)
    if merged.empty:
        raise AuditError(
            "the two versions of the set share no image with the same file and label; "
            "nothing to compare"
        )
    block = {
        "ancestor": related.ancestor,
        "descendant": related.descendant,
        "generations": related.generations,
        "chain": list(related.chain),
        "fingerprint_a": run_a.audit.dataset.fingerprint,
        "fingerprint_b": run_b.audit.dataset.fingerprint,
        "n_a": int(len(a)),
        "n_b": int(len(b)),
        "n_shared": int(len(shared)),
        "n_label_changed": int((same_file & ~same_label).sum()),
        "n_file_changed": int((~same_file).sum()),
        "n_only_a": int(len(a) - len(shared)),
        "n_only_b": int(len(b) - len(shared)),
        "n_aligned": int(len(merged)),
    }
    return merged, block


def across_note(block: dict[str, Any]) -> str:
    """The verdict note of a comparison across corrections (stored in ``notes``)."""
    left_out = [
        f"{block['n_label_changed']} relabelled",
        f"{block['n_only_a']} only in RUN_A's set",
        f"{block['n_only_b']} only in RUN_B's set",
    ]
    if block["n_file_changed"]:
        left_out.append(f"{block['n_file_changed']} whose file differs")
    return (
        f"compared across corrections: {block['descendant']}'s set was made from "
        f"{block['ancestor']}'s by relabel; on the {block['n_aligned']} images both versions "
        f"share with the same label ({', '.join(left_out)} left out)"
    )


def _pairs_frame(merged: pd.DataFrame) -> pd.DataFrame:
    group = merged["group_a"] if "group_a" in merged.columns else merged.get("group")
    return pd.DataFrame(
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


def align_runs(
    run_a: Run,
    run_b: Run,
    class_map: dict[str, str] | None = None,
    across_corrections: bool = False,
) -> Aligned:
    """Check the runs are comparable and pair their outcomes image by image (on ``path``).

    Runs on two versions of one set (``relabel``) are refused unless ``across_corrections``;
    then they are paired on the images both versions hold with the same file and label.
    """
    record_a, record_b = _audit_record(run_a, "RUN_A"), _audit_record(run_b, "RUN_B")
    related = _check_same_set(run_a, run_b, across_corrections)
    classes = matched_classes(
        list(record_a.model.classes or []), list(record_b.model.classes or []), class_map
    )
    notes = _context_notes(run_a, run_b)
    a, b = _outcomes(run_a, "RUN_A"), _outcomes(run_b, "RUN_B")
    if class_map:
        a["pred"] = a["pred"].map(lambda p: class_map.get(p, p))
    across = None
    if related is None:
        merged = _merge(a, b)
    else:
        merged, across = _merge_across(a, b, related, run_a, run_b)
        notes.append(across_note(across))
    n_only_a, n_only_b = len(a) - len(merged), len(b) - len(merged)
    if (n_only_a or n_only_b) and across is None:
        notes.append(
            f"aligned on the {len(merged)} images both runs decoded; {n_only_a} were scored only in RUN_A "
            f"and {n_only_b} only in RUN_B, and are left out"
        )
    return Aligned(
        frame=_pairs_frame(merged),
        classes=classes,
        n_only_a=n_only_a,
        n_only_b=n_only_b,
        notes=notes,
        across_corrections=across,
    )
