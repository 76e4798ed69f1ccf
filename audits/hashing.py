"""sha256 of files and bytes: the one helper every fingerprint, manifest and check uses."""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, overload

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

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


class Digests(Sequence[str | None]):
    """One sha256 per row of a data set, held as ``[n, 32]`` bytes (``present`` False: none),
    read as hex strings. A list of 200,000 hex strings is 23 MB of Python objects; this is 6.6
    MB of numpy, and the hex form exists only while it is read (``__iter__``, ``to_arrow``)."""

    def __init__(self, n: int) -> None:
        self.raw = np.zeros((n, 32), dtype=np.uint8)
        self.present = np.zeros(n, dtype=bool)

    @classmethod
    def from_hex(cls, values: Sequence[str | None]) -> Digests:
        out = cls(len(values))
        out.set_many(np.arange(len(values)), values)
        return out

    def set(self, i: int, sha: str | None) -> None:
        """Row ``i``'s hex sha256 (``None`` or ``""``: unreadable)."""
        self.set_many([i], [sha])

    def set_many(self, rows: Sequence[int], shas: Sequence[str | None]) -> None:
        """``set`` for a batch: rows and their hex sha256 (``None`` or ``""``: unreadable)."""
        present = np.fromiter((bool(sha) for sha in shas), dtype=bool, count=len(shas))
        at = np.asarray(rows, dtype=np.int64)
        if present.any():
            text = "".join(sha for sha in shas if sha)
            if len(text) != 64 * int(present.sum()):  # a short one would shift every row after it
                raise ValueError("a sha256 must be 64 hex digits")
            self.raw[at[present]] = np.frombuffer(bytes.fromhex(text), dtype=np.uint8).reshape(
                -1, 32
            )
        self.present[at] = present

    def __len__(self) -> int:
        return len(self.present)

    @overload
    def __getitem__(self, i: int) -> str | None: ...
    @overload
    def __getitem__(self, i: slice) -> list[str | None]: ...
    def __getitem__(self, i: int | slice) -> str | None | list[str | None]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.raw[i].tobytes().hex() if self.present[i] else None

    def __iter__(self) -> Iterator[str | None]:
        for start in range(0, len(self), _ROWS_PER_HEX):
            stop = min(start + _ROWS_PER_HEX, len(self))
            text = self.raw[start:stop].tobytes().hex()
            for j, present in enumerate(self.present[start:stop].tolist()):
                yield text[64 * j : 64 * j + 64] if present else None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Digests):
            return bool(
                np.array_equal(self.present, other.present)
                and np.array_equal(self.raw[self.present], other.raw[other.present])
            )
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"Digests({len(self)} rows, {int(self.present.sum())} hashed)"

    def to_arrow(self, rows: np.ndarray | None = None) -> pa.ChunkedArray:
        """The hex strings of ``rows`` (default: all) as an Arrow string column (nulls where
        unreadable), built from buffers: no Python string per row. In chunks of at most
        ``_ROWS_PER_CHUNK`` rows, so that a chunk's int32 offsets cannot overflow."""
        import pyarrow as pa

        raw = self.raw if rows is None else self.raw[rows]
        present = self.present if rows is None else self.present[rows]
        chunks = [
            _hex_strings(
                raw[start : start + _ROWS_PER_CHUNK], present[start : start + _ROWS_PER_CHUNK]
            )
            for start in range(0, len(present), _ROWS_PER_CHUNK)
        ]
        return pa.chunked_array(chunks, type=pa.string())


def _hex_strings(raw: np.ndarray, present: np.ndarray) -> pa.StringArray:
    import pyarrow as pa

    n = len(present)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.where(present, 64, 0), out=offsets[1:])
    data = binascii.hexlify(raw[present].tobytes())
    valid = None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(data), valid, null_count=int((~present).sum())
    )


_ROWS_PER_HEX = 65_536  # rows turned into hex at a time while iterating (8 MB of text)
_ROWS_PER_CHUNK = 1 << 24  # rows per Arrow chunk: 1 GiB of hex, int32 offsets in range
