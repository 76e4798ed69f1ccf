"""The local data path: each file read once for hash and decode, the automatic batch size."""

from __future__ import annotations

from dataclasses import replace

import torch

from audits.datasets import hash_files, load_dataset
from audits.inference import predict, resolve_batch_size
from audits.model_card import load_card, load_model
from tests.builders import make_manifest, make_model_dir


def _set_and_model(tmp_path):
    manifest = make_manifest(tmp_path / "data", ["cat", "dog", "fox"], per_class=5)
    (tmp_path / "data" / "img" / "cat_0.png").write_bytes(b"not an image at all")
    (tmp_path / "data" / "img" / "dog_1.png").unlink()
    card = load_card(make_model_dir(tmp_path / "model"))
    return load_dataset(manifest), card, load_model(card, torch.device("cpu"))


def test_hashes_from_the_decoding_read_equal_a_separate_hashing_pass(tmp_path):
    image_set, card, model = _set_and_model(tmp_path)
    preds = predict(model, card, image_set, "cpu", batch_size=4, workers=0)
    expected = hash_files(image_set)
    assert preds.hashes == expected
    # An undecodable file was still read, so it has a hash; a missing one has none.
    paths = image_set.items["path"].tolist()
    assert preds.hashes[paths.index("img/cat_0.png")] is not None
    assert preds.hashes[paths.index("img/dog_1.png")] is None
    # The table's hashes are those of its rows (readable images only).
    by_path = dict(zip(paths, expected, strict=True))
    assert preds.table["file_sha256"].tolist() == [by_path[p] for p in preds.table["path"]]


def test_hashes_the_same_with_workers_and_batches_of_any_size(tmp_path):
    image_set, card, model = _set_and_model(tmp_path)
    one = predict(model, card, image_set, "cpu", batch_size=1, workers=0)
    many = predict(model, card, image_set, "cpu", batch_size=7, workers=2)
    assert one.hashes == many.hashes == hash_files(image_set)
    assert one.table["pred"].tolist() == many.table["pred"].tolist()


def test_given_hashes_are_kept(tmp_path):
    image_set, card, model = _set_and_model(tmp_path)
    given = [f"h{i}" for i in range(len(image_set.items))]
    preds = predict(model, card, image_set, "cpu", batch_size=4, workers=0, hashes=given)
    assert preds.hashes == given


def test_automatic_batch_size_follows_the_input_size(tmp_path):
    card = load_card(make_model_dir(tmp_path / "m", size=(224, 224)))
    assert resolve_batch_size(None, card) == 64  # the size models have always run at

    def sized(size, channels=3):
        return replace(card, size=size, channels=channels)

    assert resolve_batch_size(None, sized((28, 28), 1)) == 512  # capped
    assert resolve_batch_size(None, sized((128, 128))) == 128  # the largest power of two that fits
    assert resolve_batch_size(None, sized((512, 512))) == 8
    assert resolve_batch_size(None, sized((8192, 8192))) == 1
    assert resolve_batch_size(3, card) == 3  # given: used as is
