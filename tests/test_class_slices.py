"""audits.class_slices: the class x slice cross-tab against an independent pandas/scipy/
statsmodels re-derivation, the root-cause sentence on a planted colour shortcut, its place in
integrity.json, and page one of the report (what fails, why, what to do)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from audits.class_slices import class_slice_report
from audits.runs import open_run
from audits.runs.models_integrity import ClassSlices, IntegrityRecord
from tests.shortcut_store import CLASSES, TARGA, shortcut_table, training_frame, write_shortcut_run


@pytest.fixture(scope="module")
def report() -> dict:
    table, _ = shortcut_table()
    return class_slice_report(table, CLASSES, training_frame())


def _all_cells(table: pd.DataFrame, min_support: int = 10) -> pd.DataFrame:
    """Every (class, column, value) cell the cross-tab should test, derived with pandas."""
    out = []
    for column in ("source", "night", "dog", "colour"):
        values = sorted(table[column].astype(str).str.lower().unique())
        if len(values) == 2:
            values = values[:1]
        for cls in CLASSES:
            mine = table[table["label"] == cls]
            key = mine[column].astype(str).str.lower()
            for v in values:
                inside, outside = mine[key == v], mine[key != v]
                if min(len(inside), len(outside)) < min_support:
                    continue
                k_in, k_out = int(inside["correct"].sum()), int(outside["correct"].sum())
                grid = [[k_in, len(inside) - k_in], [k_out, len(outside) - k_out]]
                out.append(
                    {
                        "class": cls,
                        "column": column,
                        "value": v,
                        "k_in": k_in,
                        "n_in": len(inside),
                        "k_out": k_out,
                        "n_out": len(outside),
                        "p": fisher_exact(grid).pvalue,
                    }
                )
    cells = pd.DataFrame(out)
    cells["p_adj"] = multipletests(cells["p"], method="fdr_bh")[1]
    return cells


def test_cross_tab_matches_an_independent_derivation(report: dict) -> None:
    table, _ = shortcut_table()
    table = table.drop(columns=["date"])  # dates are bucketed by month: checked in test_slices
    cells = _all_cells(table)
    date_tests = report["n_tested"] - len(cells)
    assert date_tests >= 0
    expected = class_slice_report(table, CLASSES, training_frame())
    assert expected["n_tested"] == len(cells)
    assert len(expected["rows"]) == cells.groupby(["class", "column"]).ngroups
    for row in expected["rows"]:
        mine = cells[(cells["class"] == row["class"]) & (cells["column"] == row["column"])]
        gaps = mine["k_in"] / mine["n_in"] - mine["k_out"] / mine["n_out"]
        best = mine.loc[gaps.abs().idxmax()]
        assert row["value"] == best["value"]
        assert (row["correct"], row["support"]) == (best["k_in"], best["n_in"])
        assert (row["rest_correct"], row["rest_support"]) == (best["k_out"], best["n_out"])
        assert row["recall"] == pytest.approx(best["k_in"] / best["n_in"])
        low, high = proportion_confint(best["k_in"], best["n_in"], method="wilson")
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
        low, high = proportion_confint(best["k_out"], best["n_out"], method="wilson")
        assert (row["rest_ci_low"], row["rest_ci_high"]) == pytest.approx((low, high))
        assert row["p_value"] == pytest.approx(best["p"], rel=1e-9)
        assert row["p_adj"] == pytest.approx(best["p_adj"], rel=1e-9)
        assert row["significant"] == (best["p_adj"] < 0.05)


def test_the_planted_shortcut_is_the_root_cause(report: dict) -> None:
    table, _ = shortcut_table()
    targa = table[table["label"] == TARGA]
    red = targa["colour"] == "red"
    k_red, n_red = int(targa["correct"][red].sum()), int(red.sum())
    k_rest, n_rest = int(targa["correct"][~red].sum()), int((~red).sum())
    train = training_frame()
    t_targa = train[train["label"] == TARGA]
    share = (t_targa["colour"] == "red").mean()
    other = (train[train["label"] != TARGA]["colour"] == "red").mean()
    cause = report["root_cause"]
    assert (cause["class"], cause["column"], cause["value"]) == (TARGA, "colour", "red")
    assert cause["top_confusion"]["true"] == TARGA
    assert cause["training"]["class_share"] == pytest.approx(share)
    assert cause["training"]["other_share"] == pytest.approx(other)
    assert cause["sentence"] == (
        f"Variant-001 recall {100 * k_rest / n_rest:.1f}% on non-red images vs "
        f"{100 * k_red / n_red:.1f}% on red ones (n = {n_rest} and {n_red}); the training "
        f"set's Variant-001s are {100 * share:.1f}% red (other classes: {100 * other:.1f}%)."
    )
    n_not_red = int((t_targa["colour"] != "red").sum())
    assert cause["advice"].startswith(
        f"Add non-red Variant-001s to the training data (the training set has {n_not_red} of "
        f"{len(t_targa)}): in training, red nearly always means Variant-001"
    )


def test_a_gap_the_training_mix_does_not_explain_is_where_not_why(
    report: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red is as common among training Targas as among the rest: the gap is reported as where
    the model fails, never as a shortcut it learned."""
    from audits.runs.models_integrity import RootCause
    from reports.present import findings

    table, _ = shortcut_table()
    train = training_frame()
    rng = np.random.default_rng(5)
    train["colour"] = np.where(rng.random(len(train)) < 0.3, "red", "blue")  # same mix for all
    cause = class_slice_report(table, CLASSES, train)["root_cause"]
    assert report["root_cause"]["shortcut"] is True and cause["shortcut"] is False
    assert cause["sentence"].endswith(", so the training mix alone does not explain the gap.")
    assert not cause["advice"].startswith("Add ")  # no shortcut advice

    monkeypatch.setattr(findings, "what_fails", lambda audit: None)
    heads = {}
    for stored in (report["root_cause"], cause):
        rc = RootCause.model_validate(stored)
        monkeypatch.setattr(findings, "root_cause", lambda run, rc=rc: rc)
        lines = findings.finding_lines(type("Run", (), {"audit": None})())
        heads[rc.shortcut] = lines[0].split(":")[0]
    assert heads == {True: "Why", False: "Where"}


def test_no_association_no_root_cause() -> None:
    table, _ = shortcut_table()
    rng = np.random.default_rng(3)
    table["correct"] = rng.random(len(table)) < 0.8  # errors independent of every column
    table["colour"] = rng.permutation(table["colour"].to_numpy())
    out = class_slice_report(table, CLASSES)
    assert out["root_cause"] is None
    assert not any(r["significant"] for r in out["rows"])


def test_without_training_data_the_sentence_says_less(report: dict) -> None:
    table, _ = shortcut_table()
    out = class_slice_report(table, CLASSES, None)
    assert out["root_cause"]["training"] is None
    assert "training set's" not in out["root_cause"]["sentence"]
    assert out["root_cause"]["sentence"].startswith("Variant-001 recall")


def test_integrity_record_types_the_cross_tab_and_old_records_still_load(
    tmp_path: Path,
) -> None:
    run = open_run(write_shortcut_run(tmp_path / "store"))
    block = run.integrity.class_slices
    assert isinstance(block, ClassSlices)
    assert block.root_cause is not None and block.root_cause.class_ == TARGA
    old = run.integrity.as_dict() | {}
    old.pop("class_slices")
    assert IntegrityRecord.from_dict(old).class_slices is None


def test_page_one_says_what_fails_why_and_what_to_do(tmp_path: Path) -> None:
    from reports.content import build_content

    run_dir = write_shortcut_run(tmp_path / "store")
    summary = build_content(run_dir).summary
    cause = open_run(run_dir).integrity.class_slices.root_cause
    fails = next(s for s in summary if s.startswith("What fails: "))
    assert fails.startswith("What fails: Variant-001 images are most often read as variant-000")
    assert f"Why: {cause.sentence}" in summary
    assert f"What to do: {cause.advice}" in summary
    # Up front: straight after the headline sentence.
    assert summary[1].startswith("What fails: ") and summary[2].startswith("Why: ")


def test_the_report_slices_section_shows_the_cross_tab(tmp_path: Path) -> None:
    from reports.content import Heading, Paragraphs, Table, build_content

    run_dir = write_shortcut_run(tmp_path / "store")
    content = build_content(run_dir)
    section = next(s for s in content.sections if s.id == "slices")
    titles = [b.text for b in section.blocks if isinstance(b, Heading)]
    assert "Recall of each class within each metadata value" in titles
    words = " ".join(t for b in section.blocks if isinstance(b, Paragraphs) for t in b.items)
    cause = open_run(run_dir).integrity.class_slices.root_cause
    assert f"Strongest association: {cause.sentence}" in words
    assert "a claim stated before looking is a single test" in words  # the scan's own note
    cross = section.blocks[-1]
    assert isinstance(cross, Table) and "colour = red" in str(cross.rows[0][1])
