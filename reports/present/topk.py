"""Which top-k accuracies are worth a reader's attention.

Top-k accuracy says something only when guessing k classes is hard: with 6 classes a top-3
hit covers half of them, and a model that knows nothing scores 50%. A top-k figure is shown
when k ≤ n_classes / 3 (a blind guess scores at most a third), so top-3 needs 9 classes and
top-5 needs 15. Below that the figures stay in the JSON export.
"""

from __future__ import annotations

from typing import Any

#: The stored top-k accuracies (``metrics.top_k_accuracy``), by k.
STORED_K = (3, 5)


def topk_worth_showing(k: int, n_classes: Any) -> bool:
    """True when top-``k`` accuracy is informative for ``n_classes`` classes (k ≤ n/3)."""
    try:
        n = int(n_classes)
    except (TypeError, ValueError):
        return False
    return 3 * k <= n


def shown_topk(top_k: Any, n_classes: Any) -> list[tuple[int, Any]]:
    """(k, value) of the stored top-k accuracies worth showing, smallest k first."""
    return [
        (k, getattr(top_k, f"top{k}", None))
        for k in STORED_K
        if topk_worth_showing(k, n_classes) and getattr(top_k, f"top{k}", None) is not None
    ]
