"""``history``: every audited version of a model family on one frozen set and its descendants."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from auditapp.commands.options import add_store_option
from auditapp.json_output import set_result, wants_json

if TYPE_CHECKING:
    from audits.history import History, HistoryRow

#: ``audits.history.METRICS`` (not imported here: the parser is built for every command).
METRIC_CHOICES = ("accuracy", "balanced_accuracy", "macro_f1", "ece")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history",
        help="every audited version of a model family, with the release gates between them",
        description=__doc__,
    )
    p.add_argument("name", metavar="NAME", help="the model family (model.toml's name)")
    add_store_option(p)
    p.add_argument(
        "--metric",
        choices=METRIC_CHOICES,
        default="accuracy",
        help="headline metric (default accuracy)",
    )
    p.add_argument(
        "--set",
        dest="set_prefix",
        metavar="FINGERPRINT",
        help="the held-out set (a fingerprint or its first characters); default: the set with most runs",
    )
    p.add_argument(
        "--order",
        choices=("version", "time"),
        default="version",
        help="semantic version (default; time when a version is not one) or audit time",
    )
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from audits.history import build_history, payload
    from audits.history_records import read_records

    store = str(args.store)
    found = read_records(store)
    for bad in found.damaged:  # plain print: a folder name is never read as Rich markup
        print(f"warning: skipped {bad}", file=sys.stderr)
    history = build_history(
        found.audits, found.comparisons, args.name, args.metric, args.set_prefix, args.order, store
    )
    if wants_json(args):
        set_result(args, payload(history, store))
        return 0
    _print(history)
    return 0


def _interval(row: HistoryRow) -> str:
    from audits.formatting import pct

    if row.ci_low is None or row.ci_high is None:
        return ""
    return f"{pct(row.ci_low)}–{pct(row.ci_high)}"


def _value(row: HistoryRow, metric: str) -> str:
    from audits.formatting import pct

    if row.value is None:
        return "n/a"
    return f"{row.value:.3f}" if metric == "ece" else pct(row.value)


def _gate(row: HistoryRow) -> str:
    if row.gate is None:
        return ""
    if row.gate.verdict is None:
        return "not compared"
    return f"{row.gate.verdict}: {row.gate.reason}"


def _print(history: History) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from audits.formatting import count

    h = history
    table = Table(
        title=Text(
            f"{h.family}: {len(h.rows)} version(s) on set {h.root.fingerprint[:12]}, by {h.order}"
        )
    )
    for col in ("version", "set", "date", h.metric, "95% CI", "images", "runs"):
        table.add_column(col, no_wrap=col != "version", overflow="fold")
    table.add_column("gate vs previous", overflow="fold", min_width=16)
    colours = {"promote": "green", "hold": "red"}
    for row in h.rows:
        verdict = row.gate.verdict if row.gate is not None else None
        # Text cells: data is never parsed as Rich markup (and is cheaper than markup at 500 rows).
        table.add_row(
            Text(row.version),
            Text(row.set_label),
            Text(row.created[:10]),
            Text(_value(row, h.metric)),
            Text(_interval(row)),
            Text(count(row.n_images)),
            Text(str(row.n_runs)),
            Text(_gate(row), style=colours.get(verdict or "", "")),
        )
    console = Console()
    console.print(table)
    for note in h.notes:
        console.print(f"note: {escape(note)}", style="yellow")
    missing = [r for r in h.rows if r.gate is not None and r.gate.command]
    if missing:
        console.print(
            f"{len(missing)} consecutive pair(s) not compared; the first: "
            f"{escape(missing[0].gate.command)}",
            soft_wrap=True,
        )
