"""Whole processes on the real Fashion-MNIST test set: an audit against a plain decode+forward.

Three commands, each a fresh process, run interleaved ``--repeats`` times (medians):

(ref)  ``python -m bench.fashion.reference``: import torch, decode the 10,000 PNGs with Pillow,
       run the same model in batches of 256, nothing else;
(core) ``python -m audits run --no-explain --no-integrity`` (the store, hashing and freeze check,
       inference with top-5, losses and embeddings, metrics, the run folder);
(full) ``python -m audits run`` with its defaults (Grad-CAM on the failures, integrity).

Targets (issue 16): core/ref <= 1.2 and full/core <= 2.

Usage: python bench/data_path.py [--repeats 3] [--write]
Needs the Debian package dataset-fashion-mnist (or $FASHION_MNIST_DIR); the PNGs and the
trained model are cached under bench/out/fashion.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO,
    add_repeats,
    add_write,
    cpu_name,
    load_average,
    make_parser,
    write_section,
)
from bench.fashion.case import build  # noqa: E402

OUT = REPO / "bench" / "out" / "fashion"


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, user+system CPU seconds) of one whole process."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def main() -> None:
    parser = make_parser(__doc__, full=True)
    add_repeats(parser)
    add_write(parser, "write the 'Data path' section of bench/RESULTS.md")
    args = parser.parse_args()
    model_dir, manifest = build(OUT)
    if not manifest.with_name("manifest.freeze.json").is_file():
        subprocess.run([sys.executable, "-m", "audits", "freeze", str(manifest)], check=True)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        run = [py, "-m", "audits", "run", "--model", str(model_dir), "--data", str(manifest)]
        commands = {
            "ref": [py, "-m", "bench.fashion.reference", str(model_dir), str(manifest)],
            "core": [*run, "--store", f"{tmp}/core", "--no-explain", "--no-integrity"],
            "full": [*run, "--store", f"{tmp}/full"],
        }
        _timed(commands["ref"])  # warm-up: the page cache, the interpreter's .pyc files
        walls: dict[str, list[float]] = {k: [] for k in commands}
        cpus: dict[str, list[float]] = {k: [] for k in commands}
        loads = []
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                loads.append(load_average())
                wall, cpu = _timed(cmd)
                walls[name].append(wall)
                cpus[name].append(cpu)
    med = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    lines = [
        "## Data path: Fashion-MNIST 10k, whole processes (`bench/data_path.py`)",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores; load average during the runs "
        f"{min(loads):.1f}–{max(loads):.1f}; medians of {args.repeats} interleaved runs.",
        "",
        "| process | wall s | CPU s | ratio (wall) |",
        "| --- | ---: | ---: | --- |",
        f"| reference: decode + forward, batches of 256 | {med['ref']:.2f} | {cpu['ref']:.2f} | 1 |",
        f"| core audit (`--no-explain --no-integrity`) | {med['core']:.2f} | {cpu['core']:.2f} "
        f"| **{med['core'] / med['ref']:.2f}** × reference (target ≤ 1.2) |",
        f"| default audit (Grad-CAM on failures, integrity) | {med['full']:.2f} | {cpu['full']:.2f} "
        f"| **{med['full'] / med['core']:.2f}** × core (target ≤ 2) |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(lines[0], text)


if __name__ == "__main__":
    main()
