"""The Ray engine's own cost, on one machine: whole audits with ``--engine ray`` against the
local engine on the same cores, and the driver's peak memory as the data set grows.

(a) throughput: whole ``run_audit`` calls without the analyses (explain, integrity, map), the
    demo CNN over (1) the demo's held-out set (1,200 PNGs, 128 px) and (2) generated sets of
    ``--gen-sizes`` 64 px PNGs (resized to 128 by the audit), interleaved per repeat as
    local, ray cold, ray warm; medians. Ray is started once in this process (``ray.init``
    reported apart: a cluster is started once for many audits). **Cold**: the first audit of
    the model in the session (the kept actors are ended first, so it starts its actors:
    Python, torch, the model). **Warm**: the next audit of the same model, on the kept actors
    (``auditapp/engines/ray_pool.py``). Target: ray/local >= 0.8.
(b) driver memory: a tiny CNN over N generated 16 px PNGs, each N and engine in a fresh child
    process; its peak resident memory (``VmHWM``, the driver only: actors and DataLoader
    workers are other processes) should stay flat from 10k to 200k.

Usage: python bench/ray_engine.py [--repeats 3] [--gen-sizes 10000,50000] [--sizes 10000,200000]
       [--memory-engines local,ray] [--skip-throughput] [--skip-memory] [--write]
"""

from __future__ import annotations

import io
import json
import logging
import os
import platform
import shutil
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


def generated_set(root: Path, n: int, side: int = 64) -> Path:
    """A manifest of ``n`` ``side`` px PNGs of the demo's six classes (1,024 distinct images,
    cycled: smooth colour fields with noise, a few KB each)."""
    import numpy as np
    from PIL import Image

    classes = ["carrera", "targa", "turbo", "gt", "cabriolet", "safari"]
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    pngs = []
    for _ in range(1024):
        base = rng.uniform(0, 255, 3).astype(np.float32)
        field = base * ramp[:, None, None] + (255 - base) * ramp[None, :, None]
        noisy = field + rng.normal(0, 12, (side, side, 3))
        buf = io.BytesIO()
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(buf, "PNG")
        pngs.append(buf.getvalue())
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = ["path,label"]
    for i in range(n):
        (root / "img" / f"{i:06d}.png").write_bytes(pngs[i % len(pngs)])
        rows.append(f"img/{i:06d}.png,{classes[i % len(classes)]}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def throughput(repeats: int, batch: int, gen_sizes: list[int]) -> list[dict]:
    """Per case: median seconds of whole audits, local / ray cold / ray warm, interleaved."""
    import ray

    from auditapp.engines.ray_pool import shutdown_pools
    from auditapp.engines.spec import EngineSpec
    from auditapp.pipeline.audit import run_audit

    out = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        store = Path(tmp) / "store"
        cases = [("demo held-out set, 128 px PNG", HELDOUT, 1200)]
        for n in gen_sizes:
            cases.append(("generated 64 px PNG", generated_set(Path(tmp) / f"gen{n}", n), n))

        def audit(data: Path, engine: object) -> tuple[float, dict]:
            seconds = timed(lambda: records.append(run_audit(
                DEMO, data, store=store, device="cpu", batch_size=batch, skip=SKIP,
                engine=engine)))  # fmt: skip
            path = records.pop()
            record = json.loads((path / "audit.json").read_text())
            shutil.rmtree(path)  # the store stays small on large sets
            return seconds, record

        records: list[Path] = []
        start = timed(
            lambda: ray.init(
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                logging_level=logging.ERROR,
                log_to_driver=False,
            )
        )
        try:
            for name, data, n in cases:
                audit(data, "local")  # warm-up: page cache, imports
                times: dict[str, list[float]] = {"local": [], "cold": [], "warm": []}
                first: dict[str, list[float]] = {"cold": [], "warm": []}
                loads = []
                for _ in range(repeats):  # interleaved: machine noise hits all alike
                    loads.append(load_average())
                    times["local"].append(audit(data, "local")[0])
                    shutdown_pools()  # cold: this audit starts its actors
                    for kind in ("cold", "warm"):
                        seconds, record = audit(data, EngineSpec("ray"))
                        assert record["engine"]["actors_reused"] is (kind == "warm")
                        times[kind].append(seconds)
                        first[kind].append(record["engine"]["first_result_s"])
                med = {k: statistics.median(v) for k, v in times.items()}
                out.append({
                    "case": name, "n": n, "ray_start_s": start, "load": statistics.median(loads),
                    **{f"{k}_s": v for k, v in med.items()},
                    **{f"{k}_first_s": statistics.median(v) for k, v in first.items()},
                    "cold_ratio": med["local"] / med["cold"],
                    "warm_ratio": med["local"] / med["warm"],
                })  # fmt: skip
                print(json.dumps(out[-1]), file=sys.stderr)
        finally:
            ray.shutdown()
    return out


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


def peak_mib() -> float:
    """This process's peak resident memory in MiB: ``VmHWM`` where Linux has it, because
    ``ru_maxrss`` keeps the parent's size at the fork (this bench forks its children from a
    process that already ran large audits), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def child_memory(case: Path, engine: str) -> None:
    """In a fresh process: one audit of the tiny case made in ``case``; prints peak RSS (MiB)
    and seconds. The parent makes the images, so nothing of theirs is in this process."""
    from auditapp.engines.spec import EngineSpec
    from auditapp.pipeline.audit import run_audit

    data = case / "data" / "manifest.csv"
    n = sum(1 for _ in data.open()) - 1
    with tempfile.TemporaryDirectory() as tmp:
        base = peak_mib()
        seconds = timed(
            lambda: run_audit(
                case / "tiny",
                data,
                store=Path(tmp) / "store",
                device="cpu",
                batch_size=256,
                skip=SKIP,
                engine=EngineSpec(engine),
            )  # fmt: skip
        )
        print(json.dumps({"n": n, "engine": engine, "peak_mib": peak_mib(),
                          "before_mib": base, "seconds": seconds}))  # fmt: skip


def memory(sizes: list[int], engines: list[str]) -> list[dict]:
    out = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tiny_case(Path(tmp), n)
            for engine in engines:
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", tmp, "--child-engine", engine],
                    capture_output=True, text=True, check=True, cwd=REPO,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                )  # fmt: skip
                out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return sorted(out, key=lambda m: (engines.index(m["engine"]), m["n"]))


def report(tp: list[dict], mem: list[dict], repeats: int) -> str:
    lines = [SECTION, "", f"Machine: {machine()} (shared with other jobs while measured).", ""]
    if tp:
        actors = os.cpu_count()
        lines += [
            f"Whole audits of the demo CNN without the analyses, seconds (median of {repeats}, "
            f"interleaved local / cold / warm); Ray on {actors} CPU actors. Cold: the model's "
            "first audit in the Ray session (starts its actors); warm: the next one (kept "
            "actors). Ratio: ray throughput / local throughput (target >= 0.8).",
            "",
            "| case | images | load avg | local s | ray cold s (first result) | ray warm s "
            "(first result) | **cold ratio** | **warm ratio** |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {t['case']} | {t['n']:,} | {t['load']:.1f} | {t['local_s']:.2f} | "
            f"{t['cold_s']:.2f} ({t['cold_first_s']:.2f}) | {t['warm_s']:.2f} "
            f"({t['warm_first_s']:.2f}) | **{t['cold_ratio']:.2f}** | **{t['warm_ratio']:.2f}** |"
            for t in tp
        ]
        lines += [
            "",
            f"Ray start-up (`ray.init`, once per session, not in the times above): "
            f"{tp[0]['ray_start_s']:.1f} s.",
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
        for engine in dict.fromkeys(m["engine"] for m in mem):
            rows = sorted((m["n"], m["peak_mib"]) for m in mem if m["engine"] == engine)
            if len(rows) > 1 and rows[-1][0] > rows[0][0]:
                per_row = (rows[-1][1] - rows[0][1]) * 2**20 / (rows[-1][0] - rows[0][0])
                lines.append(f"\n{engine}: {per_row:.0f} bytes per row from {rows[0][0]:,} to "
                             f"{rows[-1][0]:,} images.")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = make_parser(__doc__)
    add_repeats(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gen-sizes", default="10000,50000", help="generated 64 px sets")
    parser.add_argument("--sizes", default="10000,200000", help="memory: tiny images")
    parser.add_argument("--memory-engines", default="local,ray")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse_hidden())
    parser.add_argument("--child-engine", default="ray", help=argparse_hidden())
    add_write(parser, "also write the section of bench/RESULTS.md")
    args = parser.parse_args()
    if args.child:
        child_memory(args.child, args.child_engine)
        return
    import audits.tv  # noqa: F401 - the torchvision workaround first

    gen = [int(x) for x in args.gen_sizes.split(",") if x]
    tp = [] if args.skip_throughput else throughput(args.repeats, args.batch_size, gen)
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
