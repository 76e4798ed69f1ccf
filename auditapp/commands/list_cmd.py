"""``list``: the runs in the store, newest first."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditapp.commands.options import add_store_option
from auditapp.json_output import set_result, wants_json

if TYPE_CHECKING:
    from audits.history_records import AuditModel, ModelRef, RunSummary


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the runs in the store", description=__doc__)
    add_store_option(p)
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from audits.history_records import list_store

    # The light listing: the fields shown, type-checked, and each audit's table footer (a
    # full validation of 500 records of 250 classes takes half a minute).
    found = list_store(args.store, tables=True)
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


def _data(run: RunSummary) -> tuple[str | None, int | None]:
    """The data set's path and size (a drift run: its current batch)."""
    rec = run.record
    data = rec.current if run.kind == "drift" else rec.dataset
    return data.path, data.n_images


def run_entry(run: RunSummary) -> dict[str, Any]:
    """One run for ``list --json``: the table's columns as typed values, plus its folder."""
    rec = run.record
    path, n_images = _data(run)
    model = None if run.kind == "comparison" else rec.model
    return {
        "run_id": run.run_id,
        "kind": run.kind,
        "path": str(Path(run.path).resolve()),  # as ``load_run`` gives it
        "model": None if model is None else {"name": model.name, "version": model.version},
        "data": path,
        "n_images": n_images,
        "accuracy": rec.metrics.accuracy if run.kind == "audit" else None,
        "verdict": rec.verdict if run.kind == "comparison" else None,
        "drift": rec.drift if run.kind == "drift" else None,
        "created": rec.created,
    }


def _cells(run: RunSummary) -> tuple[str, ...]:
    """One row: the model, the data set (a drift run's current batch), accuracy or verdict.

    ``list_store`` has type-checked the fields read here."""
    rec = run.record
    model = "" if run.kind == "comparison" else _model_text(rec.model)
    if run.kind == "audit":
        outcome = f"{rec.metrics.accuracy:.3f}"
    else:
        outcome = rec.verdict if run.kind == "comparison" else ""
    path, n_images = _data(run)
    path = path or ""
    images = "" if n_images is None else str(n_images)
    return (run.run_id, run.kind, model, path[-40:], images, outcome, rec.created)


def _model_text(model: AuditModel | ModelRef) -> str:
    return f"{model.name or ''} {model.version or ''}".strip()
