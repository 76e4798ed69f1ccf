"""audits.failure_patterns: a model's systematic confusions are reported as failure patterns,
not as suspect labels; random label flips stay suspects. Statistics checked against scipy and
statsmodels; planted flips in a real labelled set (sklearn's digits) ranked as well as before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, fisher_exact
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.multitest import multipletests

from audits.failure_patterns import (
    confusion_counts,
    describe_slices,
    find_patterns,
    metadata_slices,
    pair_tests,
    pattern_rows,
    slice_tests,
)
from audits.labels import flagged_mask, self_confidence, suspect_labels
from audits.runs.models_integrity import FailurePatterns, SuspectLabels

CLASSES = ["cabriolet", "carrera", "gt", "safari", "targa", "turbo"]
COLOURS = ["red", "blue", "white", "black", "silver"]


def _table(labels: np.ndarray, probs: np.ndarray, **meta: np.ndarray) -> pd.DataFrame:
    pred = probs.argmax(axis=1)
    return pd.DataFrame(
        {
            "row": np.arange(len(labels)),
            "path": [f"img/{i}.png" for i in range(len(labels))],
            "label_idx": labels,
            "pred_idx": pred,
            "correct": pred == labels,
            **meta,
        }
    )


def shortcut_case(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """A good model with a colour shortcut (red => targa), plus 12 planted label flips.

    Returns the table, probabilities, the true labels and the flipped rows."""
    rng = np.random.default_rng(seed)
    n, k = 1800, len(CLASSES)
    y = rng.integers(0, k, n)
    colour = rng.choice(COLOURS, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += rng.uniform(4.0, 8.0, n)
    targa, carrera = CLASSES.index("targa"), CLASSES.index("carrera")
    # The shortcut: non-red targas read as carrera, red carreras read as targa, confidently.
    fooled_t = (y == targa) & (colour != "red") & (rng.random(n) < 0.7)
    fooled_c = (y == carrera) & (colour == "red") & (rng.random(n) < 0.8)
    logits[fooled_t, carrera] += 12.0
    logits[fooled_c, targa] += 12.0
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    flipped = rng.choice(np.flatnonzero(~fooled_t & ~fooled_c), 12, replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, k, 12)) % k
    return _table(noisy, p, colour=colour), p, y, flipped


def test_shortcut_is_a_pattern_not_suspect_labels() -> None:
    table, p, _, flipped = shortcut_case()
    before = suspect_labels(table, p, CLASSES)
    assert before["n_flagged"] > 150  # today: the shortcut reads as 150+ wrong labels
    found = find_patterns(table, CLASSES, flagged=flagged_mask(table, p))
    FailurePatterns.model_validate(found)
    pairs = {(q["label"], q["predicted"]): q for q in found["patterns"]}
    assert set(pairs) == {("targa", "carrera"), ("carrera", "targa")}
    t2c = pairs[("targa", "carrera")]
    # Described by its cause: none of them red, against the targas the model got right.
    assert t2c["slices"][0]["label"] == "colour = red"
    assert t2c["slices"][0]["direction"] == "under" and t2c["slices"][0]["n_in"] == 0
    n_t = int((table["label_idx"] == CLASSES.index("targa")).sum())
    assert t2c["n_class"] == n_t
    assert t2c["sentence"].startswith(
        f"{t2c['n_errors']} of {n_t} images labelled targa are predicted carrera; none of them "
        "has colour = red"
    )
    c2t = pairs[("carrera", "targa")]
    assert c2t["slices"][0]["label"] == "colour = red"
    assert c2t["slices"][0]["share_in"] == 1.0
    after = suspect_labels(table, p, CLASSES, exclude=pattern_rows(found))
    SuspectLabels.model_validate(after)
    assert after["n_confident_learning"] == before["n_flagged"]
    assert after["n_in_patterns"] + after["n_flagged"] == before["n_flagged"]
    # What is left is planted flips only; a flip is missed only when it landed in the
    # shortcut's own cells (a carrera relabelled targa reads as the pattern) or CL missed it.
    kept = {r["row"] for r in after["rows"]}
    assert kept <= set(flipped.tolist()) and len(kept) >= 9
    in_pattern, flags = pattern_rows(found), flagged_mask(table, p)
    assert all(i in in_pattern or not flags[i] for i in set(flipped.tolist()) - kept)
    assert [r["rank"] for r in after["rows"]] == list(range(1, len(kept) + 1))
    assert "more likely a weak model" not in after.get("note", "")


def test_random_flips_alone_make_no_pattern() -> None:
    rng = np.random.default_rng(3)
    n, k = 1500, len(CLASSES)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += rng.uniform(4.0, 8.0, n)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    flips = rng.choice(n, 75, replace=False)
    noisy = y.copy()
    noisy[flips] = (y[flips] + rng.integers(1, k, 75)) % k
    table = _table(noisy, p, colour=rng.choice(COLOURS, n), night=rng.random(n) < 0.1)
    found = find_patterns(table, CLASSES, flagged=flagged_mask(table, p))
    assert found["patterns"] == [] and found["n_in_patterns"] == 0
    out = suspect_labels(table, p, CLASSES, exclude=pattern_rows(found))
    assert out["n_flagged"] == out["n_confident_learning"] >= 60


def test_pair_test_is_binomial_against_the_background_then_bh() -> None:
    conf = np.array([[180, 2, 30, 1], [3, 150, 2, 2], [1, 2, 190, 3], [2, 25, 1, 160]])
    out = pair_tests(conf)
    assert out["pattern"].sum() == 2 and out["pattern"][0, 2] and out["pattern"][3, 1]
    n = conf.sum(axis=1)
    off = ~np.eye(4, dtype=bool)
    base = off & ~out["pattern"]
    rate = conf[base].sum() / np.broadcast_to(n[:, None], (4, 4))[base].sum()
    assert out["background_rate"] == pytest.approx(rate)
    ps = [
        binomtest(int(conf[i, j]), int(n[i]), rate, alternative="greater").pvalue
        for i, j in zip(*np.nonzero(off), strict=True)
    ]
    assert out["p_value"][off] == pytest.approx(ps, rel=1e-9)
    assert out["p_value_adj"][off] == pytest.approx(multipletests(ps, method="fdr_bh")[1])


def test_slice_tests_and_descriptions_are_fisher_then_bh() -> None:
    table, p, _, _ = shortcut_case(1)
    sub = table.reset_index(drop=True)
    slices = metadata_slices(sub)
    given = sub["label_idx"].to_numpy()
    wrong = ~sub["correct"].to_numpy()
    tests = slice_tests(given, wrong, slices, len(CLASSES))
    first = tests[0]
    has = (given == first["class_idx"]) & (slices[first["column"]].to_numpy() == first["value"])
    rest = (given == first["class_idx"]) & ~has
    a, c = int((wrong & has).sum()), int((wrong & rest).sum())
    grid = [[a, int(has.sum()) - a], [c, int(rest.sum()) - c]]
    assert first["p_value"] == pytest.approx(fisher_exact(grid, alternative="greater").pvalue)
    adj = multipletests([t["p_value"] for t in tests], method="fdr_bh")[1]
    assert [t["p_value_adj"] for t in tests] == pytest.approx(adj)
    targa = given == CLASSES.index("targa")
    member = targa & (sub["pred_idx"].to_numpy() == CLASSES.index("carrera"))
    red = describe_slices(member, targa, slices)[0]
    n_in, n_rest = int(member.sum()), int((targa & ~member).sum())
    assert (red["n_in"], red["rest_support"]) == (0, n_rest)
    grid = [[0, n_in], [red["n_rest"], n_rest - red["n_rest"]]]
    assert red["p_value"] == pytest.approx(fisher_exact(grid).pvalue)
    assert confusion_counts(np.array([0, 1, 1]), np.array([1, 1, 0]), 2).tolist() == [
        [0, 1],
        [1, 1],
    ]


def _digits_precision(seed: int) -> tuple[float, float]:
    """Precision of the top-k suspects (k = planted flips), before and after patterns."""
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    k = round(0.05 * len(y))
    flips = rng.choice(len(y), k, replace=False)
    noisy = y.copy()
    noisy[flips] = (y[flips] + rng.integers(1, 10, k)) % 10
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    p = cross_val_predict(model, x, noisy, cv=5, method="predict_proba")
    table = _table(noisy, p)
    classes = [str(d) for d in range(10)]
    old = suspect_labels(table, p, classes, max_listed=5000)
    found = find_patterns(
        table,
        classes,
        flagged=flagged_mask(table, p),
        self_confidence=self_confidence(table, p),
    )
    new = suspect_labels(table, p, classes, max_listed=5000, exclude=pattern_rows(found))
    planted = set(flips.tolist())

    def precision(out: dict) -> float:
        return len(planted & {r["row"] for r in out["rows"][:k]}) / k

    return precision(old), precision(new)


def test_planted_flips_in_digits_rank_at_least_as_well() -> None:
    """Ten seeds (bench/suspect_labels.py prints the table): precision@90 0.711 -> 0.716 on
    average; never more than one flip (0.011) lower on a seed, better or equal on 8 of 10."""
    pairs = [_digits_precision(seed) for seed in range(10)]
    old, new = np.array(pairs).T
    assert old.mean() == pytest.approx(0.7111, abs=1e-3)
    assert new.mean() == pytest.approx(0.7156, abs=1e-3)
    assert new.mean() >= old.mean()
    assert (new >= old).sum() == 8 and (old - new).max() <= 1 / 90 + 1e-9


def test_other_versions_clear_a_suspect_they_predict_as_labelled() -> None:
    """Consensus filtering (Brodley & Friedl 1999): a label another audited version predicts
    is learnable, so it is not a suspect; the rest say how many versions agree against it."""
    table, p, _, flipped = shortcut_case()
    found = find_patterns(table, CLASSES, flagged=flagged_mask(table, p))
    alone = suspect_labels(table, p, CLASSES, exclude=pattern_rows(found))
    listed = [r["path"] for r in alone["rows"]]
    given = {r["path"]: r["label"] for r in alone["rows"]}
    # Version A predicts the given label for the first two suspects, B never does.
    a = pd.Series({path: given[path] if i < 2 else "(other)" for i, path in enumerate(listed)})
    b = pd.Series({path: "(other)" for path in listed})
    out = suspect_labels(
        table, p, CLASSES, exclude=pattern_rows(found), others=[("0.9", a), ("1.1", b)]
    )
    SuspectLabels.model_validate(out)
    assert out["versions"] == ["0.9", "1.1"] and out["n_cleared_by_versions"] == 2
    assert out["n_flagged"] == alone["n_flagged"] - 2
    assert [r["path"] for r in out["rows"]] == listed[2:]
    assert [r["rank"] for r in out["rows"]] == list(range(1, len(listed) - 1))
    for r in out["rows"]:
        expected_against = (a[r["path"]] != r["label"]) + (b[r["path"]] != r["label"])
        assert (r["versions_compared"], r["versions_against"]) == (2, expected_against)
    # A version without the image has no say about it.
    partial = suspect_labels(table, p, CLASSES, others=[("0.9", a.iloc[:0])])
    assert partial["n_cleared_by_versions"] == 0
    assert all(r["versions_compared"] == 0 for r in partial["rows"])


def test_report_section_and_card_badges_read_the_stored_patterns() -> None:
    from dashboard.gallery import pattern_badges
    from reports.sections.failure_patterns import failure_patterns_section

    table, p, _, _ = shortcut_case()
    found = FailurePatterns.model_validate(
        find_patterns(table, CLASSES, flagged=flagged_mask(table, p))
    )

    class NoThumbs:
        def thumb(self, rel: str) -> None:
            return None

    section = failure_patterns_section(found, NoThumbs())  # type: ignore[arg-type]
    assert section.title == "Failure patterns"
    first_table = next(b for b in section.blocks if type(b).__name__ == "Table")
    assert "images labelled targa are predicted carrera" in str(first_table.rows)

    class Record:
        failure_patterns = found

    badges = pattern_badges(Record())
    t2c = next(q for q in found.patterns if q.label == "targa")
    assert badges[t2c.rows[0]] == "targa→carrera, not colour = red"
    assert pattern_badges(None) == {} and set(badges) == {r for q in found.patterns for r in q.rows}


def test_errors_unlike_the_predicted_class_are_an_into_pattern() -> None:
    """Red cars of three classes read as targa, three each (too few per pair to be a pair
    pattern), while only 10% of the real targas are red: one 'into' pattern, Fisher-tested
    against the images labelled targa."""
    rng = np.random.default_rng(4)
    n_per = 200
    given = np.repeat(np.arange(len(CLASSES)), n_per)
    colour = rng.choice(["blue", "white", "black"], len(given)).astype(object)
    pred = given.copy()
    targa = CLASSES.index("targa")
    colour[np.flatnonzero(given == targa)[:20]] = "red"  # 20 of 200 targas are red
    fooled = []
    for cls in ("carrera", "turbo", "gt"):
        rows = np.flatnonzero(given == CLASSES.index(cls))[:3]
        colour[rows], pred[rows] = "red", targa
        fooled += rows.tolist()
    noise = rng.choice(np.flatnonzero(given != targa), 12, replace=False)  # scattered errors
    pred[noise] = (given[noise] + 1 + rng.integers(0, len(CLASSES) - 1, 12)) % len(CLASSES)
    pred[noise[pred[noise] == targa]] = CLASSES.index("safari")  # scattered, never targa
    pred[fooled] = targa
    table = pd.DataFrame(
        {"row": np.arange(len(given)), "label_idx": given, "pred_idx": pred, "colour": colour}
    )
    table["correct"] = table["pred_idx"] == table["label_idx"]
    found = find_patterns(table, CLASSES)
    FailurePatterns.model_validate(found)
    into = [q for q in found["patterns"] if q["kind"] == "into"]
    assert [q["kind"] for q in found["patterns"]] == ["into"]
    q = into[0]
    assert (q["predicted"], q["slice"]) == ("targa", "colour = red")
    assert set(q["rows"]) == set(fooled)
    wrong_to_targa = int(((pred == targa) & (given != targa)).sum())
    red_wrong = int(((pred == targa) & (given != targa) & (colour == "red")).sum())
    grid = [[red_wrong, wrong_to_targa - red_wrong], [20, 180]]
    assert q["p_value"] == pytest.approx(fisher_exact(grid, alternative="greater").pvalue)
    assert q["sentence"].startswith(f"9 of the {wrong_to_targa} other images predicted targa")
    assert "(vs 20 of the 200 images labelled targa)" in q["sentence"]
