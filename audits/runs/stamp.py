"""Who wrote a record and when: the ``created`` time and the ``auditor`` block."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from audits.runs.base import CREATED_FORMAT
from audits.version import __version__


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def utc_stamp(when: datetime | None = None) -> str:
    """``created``: '2026-11-23T16:00:00Z' (now, or ``when``)."""
    return (when or utc_now()).strftime(CREATED_FORMAT)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10, check=False
    )


def auditor_identity() -> dict[str, str]:
    """This tool's own version and git commit (``+dirty`` when the checkout has edits)."""
    here = Path(__file__).resolve().parents[2]
    if not (here / ".git").exists():
        # Installed: not the git state of whatever folder site-packages sits in, but the
        # commit the wheel was built from (written by scripts/wheel_layout.py).
        built = Path(__file__).resolve().parents[1] / "build_commit.txt"
        commit = built.read_text(encoding="utf-8").strip() if built.is_file() else "unknown"
        return {"version": __version__, "commit": commit or "unknown"}
    commit = "unknown"
    try:
        out = _git(here, "rev-parse", "--short=12", "HEAD")
        if out.returncode == 0:
            commit = out.stdout.strip()
            dirty = _git(here, "status", "--porcelain", "--untracked-files=no")
            if dirty.returncode == 0 and dirty.stdout.strip():
                commit += "+dirty"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"version": __version__, "commit": commit}
