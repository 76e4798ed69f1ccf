"""The one palette: the dashboard, the HTML export's charts and the PDF's charts draw with it.

One colour per class (``class_colors``, keyed by the model's class order so a class keeps its
colour on every page and in every export), the tones that mean something (good, bad, warn),
the sequential scale of confusion matrices, and the greys of text, grids and backgrounds.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from typing import Any

from audits.formatting import is_num

# Tableau-10, slightly desaturated: distinct, calm, colour-blind friendlier than defaults.
BASE_PALETTE = [
    "#4E79A7", "#F28E2B", "#59A14F", "#E15759", "#76B7B2",
    "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#BAB0AC",
]  # fmt: skip

INK = "#1F2933"  # text
INK_SOFT = "#5B6577"  # secondary text, whiskers of intervals
MUTED = "#8A94A6"  # captions, reference lines, empty-chart messages
GRID = "#E6E9EF"  # grid lines and hairlines
BORDER = "#E1E5EB"  # card borders
SURFACE = "#F4F6F8"  # code, placeholders, letterboxing
SURFACE_ALT = "#EDF0F4"  # the second stripe of placeholders
CHIP = "#EEF1F5"  # class-name chips
CHIP_EDGE = "#B8C0CC"  # small outlined badges
ACCENT = "#2F5D8A"  # a series with no class colour of its own
ACCENT_SOFT = "#94B3D6"  # bars that need no attention next to flagged ones
LIGHT = "#C9D3E0"  # a secondary series (bin counts, training images, joining lines)
NEUTRAL = "#A7B4C6"  # the reference side of a comparison (held-out set, version A)
GOOD = "#3C8D6E"
BAD = "#C0504D"
WARN = "#D9932B"
#: Soft backgrounds and their text for verdict banners, flags and callouts.
GOOD_BG, GOOD_TEXT = "#E7F3EE", "#24614A"
WARN_BG, WARN_TEXT = "#FBF1E2", "#8A5A12"
BAD_BG, BAD_TEXT = "#FBEAEA", "#9B2F2C"

#: Confusion matrices: white to dark blue (plotly colourscale stops).
SEQUENTIAL = [
    [0.0, "#F7F9FC"],
    [0.08, "#DCE6F2"],
    [0.35, "#94B3D6"],
    [0.7, "#4A7DB3"],
    [1.0, "#1D3F66"],
]
#: Correct predictions (the diagonal) where a matrix shows them apart: light to dark green.
DIAGONAL = [[0.0, GOOD_BG], [1.0, GOOD_TEXT]]

TONES = {"good": GOOD, "bad": BAD, "warn": WARN}
#: A class's recall below these is shown in the bad / warn tone (the exports' recall dots).
BAD_BELOW, WARN_BELOW = 0.5, 0.8


def class_colors(classes: Sequence[str]) -> dict[str, str]:
    """A stable colour per class in model order: the base palette, then golden-angle hues."""
    out = {}
    for i, name in enumerate(classes):
        if i < len(BASE_PALETTE):
            out[name] = BASE_PALETTE[i]
            continue
        hue = (i * 0.381966) % 1.0  # golden angle: neighbours in class order differ strongly
        light = (0.46, 0.58, 0.68)[i % 3]
        r, g, b = colorsys.hls_to_rgb(hue, light, 0.42)
        out[name] = f"#{int(r * 255):02X}{int(g * 255):02X}{int(b * 255):02X}"
    return out


def recall_color(recall: Any) -> str:
    """The tone of a class's recall: bad under 50%, warn under 80%, else the accent."""
    if not is_num(recall):
        return ACCENT
    return BAD if recall < BAD_BELOW else WARN if recall < WARN_BELOW else ACCENT


def signed_color(diff: Any) -> str:
    """A change: bad when negative, good otherwise (missing counts as no change)."""
    return BAD if is_num(diff) and diff < 0 else GOOD


def rgb(color: str) -> tuple[int, int, int]:
    """'#1F2933' -> (31, 41, 51)."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def scale_rgb(scale: Sequence[Sequence[Any]], t: float) -> tuple[int, int, int]:
    """The colour at ``t`` (0..1) of a colourscale given as plotly stops [[position, colour]]."""
    t = min(max(float(t), 0.0), 1.0)
    for (p0, c0), (p1, c1) in zip(scale, scale[1:], strict=False):
        if t <= p1:
            f = 0.0 if p1 == p0 else (t - p0) / (p1 - p0)
            a, b = rgb(c0), rgb(c1)
            return (
                round(a[0] + (b[0] - a[0]) * f),
                round(a[1] + (b[1] - a[1]) * f),
                round(a[2] + (b[2] - a[2]) * f),
            )
    return rgb(scale[-1][1])


def confusion_rgb(share: float, diagonal: bool = False) -> tuple[int, int, int]:
    """A confusion-matrix cell holding ``share`` of its true class.

    Confusions on the sequential scale at the square root of the share (as the dashboard's
    heatmap, so rare confusions stay visible); correct predictions, where a matrix shows the
    diagonal apart, in greens.
    """
    if diagonal:
        return scale_rgb(DIAGONAL, share)
    return scale_rgb(SEQUENTIAL, math.sqrt(max(float(share), 0.0)))


def hex_color(color: tuple[int, int, int]) -> str:
    """(31, 41, 51) -> '#1f2933'."""
    return "#{:02x}{:02x}{:02x}".format(*color)


def confusion_cell(share: float, diagonal: bool = False) -> tuple[str, str]:
    """(background, text) colours of a confusion-matrix table cell holding ``share`` of its
    true class: the colours of ``confusion_rgb``, with white text on dark cells."""
    r, g, b = confusion_rgb(share, diagonal)
    dark = 0.299 * r + 0.587 * g + 0.114 * b < 140  # perceived brightness
    return hex_color((r, g, b)), "#ffffff" if dark else INK
