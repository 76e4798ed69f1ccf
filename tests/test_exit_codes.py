"""The exit-code table, command by command: 0 ok, 1 a gate says no, 2 user or environment
error, 3 a bug (``python -m audits --help`` shows the table).

Before: ``drift`` had no ``--fail-on-drift`` and ``claims`` no ``--strict``, so a pipeline
could not gate on drift or on a contradicted claim (both exited 0).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from auditapp.cli import main as cli_main
from tests.builders import make_model_dir
from tests.test_cli_json import demo_run, one_json
from tests.test_drift_cli import CLASSES, photos

DOGS = '[[claim]]\ntext = "half have dogs"\nkind = "share_at_least"\nslice = { dog = true }\nvalue = 0.5\n'
FEW_DOGS = (
    '[[claim]]\ntext = "few dogs"\nkind = "share_at_most"\nslice = { dog = true }\nvalue = 0.5\n'
)


@pytest.fixture(scope="module")
def drift_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exit-drift")
    return {
        "model": make_model_dir(root / "model", classes=CLASSES),
        "reference": photos(root / "reference", 36, seed=1),
        "same": photos(root / "same", 30, seed=2),
        "fan": photos(root / "fan", 30, seed=3, level=0.45, blur=1.5, labelled=False),
    }


def drift(sets: dict[str, Path], current: str, store: Path, *extra: str) -> int:
    return cli_main(
        ["drift", "--model", str(sets["model"]), "--reference", str(sets["reference"]),
         "--current", str(sets[current]), "--store", str(store), "--workers", "0",
         "--permutations", "200", "--device", "cpu", "--quiet", *extra]
    )  # fmt: skip


def test_drift_fail_on_drift_exits_1_only_with_drift(drift_sets, tmp_path, capsys):
    assert drift(drift_sets, "fan", tmp_path / "a", "--fail-on-drift", "--json") == 1
    doc, _ = one_json(capsys)
    assert doc["drift"] is True and doc["exit_code"] == 1
    assert json.loads((Path(doc["run"]) / "drift.json").read_text())["drift"] is True  # stored
    assert drift(drift_sets, "fan", tmp_path / "b") == 0  # without the flag: informational
    capsys.readouterr()
    assert drift(drift_sets, "same", tmp_path / "c", "--fail-on-drift", "--json") == 0
    assert one_json(capsys)[0]["drift"] is False


@pytest.fixture
def claims_run(tmp_path: Path) -> Path:
    """The demo's 1.0.0 audit record and predictions, copied (claims write into the run)."""
    src = demo_run("1.0.0")
    run = tmp_path / src.name
    run.mkdir()
    for name in ("audit.json", "predictions.parquet"):
        shutil.copy2(src / name, run / name)
    return run


def test_claims_strict_exits_1_on_a_contradicted_claim(claims_run, tmp_path, capsys):
    dogs = tmp_path / "dogs.toml"
    dogs.write_text(DOGS)  # 6 of 1200 images show a dog
    assert cli_main(["claims", str(claims_run), str(dogs), "--strict", "--json"]) == 1
    doc, _ = one_json(capsys)
    assert [r["verdict"] for r in doc["results"]] == ["contradicted"]
    assert doc["existed"] is False and Path(doc["claims_json"]).is_file()
    assert cli_main(["claims", str(claims_run), str(dogs)]) == 0  # without --strict
    capsys.readouterr()
    few = tmp_path / "few.toml"
    few.write_text(FEW_DOGS)
    assert cli_main(["claims", str(claims_run), str(few), "--strict", "--json"]) == 0
    assert [r["verdict"] for r in one_json(capsys)[0]["results"]] == ["supported"]


def test_compare_hold_exits_1_and_promote_0(capsys):
    a, b = demo_run("1.0.0"), demo_run("1.1.0")
    assert cli_main(["compare", str(b), str(a), "--no-speed", "--no-save", "--json"]) == 1
    doc, _ = one_json(capsys)
    assert doc["verdict"] == "hold" and doc["exit_code"] == 1
    assert cli_main(["compare", str(a), str(b), "--no-speed", "--no-save", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("promote")


def test_verify_altered_exits_1(tmp_path, capsys):
    run = demo_run("1.1.0")
    assert cli_main(["export", str(run), "--format", "csv", "--out", str(tmp_path), "--json"]) == 0
    folder = Path(one_json(capsys)[0]["folder"])
    assert cli_main(["verify", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == "ok"
    victim = sorted(folder.glob("*.csv"))[0]
    victim.write_text(victim.read_text() + "x\n")
    assert cli_main(["verify", str(folder), "--json"]) == 1
    doc, _ = one_json(capsys)
    assert doc["ok"] is False and doc["exit_code"] == 1
    assert doc["altered"] == [f"altered: {victim.name} (sha256 differs from the manifest)"]


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "/nonexistent/export"],
        ["freeze", "/nonexistent/data"],
        ["compare", "no-such-run", "other", "--no-speed"],
    ],
)
def test_user_errors_exit_2(argv, capsys):
    assert cli_main(["--json", *argv]) == 2
    doc, err = one_json(capsys)
    assert doc["exit_code"] == 2 and doc["error"] == err.strip()
