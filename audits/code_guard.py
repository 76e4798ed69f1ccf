"""Refuse, or with ``--allow-code-change`` warn loudly, when a stored run's model code changed.

Work on a stored run (compare's speed measurement, explain) rebuilds the model from its
folder; if the architecture's source changed since the audit, the model rebuilt is not the
one audited. The check hashes files only: nothing is imported before it passes.
"""

from __future__ import annotations

import sys
from typing import Any

from audits.errors import AuditError
from audits.model_card import ModelCard
from audits.model_code import code_changes, describe_change

ALLOW_FLAG = "--allow-code-change"
_warned_unknown: set[str] = set()


def check_run_code(
    recorded: dict[str, Any],
    card: ModelCard,
    run_label: str,
    *,
    allow_change: bool = False,
    hint: str = "audit it again",
) -> list[dict[str, Any]] | None:
    """The code changes since run ``run_label`` (``recorded`` is its ``model`` block).

    None: the run recorded no code hash (written before they were), warned once per run.
    ``[]``: unchanged. A non-empty list is returned only with ``allow_change`` (each change
    printed to stderr); without it a change is an ``AuditError`` naming the file and hashes.
    """
    changes = code_changes(recorded, card.architecture, card.dir)
    if changes is None:
        if run_label not in _warned_unknown:
            _warned_unknown.add(run_label)
            print(
                f"warning: run {run_label} records no hash of its model code (audited before "
                f"code was hashed); the code now in {card.dir} is used unchecked",
                file=sys.stderr,
            )
        return None
    if not changes:
        return []
    more = f" and {len(changes) - 1} more change(s)" if len(changes) > 1 else ""
    if not allow_change:
        raise AuditError(
            f"model code changed since run {run_label}: {describe_change(changes[0])}{more}; "
            f"the model rebuilt now is not the one audited: {hint}, or pass {ALLOW_FLAG} "
            "to use the changed code anyway"
        )
    for change in changes:
        print(
            f"WARNING: model code changed since run {run_label}: {describe_change(change)}; "
            f"using the changed code because of {ALLOW_FLAG} (recorded as code_changed)",
            file=sys.stderr,
        )
    return changes


def code_record(changes: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The fields a result stores about the code it ran: ``code_changed`` (null: unknown,
    an older run) and, when it changed, ``code_changes``."""
    if changes is None:
        return {"code_changed": None}
    if not changes:
        return {"code_changed": False}
    return {"code_changed": True, "code_changes": changes}
