"""Helpers of the fault tests (H4): hostile model folders, the store's listing, the CLI's output."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.builders import TINY_NET, make_model_dir

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["cat", "dog", "fox"]
FORWARD = "        return self.fc(self.pool(self.features(x)).flatten(1))\n"


def model_with_forward(root: Path, body: str, header: str = "") -> Path:
    """A tiny model folder whose ``forward`` is ``body`` (indented 8 spaces) after ``header``.

    The parameters are TinyNet's, so the weights load; only the behaviour differs.
    """
    make_model_dir(root, classes=CLASSES)
    assert FORWARD in TINY_NET
    (root / "net.py").write_text(header + TINY_NET.replace(FORWARD, body))
    return root


def listing(store: Path) -> list[str]:
    """Every path under the store (hidden ones included), relative, sorted."""
    if not store.exists():
        return []
    return sorted(str(p.relative_to(store)) for p in store.rglob("*"))


def one_line_error(stderr: str) -> str:
    """The ``error:`` line of a failed command, after checking nothing else went wrong."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def run_cli(
    args: list[str],
    timeout: float = 600,
    preexec: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m audits ARGS`` from the repository root, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "audits", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        check=False,
    )


@contextlib.contextmanager
def tmpfs(folder: Path, size: str, read_only: bool = False) -> Iterator[bool]:
    """Mount a small tmpfs at ``folder`` for the block; yields False when this machine cannot."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield False
        return
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, check=False)
