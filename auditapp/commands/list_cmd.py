"""``list``: the runs in the store, newest first."""

from __future__ import annotations

import argparse


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
        m = run.meta
        model = m.get("model") or {}
        data = m.get("dataset") or m.get("current") or {}
        acc = (m.get("metrics") or {}).get("accuracy")
        verdict = m.get("verdict")
        cells = (
            run.run_id,
            run.kind,
            f"{model.get('name', '')} {model.get('version', '')}".strip(),
            str(data.get("path", ""))[-40:],
            str(data.get("n_images", "")),
            f"{acc:.3f}" if isinstance(acc, float) else (verdict or ""),
            m.get("created", ""),
        )
        table.add_row(*(escape(c) if isinstance(c, str) else c for c in cells))
    Console().print(table)
    return 0
