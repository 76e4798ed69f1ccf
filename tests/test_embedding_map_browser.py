"""The embedding map in a real browser: a box drawn on the WebGL map filters the image grid to
exactly the images inside the box (a small synthetic store with a stored PCA map)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.test_dashboard_browser import (
    assert_no_traceback,
    browser_tab,
    streamlit_server,
    wait_page,
)

pytestmark = pytest.mark.browser
N_ROWS = 300


@pytest.fixture(scope="module")
def map_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures.synthetic_map import write_map_run

    store = tmp_path_factory.mktemp("map-browser") / "store"
    write_map_run(store, n_classes=6, n_rows=N_ROWS)
    return store


@pytest.fixture(scope="module")
def tab(map_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    log = tmp_path_factory.mktemp("map-streamlit") / "server.log"
    with streamlit_server(map_store, log) as url, browser_tab(1440, 1600) as page:
        page.goto(url + "/embeddings")
        wait_page(page, "embedding")
        yield page


def to_pixels(page: object, xs: list[float], ys: list[float]) -> list[list[float]]:
    """Page pixels of data points on the map (plotly's own axis conversions)."""
    return page.evaluate(
        """([xs, ys]) => {
            const gd = document.querySelector('.js-plotly-plot');
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
            return xs.map((x, i) => [r.left + xa.d2p(x), r.top + ya.d2p(ys[i])]);
        }""",
        [xs, ys],
    )


def to_data(page: object, corners: list[list[float]]) -> list[list[float]]:
    """Data coordinates of page pixels on the map."""
    return page.evaluate(
        """(corners) => {
            const gd = document.querySelector('.js-plotly-plot');
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
            return corners.map(([x, y]) => [xa.p2d(x - r.left), ya.p2d(y - r.top)]);
        }""",
        corners,
    )


def test_box_selection_filters_the_grid(tab: object, map_store: Path) -> None:
    from audits.store import list_runs
    from dashboard.embedding_map_view import rows_in_box

    page = tab
    main = page.locator("[data-testid='stMain']")
    assert "All images · none selected" in main.inner_text()
    assert f"of {N_ROWS}" in main.inner_text()
    page.wait_for_selector(".js-plotly-plot .gl-container canvas")  # WebGL, drawn
    run = [r for r in list_runs(map_store) if r.kind == "audit"][0]
    points = run.embedding_map.points.copy()
    points[["x", "y"]] = np.round(points[["x", "y"]].to_numpy(np.float64), 3)
    # A box around the points of the first class's cluster (and whatever else lies there).
    cluster = points[run.table["label_idx"].to_numpy() == 0]
    (px0, py0), (px1, py1) = to_pixels(
        page,
        [float(cluster["x"].min()), float(cluster["x"].max())],
        [float(cluster["y"].max()), float(cluster["y"].min())],
    )
    x0, y0, x1, y1 = px0 - 12, py0 - 12, px1 + 12, py1 + 12
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
    page.wait_for_function("() => document.body.innerText.includes('images selected')")
    wait_page(page, "embedding")
    text = main.inner_text()
    n_selected = int(re.search(r"([\d,]+) images selected", text).group(1).replace(",", ""))

    (dx0, dy0), (dx1, dy1) = to_data(page, [[x0, y0], [x1, y1]])
    expected = rows_in_box(points, [dx0, dx1], [dy0, dy1])
    assert len(cluster) <= len(expected) < N_ROWS
    assert n_selected == len(expected)
    shown = min(24, n_selected)
    assert f"Showing 1–{shown} of {n_selected}" in text
    # the grid's captions are the selected rows, in row order
    rows = [int(r) for r in re.findall(r"· row (\d+)", text)]
    assert rows == expected[:shown].tolist()
    assert_no_traceback(page)
