"""The bundled demo: deterministic data, clean splits, a drifted batch, two model versions."""

from __future__ import annotations

import hashlib
import tomllib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fixtures import generate
from fixtures.car import VARIANTS
from fixtures.evaluate import confusion, predict, summary
from fixtures.manifest import COLUMNS, fingerprint_manifest, read_manifest
from fixtures.plan import SETS, plan_set
from fixtures.render import SIZE, render
from fixtures.tensors import load_set

MODELS = generate.FIXTURES / "models" / "car-variants"


@pytest.fixture(scope="session")
def demo() -> dict[str, Path]:
    """The full demo sets (generated at set-up; generated here if missing, then verified)."""
    return generate.ensure_demo_data()


@pytest.fixture(scope="session")
def rows(demo) -> dict[str, list[dict[str, str]]]:
    return {name: read_manifest(path) for name, path in demo.items()}


def _shas(manifest: Path) -> set[str]:
    root = manifest.parent
    return {
        hashlib.sha256((root / r["path"]).read_bytes()).hexdigest() for r in read_manifest(manifest)
    }


# --- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SETS))
def test_regenerating_gives_identical_bytes_and_the_committed_fingerprint(name, tmp_path):
    head = generate.HEAD
    a = generate.generate_set(name, tmp_path / "a", limit=head, workers=1)
    b = generate.generate_set(name, tmp_path / "b", limit=head, workers=2)
    assert a.read_bytes() == b.read_bytes()
    for row in read_manifest(a):
        assert (a.parent / row["path"]).read_bytes() == (b.parent / row["path"]).read_bytes()
    expected = generate.load_fingerprints()["sets"][name]["head"]
    assert expected["n"] == head
    assert fingerprint_manifest(a) == expected["fingerprint"]


def test_fingerprint_catches_a_changed_image_or_label(tmp_path):
    manifest = generate.generate_set("heldout", tmp_path, limit=4, workers=1)
    before = fingerprint_manifest(manifest)
    image = manifest.parent / read_manifest(manifest)[0]["path"]
    original = image.read_bytes()
    image.write_bytes(original + b"\0")
    assert fingerprint_manifest(manifest) != before
    image.write_bytes(original)
    assert fingerprint_manifest(manifest) == before
    relabelled = manifest.read_text().replace("carrera", "targa", 1)
    manifest.write_text(relabelled)
    assert fingerprint_manifest(manifest) != before


def test_full_sets_match_the_committed_fingerprints(demo):
    expected = generate.load_fingerprints()["sets"]
    assert set(expected) == {"train", "train_v1", "heldout", "fan_batch"}
    for name, manifest in demo.items():
        record = generate.set_record(manifest)
        assert record == expected[name], name


def test_fingerprint_is_the_one_the_audit_computes(demo):
    datasets = pytest.importorskip("audits.datasets")
    ours = generate.load_fingerprints()["sets"]["heldout"]["fingerprint"]
    assert datasets.fingerprint(datasets.load_dataset(demo["heldout"])) == ours


def test_a_different_seed_gives_different_images(tmp_path):
    plan_a = plan_set(SETS["heldout"])[:4]
    plan_b = plan_set(SETS["heldout"], seed=7)[:4]
    assert [render(r.shot)[0].tobytes() for r in plan_a] != [
        render(r.shot)[0].tobytes() for r in plan_b
    ]


# --- content ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["targa", "turbo", "gt"])
def test_variants_differ_from_the_carrera_only_inside_the_part_box(variant):
    shot = next(
        r.shot for r in plan_set(SETS["heldout"]) if r.source == "dealer" and not r.shot.occluder
    )
    shot = replace(shot, variant="carrera", roll=0.0, blur=0.0, jpeg=0, dog=False)
    base, _ = render(shot)
    other, roi = render(replace(shot, variant=variant))
    diff = np.abs(np.asarray(base, dtype=int) - np.asarray(other, dtype=int)).sum(axis=2) > 24
    ys, xs = np.nonzero(diff)
    assert len(xs) >= 12, "the part is visible"
    x0, y0, x1, y1 = roi
    assert xs.min() >= x0 - 2 and xs.max() <= x1 + 1 and ys.min() >= y0 - 2 and ys.max() <= y1 + 1
    assert (x1 - x0) * (y1 - y0) < 0.05 * SIZE * SIZE, "the deciding part is small"


def test_manifests_follow_the_contract(rows):
    for name, table in rows.items():
        assert tuple(table[0]) == COLUMNS, name
        assert {r["label"] for r in table} == set(VARIANTS), name
        for r in table:
            if r["roi_x0"]:
                x0, y0, x1, y1 = (int(r[k]) for k in ("roi_x0", "roi_y0", "roi_x1", "roi_y1"))
                assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE
    with Image.open(generate.DATA_ROOT / "heldout" / rows["heldout"][0]["path"]) as img:
        assert img.size == (SIZE, SIZE) and img.mode == "RGB"


def test_set_sizes_sources_and_rare_tags(rows):
    assert {k: len(v) for k, v in rows.items()} == {
        "train": 3000,
        "train_v1": 3000,
        "heldout": 1200,
        "fan_batch": 400,
    }
    for name in ("train", "heldout"):
        table = rows[name]
        assert {r["source"] for r in table} == {"dealer", "fan", "scrape"}
        dogs = sum(r["dog"] == "1" for r in table)
        assert 1 <= dogs < 0.01 * len(table)
        assert 0.03 < sum(r["night"] == "1" for r in table) / len(table) < 0.2
        sizes = Counter(r["group"] for r in table)
        assert max(sizes.values()) <= 4 and sum(n > 1 for n in sizes.values()) > 0.5 * len(sizes)
    assert {r["source"] for r in rows["fan_batch"]} == {"fan"}


def test_heldout_is_imbalanced_like_real_life(rows):
    counts = Counter(r["label"] for r in rows["heldout"])
    assert counts.most_common(1)[0] == ("carrera", 400)
    assert counts["safari"] == 60 and counts["targa"] == 130
    assert counts["carrera"] / counts["safari"] > 6
    assert set(Counter(r["label"] for r in rows["train"]).values()) == {500}


def test_heldout_shares_no_image_and_no_group_with_training(demo, rows):
    held_groups = {r["group"] for r in rows["heldout"]}
    held_shas = _shas(demo["heldout"])
    assert len(held_shas) == len(rows["heldout"])
    for name in ("train", "train_v1"):
        assert not held_groups & {r["group"] for r in rows[name]}, name
        assert not held_shas & _shas(demo[name]), name
    # The held-out cars were photographed after every training car.
    assert min(r["date"] for r in rows["heldout"]) > max(
        r["date"] for r in rows["train"] + rows["train_v1"]
    )


def test_train_v1_carries_the_colour_shortcut_and_heldout_does_not(rows):
    def red_share(table, targa: bool) -> float:
        chosen = [r for r in table if (r["label"] == "targa") == targa]
        return sum(r["colour"] == "red" for r in chosen) / len(chosen)

    assert red_share(rows["train_v1"], True) > 0.9
    assert red_share(rows["train_v1"], False) < 0.02
    assert red_share(rows["heldout"], True) < 0.25
    assert red_share(rows["train"], True) < 0.25


def _brightness_and_sharpness(manifest: Path) -> tuple[float, float]:
    """Median mean luma and median Laplacian variance of luma (the audit's definitions)."""
    root, values = manifest.parent, []
    for r in read_manifest(manifest):
        with Image.open(root / r["path"]) as img:
            luma = np.asarray(img.convert("L"), dtype=np.float64)
        lap = (
            luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:]
            - 4 * luma[1:-1, 1:-1]
        )  # fmt: skip
        values.append((luma.mean(), lap.var()))
    return tuple(np.median(np.array(values), axis=0))


def test_fan_batch_is_darker_and_blurrier_than_heldout(demo):
    held_b, held_s = _brightness_and_sharpness(demo["heldout"])
    fan_b, fan_s = _brightness_and_sharpness(demo["fan_batch"])
    assert fan_b < 0.8 * held_b
    assert fan_s < 0.5 * held_s


# --- models ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version,train_set", [("1.0.0", "train_v1"), ("1.1.0", "train")])
def test_model_folders_are_complete_and_self_contained(version, train_set, demo):
    folder = MODELS / version
    card = tomllib.loads((folder / "model.toml").read_text(encoding="utf-8"))
    assert card["name"] == "car-variants" and card["version"] == version
    assert card["architecture"] == "net.py:SmallCNN" and card["weights"] == "weights.safetensors"
    assert card["classes"] == list(VARIANTS) and card["kwargs"] == {"num_classes": 6}
    assert card["target_layer"] == "features.11" and card["code_commit"]
    assert (folder / card["training_manifest"]).resolve() == demo[train_set].resolve()
    assert card["input"] == {
        "size": [SIZE, SIZE],
        "channels": 3,
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
    }
    assert (folder / "net.py").read_bytes() == (generate.FIXTURES / "net.py").read_bytes()
    assert (folder / "weights.safetensors").stat().st_size < 1_000_000


def test_models_load_through_the_audit_loader(demo):
    model_card = pytest.importorskip("audits.model_card")
    for version in ("1.0.0", "1.1.0"):
        card = model_card.load_card(MODELS / version)
        model = model_card.load_model(card)
        last_conv = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)][-1]
        assert card.target_layer == last_conv
        assert isinstance(list(model.modules())[-1], torch.nn.Linear)


@pytest.fixture(scope="session")
def heldout_results(demo) -> dict[str, dict]:
    from safetensors.torch import load_file

    from fixtures.net import SmallCNN

    images, labels, _ = load_set(demo["heldout"], list(VARIANTS))
    out = {}
    for version in ("1.0.0", "1.1.0"):
        model = SmallCNN(num_classes=len(VARIANTS))
        model.load_state_dict(load_file(str(MODELS / version / "weights.safetensors")))
        out[version] = summary(
            confusion(labels, predict(model, images), len(VARIANTS)), list(VARIANTS)
        )
    return out


def test_v1_0_misreads_targas_as_carreras(heldout_results):
    result = heldout_results["1.0.0"]
    top2 = [(p["true"], p["predicted"]) for p in result["most_confused"][:2]]
    assert ("targa", "carrera") in top2
    others = [r for c, r in result["recall"].items() if c != "targa"]
    assert result["recall"]["targa"] < min(others) - 0.15


def test_v1_1_is_better_overall_and_on_targa(heldout_results):
    old, new = heldout_results["1.0.0"], heldout_results["1.1.0"]
    assert new["accuracy"] > old["accuracy"] + 0.03
    assert new["recall"]["targa"] > old["recall"]["targa"] + 0.2
