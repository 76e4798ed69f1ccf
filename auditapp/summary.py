"""A short terminal summary of a stored audit run (reads the run; computes nothing)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from audits.formatting import pct
from audits.store import Run


def print_summary(run: Run, console: Console | None = None, worst: int = 5) -> None:
    """Headline numbers, the worst classes with intervals, and the most-confused pairs."""
    console = console or Console()
    record = run.audit
    m, model, data = record.metrics, record.model, record.dataset
    name = f"{escape(str(model.name))} {escape(str(model.version))}"
    console.print(
        f"[bold]{name}[/] on {data.n_images} images "
        f"({data.n_skipped} skipped, fingerprint {escape(data.fingerprint[:12])}, "
        f"{'frozen' if data.frozen else 'NOT frozen'})"
    )
    console.print(
        f"accuracy {pct(m.accuracy)} · balanced {pct(m.balanced_accuracy)} · "
        f"macro-F1 {pct(m.macro_f1)} · top-3 {pct(m.top_k_accuracy.top3)} · ECE {m.ece:.3f}"
    )
    rows = sorted((c for c in m.per_class if c.recall is not None), key=lambda c: c.recall)
    table = Table(title="weakest classes (recall, Wilson 95% CI)")
    for col in ("class", "support", "recall", "95% CI", "precision"):
        table.add_column(col)
    for c in rows[:worst]:
        interval = f"{pct(c.ci_low)}–{pct(c.ci_high)}"
        table.add_row(escape(c.class_), str(c.support), pct(c.recall), interval, pct(c.precision))
    console.print(table)
    pairs = (m.most_confused or [])[:3]
    if pairs:
        console.print(
            "most confused: "
            + "; ".join(
                f"{escape(p.true)}→{escape(p.predicted)} {p.count}× ({pct(p.rate)})" for p in pairs
            )
        )
