"""Faults as clear errors: each ordinary failure is one line naming the model or file and the
cause, exit 2, no traceback, and the store as it was; a genuine bug is exit 3 with its
traceback in a log file named in the message.

Before these changes each case below printed "unexpected X … (a bug)", leaked a traceback,
exited silently (``sys.exit`` in model code) or, for NaN outputs, blamed a predictions column.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
import types
from pathlib import Path

import pytest
import torch

from auditapp.cli import main as cli_main
from auditapp.pipeline.audit import run_audit
from audits.datasets import load_dataset
from audits.errors import AuditError
from audits.inference import ImageReader, predict
from audits.model_card import load_card, load_model
from tests.builders import TINY_NET, make_manifest, make_model_dir
from tests.faults.faultkit import (
    CLASSES,
    FORWARD,
    listing,
    model_with_forward,
    one_line_error,
    tmpfs,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled manifest of 9 images (3 per class)."""
    return make_manifest(tmp_path_factory.mktemp("data"), CLASSES, per_class=3)


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """An existing store holding one unrelated file, so 'unchanged' has something to keep."""
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "keep.txt").write_text("not a run\n")
    return folder


def audit_fails(
    capfd: pytest.CaptureFixture[str], model: Path, data: Path, store: Path, *extra: str
) -> str:
    """Run ``run`` in-process; assert exit 2, one error line, no traceback, store unchanged."""
    before = listing(store)
    code = cli_main(
        ["run", "--model", str(model), "--data", str(data), "--store", str(store), "--quiet",
         "--no-explain", "--no-integrity", "--workers", "0", "--device", "cpu", *extra]
    )  # fmt: skip
    err = capfd.readouterr().err
    assert code == 2, err
    assert listing(store) == before, "the store changed"
    line = one_line_error(err)
    assert "a bug" not in line
    return line


def test_nan_outputs_name_the_model_count_and_paths(tmp_path, data, store, capfd):
    model = model_with_forward(
        tmp_path / "nan",
        "        return self.fc(self.pool(self.features(x)).flatten(1)) * float('nan')\n",
    )
    line = audit_fails(capfd, model, data, store, "--batch-size", "4")
    assert "tiny@1.0.0" in line
    assert "NaN/Inf" in line
    assert "for 4 of the 4 images of a batch" in line
    assert re.search(r"e\.g\. img/cat_0\.png, img/cat_1\.png, img/cat_2\.png", line), line
    assert "probabilities in [0, 1]" not in line


def test_inf_in_some_rows_counts_only_those(tmp_path, data):
    """Only images whose logits overflow are counted; their paths are listed first."""
    model_dir = model_with_forward(
        tmp_path / "inf",
        "        out = self.fc(self.pool(self.features(x)).flatten(1))\n"
        "        return torch.where(x[:, :1, 0, 0] > 0.0, torch.full_like(out, float('inf')), out)\n",
        header="import torch\n",
    )
    card = load_card(model_dir)
    model = load_model(card, "cpu")
    image_set = load_dataset(data)
    x = torch.stack(
        [ImageReader(image_set.root, [p], card.size, 3)[0][0] for p in image_set.items["path"]]
    )
    bright = ((x[:, 0, 0, 0].float() - 127.5) / 63.75 > 0).numpy()  # the card's mean 0.5, std 0.25
    assert 0 < bright.sum() < len(bright)  # the case needs both kinds of image
    with pytest.raises(AuditError) as info:
        predict(model, card, image_set, "cpu", batch_size=16, workers=0)
    expected = [p for p, b in zip(image_set.items["path"], bright, strict=True) if b][:3]
    assert f"for {int(bright.sum())} of the 9 images" in str(info.value)
    assert f"e.g. {', '.join(expected)};" in str(info.value)


def test_forward_failing_only_for_batches_suggests_batch_size_1(tmp_path, data, store, capfd):
    model = model_with_forward(
        tmp_path / "single",
        "        if x.shape[0] > 1:\n"
        "            raise RuntimeError('this model handles one image at a time')\n" + FORWARD,
    )
    line = audit_fails(capfd, model, data, store, "--batch-size", "4")
    assert "tiny@1.0.0" in line
    assert "batch of 4 images" in line
    assert "--batch-size 1" in line
    # and the advice works
    assert cli_main(
        ["run", "--model", str(model), "--data", str(data), "--store", str(store), "--quiet",
         "--no-explain", "--no-integrity", "--workers", "0", "--batch-size", "1"]
    ) == 0  # fmt: skip


def test_forward_returning_the_wrong_number_of_rows(tmp_path, data, store, capfd):
    """A model that drops the batch dimension passes the load check (batch of 1) only."""
    model = model_with_forward(
        tmp_path / "rows", "        return self.fc(self.pool(self.features(x)).flatten(1))[:1]\n"
    )
    line = audit_fails(capfd, model, data, store, "--batch-size", "4")
    assert "tiny@1.0.0: the model returned (1, 3) for a batch of 4 images; expected (4, 3)" in line


def test_sys_exit_in_forward_is_an_error_naming_the_model(tmp_path, data, store, capfd):
    # Zeros (the load check's dummy input) pass; real, normalised images call sys.exit.
    model = model_with_forward(
        tmp_path / "exit",
        "        if bool(x.abs().sum() > 0):\n            sys.exit(3)\n" + FORWARD,
        header="import sys\n",
    )
    line = audit_fails(capfd, model, data, store)
    assert "tiny@1.0.0" in line and "sys.exit(3)" in line


def test_sys_exit_at_import_names_the_file(tmp_path, data, store, capfd):
    model = model_with_forward(
        tmp_path / "exit_import", FORWARD, header="import sys\nsys.exit(3)\n"
    )
    line = audit_fails(capfd, model, data, store)
    assert str(model) in line and re.search(r"sys\.exit\(3\)|SystemExit: 3", line)


def test_sys_exit_anywhere_names_the_caller(tmp_path, capfd, monkeypatch):
    """Whatever code calls sys.exit under a command, the line names its file and line."""

    def exits(name: str) -> None:
        sys.exit(4)

    monkeypatch.setattr("auditapp.commands.run_cmd.check_explain_method", exits)
    code = cli_main(["run", "--model", str(tmp_path), "--data", str(tmp_path)])
    line = one_line_error(capfd.readouterr().err)
    assert code == 2
    assert f"{__file__}, line " in line and "called sys.exit(4)" in line


def test_absurd_input_size_refused_up_front(tmp_path):
    model = make_model_dir(tmp_path / "huge", classes=CLASSES, size=(100000, 100000))
    with pytest.raises(AuditError, match=r"size \[100000, 100000\] is over the limit of 8192"):
        load_card(model)


def test_pred_and_meta_pred_columns_refused(tmp_path, store, capfd):
    data = make_manifest(
        tmp_path / "clash", CLASSES, per_class=2, extra={"pred": "x", "meta_pred": "y"}
    )
    model = make_model_dir(tmp_path / "m", classes=CLASSES)
    line = audit_fails(capfd, model, data, store)
    assert str(data) in line and "meta_pred" in line and "rename one" in line


def test_whole_module_pickle_that_fails_under_allow_pickle(tmp_path, data, store, capfd):
    """A pickled model whose class cannot be imported here (saved from a module now gone)."""
    model = make_model_dir(tmp_path / "pickled", classes=CLASSES, weights_format="pt")
    gone = types.ModuleType("h4_module_now_gone")
    exec(TINY_NET, gone.__dict__)
    sys.modules[gone.__name__] = gone
    try:
        torch.save(gone.TinyNet(num_classes=3), model / "weights.pt")
    finally:
        del sys.modules[gone.__name__]
    line = audit_fails(capfd, model, data, store, "--allow-pickle")
    assert str(model / "weights.pt") in line and "h4_module_now_gone" in line


def test_read_only_store(tmp_path, data, capfd):
    model = make_model_dir(tmp_path / "m", classes=CLASSES)
    store = tmp_path / "ro-store"
    if os.geteuid() != 0:
        store.mkdir()
        (store / "keep.txt").write_text("x")
        store.chmod(0o555)
        try:
            line = audit_fails(capfd, model, data, store)
        finally:
            store.chmod(0o755)
        assert "permission denied" in line and "nothing was stored" in line
        return
    with tmpfs(store, "1m", read_only=True) as mounted:
        if not mounted:
            pytest.skip("running as root (permissions do not bind) and no tmpfs can be mounted")
        line = audit_fails(capfd, model, data, store)
    assert str(store) in line and "read-only file system" in line and "nothing was stored" in line


def test_truncated_predictions_parquet_when_read(tmp_path, data, capfd):
    model = make_model_dir(tmp_path / "m", classes=CLASSES)
    store = tmp_path / "store"
    run = run_audit(
        model, data, store=store, device="cpu", workers=0, skip=("explain", "integrity")
    )
    table = run / "predictions.parquet"
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])
    capfd.readouterr()
    code = cli_main(["export", str(run), "--format", "csv,json", "--out", str(tmp_path / "out")])
    err = capfd.readouterr().err
    assert code == 2, err
    assert "predictions.parquet" in one_line_error(err)


def test_killed_worker_is_one_line(tmp_path, data, monkeypatch):
    """A DataLoader worker killed mid-run (here by itself: the OOM killer's SIGKILL)."""
    model_dir = make_model_dir(tmp_path / "m", classes=CLASSES)
    card = load_card(model_dir)
    model = load_model(card, "cpu")

    def die(self: ImageReader, i: int) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(ImageReader, "__getitem__", die)  # the forked worker inherits it
    with pytest.raises(AuditError) as info:
        predict(model, card, load_dataset(data), "cpu", batch_size=2, workers=1)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(r"DataLoader worker .*(killed by signal|exited unexpectedly)", message)
    assert "--workers 0" in message


def test_a_bug_in_a_worker_keeps_its_type_with_the_original_line(tmp_path, data, monkeypatch):
    """Not a fault of the machine: the type stays (exit 3, a bug), the message is one line."""
    model_dir = make_model_dir(tmp_path / "m", classes=CLASSES)
    card = load_card(model_dir)

    def broken(self: ImageReader, i: int) -> None:
        raise TypeError("planted")

    monkeypatch.setattr(ImageReader, "__getitem__", broken)
    with pytest.raises(TypeError) as info:
        predict(load_model(card, "cpu"), card, load_dataset(data), "cpu", batch_size=2, workers=1)
    assert str(info.value) == "in a DataLoader worker: TypeError: planted"
    assert "Original Traceback" in str(info.value.__cause__)  # kept for the bug log


def test_internal_bug_exits_3_with_a_log(tmp_path, data, store, capfd, monkeypatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("planted bug")

    monkeypatch.setattr("auditapp.pipeline.audit.audit_metrics", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "logs"))
    (tmp_path / "logs").mkdir()
    model = make_model_dir(tmp_path / "m", classes=CLASSES)
    before = listing(store)
    code = cli_main(
        ["run", "--model", str(model), "--data", str(data), "--store", str(store), "--quiet",
         "--workers", "0", "--no-explain", "--no-integrity"]
    )  # fmt: skip
    err = capfd.readouterr().err
    assert code == 3, err
    assert listing(store) == before
    line = one_line_error(err)
    match = re.fullmatch(
        r"error: unexpected ZeroDivisionError: planted bug \(a bug — please report it with the "
        r"log at (\S+)\)",
        line,
    )
    assert match, line
    log = Path(match[1])
    assert log.parent == tmp_path / "logs"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError: planted bug" in text
    assert "python -m audits run --model" in text


def test_an_unexpected_os_error_is_one_line_with_the_path(tmp_path, capfd, monkeypatch):
    """An OSError that no layer turned into words is still one line, with its path (exit 2)."""

    def unreadable(path: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "secret"))

    monkeypatch.setattr("auditapp.commands.run_cmd.check_explain_method", unreadable)
    code = cli_main(["run", "--model", str(tmp_path), "--data", str(tmp_path)])
    err = capfd.readouterr().err
    assert code == 2
    assert one_line_error(err) == (
        f"error: {tmp_path / 'secret'}: permission denied; check the folder's permissions or "
        "choose another --store"
    )
