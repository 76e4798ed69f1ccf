"""``--json`` on every command: exactly one JSON object on stdout, the stored record's fields.

Before: no command took ``--json`` (argparse refused it), so a script had to scrape Rich
tables; ``--store`` ignored ``$AUDIT_STORE``; several options had no help.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import pytest

from auditapp import cli
from auditapp.cli import build_parser
from auditapp.cli import main as cli_main
from auditapp.commands.options import DEVICE_METAVAR, STORE_ENV
from tests.builders import make_imagefolder, make_model_dir

CLASSES = ["cat", "dog", "fox"]
DEMO_STORE = Path(__file__).resolve().parent.parent / "audit-store"


def demo_run(version: str) -> Path:
    """A run of the demo store, read only (skips when the store was not built)."""
    found = sorted(DEMO_STORE.glob(f"*-car-variants-{version}-audit-*"))
    if not found:
        pytest.skip("demo store not built (python -m audits demo)")
    return found[-1]


def one_json(capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    """The one JSON object on stdout (nothing else there), and stderr."""
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 1, out.out[:2000]
    return json.loads(lines[0]), out.err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-json")
    return {
        "root": root,
        "model": make_model_dir(root / "model", classes=CLASSES),
        "data": make_imagefolder(root / "data", CLASSES, per_class=4),
        "store": root / "store",
    }


@pytest.fixture(scope="module")
def audited(tiny: dict[str, Path]) -> tuple[dict, Path]:
    """``run --json`` once (module scope): the parsed object and the run folder."""
    # module scope: capsys is per test, so capture by hand
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main(
            ["--json", "run", "--model", str(tiny["model"]), "--data", str(tiny["data"]),
             "--store", str(tiny["store"]), "--workers", "0", "--device", "cpu",
             "--no-integrity", "--explain-max", "2", "--explain-baseline", "1"]
        )  # fmt: skip
    assert rc == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, out.getvalue()[:2000]
    doc = json.loads(lines[0])
    return doc, Path(doc["run"])


def test_run_json_is_the_audit_record_plus_the_folder(audited):
    doc, run = audited
    stored = json.loads((run / "audit.json").read_text())
    assert {k: v for k, v in doc.items() if k not in ("run", "exit_code")} == stored
    assert doc["kind"] == "audit" and doc["exit_code"] == 0
    assert doc["run_id"] == run.name and run.is_dir()
    assert {"metrics", "model", "dataset", "timings"} <= set(doc)


def test_json_after_the_command_and_without_it(tiny, audited, capsys):
    _, run = audited
    assert cli_main(["list", "--store", str(tiny["store"]), "--json"]) == 0
    doc, _ = one_json(capsys)
    assert [r["run_id"] for r in doc["runs"]] == [run.name]
    assert cli_main(["list", "--store", str(tiny["store"])]) == 0
    assert not capsys.readouterr().out.lstrip().startswith("{")  # the human table


def test_list_json_fields(tiny, audited, capsys):
    doc_run, run = audited
    assert cli_main(["--json", "list", "--store", str(tiny["store"])]) == 0
    doc, _ = one_json(capsys)
    assert doc["store"] == str(tiny["store"]) and doc["damaged"] == []
    (entry,) = doc["runs"]
    assert entry == {
        "run_id": run.name,
        "kind": "audit",
        "path": str(run),
        "model": {"name": "tiny", "version": "1.0.0"},
        "data": doc_run["dataset"]["path"],
        "n_images": 12,
        "accuracy": doc_run["metrics"]["accuracy"],
        "verdict": None,
        "drift": None,
        "created": doc_run["created"],
    }


def test_audit_store_is_the_default_store_and_store_overrides_it(
    tiny, audited, monkeypatch, capsys, tmp_path
):
    _, run = audited
    monkeypatch.setenv(STORE_ENV, str(tiny["store"]))
    assert cli_main(["list", "--json"]) == 0
    assert [r["run_id"] for r in one_json(capsys)[0]["runs"]] == [run.name]
    assert cli_main(["list", "--json", "--store", str(tmp_path)]) == 0
    assert one_json(capsys)[0]["runs"] == []
    # every command with --store defaults to it
    parser = build_parser()
    for argv in (
        ["run", "--model", "m", "--data", "d"],
        ["drift", "--model", "m", "--reference", "r", "--current", "c"],
        ["list"],
        ["demo"],
    ):
        assert parser.parse_args(argv).store == str(tiny["store"]), argv
    monkeypatch.delenv(STORE_ENV)
    assert build_parser().parse_args(["list"]).store == "audit-store"


def test_compare_looks_run_ids_up_in_audit_store(monkeypatch, capsys):
    a, b = demo_run("1.0.0"), demo_run("1.1.0")
    monkeypatch.setenv(STORE_ENV, str(DEMO_STORE))
    code = cli_main(["compare", a.name, b.name, "--no-speed", "--no-save", "--json"])
    doc, _ = one_json(capsys)
    assert code == 0 and doc["exit_code"] == 0
    assert doc["run_a"]["run_id"] == a.name and doc["run_b"]["run_id"] == b.name


def test_compare_json_is_the_comparison_record_and_the_verdict(capsys):
    a, b = demo_run("1.0.0"), demo_run("1.1.0")
    code = cli_main(["--json", "compare", str(a), str(b), "--no-speed", "--no-save"])
    doc, _ = one_json(capsys)
    assert code == 0 and doc["verdict"] == "promote" and doc["comparison"] is None
    assert {"overall", "per_class", "checks", "thresholds", "summary", "reasons"} <= set(doc)
    assert doc["summary"].startswith("promote")


def test_freeze_json(tmp_path, capsys):
    data = make_imagefolder(tmp_path / "data", CLASSES, per_class=2)
    assert cli_main(["freeze", str(data), "--json"]) == 0
    doc, _ = one_json(capsys)
    stored = json.loads((data / "freeze.json").read_text())
    assert doc["status"] == "frozen" and doc["freeze_file"] == str(data / "freeze.json")
    assert doc["fingerprint"] == stored["fingerprint"] and doc["n_images"] == 6
    assert cli_main(["freeze", str(data), "--json"]) == 0
    assert one_json(capsys)[0]["status"] == "unchanged"


def test_explain_json(audited, capsys):
    _, run = audited
    code = cli_main(["explain", str(run), "--json", "--device", "cpu", "--max", "1",
                     "--baseline", "0", "--no-overlays", "--method", "gradcam++"])  # fmt: skip
    doc, _ = one_json(capsys)
    assert code == 0, doc
    folder = Path(doc["folder"])
    assert folder.parent == run and folder.name.startswith("explain")
    stored = json.loads((folder / "summary.json").read_text())
    assert doc["method"] == stored["method"] == "gradcam++"
    assert doc["layer"] == stored["layer"]


def test_export_and_verify_json(tmp_path, capsys):
    run = demo_run("1.0.0")
    assert (
        cli_main(["export", str(run), "--format", "json,csv", "--out", str(tmp_path), "--json"])
        == 0
    )
    doc, _ = one_json(capsys)
    folder = Path(doc["folder"])
    assert doc["run_id"] == run.name and folder.parent == tmp_path
    manifest = json.loads((folder / "manifest.json").read_text())
    assert doc["manifest"] == manifest
    assert {f["path"] for f in manifest["files"]} <= {p.name for p in folder.iterdir()}
    assert cli_main(["verify", str(folder), "--json"]) == 0
    assert one_json(capsys)[0] == {"ok": True, "folder": str(folder), "altered": [], "exit_code": 0}


def test_demo_json(monkeypatch, tmp_path, capsys):
    import auditapp.demo

    def fake(store, device):
        print("building…")  # human output must not reach stdout in JSON mode
        return Path(store) / "run-x"

    monkeypatch.setattr(auditapp.demo, "ensure_demo_store", fake)
    assert cli_main(["demo", "--store", str(tmp_path), "--json"]) == 0
    doc, err = one_json(capsys)
    assert doc == {"store": str(tmp_path), "run": str(tmp_path / "run-x"), "exit_code": 0}
    assert "building…" in err


def test_error_is_a_json_object_too(tmp_path, capsys):
    code = cli_main(["--json", "run", "--model", str(tmp_path / "nope"), "--data", str(tmp_path)])
    doc, err = one_json(capsys)
    assert code == 2 and doc["exit_code"] == 2
    assert doc["error"] == err.strip() and err.count("\n") == 1
    assert str(tmp_path / "nope") in doc["error"]


def test_option_error_is_a_json_object_too(capsys):
    with pytest.raises(SystemExit) as info:
        cli_main(["list", "--json", "--bogus"])
    assert info.value.code == 2
    doc, err = one_json(capsys)
    assert doc == {"error": err.strip(), "exit_code": 2}
    assert "--bogus" in doc["error"]


def test_a_bug_is_exit_3_with_its_log_in_json(monkeypatch, tmp_path, capsys):
    import auditapp.commands.list_cmd as list_cmd

    monkeypatch.setattr(cli, "bug_log_path", lambda: tmp_path / "bug.log")

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(list_cmd, "main", broken)
    assert cli_main(["list", "--json"]) == 3
    doc, _ = one_json(capsys)
    assert doc["exit_code"] == 3 and "RuntimeError: boom" in doc["error"]
    assert doc["log"] == str(tmp_path / "bug.log") and "boom" in (tmp_path / "bug.log").read_text()


def test_nan_becomes_null(capsys, monkeypatch):
    import auditapp.commands.list_cmd as list_cmd
    from auditapp.json_output import set_result

    def nan_result(args):
        set_result(args, {"x": float("nan"), "p": Path("a/b")})
        return 0

    monkeypatch.setattr(list_cmd, "main", nan_result)
    assert cli_main(["list", "--json"]) == 0
    assert one_json(capsys)[0] == {"x": None, "p": "a/b", "exit_code": 0}


def _parsers(parser: argparse.ArgumentParser, prog: str = ""):
    yield prog or parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, name)


def test_every_option_of_every_command_has_help_and_json():
    parser = build_parser()
    seen = []
    for name, p in _parsers(parser):
        seen.append(name)
        assert "--json" in p._option_string_actions, name
        for action in p._actions:
            assert action.help and action.help.strip(), (
                f"{name}: {action.option_strings or action.dest}"
            )
            assert action.help is not argparse.SUPPRESS, name
    assert set(cli.COMMANDS) <= set(seen)


def test_device_choices_appear_in_help():
    parser = build_parser()
    for name, p in _parsers(parser):
        action = p._option_string_actions.get("--device")
        if action is None:
            continue
        assert action.metavar == DEVICE_METAVAR, name
        assert DEVICE_METAVAR in p.format_help(), name
    assert "cuda:N" in DEVICE_METAVAR


def test_help_has_the_exit_code_table():
    text = build_parser().format_help()
    for row in ("0  ok", "1  a gate says no", "2  a user or environment error", "3  a bug"):
        assert row in text
