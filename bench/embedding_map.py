"""The embedding map: computing it (PCA, UMAP) and showing it at 50,000 points in a real browser.

* ``compute``: PCA and UMAP on synthetic clustered 512-wide embeddings of 2,000, 10,000 and
  50,000 rows, each size in a fresh process so UMAP's numba compilation (its "warm-up") is
  measured apart: a first UMAP call on 300 rows, then the size itself.
* ``browser``: a synthetic 250-class run of 50,000 images with a stored PCA map, served by
  ``streamlit run`` and driven by Debian Chromium (playwright): the page's first render, the
  warm render (away and back), a box selection until the grid shows the selected images, and
  the bytes the page received over Streamlit's websocket for each.

Run from the repository root: ``python bench/embedding_map.py [--skip-umap] [--umap-sizes
2000,10000] [--rows 50000]``. The table is printed; ``--write`` replaces the section of
bench/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPO,
    add_write,
    cpu_name,
    dashboard_page,
    load_average,
    make_parser,
    memory_gib,
    open_when_up,
    write_section,
)

SECTION = "## Embedding map (issue 17)"

_CHILD = """
import json, sys, time
import numpy as np
t0 = time.perf_counter()
from audits.embedding_map import compute_map
method, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
def data(n):
    centres = rng.standard_normal((40, dim)) * 3
    return (centres[rng.integers(0, 40, n)] + rng.standard_normal((n, dim))).astype(np.float16)
out = {}
t = time.perf_counter(); import sklearn.decomposition; out["import_s"] = time.perf_counter() - t
if method == "umap":
    t = time.perf_counter(); import umap; out["import_s"] += time.perf_counter() - t
    t = time.perf_counter(); compute_map(data(300), "umap"); out["warmup_s"] = time.perf_counter() - t
x = data(n)
t = time.perf_counter(); m = compute_map(x, method); out["compute_s"] = time.perf_counter() - t
out["process_s"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def machine() -> str:
    gib = memory_gib()
    mem = f", {gib:.0f} GiB RAM" if gib is not None else ""
    return (
        f"{cpu_name('unknown CPU')}, {os.cpu_count()} cores{mem}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; "
        f"1-min load average at start {load_average():.1f}"
    )


def time_compute(method: str, n: int, dim: int = 512) -> dict[str, float]:
    """One fresh process: (UMAP: import, warm-up on 300 rows), then the map of ``n`` rows."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, method, str(n), str(dim)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the browser ---------------------------------------------------------------------------


def _wait_drawn(page: object) -> None:
    page.wait_for_selector(".ma-footer[data-page='embedding']")
    page.wait_for_selector(".js-plotly-plot .gl-container canvas")
    page.wait_for_function("() => [...document.images].every(i => i.complete)")


def time_browser(store: Path, n_rows: int) -> dict[str, float]:
    """Seconds and received bytes: first render, warm render, box selection → grid."""
    received = {"bytes": 0}

    def count(ws: object) -> None:
        ws.on(
            "framereceived",
            lambda payload: received.__setitem__("bytes", received["bytes"] + len(payload)),
        )

    out: dict[str, float] = {}
    with dashboard_page(store, timeout_ms=300_000, height=1400) as (page, url, _proc):
        page.on("websocket", count)
        open_when_up(page, url + "/embeddings")
        t0 = time.perf_counter()
        _wait_drawn(page)
        out["first_s"] = time.perf_counter() - t0  # from navigation committed
        out["first_bytes"] = received["bytes"]
        nav = page.locator('[data-testid="stSidebarNav"]')
        for _ in range(2):  # away and back; the second round is the warm one
            nav.get_by_text("Overview", exact=True).click()
            page.wait_for_selector(".ma-footer[data-page='overview']")
            received["bytes"] = 0
            t0 = time.perf_counter()
            nav.get_by_text("Embedding map", exact=True).click()
            _wait_drawn(page)
            out["warm_s"] = time.perf_counter() - t0
            out["warm_bytes"] = received["bytes"]
        area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
        for i, (a, b) in enumerate(((0.3, 0.6),)):
            x0, y0 = area["x"] + area["width"] * a, area["y"] + area["height"] * a
            x1, y1 = area["x"] + area["width"] * b, area["y"] + area["height"] * b
            before = page.inner_text("[data-testid='stMain']")
            received["bytes"] = 0
            page.mouse.move(x0, y0)
            page.mouse.down()
            page.mouse.move(x1, y1, steps=6)
            t0 = time.perf_counter()
            page.mouse.up()
            page.wait_for_function(
                "(old) => { const t = document.querySelector(\"[data-testid='stMain']\").innerText;"
                " return t.includes('images selected') && t !== old; }",
                arg=before,
            )
            _wait_drawn(page)
            out[f"select{i + 1}_s"] = time.perf_counter() - t0
            out[f"select{i + 1}_bytes"] = received["bytes"]
            text = page.inner_text("[data-testid='stMain']")
            out[f"select{i + 1}_n"] = float(
                text.split(" images selected")[0].split()[-1].replace(",", "")
            )
    return out


def table(compute: list[tuple[str, int, dict]], browser: dict[str, float] | None, rows: int) -> str:
    lines = [SECTION, "", f"Machine: {machine()}.", ""]
    if compute:
        lines += [
            "Computing the map (512-wide embeddings, one fresh process per row; UMAP seeded, so single-threaded):",
            "",
            "| method | rows | import s | numba warm-up s (300 rows) | map s | whole process s |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for method, n, r in compute:
            lines.append(
                f"| {method} | {n:,} | {r.get('import_s', 0):.1f} | {r.get('warmup_s', 0):.1f} | "
                f"{r['compute_s']:.2f} | {r['process_s']:.1f} |"
            )
        lines.append("")
    if browser:
        mib = 1024 * 1024
        lines += [
            f"The page in Debian Chromium at {rows:,} points (250 classes, PCA map, legend hidden):",
            "",
            "| step | seconds | received MiB |",
            "| --- | ---: | ---: |",
            f"| first render (cold caches) | {browser['first_s']:.2f} | {browser['first_bytes'] / mib:.2f} |",
            f"| warm render (away and back) | {browser['warm_s']:.2f} | {browser['warm_bytes'] / mib:.2f} |",
            f"| box selection → grid ({browser['select1_n']:,.0f} images) | {browser['select1_s']:.2f} | {browser['select1_bytes'] / mib:.2f} |",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--rows", type=int, default=50_000, help="points on the page")
    parser.add_argument("--pca-sizes", default="2000,10000,50000")
    parser.add_argument("--umap-sizes", default="2000,10000,50000")
    parser.add_argument("--skip-umap", action="store_true")
    parser.add_argument("--skip-compute", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    add_write(parser, "replace the section of bench/RESULTS.md")
    args = parser.parse_args()
    compute: list[tuple[str, int, dict]] = []
    if not args.skip_compute:
        jobs = [("pca", int(n)) for n in args.pca_sizes.split(",") if n]
        if not args.skip_umap:
            jobs += [("umap", int(n)) for n in args.umap_sizes.split(",") if n]
        for method, n in jobs:
            result = time_compute(method, n)
            print(method, n, result, flush=True)
            compute.append((method, n, result))
    browser = None
    if not args.skip_browser:
        from fixtures.synthetic_map import write_map_run

        with tempfile.TemporaryDirectory(prefix="bench-map-") as tmp:
            write_map_run(Path(tmp) / "store", n_classes=250, n_rows=args.rows)
            browser = time_browser(Path(tmp) / "store", args.rows)
    text = table(compute, browser, args.rows)
    print(text)
    if args.write:
        print(write_section(SECTION, text))


if __name__ == "__main__":
    main()
