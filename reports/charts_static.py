"""Static charts for the PDF: matplotlib figures as SVG, the full confusion matrix as PNG.

SVG text stays text (``svg.fonttype = "none"``), so class names in a chart are selectable and
extractable from the PDF, and matplotlib's SVG writer XML-escapes them (a class named
``<script>`` is drawn as those characters, never parsed as markup). Output is deterministic:
fixed hash salt for element ids and no date in the SVG metadata, so the same run gives the
same PDF text and drawing.

``render(chart) -> list[Figure]``: (MIME type, bytes) per printed figure; the full confusion
matrix of a large model is an overview plus page-sized blocks in which every class is named.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from reports.present import fmt  # noqa: E402
from reports.present.palette import (  # noqa: E402
    ACCENT,
    GRID,
    INK,
    LIGHT,
    MUTED,
    WARN,
    confusion_rgb,
    recall_color,
    rgb,
    signed_color,
)
from reports.tree import BODY_CLASSES, Chart  # noqa: E402

#: A4 text width (portrait) and a landscape page's drawing area, in inches.
WIDTH = 6.85
WIDE = (10.3, 6.3)
#: Confusion matrix blocks: at most this many true (rows) x predicted (columns) classes a page.
TILE_ROWS, TILE_COLS = 64, 96
LABEL_CHARS = 42

_RC = {
    "svg.fonttype": "none",  # real text in the SVG: selectable, searchable, escaped
    "svg.hashsalt": "model-audit",  # deterministic element ids
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.titlesize": 9,
    "xtick.color": INK,
    "ytick.color": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


Figure = tuple[str, bytes]  # (MIME type, file bytes) of one printed figure


def _svg(fig: plt.Figure) -> Figure:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.04, metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return ("image/svg+xml", text[text.index("<svg") :].encode("utf-8"))


def short(name: str, n: int = LABEL_CHARS) -> str:
    """A class name cut to ``n`` characters for an axis label (tables show it whole)."""
    name = str(name)
    return name if len(name) <= n else name[: n - 1] + "…"


def _num(values: Sequence[Any]) -> np.ndarray:
    return np.array(
        [float(v) if isinstance(v, int | float) and v is not None else np.nan for v in values]
    )


def recall_ci(data: dict[str, Any]) -> list[Figure]:
    k = int(data.get("shown") or len(data["classes"]))
    names = [short(x) for x in data["classes"][:k]]
    rec, lo, hi = (_num(data[key][:k]) for key in ("recall", "low", "high"))
    fig, ax = plt.subplots(figsize=(WIDTH, 0.6 + 0.19 * max(k, 3)))
    y = np.arange(k)
    ok = ~np.isnan(lo) & ~np.isnan(hi)
    ax.hlines(y[ok], lo[ok], hi[ok], color=LIGHT, linewidth=3.2, zorder=1)
    ax.scatter(rec, y, s=16, color=[recall_color(r) for r in np.nan_to_num(rec, nan=1)], zorder=2)
    ax.set_yticks(y, names)
    ax.set_ylim(k - 0.5, -0.5)
    ax.set_xlim(-0.02, 1.02)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("recall (share of the class's images classified correctly), with 95% interval")
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", length=0)
    return [_svg(fig)]


def _legend_above(ax: plt.Axes) -> None:
    # Above the plot: inside it, the legend hid the longest bars.
    ax.legend(frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, borderaxespad=0.2)


def _imbalance_bars(
    names: list[str], test: np.ndarray, share: np.ndarray, tshare: Any
) -> plt.Figure:
    """One labelled bar per class (a few dozen classes): held-out share, training beside it."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.6 + 0.19 * max(n, 3)))
    y = np.arange(n)
    h = 0.38 if tshare is not None else 0.7
    shift = h / 2 if tshare is not None else 0
    ax.barh(y - shift, share, height=h, color=ACCENT, label="held-out")
    if tshare is not None:
        ax.barh(y + h / 2, tshare, height=h, color=LIGHT, label="training")
        _legend_above(ax)
    for yi, s, cnt in zip(y, share, test, strict=True):
        ax.text(s, yi - shift, f" {fmt.count(int(cnt))}", va="center", fontsize=6.5, color=MUTED)
    ax.set_yticks(y, [short(x) for x in names])
    ax.set_ylim(n - 0.5, -0.5)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("share of images (held-out count at the bar's end)")
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    return fig


def _imbalance_profile(
    names: list[str], test: np.ndarray, share: np.ndarray, tshare: Any
) -> plt.Figure:
    """Many classes: the held-out shares as a profile, the largest and smallest named."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(WIDTH, 2.6))
    x = np.arange(n)
    ax.bar(x, share, width=1.0, color=ACCENT, label="held-out")
    if tshare is not None:
        ax.plot(x, tshare, color=WARN, linewidth=1.0, label="training")
        _legend_above(ax)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xticks([])
    ax.set_xlabel(f"{n} classes, largest first")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=1))
    ax.set_ylabel("share of images")
    for xi, label in ((0, "largest"), (n - 1, "smallest")):
        ax.annotate(
            f"{label}: {short(names[xi], 28)} ({fmt.count(int(test[xi]))})",
            (xi, share[xi]),
            xytext=(0.5, 0.92 if xi == 0 else 0.75),
            textcoords="axes fraction",
            ha="center",
            fontsize=7,
            color=INK,
            arrowprops={"arrowstyle": "-", "color": MUTED, "linewidth": 0.6},
        )
    ax.grid(axis="y", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    return fig


def imbalance(data: dict[str, Any]) -> list[Figure]:
    names = data["classes"]
    test = np.array(data["test"], dtype=float)
    train = np.array(data["train"], dtype=float) if data.get("train") else None
    share = test / test.sum() if test.sum() else test
    tshare = train / train.sum() if train is not None and train.sum() else None
    draw = _imbalance_bars if len(names) <= BODY_CLASSES else _imbalance_profile
    return [_svg(draw(names, test, share, tshare))]


def calibration(data: dict[str, Any]) -> list[Figure]:
    bins = [b for b in data["bins"] if (b.get("count") or 0) > 0]
    fig, ax = plt.subplots(figsize=(WIDTH * 0.62, 3.0))
    ax.plot([0, 1], [0, 1], color=MUTED, linewidth=0.8, linestyle="--", label="perfect calibration")
    if bins:
        conf = _num([b.get("confidence") for b in bins])
        acc = _num([b.get("accuracy") for b in bins])
        cnt = np.array([b.get("count") or 0 for b in bins], dtype=float)
        size = 12 + 160 * cnt / cnt.max()
        ax.plot(conf, acc, color=ACCENT, linewidth=1.0)
        ax.scatter(conf, acc, s=size, color=ACCENT, alpha=0.85, zorder=3, label="groups of images")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("model's stated confidence")
    ax.set_ylabel("actual accuracy")
    ax.grid(color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(frameon=False, loc="upper left", fontsize=7)
    return [_svg(fig)]


def _rates(data: dict[str, Any]) -> np.ndarray:
    """The stored share of each true class per cell (metrics.confusion.normalized)."""
    n = len(data["labels"])
    rate = np.array(data["normalized"], dtype=float)
    if rate.shape != (n, n):
        raise ValueError("confusion matrix does not match its labels")
    return np.nan_to_num(rate)


# The full confusion matrix is drawn as a PNG at print resolution with Pillow, not as SVG:
# weasyprint lays out SVG text letter by letter and draws every SVG element in Python, which
# took half a minute for the 13 pages of a 250-class matrix, against milliseconds here. At
# 240 dpi the cells and 5-point labels are crisp in print and when zoomed; every class name is
# also selectable text in the per-class tables. Pixels cannot carry markup, so nothing needs
# escaping.

DPI = 240
_K = DPI / 72  # pixels per point


def _font(size_pt: float, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVu Sans:bold" if bold else "DejaVu Sans"
    return _load_font(font_manager.findfont(name), max(1, round(size_pt * _K)))


@functools.cache
def _load_font(path: str, size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size_px)


def _png(img: Image.Image) -> Figure:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1, dpi=(DPI, DPI))
    return ("image/png", buf.getvalue())


def _paint_cells(
    img: Image.Image,
    rate: np.ndarray,
    x0: float,
    y0: float,
    cw: float,
    ch: float,
    row0: int = 0,
    col0: int = 0,
) -> None:
    """Fill the non-zero cells of a block of rates (its first class indices row0, col0) on
    ``img``; coordinates in points."""
    draw = ImageDraw.Draw(img)
    rows, cols = np.nonzero(rate > 0)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        # Correct predictions (the diagonal) in greens, so the confusions stand out.
        fill = confusion_rgb(float(rate[r, c]), diagonal=r + row0 == c + col0)
        box = (
            round((x0 + c * cw) * _K),
            round((y0 + r * ch) * _K),
            round((x0 + (c + 1) * cw) * _K) - 1,
            round((y0 + (r + 1) * ch) * _K) - 1,
        )
        draw.rectangle(box, fill=fill)


def _text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: float,
    anchor: str = "la",
    fill: str = INK,
    bold: bool = False,
) -> None:
    draw.text((xy[0] * _K, xy[1] * _K), text, font=_font(size, bold), fill=rgb(fill), anchor=anchor)


def _vertical_labels(
    labels: list[str], width_pt: float, height_pt: float, size: float
) -> Image.Image:
    """Column labels reading bottom to top, each centred on its column, starting at the bottom."""
    n = len(labels)
    strip = Image.new("RGB", (round(height_pt * _K), round(width_pt * _K)), "white")
    draw = ImageDraw.Draw(strip)
    cw = width_pt / n
    for j, label in enumerate(labels):
        _text(draw, (2, (j + 0.5) * cw), label, size, anchor="lm")
    return strip.rotate(90, expand=True)


def _colorbar_png(img: Image.Image, x: float, y: float, h: float) -> None:
    draw = ImageDraw.Draw(img)
    for k, v in enumerate(np.linspace(1, 0, round(h * _K)).tolist()):
        yy = round(y * _K) + k
        draw.line([(round(x * _K), yy), (round((x + 8) * _K), yy)], fill=confusion_rgb(v))
    draw.rectangle(
        [round(x * _K), round(y * _K), round((x + 8) * _K), round((y + h) * _K)],
        outline=rgb(MUTED),
    )
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        _text(draw, (x + 11, y + (1 - v) * h), fmt.pct(v, 0), 6, anchor="lm")


def _overview_png(labels: list[str], rate: np.ndarray) -> Figure:
    n = len(labels)
    side, left, top = 400.0, 34.0, 26.0
    cell = side / n
    width, height = left + side + 70, top + side + 30
    img = Image.new("RGB", (round(width * _K), round(height * _K)), "white")
    draw = ImageDraw.Draw(img)
    _text(
        draw,
        (left, 8),
        f"All {n} classes at once; the following pages name every class",
        8,
        bold=True,
    )
    _paint_cells(img, rate, left, top, cell, cell)
    draw.rectangle(
        [left * _K, top * _K, (left + side) * _K, (top + side) * _K],
        outline=rgb(MUTED),
        width=2,
    )
    step = 1 if n <= 20 else max(5, int(round(n / 10 / 5)) * 5)
    for t in range(0, n, step):
        pos = (t + 0.5) * cell
        _text(draw, (left + pos, top + side + 3), str(t + 1), 6, anchor="ma")
        _text(draw, (left - 3, top + pos), str(t + 1), 6, anchor="rm")
    _text(
        draw,
        (left + side / 2, top + side + 13),
        "predicted class (position in the model's class order)",
        7,
        anchor="ma",
    )
    label = _vertical_labels(["true class (position)"], 12, 110, 7)  # one rotated axis title
    img.paste(label, (round(2 * _K), round((top + side / 2 - 55) * _K)))
    _colorbar_png(img, left + side + 12, top, side * 0.6)
    _text(draw, (left + side + 12, top + side * 0.6 + 8), "share of the", 6)
    _text(draw, (left + side + 12, top + side * 0.6 + 15), "true class", 6)
    return _png(img)


def _tile_png(labels: list[str], rate: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> Figure:
    """One block of the matrix with every row and column class named."""
    nr, nc = r1 - r0, c1 - c0
    width, height = 760.0, 470.0
    left, top, bottom = 150.0, 112.0, 14.0
    cw, ch = (width - left - 6) / nc, (height - top - bottom) / nr
    fr, fc = min(6.0, ch * 0.8), min(6.0, cw * 0.8)
    img = Image.new("RGB", (round(width * _K), round(height * _K)), "white")
    draw = ImageDraw.Draw(img)
    grid = rgb(GRID)
    for i in range(0, nr + 1, 5):  # faint rules every 5 rows/columns guide the eye to a label
        draw.line(
            [(left * _K, (top + i * ch) * _K), ((left + nc * cw) * _K, (top + i * ch) * _K)],
            fill=grid,
            width=2,
        )
    for j in range(0, nc + 1, 5):
        draw.line(
            [((left + j * cw) * _K, top * _K), ((left + j * cw) * _K, (top + nr * ch) * _K)],
            fill=grid,
            width=2,
        )
    _paint_cells(img, rate[r0:r1, c0:c1], left, top, cw, ch, r0, c0)
    draw.rectangle(
        [left * _K, top * _K, (left + nc * cw) * _K, (top + nr * ch) * _K],
        outline=rgb(MUTED),
        width=2,
    )
    for i in range(nr):
        _text(
            draw,
            (left - 3, top + (i + 0.5) * ch),
            f"{short(labels[r0 + i], 34)}  {r0 + i + 1}",
            fr,
            anchor="rm",
        )
    cols = _vertical_labels(
        [f"{c0 + j + 1}  {short(labels[c0 + j], 26)}" for j in range(nc)], nc * cw, top - 3, fc
    )
    img.paste(cols, (round(left * _K), 0))
    _text(
        draw,
        (left, height - 10),
        f"true classes {r0 + 1}–{r1} (rows) × predicted classes {c0 + 1}–{c1} (columns); "
        "green: correct (the diagonal), blue: confusions",
        7,
        fill=MUTED,
    )
    return _png(img)


def confusion(data: dict[str, Any]) -> list[Figure]:
    """An overview of the whole matrix, then page-sized blocks with every class named."""
    labels = [str(x) for x in data["labels"]]
    n = len(labels)
    rate = _rates(data)
    out = [_overview_png(labels, rate)]
    n_rb, n_cb = math.ceil(n / TILE_ROWS), math.ceil(n / TILE_COLS)
    rows_per, cols_per = math.ceil(n / n_rb), math.ceil(n / n_cb)
    for rb in range(n_rb):
        for cb in range(n_cb):
            r0, c0 = rb * rows_per, cb * cols_per
            out.append(
                _tile_png(labels, rate, r0, min(n, r0 + rows_per), c0, min(n, c0 + cols_per))
            )
    return out


def compare_diff(data: dict[str, Any]) -> list[Figure]:
    k = len(data["classes"])
    names = [short(x) for x in data["classes"]]
    d, lo, hi = (_num(data[key]) * 100 for key in ("diff", "low", "high"))
    fig, ax = plt.subplots(figsize=(WIDTH, 0.6 + 0.19 * max(k, 3)))
    y = np.arange(k)
    ok = ~np.isnan(lo) & ~np.isnan(hi)
    ax.hlines(y[ok], lo[ok], hi[ok], color=LIGHT, linewidth=3.2)
    ax.scatter(d, y, s=16, color=[signed_color(v) for v in np.nan_to_num(d)], zorder=2)
    ax.axvline(0, color=MUTED, linewidth=0.8)
    ax.set_yticks(y, names)
    ax.set_ylim(k - 0.5, -0.5)
    ax.set_xlabel("change in recall, B − A (percentage points), with 95% interval")
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    ax.tick_params(axis="y", length=0)
    return [_svg(fig)]


RENDERERS: dict[str, Callable[[dict[str, Any]], list[Figure]]] = {
    "recall_ci": recall_ci,
    "imbalance": imbalance,
    "calibration": calibration,
    "confusion": confusion,
    "compare_diff": compare_diff,
}


def render(chart: Chart) -> list[Figure]:
    """The figures of one chart; an unknown kind or bad data gives none, never a crash."""
    fn = RENDERERS.get(chart.kind)
    if fn is None:
        return []
    with plt.rc_context(_RC):
        try:
            return fn(chart.data)
        except (KeyError, ValueError, TypeError, IndexError):
            plt.close("all")
            return []
