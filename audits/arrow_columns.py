"""Per-row lists and strings of a large table held in Arrow buffers, not Python objects.

A predictions table of 200,000 rows built with a numpy array per row for its top-k columns
holds 400,000 Python objects (about 60 MB); the same column as one Arrow list array is two
buffers (12 MB). pandas keeps such a column as ``pd.ArrowDtype``; Parquet stores it with the
same type as the object form (``list<item: int64>``), and ``write_predictions`` records it as
the object form, so a reader gets what it always got.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa


def list_column(matrix: np.ndarray) -> pd.Series:
    """The rows of ``matrix`` ``[n, k]`` as one Arrow-backed list column."""
    n, k = matrix.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * np.int32(k))
    values = pa.array(np.ascontiguousarray(matrix).reshape(-1))
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.ListArray.from_arrays(offsets, values)))


def list_matrix(column: pd.Series) -> np.ndarray | None:
    """An Arrow-backed list column whose rows all have one length, as ``[n, k]``; None for any
    other column (an object column, nulls, ragged rows), which the caller reads its own way."""
    if not isinstance(column.dtype, pd.ArrowDtype) or not pa.types.is_list(
        column.dtype.pyarrow_dtype
    ):
        return None
    lists = pa.chunked_array(column.array.__arrow_array__()).combine_chunks()
    if lists.null_count:
        return None
    offsets = lists.offsets.to_numpy()
    lengths = np.diff(offsets)
    if len(lists) and (lengths != lengths[0]).any():
        return None
    k = int(lengths[0]) if len(lists) else 0
    values = lists.values.slice(offsets[0], offsets[-1] - offsets[0] if len(lists) else 0)
    return values.to_numpy(zero_copy_only=False).reshape(len(lists), k)


def string_column(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    """An Arrow string array as a pandas column that keeps it in its buffers."""
    return pd.Series(pd.arrays.ArrowExtensionArray(values))
