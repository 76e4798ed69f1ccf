"""Group leakage: the same physical object (``group``) in training and in the held-out set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd


def _group_keys(groups: Sequence[Any] | pd.Series) -> list[str | None]:
    """Groups as strings; blanks and missing values belong to no group."""
    return [None if g is None or pd.isna(g) else (str(g).strip() or None) for g in groups]


def group_leaks(
    test_groups: Sequence[Any] | pd.Series, train_groups: Sequence[Any] | pd.Series
) -> list[dict[str, Any]]:
    """Groups present on both sides: ``{group, test: [positions], train: [positions]}``, sorted."""
    train_pos: dict[str, list[int]] = {}
    for j, g in enumerate(_group_keys(train_groups)):
        if g is not None:
            train_pos.setdefault(g, []).append(j)
    test_pos: dict[str, list[int]] = {}
    for i, g in enumerate(_group_keys(test_groups)):
        if g is not None and g in train_pos:
            test_pos.setdefault(g, []).append(i)
    return [{"group": g, "test": test_pos[g], "train": train_pos[g]} for g in sorted(test_pos)]


def group_check(test_columns: pd.Index, train_columns: pd.Index) -> str:
    """What the group check compared, or which side lacks a ``group`` column."""
    missing = [
        name
        for name, cols in (("held-out", test_columns), ("training", train_columns))
        if "group" not in cols
    ]
    if not missing:
        return "shared 'group' values"
    sets = "sets" if len(missing) > 1 else "set"
    return f"not run: no 'group' column in the {' and '.join(missing)} {sets}"
