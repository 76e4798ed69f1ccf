"""Overlay PNGs: the image the model saw, then one heatmap overlay per explained class, side by side.

Drawn with Pillow and a matplotlib colormap table (no figures), so thousands of overlays
stay cheap. Small inputs are enlarged so the panels stay readable; the region box, when the
data set has one, is outlined on every panel.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CAPTION_HEIGHT = 18
GAP = 4
BOX_COLOUR = (255, 255, 255)


@cache
def _lut(cmap: str) -> np.ndarray:
    import matplotlib

    return np.round(matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).astype(
        np.uint8
    )


@cache
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def colorize(heat: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """A [0, 1] heatmap ``[H, W]`` as uint8 RGB ``[H, W, 3]``."""
    index = np.clip(np.nan_to_num(heat.astype(np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return _lut(cmap)[index]


def blend(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Image ``[H, W]``/``[H, W, 1]``/``[H, W, 3]`` uint8 with the coloured heatmap on top (alpha = heatmap weight)."""
    rgb = to_rgb(image).astype(np.float32)
    out = (1.0 - alpha) * rgb + alpha * colorize(heat, cmap).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` from greyscale or RGB."""
    if image.ndim == 2:
        image = image[:, :, None]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]


def render(
    image: np.ndarray,
    heats: list[np.ndarray],
    captions: list[str],
    box: tuple[float, float, float, float] | None = None,
    min_side: int = 128,
) -> Image.Image:
    """One PNG-ready picture: ``[image | overlay per heat]`` with a caption over each panel.

    ``captions`` has one entry per panel (the image first). ``box`` is (x0, y0, x1, y1) in the
    pixels of ``image`` (the model-input-size image).
    """
    h, w = image.shape[:2]
    scale = max(1.0, min_side / min(h, w))
    size = (round(w * scale), round(h * scale))
    panels = [to_rgb(image)] + [blend(image, heat) for heat in heats]
    canvas = Image.new(
        "RGB", (len(panels) * (size[0] + GAP) - GAP, size[1] + CAPTION_HEIGHT), (255, 255, 255)
    )
    draw = ImageDraw.Draw(canvas)
    for i, (panel, caption) in enumerate(zip(panels, captions, strict=True)):
        left = i * (size[0] + GAP)
        tile = Image.fromarray(panel).resize(size, Image.Resampling.BILINEAR)
        canvas.paste(tile, (left, CAPTION_HEIGHT))
        draw.text((left + 2, 2), caption, fill=(0, 0, 0), font=_font())
        if box is not None and all(np.isfinite(box)):
            x0, y0, x1, y1 = (v * scale for v in box)
            x1, y1 = max(x0, x1 - 1), max(y0, y1 - 1)
            draw.rectangle(
                [left + x0, CAPTION_HEIGHT + y0, left + x1, CAPTION_HEIGHT + y1],
                outline=BOX_COLOUR,
                width=2,
            )
    return canvas


def save_overlay(
    path: Path,
    image: np.ndarray,
    heats: list[np.ndarray],
    captions: list[str],
    box: tuple[float, float, float, float] | None = None,
) -> None:
    """Render and write one overlay PNG."""
    # Fast zlib level: these are previews, and level 6 costs several times more CPU for ~15%.
    render(image, heats, captions, box).save(path, format="PNG", compress_level=1)
