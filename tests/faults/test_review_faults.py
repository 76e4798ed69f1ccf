"""Hostile or broken inputs to ``python -m audits review``: one line, exit 2, no traceback.

On a private copy of the demo (``tests/review_copies.py``); skipped when the demo is not built.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditapp.commands.review_cmd import describe, plain
from tests.review_copies import copy_demo

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def demo(tmp_path: Path):
    try:
        return copy_demo(tmp_path, versions=("1.0.0",))
    except FileNotFoundError as exc:
        pytest.skip(f"demo not built ({exc}); python -m audits demo")


def review(store: Path, run: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audits", "review", run, "--store", str(store), "--list", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
    )


def one_line_error(out: subprocess.CompletedProcess, *needles: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in lines[0]


def test_held_out_set_moved_away(demo) -> None:
    store, manifest, ids = demo
    manifest.rename(manifest.with_name("moved.csv"))
    one_line_error(review(store, ids["1.0.0"]), str(manifest), "not on this machine")


def test_corrections_file_with_a_wrong_header(demo) -> None:
    store, manifest, ids = demo
    file = manifest.with_name("manifest.corrections.csv")
    file.write_text("path,label\nimages/00001.png,targa\n")
    one_line_error(review(store, ids["1.0.0"]), str(file), "header must be exactly")


def test_corrections_row_with_a_bad_time(demo) -> None:
    store, manifest, ids = demo
    file = manifest.with_name("manifest.corrections.csv")
    file.write_text(
        "path,sha256,old_label,decision,new_label,reviewer,reason,time\n"
        "images/00001.png,ab,targa,keep,,ann,,yesterday\n"
    )
    one_line_error(review(store, ids["1.0.0"]), "line 2", "not UTC ISO 8601")


def test_unknown_queue_and_class(demo) -> None:
    store, _, ids = demo
    one_line_error(review(store, ids["1.0.0"], "--queue", "worst"), "--queue must be")
    one_line_error(
        review(store, ids["1.0.0"], "--queue", "pair", "targa:porsche"), "'porsche' is not one"
    )


def test_answers_without_reviewer(demo, tmp_path: Path) -> None:
    store, _, ids = demo
    answers = tmp_path / "a.txt"
    answers.write_text("k\n")
    out = subprocess.run(
        [sys.executable, "-m", "audits", "review", ids["1.0.0"], "--store", str(store),
         "--answers", str(answers)],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    one_line_error(out, "--answers needs --reviewer")


def test_control_characters_in_a_path_are_shown_escaped() -> None:
    """A path or label with terminal escapes cannot drive the reviewer's terminal."""
    item = {
        "path": "images/\x1b[2Jevil\n.png",
        "label": "targa\x07",
        "pred": "carrera",
        "confidence": 0.9,
        "p_label": 0.1,
        "top5": [("carrera\x1b[31m", 0.9)],
        "why": "filter",
        "versions": {"1.1.0": "targa\r"},
    }
    text = "\n".join(describe(item, 0, 1, Path("/data")))
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "\\x1b[2Jevil\\n.png" in text
    assert plain("ok name") == "ok name"


def test_json_list_of_an_empty_queue(demo) -> None:
    store, _, ids = demo
    out = review(store, ids["1.0.0"], "--queue", "pair", "safari:gt", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["n"] == 0
