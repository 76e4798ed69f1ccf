"""How long client exports take: each format, all of them, and the CLI as a user runs it.

The run exported is the demo's newest car-variants audit when ``audit-store/`` holds one;
otherwise a stand-in of the same size is built once in ``bench/out/export-store``: a small
CNN (random weights, so most images are failures and Grad-CAM explains the maximum of 500)
audited with Grad-CAM and integrity checks on the demo's 1,200-image held-out set, a second
version, their comparison and a drift run on the fan batch. A synthetic 250-class run
(50,000 predictions) shows the cost at scale.

Usage: python bench/export.py [--run RUN] [--repeats 3] [--no-scale] [--write]
Target: the demo run's export, every format, under 30 s on CPU. ``--write`` appends the
results to bench/RESULTS.md under "## Export (issue 9)" (replacing that section only).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import audits.tv  # noqa: E402,F401
from audits.store import list_runs  # noqa: E402
from bench.common import (  # noqa: E402
    REPO,
    Stopwatch,
    add_repeats,
    add_write,
    cpu_name,
    load_average,
    make_parser,
    write_section,
)

OUT = REPO / "bench" / "out"
STANDIN = OUT / "export-store"
SECTION = "## Export (issue 9)"
TARGET_S = 30.0


def demo_run() -> Path | None:
    """The newest car-variants audit in ``audit-store/`` (highest version first), if any."""
    runs = [
        r
        for r in list_runs(REPO / "audit-store", kind="audit")
        if (r.meta.get("model") or {}).get("name") == "car-variants"
    ]
    runs.sort(
        key=lambda r: ((r.meta.get("model") or {}).get("version", ""), r.meta.get("created", "")),
        reverse=True,
    )
    return runs[0].path if runs else None


def standin_run() -> Path:
    """Build (once) a stand-in store as large as the demo's; returns its newest audit run."""
    existing = [
        r for r in list_runs(STANDIN, kind="audit") if r.meta["model"]["version"] == "1.1.0"
    ]
    if existing:
        return existing[0].path
    import pandas as pd

    from auditapp.cli import main as cli
    from auditapp.pipeline.audit import run_audit
    from auditapp.pipeline.drift import run_drift
    from tests.builders import make_model_dir

    held = REPO / "fixtures" / "data" / "heldout" / "manifest.csv"
    fan = REPO / "fixtures" / "data" / "fan_batch" / "manifest.csv"
    train = REPO / "fixtures" / "data" / "train" / "manifest.csv"
    if not held.is_file():
        raise SystemExit("no demo data: run python -m fixtures.generate (or scripts/demo.sh) first")
    classes = sorted(pd.read_csv(held)["label"].unique().tolist())
    extra = f'training_manifest = "{train}"\n' if train.is_file() else ""
    runs = []
    for seed, version in ((0, "1.0.0"), (1, "1.1.0")):
        model = make_model_dir(
            OUT / "export-models" / version,
            classes=classes,
            size=(64, 64),
            seed=seed,
            name="car-variants-standin",
            version=version,
            extra_toml=extra,
        )
        runs.append(run_audit(model, held, store=STANDIN, progress=True))
    cli(["compare", str(runs[0]), str(runs[1]), "--store", str(STANDIN), "--no-speed"])
    if fan.is_file():
        run_drift(OUT / "export-models" / "1.1.0", held, fan, store=STANDIN, permutations=200)
    return runs[1]


def scale_run() -> Path:
    """The synthetic 250-class, 50,000-prediction run (built once in ``bench/out``)."""
    from fixtures.synthetic_store import write_synthetic_run

    store = OUT / "export-store-250"
    existing = list_runs(store, kind="audit")
    return existing[0].path if existing else write_synthetic_run(store, 250, 50_000)


def in_process(run: Path, out: Path) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per format (one export of each) and for all formats, in one process."""
    import json

    from reports import FORMATS
    from reports.export import export_run

    export_run(run, "json", out / "warm")  # imports and caches (weasyprint, matplotlib, plotly)
    result: dict[str, tuple[float, float]] = {}
    for fmt in (*FORMATS, "all"):
        with Stopwatch() as clock:
            folder = export_run(run, fmt, out / fmt)
        result["all formats" if fmt == "all" else fmt] = (clock.wall, clock.cpu)
    seconds = json.loads((folder / "export.json").read_text())["seconds"]
    result["(of which the content model)"] = (seconds["content"], float("nan"))
    return result


def cli_seconds(run: Path, out: Path, repeats: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of ``python -m audits export RUN --format all`` in a fresh process."""
    times = []
    for k in range(repeats):
        with Stopwatch(children=True) as clock:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "audits",
                    "export",
                    str(run),
                    "--format",
                    "all",
                    "--out",
                    str(out / f"cli{k}"),
                ],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
        times.append((clock.wall, clock.cpu))
    return times


def machine() -> str:
    """CPU, cores and load, for the section's heading."""
    cpu = cpu_name(platform.processor() or platform.machine())
    return (
        f"{cpu}, {os.cpu_count()} cores, no GPU, "
        f"load average {load_average():.1f} at the start (shared machine)"
    )


def report(
    rows: list[tuple[str, Path, dict[str, tuple[float, float]], list[tuple[float, float]]]],
) -> str:
    """The section: one table per exported run, and the CLI verdict."""
    lines = [
        SECTION,
        "",
        f"Machine: {machine()}. `python bench/export.py --write`.",
        "",
        "Wall seconds depend on how busy the shared cores are; CPU seconds (user + system) are "
        "what the export itself costs, the wall time of an idle machine.",
        "",
    ]
    for n, (label, run, per, cli) in enumerate(rows):
        lines += [
            f"**{label}** (`{run.name}`)",
            "",
            "| export | wall s | CPU s |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| {k} | {w:.2f} | {'' if c != c else f'{c:.2f}'} |" for k, (w, c) in per.items()
        ]
        if cli:
            wall = statistics.median(w for w, _ in cli)
            cpu = statistics.median(c for _, c in cli)
            lines.append(
                f"| CLI `export --format all`, fresh process (median of {len(cli)}) "
                f"| {wall:.2f} | {cpu:.2f} |"
            )
            runs = ", ".join(f"{w:.1f}" for w, _ in cli)
            if n == 0:  # the target is the demo run's
                verdict = "meets" if wall < TARGET_S else "misses"
                lines += [
                    "",
                    f"The CLI export {verdict} the {TARGET_S:.0f} s target in wall time ({runs} s) "
                    f"and takes {cpu:.1f} s of CPU.",
                ]
            else:
                lines += [
                    "",
                    f"CLI wall time {runs} s, {cpu:.1f} s of CPU (no target at this size).",
                ]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--run", help="audit run to export (default: the demo's, else a stand-in)")
    add_repeats(parser)
    parser.add_argument("--no-scale", action="store_true", help="skip the 250-class run")
    add_write(parser, "write bench/RESULTS.md")
    args = parser.parse_args()
    demo = Path(args.run) if args.run else demo_run()
    label = (
        "Demo run"
        if demo is not None
        else "Stand-in for the demo run (1,200 images, 6 classes, all sections)"
    )
    run = demo or standin_run()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(
            (
                label,
                run,
                in_process(run, Path(tmp) / "a"),
                cli_seconds(run, Path(tmp) / "a", args.repeats),
            )
        )
        if not args.no_scale:
            big = scale_run()
            rows.append(
                (
                    "250 classes, 50,000 predictions (synthetic)",
                    big,
                    in_process(big, Path(tmp) / "b"),
                    cli_seconds(big, Path(tmp) / "b", 1),
                )
            )
    text = report(rows)
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
