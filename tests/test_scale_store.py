"""A large run read lazily (issue 16 item 4): row groups on disk, column-projected, filtered
and row-indexed reads equal to a full read, a streamed CSV equal to the whole-table one, and
pages and exports that never load the whole table or the probabilities.

The 1,000,000-row timings are in bench/scale.py; here a 200,001-row run (streamed by the
synthetic writer, four row groups) and small tables with tiny row groups keep the suite fast.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

import audits.runs.tables as tables
from audits.errors import AuditError
from audits.runs import StoredRun, open_run
from fixtures import synthetic_store
from fixtures.synthetic_store import synthetic_table, write_synthetic_run

REPO = Path(__file__).resolve().parent.parent
BIG_ROWS = 200_001  # above IN_MEMORY_ROWS: streamed, 3 full row groups and a short one


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_run(tmp_path_factory.mktemp("scale"), n_classes=20, n_rows=BIG_ROWS)


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> int:
    """Row groups of 500 rows, so a 2,000-row table has four."""
    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 500)
    return 500


def test_large_run_is_written_in_row_groups(big: Path) -> None:
    meta = pq.ParquetFile(big / "predictions.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [65_536, 65_536, 65_536, BIG_ROWS - 3 * 65_536]
    run = open_run(big)
    assert run.predictions.num_rows == BIG_ROWS == run.audit.dataset.n_images
    assert run.probabilities.shape == (BIG_ROWS, 20) and run.embeddings.shape == (BIG_ROWS, 64)
    assert run.audit.metrics.n_labelled == BIG_ROWS


def test_lazy_reads_equal_the_full_read(big: Path) -> None:
    run = open_run(big)
    full = run.table
    cols = ["row", "label", "pred", "confidence", "source"]
    pd.testing.assert_frame_equal(run.table_columns(cols), full[cols])
    wrong = run.rows([("correct", "=", False)])
    pd.testing.assert_frame_equal(wrong, full[~full["correct"]])
    cell = run.rows([("label", "=", "variant-003"), ("pred", "=", "variant-007")], ["row", "path"])
    expected = full.loc[(full["label"] == "variant-003") & (full["pred"] == "variant-007")]
    pd.testing.assert_frame_equal(cell, expected[["row", "path"]])
    picked = [BIG_ROWS - 1, 7, 131_072, 65_535, 65_536, 7]  # across groups, unordered, repeated
    pd.testing.assert_frame_equal(run.take(picked), full.iloc[picked])
    assert run.take([], ["row"]).empty
    with pytest.raises(AuditError, match="out of range"):
        run.take([BIG_ROWS])
    with pytest.raises(AuditError, match="no column nope"):
        run.rows([("nope", "=", 1)])


def test_probability_rows_come_from_the_memory_map(big: Path) -> None:
    run = open_run(big)
    assert isinstance(run.probabilities, np.memmap)
    assert run.probabilities.flags.writeable is False
    rows = [BIG_ROWS - 1, 3, 100_000]
    got = run.probability_rows(rows)
    assert not isinstance(got, np.memmap) and got.shape == (3, 20)
    whole = np.load(big / "probabilities.npy")
    np.testing.assert_array_equal(got, whole[rows])
    # The stored table agrees with the stored probabilities (the streamed writer kept order).
    table = run.take(rows, ["pred_idx", "confidence"])
    assert (whole[rows].argmax(axis=1) == table["pred_idx"].to_numpy()).all()


def _nullable_table(n: int) -> pd.DataFrame:
    """A predictions-like table whose int and bool columns have nulls in one group only."""
    table, _, _ = synthetic_table(6, n, seed=4)
    roi = pd.array(np.arange(n) % 97, dtype="Int64")
    roi[n - 3] = pd.NA  # only the last group has a null: the others must still read as float
    flag = pd.array(np.arange(n) % 3 == 0, dtype="boolean")
    flag[1] = pd.NA
    return table.assign(
        roi_x0=roi, tagged=flag, note=["=SUM(A1)" if i % 5 else None for i in range(n)]
    )


@pytest.mark.parametrize("pandas_metadata", [True, False])
def test_chunks_keep_the_full_reads_dtypes(
    tmp_path: Path, small_groups: int, pandas_metadata: bool
) -> None:
    file = tmp_path / "p.parquet"
    tables.write_predictions(_nullable_table(2_000), file)
    if not pandas_metadata:  # a file written by another tool: nulls make int float64
        pq.write_table(pq.read_table(file).replace_schema_metadata(None), file, row_group_size=500)
    lazy = tables.LazyTable(file)
    assert lazy.num_row_groups == 4
    chunks = list(lazy.chunks())
    assert [len(c) for c in chunks] == [500] * 4
    full = pd.read_parquet(file)
    pd.testing.assert_frame_equal(pd.concat(chunks), full)
    assert chunks[0]["roi_x0"].dtype == full["roi_x0"].dtype
    assert (full["roi_x0"].dtype == np.float64) != pandas_metadata


def test_streamed_csv_equals_the_whole_table_csv(tmp_path: Path, small_groups: int) -> None:
    from reports.csv_export import predictions_frame, write_predictions

    table, probs, _ = synthetic_table(6, 2_000, seed=4)
    table = _nullable_table(2_000)
    folder = write_synthetic_run(tmp_path, 6, 2_000, table=table, probs=probs)
    run = open_run(folder)
    assert run.predictions.num_row_groups == 4
    streamed = write_predictions(run, tmp_path / "streamed.csv").read_bytes()
    whole = tmp_path / "whole.csv"
    predictions_frame(pd.read_parquet(folder / "predictions.parquet")).to_csv(
        whole, index=False, lineterminator="\n", encoding="utf-8"
    )
    assert streamed == whole.read_bytes()
    assert b"'=SUM(A1)" in streamed  # the chunks are made spreadsheet-safe too


def test_small_runs_are_unchanged(tmp_path: Path) -> None:
    # synthetic_table below IN_MEMORY_ROWS draws exactly as before the chunked generator.
    table, probs, _ = synthetic_table(7, 300, 3)
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(table.drop(columns=["topk_idx", "topk_prob"])).values)
    h.update(probs.tobytes())
    assert h.hexdigest() == "a854f8715b4b5201fb00dfca0f5edd70c04951c8a479c3a9eacd9e8e6f13ed9d"
    # One row group: the file is byte for byte what to_parquet writes with the same encodings.
    tables.write_predictions(table, tmp_path / "a.parquet")
    schema = pa.Schema.from_pandas(table, preserve_index=False)
    table.to_parquet(
        tmp_path / "b.parquet", index=False, use_dictionary=tables.dictionary_columns(schema)
    )
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_chunked_synthetic_table_is_reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic_store, "IN_MEMORY_ROWS", 100)
    a, pa_, _ = synthetic_table(5, 250, seed=2)
    b, pb, _ = synthetic_table(5, 250, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert (pa_ == pb).all() and a["row"].tolist() == list(range(250))
    assert a["path"].is_unique and a["file_sha256"].is_unique


@pytest.fixture
def whole_reads_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any read of the whole predictions table or a whole stored array."""

    def forbidden(name: str) -> property:
        def get(self: StoredRun) -> None:
            raise AssertionError(f"{self.path.name}: whole {name} read")

        return property(get)

    for name in ("table", "probabilities", "embeddings"):
        monkeypatch.setattr(StoredRun, name, forbidden(name))


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_exports_never_read_whole_tables(
    big: Path, tmp_path: Path, fmt: str, whole_reads_forbidden: None
) -> None:
    from reports.export import export_run

    folder = export_run(big, fmt, tmp_path / fmt)
    if fmt == "csv":
        (csv,) = folder.glob("*-predictions.csv")
        assert csv.read_text(encoding="utf-8").count("\n") == BIG_ROWS + 1


@pytest.mark.parametrize("page", ["overview", "classes", "confusion", "failures", "integrity"])
def test_pages_never_read_whole_tables(
    big: Path, page: str, monkeypatch: pytest.MonkeyPatch, whole_reads_forbidden: None
) -> None:
    monkeypatch.setenv("AUDIT_STORE", str(big.parent))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=300).run()
    at = at.switch_page(f"dashboard/pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(f'data-page="{page}"' in str(m.value) for m in at.markdown)


def test_large_confidence_histogram_is_sent_binned() -> None:
    from reports.present import charts

    right = np.r_[np.full(45_000, 0.01), np.full(15_000, 0.99)]
    fig = charts.confidence_histogram(right, [0.3, 0.6])
    bars, raw = fig.data
    assert (bars.type, raw.type) == ("bar", "histogram")  # few wrong values: plotly bins them
    assert len(bars.x) == 40 and bars.x[0] == 0.0125 and bars.x[-1] == 0.9875
    assert bars.y[0] == 75.0 and bars.y[-1] == 25.0 and sum(bars.y) == 100.0
    assert len(fig.to_json()) < 20_000  # not 60,000 values shipped to the browser
