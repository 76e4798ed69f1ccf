"""The review queue (issue 17, item 1): candidates from a run's tables, decided rows hidden,
decisions as corrections rows, and ``python -m audits review`` (list, answers file, a pty).

The probabilities are checked against an independent computation (sklearn's log loss per
row gives the probability of the true label back as exp(-loss)).
"""

from __future__ import annotations

import csv
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from auditapp.commands.review_cmd import complete_class, review_loop
from audits.corrections import HEADER, Decision, append_decisions
from audits.errors import AuditError
from audits.review_queue import (
    QueueSpec,
    candidates,
    decided_mask,
    decision,
    decisions_in_force,
    label_probability,
    parse_queue,
)
from tests.review_copies import copy_demo

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["carrera", "targa", "turbo"]


def small_table(seed: int = 0, n: int = 40) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 3)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    label_idx = rng.integers(0, 3, n)
    label_idx[:3] = -1  # unlabelled rows are never candidates
    order = np.argsort(-probs, axis=1)
    pred_idx = order[:, 0]
    table = pd.DataFrame(
        {
            "row": np.arange(n),
            "path": [f"images/{i:03d}.png" for i in range(n)],
            "label": [CLASSES[i] if i >= 0 else None for i in label_idx],
            "label_idx": label_idx,
            "pred": [CLASSES[i] for i in pred_idx],
            "pred_idx": pred_idx,
            "confidence": probs.max(1),
            "correct": pred_idx == label_idx,
            "topk_idx": list(order),
            "topk_prob": [probs[i, order[i]] for i in range(n)],
            "file_sha256": [f"{i:064x}" for i in range(n)],
            "source": rng.choice(["fan", "dealer"], n),
        }
    )
    return table, probs


def test_probability_of_the_label_matches_an_independent_computation() -> None:
    table, probs = small_table()
    p_label, margin = label_probability(table, probs)
    lab = table["label_idx"].to_numpy() >= 0
    for i in np.flatnonzero(lab):
        k = table["label_idx"][i]
        loss = log_loss([k], probs[i : i + 1], labels=[0, 1, 2])
        assert p_label[i] == pytest.approx(np.exp(-loss), rel=1e-9)
        assert margin[i] == pytest.approx(probs[i, k] - np.delete(probs[i], k).max())
    assert np.isnan(p_label[~lab]).all()


def test_least_confident_orders_by_probability_of_the_label() -> None:
    table, probs = small_table()
    q = candidates(table, probs, CLASSES, QueueSpec("least-confident"))
    assert len(q) == 37  # every labelled row
    assert list(q["p_label"]) == sorted(q["p_label"])
    first = q.iloc[0]
    assert first["p_label"] == pytest.approx(probs[first["row"], CLASSES.index(first["label"])])
    assert first["sha256"] == table.loc[first["row"], "file_sha256"]
    assert [c for c, _ in first["top5"]][0] == first["pred"]


def test_pair_and_filter_queues_keep_only_their_rows() -> None:
    table, probs = small_table(1, 200)
    q = candidates(table, probs, CLASSES, parse_queue("pair", "targa:carrera"))
    expected = table[(table["label"] == "targa") & (table["pred"] == "carrera")]
    assert sorted(q["row"]) == sorted(expected["row"]) and len(q) > 0
    f = candidates(
        table,
        probs,
        CLASSES,
        QueueSpec("filter", true=("turbo",), slice=("source", "fan"), correct=False),
    )
    exp = table[(table["label"] == "turbo") & (table["source"] == "fan") & ~table["correct"]]
    assert sorted(f["row"]) == sorted(exp["row"]) and len(f) > 0


def test_suspects_and_patterns_follow_the_integrity_record() -> None:
    table, probs = small_table()

    class Row:
        def __init__(self, rank: int, row: int) -> None:
            self.rank, self.row = rank, row

    class Block:
        rows = [Row(2, 9), Row(1, 12)]

    class Pattern:
        rank, rows = 3, [20, 5, 7]

    class Integrity:
        suspect_labels = Block()

        class failure_patterns:  # noqa: N801 (stands in for the record's block)
            patterns = [Pattern()]

    assert list(candidates(table, probs, CLASSES, QueueSpec("suspects"), Integrity())["row"]) == [
        12,
        9,
    ]
    assert list(
        candidates(table, probs, CLASSES, parse_queue("pattern", "3"), Integrity())["row"]
    ) == [20, 5, 7]
    with pytest.raises(AuditError, match="no failure pattern 4"):
        candidates(table, probs, CLASSES, parse_queue("pattern", "4"), Integrity())


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("pair", "targa", "TRUE:PRED"),
        ("pattern", "x", "rank N"),
        ("suspects", "3", "takes no value"),
    ],
)
def test_bad_queue_is_one_clear_error(kind: str, value: str, message: str) -> None:
    with pytest.raises(AuditError, match=message):
        parse_queue(kind, value)


def test_unknown_class_names_the_classes() -> None:
    table, probs = small_table()
    with pytest.raises(AuditError, match="'targo' is not one of the model's classes: carrera"):
        candidates(table, probs, CLASSES, parse_queue("pair", "targo:carrera"))


def test_decided_rows_are_hidden_only_for_the_same_file(tmp_path: Path) -> None:
    table, probs = small_table()
    q = candidates(table, probs, CLASSES, QueueSpec("least-confident"))
    file = tmp_path / "m.corrections.csv"
    a, b = q.iloc[0], q.iloc[1]
    append_decisions(file, [decision(a, "exclude", "ann"), decision(a, "keep", "bob")])
    # A decision about another file at the same path (a different sha256) is not in force.
    append_decisions(file, [Decision(b["path"], "f" * 64, b["label"], "keep", reviewer="ann")])
    force = decisions_in_force(file)
    mask = decided_mask(q, force)
    assert mask.sum() == 1 and mask[0]
    assert force.set_index("path").loc[a["path"], "decision"] == "keep"  # the last one wins


def test_decision_needs_a_reviewer_and_relabel_to_same_class_keeps() -> None:
    table, probs = small_table()
    item = candidates(table, probs, CLASSES, QueueSpec("least-confident")).iloc[0]
    with pytest.raises(AuditError, match="reviewer name is required"):
        decision(item, "keep", "  ")
    d = decision(item, "relabel", "ann", new_label=item["label"])
    assert (d.decision, d.new_label) == ("keep", "")


def test_class_prefix_completion() -> None:
    classes = ["carrera", "cabriolet", "targa"]
    assert complete_class("ta", classes) == ["targa"]
    assert complete_class("Ca", classes) == ["carrera", "cabriolet"]
    assert complete_class("carr", classes) == ["carrera"]
    assert complete_class("x", classes) == []


def test_review_loop_appends_each_decision(tmp_path: Path) -> None:
    table, probs = small_table()
    q = candidates(table, probs, CLASSES, QueueSpec("least-confident")).head(5)
    answers = iter(["k", "r", "tar", "x blurry photo", "s", "q"])
    file = tmp_path / "c.csv"
    counts = review_loop(q, lambda _p: next(answers), lambda _l: None, CLASSES, "ann", file)
    rows = list(csv.DictReader(file.open()))
    assert [r["decision"] for r in rows] == [
        "keep",
        "relabel" if q.iloc[1]["label"] != "targa" else "keep",
        "exclude",
    ]
    assert rows[2]["reason"] == "blurry photo"
    assert counts["skip"] == 1


# --- the command on a copy of the demo ---------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    try:
        return copy_demo(tmp_path_factory.mktemp("review-cli"))
    except FileNotFoundError as exc:
        pytest.skip(f"demo not built ({exc}); python -m audits demo")


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audits", *args], cwd=REPO, capture_output=True, text=True, **kw
    )


def test_list_json_is_the_pair_queue(demo) -> None:
    store, manifest, ids = demo
    out = cli(
        "review", ids["1.0.0"], "--store", str(store), "--queue", "pair", "targa:carrera", "--json"
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    table = pd.read_parquet(store / ids["1.0.0"] / "predictions.parquet")
    expected = table[(table["label"] == "targa") & (table["pred"] == "carrera")]
    assert payload["n"] == len(expected) == 88
    assert payload["corrections"] == str(manifest.with_name("manifest.corrections.csv"))
    first = payload["items"][0]
    assert set(first["versions"]) == {"1.1.0"}  # the other audited version on the same rows
    t11 = pd.read_parquet(store / ids["1.1.0"] / "predictions.parquet").set_index("path")
    assert first["versions"]["1.1.0"] == t11.loc[first["path"], "pred"]


def test_answers_file_appends_and_hides_decided(demo, tmp_path: Path) -> None:
    store, manifest, ids = demo
    answers = tmp_path / "answers.txt"
    answers.write_text("r carrera\nr car\nx not a car\nq\n")
    args = ("review", ids["1.0.0"], "--store", str(store), "--queue", "pair", "targa:carrera")
    out = cli(*args, "--answers", str(answers), "--reviewer", "ann")
    assert out.returncode == 0, out.stderr
    file = manifest.with_name("manifest.corrections.csv")
    assert out.stdout.strip().splitlines()[-1] == str(file)
    rows = list(csv.reader(file.open()))
    assert tuple(rows[0]) == HEADER
    assert [(r[3], r[4], r[5]) for r in rows[1:]] == [("relabel", "carrera", "ann")] * 2 + [
        ("exclude", "", "ann")
    ]
    listed = json.loads(cli(*args, "--json").stdout)
    assert listed["n"] == 85 and listed["n_decided_hidden"] == 3
    file.unlink()


def test_no_terminal_without_list_is_one_clear_error(demo) -> None:
    store, _, ids = demo
    out = cli("review", ids["1.0.0"], "--store", str(store), stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert out.stderr.strip().startswith(
        "error: review asks one question per image and needs a terminal"
    )
    assert "Traceback" not in out.stderr


def test_interactive_on_a_pty(demo) -> None:
    """A real terminal: the reviewer's name is asked, K keeps, R asks the class (prefix), Q quits."""
    store, manifest, ids = demo
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "audits", "review", ids["1.0.0"], "--store", str(store),
         "--queue", "pair", "targa:carrera"],
        cwd=REPO, stdin=slave, stdout=slave, stderr=slave, env=dict(os.environ, TERM="dumb"),
    )  # fmt: skip
    os.close(slave)
    seen = b""

    def until(text: bytes, timeout: float = 120) -> None:
        nonlocal seen
        end = time.monotonic() + timeout
        while text not in seen:
            assert time.monotonic() < end, seen.decode(errors="replace")[-2000:]
            if select.select([master], [], [], 1)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break

    until(b"reviewer name")
    os.write(master, b"Bea\n")
    until(b"[1/88]")
    until(b"> ")
    os.write(master, b"k\n")
    until(b"[2/88]")
    os.write(master, b"r\n")
    until(b"new class")
    os.write(master, b"tur\n")
    until(b"[3/88]")
    os.write(master, b"q\n")
    until(b"kept 1, relabelled 1")
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    file = manifest.with_name("manifest.corrections.csv")
    rows = list(csv.DictReader(file.open()))
    assert [(r["decision"], r["new_label"], r["reviewer"]) for r in rows] == [
        ("keep", "", "Bea"),
        ("relabel", "turbo", "Bea"),
    ]
    file.unlink()


# --- the page, headless --------------------------------------------------------------------


def review_page(store: Path, run: str, monkeypatch: pytest.MonkeyPatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AUDIT_STORE", str(store))
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
    at.query_params.update({"run": run})
    at.run()
    return at.switch_page("dashboard/pages/review.py").run()


def test_page_shows_the_first_suspect_and_keeps_with_a_reviewer(demo, monkeypatch) -> None:
    store, manifest, ids = demo
    at = review_page(store, ids["1.0.0"], monkeypatch)
    assert not at.exception and not at.error
    card = next(m.value for m in at.markdown if 'class="rv-card"' in m.value)
    assert 'data-pos="0"' in card
    assert any("Enter your name" in w.value for w in at.warning)  # required before deciding
    at.text_input(key="rv_reviewer").input("Cy").run()
    at.button(key="rv_keep").click().run()
    rows = list(csv.DictReader(manifest.with_name("manifest.corrections.csv").open()))
    assert [(r["decision"], r["reviewer"]) for r in rows] == [("keep", "Cy")]
    assert any('data-pos="1"' in m.value for m in at.markdown if 'class="rv-card"' in m.value)
    manifest.with_name("manifest.corrections.csv").unlink()


def test_page_without_the_data_set_says_so(tmp_path: Path, monkeypatch) -> None:
    from fixtures.synthetic_store import write_synthetic_run

    store = tmp_path / "store"
    run = write_synthetic_run(store, 4, 60, 0, version="1.0")
    at = review_page(store, Path(run).name, monkeypatch)
    assert not at.exception and not at.error
    assert any("not on this machine" in w.value for w in at.warning)
