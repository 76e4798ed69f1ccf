"""Bad corrections files and bad relabel calls through the CLI: one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from audits.corrections import HEADER_LINE
from audits.hashing import file_sha256
from tests.builders import make_manifest
from tests.faults.faultkit import one_line_error, run_cli

CLASSES = ["cat", "dog", "fox"]
WHEN = "2026-12-01T09:30:00Z"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    manifest = make_manifest(tmp_path / "data", CLASSES, per_class=3)
    assert run_cli(["freeze", str(manifest)]).returncode == 0
    return manifest


def _row(manifest: Path, rel: str, label: str, rest: str, sha: str | None = None) -> str:
    sha = sha or file_sha256(manifest.parent / rel)
    return f"{rel},{sha},{label},{rest},ann,,{WHEN}"


def _relabel(manifest: Path, lines: list[str], out: Path | None = None) -> tuple[str, Path]:
    (manifest.with_name("manifest.corrections.csv")).write_text("\n".join(lines) + "\n")
    out = out or manifest.parent.parent / "v2" / "manifest.csv"
    result = run_cli(["relabel", str(manifest), "--out", str(out)])
    assert result.returncode == 2, result.stdout + result.stderr
    return one_line_error(result.stderr), out


def test_bad_header(data: Path) -> None:
    line, out = _relabel(data, ["path,label", "img/cat_0.png,dog"])
    assert "manifest.corrections.csv: the header must be exactly" in line
    assert not out.exists()


def test_bad_decision_names_the_line(data: Path) -> None:
    line, out = _relabel(data, [HEADER_LINE, _row(data, "img/cat_0.png", "cat", "maybe,")])
    assert "line 2: decision 'maybe' is not one of keep, relabel, exclude" in line
    assert not out.parent.exists()


def test_stale_hash_names_the_rows(data: Path) -> None:
    rows = [HEADER_LINE, _row(data, "img/cat_0.png", "cat", "relabel,dog")]
    rows += [_row(data, f"img/dog_{i}.png", "dog", "exclude,", sha="0" * 64) for i in range(3)]
    line, out = _relabel(data, rows)
    assert "3 decision(s) do not match the frozen set" in line
    for i in range(3):
        assert f"line {i + 3} 'img/dog_{i}.png': sha256 no longer matches the file" in line
    assert "cat_0" not in line and not out.exists()


def test_unknown_class(data: Path) -> None:
    line, _ = _relabel(data, [HEADER_LINE, _row(data, "img/cat_0.png", "cat", "relabel,wolf")])
    assert "line 2 'img/cat_0.png': new_label 'wolf' is not a known class" in line


def test_path_not_in_the_set_and_wrong_old_label(data: Path) -> None:
    rows = [
        HEADER_LINE,
        f"img/wolf.png,{'0' * 64},cat,keep,,ann,,{WHEN}",
        _row(data, "img/fox_1.png", "dog", "keep,"),
    ]
    line, _ = _relabel(data, rows)
    assert "line 2 'img/wolf.png': not in the set" in line
    assert "line 3 'img/fox_1.png': old_label 'dog' but the set says 'fox'" in line


def test_missing_corrections_file(data: Path, tmp_path: Path) -> None:
    result = run_cli(["relabel", str(data), "--out", str(tmp_path / "v2.csv")])
    assert result.returncode == 2
    assert "manifest.corrections.csv: corrections file not found" in one_line_error(result.stderr)


def test_unfrozen_parent(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "raw", CLASSES, per_class=2)
    line, _ = _relabel(manifest, [HEADER_LINE, _row(manifest, "img/cat_0.png", "cat", "keep,")])
    assert "not frozen" in line and f"python -m audits freeze {manifest}" in line


def test_parent_changed_since_frozen(data: Path) -> None:
    (data.parent / "img" / "dog_0.png").write_bytes(b"not the image any more")
    line, _ = _relabel(data, [HEADER_LINE, _row(data, "img/cat_0.png", "cat", "keep,")])
    assert "moved since it was frozen" in line and "img/dog_0.png" in line


def test_out_exists_needs_force(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "v2.csv"
    out.write_text("mine\n")
    line, _ = _relabel(data, [HEADER_LINE, _row(data, "img/cat_0.png", "cat", "keep,")], out)
    assert f"{out}: already exists" in line and "--force" in line
    assert out.read_text() == "mine\n"
    forced = run_cli(["relabel", str(data), "--out", str(out), "--force"])
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip().splitlines()[-1] == str(out)
