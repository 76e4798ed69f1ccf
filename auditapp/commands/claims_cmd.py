"""``claims``: check claims (a TOML or YAML file) against an audit run's stored predictions.

The run stays immutable: the results go to a new sub-folder ``claims-<hash of the file>/``
(``claims.json``, a copy of the claims file and thumbnails of the images behind each claim),
added atomically by ``audits.claims_store`` (the dashboard stores typed claims the same way).
Checking the same file again prints the stored results. The last line of stdout is the
``claims.json`` path.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from auditapp.json_output import read_record, set_result, wants_json

if TYPE_CHECKING:
    from audits.runs.models_claims import ClaimResult


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "claims", help="check claims about a model against an audit run", description=__doc__
    )
    p.add_argument("run", help="audit run folder")
    p.add_argument("claims", help="claims file (.toml with [[claim]] tables, or .yaml)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any claim is contradicted (a gate for pipelines); results are stored either way",
    )
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from audits.claims_store import check_claims_file

    saved = check_claims_file(args.run, args.claims)
    stored = saved.folder / "claims.json"
    if wants_json(args):
        set_result(
            args, {**read_record(stored), "claims_json": str(stored), "existed": saved.existed}
        )
    else:
        if saved.existed:
            print(
                f"already checked against this run; showing the stored results from {saved.folder.name}"
            )
        print_results(saved.record.results)
    print(stored)
    contradicted = any(r.verdict == "contradicted" for r in saved.record.results)
    return 1 if args.strict and contradicted else 0


def print_results(results: list[ClaimResult]) -> None:
    """A table of verdicts and, under it, one plain sentence per claim."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from audits.formatting import p_value, pct, pts

    colour = {"supported": "green", "contradicted": "red", "not enough data": "yellow"}
    table = Table(title="claims")
    for col in ("#", "claim", "verdict", "measured", "95% CI", "p (one-sided)"):
        table.add_column(col, overflow="fold")
    for r in results:
        fmt = pct if r.kind not in ("lower", "higher") else pts
        ci = f"{fmt(r.ci_low)} to {fmt(r.ci_high)}" if r.ci_low is not None else ""
        p = "" if r.p_value is None else p_value(r.p_value)
        verdict = f"[{colour[r.verdict]}]{r.verdict}[/]"
        # claim ids, texts and sentences are user text: escaped so "[/bold]" prints as itself
        table.add_row(escape(r.id), escape(r.text or r.kind), verdict, fmt(r.measured), ci, p)
    console = Console()
    console.print(table)
    for r in results:
        console.print(f"{escape(r.id)}. {escape(r.sentence)}", highlight=False)
