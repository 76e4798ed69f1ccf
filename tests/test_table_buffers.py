"""Per-row data an audit holds in buffers, not Python objects (issue 16: driver memory):
file hashes as ``Digests``, top-k lists as Arrow list columns. Each form must read, digest,
score and store exactly as the object form it replaces."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import audits.hashing as hashing
import audits.runs.tables as tables
from audits.arrow_columns import list_column, list_matrix, string_column
from audits.datasets import ImageSet, fingerprint, fingerprint_rows
from audits.hashing import Digests
from audits.metrics import audit_metrics
from tests.test_metrics import class_names, random_table, sklearn_top_k


def hexes(n: int, missing: tuple[int, ...] = ()) -> list[str | None]:
    return [None if i in missing else hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


def test_digests_read_as_the_hex_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "_ROWS_PER_HEX", 3)  # iterate across several hex chunks
    values = hexes(10, missing=(0, 4, 9))
    digests = Digests.from_hex(values)
    assert list(digests) == values and digests == values and len(digests) == 10
    assert [digests[i] for i in range(10)] == values and digests[2:7] == values[2:7]
    assert digests == Digests.from_hex(values) and digests != hexes(10)
    assert digests.raw.nbytes == 320  # 32 bytes a row
    assert repr(digests) == "Digests(10 rows, 7 hashed)"


def test_digests_set_by_batch_equals_set_by_row() -> None:
    values = hexes(8, missing=(2, 5))
    by_row = Digests(8)
    for i, value in enumerate(values):
        by_row.set(i, value)
    by_batch = Digests(8)
    by_batch.set_many(np.array([7, 6, 5, 4]), [values[7], values[6], "", values[4]])
    by_batch.set_many([0, 1, 2, 3], values[:4])
    assert by_batch == by_row == values
    by_batch.set_many([3], [None])  # a row read again as unreadable is unreadable
    assert by_batch[3] is None and by_batch[4] == values[4]
    by_batch.set_many([], [])


def test_digests_to_arrow_with_nulls_and_rows() -> None:
    values = hexes(9, missing=(1, 8))
    digests = Digests.from_hex(values)
    assert digests.to_arrow().to_pylist() == values
    rows = np.array([8, 0, 1, 5, 5])
    column = digests.to_arrow(rows)
    assert column.to_pylist() == [values[i] for i in rows]
    assert column.type == pa.string() and column.null_count == 2
    column.validate(full=True)
    assert Digests.from_hex(hexes(3)).to_arrow().null_count == 0


def test_list_column_round_trip_and_other_forms() -> None:
    m = np.arange(24, dtype=np.int64).reshape(8, 3)
    column = list_column(m)
    assert str(column.dtype) == "list<item: int64>[pyarrow]"
    assert (list_matrix(column) == m).all()
    assert (list_matrix(column.iloc[2:5].reset_index(drop=True)) == m[2:5]).all()
    assert list_matrix(pd.Series(list(m))) is None  # object form: the caller's own path
    ragged = pd.Series(pd.arrays.ArrowExtensionArray(pa.array([[1, 2], [3]])))
    assert list_matrix(ragged) is None
    with_null = pd.Series(pd.arrays.ArrowExtensionArray(pa.array([[1, 2], None])))
    assert list_matrix(with_null) is None


def test_list_column_of_zero_width_keeps_its_rows() -> None:
    column = list_column(np.zeros((4, 0), dtype=np.int64))
    assert len(column) == 4 and list_matrix(column).shape == (4, 0)


def test_digests_to_arrow_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "_ROWS_PER_CHUNK", 4)  # offsets stay int32 however many rows
    values = hexes(10, missing=(5,))
    column = Digests.from_hex(values).to_arrow()
    assert column.num_chunks == 3 and column.to_pylist() == values
    with pytest.raises(ValueError, match="64 hex digits"):
        Digests(2).set_many([0, 1], [values[0], values[1][:32]])


def test_metrics_from_the_arrow_topk_equal_the_object_form() -> None:
    table, probs = random_table(3, 1000, 7, (2,), (5,), 0.2)
    arrow = table.assign(topk_idx=list_column(np.stack(table["topk_idx"].to_list())))
    classes = class_names(7)
    a, b = audit_metrics(arrow, classes), audit_metrics(table, classes)
    assert a == b
    mask = table["label_idx"].to_numpy() >= 0
    y = table["label_idx"].to_numpy()[mask]
    for k in (1, 3, 5):
        assert a["top_k_accuracy"][str(k)] == pytest.approx(sklearn_top_k(y, probs[mask], k))


@pytest.mark.parametrize("n", [0, 7, 1_234])
def test_stored_file_is_byte_identical_to_the_object_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 500)
    rng = np.random.default_rng(1)
    values = hexes(n, missing=(3,))
    top_i = rng.integers(0, 9, (n, 5))
    top_p = rng.random((n, 5)).astype(np.float32)
    table = pd.DataFrame(
        {
            "row": np.arange(n),
            "path": [f"img/{i}.png" for i in range(n)],
            "note": [None if i < 600 else "late" for i in range(n)],  # null in the first group
            "topk_idx": list_column(top_i) if n else [],
            "topk_prob": list_column(top_p) if n else [],
            "file_sha256": string_column(Digests.from_hex(values).to_arrow()) if n else [],
        }
    )
    tables.write_predictions(table, tmp_path / "a.parquet")
    # The object form, as the table was built before: a numpy array or str per row.
    objects = table.assign(
        topk_idx=list(top_i) if n else [],
        topk_prob=list(top_p) if n else [],
        file_sha256=values if n else [],
    )
    schema = pa.Schema.from_pandas(objects, preserve_index=False)
    objects.to_parquet(
        tmp_path / "b.parquet",
        index=False,
        row_group_size=500,
        use_dictionary=tables.dictionary_columns(schema),
    )
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    back = pd.read_parquet(tmp_path / "a.parquet")  # readers get the form they always had
    if n:
        assert back["topk_idx"].dtype == object and back["file_sha256"].dtype == object
        assert (
            isinstance(back["topk_idx"][0], np.ndarray) and (back["topk_idx"][0] == top_i[0]).all()
        )
        assert back["file_sha256"].tolist() == values
        assert pq.ParquetFile(tmp_path / "a.parquet").metadata.num_row_groups == -(-n // 500)


def test_fingerprint_with_digests_equals_the_row_fingerprint() -> None:
    paths = ["b.png", "a.png", "c.png", "a.png", "d.png"]  # a duplicate path keeps its order
    labels = ["x", None, "y", "z", "x"]
    values = hexes(5, missing=(2,))
    items = pd.DataFrame({"path": paths, "label": labels})
    image_set = ImageSet(source=Path("."), root=Path("."), kind="manifest", items=items)
    expected = fingerprint_rows(zip(paths, values, labels, strict=True))
    assert fingerprint(image_set, values) == expected
    assert fingerprint(image_set, Digests.from_hex(values)) == expected
    with pytest.raises(ValueError, match="4 hashes for 5 rows"):
        fingerprint(image_set, values[:4])


def test_stored_schema_equals_the_whole_table_inference() -> None:
    # One column inferred at a time (object columns by walking their values) gives what
    # pyarrow infers over the whole table, pandas metadata included.
    n = 6
    table = pd.DataFrame(
        {
            "path": [f"img/{i}.png" for i in range(n)],
            "none": [None] * n,
            "late_str": [None, None, None, None, "x", "y"],
            "ints_with_none": [1, None, 3, 4, 5, 6],
            "py_ints": pd.Series([1, 2, 3, 4, 5, 6], dtype=object),
            "floats": np.linspace(0, 1, n, dtype=np.float32),
            "flags": [True, False] * 3,
            "nullable": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
            "category": pd.Categorical(["a", "b"] * 3),
            "when": pd.date_range("2026-01-01", periods=n, tz="UTC"),
            "blob": [b"\x00\x01"] * n,
        }
    )
    expected = pa.Schema.from_pandas(table, preserve_index=False)
    assert tables.stored_schema(table).equals(expected, check_metadata=True)


def _filled_outputs(n: int, order: np.ndarray, classes: list[str]) -> tuple:
    """``Outputs`` fed the rows ``order`` (data-set positions, in reading order) in batches of
    7, as an engine would; rows not in ``order`` were unreadable."""
    import torch

    from audits.inference import ImageBatch, Outputs, label_indices
    from audits.model_card import ModelCard

    card = ModelCard(
        dir=Path("."), name="m", version="1", architecture="x", weights=Path("w"),
        classes=classes, size=(8, 8), channels=3, mean=[0.0] * 3, std=[1.0] * 3,
    )  # fmt: skip
    rng = np.random.default_rng(3)
    labels = [None if i % 11 == 4 else classes[i % len(classes)] for i in range(n)]
    items = pd.DataFrame(
        {
            "path": [f"img/{i:04d}.png" for i in range(n)],
            "label": labels,
            "source": ["fan" if i % 3 else None for i in range(n)],  # metadata, with nulls
            "score": rng.random(n),
        }
    )
    outputs = Outputs(card, label_indices(items["label"], classes), None)
    for start in range(0, len(order), 7):
        index = order[start : start + 7]
        batch = ImageBatch(
            images=torch.empty(0, dtype=torch.uint8),
            index=index,
            width=index + 10,
            height=index + 20,
        )
        logits = torch.from_numpy(rng.normal(size=(len(index), len(classes))).astype(np.float32))
        outputs.add(batch, logits, torch.zeros(len(index), 3))
    digests = Digests.from_hex(hexes(n, missing=tuple(set(range(n)) - set(order.tolist()))))
    return outputs, items, card, digests


def _object_table(outputs, items: pd.DataFrame, card, hashes: list) -> pd.DataFrame:
    """The predictions table as it was built before ``PredictionRows`` (whole, per row)."""
    rows = outputs.order[: outputs.filled]
    classes = np.asarray(card.classes, dtype=object)
    meta = items.iloc[rows].reset_index(drop=True)
    p_idx, l_idx = outputs.pred_idx[rows], outputs.label_idx[rows]
    return pd.DataFrame(
        {
            "row": np.arange(len(rows), dtype=np.int64),
            "path": meta["path"].to_numpy(),
            "label": meta["label"].to_numpy(),
            "label_idx": l_idx,
            "pred": classes[p_idx],
            "pred_idx": p_idx,
            "confidence": outputs.confidence[rows],
            "loss": outputs.loss[rows],
            "correct": (p_idx == l_idx) & (l_idx >= 0),
            "topk_idx": list(outputs.topk_idx[rows]),
            "topk_prob": list(outputs.topk_prob[rows]),
            "width": outputs.width[rows],
            "height": outputs.height[rows],
            "file_sha256": [hashes[i] for i in rows],
            "source": meta["source"].to_numpy(),
            "score": meta["score"].to_numpy(),
        }
    )


@pytest.mark.parametrize("case", ["in_place", "shuffled_with_gaps"])
def test_prediction_rows_build_store_and_score_as_the_whole_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 50)
    n, classes = 230, class_names(6)
    order = np.arange(n)
    if case == "shuffled_with_gaps":  # Ray's order, and unreadable rows left out
        order = np.random.default_rng(0).permutation(n)[: n - 9]
    outputs, items, card, digests = _filled_outputs(n, order, classes)
    rows = outputs.rows(items, card, digests)
    assert rows.in_place == (case == "in_place") and len(rows) == len(order)
    expected = _object_table(outputs, items, card, list(digests))
    # Any slice, and the whole table, equal the object form read back as objects.
    for start, stop in [(0, None), (0, 50), (50, 100), (200, 400), (len(order), None)]:
        part = rows.frame(start, stop)
        want = expected.iloc[start:stop].reset_index(drop=True)
        assert list(part.columns) == list(want.columns)
        for column in want.columns:
            got = part[column].tolist()
            if column.startswith("topk"):
                got = [list(v) for v in got]
                assert got == [list(v) for v in want[column]], column
            else:  # NaN losses (unlabelled rows) compare equal here
                assert pd.Series(got, dtype=object).equals(
                    pd.Series(want[column].tolist(), dtype=object)
                ), column
    # Stored: the same bytes as the whole object-form table, in groups of 50.
    tables.write_predictions(rows, tmp_path / "rows.parquet")
    tables.write_predictions(expected, tmp_path / "whole.parquet")
    assert (tmp_path / "rows.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "rows.parquet").metadata.num_row_groups == -(-len(order) // 50)
    # Scored from four columns: the metrics of the whole table.
    assert audit_metrics(rows.metric_table(), classes) == audit_metrics(expected, classes)
    assert rows.n_labelled() == int((expected["label_idx"] >= 0).sum())
