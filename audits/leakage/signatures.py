"""Perceptual signatures of images: a 64-bit phash and a 16 x 16 grey thumbnail per image.

Both come from one decode. The phash only picks candidates (look-alike studio shots share
one); the thumbnail's RMS difference decides (see ``audits.leakage.near`` for the thresholds
measured on the demo).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from audits.images import BadImage, decode, strict_decoding, to_mode
from audits.progress import tracked

SIGNATURE_SIDE = 16


def decode_small(data: bytes, side: int = 128) -> Image.Image:
    """Decode image bytes for hashing; ``BadImage`` when they are not a usable image.

    JPEGs are decoded at a reduced scale (Pillow's ``draft``: the DCT does 1/2 to 1/8 of the
    work), which makes large photos several times faster; the signature only looks at a
    32 x 32 reduction anyway. Other formats go through the audit's own safe ``decode``.
    """
    if data[:3] != b"\xff\xd8\xff":
        return decode(data)
    try:
        with strict_decoding(), warnings.catch_warnings():  # a truncated JPEG is refused
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.draft("L", (side, side))
            img.load()
    except Exception:  # anything odd: let the full, careful decoder decide and explain
        return decode(data)
    return img


def signature(data: bytes) -> tuple[np.uint64, np.ndarray] | None:
    """(64-bit phash as a uint64, 16 x 16 grey thumbnail as uint8[256]) of image bytes, or None."""
    import imagehash

    try:
        grey = to_mode(decode_small(data), 1)  # 16-bit, palette, alpha: as the model sees them
        bits = imagehash.phash(grey).hash.reshape(-1)
        thumb = grey.resize((SIGNATURE_SIDE, SIGNATURE_SIDE), Image.Resampling.LANCZOS)
    except BadImage:
        return None
    except Exception:  # Pillow raises assorted types on odd modes
        return None
    phash = np.frombuffer(np.packbits(bits).tobytes(), dtype=">u8")[0].astype(np.uint64)
    return phash, np.asarray(thumb, dtype=np.uint8).reshape(-1)


@dataclass
class Signatures:
    """Perceptual signatures of a list of files, in order; ``valid`` is False where unreadable."""

    phash: np.ndarray  # uint64 [n]
    thumbs: np.ndarray  # uint8 [n, 256]
    valid: np.ndarray  # bool [n]


def _file_signature(path: Path) -> tuple[np.uint64, np.ndarray] | None:
    try:
        return signature(path.read_bytes())
    except OSError:
        return None


def signatures(paths: Sequence[Path], threads: int = 4) -> Signatures:
    """Signatures of files; Pillow releases the GIL while decoding and resizing, so threads help."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        found = list(tracked(pool.map(_file_signature, paths, chunksize=32), len(paths), "leakage"))
    n = len(found)
    out = Signatures(
        np.zeros(n, np.uint64),
        np.zeros((n, SIGNATURE_SIDE * SIGNATURE_SIDE), np.uint8),
        np.zeros(n, bool),
    )
    for i, sig in enumerate(found):
        if sig is not None:
            out.phash[i], out.thumbs[i], out.valid[i] = sig[0], sig[1], True
    return out


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between uint64 hashes (broadcasting)."""
    return np.bitwise_count(np.asarray(a, np.uint64) ^ np.asarray(b, np.uint64))


def thumb_rms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS difference between thumbnails in grey levels, along the last axis."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return np.sqrt((d * d).mean(axis=-1))
