"""Comparison and release gate (audits.compare) on built predictions tables: no model needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditapp.cli import main as cli_main
from audits.compare import (
    Thresholds,
    align_runs,
    compare_runs,
    decide,
    load_class_map,
    paired_statistics,
    save_comparison,
)
from audits.errors import AuditError
from audits.fsio import write_json
from audits.speed import SpeedResult
from audits.store import load_run

CLASSES = ["carrera", "targa", "turbo"]
FINGERPRINT = "f" * 64
DATA_RUNS = Path(__file__).parent / "data" / "runs"


def fake_run(
    root: Path,
    version: str,
    correct: dict[str, np.ndarray],
    classes: list[str] = CLASSES,
    fingerprint: str = FINGERPRINT,
    groups: dict[str, np.ndarray] | None = None,
    drop: set[str] = frozenset(),
) -> Path:
    """An audit run folder whose predictions are right exactly where ``correct`` says."""
    rows = []
    for label, right in correct.items():
        for i, ok in enumerate(right):
            path = f"{label}/{i:04d}.png"
            if path in drop:
                continue
            wrong = next(c for c in classes if c != label)
            pred = label if ok else wrong
            rows.append(
                {
                    "path": path,
                    "label": label,
                    "label_idx": classes.index(label) if label in classes else -1,
                    "pred": pred,
                    "pred_idx": classes.index(pred),
                    "correct": bool(ok),
                    "group": None if groups is None else f"{label}-{groups[label][i]}",
                }
            )
    table = pd.DataFrame(rows)
    table.insert(0, "row", np.arange(len(table), dtype=np.int64))
    run = root / f"run-{version}-{len(list(root.glob('run-*')))}"
    run.mkdir(parents=True)
    table.to_parquet(run / "predictions.parquet", index=False)
    meta = stored_record("audit")
    meta.update(run_id=run.name, created="2026-11-23T16:00:00Z")
    meta["model"] = {
        "name": "car-variants",
        "version": version,
        "weights_sha256": "0" * 64,
        "code_commit": "abc",
        "dir": str(root / "no-model"),
        "classes": classes,
    }
    meta["dataset"] = {
        "fingerprint": fingerprint,
        "n_images": len(table),
        "n_skipped": 0,
        "path": str(root / "heldout" / "manifest.csv"),
        "frozen": True,
    }
    recalls = table.groupby("label")["correct"].mean()
    meta["metrics"].update(
        accuracy=float(table["correct"].mean()), balanced_accuracy=float(recalls.mean())
    )
    for key in ("explain", "integrity"):  # analyses whose files this run does not have
        del meta[key]
    write_json(run / "audit.json", meta)
    return run


def stored_record(kind: str) -> dict:
    """A record of ``kind`` as the demo stored it (tests/data/runs), to change fields of."""
    (run,) = DATA_RUNS.glob(f"*-{kind}-*")
    return json.loads((run / f"{kind}.json").read_text())


def block(*parts: tuple[int, bool]) -> np.ndarray:
    """Concatenate runs of equal outcomes: block((150, True), (50, False))."""
    return np.concatenate([np.full(n, ok, dtype=bool) for n, ok in parts])


@pytest.fixture
def better_but_targa_worse(tmp_path):
    """B gains 20 points on carrera and turbo but loses 15 on targa (200 images per class)."""
    a = {
        "carrera": block((140, True), (60, False)),
        "targa": block((180, True), (20, False)),
        "turbo": block((140, True), (60, False)),
    }
    b = {
        "carrera": block((140, True), (40, True), (20, False)),
        "targa": block((150, True), (30, False), (20, False)),
        "turbo": block((140, True), (40, True), (20, False)),
    }
    return fake_run(tmp_path, "1.0.0", a), fake_run(tmp_path, "1.1.0", b)


@pytest.fixture
def clear_win(tmp_path):
    a = {c: block((150, True), (50, False)) for c in CLASSES}
    b = {c: block((150, True), (30, True), (20, False)) for c in CLASSES}
    return fake_run(tmp_path, "1.0.0", a), fake_run(tmp_path, "1.1.0", b)


def run_compare(a: Path, b: Path, **kw):
    doc, aligned = compare_runs(load_run(a), load_run(b), **kw)
    return doc


# --- statistics wired to the runs ---------------------------------------------------------------


def test_overall_and_per_class_numbers(better_but_targa_worse):
    a, b = better_but_targa_worse
    doc = run_compare(a, b)
    o = doc["overall"]
    assert o["n"] == 600
    assert o["accuracy_a"] == pytest.approx(460 / 600)
    assert o["accuracy_b"] == pytest.approx(510 / 600)
    assert o["diff"] == pytest.approx(50 / 600)
    assert (o["mcnemar"]["b"], o["mcnemar"]["c"]) == (30, 80)
    assert o["ci_low"] < o["diff"] < o["ci_high"]
    ba = o["balanced_accuracy"]
    assert ba["diff"] == pytest.approx((0.2 - 0.15 + 0.2) / 3)
    rows = {r["class"]: r for r in doc["per_class"]}
    assert rows["targa"]["diff"] == pytest.approx(-0.15)
    assert (rows["targa"]["a_only"], rows["targa"]["b_only"]) == (30, 0)
    assert rows["targa"]["p_value"] == pytest.approx(2 * 0.5**30)
    assert rows["targa"]["status"] == "regression"
    assert rows["carrera"]["status"] == "improved"


def test_better_overall_but_worse_on_one_class_holds_naming_the_class(better_but_targa_worse):
    a, b = better_but_targa_worse
    doc = run_compare(a, b)
    assert doc["verdict"] == "hold"
    summary = doc["summary"]
    assert summary.startswith("hold: overall +8.3 points")
    assert " but targa recall -15.0 points (adjusted p < 0.001)" in summary
    assert any(r.startswith("targa recall -15.0 points") for r in doc["reasons"])


def test_identical_runs_show_no_significant_difference(tmp_path):
    outcome = {c: block((120, True), (80, False)) for c in CLASSES}
    a, b = fake_run(tmp_path, "1.0.0", outcome), fake_run(tmp_path, "1.0.0", outcome)
    doc = run_compare(a, b)
    o = doc["overall"]
    assert o["diff"] == 0.0 and o["mcnemar"]["p_value"] == 1.0
    assert o["ci_low"] < 0 < o["ci_high"]
    assert o["balanced_accuracy"]["p_value"] == 1.0
    assert all(r["p_adjusted"] == 1.0 and r["status"] is None for r in doc["per_class"])
    assert doc["verdict"] == "hold"
    assert doc["summary"].startswith("hold: no significant gain: overall +0.0 points")
    assert "agree on every image" in doc["summary"]


def test_clear_win_promotes_and_notes_missing_speed(clear_win):
    doc = run_compare(*clear_win)
    assert doc["verdict"] == "promote"
    assert doc["summary"].startswith("promote: overall +15.0 points (95% CI")
    assert "no class significantly worse" in doc["summary"]
    assert "speed not measured (--no-speed)" in doc["summary"]
    assert doc["speed"] is None


def test_slower_b_beyond_tolerance_holds(clear_win):
    slower = SpeedResult.from_numbers(latency_ms=(2.0, 2.3), throughput=(500.0, 430.0))
    doc = run_compare(*clear_win, speed=slower)
    assert doc["verdict"] == "hold"
    assert "B is slower beyond the 5% tolerance: latency +15%" in doc["summary"]
    assert doc["summary"].startswith("hold: overall +15.0 points")
    # Within tolerance (4% slower) it promotes; a wider tolerance lets the slower one through.
    assert (
        run_compare(*clear_win, speed=SpeedResult.from_numbers((2.0, 2.08), (500.0, 481.0)))[
            "verdict"
        ]
        == "promote"
    )
    loose = Thresholds(tolerance=0.2)
    assert run_compare(*clear_win, speed=slower, thresholds=loose)["verdict"] == "promote"


def test_throughput_alone_can_hold(clear_win):
    doc = run_compare(*clear_win, speed=SpeedResult.from_numbers((2.0, 2.0), (500.0, 470.0)))
    assert doc["verdict"] == "hold" and "throughput -6%" in doc["summary"]


def test_min_gain_is_a_threshold(clear_win):
    doc = run_compare(*clear_win, thresholds=Thresholds(min_gain=16))
    assert doc["verdict"] == "hold"
    assert "below the required gain of 16 points" in doc["summary"]
    assert run_compare(*clear_win, thresholds=Thresholds(min_gain=15))["verdict"] == "promote"


def test_large_drop_that_is_not_significant_after_adjustment(tmp_path):
    # Two classes improve, seven do not move, and "targa" (60 images) loses 7 and gains 0:
    # p=0.016 before adjustment but 0.052 after BH across ten classes. An 11.7-point drop
    # holds under the default 5-point rule, and passes when that rule is off.
    classes = [f"c{i}" for i in range(9)] + ["targa"]
    a = {c: block((150, True), (50, False)) for c in classes[:-1]}
    b = {c: block((150, True), (50, False)) for c in classes[:-1]}
    for c in ("c0", "c1"):
        b[c] = block((150, True), (15, True), (35, False))
    a["targa"] = block((50, True), (10, False))
    b["targa"] = block((43, True), (7, False), (10, False))
    ra, rb = fake_run(tmp_path, "1", a, classes), fake_run(tmp_path, "2", b, classes)
    doc = run_compare(ra, rb)
    targa = next(r for r in doc["per_class"] if r["class"] == "targa")
    assert targa["p_value"] == pytest.approx(2 * 0.5**7)
    assert targa["p_adjusted"] == pytest.approx(2 * 0.5**7 * 10 / 3)
    assert targa["status"] == "large drop"
    assert doc["verdict"] == "hold"
    assert (
        "but targa recall -11.7 points (p = 0.016, adjusted p = 0.052; a drop of 5 points or more)"
        in doc["summary"]
    )
    relaxed = run_compare(ra, rb, thresholds=Thresholds(max_class_drop=None))
    assert relaxed["verdict"] == "promote"
    assert not any("targa" in n for n in relaxed["notes"])  # off means off


def test_large_drop_on_too_few_images_is_a_note_not_a_hold(tmp_path):
    classes = ["carrera", "turbo", "safari"]
    a = {"carrera": block((150, True), (50, False)), "turbo": block((150, True), (50, False)),
         "safari": block((8, True), (2, False))}  # fmt: skip
    b = {"carrera": block((150, True), (30, True), (20, False)), "turbo": block((150, True), (30, True), (20, False)),
         "safari": block((6, True), (2, False), (2, False))}  # fmt: skip
    doc = run_compare(fake_run(tmp_path, "1", a, classes), fake_run(tmp_path, "2", b, classes))
    assert doc["verdict"] == "promote"
    assert any(
        n.startswith("safari recall -20.0 points on 10 images is not significant")
        for n in doc["notes"]
    )


def test_balanced_accuracy_drop_holds_even_when_accuracy_rises(tmp_path):
    # A big class gains 6 points; six small classes each lose 4 of 60 images (p=0.125 each,
    # none significant alone). Accuracy rises significantly, balanced accuracy falls significantly.
    small = [f"s{i}" for i in range(6)]
    classes = ["carrera", *small]
    a = {"carrera": block((900, True), (100, False))} | {c: block((60, True)) for c in small}
    b = {"carrera": block((900, True), (60, True), (40, False))} | {
        c: block((56, True), (4, False)) for c in small
    }
    doc = run_compare(fake_run(tmp_path, "1", a, classes), fake_run(tmp_path, "2", b, classes))
    assert doc["overall"]["diff"] > 0 and doc["overall"]["mcnemar"]["p_value"] < 0.05
    ba = doc["overall"]["balanced_accuracy"]
    assert ba["diff"] == pytest.approx((0.06 - 6 * 4 / 60) / 7)
    assert ba["p_value"] < 0.05
    assert all(r["status"] in (None, "watch", "improved") for r in doc["per_class"])
    assert doc["verdict"] == "hold"
    assert "but balanced accuracy -4.9 points" in doc["summary"]


def test_primary_balanced_accuracy(clear_win):
    doc = run_compare(*clear_win, thresholds=Thresholds(primary="balanced_accuracy"))
    assert doc["verdict"] == "promote"
    assert doc["summary"].startswith("promote: balanced accuracy +15.0 points")


def test_groups_are_used_when_present(tmp_path):
    groups = {c: np.repeat(np.arange(50), 4) for c in CLASSES}
    a = {c: block((150, True), (48, False), (2, False)) for c in CLASSES}
    b = {c: block((150, True), (48, True), (2, False)) for c in CLASSES}
    doc = run_compare(
        fake_run(tmp_path, "1", a, groups=groups), fake_run(tmp_path, "2", b, groups=groups)
    )
    mc = doc["overall"]["mcnemar"]
    assert doc["dataset"]["n_groups"] == 150
    assert mc["p_clustered"] is not None and mc["p_value"] >= mc["p_exact"]
    assert mc["design_effect"] > 1


# --- refusals and alignment ---------------------------------------------------------------------


def test_different_fingerprints_are_refused(tmp_path):
    outcome = {c: block((10, True)) for c in CLASSES}
    a = fake_run(tmp_path, "1", outcome)
    b = fake_run(tmp_path, "2", outcome, fingerprint="e" * 64)
    with pytest.raises(AuditError, match="different held-out sets"):
        align_runs(load_run(a), load_run(b))


def test_different_class_lists_are_refused_then_mapped(tmp_path):
    outcome = {c: block((20, True), (5, False)) for c in ["carrera", "targa"]}
    a = fake_run(tmp_path, "1", outcome, classes=["carrera", "targa", "turbo"])
    b = fake_run(tmp_path, "2", outcome, classes=["carrera", "targa", "turbo-s"])
    with pytest.raises(
        AuditError, match="class lists differ: only RUN_A has turbo; only RUN_B has turbo-s"
    ):
        align_runs(load_run(a), load_run(b))
    aligned = align_runs(load_run(a), load_run(b), {"turbo": "turbo-s"})
    assert aligned.classes == ["carrera", "targa", "turbo-s"]
    with pytest.raises(AuditError, match="not a class of RUN_A"):
        align_runs(load_run(a), load_run(b), {"turbo-s": "turbo"})


def test_rows_skipped_in_one_run_are_left_out_and_said(tmp_path):
    outcome = {c: block((20, True), (5, False)) for c in CLASSES}
    a = fake_run(tmp_path, "1", outcome, drop={"targa/0003.png"})
    b = fake_run(tmp_path, "2", outcome, drop={"turbo/0001.png", "turbo/0002.png"})
    aligned = align_runs(load_run(a), load_run(b))
    assert len(aligned.frame) == 72
    assert (aligned.n_only_a, aligned.n_only_b) == (2, 1)
    assert any("aligned on the 72 images both runs decoded" in n for n in aligned.notes)


def test_comparing_a_drift_run_is_refused(tmp_path):
    a = fake_run(tmp_path, "1", {c: block((5, True)) for c in CLASSES})
    drift = tmp_path / "drift"
    drift.mkdir()
    write_json(drift / "drift.json", stored_record("drift"))
    with pytest.raises(AuditError, match="is a drift run"):
        align_runs(load_run(a), load_run(drift))


def test_a_damaged_audit_record_is_named(tmp_path):
    outcome = {c: block((5, True)) for c in CLASSES}
    a, b = fake_run(tmp_path, "1", outcome), fake_run(tmp_path, "2", outcome)
    meta = json.loads((b / "audit.json").read_text())
    del meta["dataset"]["fingerprint"]
    write_json(b / "audit.json", meta)
    with pytest.raises(
        AuditError, match=r"audit\.json: invalid audit record: dataset\.fingerprint"
    ):
        align_runs(load_run(a), load_run(b))


def test_class_map_files(tmp_path):
    (tmp_path / "m.csv").write_text("old,new\nturbo,turbo-s\n911 gt,gt3\n")
    assert load_class_map(tmp_path / "m.csv") == {"turbo": "turbo-s", "911 gt": "gt3"}
    (tmp_path / "m.toml").write_text('[classes]\nturbo = "turbo-s"\n"911 gt" = "gt3"\n')
    assert load_class_map(tmp_path / "m.toml") == {"turbo": "turbo-s", "911 gt": "gt3"}
    (tmp_path / "flat.toml").write_text('turbo = "turbo-s"\n')
    assert load_class_map(tmp_path / "flat.toml") == {"turbo": "turbo-s"}
    (tmp_path / "bad.csv").write_text("turbo\n")
    with pytest.raises(AuditError, match="row 1 must be 'old,new'"):
        load_class_map(tmp_path / "bad.csv")
    with pytest.raises(AuditError, match="not found"):
        load_class_map(tmp_path / "none.csv")


def test_thresholds_are_validated():
    with pytest.raises(AuditError, match="--alpha"):
        Thresholds(alpha=1.5)
    with pytest.raises(AuditError, match="--tolerance"):
        Thresholds(tolerance=-0.1)
    with pytest.raises(AuditError, match="--primary"):
        Thresholds(primary="f1")


def test_decide_is_a_pure_function_of_the_stored_numbers(better_but_targa_worse):
    a, b = better_but_targa_worse
    stats = paired_statistics(align_runs(load_run(a), load_run(b)))
    v = decide(stats["overall"], stats["per_class"], None, Thresholds())
    assert v.verdict == "hold" and "targa" in v.summary
    # The same numbers with a huge alpha for nothing but the per-class rule: still hold.
    assert (
        decide(stats["overall"], stats["per_class"], None, Thresholds(alpha=0.5)).verdict == "hold"
    )


# --- stored and printed -------------------------------------------------------------------------


def test_comparison_is_stored_as_a_run(better_but_targa_worse, store):
    a, b = better_but_targa_worse
    doc, aligned = compare_runs(load_run(a), load_run(b))
    path = save_comparison(doc, aligned, store)
    run = load_run(path)
    assert run.kind == "comparison"
    assert "-car-variants-1.0.0-vs-1.1.0-comparison-" in run.run_id
    meta = json.loads((path / "comparison.json").read_text())
    assert (
        meta["run_id"] == run.run_id
        and meta["schema_version"] == 1
        and meta["kind"] == "comparison"
    )
    for key in (
        "run_a",
        "run_b",
        "dataset",
        "overall",
        "per_class",
        "speed",
        "thresholds",
        "verdict",
        "reasons",
        "summary",
    ):
        assert key in meta
    assert (
        meta["run_a"]["model"]["version"] == "1.0.0"
        and meta["dataset"]["fingerprint"] == FINGERPRINT
    )
    pairs = pd.read_parquet(path / "pairs.parquet")
    assert len(pairs) == 600 and {
        "path",
        "label",
        "correct_a",
        "correct_b",
        "row_a",
        "row_b",
    } <= set(pairs.columns)


def test_cli_exit_codes_and_last_line(better_but_targa_worse, clear_win, store, capsys):
    a, b = better_but_targa_worse
    assert cli_main(["compare", str(a), str(b), "--no-speed", "--store", str(store)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert (
        out[-1].startswith("hold: overall +8.3 points") and "targa recall -15.0 points" in out[-1]
    )
    assert any("per class recall" in line for line in out)
    assert len(list(store.iterdir())) == 1

    ca, cb = clear_win
    assert cli_main(["compare", str(ca), str(cb), "--no-speed", "--quiet", "--no-save"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("promote: ")


def test_cli_errors_exit_2_with_one_line(tmp_path, capsys):
    outcome = {c: block((10, True)) for c in CLASSES}
    a = fake_run(tmp_path, "1", outcome)
    b = fake_run(tmp_path, "2", outcome, fingerprint="e" * 64)
    assert cli_main(["compare", str(a), str(b), "--no-speed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "error: the runs were made on different held-out sets"
    )

    c = fake_run(tmp_path, "3", outcome, classes=["carrera", "targa", "turbo", "safari"])
    assert cli_main(["compare", str(a), str(c), "--no-speed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only RUN_B has safari" in err[0] and "--class-map" in err[0]

    assert cli_main(["compare", str(a), "nope", "--no-speed", "--store", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err

    assert cli_main(["compare", str(a), str(a), "--no-speed", "--alpha", "2"]) == 2
    assert "--alpha" in capsys.readouterr().err


def test_verdict_line_names_the_worst_classes_and_counts_the_rest(tmp_path):
    classes = [f"v{i}" for i in range(8)]
    a = {c: block((100, True)) for c in classes}
    b = {c: block((100 - 10 - i, True), (10 + i, False)) for i, c in enumerate(classes)}
    doc = run_compare(fake_run(tmp_path, "1", a, classes), fake_run(tmp_path, "2", b, classes))
    assert doc["verdict"] == "hold"
    assert doc["summary"].count(" recall ") == 5
    assert (
        "v7 recall -17.0 points" in doc["summary"] and "and 3 more classes worse" in doc["summary"]
    )
    assert sum(c["check"].startswith("class:") for c in doc["checks"]) == 8
