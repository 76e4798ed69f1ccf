"""Speed measurement (audits.speed) and the compare command end to end on tiny models."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from auditapp.cli import main as cli_main
from auditapp.pipeline.audit import run_audit
from audits.errors import AuditError
from audits.speed import (
    SpeedResult,
    interleaved_blocks,
    load_run_model,
    measure_speed,
    sample_paths,
)
from audits.store import load_run
from tests.builders import make_manifest, make_model_dir

CLASSES = ["cat", "dog", "fox"]
FAST = {"n_images": 8, "latency_images": 4, "batch_size": 4, "repeats": 2, "min_time": 0.0}


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Two audit runs of tiny models (different weights) on one held-out manifest."""
    root = tmp_path_factory.mktemp("speed")
    data = make_manifest(root / "data", CLASSES, per_class=6)
    store = root / "store"
    runs = []
    for seed, version in ((0, "1.0.0"), (1, "1.1.0")):
        model = make_model_dir(root / f"model-{version}", CLASSES, seed=seed, version=version)
        runs.append(
            run_audit(
                model,
                data,
                store=store,
                device="cpu",
                batch_size=8,
                workers=0,
                skip=("explain", "integrity"),
            )
        )
    return root, store, runs


def test_sample_paths_is_fixed_and_in_order():
    paths = [f"img/{i:03d}.png" for i in range(100)]
    sample = sample_paths(paths, 10)
    assert sample == sample_paths(paths, 10)
    assert len(sample) == 10 and sample == sorted(sample) and set(sample) <= set(paths)
    assert sample_paths(paths[:5], 10) == paths[:5]


def test_blocks_alternate_a_b_b_a_and_start_with_an_untimed_call():
    order: list[str] = []
    calls = (lambda x: order.append(f"A{int(x)}"), lambda x: order.append(f"B{int(x)}"))
    inputs = ([torch.tensor(i) for i in range(3)], [torch.tensor(i) for i in range(3)])
    ba, bb = interleaved_blocks(calls, inputs, torch.device("cpu"), min_calls=4, block=2)
    # Blocks of 1 untimed + 2 timed calls, inputs taken in turn round the list.
    assert order == ["A0", "A1", "A2", "B0", "B1", "B2", "B0", "B1", "B2", "A0", "A1", "A2"]
    assert [len(b) for b in ba] == [2, 2] and [len(b) for b in bb] == [2, 2]
    assert min(t for b in ba + bb for t in b) >= 0


def test_short_blocks_repeat_until_the_minimum_time():
    calls = (lambda x: None, lambda x: None)
    one = ([torch.zeros(1)], [torch.zeros(1)])
    ba, _ = interleaved_blocks(calls, one, torch.device("cpu"), min_time=0.01)
    assert sum(t for b in ba for t in b) >= 0.01 and len(ba) > 1


def test_from_numbers_ratios():
    s = SpeedResult.from_numbers(latency_ms=(2.0, 2.5), throughput=(500.0, 400.0))
    assert s.latency_ratio == pytest.approx(1.25) and s.throughput_ratio == pytest.approx(0.8)
    assert s.to_dict()["a"]["latency_ms"] == 2.0


def test_measure_speed_on_tiny_models(tiny_runs):
    _, _, (path_a, path_b) = tiny_runs
    run_a, run_b = load_run(path_a), load_run(path_b)
    threads = torch.get_num_threads()
    s = measure_speed(run_a, run_b, run_a.table["path"].tolist(), device="cpu", **FAST)
    assert torch.get_num_threads() == threads  # restored
    assert s.a.latency_ms > 0 and s.b.latency_ms > 0 and s.a.throughput > 0
    assert len(s.a.latency_ms_repeats) == 2
    assert (
        s.a.params
        == s.b.params
        == sum(p.numel() for p in load_run_model(run_a, torch.device("cpu"))[1].parameters())
    )
    assert s.a.weights_bytes > 0
    assert s.device["type"] == "cpu" and s.device["threads"] == 1
    assert s.settings["images"] == 8 and s.settings["batch_size"] == 4
    assert s.settings["clock"] == "thread CPU time"  # one CPU thread: immune to other processes
    assert s.latency_ratio > 0 and s.throughput_ratio > 0


def test_changed_weights_are_refused(tiny_runs, tmp_path):
    root, _, (path_a, _) = tiny_runs
    run = load_run(path_a)
    moved = json.loads((path_a / "audit.json").read_text())
    copy = tmp_path / "run"
    shutil.copytree(path_a, copy)
    moved["model"]["weights_sha256"] = "0" * 64
    (copy / "audit.json").write_text(json.dumps(moved))
    with pytest.raises(AuditError, match="weights changed since run"):
        load_run_model(load_run(copy), torch.device("cpu"))
    moved["model"]["dir"] = str(root / "gone")
    (copy / "audit.json").write_text(json.dumps(moved))
    with pytest.raises(AuditError, match="no longer usable .* --no-speed"):
        load_run_model(load_run(copy), torch.device("cpu"))
    assert load_run_model(run, torch.device("cpu"))[0].version == "1.0.0"


def test_compare_command_end_to_end(tiny_runs, capsys):
    _, store, (path_a, path_b) = tiny_runs
    code = cli_main(
        ["compare", "tiny@1.0.0", "tiny@1.1.0", "--store", str(store), "--device", "cpu",
         "--speed-images", "8", "--speed-batch-size", "4", "--speed-repeats", "2"]
    )  # fmt: skip
    out = capsys.readouterr().out.strip().splitlines()
    assert code in (0, 1)
    assert out[-1].startswith("promote: " if code == 0 else "hold: ")
    stored = [p for p in store.iterdir() if "comparison" in p.name]
    assert len(stored) == 1
    doc = load_run(stored[0]).comparison
    assert doc.verdict == ("promote" if code == 0 else "hold") and doc.summary == out[-1]
    assert doc.run_a.path == str(path_a.resolve()) and doc.speed.settings["repeats"] == 2
    assert doc.dataset.n_aligned == 18

    # The same run twice: no difference, so no gain; hold with exit 1.
    assert (
        cli_main(["compare", str(path_a), str(path_a), "--no-speed", "--no-save", "--quiet"]) == 1
    )
    line = capsys.readouterr().out.strip()
    assert line.startswith("hold: no significant gain") and "agree on every image" in line
