"""Exact duplicates: held-out files whose bytes are also a training file's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: What the report says the exact check compared.
METHOD = "file sha256"


def exact_duplicates(
    test_hashes: Sequence[str | None], train_hashes: Sequence[str | None]
) -> list[dict[str, Any]]:
    """Test rows whose file sha256 is also a training file's: ``{test, train, n_matches}``.

    ``test``/``train`` are positions in the two sequences; ``train`` is the first match.
    Unreadable files (hash None) never match.
    """
    first: dict[str, int] = {}
    count: dict[str, int] = {}
    for j, h in enumerate(train_hashes):
        if h:
            first.setdefault(h, j)
            count[h] = count.get(h, 0) + 1
    return [
        {"test": i, "train": first[h], "n_matches": count[h]}
        for i, h in enumerate(test_hashes)
        if h and h in first
    ]
