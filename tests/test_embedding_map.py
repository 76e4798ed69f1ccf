"""The embedding map: PCA against an independent SVD, UMAP's seed, stored once, the audit's
stage and ``--no-map``, selection read-back as a pure function, and the page (AppTest)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from audits.embedding_map import (
    add_map_to_run,
    compute_map,
    resolve_method,
    umap_available,
    write_map,
)
from audits.errors import AuditError
from audits.runs import open_run
from dashboard.embedding_map_view import (
    CLASS,
    CORRECT,
    LEGEND_MAX,
    SUSPECT,
    colour_groups,
    colour_options,
    map_figure,
    rows_in_box,
    selected_rows,
    selection_line,
    trace_rows,
)
from fixtures.synthetic_map import clustered_embeddings, write_map_run

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "streamlit_app.py")


# ---------------------------------------------------------------- the map's numbers


def _svd_pcs(x: np.ndarray) -> np.ndarray:
    """The first two principal component scores by numpy's SVD (not sklearn)."""
    centred = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return u[:, :2] * s[:2]


def test_pca_map_equals_an_independent_svd() -> None:
    labels = np.repeat(np.arange(5), 60)
    x = clustered_embeddings(labels, dim=32, seed=3)
    emap = compute_map(x, "pca")
    expected = _svd_pcs(x.astype(np.float64))
    assert emap.method == "pca" and emap.xy.dtype == np.float32 and emap.xy.shape == (300, 2)
    for k in range(2):  # a component's sign is arbitrary: align it first
        sign = np.sign(np.dot(emap.xy[:, k], expected[:, k]))
        np.testing.assert_allclose(emap.xy[:, k] * sign, expected[:, k], rtol=1e-3, atol=1e-3)
    total = np.linalg.svd(x - x.astype(np.float64).mean(0), compute_uv=False) ** 2
    ratios = emap.params["explained_variance_ratio"]
    np.testing.assert_allclose(ratios, total[:2] / total.sum(), atol=1e-4)


def test_pca_map_of_a_stored_run_matches_its_embeddings(tmp_path: Path) -> None:
    run = open_run(write_map_run(tmp_path / "s", 4, 200))
    points = run.embedding_map.points
    assert list(points.columns) == ["row", "x", "y"]
    assert points["x"].dtype == np.float32 and points["row"].tolist() == list(range(200))
    expected = _svd_pcs(np.asarray(run.embeddings, dtype=np.float64))
    got = points[["x", "y"]].to_numpy(dtype=np.float64)
    assert abs(np.corrcoef(got[:, 0], expected[:, 0])[0, 1]) > 0.9999
    assert run.audit.embedding_map.method == "pca" and run.audit.embedding_map.n == 200


@pytest.mark.skipif(not umap_available(), reason="umap-learn not installed")
def test_umap_is_deterministic_with_its_seed() -> None:
    labels = np.repeat(np.arange(3), 25)
    x = clustered_embeddings(labels, dim=8, seed=1)
    a, b = compute_map(x, "umap", seed=7), compute_map(x, "umap", seed=7)
    np.testing.assert_array_equal(a.xy, b.xy)
    assert a.params["seed"] == 7 and a.params["n_neighbors"] == 15
    # The clusters stay apart: each class's points are nearer their own centre than any other.
    centres = np.stack([a.xy[labels == k].mean(0) for k in range(3)])
    nearest = np.argmin(((a.xy[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > 0.95


def test_bad_embeddings_are_one_clear_error() -> None:
    with pytest.raises(AuditError, match="at least 3 images"):
        compute_map(np.zeros((2, 4), np.float16), "pca")
    bad = np.ones((10, 4), np.float16)
    bad[4, 1] = np.inf
    with pytest.raises(AuditError, match="1 rows hold NaN or Inf .rows 4"):
        compute_map(bad, "pca")
    with pytest.raises(AuditError, match="unknown"):
        resolve_method("tsne")


# ---------------------------------------------------------------- stored once


def test_added_once_and_never_recomputed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = write_map_run(tmp_path / "s", 4, 120, method=None)
    assert open_run(run_dir).embedding_map is None
    calls = []
    real = compute_map

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("audits.embedding_map.compute_map", counting)
    first = add_map_to_run(run_dir, "pca")
    stamp = (run_dir / "embedding-map" / "map.parquet").stat().st_mtime_ns
    second = add_map_to_run(run_dir, "pca")
    assert calls == [1] and first == second and first["n"] == 120
    assert (run_dir / "embedding-map" / "map.parquet").stat().st_mtime_ns == stamp
    assert open_run(run_dir).embedding_map.record.method == "pca"


def test_a_second_method_goes_beside_the_first(tmp_path: Path) -> None:
    run_dir = write_map_run(tmp_path / "s", 4, 120, method="pca")
    maps = open_run(run_dir).embedding_maps
    assert list(maps) == ["pca"] and maps["pca"].path.name == "embedding-map"
    # write a fake second layout as add_map_to_run would (UMAP itself is slow to compile)
    emap = compute_map(open_run(run_dir).embeddings, "pca")
    folder = run_dir / "embedding-map-umap"
    record = write_map(folder, emap)
    record["method"] = "umap"
    (folder / "map.json").write_text(pd.Series(record).to_json())
    run = open_run(run_dir)
    assert list(run.embedding_maps) == ["pca", "umap"] and run.embedding_map.record.method == "umap"


# ---------------------------------------------------------------- the audit's stage


def test_audit_stores_a_map_and_no_map_skips_it(tmp_path: Path) -> None:
    from auditapp.pipeline.audit import run_audit
    from tests.builders import make_manifest, make_model_dir

    classes = ["a", "b", "c"]
    model = make_model_dir(tmp_path / "m", classes=classes, seed=0)
    data = make_manifest(tmp_path / "d", classes, per_class=6, seed=1)
    store = tmp_path / "store"
    with_map = open_run(run_audit(model, data, store=store, skip=("explain", "integrity")))
    rec = with_map.audit.embedding_map
    assert rec.method == "pca" and rec.n == 18 and rec.file == "embedding-map/map.parquet"
    assert len(with_map.embedding_map.points) == 18
    skip = ("explain", "integrity", "embedding_map")
    without = open_run(run_audit(model, data, store=store, skip=skip))
    assert without.audit.embedding_map is None and without.embedding_map is None


def test_run_command_has_no_map_and_map_options() -> None:
    import argparse

    from auditapp.commands import run_cmd

    parser = argparse.ArgumentParser()
    run_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["run", "--model", "m", "--data", "d", "--no-map", "--map", "umap"])
    assert args.no_map and args.map_method == "umap"
    assert parser.parse_args(["run", "--model", "m", "--data", "d"]).map_method == "pca"


# ---------------------------------------------------------------- the page's pure parts


def _table(n: int = 12) -> pd.DataFrame:
    labels = np.arange(n) % 3
    preds = np.where(np.arange(n) % 4 == 0, (labels + 1) % 3, labels)
    names = np.array(["a<b>", "b", "c"], dtype=object)
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "label": names[labels],
            "label_idx": labels,
            "pred": names[preds],
            "pred_idx": preds,
            "correct": preds == labels,
            "path": [f"{i}.png" for i in range(n)],
        }
    )


def _points(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame(
        {"row": np.arange(n), "x": np.arange(n, dtype=np.float32), "y": np.zeros(n, np.float32)}
    )


def test_colour_groups_and_traces() -> None:
    table = _table()
    groups = colour_groups(table, CLASS, ["a<b>", "b", "c"])
    assert groups.names == ["a<b>", "b", "c"] and groups.codes.tolist() == [0, 1, 2] * 4
    traces = trace_rows(_points(), groups)
    assert [t.tolist() for t in traces] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    correct = colour_groups(table, CORRECT, [])
    assert correct.codes.tolist() == [1 if i % 4 == 0 else 0 for i in range(12)]
    suspect = colour_groups(table, SUSPECT, [], suspects={2, 5})
    assert np.flatnonzero(suspect.codes).tolist() == [2, 5]
    slices = {"source": pd.Series(["x", "y"] * 6)}
    by_slice = colour_groups(table, "Slice: source", [], slices=slices)
    assert by_slice.names == ["x", "y"] and by_slice.codes.tolist() == [0, 1] * 6
    assert colour_options(["source"], has_suspects=False) == [CLASS, CORRECT, "Slice: source"]


def test_figure_escapes_names_hides_a_long_legend_and_sends_no_hover_text() -> None:
    table = _table()
    fig = map_figure(_points(), colour_groups(table, CLASS, ["a<b>", "b", "c"]))
    assert [t.type for t in fig.data] == ["scattergl"] * 3
    assert fig.data[0].name == "a&lt;b&gt;" and fig.data[0].showlegend
    assert fig.data[0].text is None and list(fig.data[0].customdata) == [0, 3, 6, 9]
    assert fig.layout.dragmode == "select"
    n = LEGEND_MAX + 5
    many = pd.DataFrame({"row": np.arange(n), "label": [f"c{i}" for i in range(n)],
                         "label_idx": np.arange(n), "correct": True})  # fmt: skip
    big = map_figure(_points(n), colour_groups(many, CLASS, [f"c{i}" for i in range(n)]))
    assert len(big.data) == n and not any(t.showlegend for t in big.data)


def test_selected_rows_reads_curve_and_point_index() -> None:
    traces = [np.array([0, 3, 6, 9]), np.array([1, 4, 7, 10]), np.array([2, 5, 8, 11])]
    event = {
        "selection": {
            "points": [
                {"curve_number": 0, "point_index": 2},
                {"curve_number": 2, "point_index": 0},
                {"curve_number": 2, "point_index": 0},  # duplicates collapse
                {"curve_number": 7, "point_index": 0},  # stale: no such trace
                {"curve_number": 1, "point_index": 99},  # stale: no such point
            ],
            "box": [{"x": [0, 1], "y": [0, 1]}],
        }
    }
    assert selected_rows(event, traces).tolist() == [2, 6]
    assert selected_rows({"selection": {"points": []}}, traces) is None
    empty_box = {"selection": {"points": [], "box": [{"x": [0, 1], "y": [0, 1]}]}}
    assert selected_rows(empty_box, traces).tolist() == []
    assert selected_rows(None, traces) is None


def test_rows_in_box_and_selection_line() -> None:
    points = _points()
    assert rows_in_box(points, [2.5, 5.2], [-1, 1]).tolist() == [3, 4, 5]
    line = selection_line(_table(), np.array([0, 1, 4]))
    assert line == "**3** images selected · **2** wrong"


# ---------------------------------------------------------------- the page, headless


def _page(store: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("AUDIT_STORE", str(store))
    at = AppTest.from_file(APP, default_timeout=120).run()
    return at.switch_page("dashboard/pages/embeddings.py").run()


def test_page_shows_the_stored_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = write_map_run(tmp_path / "store", 5, 150)
    stamp = (run_dir / "embedding-map" / "map.parquet").stat().st_mtime_ns
    at = _page(tmp_path / "store", monkeypatch)
    assert not at.exception and not at.error, [e.value for e in at.exception or at.error]
    assert at.title[0].value == "Embedding map"
    assert "All images · none selected" in "\n".join(m.value for m in at.markdown)
    assert at.selectbox(key="map_colour").label == "Colour by"
    at.selectbox(key="map_colour").set_value(CORRECT).run()
    assert not at.exception and not at.error
    assert (run_dir / "embedding-map" / "map.parquet").stat().st_mtime_ns == stamp


def test_page_computes_a_missing_map_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = write_map_run(tmp_path / "store", 4, 90, method=None)
    at = _page(tmp_path / "store", monkeypatch)
    assert not at.exception
    assert any("no embedding map yet" in i.value for i in at.info)
    at.button(key="map_compute_pca").click().run()
    assert not at.exception and not at.error
    stamp = (run_dir / "embedding-map" / "map.parquet").stat().st_mtime_ns
    again = _page(tmp_path / "store", monkeypatch)  # a new session: no button, no recompute
    assert not again.exception and not any(b.key == "map_compute_pca" for b in again.button)
    assert (run_dir / "embedding-map" / "map.parquet").stat().st_mtime_ns == stamp
    assert os.listdir(run_dir).count("embedding-map") == 1
