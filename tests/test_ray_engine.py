"""``--engine ray`` on a real local Ray (``ray.init(num_cpus=2)``, no mock): the demo model on a
copy of part of the demo's held-out set gives predictions, probabilities, embeddings, metrics,
skips and Grad-CAM heatmaps bit-identical to the local engine, and the run records its engine.

Before: ``run_audit`` had no ``engine`` and ``run`` no ``--engine`` (TypeError / exit 2).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.ray_kit import BATCH, MODEL, assert_same_numbers, local_ray, small_heldout

pytestmark = pytest.mark.timeout(900)

OPTIONS = {"explain_max": 12, "explain_baseline": 2}
SKIP = ("integrity", "embedding_map")


@pytest.fixture(scope="module")
def ray_cluster():
    yield from local_ray()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, ray_cluster: None) -> dict[str, Path]:
    from auditapp.engines.spec import EngineSpec
    from auditapp.pipeline.audit import run_audit

    root = tmp_path_factory.mktemp("ray-engine")
    data = small_heldout(root / "data")
    common = {"device": "cpu", "batch_size": BATCH, "skip": SKIP, "options": OPTIONS}
    return {
        "data": data,
        "local": run_audit(MODEL, data, store=root / "store", workers=0, **common),
        "ray": run_audit(
            MODEL, data, store=root / "store", engine=EngineSpec("ray", actors=2), **common
        ),
    }


def test_ray_engine_is_bit_identical_to_local(runs: dict[str, Path]) -> None:
    assert_same_numbers(runs["local"], runs["ray"], heatmaps=True)
    table = pd.read_parquet(runs["ray"] / "predictions.parquet")
    assert len(table) == 200 and table["row"].tolist() == list(range(200))
    skipped = json.loads((runs["ray"] / "audit.json").read_text())["skipped"]
    assert [s["path"] for s in skipped] == ["images/broken.png", "images/missing.png"]
    assert "not an image" in skipped[0]["reason"] and "not found" in skipped[1]["reason"]


def test_actors_hash_the_bytes_they_decode(runs: dict[str, Path]) -> None:
    """The sha256 column against hashlib over each file, read independently here."""
    table = pd.read_parquet(runs["ray"] / "predictions.parquet")
    root = runs["data"].parent
    expected = [hashlib.sha256((root / p).read_bytes()).hexdigest() for p in table["path"]]
    assert table["file_sha256"].tolist() == expected


def test_run_records_the_engine(runs: dict[str, Path]) -> None:
    from audits.runs import open_run

    record = json.loads((runs["ray"] / "audit.json").read_text())
    engine = record["engine"]
    assert engine["name"] == "ray" and engine["n_actors"] == 2
    assert engine["ray_version"] == "2.60.0" and engine["gpus_per_actor"] == 0
    assert engine["cluster_cpus"] == 2 and engine["batch_size"] == BATCH
    assert record["device"]["type"] == "cpu"
    assert open_run(runs["ray"]).audit.engine.name == "ray"  # validates against the model
    assert "engine" not in json.loads((runs["local"] / "audit.json").read_text())


def test_a_model_error_in_an_actor_is_the_local_engines_line(
    tmp_path: Path, ray_cluster: None
) -> None:
    """A forward pass that fails on batches (but not on one image) raises inside an actor;
    the audit fails with the same one line as the local engine, not a Ray traceback."""
    from auditapp.engines.spec import EngineSpec
    from auditapp.pipeline.audit import run_audit
    from audits.errors import AuditError
    from tests.builders import make_manifest
    from tests.faults.faultkit import CLASSES, model_with_forward

    model = model_with_forward(
        tmp_path / "batch-only",
        "        assert x.shape[0] == 1, 'one image at a time'\n"
        "        return self.fc(self.pool(self.features(x)).flatten(1))\n",
    )
    data = make_manifest(tmp_path / "data", CLASSES, per_class=3)
    common = {"device": "cpu", "batch_size": 4, "skip": ("explain", "integrity", "embedding_map")}
    messages = []
    for engine in ("local", EngineSpec("ray", actors=1)):
        with pytest.raises(AuditError) as info:
            run_audit(model, data, store=tmp_path / "store", engine=engine, **common)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "rerun with --batch-size 1" in messages[1]


@pytest.mark.parametrize(
    ("address", "endpoint"),
    [
        ("auto", None),
        ("ray://head:10001", ("head", 10001)),
        ("ray://head", ("head", 10001)),
        ("10.0.0.5:6379", ("10.0.0.5", 6379)),
        ("[::1]:6379", ("::1", 6379)),
    ],
)
def test_addresses(address: str, endpoint: tuple[str, int] | None) -> None:
    from auditapp.engines.ray_session import host_port

    assert host_port(address) == endpoint


@pytest.mark.parametrize("address", ["head", "head:port", ":6379"])
def test_bad_addresses_are_one_line(address: str) -> None:
    from auditapp.engines.ray_session import host_port
    from audits.errors import AuditError

    with pytest.raises(AuditError, match=f"--ray-address {address}: "):
        host_port(address)


@pytest.mark.parametrize(
    ("cpus", "gpus", "options", "placement"),
    [
        (16, 4, {}, (1.0, 4)),  # a GPU actor per GPU
        (16, 4, {"num_gpus_per_actor": 0.5}, (0.5, 8)),  # two actors share a GPU
        (16, 4, {"num_gpus_per_actor": 0.0}, (0.0, 16)),  # CPU actors on a GPU cluster
        (2, 0, {}, (0.0, 2)),  # a CPU actor per core
        (8, 0, {"cpus_per_actor": 3.0}, (0.0, 2)),
        (8, 0, {"actors": 3}, (0.0, 3)),
    ],
)
def test_actor_placement(cpus: int, gpus: int, options: dict, placement: tuple) -> None:
    from auditapp.engines.ray_engine import _placement
    from auditapp.engines.ray_session import RaySession
    from auditapp.engines.spec import EngineSpec

    session = RaySession("auto", False, float(cpus), float(gpus), "2.60.0")
    assert _placement(EngineSpec("ray", **options), session) == placement


def test_gpus_the_cluster_lacks_are_refused() -> None:
    from auditapp.engines.ray_engine import _placement
    from auditapp.engines.ray_session import RaySession
    from auditapp.engines.spec import EngineSpec
    from audits.errors import AuditError

    with pytest.raises(AuditError, match="the Ray cluster has 0 GPU"):
        _placement(EngineSpec("ray", num_gpus_per_actor=1.0), RaySession("x", False, 8.0, 0.0, ""))
