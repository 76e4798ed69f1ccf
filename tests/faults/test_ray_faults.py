"""Faults of the Ray engine, on a real local Ray: an actor process killed (SIGKILL) in the middle
of a run is restarted and its batch retried, with no row lost or written twice; a cluster that
is not there is one ``error:`` line and exit 2, within seconds, without a traceback.

Before: there was no ``--engine ray`` (argparse refused it: exit 2 with a usage message, so the
unreachable-address test fails on its message, the others on ``run_audit(engine=...)``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from tests.faults.faultkit import one_line_error, run_cli
from tests.ray_kit import BATCH, MODEL, assert_same_numbers, local_ray, small_heldout

pytestmark = pytest.mark.timeout(900)
KILLED_BATCH = 2


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from auditapp.engines.ray_actor import FAULT_ENV
    from auditapp.engines.spec import EngineSpec
    from auditapp.pipeline.audit import run_audit

    root = tmp_path_factory.mktemp("ray-faults")
    marker = root / "killed"
    data = small_heldout(root / "data")
    common = {
        "device": "cpu",
        "batch_size": BATCH,
        "skip": ("explain", "integrity", "embedding_map"),
    }
    local = run_audit(MODEL, data, store=root / "store", workers=0, **common)
    # Ray's workers get the variable from the job's runtime environment; the actor that receives
    # audit batch KILLED_BATCH creates the marker and SIGKILLs its own process, once.
    env = {"env_vars": {FAULT_ENV: f"{KILLED_BATCH}:{marker}"}}
    for _ in local_ray(runtime_env=env):
        ray = run_audit(
            MODEL, data, store=root / "store", engine=EngineSpec("ray", actors=2), **common
        )
    return {"local": local, "ray": ray, "marker": marker}


def test_killed_actor_is_retried_without_losing_or_duplicating_rows(
    killed_run: dict[str, Path],
) -> None:
    assert killed_run["marker"].exists(), "the fault hook never fired"
    killed_pid = int(killed_run["marker"].read_text())
    assert killed_pid > 0
    table = pd.read_parquet(killed_run["ray"] / "predictions.parquet")
    assert table["row"].tolist() == list(range(200))
    assert table["path"].is_unique
    assert_same_numbers(killed_run["local"], killed_run["ray"], heatmaps=False)


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_unreachable_cluster_is_one_line_and_exit_2(address: str, tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_cli(
        ["run", "--model", str(MODEL), "--data", str(small_heldout(tmp_path / "d")),
         "--store", str(tmp_path / "store"), "--engine", "ray", "--ray-address", address],
        timeout=300,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    line = one_line_error(result.stderr)
    assert f"--ray-address {address}: no Ray cluster answers at 127.0.0.1:1" in line
    assert "ray start --head" in line
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())
    assert elapsed < 120  # python + torch start-up on loaded cores; Ray itself would retry ~60 s


def test_ray_options_need_the_ray_engine(tmp_path: Path) -> None:
    result = run_cli(
        ["run", "--model", str(MODEL), "--data", str(tmp_path), "--ray-address", "auto"],
        timeout=300,
    )
    assert result.returncode == 2
    assert one_line_error(result.stderr) == "error: --ray-address needs --engine ray"


def test_a_kept_actor_reports_the_key_of_the_files_it_loaded(tmp_path: Path) -> None:
    """A kept actor is matched on the model it holds, not on the key it was sent: an actor
    built from weights that differ from the driver's reports another key (and is refused)."""
    import shutil

    from auditapp.engines.ray_actor import AuditActor
    from auditapp.engines.ray_pool import pool_key
    from audits.model_card import load_card

    model = tmp_path / "model"
    shutil.copytree(MODEL, model)
    card = load_card(model)
    placement = {"device": "cpu", "gpus": 0, "cpus": 1.0, "threads": 1}
    sent = pool_key(card, **placement)
    # The next version's weights (same architecture) swapped in after the driver hashed them.
    shutil.copyfile(MODEL.parent / "1.1.0" / card.weights.name, card.weights)
    actor = AuditActor(card, "cpu", key=sent, placement=placement)  # plain class: no Ray
    assert actor.key == pool_key(card, **placement) != sent
