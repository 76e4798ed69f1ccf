"""``list``: the runs in the store, newest first."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from auditapp.commands.options import add_store_option
from auditapp.json_output import set_result, wants_json

if TYPE_CHECKING:
    from audits.runs.base import ModelIdentity, ModelInfo
    from audits.store import Run


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the runs in the store", description=__doc__)
    add_store_option(p)
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from audits.store import scan_store

    found = scan_store(args.store)
    for bad in found.damaged:  # plain print: a folder name is never read as Rich markup
        print(f"warning: skipped {bad}", file=sys.stderr)
    runs = found.runs
    if wants_json(args):
        set_result(
            args,
            {
                "store": str(args.store),
                "runs": [run_entry(run) for run in runs],
                "damaged": [str(bad) for bad in found.damaged],
            },
        )
        return 0
    if not runs:
        print(f"no runs in {args.store}; start with: python -m audits run --model DIR --data PATH")
        return 0
    table = Table(title=f"runs in {escape(str(args.store))}")
    for col in ("run", "kind", "model", "data", "images", "accuracy", "created"):
        table.add_column(col, overflow="fold")
    for run in runs:
        table.add_row(*(escape(c) for c in _cells(run)))
    Console().print(table)
    return 0


def run_entry(run: Run) -> dict[str, Any]:
    """One run for ``list --json``: the table's columns as typed values, plus its folder."""
    record = run.record
    data = record.current if run.kind == "drift" else record.dataset
    model = None if run.kind == "comparison" else record.model
    return {
        "run_id": run.run_id,
        "kind": run.kind,
        "path": str(run.path),
        "model": None if model is None else {"name": model.name, "version": model.version},
        "data": None if data.path is None else str(data.path),
        "n_images": data.n_images,
        "accuracy": record.metrics.accuracy if run.kind == "audit" else None,
        "verdict": record.verdict if run.kind == "comparison" else None,
        "drift": record.drift if run.kind == "drift" else None,
        "created": record.created,
    }


def _cells(run: Run) -> tuple[str, ...]:
    """One row: the model, the data set (a drift run's current batch), accuracy or verdict.

    ``scan_store`` has validated the record, so every field read here is typed."""
    record = run.record
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
