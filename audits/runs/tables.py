"""The predictions table on disk: written in row groups, read lazily by column and by row.

A 1,000,000-row, 250-class run must not cost a page or an export the whole table: Parquet row
groups of ``ROW_GROUP_ROWS`` rows let a reader take only the columns it names (column
projection), only the row groups whose statistics can match a filter (predicate push-down),
and only the row groups that hold the rows it wants (``take``). pyarrow is already the
table's reader, so no second engine is needed (see ``bench/scale.py`` for the numbers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from audits.errors import AuditError

#: Rows per Parquet row group: a filtered or row-indexed read decodes at most this many
#: rows per group it touches (64 Ki rows of predictions ≈ 5 MB compressed).
ROW_GROUP_ROWS = 65_536

#: A filter in pyarrow's DNF form, e.g. ``[("label", "=", "targa"), ("correct", "=", False)]``.
Filter = Sequence[tuple[str, str, Any]]


class Rows(Protocol):
    """What ``write_predictions`` stores: a table's column names, any one whole column, and
    any slice of rows as a frame. A ``pd.DataFrame`` is wrapped as one (``_FrameRows``); an
    audit passes ``audits.inference.PredictionRows``, which builds each slice from its numpy
    columns, so the whole table is never built to be stored."""

    columns: list[str]

    def __len__(self) -> int: ...
    def column(self, name: str) -> Any: ...
    def frame(self, start: int = 0, stop: int | None = None) -> pd.DataFrame: ...


class _FrameRows:
    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table
        self.columns = list(table.columns)

    def __len__(self) -> int:
        return len(self.table)

    def column(self, name: str) -> Any:
        return self.table[name]

    def frame(self, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        return self.table.iloc[start:stop]


#: Columns whose values are (nearly) all different: a dictionary page of them only grows until
#: Parquet gives up on it, and while it grows the writer holds a hash table of every value (a
#: 65,536-row group of top-k probabilities: 24 MB of it). Every other column is
#: dictionary-encoded (classes, indices, sizes, metadata: few distinct values).
UNIQUE_COLUMNS = frozenset({"row", "path", "confidence", "loss", "topk_prob", "file_sha256"})


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The Parquet column paths to dictionary-encode: every leaf outside ``UNIQUE_COLUMNS``."""
    out = []
    for field in schema:
        if field.name in UNIQUE_COLUMNS:
            continue
        kind = field.type
        out.append(f"{field.name}.list.element" if pa.types.is_list(kind) else field.name)
    return out


def write_predictions(table: pd.DataFrame | Rows, path: Path) -> None:
    """``table`` as ``path`` in row groups, each group built and converted to Arrow on its own
    (never a second whole copy of the table). The file equals, byte for byte,
    ``DataFrame.to_parquet(path, index=False, row_group_size=ROW_GROUP_ROWS,
    use_dictionary=dictionary_columns(schema))`` of the whole table with its Arrow-backed
    columns (``audits.arrow_columns``) in their object form."""
    rows = _FrameRows(table) if isinstance(table, pd.DataFrame) else table
    schema = stored_schema(rows)
    with pq.ParquetWriter(path, schema, use_dictionary=dictionary_columns(schema)) as writer:
        for start in range(0, max(len(rows), 1), ROW_GROUP_ROWS):
            chunk = rows.frame(start, start + ROW_GROUP_ROWS)
            writer.write_table(_arrow_group(chunk, schema))
            del chunk
            _release_arrow_memory()


def _arrow_group(chunk: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    # One thread: each conversion thread's allocator heap keeps what it freed, so threads
    # would leave several groups' worth resident for a conversion of milliseconds.
    arrow = pa.Table.from_pandas(chunk, schema=schema, preserve_index=False, nthreads=1)
    return arrow.replace_schema_metadata(schema.metadata)


def _release_arrow_memory() -> None:
    """Give the pages Arrow's allocator (mimalloc) freed back to the system after a row group,
    so the next group reuses memory instead of adding to it (200,000 rows: 36 → 12 MB left)."""
    pa.default_memory_pool().release_unused()


def stored_schema(table: pd.DataFrame | Rows) -> pa.Schema:
    """The Arrow schema of ``table`` as stored: each column's type inferred over all its rows
    (one column converted at a time, not the whole table), and pandas' metadata naming an
    Arrow-backed list or string column's NumPy form ``object`` (what a column of numpy arrays or
    str records), so that ``pd.read_parquet`` gives readers the form they always had. Equal to
    ``pa.Schema.from_pandas`` of the whole object-form table."""
    rows = _FrameRows(table) if isinstance(table, pd.DataFrame) else table
    fields: list[pa.Field] = []
    entries: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    for name in rows.columns:
        values = rows.column(name)
        one = _column_schema(name, values)
        meta = json.loads(one.metadata[b"pandas"])
        entry = meta["columns"][0]
        dtype = getattr(values, "dtype", None)
        if isinstance(dtype, pd.ArrowDtype) and (
            pa.types.is_list(dtype.pyarrow_dtype) or pa.types.is_string(dtype.pyarrow_dtype)
        ):
            entry["numpy_type"] = "object"
        fields.append(one.field(0))
        entries.append(entry)
    if not entries:  # no columns: what pandas records for an empty frame
        meta = json.loads(
            pa.Schema.from_pandas(pd.DataFrame(), preserve_index=False).metadata[b"pandas"]
        )
    meta["columns"] = entries
    return pa.schema(fields, metadata={b"pandas": json.dumps(meta).encode()})


def _column_schema(name: str, values: Any) -> pa.Schema:
    """``pa.Schema.from_pandas`` of the one-column frame ``{name: values}``. An object column's
    type is inferred by walking its values (``pa.infer_type``), not by converting them: the
    conversion of 200,000 paths left 18 MB more resident for a schema."""
    frame = pd.DataFrame({name: values})
    if frame[name].dtype != object:
        return pa.Schema.from_pandas(frame, preserve_index=False)
    kind = pa.infer_type(frame[name].to_numpy(), from_pandas=True)
    empty = pa.Table.from_pandas(
        frame.iloc[:0], schema=pa.schema([pa.field(name, kind)]), preserve_index=False
    )
    return empty.schema


class PredictionsWriter:
    """Append chunks of a predictions table to one Parquet file, one row group per chunk of at
    most ``ROW_GROUP_ROWS`` rows, so a large table is never whole in memory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._writer: pq.ParquetWriter | None = None
        self.n = 0

    def append(self, chunk: pd.DataFrame) -> None:
        arrow = pa.Table.from_pandas(chunk, preserve_index=False, nthreads=1)
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self.path, arrow.schema, use_dictionary=dictionary_columns(arrow.schema)
            )
        self._writer.write_table(arrow, row_group_size=ROW_GROUP_ROWS)
        self.n += len(chunk)
        del arrow
        _release_arrow_memory()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> PredictionsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LazyTable:
    """One Parquet file read on demand: its footer once, then only the columns and row groups
    asked for. Every read returns a fresh pandas frame (callers may keep or drop it)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            meta = pq.read_metadata(self.path)
            self._schema = meta.schema.to_arrow_schema()
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise self._damaged(exc) from None
        self._meta = meta
        # First row of each row group, for mapping row numbers to groups.
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])

    @property
    def _file(self) -> pq.ParquetFile:
        """A reader of its own for each read (a cached run is shared by the dashboard's
        session threads); the footer parsed once is reused."""
        return pq.ParquetFile(self.path, metadata=self._meta)

    def _damaged(self, exc: BaseException) -> AuditError:
        return AuditError(f"{self.path}: damaged ({type(exc).__name__}: {exc})")

    @property
    def num_rows(self) -> int:
        return int(self._starts[-1])

    @property
    def num_row_groups(self) -> int:
        return len(self._starts) - 1

    @property
    def columns(self) -> list[str]:
        return list(self._schema.names)

    def _known(self, columns: Iterable[str] | None) -> list[str] | None:
        if columns is None:
            return None
        have = set(self.columns)
        return [c for c in columns if c in have]  # an older run may lack a column: skip it

    def read(
        self, columns: Iterable[str] | None = None, filters: Filter | None = None
    ) -> pd.DataFrame:
        """The named columns (all when None) of the rows matching ``filters`` (all when None);
        the index is each row's position in the file, as a full read numbers it."""
        if filters:
            return self.take(self.where(filters), columns)
        try:
            return self._file.read(columns=self._known(columns)).to_pandas()
        except Exception as exc:
            raise self._damaged(exc) from None

    def chunks(self, columns: Iterable[str] | None = None) -> Iterator[pd.DataFrame]:
        """The table one row group at a time, each chunk with the pandas dtypes a full read
        gives (an int or bool column with a null anywhere is float64 / object in every chunk),
        indexed by row position; writing the chunks one after the other equals writing the
        whole table."""
        cols = self._known(columns)
        try:
            widen = self._widened(cols)
            reader = self._file
            for i in range(self.num_row_groups):
                frame = reader.read_row_group(i, columns=cols).to_pandas()
                for name, dtype in widen.items():
                    frame[name] = frame[name].astype(dtype)
                frame.index = pd.RangeIndex(self._starts[i], self._starts[i + 1])
                yield frame
        except AuditError:
            raise
        except Exception as exc:
            raise self._damaged(exc) from None

    def _widened(self, cols: list[str] | None) -> dict[str, Any]:
        """Int and bool columns with a null somewhere, with the pandas dtype a full read gives
        them (float64 / object, or the nullable dtype the pandas metadata names): a chunk
        without nulls would otherwise read as int64 / bool."""
        schema = self._schema
        out: dict[str, Any] = {}
        for name in cols if cols is not None else schema.names:
            kind = schema.field(name).type
            if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
                column = self._file.read(columns=[name])  # one numeric column: cheap
                if column.column(0).null_count:
                    out[name] = column.to_pandas()[name].dtype
        return out

    def where(self, filters: Filter) -> np.ndarray:
        """Positions of the rows matching ``filters`` (pyarrow's DNF form, evaluated by
        pyarrow.compute on only the columns the filters name)."""
        names = sorted({name for name, _, _ in filters})
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise AuditError(f"{self.path}: no column {', '.join(missing)} to filter on")
        try:
            arrow = self._file.read(columns=names)
            arrow = arrow.append_column("__pos", pa.array(np.arange(arrow.num_rows)))
            kept = arrow.filter(pq.filters_to_expression(list(filters)))
        except Exception as exc:
            raise self._damaged(exc) from None
        return kept.column("__pos").to_numpy()

    def take(
        self, rows: Sequence[int] | np.ndarray, columns: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """The rows at positions ``rows`` (in the order given), reading only the row groups
        that hold them; the index is each row's position."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.num_rows):
            raise AuditError(f"{self.path}: row out of range (0..{self.num_rows - 1})")
        cols = self._known(columns)
        groups = np.unique(np.searchsorted(self._starts, rows, side="right") - 1)
        try:
            arrow = (
                self._file.read_row_groups(groups.tolist(), columns=cols)
                if groups.size
                else self._schema.empty_table().select(cols or self.columns)
            )
        except Exception as exc:
            raise self._damaged(exc) from None
        # Position of each requested row inside the concatenation of the groups read.
        offsets = np.zeros(self.num_row_groups, np.int64)
        sizes = np.diff(self._starts)[groups]
        offsets[groups] = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if groups.size else []
        group_of = np.searchsorted(self._starts, rows, side="right") - 1
        local = offsets[group_of] + (rows - self._starts[group_of])
        frame = arrow.take(pa.array(local)).to_pandas()
        frame.index = pd.Index(rows)
        return frame
