"""The stale-folder sweep never removes a live run's temporary folder (issue 14, found 9).

A second, real process builds a run and stays inside it (its temporary folder open) while
this process sweeps the store. The window the old sweep lost (between ``mkdir`` and the
``.pid`` write) is widened deterministically: the child sleeps at the start of that write.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from audits.store import _clean_stale, create_run, list_runs

REPO = Path(__file__).resolve().parents[2]

# A run that (1) sleeps when it would write a .pid marker, (2) sleeps inside the run, then
# (3) completes: a marker file and the run folder appear.
CHILD = textwrap.dedent(
    """
    import pathlib, sys, time
    from audits.store import create_run

    write_text = pathlib.Path.write_text

    def slow_write(self, data, *args, **kwargs):
        if self.name == ".pid":
            time.sleep(float(sys.argv[3]))  # the old window between mkdir and the pid marker
        return write_text(self, data, *args, **kwargs)

    pathlib.Path.write_text = slow_write
    with create_run(sys.argv[1], sys.argv[2]) as tmp:
        (tmp / "audit.json").write_text("{}")
        time.sleep(float(sys.argv[3]))
    print("done", flush=True)
    """
)


def _start(store: Path, run_id: str, hold: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store), run_id, str(hold)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_tmp(store: Path, proc: subprocess.Popen[str], timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in store.glob(".tmp-*") if p.is_dir()]
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"the child exited early: {proc.communicate()}")
        time.sleep(0.01)
    pytest.fail("the child never made its temporary folder")


def test_sweep_leaves_a_live_runs_folder(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    proc = _start(store, "20260101T000000-live-1-audit-aaaaaa", hold=4.0)
    try:
        tmp = _wait_for_tmp(store, proc)
        _clean_stale(store)  # as the next run's start does
        assert tmp.is_dir(), "the sweep removed a live run's temporary folder"
        # another run started meanwhile sweeps too, and completes beside it
        with create_run(store, "20260101T000001-other-1-audit-bbbbbb") as other:
            (other / "audit.json").write_text("{}")
        assert tmp.is_dir()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.strip() == "done"
    assert (store / "20260101T000000-live-1-audit-aaaaaa" / "audit.json").is_file()
    assert not list(store.glob(".tmp-*")) and not list(store.glob(".stage-*"))
    assert not (store / "20260101T000000-live-1-audit-aaaaaa" / ".lock").exists()


def test_sweep_removes_a_killed_runs_folder(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    proc = _start(store, "20260101T000000-dead-1-audit-cccccc", hold=60.0)
    tmp = _wait_for_tmp(store, proc)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tmp.is_dir()  # a kill -9 leaves it behind
    _clean_stale(store)
    assert not tmp.exists()
    assert list_runs(store) == []


def test_sweep_keeps_older_versions_rules(tmp_path: Path) -> None:
    """Folders of the previous format: a dead pid is swept; no marker at all is left alone."""
    store = tmp_path / "store"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    legacy_dead = store / ".tmp-old-dead-1"
    legacy_dead.mkdir(parents=True)
    (legacy_dead / ".pid").write_text(dead.stdout.strip())
    legacy_live = store / ".tmp-old-live-1"
    legacy_live.mkdir()
    (legacy_live / ".pid").write_text(str(os.getpid()))
    unmarked = store / ".tmp-unmarked-1"
    unmarked.mkdir()
    _clean_stale(store)
    assert not legacy_dead.exists()
    assert legacy_live.is_dir() and unmarked.is_dir()
