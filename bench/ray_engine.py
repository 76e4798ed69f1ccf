"""The Ray engine's own cost, on one machine: throughput of ``--engine ray`` against the local
engine on the same cores, and the driver's peak memory as the data set grows.

(a) throughput: the demo CNN over the demo's held-out set (1,200 PNGs, 128 px), whole
    ``run_audit`` calls without the analyses, interleaved, medians. Ray is started once (its
    start-up is reported apart: a cluster is started once for many audits); each Ray audit
    still starts its actors and loads the model in them. Target: ray/local >= 0.8.
(b) driver memory: a tiny CNN over N generated 16 px PNGs with the Ray engine, each N in a fresh
    child process; its peak resident memory (``ru_maxrss``) should stay flat from 10k to 200k
    (the arrays stream to .npy; only per-row scalars stay in the driver, as in the local engine).

Usage: python bench/ray_engine.py [--repeats 3] [--sizes 10000,200000] [--skip-memory] [--write]
"""

from __future__ import annotations

import io
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO,
    add_repeats,
    add_write,
    cpu_name,
    load_average,
    make_parser,
    peak_rss_mib,
    timed,
    write_section,
)

SECTION = "## Ray engine on one machine (bench/ray_engine.py)"
DEMO = REPO / "fixtures" / "models" / "car-variants" / "1.0.0"
HELDOUT = REPO / "fixtures" / "data" / "heldout" / "manifest.csv"
SKIP = ("explain", "integrity", "embedding_map")

TINY_NET = """
from torch import nn


class Tiny(nn.Module):
    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))
"""


def machine() -> str:
    cpu = cpu_name(platform.processor() or platform.machine())
    return f"{cpu}, {os.cpu_count()} cores, no GPU, load average {load_average():.1f} at the start"


def throughput(repeats: int, batch: int) -> dict[str, float]:
    """Median seconds of the local and the Ray engine on the demo, and Ray's start-up."""
    import ray

    from auditapp.engines.spec import EngineSpec
    from auditapp.pipeline.audit import run_audit

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)

        steady: dict[str, list[float]] = {"local": [], "ray": []}

        def audit(engine: object) -> None:
            path = run_audit(DEMO, HELDOUT, store=store, device="cpu", batch_size=batch,
                             skip=SKIP, engine=engine)  # fmt: skip
            record = json.loads((path / "audit.json").read_text())
            inference = record["timings"]["inference_s"]
            if "engine" in record:  # the steady rate: after the actors started
                steady["ray"].append(inference - record["engine"]["first_result_s"])
            else:
                steady["local"].append(inference)

        start = timed(
            lambda: ray.init(
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                logging_level=logging.ERROR,
                log_to_driver=False,
            )
        )
        try:
            audit("local")  # warm-up: page cache
            audit(EngineSpec("ray"))
            local, on_ray = [], []
            for _ in range(repeats):  # interleaved: machine noise hits both alike
                local.append(timed(lambda: audit("local")))
                on_ray.append(timed(lambda: audit(EngineSpec("ray"))))
        finally:
            ray.shutdown()
    a, b = statistics.median(local), statistics.median(on_ray)
    sa, sb = statistics.median(steady["local"][1:]), statistics.median(steady["ray"][1:])
    return {"local_s": a, "ray_s": b, "ratio": a / b, "ray_start_s": start,
            "steady_local_s": sa, "steady_ray_s": sb, "steady_ratio": sa / sb}  # fmt: skip


def tiny_case(root: Path, n: int) -> tuple[Path, Path]:
    """A tiny CNN's folder and a manifest of ``n`` 16 px PNGs (256 distinct ones, cycled)."""
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    model = root / "tiny"
    model.mkdir(parents=True)
    (model / "net.py").write_text(TINY_NET)
    ns: dict = {}
    exec(TINY_NET, ns)  # the same class the card names, for its initial weights
    torch.manual_seed(0)
    save_file(ns["Tiny"](4).state_dict(), str(model / "w.safetensors"))
    (model / "model.toml").write_text(
        'name = "tiny"\nversion = "1"\narchitecture = "net.py:Tiny"\nweights = "w.safetensors"\n'
        'classes = ["a", "b", "c", "d"]\n[kwargs]\nnum_classes = 4\n[input]\nsize = [16, 16]\n'
    )
    data = root / "data"
    (data / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    pngs = []
    for _ in range(256):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buf, "PNG")
        pngs.append(buf.getvalue())
    rows = ["path,label"]
    for i in range(n):
        (data / "img" / f"{i:06d}.png").write_bytes(pngs[i % 256])
        rows.append(f"img/{i:06d}.png,{'abcd'[i % 4]}")
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")
    return model, data / "manifest.csv"


def child_memory(n: int, engine: str) -> None:
    """In a fresh process: one audit of ``n`` tiny images; prints peak RSS (MiB) and seconds."""
    from auditapp.engines.spec import EngineSpec
    from auditapp.pipeline.audit import run_audit

    with tempfile.TemporaryDirectory() as tmp:
        model, data = tiny_case(Path(tmp), n)
        base = peak_rss_mib()
        seconds = timed(
            lambda: run_audit(
                model,
                data,
                store=Path(tmp) / "store",
                device="cpu",
                batch_size=256,
                skip=SKIP,
                engine=EngineSpec(engine),
            )  # fmt: skip
        )
        print(json.dumps({"n": n, "engine": engine, "peak_mib": peak_rss_mib(),
                          "before_mib": base, "seconds": seconds}))  # fmt: skip


def memory(sizes: list[int], engines: list[str]) -> list[dict]:
    out = []
    for engine in engines:
        for n in sizes:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(n), "--child-engine", engine],
                capture_output=True, text=True, check=True, cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip
            out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def report(tp: dict | None, mem: list[dict], repeats: int) -> str:
    lines = [SECTION, "", f"Machine: {machine()} (shared with other jobs while measured).", ""]
    if tp is not None:
        lines += [
            f"| demo CNN, 1,200 PNGs, no analyses | seconds (median of {repeats}) | images/s |",
            "| --- | --- | --- |",
            f"| local engine | {tp['local_s']:.2f} | {1200 / tp['local_s']:.0f} |",
            f"| ray engine (local Ray, {os.cpu_count()} CPU actors) | {tp['ray_s']:.2f} | "
            f"{1200 / tp['ray_s']:.0f} |",
            f"| **ray / local throughput, whole audit** | **{tp['ratio']:.2f}** (target >= 0.8) | |",
            f"| inference after the actors started: local | {tp['steady_local_s']:.2f} | "
            f"{1200 / tp['steady_local_s']:.0f} |",
            f"| inference after the actors started: ray (all but the first batch) | "
            f"{tp['steady_ray_s']:.2f} | {1200 / tp['steady_ray_s']:.0f} |",
            f"| **ray / local, steady rate** | **{tp['steady_ratio']:.2f}** | |",
            "",
            f"Ray start-up (once per session, not in the times above): {tp['ray_start_s']:.1f} s.",
            "",
        ]
    if mem:
        lines += [
            "| engine | images (16 px PNG) | driver peak RSS MiB | before the audit | seconds |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {m['engine']} | {m['n']:,} | {m['peak_mib']:.0f} | {m['before_mib']:.0f} | "
            f"{m['seconds']:.1f} |"
            for m in mem
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = make_parser(__doc__)
    add_repeats(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sizes", default="10000,200000")
    parser.add_argument("--memory-engines", default="ray")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", type=int, help=argparse_hidden())
    parser.add_argument("--child-engine", default="ray", help=argparse_hidden())
    add_write(parser, "also write the section of bench/RESULTS.md")
    args = parser.parse_args()
    if args.child:
        child_memory(args.child, args.child_engine)
        return
    import audits.tv  # noqa: F401 - the torchvision workaround first

    tp = None if args.skip_throughput else throughput(args.repeats, args.batch_size)
    mem = (
        []
        if args.skip_memory
        else memory([int(s) for s in args.sizes.split(",")], args.memory_engines.split(","))
    )
    text = report(tp, mem, args.repeats)
    print(text)
    if args.write:
        write_section(SECTION, text)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
