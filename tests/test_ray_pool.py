"""Warm model actors kept between audits (``auditapp/engines/ray_pool.py``) on a real local Ray
(``ray.init(num_cpus=2)``, no mock): a second audit of the same model runs on the same actors
(same actor ids, each reports a second audit) with identical numbers; another model never gets
them (its own actors, the first pool ended); ``shutdown_pools`` ends them. Without Ray: the
pool's key changes with anything an actor's numbers depend on.

Before: every Ray audit started new actors (Ray Data's ``ActorPoolStrategy``), so the second
audit's ``engine.actors_reused`` did not exist and its actor ids differed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.ray_kit import BATCH, MODEL, assert_same_numbers, local_ray, small_heldout

pytestmark = pytest.mark.timeout(900)

OTHER = MODEL.parent / "1.1.0"  # the demo's other version: other weights, same code
SKIP = ("explain", "integrity", "embedding_map")


@pytest.fixture(scope="module")
def ray_cluster():
    yield from local_ray()


def _ids() -> dict[str, str]:
    import ray

    from auditapp.engines.ray_pool import pool_names

    return {name: ray.get_actor(name)._actor_id.hex() for name in pool_names(ray)}


def _engine(run: Path) -> dict:
    return json.loads((run / "audit.json").read_text())["engine"]


@pytest.fixture(scope="module")
def audits(tmp_path_factory: pytest.TempPathFactory, ray_cluster: None) -> dict:
    from auditapp.engines.spec import EngineSpec
    from auditapp.pipeline.audit import run_audit

    root = tmp_path_factory.mktemp("ray-pool")
    data = small_heldout(root / "data")
    common = {"device": "cpu", "batch_size": BATCH, "skip": SKIP, "store": root / "store"}
    ray2 = EngineSpec("ray", actors=2)
    out: dict = {"local": run_audit(MODEL, data, workers=0, **common)}
    out["first"] = run_audit(MODEL, data, engine=ray2, **common)
    out["ids_first"] = _ids()
    out["second"] = run_audit(MODEL, data, engine=ray2, **common)
    out["ids_second"] = _ids()
    out["other_local"] = run_audit(OTHER, data, workers=0, **common)
    out["other"] = run_audit(OTHER, data, engine=ray2, **common)
    out["ids_other"] = _ids()
    return out


def test_second_audit_of_the_same_model_reuses_the_actors(audits: dict) -> None:
    assert len(audits["ids_first"]) == 2
    assert audits["ids_second"] == audits["ids_first"]  # the same two actors, by Ray's id
    first, second = _engine(audits["first"]), _engine(audits["second"])
    assert first["actors_reused"] is False and first["actor_start_s"] > 0
    assert second["actors_reused"] is True and second["actor_start_s"] is None
    assert_same_numbers(audits["local"], audits["first"], heatmaps=False)
    assert_same_numbers(audits["local"], audits["second"], heatmaps=False)


def test_another_model_never_gets_them(audits: dict) -> None:
    assert _engine(audits["other"])["actors_reused"] is False
    # Its own two actors; the first model's pool was ended to free the CPUs.
    assert len(audits["ids_other"]) == 2
    assert not set(audits["ids_other"]) & set(audits["ids_first"])
    assert not set(audits["ids_other"].values()) & set(audits["ids_first"].values())
    assert_same_numbers(audits["other_local"], audits["other"], heatmaps=False)


def test_actors_count_their_audits(audits: dict) -> None:
    """Each kept actor says how many audits it served: one (this model's only audit)."""
    import ray

    from auditapp.engines.ray_pool import pool_names

    infos = ray.get([ray.get_actor(n).begin.remote() for n in pool_names(ray)])
    assert [i["audits"] for i in infos] == [2, 2]  # the audit above, and this call
    assert {i["key"][:24] for i in infos} == {n.split("-")[2] for n in audits["ids_other"]}


def test_shutdown_pools_ends_them(audits: dict) -> None:
    import ray

    from auditapp.engines.ray_pool import pool_names, shutdown_pools

    assert shutdown_pools() == 2
    assert pool_names(ray) == []
    assert shutdown_pools() == 0


def _copy(tmp_path: Path, name: str) -> Path:
    """The demo model's folder, copied (its training manifest's relative path left out)."""
    folder = Path(shutil.copytree(MODEL, tmp_path / name))
    toml = folder / "model.toml"
    lines = toml.read_text().splitlines()
    toml.write_text("\n".join(x for x in lines if not x.startswith("training_manifest")) + "\n")
    return folder


def test_key_follows_everything_the_numbers_depend_on(tmp_path: Path) -> None:
    from auditapp.engines.ray_pool import pool_key
    from audits.model_card import load_card

    def key(folder: Path, **placement: object) -> str:
        return pool_key(load_card(folder), **{"device": "cpu", "gpus": 0.0, **placement})

    same = _copy(tmp_path, "same")
    base = key(same)
    assert key(same) == base  # deterministic
    # A copy in another folder is not taken for the same model (the card names its folder).
    assert key(_copy(tmp_path, "same-again")) != base
    assert key(same, device="cuda") != base
    assert key(same, gpus=0.5) != base

    weights = _copy(tmp_path, "weights")
    data = bytearray((weights / "weights.safetensors").read_bytes())
    data[-1] ^= 1  # one bit of the weights
    (weights / "weights.safetensors").write_bytes(bytes(data))
    assert key(weights) != base

    code = _copy(tmp_path, "code")
    (code / "net.py").write_text((code / "net.py").read_text() + "\n# changed\n")
    assert key(code) != base

    mean = _copy(tmp_path, "mean")
    toml = mean / "model.toml"
    toml.write_text(toml.read_text().replace("mean = [0.5, 0.5, 0.5]", "mean = [0.5, 0.5, 0.51]"))
    assert load_card(mean).mean != load_card(same).mean
    assert key(mean) != base


def test_a_model_from_memory_gets_one_off_actors(tmp_path: Path, ray_cluster: None) -> None:
    """The Python API's ``nn.Module`` (pickled to the actors) is not kept: its identity is not
    a file's sha256. Same numbers as the local engine; no pool actor left afterwards."""
    import ray
    import torch
    from torch import nn

    from auditapp.engines.ray_pool import pool_names
    from auditapp.engines.spec import EngineSpec
    from audits import audit
    from audits.model_card import load_card

    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 6)
    )
    data = small_heldout(tmp_path / "data")
    common = {"classes": load_card(MODEL).classes, "input_size": 32, "explain": False,
              "integrity": False, "batch_size": BATCH, "device": "cpu"}  # fmt: skip
    local = audit(module, data, store=tmp_path / "a", **common)
    on_ray = audit(module, data, store=tmp_path / "b", engine=EngineSpec("ray", actors=2), **common)
    assert on_ray.record.engine.actors_reused is False
    assert pool_names(ray) == []
    assert_same_numbers(local.path, on_ray.path, heatmaps=False)


def test_actors_built_for_another_key_are_refused_and_ended() -> None:
    """A pool whose actor reports another key (a name taken by other code, a prefix clash)
    is never used: the audit stops with one line and that actor is ended."""
    from auditapp.engines.ray_pool import Pool, check_keys
    from audits.errors import AuditError

    ended = []

    class FakeRay:  # only what check_keys touches: find an actor by name, kill it
        @staticmethod
        def get_actor(name: str) -> str:
            return name

        @staticmethod
        def kill(actor: str, no_restart: bool = True) -> None:
            ended.append(actor)

    key = "a" * 64
    pool = Pool(["h0", "h1"], key, ["audits-pool-x-0", "audits-pool-x-1"])
    check_keys(FakeRay, pool, [{"key": key}, {"key": key}])  # all match: nothing happens
    assert ended == []
    with pytest.raises(AuditError, match="audits-pool-x-1 were started for another model"):
        check_keys(FakeRay, pool, [{"key": key}, {"key": "b" * 64}])
    assert ended == ["audits-pool-x-1"]
