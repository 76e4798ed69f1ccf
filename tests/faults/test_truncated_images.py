"""Truncated images stay refused whatever Pillow's process-global ``LOAD_TRUNCATED_IMAGES``
says: other libraries set it (weasyprint on import), and decoding threads must neither leave it
changed nor decode a partial file as whole (found while integrating issue 14)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from audits.images import BadImage, load_for_model


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_truncation_flag_survives_concurrent_decoding():
    """Many threads decoding at once never leave Pillow's global flag changed, and never let a
    truncated file through while another library has the flag set."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import ImageFile

    whole = _png(
        Image.fromarray(np.random.default_rng(2).integers(0, 255, (48, 48, 3), dtype=np.uint8))
    )
    cut = whole[: len(whole) // 2]
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # another library's setting
    try:

        def one(i: int) -> str:
            try:
                load_for_model(cut if i % 2 else whole, (8, 8), 3)
                return "ok"
            except BadImage:
                return "bad"

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(400)))
        assert results.count("bad") == 200 and results.count("ok") == 200
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
