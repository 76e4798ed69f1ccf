"""A short terminal summary of a stored audit run (reads the run; computes nothing)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from audits.store import Run


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def print_summary(run: Run, console: Console | None = None, worst: int = 5) -> None:
    """Headline numbers, the worst classes with intervals, and the most-confused pairs."""
    console = console or Console()
    m, model, data = run.meta["metrics"], run.meta["model"], run.meta["dataset"]
    console.print(
        f"[bold]{model['name']} {model['version']}[/] on {data['n_images']} images "
        f"({data['n_skipped']} skipped, fingerprint {data['fingerprint'][:12]}, "
        f"{'frozen' if data.get('frozen') else 'NOT frozen'})"
    )
    console.print(
        f"accuracy {_pct(m['accuracy'])} · balanced {_pct(m['balanced_accuracy'])} · "
        f"macro-F1 {_pct(m['macro_f1'])} · top-3 {_pct(m['top_k_accuracy'].get('3'))} · ECE {m['ece']:.3f}"
    )
    rows = [c for c in m["per_class"] if c.get("recall") is not None]
    rows.sort(key=lambda c: c["recall"])
    table = Table(title="weakest classes (recall, Wilson 95% CI)")
    for col in ("class", "support", "recall", "95% CI", "precision"):
        table.add_column(col)
    for c in rows[:worst]:
        table.add_row(
            c["class"], str(c["support"]), _pct(c["recall"]),
            f"{_pct(c['ci_low'])}–{_pct(c['ci_high'])}", _pct(c["precision"]),
        )  # fmt: skip
    console.print(table)
    pairs = m.get("most_confused", [])[:3]
    if pairs:
        console.print(
            "most confused: "
            + "; ".join(
                f"{p['true']}→{p['predicted']} {p['count']}× ({_pct(p['rate'])})" for p in pairs
            )
        )
