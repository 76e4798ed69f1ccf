"""The shared set-up (audits.prepare): what it loads, and every refusal's exact message."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from audits.datasets import fingerprint, freeze, load_dataset
from audits.errors import AuditError
from audits.model_card import load_card
from audits.prepare import check_freeze, load_labelled, prepare, reopen_audited
from tests.builders import make_manifest, make_model_dir

CLASSES = ["cat", "dog", "fox"]


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    return make_model_dir(tmp_path / "model", CLASSES)


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    return make_manifest(tmp_path / "data", CLASSES, per_class=2)


def _record(model_dir: Path, manifest: Path) -> dict:
    """The parts of an audit.json that reopen_audited reads."""
    return {"model": load_card(model_dir).identity(), "dataset": {"path": str(manifest)}}


def _exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def test_prepare_loads_card_sets_and_model(model_dir, manifest, tmp_path):
    other = make_manifest(tmp_path / "other", CLASSES, per_class=1, seed=1)
    ready = prepare(model_dir, [manifest, other], device="cpu", require_labels=True)
    assert ready.card.classes == CLASSES
    assert ready.device == torch.device("cpu")
    assert not ready.model.training
    assert [s.source for s in ready.sets] == [manifest.resolve(), other.resolve()]
    assert ready.image_set is ready.sets[0]


def test_a_wrong_data_path_fails_before_the_model_loads(model_dir, tmp_path):
    (model_dir / "weights.safetensors").write_bytes(b"not safetensors")
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(AuditError, match="data set not found"):
        prepare(model_dir, [missing], device="cpu")


def test_unlabelled_set_is_refused_only_when_labels_are_required(model_dir, manifest):
    frame = pd.read_csv(manifest)
    unlabelled = manifest.with_name("batch.csv")
    frame[["path"]].to_csv(unlabelled, index=False)
    card = load_card(model_dir)
    message = (
        f"{unlabelled.resolve()}: no labels; an audit needs a labelled held-out set "
        "(for an unlabelled production batch use: python -m audits drift)"
    )
    with pytest.raises(AuditError, match=_exact(message)):
        load_labelled(unlabelled, card, required=True)
    with pytest.raises(AuditError, match=_exact(message)):
        prepare(model_dir, [unlabelled], device="cpu", require_labels=True)
    assert not load_labelled(unlabelled, card, required=False).labelled


def test_labels_that_are_not_classes_are_refused(model_dir, manifest):
    frame = pd.read_csv(manifest)
    frame.loc[0, "label"] = "wolf"
    frame.to_csv(manifest, index=False)
    message = (
        f"{manifest.resolve()}: 1 image(s) have labels that are not classes of the model: 'wolf'; "
        "rename them to the model's classes or remove those rows"
    )
    with pytest.raises(AuditError, match=_exact(message)):
        prepare(model_dir, [manifest], device="cpu")


def test_check_freeze_warns_on_an_unfrozen_set_then_passes_once_frozen(manifest, capsys):
    image_set = load_dataset(manifest)
    first = check_freeze(image_set)
    source = image_set.source
    assert capsys.readouterr().err == (
        f"warning: {source} is not frozen; freeze it so later runs can prove it did not move: "
        f"python -m audits freeze {source}\n"
    )
    assert not first.frozen and None not in first.hashes
    assert first.fingerprint == fingerprint(image_set, first.hashes)
    freeze(image_set)
    second = check_freeze(image_set)
    assert second.frozen and second.fingerprint == first.fingerprint
    assert capsys.readouterr().err == ""


def test_check_freeze_can_stay_quiet(manifest, capsys):
    assert not check_freeze(load_dataset(manifest), warn=False).frozen
    assert capsys.readouterr().err == ""


def test_reopen_audited_rebuilds_the_exact_model(model_dir, manifest):
    ready = reopen_audited(_record(model_dir, manifest), "run-1", device="cpu")
    assert ready.card.dir == model_dir.resolve()
    assert [s.source for s in ready.sets] == [manifest.resolve()]
    bare = reopen_audited(_record(model_dir, manifest), "run-1", device="cpu", with_data=False)
    assert bare.sets == []


def test_reopen_refuses_changed_weights(model_dir, manifest):
    record = _record(model_dir, manifest)
    record["model"]["weights_sha256"] = "0" * 64
    card = load_card(model_dir)
    actual = card.identity()["weights_sha256"]
    message = (
        f"{card.weights}: weights changed since run run-1 (sha256 {actual[:12]}, the run "
        f"recorded {'0' * 12}); the model moved or was retrained: audit it again"
    )
    with pytest.raises(AuditError, match=_exact(message)):
        reopen_audited(record, "run-1", device="cpu")


def test_reopen_refuses_changed_classes(model_dir, manifest):
    record = _record(model_dir, manifest)
    record["model"]["classes"] = ["cat", "dog", "wolf"]
    message = (
        f"{load_card(model_dir).card_path}: classes differ from run run-1's; "
        "restore the card that was audited"
    )
    with pytest.raises(AuditError, match=_exact(message)):
        reopen_audited(record, "run-1", device="cpu")


def test_reopen_refuses_a_missing_model_folder(model_dir, manifest, tmp_path):
    record = _record(model_dir, manifest)
    gone = tmp_path / "gone"
    record["model"]["dir"] = str(gone)
    message = (
        f"model tiny 1.0.0 of run run-1 is no longer usable at {gone} "
        f"({gone / 'model.toml'}: not found; --model must be a folder holding a model.toml); "
        "put it back, or audit it again"
    )
    with pytest.raises(AuditError, match=_exact(message)):
        reopen_audited(record, "run-1", device="cpu")
    with pytest.raises(AuditError, match=r"put it back, or restore it first$"):
        reopen_audited(record, "run-1", device="cpu", unusable_hint="restore it first")


def test_reopen_refuses_a_run_without_model_folder_or_data_path(model_dir, manifest):
    record = _record(model_dir, manifest)
    del record["model"]["dir"]
    message = (
        "run-1: the run does not record its model folder; cannot time tiny 1.0.0 (use --no-speed)"
    )
    with pytest.raises(AuditError, match=_exact(message)):
        reopen_audited(record, "run-1", purpose="time tiny 1.0.0", hint="use --no-speed")
    record = _record(model_dir, manifest)
    record["dataset"] = {}
    with pytest.raises(AuditError, match=_exact("run-1: audit.json records no data set path")):
        reopen_audited(record, "run-1", device="cpu")
