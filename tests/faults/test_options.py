"""Invalid options are refused before any work, in one line naming the option (exit 2).

Before: ``--explain-method nope`` and ``--explain-max -3`` audited with only a warning and no
explanations (exit 0); ``--workers -1`` was "unexpected ValueError (a bug)"; ``--batch-size 0``
got past the parser; ``--device`` took any text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from auditapp.cli import main as cli_main
from auditapp.commands.options import device_name
from audits.datasets import load_dataset
from audits.errors import AuditError
from audits.inference import predict, resolve_device
from audits.model_card import load_card, load_model
from explain.registry import available_methods
from tests.builders import make_manifest, make_model_dir
from tests.faults.faultkit import CLASSES, one_line_error


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("options")
    return make_model_dir(root / "model", classes=CLASSES), make_manifest(
        root / "data", CLASSES, per_class=2
    )


def refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The one error line of a command line refused by the parser (exit 2)."""
    with pytest.raises(SystemExit) as info:
        cli_main(argv)
    assert info.value.code == 2
    return one_line_error(capsys.readouterr().err)


RUN = ["run", "--model", "m", "--data", "d"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([*RUN, "--workers", "-1"], "error: argument --workers: must be 0 or more, got -1"),
        ([*RUN, "--batch-size", "0"], "error: argument --batch-size: must be at least 1, got 0"),
        ([*RUN, "--batch-size", "ten"], "error: argument --batch-size: expected a whole number, got 'ten'"),
        ([*RUN, "--explain-max", "-3"], "error: argument --explain-max: must be 0 or more, got -3"),
        ([*RUN, "--device", "gpu"], "error: argument --device: 'gpu' is not a device"),
        ([*RUN, "--device", "cuda:x"], "error: argument --device: 'cuda:x' is not a device"),
        (["drift", "--model", "m", "--reference", "r", "--current", "c", "--workers", "-2"],
         "error: argument --workers: must be 0 or more, got -2"),
        (["drift", "--model", "m", "--reference", "r", "--current", "c", "--batch-date", "31/05/2026"],
         "error: argument --batch-date: give the day the batch was taken as YYYY-MM-DD "
         "(e.g. --batch-date 2026-05-31) or an ISO time (2026-05-31T14:00:00Z)"),
        (["drift", "--model", "m", "--reference", "r", "--current", "c", "--batch-date", "0001-01-01T00:00:00+05:00"],
         "error: argument --batch-date: give the day the batch was taken as YYYY-MM-DD "
         "(e.g. --batch-date 2026-05-31) or an ISO time (2026-05-31T14:00:00Z)"),
        (["explain", "run", "--max", "-1"], "error: argument --max: must be 0 or more, got -1"),
        (["explain", "run", "--batch-size", "0"], "error: argument --batch-size: must be at least 1"),
        (["compare", "a", "b", "--device", "tpu"], "error: argument --device: 'tpu' is not a device"),
        (["compare", "a", "b", "--speed-repeats", "0"], "error: argument --speed-repeats: must be at least 1"),
    ],
)  # fmt: skip
def test_bad_numbers_and_devices_refused_by_the_parser(capsys, argv, expected):
    line = refused(capsys, argv)
    assert line.startswith(expected), line
    assert line.endswith(f"(see: python -m audits {argv[0]} --help)")


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps", "CPU"])
def test_device_names_accepted(value):
    assert device_name(value) == value.lower()


def test_unknown_explain_method_refused_before_any_work(tmp_path, case, capsys):
    model, data = case
    store = tmp_path / "store"
    code = cli_main(
        ["run", "--model", str(model), "--data", str(data), "--store", str(store),
         "--explain-method", "nope", "--quiet"]
    )  # fmt: skip
    line = one_line_error(capsys.readouterr().err)
    assert code == 2
    assert not store.exists(), "work started before the option was checked"
    assert line.startswith("error: --explain-method 'nope': unknown method; choose one of: ")
    for method in available_methods():
        assert method in line


def test_unknown_explain_method_is_fine_when_explain_is_off(tmp_path, case):
    model, data = case
    code = cli_main(
        ["run", "--model", str(model), "--data", str(data), "--store", str(tmp_path / "s"),
         "--explain-method", "nope", "--no-explain", "--no-integrity", "--quiet", "--workers", "0"]
    )  # fmt: skip
    assert code == 0


def test_resolve_device_refuses_devices_not_here(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(AuditError, match=r"--device cuda:1: no CUDA device is available here"):
        resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(AuditError, match=r"--device cuda:2: this machine has 2 CUDA device\(s\)"):
        resolve_device("cuda:2")
    with pytest.raises(AuditError, match=r"--device tpu: expected auto, cpu, cuda, cuda:N or mps"):
        resolve_device("tpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_predict_refuses_negative_workers_for_python_callers(case):
    model_dir, data = case
    card = load_card(model_dir)
    with pytest.raises(AuditError, match=r"--workers -1: must be 0 or more"):
        predict(load_model(card, "cpu"), card, load_dataset(data), "cpu", workers=-1)
