"""Safe image reading and decoding with Pillow, and resizing to the model's input.

Reading and decoding never raise anything but ``BadImage``: a missing, unreadable, zero-byte,
truncated, non-image or decompression-bomb file becomes a skip with a reason. Odd modes (CMYK,
16-bit, palette, alpha) are converted to the model's channels rather than refused.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from audits.hashing import bytes_sha256

#: The largest model input side accepted, in pixels: far above any image classifier's input,
#: far below sizes whose first forward pass exhausts memory (100,000² RGB floats are 120 GB).
MAX_INPUT_SIDE = 8192


class BadImage(Exception):
    """An image that cannot be used; ``str(exc)`` is the reason recorded in the run."""


_strict_lock = threading.Lock()
_strict_depth = 0
_lenient_before = False


@contextmanager
def strict_decoding() -> Iterator[None]:
    """Pillow's ``LOAD_TRUNCATED_IMAGES`` off while any thread decodes, restored after the last.

    The flag is process-global and other libraries flip it (weasyprint sets it True on import).
    A plain save/set/restore per call races between decoding threads: one thread restores
    ``True`` while another is mid-decode, or the last restore writes back ``False``. A count of
    decoders in flight makes the first one save the setting and the last one restore it."""
    global _strict_depth, _lenient_before
    with _strict_lock:
        if _strict_depth == 0:
            _lenient_before = ImageFile.LOAD_TRUNCATED_IMAGES
        _strict_depth += 1
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        with _strict_lock:
            _strict_depth -= 1
            if _strict_depth == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES = _lenient_before


def decode(data: bytes) -> Image.Image:
    """Decode image bytes fully; raise ``BadImage`` with a reason on any failure."""
    if not data:
        raise BadImage("empty file (0 bytes)")
    # Never decode a partly-missing file as if it were whole.
    try:
        with strict_decoding(), warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"decompression bomb refused ({exc})".split(" could")[0]) from None
    except UnidentifiedImageError:
        raise BadImage("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc) or type(exc).__name__
        if "truncated" in msg.lower() or isinstance(exc, EOFError):
            raise BadImage(f"truncated image ({msg})") from None
        raise BadImage(f"unreadable image ({msg})") from None
    except Exception as exc:  # Pillow plugins raise assorted types on hostile input
        raise BadImage(f"unreadable image ({type(exc).__name__}: {exc})") from None
    if img.width < 1 or img.height < 1:
        raise BadImage("image has no pixels")
    return img


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (channels=3) or L (channels=1)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit and 32-bit integer images use the full range of their type, not 0..255.
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if img.mode == "F":
            top = max(1.0, float(arr.max(initial=1.0)))
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        # Flatten transparency onto white, the way the images look in a viewer.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    target = "RGB" if channels == 3 else "L"
    return img if img.mode == target else img.convert(target)


def load_for_model(
    data: bytes, size: tuple[int, int], channels: int
) -> tuple[np.ndarray, int, int]:
    """Decode and resize to (height, width); returns uint8 HxWxC, original width and height."""
    img = decode(data)
    width, height = img.size
    try:
        img = to_mode(img, channels)
        resized = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    except Exception as exc:
        raise BadImage(f"cannot convert image mode {img.mode} ({exc})") from None
    arr = np.array(resized, dtype=np.uint8)  # writable: torch.from_numpy needs it
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr, width, height


def read_file(path: str | Path) -> bytes:
    """The file's bytes; raise ``BadImage`` with a reason when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadImage("file not found") from None
    except OSError as exc:
        raise BadImage(f"cannot read file ({exc.strerror or exc})") from None


def read_for_model(
    path: str | Path, size: tuple[int, int], channels: int, expected_sha256: str | None = None
) -> tuple[np.ndarray, int, int]:
    """``load_for_model`` on a file; ``expected_sha256`` (a run's record) refuses a changed file."""
    data = read_file(path)
    if expected_sha256 and bytes_sha256(data) != expected_sha256:
        raise BadImage("changed since the run (sha256 differs)")
    return load_for_model(data, size, channels)


def write_thumbnail(src: Path, dst: Path, side: int, image_format: str = "JPEG") -> bool:
    """A small RGB copy of ``src`` (longest side ``side``) as JPEG or PNG; False when ``src``
    cannot be read."""
    try:
        img = to_mode(decode(src.read_bytes()), 3)
    except (OSError, BadImage):
        return False
    img.thumbnail((side, side))
    dst.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 85} if image_format == "JPEG" else {"optimize": True}
    img.save(dst, format=image_format, **options)
    return True
