"""Model directories: every contract path and every error with its message."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from audits.errors import AuditError
from audits.model_card import load_card, load_model
from tests.builders import make_model_dir


def test_file_architecture_loads_and_identity(tmp_path):
    card = load_card(make_model_dir(tmp_path / "m"))
    model = load_model(card)
    assert card.classes == ["cat", "dog", "fox"]
    assert card.size == (32, 32) and card.channels == 3
    ident = card.identity()
    assert (
        ident["name"] == "tiny"
        and ident["version"] == "1.0.0"
        and ident["code_commit"] == "abc1234"
    )
    import hashlib

    assert ident["weights_sha256"] == hashlib.sha256(card.weights.read_bytes()).hexdigest()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    assert not model.training


def test_package_architecture_with_kwargs(tmp_path, monkeypatch):
    """`package.module:Class` from an importable package; its source files are hashed."""
    import hashlib

    from tests.builders import TINY_NET

    pkg = tmp_path / "site" / "tinypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(TINY_NET)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    root = make_model_dir(tmp_path / "m")
    card_file = root / "model.toml"
    card_file.write_text(card_file.read_text().replace("net.py:TinyNet", "tinypkg.nets:TinyNet"))
    (root / "net.py").unlink()
    card = load_card(root)
    model = load_model(card)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    ident = card.identity()
    expected = hashlib.sha256((pkg / "nets.py").read_bytes()).hexdigest()
    assert ident["code_sha256"] == expected
    assert ident["code_files"] == [{"path": str((pkg / "nets.py").resolve()), "sha256": expected}]
    assert ident["code_library"] is None


def test_registry_architecture_loads_saved_weights(tmp_path):
    """`torchvision:resnet18` with the card's weights: the same outputs as the saved network."""
    import importlib.metadata

    from audits.tv import torchvision

    root = tmp_path / "resnet"
    root.mkdir()
    net = torchvision.models.resnet18(num_classes=4)
    save_file(net.state_dict(), str(root / "w.safetensors"))
    (root / "model.toml").write_text(
        'name = "r18"\nversion = "2"\narchitecture = "torchvision:resnet18"\n'
        'weights = "w.safetensors"\nclasses = ["a", "b", "c", "d"]\ntarget_layer = "layer4"\n'
        "[kwargs]\nnum_classes = 4\n[input]\nsize = [64, 64]\n"
    )
    card = load_card(root)
    model = load_model(card)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), net.eval()(x))
    ident = card.identity()
    assert ident["code_library"] == f"torchvision {importlib.metadata.version('torchvision')}"
    assert ident["code_sha256"] is None and ident["code_files"] == []


def test_greyscale_model_and_classes_file(tmp_path):
    root = make_model_dir(tmp_path / "g", channels=1, size=(28, 20))
    text = (
        (root / "model.toml")
        .read_text()
        .replace('classes = ["cat", "dog", "fox"]', 'classes = "classes.txt"')
    )
    (root / "model.toml").write_text(text)
    (root / "classes.txt").write_text("cat\ndog\n\nfox\n")
    card = load_card(root)
    assert card.classes == ["cat", "dog", "fox"] and card.channels == 1 and card.size == (28, 20)
    assert load_model(card)(torch.zeros(1, 1, 28, 20)).shape == (1, 3)


def test_state_dict_pt_loads_with_weights_only(tmp_path):
    card = load_card(make_model_dir(tmp_path / "pt", weights_format="pt"))
    assert card.weights.suffix == ".pt"
    load_model(card)


def test_pickled_whole_module_is_refused_with_advice(tmp_path):
    root = make_model_dir(tmp_path / "pk", weights_format="pt")
    model = load_model(load_card(root))
    torch.save(model, root / "weights.pt")  # a whole pickled module
    with pytest.raises(AuditError, match=r"pickled.*state_dict\(\).*--allow-pickle"):
        load_model(load_card(root))
    assert load_model(load_card(root), allow_pickle=True)(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('name = "tiny"', 'name = "tiny"\ncolour = "red"'),
            r"unknown field\(s\) colour",
        ),
        (lambda t: t.replace('name = "tiny"\n', ""), r"missing required field 'name'"),
        (
            lambda t: t.replace("weights.safetensors", "nope.safetensors"),
            r"weights file 'nope.safetensors' not found",
        ),
        (lambda t: t.replace("net.py:TinyNet", "net.py:Nope"), r"has no attribute 'Nope'"),
        (lambda t: t.replace("net.py:TinyNet", "other.py:TinyNet"), r"file 'other.py' not found"),
        (
            lambda t: t.replace("net.py:TinyNet", "no_such_pkg.mod:Net"),
            r"cannot import 'no_such_pkg.mod'",
        ),
        (
            lambda t: t.replace('target_layer = "features.2"', 'target_layer = "features.9"'),
            r"target_layer 'features.9'.*features\.0, features\.2",
        ),
        (
            lambda t: t.replace("size = [32, 32]", "size = [32]"),
            r"\[input\] size must be \[height, width\]",
        ),
        (lambda t: t.replace("channels = 3\n", "channels = 4\n"), r"channels must be 1 .* or 3"),
        (lambda t: t + "\n[[oops", r"not valid TOML"),
    ],
)
def test_card_errors_name_the_field(tmp_path, edit, message):
    root = make_model_dir(tmp_path / "m")
    card = root / "model.toml"
    card.write_text(edit(card.read_text()))
    with pytest.raises(AuditError, match=message) as info:
        load_model(load_card(root))
    assert "\n" not in str(info.value)


def test_state_dict_key_mismatch_lists_keys(tmp_path):
    root = make_model_dir(tmp_path / "m")
    from safetensors.torch import load_file

    state = load_file(str(root / "weights.safetensors"))
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    save_file(state, str(root / "weights.safetensors"))
    with pytest.raises(AuditError, match=r"missing keys fc\.bias; unexpected keys extra\.weight"):
        load_model(load_card(root))


def test_output_width_must_match_classes(tmp_path):
    root = make_model_dir(tmp_path / "m")
    card = root / "model.toml"
    card.write_text(
        card.read_text().replace(
            'classes = ["cat", "dog", "fox"]', 'classes = ["cat", "dog", "fox", "owl"]'
        )
    )
    with pytest.raises(
        AuditError, match=r"lists 4; the output width must equal the number of classes"
    ):
        load_model(load_card(root))


def test_input_size_that_breaks_the_model(tmp_path):
    root = make_model_dir(tmp_path / "m")
    card = root / "model.toml"
    card.write_text(card.read_text().replace("in_channels = 3", "in_channels = 1"))
    with pytest.raises(AuditError, match=r"weights do not match|fails in the model"):
        load_model(load_card(root))


def test_missing_card(tmp_path):
    with pytest.raises(AuditError, match=r"model\.toml.*not found"):
        load_card(tmp_path)
