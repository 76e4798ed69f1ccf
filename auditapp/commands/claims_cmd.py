"""``claims``: check claims (a TOML or YAML file) against an audit run's stored predictions.

The run stays immutable: the results go to a new sub-folder ``claims-<hash of the file>/``
(``claims.json`` and a copy of the claims file), added atomically. Checking the same file
again prints the stored results. The last line of stdout is the ``claims.json`` path.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audits.runs.models_claims import ClaimResult


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "claims", help="check claims about a model against an audit run", description=__doc__
    )
    p.add_argument("run", help="audit run folder")
    p.add_argument("claims", help="claims file (.toml with [[claim]] tables, or .yaml)")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from audits.claims import evaluate_claims, load_claims
    from audits.errors import AuditError
    from audits.hashing import bytes_sha256
    from audits.runs import utc_stamp, write_record
    from audits.store import add_to_run, load_run

    run = load_run(args.run)
    file = Path(args.claims)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise AuditError(f"{file}: cannot read the claims file ({exc.strerror or exc})") from None
    digest = bytes_sha256(data)
    folder = run.path / f"claims-{digest[:12]}"
    if (folder / "claims.json").is_file():
        stored = next(c.record for c in run.claims if c.path.name == folder.name)
        print(f"already checked against this run; showing the stored results from {folder.name}")
        print_results(stored.results)
        print(folder / "claims.json")
        return 0
    results = evaluate_claims(run, load_claims(file))
    with add_to_run(run.path, folder.name) as tmp:
        (tmp / f"claims{file.suffix.lower() or '.toml'}").write_bytes(data)
        record = write_record(
            tmp,
            {
                "kind": "claims",
                "run_id": run.run_id,
                "created": utc_stamp(),
                "claims_file": file.name,
                "claims_sha256": digest,
                "results": results,
            },
            "claims",
        )
    print_results(record.results)
    print(folder / "claims.json")
    return 0


def print_results(results: list[ClaimResult]) -> None:
    """A table of verdicts and, under it, one plain sentence per claim."""
    from rich.console import Console
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
        table.add_row(r.id, r.text or r.kind, verdict, fmt(r.measured), ci, p)
    console = Console()
    console.print(table)
    for r in results:
        console.print(f"{r.id}. {r.sentence}", highlight=False)
