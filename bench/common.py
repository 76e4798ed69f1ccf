"""What every benchmark script shares: clocks, the machine's description, torch set-up, the
command line's parser and writing a section of ``bench/RESULTS.md``.

The scripts run as ``python bench/<name>.py`` from the repository root; each puts the root on
``sys.path`` before importing this module as ``bench.common``.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

# torch and the audit modules are imported where used: a drift child process measures its own
# resident memory, which must not include what only the other scripts need.
if TYPE_CHECKING:
    import torch

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "RESULTS.md"


# --- clocks ----------------------------------------------------------------------------------


def cpu_seconds(children: bool = False) -> float:
    """User + system CPU seconds of this process, or of its finished child processes."""
    if not children:
        return time.process_time()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    """This process's peak resident memory (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Stopwatch:
    """Wall and CPU seconds of a ``with`` block (CPU of the children: ``children=True``)."""

    def __init__(self, children: bool = False) -> None:
        self.children = children
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Stopwatch:
        self._cpu0 = cpu_seconds(self.children)
        self._wall0 = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.wall = time.perf_counter() - self._wall0
        self.cpu = cpu_seconds(self.children) - self._cpu0


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timings(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls, one after the other."""
    return [timed(fn) for _ in range(repeats)]


# --- the machine -----------------------------------------------------------------------------


def cpu_name(fallback: str | None = None) -> str:
    """The CPU's model name (``audits.inference.cpu_name``, the one the audit run records)."""
    from audits.inference import cpu_name as audit_cpu_name

    return audit_cpu_name(fallback)


def load_average() -> float:
    """The 1-minute load average (NaN where the system has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def memory_gib() -> float | None:
    """Total memory in GiB (``/proc/meminfo``), None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    return None


# --- torch -----------------------------------------------------------------------------------


def torch_device(name: str = "auto", threads: int | None = None) -> torch.device:
    """The device to measure on (``auto``: CUDA when present); on the CPU, ``threads`` threads."""
    import torch

    from audits.inference import resolve_device

    device = resolve_device(name)
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    return device


def gemm_gflops() -> float:
    """The float32 matrix-product rate right now: how much of the machine this process gets."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 1024)
    a @ b
    started = time.perf_counter()
    for _ in range(3):
        a @ b
    return 3 * 2 * 2048 * 2048 * 1024 / (time.perf_counter() - started) / 1e9


# --- the dashboard in a real browser --------------------------------------------------------

#: Chromium headless, without the sandbox (containers) and without anything that calls home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def serve_dashboard(store: Path) -> tuple[subprocess.Popen, str]:
    """The dashboard served headless on a free local port, reading ``store``: (process, URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless",
           "true", "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=dict(os.environ, AUDIT_STORE=str(store)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


@contextmanager
def dashboard_page(
    store: Path, timeout_ms: int = 120_000, width: int = 1440, height: int = 1000
) -> Iterator[tuple[object, str, subprocess.Popen]]:
    """(a Chromium page, the dashboard's URL, its server process) on ``store``; the browser
    closes and the server stops on leaving."""
    from playwright.sync_api import sync_playwright

    proc, url = serve_dashboard(store)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=CHROMIUM_FLAGS,
            )
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(timeout_ms)
            yield page, url, proc
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)


def open_when_up(page: object, address: str, attempts: int = 120) -> None:
    """``page.goto(address)`` once the server answers (it takes a few seconds to start)."""
    for attempt in range(attempts):
        try:
            page.goto(address, timeout=5000)
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(1)


# --- command line and results ----------------------------------------------------------------


def make_parser(doc: str, full: bool = False) -> argparse.ArgumentParser:
    """The script's parser: its docstring's first line (or, ``full``, all of it) as help."""
    if full:
        return argparse.ArgumentParser(
            description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
    return argparse.ArgumentParser(description=doc.splitlines()[0])


def add_repeats(parser: argparse.ArgumentParser, default: int = 3, help: str | None = None) -> None:
    """``--repeats N``: how many times each measurement runs."""
    parser.add_argument("--repeats", type=int, default=default, help=help)


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device``: auto (CUDA when present), cpu or cuda."""
    parser.add_argument("--device", default="auto")


def add_write(parser: argparse.ArgumentParser, help: str) -> None:
    """``--write``: also write the script's section of bench/RESULTS.md."""
    parser.add_argument("--write", action="store_true", help=help)


def write_section(section: str, text: str, path: Path = RESULTS) -> Path:
    """Replace (or append) one ``## `` section of a results file; the others stay as they are."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    body = text.rstrip("\n") + "\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _m: body + "\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + body
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")
    return path
