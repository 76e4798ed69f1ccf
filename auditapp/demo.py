"""Build the bundled demo store by calling the pipelines' Python functions: the generated data, audits of car-variants 1.0.0 and 1.1.0 on
the frozen held-out set, a drift run of the fan batch for each, and the 1.0.0 → 1.1.0
comparison. Each piece is built only when missing, so a second start is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

from auditapp.pipeline.audit import run_audit
from audits.datasets import freeze, load_dataset, read_freeze
from audits.errors import AuditError
from audits.model_card import load_card, weights_sha256
from audits.store import Run, list_runs

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "fixtures" / "models" / "car-variants"
VERSIONS = ("1.0.0", "1.1.0")


def _say(msg: str) -> None:
    print(f"demo: {msg}", file=sys.stderr, flush=True)


def _find_audit(runs: list[Run], model_dir: Path, fingerprint: str) -> Run | None:
    card = load_card(model_dir)
    sha = weights_sha256(card.weights)
    for run in runs:
        m, d = run.meta.get("model", {}), run.meta.get("dataset", {})
        if (
            (
                run.kind == "audit"
                and m.get("weights_sha256") == sha
                and d.get("fingerprint") == fingerprint
            )
            and m.get("name") == card.name
            and m.get("version") == card.version
        ):
            return run
    return None


def ensure_demo_store(store: str | Path = "audit-store", device: str = "auto") -> Path:
    """Build whatever the demo store lacks; returns the audit run of the newest version."""
    from auditapp.pipeline.drift import run_drift
    from audits.compare import compare_runs, save_comparison
    from fixtures.generate import FingerprintMismatch, ensure_demo_data

    store = Path(store)
    try:
        manifests = ensure_demo_data(verbose=True)
    except FingerprintMismatch as exc:
        raise AuditError(str(exc)) from None
    heldout = load_dataset(manifests["heldout"])
    record = read_freeze(heldout)
    if record is None:
        record = freeze(heldout)
        _say(f"froze the held-out set ({record['n_images']} images)")
    audits: dict[str, Run] = {}
    for version in VERSIONS:  # oldest first, so the newest version is the newest run
        model_dir = MODELS / version
        found = _find_audit(list_runs(store), model_dir, record["fingerprint"])
        if found is None:
            _say(f"auditing car-variants {version} on the held-out set")
            run_audit(model_dir, manifests["heldout"], store=store, device=device)
            found = _find_audit(list_runs(store), model_dir, record["fingerprint"])
            assert found is not None
        audits[version] = found
    for version in VERSIONS:
        has_drift = any(
            r.kind == "drift" and (r.meta.get("model") or {}).get("version") == version
            for r in list_runs(store)
        )
        if not has_drift:
            _say(f"checking the fan batch for drift against the held-out set ({version})")
            run_drift(
                MODELS / version,
                manifests["heldout"],
                manifests["fan_batch"],
                store=store,
                device=device,
                progress=True,
            )
    old, new = audits[VERSIONS[0]], audits[VERSIONS[-1]]
    compared = any(
        r.kind == "comparison" and (r.meta.get("run_b") or {}).get("run_id") == new.run_id
        for r in list_runs(store)
    )
    if not compared:
        _say(f"comparing {VERSIONS[0]} with {VERSIONS[-1]}")
        doc, aligned = compare_runs(old, new, measure=True, speed_options={"device": device})
        save_comparison(doc, aligned, store)
    return new.path
