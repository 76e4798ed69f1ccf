"""sha256 of files and bytes: the one helper every fingerprint, manifest and check uses."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def bytes_sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks; raises ``OSError`` when unreadable."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
