"""Runs know their neighbours (issue 13, item 5): an older version's audit names the newer
version that was compared with it and the verdict, on the dashboard and in the exports, and
every suggested ``compare`` command puts the older run first."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from audits.related import bundle
from audits.store import list_runs, load_run
from reports.present.neighbours import compare_args, is_older, superseded_sentence

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A synthetic store: version ``6c-prev`` compared with the newer ``6c`` (prev → main)."""
    from fixtures.synthetic_store import write_synthetic_store

    root = tmp_path_factory.mktemp("neighbours") / "store"
    main = write_synthetic_store(root, n_classes=6, n_rows=300)
    runs = list_runs(root)
    prev = next(r for r in runs if r.kind == "audit" and r.path != main)
    comparison = next(r for r in runs if r.kind == "comparison")
    return {"root": root, "main": load_run(main), "prev": prev, "comparison": comparison}


def test_older_run_finds_the_comparison_where_it_is_the_baseline(store: dict) -> None:
    older = bundle(store["prev"])
    assert older.comparison is None  # it is nobody's candidate
    assert older.successor is not None and older.successor.run_id == store["comparison"].run_id
    assert older.newer is not None and older.newer.run_id == store["main"].run_id
    newer = bundle(store["main"])
    assert newer.comparison is not None and newer.comparison.run_id == store["comparison"].run_id
    assert newer.previous is not None and newer.previous.run_id == store["prev"].run_id
    assert newer.successor is None and newer.newer is None


def test_superseded_sentence_names_version_date_and_verdict(store: dict) -> None:
    c = store["comparison"].comparison
    sentence = superseded_sentence(bundle(store["prev"]))
    assert c.verdict == "promote"
    assert sentence == (
        f"Superseded: {c.run_b.model.version} was compared with this version on "
        f"{c.created[:10]} and passed the release gate (promote: better overall beyond "
        "noise, with no class significantly worse)."
    )
    assert superseded_sentence(bundle(store["main"])) is None


def test_export_of_the_older_version_names_the_newer_one(store: dict) -> None:
    from reports.content import build_content
    from reports.tree import KeyValues, Paragraphs

    content = build_content(store["prev"], store["root"])
    version_b = store["comparison"].comparison.run_b.model.version
    assert content.verdict is not None and content.verdict.startswith("Superseded:")
    assert version_b in content.verdict
    assert "Comparison with the previous version" not in [name for name, _ in content.omitted]
    section = next(s for s in content.sections if s.id == "comparison")
    assert section.title == "Comparison with a newer version"
    texts = [t for b in section.blocks if isinstance(b, Paragraphs) for t in b.items]
    assert any(t.startswith("Superseded:") for t in texts)
    versioning = next(s for s in content.sections if s.id == "versioning")
    rows = [
        (r.label, r.value) for b in versioning.blocks if isinstance(b, KeyValues) for r in b.rows
    ]
    assert ("Comparison with a newer version", store["comparison"].run_id) in rows
    assert ("Newer version's audit", store["main"].run_id) in rows


def test_export_of_the_newer_version_is_unchanged(store: dict) -> None:
    from reports.content import build_content

    content = build_content(store["main"], store["root"])
    assert content.verdict is not None and content.verdict.startswith("Release gate against")
    assert "Superseded" not in content.verdict
    section = next(s for s in content.sections if s.id == "comparison")
    assert section.title == "Comparison with the previous version"


@pytest.mark.parametrize(
    ("version", "others", "expected"),
    [
        ("1.0.0", ["1.1.0"], ("RUN", "m@1.1.0")),  # the older run is the baseline
        ("1.1.0", ["1.0.0"], ("m@1.0.0", "RUN")),
        ("1.2.0", ["1.3.0", "1.1.0", "1.0.0"], ("m@1.1.0", "RUN")),  # the nearest older one
        ("1.0.0", ["2.0.0", "1.10.0", "1.9.0"], ("RUN", "m@1.9.0")),  # natural order, nearest
        ("1.0.0", [], None),
    ],
)
def test_compare_command_puts_the_older_run_first(
    version: str, others: list[str], expected: tuple[str, str] | None
) -> None:
    assert compare_args("m", version, "RUN", others) == expected


def test_version_order() -> None:
    assert is_older("1.9.0", "1.10.0") and not is_older("1.10.0", "1.9.0")
    assert is_older("1.0.0", "1.1.0") and not is_older("1.1.0", "1.1.0")


# ---------------------------------------------------------------- dashboard (AppTest)


def _page(root: Path, run_id: str, page: str, monkeypatch: pytest.MonkeyPatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AUDIT_STORE", str(root))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=180)
    at.query_params.update(run=run_id)
    at.run()
    if page != "overview":
        at = at.switch_page(f"dashboard/pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at) -> str:
    kinds = ("markdown", "caption", "code", "info", "warning", "success")
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind))


@pytest.mark.parametrize("page", ["overview", "compare"])
def test_dashboard_older_run_names_its_successor(
    store: dict, page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _page(store["root"], store["prev"].run_id, page, monkeypatch)
    text = _text(at)
    assert superseded_sentence(bundle(store["prev"])) in text
    assert "No comparison" not in text
    if page == "compare":  # the comparison itself is shown, not the empty state
        assert "The checks behind the verdict" in text


def test_dashboard_empty_state_suggests_older_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audits.store import utc_now
    from fixtures.synthetic_store import write_synthetic_run

    now = utc_now()
    old = write_synthetic_run(tmp_path, 4, 120, version="1.0.0", when=now - timedelta(days=1))
    new = write_synthetic_run(tmp_path, 4, 120, version="1.1.0", when=now)
    at = _page(tmp_path, old.name, "compare", monkeypatch)
    commands = [str(e.value) for e in at.code]
    assert any(f"compare {old.name} synthetic-cars@1.1.0" in c for c in commands), commands
    at = _page(tmp_path, new.name, "compare", monkeypatch)
    commands = [str(e.value) for e in at.code]
    assert any(f"compare synthetic-cars@1.0.0 {new.name}" in c for c in commands), commands


def test_json_export_of_the_older_version_carries_the_successor(
    store: dict, tmp_path: Path
) -> None:
    import json

    import jsonschema

    from reports import json_export
    from reports.export import export_run

    folder = export_run(store["prev"], "json", tmp_path / "out", store=store["root"])
    doc = json.loads(next(folder.glob("*-audit.json")).read_text())
    jsonschema.validate(doc, json_export.schema(), cls=jsonschema.Draft202012Validator)
    assert doc["comparison"] is None
    assert doc["successor"]["run_id"] == store["comparison"].run_id
    assert doc["successor"]["verdict"] == "promote"
    assert doc["newer_run_id"] == store["main"].run_id
    assert doc["report"]["verdict"].startswith("Superseded:")
