"""Per-image properties that explain *how* a batch differs: light, contrast, colour, blur, framing.

Units (what ``properties.parquet`` and ``drift.json`` hold):

| property | meaning |
| --- | --- |
| ``brightness`` | mean luma (ITU-R 601, Pillow's ``L``) / 255, in [0, 1] |
| ``contrast`` | standard deviation of luma / 255 |
| ``saturation`` | mean HSV saturation, in [0, 1] |
| ``sharpness`` | variance of the Laplacian of luma (0..255 scale; blur lowers it) |
| ``width``, ``height`` | original size in pixels |
| ``aspect_ratio`` | width / height |
| ``format`` | file format as Pillow reads it (``PNG``, ``JPEG``…) |
| ``file_size`` | bytes on disk |

Pixel statistics are taken on the image scaled down to at most ``MAX_SIDE`` pixels on its long
side, so a 24-megapixel photo costs no more than a web image; sizes, format and file size
are those of the original file.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from audits.datasets import ImageSet
from audits.images import BadImage, decode, to_mode
from audits.progress import tracked

NUMERIC = [
    "brightness",
    "contrast",
    "saturation",
    "sharpness",
    "width",
    "height",
    "aspect_ratio",
    "file_size",
]
CATEGORICAL = ["format"]
PROPERTIES = NUMERIC[:4] + ["width", "height", "aspect_ratio", "format", "file_size"]
MAX_SIDE = 1024


def image_properties(img: Image.Image, data: bytes) -> dict[str, Any]:
    """The properties of one decoded image (``img`` as decoded from the file's ``data``)."""
    width, height = img.size
    fmt = (img.format or "unknown").upper()
    rgb = to_mode(img, 3)
    if max(width, height) > MAX_SIDE:
        rgb = rgb.copy()
        rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    luma = np.asarray(rgb.convert("L"), dtype=np.float64)
    saturation = np.asarray(rgb.convert("HSV"), dtype=np.uint8)[:, :, 1]
    laplacian = cv2.Laplacian(luma, cv2.CV_64F)
    return {
        "brightness": float(luma.mean() / 255.0),
        "contrast": float(luma.std() / 255.0),
        "saturation": float(saturation.mean() / 255.0),
        "sharpness": float(laplacian.var()),
        "width": int(width),
        "height": int(height),
        "aspect_ratio": float(width / height),
        "format": fmt,
        "file_size": int(len(data)),
    }


def _one(path: Path) -> dict[str, Any] | str:
    """Properties of the file at ``path``, or the reason it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})"
    try:
        return image_properties(decode(data), data)
    except BadImage as exc:
        return str(exc)
    except Exception as exc:  # odd modes or sizes: a skip with a reason, never a crash
        return f"cannot measure image ({type(exc).__name__}: {exc})"


def set_properties(
    image_set: ImageSet, threads: int | None = None
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Properties of every readable image of the set (threaded: Pillow and OpenCV free the GIL).

    Returns a table with ``path`` and the ``PROPERTIES`` columns in item order, and the
    skipped images as ``{"path", "reason"}``.
    """
    paths = image_set.items["path"].tolist()
    threads = threads or min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        jobs = pool.map(_one, [image_set.abspath(p) for p in paths], chunksize=16)
        results = list(tracked(jobs, len(paths), "image properties"))
    rows, skipped = [], []
    for path, result in zip(paths, results, strict=True):
        if isinstance(result, str):
            skipped.append({"path": path, "reason": result})
        else:
            rows.append({"path": path, **result})
    table = pd.DataFrame(rows, columns=["path", *PROPERTIES])
    return table, skipped
