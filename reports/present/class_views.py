"""Which classes a confusion view shows, and in what order, read from the stored run.

The most-confused classes are those of ``metrics.most_confused`` (the pairs ``audits.metrics``
ranked by count), so the dashboard and the exports show the same classes for one run; orders
use the stored per-class rows. Rows are typed records or their stored dicts
(``reports.present.rows``). Nothing is recomputed from the matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from audits.formatting import is_num
from reports.present.rows import Row, stored_rows

ORDERS = ("groups", "worst", "errors", "model")


def most_confused_classes(
    pairs: Sequence[Row], labels: Sequence[str], limit: int | None = None
) -> list[int]:
    """Indices (in ``labels``) of the classes of the stored most-confused pairs, in pair order.

    Each class once, the true class of a pair before its predicted one, at most ``limit``.
    """
    index = {str(name): i for i, name in enumerate(labels)}
    chosen: list[int] = []
    for pair in stored_rows(pairs):
        for name in (pair.get("true"), pair.get("predicted")):
            i = index.get(str(name))
            if i is not None and i not in chosen and (limit is None or len(chosen) < limit):
                chosen.append(i)
    return chosen


def class_order(
    how: str,
    labels: Sequence[str],
    per_class: Sequence[Row],
    pairs: Sequence[Row] = (),
) -> list[int]:
    """Every class index in the order ``how`` names.

    ``model``: the model's class order; ``worst``: stored recall, lowest first (classes without
    test images last); ``errors``: stored support − correct, most first; ``groups``: the classes
    of the most-confused pairs first, pairs side by side, then the rest worst first.
    """
    n = len(labels)
    rows = {str(r.get("class")): r for r in stored_rows(per_class)}
    if how == "worst":
        recall = [rows.get(str(name), {}).get("recall") for name in labels]
        return sorted(range(n), key=lambda i: (not is_num(recall[i]), recall[i] or 0.0))
    if how == "errors":
        errors = [_errors(rows.get(str(name), {})) for name in labels]
        return sorted(range(n), key=lambda i: -errors[i])
    if how == "groups":
        first = most_confused_classes(pairs, labels)
        return first + [i for i in class_order("worst", labels, per_class) if i not in first]
    return list(range(n))


def _errors(row: Mapping[str, Any]) -> int:
    support, correct = row.get("support"), row.get("correct")
    return int(support - correct) if is_num(support) and is_num(correct) else 0
