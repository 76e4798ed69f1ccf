"""The README's Python API example runs as written, in a fresh ``python`` process on the demo.

The example is the first ```python block under the README heading ``## Python API``; until
that section exists, ``docs/api_example.py`` (the same code, kept as a file) is run instead.
When both exist they must be the same code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEADING = "## Python API"
EXAMPLE_FILE = REPO / "docs" / "api_example.py"


def readme_example() -> str | None:
    """The first python code block under ``HEADING`` in README.md, or None."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.find(f"\n{HEADING}\n")
    if start < 0:
        return None
    section = text[start + len(HEADING) + 2 :]
    section = section[: m.start()] if (m := re.search(r"^## ", section, re.M)) else section
    block = re.search(r"^```python\n(.*?)^```", section, re.S | re.M)
    return block.group(1) if block else None


def test_the_example_file_matches_the_readme():
    code = readme_example()
    if code is not None:
        assert code.strip() == EXAMPLE_FILE.read_text(encoding="utf-8").strip()


def test_the_readme_api_example_runs(tmp_path):
    code = readme_example() or EXAMPLE_FILE.read_text(encoding="utf-8")
    env = {**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-"],
        input=code,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^accuracy \d+\.\d%$", out, re.M)
    assert re.search(r"^(promote|hold) - (promote|hold): ", out, re.M)
    assert "\nTrue\n" in out  # the saved run loads back with the same metrics
    export = Path(out.strip().splitlines()[-1])
    assert (export / "export.json").is_file()
    # Every temporary store the API made was removed when its process ended.
    assert not list(tmp_path.glob("model-audit-*"))
