"""``list``: the runs in the store, newest first."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from audits.errors import AuditError

if TYPE_CHECKING:
    from audits.runs.base import ModelIdentity, ModelInfo
    from audits.store import Run


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the runs in the store", description=__doc__)
    p.add_argument("--store", default="audit-store")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from audits.store import list_runs

    runs = list_runs(args.store)
    if not runs:
        print(f"no runs in {args.store}; start with: python -m audits run --model DIR --data PATH")
        return 0
    table = Table(title=f"runs in {args.store}")
    for col in ("run", "kind", "model", "data", "images", "accuracy", "created"):
        table.add_column(col, overflow="fold")
    for run in runs:
        table.add_row(*(escape(c) for c in _cells(run)))
    Console().print(table)
    return 0


def _cells(run: Run) -> tuple[str, ...]:
    """One row: the model, the data set (a drift run's current batch), accuracy or verdict."""
    try:
        record = run.record
    except AuditError:  # still listed, so that it can be found and removed
        model = "" if run.kind == "comparison" else _model_text(run.identity)
        return (run.run_id, run.kind, model, "(invalid record)", "", "", run.created)
    model = "" if run.kind == "comparison" else _model_text(record.model)
    data = record.current if run.kind == "drift" else record.dataset
    if run.kind == "audit":
        outcome = f"{record.metrics.accuracy:.3f}"
    else:
        outcome = record.verdict if run.kind == "comparison" else ""
    path = "" if data.path is None else str(data.path)
    return (run.run_id, run.kind, model, path[-40:], str(data.n_images), outcome, record.created)


def _model_text(model: ModelIdentity | ModelInfo) -> str:
    return f"{model.name or ''} {model.version or ''}".strip()
