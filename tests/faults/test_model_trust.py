"""The trust boundary for model code: a card runs no command, reads nothing outside its folder
by a relative path, and work on a stored run refuses model code that changed since the audit."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from auditapp.cli import main as cli_main
from auditapp.pipeline.audit import run_audit
from audits.errors import AuditError
from audits.model_card import load_card, load_model
from audits.store import load_run
from tests.builders import TINY_NET, make_manifest, make_model_dir

CLASSES = ["cat", "dog", "fox"]
REPO = Path(__file__).resolve().parents[2]
SPEED = [
    "--device",
    "cpu",
    "--speed-images",
    "8",
    "--speed-batch-size",
    "4",
    "--speed-repeats",
    "1",
]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit_card(root: Path, **fields: object) -> Path:
    """Rewrite ``root/model.toml`` with ``fields`` replaced (tables given as dicts)."""
    card = tomllib.loads((root / "model.toml").read_text())
    card.update(fields)
    plain = [f"{k} = {json.dumps(v)}" for k, v in card.items() if not isinstance(v, dict)]
    for name, table in card.items():
        if isinstance(table, dict):
            plain += [f"[{name}]", *(f"{k} = {json.dumps(v)}" for k, v in table.items())]
    (root / "model.toml").write_text("\n".join(plain) + "\n")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("trust-data"), CLASSES, per_class=3)


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


# -- a card alone runs no command ------------------------------------------------------------

HOSTILE = {
    "os:system": lambda m: {"command": f"touch {m}"},
    "subprocess:run": lambda m: {"args": ["touch", str(m)]},
    "builtins:exec": lambda m: {"source": f"open({str(m)!r}, 'w').close()"},
    "torch.hub:download_url_to_file": lambda m: {"url": "http://127.0.0.1:9/x", "dst": str(m)},
}


@pytest.mark.parametrize("command", ["run", "drift"])
def test_os_system_card_runs_nothing_through_the_cli(tmp_path, data, command):
    """`python -m audits run|drift` on a card naming os:system: refused, exit 2, no marker."""
    marker = tmp_path / "MARKER"
    model = edit_card(
        make_model_dir(tmp_path / "m"),
        architecture="os:system",
        kwargs=HOSTILE["os:system"](marker),
    )
    store = tmp_path / "store"
    args = ["--model", str(model), "--store", str(store)]
    args += (
        ["--data", str(data)]
        if command == "run"
        else ["--reference", str(data), "--current", str(data)]
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "audits", command, *args],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "'os:system' is refused" in line and "standard-library" in line and "allowed:" in line
    assert not marker.exists()
    assert not store.exists() or not [p for p in store.iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize("architecture", sorted(HOSTILE))
@pytest.mark.parametrize("command", ["run", "drift"])
def test_no_callable_but_a_module_builder_is_called(tmp_path, data, capsys, architecture, command):
    marker = tmp_path / "MARKER"
    model = edit_card(
        make_model_dir(tmp_path / "m"),
        architecture=architecture,
        kwargs=HOSTILE[architecture](marker),
    )
    args = [command, "--model", str(model), "--store", str(tmp_path / "store")]
    args += (
        ["--data", str(data)]
        if command == "run"
        else ["--reference", str(data), "--current", str(data)]
    )
    assert cli_main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"'{architecture}' is refused" in line and "allowed: an nn.Module subclass" in line
    assert str(model / "model.toml") in line
    assert not marker.exists()


def test_standard_library_module_is_refused_before_import(tmp_path):
    sys.modules.pop("this", None)
    model = edit_card(make_model_dir(tmp_path / "m"), architecture="this:Net")
    with pytest.raises(AuditError, match="'this' is a standard-library module"):
        load_card(model)
    assert "this" not in sys.modules  # never imported: its top level never ran


def test_plain_function_in_the_model_folder_is_never_called(tmp_path):
    model = make_model_dir(tmp_path / "m")
    marker = tmp_path / "MARKER"
    (model / "net.py").write_text(
        TINY_NET
        + f"\n\ndef build(**kw):\n    open({str(marker)!r}, 'w').close()\n    return TinyNet(**kw)\n"
    )
    edit_card(model, architecture="net.py:build")
    with pytest.raises(AuditError, match=r"a function \(build\).*classmethod or staticmethod"):
        load_model(load_card(model))
    assert not marker.exists()
    edit_card(model, architecture="net.py:TinyNet.forward")
    with pytest.raises(
        AuditError, match=r"'net.py:TinyNet.forward' is refused: it names a function"
    ):
        load_model(load_card(model))


def test_class_and_static_factories_of_a_module_class_build_it(tmp_path):
    model = make_model_dir(tmp_path / "m")
    (model / "net.py").write_text(
        TINY_NET + "\n\nclass Net(TinyNet):\n"
        "    @classmethod\n    def from_config(cls, classes=3):\n        return cls(num_classes=classes)\n\n"
        "    @staticmethod\n    def small(classes=3):\n        return Net(num_classes=classes)\n"
    )
    reference = load_model(load_card(model))
    x = torch.randn(2, 3, 32, 32)
    for factory in ("Net.from_config", "Net.small"):
        edit_card(model, architecture=f"net.py:{factory}", kwargs={"classes": 3})
        built = load_model(load_card(model))
        assert isinstance(built, torch.nn.Module)
        with torch.no_grad():
            assert torch.equal(built(x), reference(x))  # the card's weights were loaded


# -- code and files outside the model folder ---------------------------------------------------


@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    """A .py file outside the model folder whose top level drops a marker."""
    marker = tmp_path / "EVIL_RAN"
    path = tmp_path / "evil.py"
    path.write_text(f"open({str(marker)!r}, 'w').close()\n" + TINY_NET.replace("TinyNet", "Net"))
    return path, marker


def test_relative_code_outside_the_folder_is_refused(tmp_path, evil, capsys, data):
    path, marker = evil
    model = edit_card(make_model_dir(tmp_path / "a" / "m"), architecture="../../evil.py:Net")
    args = ["run", "--model", str(model), "--data", str(data), "--store", str(tmp_path / "s")]
    assert cli_main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'../../evil.py:Net' is refused" in line and f"resolves to {path}" in line
    assert "outside the model folder" in line
    assert not marker.exists()


def test_absolute_code_outside_the_folder_is_refused(tmp_path, evil):
    path, marker = evil
    model = edit_card(make_model_dir(tmp_path / "m"), architecture=f"{path}:Net")
    with pytest.raises(AuditError, match="outside the model folder"):
        load_model(load_card(model))
    assert not marker.exists()


def test_symlinked_code_pointing_outside_is_refused(tmp_path, evil):
    path, marker = evil
    model = make_model_dir(tmp_path / "m")
    (model / "net.py").unlink()
    (model / "net.py").symlink_to(path)
    edit_card(model, architecture="net.py:Net")
    with pytest.raises(AuditError, match=f"resolves to {path}, outside the model folder"):
        load_model(load_card(model))
    assert not marker.exists()


def test_symlink_staying_inside_the_folder_is_fine(tmp_path):
    model = make_model_dir(tmp_path / "m")
    (model / "src").mkdir()
    (model / "net.py").rename(model / "src" / "real_net.py")
    (model / "net.py").symlink_to(model / "src" / "real_net.py")
    assert load_model(load_card(model))(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def test_relative_weights_and_classes_outside_the_folder_are_refused(tmp_path):
    model = make_model_dir(tmp_path / "m")
    (tmp_path / "other").mkdir()
    (model / "weights.safetensors").rename(tmp_path / "other" / "w.safetensors")
    edit_card(model, weights="../other/w.safetensors")
    with pytest.raises(
        AuditError, match=r"'weights' = '../other/w.safetensors' resolves to .*outside"
    ):
        load_card(model)
    (model / "w.safetensors").symlink_to(tmp_path / "other" / "w.safetensors")
    edit_card(model, weights="w.safetensors")
    with pytest.raises(
        AuditError, match=r"field 'weights' = 'w.safetensors' resolves to .*outside"
    ):
        load_card(model)
    (tmp_path / "classes.txt").write_text("cat\ndog\nfox\n")
    edit_card(model, weights=str(tmp_path / "other" / "w.safetensors"), classes="../classes.txt")
    with pytest.raises(
        AuditError, match=r"field 'classes' = '../classes.txt' resolves to .*outside"
    ):
        load_card(model)


def test_absolute_weights_and_classes_are_allowed_and_recorded(tmp_path, data):
    """An absolute path is the user's explicit choice: used, and its sha256 stored in the run."""
    model = make_model_dir(tmp_path / "m")
    shared = tmp_path / "shared"
    shared.mkdir()
    weights = shared / "w.safetensors"
    (model / "weights.safetensors").rename(weights)
    classes = shared / "classes.txt"  # an /etc/passwd-style absolute file outside the folder
    classes.write_text("\n".join(CLASSES) + "\n")
    edit_card(model, weights=str(weights), classes=str(classes))
    run = run_audit(model, data, store=tmp_path / "store", device="cpu", workers=0,
                    skip=("explain", "integrity"))  # fmt: skip
    record = load_run(run).audit
    assert record.model.weights_sha256 == sha(weights)
    assert [(f.field, f.path, f.sha256) for f in record.model.external_files] == [
        ("weights", str(weights), sha(weights)),
        ("classes", str(classes), sha(classes)),
    ]
    assert record.model.code_sha256 == sha(model / "net.py")
    assert [(f.path, f.sha256) for f in record.model.code_files] == [
        ("net.py", sha(model / "net.py"))
    ]


# -- registries ---------------------------------------------------------------------------------


def test_torchvision_registry_builds_with_the_cards_weights(tmp_path):
    from audits.tv import torchvision

    root = tmp_path / "r18"
    root.mkdir()
    net = torchvision.models.resnet18(num_classes=3)
    save_file(net.state_dict(), str(root / "w.safetensors"))
    (root / "model.toml").write_text(
        'name = "r18"\nversion = "1"\narchitecture = "torchvision:resnet18"\n'
        'weights = "w.safetensors"\nclasses = ["a", "b", "c"]\n[kwargs]\nnum_classes = 3\n'
        "[input]\nsize = [32, 32]\n"
    )
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_model(load_card(root))(x), net.eval()(x))
    edit_card(root, kwargs={"num_classes": 3, "weights": "IMAGENET1K_V1"})
    with pytest.raises(AuditError, match=r"\[kwargs\] weights would make torchvision download"):
        load_model(load_card(root))
    edit_card(root, architecture="torchvision:resnet81", kwargs={"num_classes": 3})
    with pytest.raises(
        AuditError, match=r"torchvision has no model 'resnet81'; did you mean resnet18"
    ):
        load_model(load_card(root))
    edit_card(root, architecture="torchvision.models:resnet18")
    with pytest.raises(AuditError, match=r"a function \(resnet18\).*write 'torchvision:resnet18'"):
        load_model(load_card(root))


def test_timm_registry_builds_with_the_cards_weights(tmp_path):
    timm = pytest.importorskip("timm")
    root = tmp_path / "t18"
    root.mkdir()
    net = timm.create_model("resnet18", pretrained=False, num_classes=3)
    save_file(net.state_dict(), str(root / "w.safetensors"))
    (root / "model.toml").write_text(
        'name = "t18"\nversion = "1"\narchitecture = "timm:resnet18"\n'
        'weights = "w.safetensors"\nclasses = ["a", "b", "c"]\n[kwargs]\nnum_classes = 3\n'
        "[input]\nsize = [32, 32]\n"
    )
    x = torch.randn(2, 3, 32, 32)
    card = load_card(root)
    with torch.no_grad():
        assert torch.equal(load_model(card)(x), net.eval()(x))
    assert card.identity()["code_library"] == f"timm {timm.__version__}"
    edit_card(root, kwargs={"num_classes": 3, "pretrained": True})
    with pytest.raises(AuditError, match=r"\[kwargs\] pretrained would make timm download"):
        load_model(load_card(root))


def test_timm_not_installed_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # as if not installed
    model = edit_card(make_model_dir(tmp_path / "m"), architecture="timm:resnet18")
    with pytest.raises(AuditError, match=r"model\.toml: .*timm is not installed.*pip install timm"):
        load_model(load_card(model))


# -- code changed since the audit -------------------------------------------------------------


@pytest.fixture
def two_runs(tmp_path, data) -> tuple[Path, Path, Path]:
    """Audit runs of versions 1.0.0 and 1.1.0; returns (store, run A, run B)."""
    store = tmp_path / "store"
    runs = []
    for seed, version in ((0, "1.0.0"), (1, "1.1.0")):
        model = make_model_dir(tmp_path / version, CLASSES, seed=seed, version=version)
        runs.append(run_audit(model, data, store=store, device="cpu", workers=0,
                              skip=("explain", "integrity")))  # fmt: skip
    return store, runs[0], runs[1]


def test_compare_refuses_edited_model_code_unless_allowed(two_runs, capsys):
    store, run_a, run_b = two_runs
    net = Path(load_run(run_b).audit.model.dir) / "net.py"
    before = sha(net)
    assert load_run(run_b).audit.model.code_sha256 == before
    args = ["compare", str(run_a), str(run_b), "--store", str(store), *SPEED]
    assert cli_main(args) in (0, 1)  # unchanged code: timed, and recorded as unchanged
    first = next(p for p in store.iterdir() if "comparison" in p.name)
    assert load_run(first).comparison.speed.code_changed is False

    net.write_text(net.read_text() + "\n# edited after the audit\n")
    after = sha(net)
    capsys.readouterr()
    assert cli_main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(net) in line and after[:12] in line and before[:12] in line
    assert "--allow-code-change" in line and "model code changed since run" in line

    assert cli_main([*args, "--allow-code-change"]) in (0, 1)
    err = capsys.readouterr().err
    assert f"WARNING: model code changed since run {load_run(run_b).run_id}: {net}" in err
    stored = [p for p in store.iterdir() if "comparison" in p.name and p != first]
    doc = load_run(stored[0]).comparison
    assert doc.speed.code_changed is True
    assert doc.speed.code_changes == [
        {"run": load_run(run_b).run_id, "path": str(net), "recorded": before, "actual": after}
    ]
    assert any("--allow-code-change" in note for note in doc.notes)


def test_explain_refuses_edited_model_code_unless_allowed(two_runs, capsys):
    _, run_a, _ = two_runs
    model_dir = Path(load_run(run_a).audit.model.dir)
    (model_dir / "helpers.py").write_text("X = 1\n")  # a new source file counts too
    args = ["explain", str(run_a), "--device", "cpu", "--max", "2", "--baseline", "1",
            "--no-overlays", "--quiet"]  # fmt: skip
    assert cli_main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{model_dir / 'helpers.py'} (now {sha(model_dir / 'helpers.py')[:12]}" in line
    assert "the run recorded absent" in line and "--allow-code-change" in line
    assert not (run_a / "explain").exists()

    assert cli_main([*args, "--allow-code-change"]) == 0
    assert "WARNING: model code changed" in capsys.readouterr().err
    summary = load_run(run_a).explain.summary
    assert summary.code_changed is True and summary.code_changes[0]["recorded"] is None


def test_run_without_code_hash_warns_once_and_proceeds(two_runs, capsys):
    """Runs stored before code hashes: unknown, warned about, not refused."""
    _, run_a, _ = two_runs
    record = json.loads((run_a / "audit.json").read_text())
    for key in ("code_sha256", "code_files", "code_library"):
        record["model"].pop(key)
    (run_a / "audit.json").write_text(json.dumps(record))
    net = Path(record["model"]["dir"]) / "net.py"
    net.write_text(net.read_text() + "\n# edited\n")
    args = ["explain", str(run_a), "--device", "cpu", "--max", "2", "--baseline", "1",
            "--no-overlays", "--quiet"]  # fmt: skip
    assert cli_main(args) == 0
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "records no hash" in ln]
    assert len(warnings) == 1 and "used unchecked" in warnings[0]
    assert load_run(run_a).explain.summary.code_changed is None
