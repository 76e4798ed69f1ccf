"""audits.slices: column typing, per-slice accuracy, tests against the rest (checked with
hypergeometric tails, statsmodels' Wilson and Benjamini-Hochberg), ranking, and row selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control, hypergeom
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from audits.errors import AuditError
from audits.slice_spec import describe, slice_mask
from audits.slices import column_kinds, slice_report


def demo_like(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A predictions table with demo-style metadata; fan photos are planted to fail more."""
    rng = np.random.default_rng(seed)
    source = rng.choice(["dealer", "fan", "scrape"], size=n, p=[0.4, 0.35, 0.25])
    night = rng.random(n) < 0.1
    p_right = np.where(source == "fan", 0.7, 0.95)
    correct = rng.random(n) < p_right
    label_idx = rng.integers(0, 3, n)
    days = rng.integers(0, 180, n)
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "path": [f"images/{i:05d}.png" for i in range(n)],
            "label": np.array(["a", "b", "c"])[label_idx],
            "label_idx": label_idx,
            "pred_idx": np.where(correct, label_idx, (label_idx + 1) % 3),
            "correct": correct,
            "confidence": rng.random(n).astype(np.float32),
            "file_sha256": [f"{i:064x}" for i in range(n)],
            "group": [f"g{i // 3}" for i in range(n)],
            "roi_x0": rng.integers(0, 10, n),
            "source": source,
            "date": (pd.Timestamp("2024-07-01") + pd.to_timedelta(days, unit="D")).strftime(
                "%Y-%m-%d"
            ),
            "dog": (rng.random(n) < 0.01).astype(int),
            "night": np.where(night, "yes", "no"),
            "brightness": rng.normal(0.5, 0.1, n),
            "photo_id": [f"p{i}" for i in range(n)],
            "url": [f"https://example.com/{i}.jpg" for i in range(n)],
            "lens": rng.choice([24, 35, 50], size=n),
        }
    )


def test_column_kinds() -> None:
    kinds = column_kinds(demo_like())
    assert kinds == {
        "source": "category",
        "date": "date",
        "dog": "boolean",
        "night": "boolean",
        "brightness": "numeric",
        "lens": "category",
    }


def test_slices_match_independent_counts_and_tests() -> None:
    t = demo_like()
    rep = slice_report(t)
    by = {(s["column"], s["value"]): s for s in rep["slices"]}
    total_n, total_k = len(t), int(t["correct"].sum())
    for value, frame in t.groupby("source"):
        s = by[("source", value)]
        n, k = len(frame), int(frame["correct"].sum())
        assert (s["support"], s["correct"]) == (n, k)
        assert s["accuracy"] == pytest.approx(k / n)
        assert (s["ci_low"], s["ci_high"]) == pytest.approx(
            proportion_confint(k, n, method="wilson")
        )
        assert s["rest_support"] == total_n - n
        # One-sided Fisher = the hypergeometric lower tail of the slice's correct count.
        assert s["p_lower"] == pytest.approx(hypergeom.cdf(k, total_n, total_k, n), rel=1e-9)
    raw = [s["p_lower"] for s in rep["slices"]]
    assert [s["p_lower_adj"] for s in rep["slices"]] == pytest.approx(
        multipletests(raw, method="fdr_bh")[1]
    )
    raw2 = [s["p_value"] for s in rep["slices"]]
    assert [s["p_value_adj"] for s in rep["slices"]] == pytest.approx(
        multipletests(raw2, method="fdr_bh")[1]
    )
    # scipy's own Benjamini-Hochberg (the implementation before statsmodels) agrees too.
    for key, values in (("p_lower_adj", raw), ("p_value_adj", raw2)):
        assert [s[key] for s in rep["slices"]] == pytest.approx(
            list(false_discovery_control(values, method="bh")), abs=1e-12
        )


def test_planted_weak_slice_ranks_first_and_tiny_slices_are_not_ranked() -> None:
    rep = slice_report(demo_like(), min_support=20)
    first = rep["weakest"][0]
    assert (first["rank"], first["label"]) == (1, "source = fan")
    assert first["significantly_lower"] and first["p_lower_adj"] < 1e-10
    assert first["accuracy"] == pytest.approx(0.7, abs=0.04)
    assert all(s["support"] >= 20 for s in rep["weakest"])
    dogs = next(s for s in rep["slices"] if s["label"] == "dog = true")
    assert dogs["support"] < 20 and dogs not in rep["weakest"]
    assert not next(s for s in rep["slices"] if s["label"] == "source = dealer")[
        "significantly_lower"
    ]
    assert [s["accuracy"] for s in rep["weakest"]] == sorted(s["accuracy"] for s in rep["weakest"])


def test_bucketing_dates_numbers_and_missing_values() -> None:
    t = demo_like()
    t.loc[:9, "source"] = None
    rep = slice_report(t)
    months = sorted(s["value"] for s in rep["slices"] if s["column"] == "date")
    assert months == ["2024-07", "2024-08", "2024-09", "2024-10", "2024-11", "2024-12"]
    assert sum(s["support"] for s in rep["slices"] if s["column"] == "date") == len(t)
    bins = [s for s in rep["slices"] if s["column"] == "brightness"]
    assert len(bins) == 4 and all(abs(s["support"] - 300) <= 1 for s in bins)
    missing = next(s for s in rep["slices"] if s["column"] == "source" and s["value"] is None)
    assert (missing["label"], missing["support"]) == ("source = (missing)", 10)
    # Five years of dates: quarters, not 60 months.
    t["date"] = (
        pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(len(t)) * 1.5, unit="D")
    ).strftime("%Y-%m-%d")
    cols = {c["column"]: c for c in slice_report(t)["columns"]}
    assert cols["date"]["bucketing"] == "by quarter" and cols["date"]["n_slices"] == 20


def test_unlabelled_rows_are_left_out() -> None:
    t = demo_like()
    t.loc[:99, "label_idx"] = -1
    rep = slice_report(t)
    assert rep["n_labelled"] == len(t) - 100
    assert sum(s["support"] for s in rep["slices"] if s["column"] == "source") == len(t) - 100


def test_slice_mask_forms() -> None:
    t = demo_like()
    t = t.rename(columns={"lens": "meta_width"})  # a metadata column that collided
    assert slice_mask(t, {}).all()
    assert (slice_mask(t, {"source": "fan"}) == (t["source"] == "fan")).all()
    assert (slice_mask(t, {"dog": True}) == (t["dog"] == 1)).all()
    assert (slice_mask(t, {"night": False}) == (t["night"] == "no")).all()
    assert (slice_mask(t, {"date": "2024-08"}) == t["date"].str.startswith("2024-08")).all()
    assert (
        slice_mask(t, {"source": ["fan", "scrape"]}) == t["source"].isin(["fan", "scrape"])
    ).all()
    both = slice_mask(t, {"source": "fan", "night": True})
    assert (both == ((t["source"] == "fan") & (t["night"] == "yes"))).all()
    rng = slice_mask(t, {"brightness": {"min": 0.4, "max": 0.6}})
    assert (rng == t["brightness"].between(0.4, 0.6)).all()
    dates = slice_mask(t, {"date": {"min": "2024-09-01"}})
    assert (dates == (t["date"] >= "2024-09-01")).all()
    assert (slice_mask(t, {"width": 35}) == (t["meta_width"] == 35)).all()
    with pytest.raises(AuditError, match="no column 'sorce'"):
        slice_mask(t, {"sorce": "fan"})
    with pytest.raises(AuditError, match="not a yes/no column"):
        slice_mask(t, {"source": True})


def test_describe() -> None:
    assert describe({}) == "all images"
    assert describe({"dog": True, "night": False}) == "dog and not night"
    assert describe({"source": "fan"}) == "source = fan"
    assert describe({"b": {"min": 1, "max": 2}}) == "b from 1 to 2"


def test_the_scan_says_why_a_claim_can_answer_differently() -> None:
    """The scan is exploratory (BH across all slices); a pre-stated claim is one test of the
    same kind: the stored note names the family size and both rules."""
    report = slice_report(demo_like())
    n = len(report["slices"])
    assert report["note"].startswith(f"This scan is exploratory: each of the {n} slices")
    assert "Benjamini–Hochberg" in report["note"] and "not adjusted" in report["note"]
    # The one-sided p is the adjusted family the flag uses: BH over every tested slice.
    p = [s["p_lower"] for s in report["slices"]]
    adj = multipletests(p, method="fdr_bh")[1]
    assert [s["p_lower_adj"] for s in report["slices"]] == pytest.approx(list(adj))
    assert [s["significantly_lower"] for s in report["slices"]] == [bool(q < 0.05) for q in adj]
