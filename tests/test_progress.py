"""Progress bars of the slow stages: on stderr, only on a terminal, off with ``--quiet``.

Before: hashing, leakage signatures, image properties, speed repeats and exports showed no
progress at all, and the inference bar wrote into captured, non-terminal stderr (CI logs).
"""

from __future__ import annotations

import io
import sys

import pytest

from audits import progress
from audits.datasets import hash_files, load_dataset
from audits.image_properties import set_properties
from audits.leakage.signatures import signatures
from tests.builders import make_imagefolder


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch):
    """Makes stderr a terminal with bars drawn at once (no one-second delay).

    Called inside the test: pytest reinstalls its own stderr after fixtures set up."""

    def patch() -> Terminal:
        fake = Terminal()
        monkeypatch.setattr(sys, "stderr", fake)
        monkeypatch.setattr(progress, "DELAY_S", 0.0)
        progress.set_enabled(True)
        return fake

    yield patch
    progress.set_enabled(True)


def test_tracked_yields_the_items_and_draws_on_a_terminal(terminal):
    terminal = terminal()
    assert list(progress.tracked(iter([1, 2, 3]), 3, "hashing")) == [1, 2, 3]
    assert "hashing" in terminal.getvalue() and "0/3" in terminal.getvalue()


def test_no_bar_when_disabled_or_not_a_terminal(terminal, monkeypatch):
    terminal = terminal()
    progress.set_enabled(False)
    assert list(progress.tracked(range(3), 3, "hashing")) == [0, 1, 2]
    assert terminal.getvalue() == ""
    progress.set_enabled(True)
    plain = io.StringIO()  # isatty() is False: a CI log or a pipe
    monkeypatch.setattr(sys, "stderr", plain)
    assert list(progress.tracked(range(3), 3, "hashing")) == [0, 1, 2]
    assert plain.getvalue() == ""


def test_a_quick_stage_draws_nothing(monkeypatch):
    fake = Terminal()
    monkeypatch.setattr(sys, "stderr", fake)
    assert list(progress.tracked(range(3), 3, "hashing")) == [0, 1, 2]  # under DELAY_S
    assert fake.getvalue() == ""


def test_slow_stages_have_bars(terminal, tmp_path):
    data = make_imagefolder(tmp_path / "d", ["a", "b"], per_class=3)
    terminal = terminal()
    image_set = load_dataset(data)
    hashes = hash_files(image_set)
    assert len(hashes) == 6 and "hashing" in terminal.getvalue()
    table, _ = set_properties(image_set)
    assert len(table) == 6 and "image properties" in terminal.getvalue()
    paths = [image_set.abspath(p) for p in image_set.items["path"]]
    signatures(paths)
    assert "leakage" in terminal.getvalue()


def test_quiet_turns_bars_off(tmp_path, monkeypatch):
    from auditapp.cli import main as cli_main

    monkeypatch.setattr(progress, "_enabled", True)
    assert cli_main(["list", "--store", str(tmp_path), "--json"]) == 0
    assert progress._enabled is True
    cli_main(
        ["drift", "--model", str(tmp_path / "no"), "--reference", "r", "--current", "c", "--quiet"]
    )
    assert progress._enabled is False
    progress.set_enabled(True)


def test_speed_repeats_and_exports_have_bars(terminal, tmp_path):
    import time

    import torch

    from audits.speed import _time_repeats
    from reports.export import export_run
    from tests.test_cli_json import demo_run

    run = demo_run("1.0.0")
    terminal = terminal()
    x1, x2 = torch.zeros(1, 3), torch.zeros(2, 3)
    calls = (lambda x: x * 2, lambda x: x + 1)
    workloads = (([x1, x1], [x1, x1]), ([x2], [x2]))
    timings = _time_repeats(calls, workloads, torch.device("cpu"), 2, 0.0, time.perf_counter)
    assert len(timings.latency[0]) == 2 and "timing" in terminal.getvalue()
    export_run(run, "csv", tmp_path / "out")
    assert "export" in terminal.getvalue()
