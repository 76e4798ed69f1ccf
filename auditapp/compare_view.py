"""Terminal view of a comparison document: rich tables (reads the document; computes nothing).

User text (model names, class names, check texts, notes) is escaped before Rich sees it, so a
class called ``[red]`` prints as itself.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from audits.compare.wording import signed_points
from audits.formatting import p_value, pct

_STATUS_STYLE = {
    "regression": "bold red",
    "large drop": "red",
    "watch": "yellow",
    "improved": "green",
}
_MARKS = {True: "[green]ok  [/]", False: "[bold red]HOLD[/]", None: "[yellow]skip[/]"}


def _interval(low: float, high: float) -> str:
    return f"{signed_points(low)} to {signed_points(high)}"


def _header(doc: dict[str, Any]) -> str:
    ma, mb, ds = doc["run_a"]["model"], doc["run_b"]["model"], doc["dataset"]
    return (
        f"[bold]{escape(str(ma['name']))} {escape(str(ma['version']))}[/] (A) vs "
        f"[bold]{escape(str(mb['name']))} {escape(str(mb['version']))}[/] (B) on "
        f"{ds['n_aligned']} paired images (fingerprint {escape(str(ds['fingerprint'])[:12])}"
        + (f", {ds['n_groups']} groups" if ds.get("n_groups") else "")
        + ")"
    )


def _overall_table(o: dict[str, Any], level: int) -> Table:
    table = Table(title="overall (B - A)")
    for col in ("metric", "A", "B", "diff (points)", f"{level}% CI", "p"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    ba = o["balanced_accuracy"]
    for name, a, b, block, p in (
        ("accuracy", o["accuracy_a"], o["accuracy_b"], o, o["mcnemar"]["p_value"]),
        (
            "balanced accuracy",
            ba["balanced_accuracy_a"],
            ba["balanced_accuracy_b"],
            ba,
            ba["p_value"],
        ),
    ):
        diff = signed_points(block["diff"])
        table.add_row(
            name, pct(a), pct(b), diff, _interval(block["ci_low"], block["ci_high"]), p_value(p)
        )
    return table


def _discordant_line(mc: dict[str, Any]) -> str:
    return f"images only A got right: {mc['b']}, only B got right: {mc['c']}" + (
        f" (design effect {mc['design_effect']:.2f} from groups)"
        if mc.get("p_clustered") is not None
        else ""
    )


#: Classes listed in the terminal's "what changed" table; the rest are counted in one line.
CHANGED_CLASSES_SHOWN = 8


def _changed_rows(per_class: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Classes with an image only one version gets right, largest net change first."""
    rows = [r for r in per_class if r.get("a_only") or r.get("b_only")]
    return sorted(rows, key=lambda r: (-abs(r["b_only"] - r["a_only"]), str(r["class"])))


def _changed_table(rows: list[dict[str, Any]]) -> Table:
    title = "What changed: images only one version gets right, by true class"
    table = Table(title=title, min_width=len(title))  # a narrow table would wrap its title
    for name in ("class", "only A right", "only B right", "net for B"):
        table.add_column(name, justify="left" if name == "class" else "right")
    for row in rows[:CHANGED_CLASSES_SHOWN]:
        a, b = row["a_only"], row["b_only"]
        table.add_row(escape(str(row["class"])), str(a), str(b), f"{b - a:+d}")
    return table


def _changed_lines(n_rows: int, what: dict[str, Any] | None, stored: str | None) -> list[str]:
    """The classes not shown, and where the per-image lists are."""
    lines = []
    if n_rows > CHANGED_CLASSES_SHOWN:
        lines.append(f"  … and {n_rows - CHANGED_CLASSES_SHOWN} more classes")
    if what and stored:
        where = f"{stored}/{what.get('file') or 'changed.parquet'}"
        lines.append(
            f"  every image: {escape(where)} (the Compare page shows them; "
            "`audits export` writes <stem>-what-changed.csv)"
        )
    return lines


def _class_table(per_class: list[dict[str, Any]], level: int) -> Table:
    rows = sorted(
        per_class, key=lambda r: (r["diff"] is None, r["diff"] if r["diff"] is not None else 0)
    )
    table = Table(title="per class recall (B - A), worst first")
    for col in ("class", "n", "A", "B", "diff", f"{level}% CI", "p", "adj. p", ""):
        table.add_column(col, justify="left" if col in ("class", "") else "right")
    for r in rows:
        if r["diff"] is None:
            table.add_row(escape(r["class"]), "0", "n/a", "n/a", "", "", "", "", "no images")
            continue
        status = r.get("status") or ""
        style = _STATUS_STYLE.get(status, "")
        table.add_row(
            escape(r["class"]),
            str(r["support"]),
            pct(r["recall_a"]),
            pct(r["recall_b"]),
            signed_points(r["diff"]),
            _interval(r["ci_low"], r["ci_high"]),
            p_value(r["p_value"]),
            p_value(r["p_adjusted"]),
            f"[{style}]{status}[/]" if style else status,
        )
    return table


def _speed_table(sp: dict[str, Any]) -> Table:
    settings, device = sp.get("settings") or {}, sp.get("device") or {}
    threads, clock = device.get("threads"), settings.get("clock")
    table = Table(
        title=escape(
            f"speed on {device.get('name') or 'given numbers'}"
            + (f", {threads} thread(s)" if threads else "")
            + (f", {clock}" if clock else "")
        )
    )
    for col in ("", "A", "B", "B/A (median, IQR)"):
        table.add_column(col, justify="left" if not col else "right")
    a, b = sp["a"], sp["b"]
    lat_iqr, thr_iqr = sp["latency_ratio_iqr"], sp["throughput_ratio_iqr"]
    table.add_row(
        "latency ms/image (batch 1)",
        f"{a['latency_ms']:.2f}",
        f"{b['latency_ms']:.2f}",
        f"{sp['latency_ratio']:.3f} ({lat_iqr[0]:.3f}-{lat_iqr[1]:.3f})",
    )
    table.add_row(
        f"throughput images/s (batch {settings.get('batch_size', '')})",
        f"{a['throughput']:.0f}",
        f"{b['throughput']:.0f}",
        f"{sp['throughput_ratio']:.3f} ({thr_iqr[0]:.3f}-{thr_iqr[1]:.3f})",
    )
    if a.get("params") is not None and b.get("params") is not None:
        ratio = b["params"] / max(a["params"], 1)
        table.add_row("parameters", f"{a['params']:,}", f"{b['params']:,}", f"{ratio:.3f}")
    if a.get("weights_bytes") and b.get("weights_bytes"):
        table.add_row(
            "weights MB",
            f"{a['weights_bytes'] / 1e6:.2f}",
            f"{b['weights_bytes'] / 1e6:.2f}",
            f"{b['weights_bytes'] / a['weights_bytes']:.3f}",
        )
    return table


def print_comparison(
    doc: dict[str, Any], console: Console | None = None, stored: str | None = None
) -> None:
    """Readable tables of a comparison document (the verdict line is printed by the caller);
    ``stored`` is the comparison's run folder when it was saved."""
    # Piped into a CI log there is no terminal width: use a readable one instead of 80.
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    o = doc["overall"]
    level = round(100 * o["ci_level"])
    console.print(_header(doc))
    console.print(_overall_table(o, level))
    console.print(_discordant_line(o["mcnemar"]))
    console.print(_class_table(doc["per_class"], level))
    changed = _changed_rows(doc["per_class"])
    if changed:
        console.print(_changed_table(changed))
        for line in _changed_lines(len(changed), doc.get("what_changed"), stored):
            console.print(line, highlight=False)
    if doc.get("speed"):
        console.print(_speed_table(doc["speed"]))
    for c in doc.get("checks") or [{"ok": False, "text": r} for r in doc["reasons"]]:
        console.print(f"  {_MARKS[c['ok']]} {escape(c['text'])}", highlight=False)
    for note in doc["notes"]:
        console.print(f"  [dim]note: {escape(note)}[/]", highlight=False)
