"""Per-image "what changed" between two compared versions: the images only one gets right.

Computed once at compare time from the aligned pairs (``audits.compare.align.Aligned.frame``)
and stored beside ``comparison.json`` as ``changed.parquet``; the counts go into
``comparison.json`` ``what_changed``. They are the McNemar discordant pairs the verdict tests
(``overall.mcnemar.b`` = only A right, ``c`` = only B right): one answer to one question.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: The stored file in a comparison run folder.
CHANGED_FILE = "changed.parquet"
#: ``side`` values: which version alone got the image right.
ONLY_A, ONLY_B = "only_a", "only_b"
SIDES = (ONLY_A, ONLY_B)
#: Columns of ``changed.parquet``, in order.
COLUMNS = ("side", "path", "label", "group", "pred_a", "pred_b", "row_a", "row_b")


def changed_images(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs exactly one version got right, with ``side`` (only_a / only_b), in pair order.

    ``pairs`` has the aligned frame's columns (path, label, group, pred_a, pred_b, correct_a,
    correct_b, row_a, row_b).
    """
    ca = pairs["correct_a"].to_numpy(dtype=bool)
    cb = pairs["correct_b"].to_numpy(dtype=bool)
    keep = ca != cb
    sub = pairs.loc[keep]
    group = sub["group"] if "group" in sub.columns else pd.Series([None] * len(sub))
    out = pd.DataFrame(
        {
            "side": np.where(ca[keep], ONLY_A, ONLY_B),
            "path": sub["path"].astype(str).to_numpy(),
            "label": sub["label"].astype(str).to_numpy(),
            "group": pd.array(
                [None if pd.isna(g) else str(g) for g in group.to_numpy(dtype=object)],
                dtype="string",
            ),
            "pred_a": sub["pred_a"].astype(str).to_numpy(),
            "pred_b": sub["pred_b"].astype(str).to_numpy(),
            "row_a": sub["row_a"].to_numpy(dtype=np.int64),
            "row_b": sub["row_b"].to_numpy(dtype=np.int64),
        }
    )
    return out.reset_index(drop=True)


def summary(changed: pd.DataFrame) -> dict[str, Any]:
    """``comparison.json`` ``what_changed``: the two counts and the file holding the images."""
    sides = changed["side"].astype(str)
    return {
        "only_a_right": int((sides == ONLY_A).sum()),
        "only_b_right": int((sides == ONLY_B).sum()),
        "file": CHANGED_FILE,
    }


def select(
    changed: pd.DataFrame,
    side: str,
    classes: list[str] | None = None,
    mask: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """The images of one side, optionally only true classes in ``classes`` and rows in ``mask``.

    ``mask`` is a boolean per row of ``changed`` (a slice filter built by the caller).
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    keep = changed["side"].astype(str).to_numpy() == side
    if classes:
        keep &= changed["label"].astype(str).isin(classes).to_numpy()
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool)
    return changed.loc[keep]


def page(frame: pd.DataFrame, number: int, size: int) -> tuple[pd.DataFrame, int]:
    """Page ``number`` (0-based, clipped to the last page) of ``frame`` and the page count."""
    pages = max(1, -(-len(frame) // size))
    number = min(max(0, number), pages - 1)
    return frame.iloc[number * size : (number + 1) * size], pages


def top_k(table: pd.DataFrame, row: int, classes: list[str]) -> list[tuple[str, float]]:
    """The stored top-k (class, probability) of predictions row ``row``; [] when not stored."""
    if "topk_idx" not in table.columns or "topk_prob" not in table.columns:
        return []
    hit = table.index[table["row"].to_numpy() == row] if "row" in table.columns else [row]
    if len(hit) == 0:
        return []
    rec = table.loc[hit[0]]
    out = []
    for idx, prob in zip(rec["topk_idx"], rec["topk_prob"], strict=False):
        i = int(idx)
        out.append((classes[i] if 0 <= i < len(classes) else str(i), float(prob)))
    return out


def confidence(table: pd.DataFrame, row: int) -> float | None:
    """The stored max-softmax confidence of predictions row ``row``; None when not stored."""
    if "confidence" not in table.columns or "row" not in table.columns:
        return None
    hit = table["confidence"].to_numpy()[table["row"].to_numpy() == row]
    return float(hit[0]) if len(hit) else None
