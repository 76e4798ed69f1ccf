"""Small PNG copies of the farthest current images, kept in the drift run folder so that the
dashboard and the exports can show them without the source data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audits.images import write_thumbnail

THUMBS_DIR = "thumbs"
#: Longest side of a stored thumbnail, in pixels (about 10-30 kB as PNG).
THUMB_SIDE = 160


def write_png_thumbnail(src: Path, dst: Path, side: int = THUMB_SIDE) -> bool:
    """A small RGB PNG of ``src`` (longest side ``side``); False when it cannot be read."""
    return write_thumbnail(src, dst, side, "PNG")


def add_example_thumbs(folder: Path, examples: list[dict[str, Any]]) -> int:
    """Write a thumbnail of each example into ``folder/thumbs/`` and set its ``thumb`` (the
    path relative to the run; None when the image cannot be read). Returns how many were written."""
    written = 0
    for i, example in enumerate(examples):
        rel = f"{THUMBS_DIR}/example-{i:02d}.png"
        src = example.get("abspath")
        ok = bool(src) and write_png_thumbnail(Path(src), folder / rel)
        example["thumb"] = rel if ok else None
        written += ok
    return written
