"""Decoding: bad files become reasons; odd modes are converted correctly."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from audits.images import BadImage, load_for_model


def _png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_zero_bytes():
    with pytest.raises(BadImage, match="empty file"):
        load_for_model(b"", (8, 8), 3)


def test_not_an_image():
    with pytest.raises(BadImage, match="not an image"):
        load_for_model(b"hello, this is text" * 10, (8, 8), 3)


def test_truncated_png():
    data = _png(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    )
    with pytest.raises(BadImage, match="truncated|unreadable"):
        load_for_model(data[: len(data) // 2], (8, 8), 3)


def test_truncated_jpeg():
    data = _png(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)),
        "JPEG",
    )
    with pytest.raises(BadImage, match="truncated|unreadable"):
        load_for_model(data[: len(data) // 2], (8, 8), 3)


def test_decompression_bomb(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = _png(Image.new("L", (100, 100)))  # 10,000 px > limit
    with pytest.raises(BadImage, match="decompression bomb"):
        load_for_model(data, (8, 8), 3)


def test_cmyk_jpeg_converts_to_rgb():
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    arr, w, h = load_for_model(_png(img, "JPEG", quality=95), (8, 8), 3)
    assert (w, h) == (16, 16) and arr.shape == (8, 8, 3)
    r, g, b = arr[..., 0].mean(), arr[..., 1].mean(), arr[..., 2].mean()
    assert r > 200 and g < 60 and b < 60


def test_16_bit_greyscale_uses_full_range():
    arr16 = np.full((10, 10), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    img = Image.fromarray(arr16)  # Pillow picks I;16 for uint16
    assert img.mode == "I;16"
    arr, _, _ = load_for_model(_png(img), (10, 10), 1)
    assert arr.shape == (10, 10, 1)
    assert abs(int(arr.mean()) - 128) <= 1


def test_palette_and_alpha_flatten_on_white():
    pal = Image.new("P", (8, 8))
    pal.putpalette([0, 0, 255] * 256)
    arr, _, _ = load_for_model(_png(pal), (8, 8), 3)
    assert tuple(arr[0, 0]) == (0, 0, 255)
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    arr, _, _ = load_for_model(_png(rgba), (8, 8), 3)
    assert tuple(arr[0, 0]) == (255, 255, 255)


def test_rgb_to_greyscale_and_resize_shape():
    img = Image.new("RGB", (40, 20), (255, 255, 255))
    arr, w, h = load_for_model(_png(img), (12, 30), 1)
    assert arr.shape == (12, 30, 1) and (w, h) == (40, 20) and arr.min() == 255


def test_truncated_stays_refused_after_weasyprint_import():
    """weasyprint sets Pillow's global LOAD_TRUNCATED_IMAGES on import; decoding must not care."""
    import weasyprint  # noqa: F401
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # what weasyprint does to the process
    data = _png(
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    )
    with pytest.raises(BadImage, match="truncated|unreadable"):
        load_for_model(data[: len(data) // 2], (8, 8), 3)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # and the other library's setting is restored
