"""``dashboard``: stopping the command stops the Streamlit server it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.mark.slow
def test_sigterm_to_the_command_stops_streamlit(tmp_path: Path) -> None:
    pytest.importorskip("streamlit")
    from fixtures.synthetic_store import write_synthetic_run

    store = tmp_path / "store"
    write_synthetic_run(store, 3, 30, 0, version="1.0")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "audits", "dashboard", "--store", str(store), "--port",
           str(port), "--host", "127.0.0.1", "--no-browser"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ), stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not _healthy(url):
            assert proc.poll() is None and time.monotonic() < deadline, "dashboard did not start"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)  # what kill, timeout, systemd and docker stop send
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 30
        while _healthy(url):  # the child server must be gone too
            assert time.monotonic() < deadline, "Streamlit still serves after SIGTERM"
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
