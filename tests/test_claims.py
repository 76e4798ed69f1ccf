"""audits.claims: every claim form on data whose answer is known, the intervals and tests
against independent computations, claim files, the stored-run entry point and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact, norm
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from auditapp.cli import main as cli_main
from audits.claims import (
    CONTRADICTED,
    NOT_ENOUGH,
    SUPPORTED,
    _comparison,
    _proportion,
    evaluate_claim,
    evaluate_claims,
    load_claims,
    validate_claim,
)
from audits.errors import AuditError

CLASSES = ["carrera", "targa", "turbo"]


def block(
    n: int, correct: int, label: str = "carrera", wrong: str = "targa", **meta: object
) -> pd.DataFrame:
    """n rows of one true class, the first ``correct`` predicted right, the rest as ``wrong``."""
    pred = [label] * correct + [wrong] * (n - correct)
    return pd.DataFrame(
        {"label": [label] * n, "pred": pred, **{k: [v] * n for k, v in meta.items()}}
    )


def table(*blocks: pd.DataFrame) -> pd.DataFrame:
    t = pd.concat(blocks, ignore_index=True)
    t.insert(0, "row", np.arange(len(t)))
    t["label_idx"] = t["label"].map(CLASSES.index).astype(np.int64)
    t["pred_idx"] = t["pred"].map(CLASSES.index).astype(np.int64)
    t["correct"] = t["label_idx"] == t["pred_idx"]
    return t


def check(t: pd.DataFrame, **claim: object) -> dict:
    return evaluate_claim(t, CLASSES, validate_claim(claim))


# -- every claim form, known answers ------------------------------------------------------------


def test_share_at_least_contradicted_like_the_dog_claim() -> None:
    t = table(block(4, 4, dog=1), block(996, 900, dog=0))
    r = check(
        t, text="half the photos have dogs", kind="share_at_least", slice={"dog": True}, value=0.5
    )
    assert r["verdict"] == CONTRADICTED
    assert (r["count"], r["n"]) == (4, 1000)
    assert r["measured"] == pytest.approx(0.004)
    low, high = proportion_confint(4, 1000, method="wilson")
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((low, high))
    assert (
        r["sentence"]
        == "Only 0.4% of images are tagged dog (95% CI 0.2–1.0%, 4 of 1,000), not at least 50%."
    )


def test_share_supported_undecided_and_at_most() -> None:
    t = table(block(300, 250, source="fan"), block(700, 600, source="dealer"))
    assert (
        check(t, kind="share_at_least", slice={"source": "fan"}, value=0.25)["verdict"] == SUPPORTED
    )
    assert (
        check(t, kind="share_at_least", slice={"source": "fan"}, value=0.3)["verdict"] == NOT_ENOUGH
    )
    assert (
        check(t, kind="share_at_most", slice={"source": "fan"}, value=0.35)["verdict"] == SUPPORTED
    )
    assert (
        check(t, kind="share_at_most", slice={"source": "fan"}, value=0.2)["verdict"]
        == CONTRADICTED
    )
    # A share within a population (`of`): among the misclassified images, fans are 50 of 150.
    t["wrong"] = ~t["correct"]
    r = check(t, kind="share_at_least", slice={"source": "fan"}, of={"wrong": True}, value="25%")
    assert (r["count"], r["n"]) == (50, 150)
    assert r["sentence"].startswith("Of images with wrong, 33.3% have source = fan (95% CI")


def test_lower_supported_contradicted_and_undecided() -> None:
    t = table(block(300, 210, source="fan"), block(300, 285, source="dealer"))
    r = check(t, kind="lower", slice={"source": "fan"}, than={"source": "dealer"})
    assert r["verdict"] == SUPPORTED
    assert r["measured"] == pytest.approx(0.70 - 0.95)
    assert r["ci_high"] < 0
    assert r["p_value"] == pytest.approx(
        fisher_exact([[210, 90], [285, 15]], alternative="less").pvalue
    )
    assert r["sentence"].startswith(
        "Accuracy: source = fan 70.0% (95% CI 64.6–74.9%, 300 images) vs source = dealer 95.0%"
    )
    assert (
        "a difference of −25.0 points (95% CI −30.8 to −19.2), one-sided p < 0.001."
        in r["sentence"]
    )
    assert r["sentence"].endswith("It is lower on source = fan, as claimed.")
    # The reverse claim is contradicted: fans are not higher.
    assert (
        check(t, kind="higher", slice={"source": "fan"}, than={"source": "dealer"})["verdict"]
        == CONTRADICTED
    )
    # Equal accuracy on plenty of images: the interval rules out a 2-point drop.
    same = table(block(5000, 4500, source="fan"), block(5000, 4500, source="dealer"))
    r = check(same, kind="lower", slice={"source": "fan"}, than={"source": "dealer"})
    assert r["verdict"] == CONTRADICTED
    assert -0.02 < r["ci_low"] < 0 < r["ci_high"] < 0.02
    # A small gap on few images cannot be told apart from none.
    few = table(block(60, 48, source="fan"), block(60, 51, source="dealer"))
    r = check(few, kind="lower", slice={"source": "fan"}, than={"source": "dealer"})
    assert r["verdict"] == NOT_ENOUGH and not r["too_few"]
    assert r["ci_low"] < -0.02 and r["ci_high"] > 0


def test_lower_than_the_rest_by_default() -> None:
    t = table(block(200, 120, night=True), block(800, 760, night=False))
    r = check(t, kind="lower", slice={"night": True})
    assert r["verdict"] == SUPPORTED
    assert r["sides"]["than"]["n"] == 800 and r["sides"]["than"]["count"] == 760
    assert "not night" not in r["sentence"] and "the other images" in r["sentence"]


def test_tiny_slice_is_not_enough_data_whatever_the_numbers() -> None:
    # 0 of 12 right against 990 of 1000 would look decisive; 12 images are too few to carry it.
    t = table(block(12, 0, source="fan"), block(1000, 990, source="dealer"))
    r = check(t, kind="lower", slice={"source": "fan"}, than={"source": "dealer"})
    assert r["verdict"] == NOT_ENOUGH and r["too_few"]
    assert r["reason"] == "only 12 images in the slice; at least 30 needed"
    assert "Too few images" in r["sentence"]
    r = check(t, kind="at_least", slice={"source": "fan"}, value=0.9)
    assert r["verdict"] == NOT_ENOUGH and r["too_few"] and r["measured"] == 0.0
    # The threshold is per claim.
    assert (
        check(t, kind="at_least", slice={"source": "fan"}, value=0.9, min_support=10)["verdict"]
        == CONTRADICTED
    )
    r = check(t, kind="share_at_least", slice={"source": "x"}, of={"source": "x"}, value=0.5)
    assert r["verdict"] == NOT_ENOUGH and r["n"] == 0
    assert (
        r["sentence"]
        == "No images in scope (images with source = x), so the claim cannot be judged."
    )


def test_at_least_and_at_most_on_accuracy_and_recall() -> None:
    t = table(block(500, 450, "carrera"), block(500, 400, "targa", wrong="carrera"))
    assert check(t, kind="at_least", value=0.8)["verdict"] == SUPPORTED  # 85%
    assert check(t, kind="at_least", value=0.9)["verdict"] == CONTRADICTED
    assert check(t, kind="at_least", value=0.85)["verdict"] == NOT_ENOUGH
    assert check(t, kind="at_most", value=0.9)["verdict"] == SUPPORTED
    r = check(t, kind="at_least", metric="recall:targa", value="85%")
    assert r["verdict"] == CONTRADICTED and (r["count"], r["n"]) == (400, 500)
    assert (
        r["sentence"] == "Targa recall is 80.0% (95% CI 76.3–83.3%, 400 of 500), not at least 85%."
    )
    # Precision of carrera: 450 right of the 450 + 100 predicted carrera.
    r = check(t, kind="at_least", metric="precision:carrera", value=0.9)
    assert (r["count"], r["n"]) == (450, 550)


def test_confused_more_than() -> None:
    t = table(block(200, 130, "targa", wrong="carrera"), block(300, 290, "carrera"))
    assert (
        check(t, kind="confused_more_than", **{"class": "targa", "with": "carrera"}, value=0.2)[
            "verdict"
        ]
        == SUPPORTED
    )
    r = check(t, kind="confused_more_than", **{"class": "targa", "with": "carrera"}, value=0.45)
    assert r["verdict"] == CONTRADICTED and (r["count"], r["n"]) == (70, 200)
    assert r["sentence"].startswith(
        "Targa images are predicted as carrera 35.0% of the time (95% CI"
    )
    assert (
        check(t, kind="confused_more_than", **{"class": "targa", "with": "carrera"}, value=0.35)[
            "verdict"
        ]
        == NOT_ENOUGH
    )
    # The other direction never happens.
    r = check(t, kind="confused_more_than", **{"class": "carrera", "with": "targa"}, value=0.1)
    assert r["verdict"] == CONTRADICTED and r["count"] == 10
    tiny = table(block(8, 0, "targa", wrong="carrera"), block(300, 290, "carrera"))
    assert (
        check(tiny, kind="confused_more_than", **{"class": "targa", "with": "carrera"}, value=0.2)[
            "verdict"
        ]
        == NOT_ENOUGH
    )


# -- the statistics, checked independently ---------------------------------------------------------


def test_proportion_verdict_is_the_score_test_at_half_alpha() -> None:
    """Wilson is the inverted score test: decided exactly when the one-sided p < alpha / 2."""
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(30, 2000))
        k = int(rng.integers(0, n + 1))
        value = float(rng.uniform(0.02, 0.98))
        r = _proportion(k, n, value, "above", 0.05, 30)
        z, _ = proportions_ztest(k, n, value, prop_var=value, alternative="two-sided")
        p_one = norm.sf(abs(z))
        assert r["p_value"] == pytest.approx(p_one, rel=1e-9, abs=1e-300)
        assert (r["verdict"] != NOT_ENOUGH) == (p_one < 0.025)
        if r["verdict"] == SUPPORTED:
            assert k / n > value


def _newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe (1998) method 10, from two Wilson intervals written out here."""
    z = norm.isf(0.025)

    def wilson(k: int, n: int) -> tuple[float, float]:
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return centre - half, centre + half

    (l1, u1), (l2, u2) = wilson(k1, n1), wilson(k2, n2)
    d = k1 / n1 - k2 / n2
    return d - math.hypot(k1 / n1 - l1, u2 - k2 / n2), d + math.hypot(u1 - k1 / n1, k2 / n2 - l2)


@pytest.mark.parametrize(
    "counts", [(210, 300, 285, 300), (0, 40, 40, 40), (33, 50, 30, 60), (999, 1000, 1, 1000)]
)
def test_comparison_interval_is_newcombe(counts: tuple[int, int, int, int]) -> None:
    k1, n1, k2, n2 = counts
    r = _comparison((k1, n1), (k2, n2), False, 0.02, 0.05, 30)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(_newcombe(k1, n1, k2, n2), abs=1e-9)


# -- files, validation, stored runs, CLI ---------------------------------------------------------


def test_claim_files_toml_and_yaml(tmp_path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[[claim]]\ntext = "dogs"\nkind = "share_at_least"\nslice = { dog = true }\nvalue = "50%"\n'
    )
    yaml = tmp_path / "c.yaml"
    yaml.write_text(
        "claims:\n  - text: dogs\n    kind: share_at_least\n    slice: {dog: true}\n    value: 0.5\n"
    )
    assert load_claims(toml) == load_claims(yaml)
    assert load_claims(toml)[0]["value"] == 0.5


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ({"kind": "worse"}, "kind must be one of"),
        ({"kind": "at_least"}, "needs a value"),
        ({"kind": "at_least", "value": 50}, 'for 50% write "50%" or 0.5'),
        ({"kind": "lower"}, "needs a slice"),
        ({"kind": "at_least", "value": 0.5, "sliec": {}}, "unknown field(s) sliec"),
        ({"kind": "confused_more_than", "value": 0.1, "class": "targa"}, "needs class"),
    ],
)
def test_invalid_claims_say_what_is_wrong(claim: dict, message: str) -> None:
    with pytest.raises(AuditError, match="claim 1") as exc:
        validate_claim(claim)
    assert message in str(exc.value)


def test_unknown_column_or_class_is_named() -> None:
    t = table(block(100, 90, source="fan"))
    with pytest.raises(AuditError, match="no column 'sorce'.*source"):
        check(t, kind="share_at_least", slice={"sorce": "fan"}, value=0.5)
    with pytest.raises(AuditError, match="'gt3' is not a class"):
        check(t, kind="at_least", metric="recall:gt3", value=0.5)


def _stored_run(tmp_path, t: pd.DataFrame):
    run = tmp_path / "store" / "20260101T000000-tiny-1.0.0-audit-abcdef"
    run.mkdir(parents=True)
    demo = next((Path(__file__).parent / "data" / "runs").glob("*-audit-*")) / "audit.json"
    meta = json.loads(demo.read_text())  # a stored record, then this run's own fields
    meta["run_id"] = run.name
    meta["model"]["classes"] = CLASSES
    meta["dataset"].update(n_images=len(t), n_listed=len(t))
    (run / "audit.json").write_text(json.dumps(meta))
    t.to_parquet(run / "predictions.parquet", index=False)
    return run


def test_evaluate_claims_reads_the_stored_run_and_cli_writes_a_new_folder(tmp_path, capsys) -> None:
    t = table(
        block(4, 4, dog=1, source="fan"),
        block(300, 200, source="fan", dog=0),
        block(400, 380, source="dealer", dog=0),
    )
    run = _stored_run(tmp_path, t)
    claims = [
        {"text": "half have dogs", "kind": "share_at_least", "slice": {"dog": True}, "value": 0.5},
        {
            "text": "worse on fans",
            "kind": "lower",
            "slice": {"source": "fan"},
            "than": {"source": "dealer"},
        },
    ]
    results = evaluate_claims(run, claims)
    assert [r["verdict"] for r in results] == [CONTRADICTED, SUPPORTED]
    assert results[0]["text"] == "half have dogs"
    json.dumps(results, allow_nan=False)  # ready for the dashboard and the exports as is

    file = tmp_path / "claims.toml"
    file.write_text(
        '[[claim]]\ntext = "half have dogs"\nkind = "share_at_least"\nslice = { dog = true }\nvalue = 0.5\n'
        '[[claim]]\ntext = "worse on fans"\nkind = "lower"\nslice = { source = "fan" }\nthan = { source = "dealer" }\n'
    )
    before = sorted(p.name for p in run.iterdir())
    assert cli_main(["claims", str(run), str(file)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    written = run / out[-1].split("/")[-2] / "claims.json"
    assert out[-1] == str(written)
    stored = json.loads(written.read_text())
    assert [r["verdict"] for r in stored["results"]] == [CONTRADICTED, SUPPORTED]
    assert (written.parent / "claims.toml").read_bytes() == file.read_bytes()
    after = sorted(p.name for p in run.iterdir())
    assert sorted(set(after) - set(before)) == [written.parent.name]  # nothing else touched
    # Checking the same file again shows the stored results and writes nothing.
    assert cli_main(["claims", str(run), str(file)]) == 0
    again = capsys.readouterr().out.strip().splitlines()
    assert again[-1] == str(written) and "already checked" in again[0]
    assert sorted(p.name for p in run.iterdir()) == after


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    run = _stored_run(tmp_path, table(block(40, 30)))
    bad = tmp_path / "bad.toml"
    bad.write_text('[[claim]]\nkind = "nope"\n')
    assert cli_main(["claims", str(run), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: claim 1: kind must be one of") and err.count("\n") == 1


# -- one question, one answer: a claim and the slice scan on the same comparison ---------------


def _fan_table() -> pd.DataFrame:
    """Fan photos a little less accurate than the rest, among other slices (as in the demo)."""
    return table(
        block(200, 144, source="fan", night=0),
        block(260, 212, source="dealer", night=0),
        block(140, 110, source="scrape", night=1),
    )


def test_claim_and_slice_scan_run_the_same_test_on_the_same_comparison() -> None:
    from audits.slices import slice_report

    t = _fan_table()
    scan = slice_report(t)
    r = evaluate_claim(
        t, CLASSES, validate_claim({"kind": "lower", "slice": {"source": "fan"}}), scan=scan
    )
    row = next(s for s in scan["slices"] if s["label"] == "source = fan")
    # The same test: Fisher exact, one-sided, on the same 2x2 table (slice vs rest).
    grid = [[144, 56], [212 + 110, 48 + 30]]
    p = fisher_exact(grid, alternative="less").pvalue
    assert r["p_value"] == pytest.approx(p, rel=1e-12)
    assert row["p_lower"] == pytest.approx(p, rel=1e-12)
    assert r["scan"]["p_lower"] == row["p_lower"]
    assert r["scan"]["p_lower_adj"] == row["p_lower_adj"]
    assert r["scan"]["n_slices"] == len(scan["slices"])


def test_one_answer_or_the_reason_they_differ() -> None:
    from audits.slices import slice_report

    t = _fan_table()
    scan = slice_report(t)
    r = evaluate_claim(
        t, CLASSES, validate_claim({"kind": "lower", "slice": {"source": "fan"}}), scan=scan
    )
    row = next(s for s in scan["slices"] if s["label"] == "source = fan")
    supported, flagged = r["verdict"] == SUPPORTED, row["significantly_lower"]
    # Here the pre-stated claim is supported but the scan, adjusted over its slices, is not.
    assert (supported, flagged) == (True, False)
    assert row["p_lower"] < 0.025 < 0.05 < row["p_lower_adj"]
    assert r["scan_note"] == (
        "The Slices scan runs the same one-sided Fisher test on this comparison "
        f"(p = {row['p_lower']:.3f}) but does not flag source = fan: it scans "
        f"{len(scan['slices'])} slices without a prior hypothesis and adjusts for them "
        f"(Benjamini–Hochberg, adjusted p = {row['p_lower_adj']:.3f}), while this claim was "
        "stated before looking, so it is a single test and needs no correction."
    )
    # The scan states the same reason on its own page.
    assert "a claim stated before looking is a single test of the same kind" in scan["note"]
    # A comparison with another slice (not "the rest") is not the scan's question: no note.
    other = evaluate_claim(
        t,
        CLASSES,
        validate_claim({"kind": "lower", "slice": {"source": "fan"}, "than": {"source": "dealer"}}),
        scan=scan,
    )
    assert "scan" not in other and "scan_note" not in other


def test_claim_and_scan_agree_when_both_are_clear() -> None:
    from audits.slices import slice_report

    t = table(block(100, 40, night=1), block(600, 540, night=0))
    scan = slice_report(t)
    r = evaluate_claim(
        t,
        CLASSES,
        validate_claim({"kind": "lower", "slice": {"night": True}, "than": {"night": False}}),
        scan=scan,
    )
    assert r["verdict"] == SUPPORTED and r["scan"]["significantly_lower"]
    assert r["scan_note"].startswith("The Slices scan gives the same answer")


# -- claims persist: stored by the CLI and the dashboard through one function ------------------


@pytest.fixture
def shortcut_run(tmp_path: Path) -> Path:
    from tests.shortcut_store import write_shortcut_run

    return write_shortcut_run(tmp_path / "store")


def test_typed_claims_are_stored_like_a_file_with_their_images(shortcut_run: Path) -> None:
    from audits.claims_store import check_typed_claims
    from audits.runs import open_run

    claim = {"text": "Half <b>these</b> photos have dogs", "kind": "share_at_least",
             "slice": {"dog": True}, "value": 0.5}  # fmt: skip
    saved = check_typed_claims(shortcut_run, [claim])
    assert not saved.existed and saved.record.source == "dashboard"
    r = saved.record.results[0]
    assert r.verdict == CONTRADICTED and (r.count, r.n) == (6, 900)
    assert r.n_behind == 6 and len(r.examples) == 6
    run = open_run(shortcut_run)
    assert all(run.thumb(e.thumb) is not None for e in r.examples)  # thumbnails in the run
    # The stored copy of the typed claims checks again from the CLI to the same folder.
    assert load_claims(saved.folder / "typed-claims.json")[0]["text"] == claim["text"]
    again = check_typed_claims(shortcut_run, [claim])
    assert again.existed and again.folder == saved.folder
    second = check_typed_claims(shortcut_run, [{"kind": "at_least", "value": 0.1}])
    listed = open_run(shortcut_run).claims
    assert {c.path for c in listed} == {saved.folder, second.folder}
    assert listed[0].record.created >= listed[1].record.created  # newest first


def test_export_json_includes_every_stored_claim(shortcut_run: Path, tmp_path: Path) -> None:
    from audits.claims_store import check_claims_file, check_typed_claims
    from reports.export import export_run

    file = tmp_path / "c.toml"
    file.write_text('[[claim]]\ntext = "fan worse"\nkind = "lower"\nslice = { source = "fan" }\n')
    check_claims_file(shortcut_run, file)
    check_typed_claims(shortcut_run, [{"text": "dogs", "kind": "share_at_most",
                                       "slice": {"dog": True}, "value": 0.5}])  # fmt: skip
    out = export_run(shortcut_run, "json", tmp_path / "out")
    doc = json.loads(next(out.glob("*.json")).read_text())
    texts = sorted(r["text"] for c in doc["claims"] for r in c["files"]["claims.json"]["results"])
    assert texts == ["dogs", "fan worse"]
    from reports.content import build_content

    summary = build_content(shortcut_run).summary
    assert any(s.startswith("“dogs”: supported, 0.7% measured (95% CI ") for s in summary)
    assert any(s.startswith("“fan worse”: ") for s in summary)


def test_dashboard_stores_a_typed_claim_and_lists_every_stored_claim(
    shortcut_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from audits.runs import open_run

    monkeypatch.setenv("AUDIT_STORE", str(shortcut_run.parent))
    app = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
    at = AppTest.from_file(app, default_timeout=180).run()
    body = "\n".join(str(m.value) for m in at.markdown)
    cause = open_run(shortcut_run).integrity.class_slices.root_cause
    assert "What to do:" in body and "shortcut" in body  # the Overview's root-cause callout
    at = at.switch_page("dashboard/pages/integrity.py").run()
    at.selectbox(key="claim_kind").select("share_at_least").run()
    at.text_input[0].input("Half these photos have *dogs*")
    next(s for s in at.selectbox if s.label == "Group (slice)").select("dog = true")
    next(b for b in at.button if b.label == "Check this claim").click().run()
    assert not at.exception, [e.value for e in at.exception]
    stored = open_run(shortcut_run).claims
    assert len(stored) == 1 and stored[0].record.source == "dashboard"
    assert stored[0].record.results[0].text == "Half these photos have *dogs*"
    texts = "\n".join(str(e.value) for k in ("markdown", "caption", "success") for e in at.get(k))
    assert "Checked on this page and stored with the run" in texts
    assert "Every claim checked against this run (1, newest first)" in texts
    assert r"Half these photos have \*dogs\*" in texts  # escaped, not rendered as Markdown
    assert "6 of the 6 images behind this claim" in texts
    assert len(at.get("image")) >= 6  # the thumbnails stored with the claim
    # The class x slice cross-tab under the slices: its strongest association and its table.
    assert "Strongest association:" in texts and "non-red images" in texts
    assert cause.label == "colour = red"
    assert any("recall within" in d.value.columns for d in at.dataframe)
