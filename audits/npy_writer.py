"""Streaming ``.npy`` files with plain writes: never a writable memory map.

A writable memory map over a full disk (or past ``ulimit -f``) fails on a page fault, and the
kernel answers with SIGBUS: the process dies with no message and no clean-up. Written with
``write``, the same fault is an ``OSError`` (ENOSPC, EFBIG) that the caller turns into one line
and a removed temporary folder. Memory stays flat: rows go to the file as they come.

The header has a fixed size (128 bytes, format 1.0) so that the shape, known only at the end,
is written over it when the file is closed; ``numpy.load`` reads the result as any ``.npy``.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

HEADER_BYTES = 128
_MAGIC = b"\x93NUMPY\x01\x00"


def npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """A format-1.0 ``.npy`` header of exactly ``HEADER_BYTES`` bytes (C order)."""
    meta = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": tuple(int(s) for s in shape),
    }
    body = repr(meta).encode("latin1")
    pad = HEADER_BYTES - len(_MAGIC) - 2 - len(body) - 1
    if pad < 0:  # 20-digit dimensions still fit; only an absurd rank would not
        raise ValueError(f"shape {shape} does not fit a {HEADER_BYTES}-byte .npy header")
    return _MAGIC + struct.pack("<H", HEADER_BYTES - len(_MAGIC) - 2) + body + b" " * pad + b"\n"


class NpyRows:
    """Rows of an array written to ``path`` in order, with plain file I/O.

    ``append(rows)`` adds rows at the end; ``put(index, rows)`` writes rows at ascending
    positions, filling skipped positions with ``fill``. ``close(rows=None)`` pads to ``rows``
    rows (with ``fill``) when given, writes the header and returns the path. ``row_shape`` is
    the shape of one row when known up front (else taken from the first rows written).
    A failed write closes the file and raises the ``OSError``; the caller removes the folder
    (a ``close`` in a ``finally`` then does nothing, so the first error is the one reported).
    """

    def __init__(
        self,
        path: Path,
        dtype: np.dtype | type = np.float16,
        row_shape: tuple[int, ...] | None = None,
        fill: float = 0.0,
    ) -> None:
        self.path, self.dtype = Path(path), np.dtype(dtype)
        self.row_shape = tuple(row_shape) if row_shape is not None else None
        self.fill, self.n = fill, 0
        self._file: BinaryIO | None = None
        self.aborted = False

    def _open(self) -> BinaryIO:
        if self.aborted:
            raise ValueError(f"{self.path}: written after a failed write")
        if self._file is None:
            self._file = open(self.path, "wb")  # noqa: SIM115 - kept open across calls
            self._write(b"\0" * HEADER_BYTES)  # replaced by the header in close()
        return self._file

    def _write(self, data: bytes | memoryview) -> None:
        assert self._file is not None
        try:
            self._file.write(data)
        except BaseException as exc:
            self.abort()
            raise self._named(exc) from None

    def append(self, rows: np.ndarray) -> None:
        """Add ``rows`` (``[k, *row_shape]``) after the rows written so far."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if self.row_shape is None:
            self.row_shape = tuple(rows.shape[1:])
        elif tuple(rows.shape[1:]) != self.row_shape:
            raise ValueError(
                f"{self.path}: rows of shape {rows.shape[1:]}, expected {self.row_shape}"
            )
        self._open()
        self._write(memoryview(rows).cast("B"))
        self.n += len(rows)

    def put(self, index: np.ndarray, rows: np.ndarray) -> None:
        """Write ``rows[j]`` at position ``index[j]``; positions ascend past those written."""
        index = np.asarray(index, dtype=np.int64)
        if len(index) and (index[0] < self.n or np.any(np.diff(index) <= 0)):
            raise ValueError(f"{self.path}: positions must ascend past {self.n - 1}")
        rows = np.asarray(rows)
        if self.row_shape is None:
            self.row_shape = tuple(rows.shape[1:])
        # Runs of consecutive positions are written in one call; the gaps before them get `fill`.
        breaks = np.flatnonzero(np.diff(index) != 1) + 1
        for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(index)], strict=True):
            if start == stop:
                continue
            self._pad_to(int(index[start]))
            self.append(rows[start:stop])

    def _pad_to(self, position: int) -> None:
        """Rows of ``fill`` up to (not including) ``position``, a few MB at a time."""
        assert self.row_shape is not None
        row_bytes = max(1, int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize)
        chunk = max(1, (4 << 20) // row_bytes)
        while self.n < position:
            k = min(chunk, position - self.n)
            self.append(np.full((k, *self.row_shape), self.fill, dtype=self.dtype))

    def close(self, rows: int | None = None, row_shape: tuple[int, ...] | None = None) -> Path:
        """Pad to ``rows`` rows when given, write the header; ``row_shape`` if none was seen.

        After a failed write (``abort``) it does nothing: that failure is the one raised.
        """
        if self.aborted:
            return self.path
        if self.row_shape is None:
            self.row_shape = tuple(row_shape) if row_shape is not None else (0,)
        if rows is not None:
            self._pad_to(rows)
        file = self._open()
        try:
            file.seek(0)
            file.write(npy_header((self.n, *self.row_shape), self.dtype))
            file.flush()
            os.fsync(file.fileno())  # a delayed-allocation ENOSPC surfaces here, not later
            file.close()
        except BaseException as exc:
            self.abort()
            raise self._named(exc) from None
        self._file = None
        return self.path

    def _named(self, exc: BaseException) -> BaseException:
        """A write's OSError carries no file name; give it this file's (same errno, same type)."""
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(self.path))
        return exc

    def abort(self) -> None:
        """Close the file without finishing it (after a failure; its folder is removed)."""
        file, self._file = self._file, None
        self.aborted = True
        if file is not None:
            # The write already failed; that error is the one to report, not the close's.
            with contextlib.suppress(OSError):
                file.close()
