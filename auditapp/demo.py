"""Build the bundled demo store by calling the pipelines' Python functions: the generated data, audits of car-variants 1.0.0 and 1.1.0 on
the frozen held-out set, a drift run of the fan batch for each, and the 1.0.0 → 1.1.0
comparison. Each piece is built only when missing, so a second start is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from auditapp.demo_home import demo_home
from auditapp.pipeline.audit import run_audit
from audits.datasets import freeze, load_dataset, read_freeze
from audits.errors import AuditError
from audits.model_card import load_card, weights_sha256
from audits.store import Run, list_runs

VERSIONS = ("1.0.0", "1.1.0")


def _say(msg: str) -> None:
    print(f"demo: {msg}", file=sys.stderr, flush=True)


def _record(run: Run, kind: str) -> Any:
    """The run's record if the run is of ``kind`` and valid (a damaged run is not the demo's)."""
    if run.kind != kind:
        return None
    try:
        return run.record
    except AuditError:
        return None


def _find_audit(runs: list[Run], model_dir: Path, fingerprint: str) -> Run | None:
    card = load_card(model_dir)
    sha = weights_sha256(card.weights)
    for run in runs:
        record = _record(run, "audit")
        if (
            record is not None
            and record.model.weights_sha256 == sha
            and record.dataset.fingerprint == fingerprint
            and (record.model.name, record.model.version) == (card.name, card.version)
        ):
            return run
    return None


def _is_drift_of(run: Run, version: str) -> bool:
    record = _record(run, "drift")
    return record is not None and record.model.version == version


def _is_comparison_for(run: Run, run_id: str) -> bool:
    """Whether ``run`` is a comparison whose candidate (RUN_B) is audit run ``run_id``."""
    record = _record(run, "comparison")
    return record is not None and record.run_b.run_id == run_id


def ensure_demo_store(store: str | Path = "audit-store", device: str = "auto") -> Path:
    """Build whatever the demo store lacks; returns the audit run of the newest version."""
    from auditapp.pipeline.drift import run_drift
    from audits.compare import compare_runs, save_comparison
    from fixtures.generate import FingerprintMismatch, ensure_demo_data

    store = Path(store)
    home = demo_home()  # fixtures/ in a checkout; a cache folder when installed
    models = home.models / "car-variants"
    try:
        manifests = ensure_demo_data(home.data, verbose=True)
    except FingerprintMismatch as exc:
        raise AuditError(str(exc)) from None
    heldout = load_dataset(manifests["heldout"])
    record = read_freeze(heldout)
    if record is None:
        record = freeze(heldout)
        _say(f"froze the held-out set ({record['n_images']} images)")
    audits: dict[str, Run] = {}
    for version in VERSIONS:  # oldest first, so the newest version is the newest run
        model_dir = models / version
        found = _find_audit(list_runs(store), model_dir, record["fingerprint"])
        if found is None:
            _say(f"auditing car-variants {version} on the held-out set")
            run_audit(model_dir, manifests["heldout"], store=store, device=device)
            found = _find_audit(list_runs(store), model_dir, record["fingerprint"])
            assert found is not None
        audits[version] = found
    for version in VERSIONS:
        if not any(_is_drift_of(r, version) for r in list_runs(store)):
            _say(f"checking the fan batch for drift against the held-out set ({version})")
            run_drift(
                models / version,
                manifests["heldout"],
                manifests["fan_batch"],
                store=store,
                device=device,
                progress=True,
            )
    old, new = audits[VERSIONS[0]], audits[VERSIONS[-1]]
    if not any(_is_comparison_for(r, new.run_id) for r in list_runs(store)):
        _say(f"comparing {VERSIONS[0]} with {VERSIONS[-1]}")
        doc, aligned = compare_runs(old, new, measure=True, speed_options={"device": device})
        save_comparison(doc, aligned, store)
    return new.path
