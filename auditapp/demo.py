"""Build the bundled demo store by calling the pipelines' Python functions: the generated data, audits of car-variants 1.0.0 and 1.1.0 on
the frozen held-out set, a drift run of the fan batch for each, the 1.0.0 → 1.1.0
comparison, and the review loop (three scripted expert decisions, ``relabel`` into
``heldout_v2``, 1.1.0 audited on it). Each piece is built only when missing, so a second start
is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from auditapp.demo_batches import ensure_batches
from auditapp.demo_home import demo_home
from auditapp.pipeline.audit import run_audit
from audits.corrections import (
    Decision,
    append_decisions,
    corrections_file,
    read_corrections,
)
from audits.datasets import freeze, load_dataset, read_freeze
from audits.errors import AuditError
from audits.hashing import file_sha256
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


def _is_drift_of(run: Run, version: str, batch: str | None = None) -> bool:
    """A drift run of ``version`` (of the batch named ``batch``, when given)."""
    record = _record(run, "drift")
    if record is None or record.model.version != version:
        return False
    return batch is None or record.current.name == batch


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
        if version == VERSIONS[0]:
            # The expert reviews the oldest version's confusions; the newest version is audited
            # on the corrected set before its audit on the original set, so that the newest
            # audit in the store (the dashboard's first page) stays the one on the original.
            _reviewed_version(store, device, models / VERSIONS[-1], manifests["heldout"], found)
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
    # More production batches for the newest version: the Drift page's timeline (demo_batches).
    newest = VERSIONS[-1]
    ensure_batches(
        manifests,
        lambda label: any(_is_drift_of(r, newest, label) for r in list_runs(store)),
        lambda manifest, label: run_drift(
            models / newest, manifests["heldout"], manifest, store=store, device=device, label=label
        ),
    )
    old, new = audits[VERSIONS[0]], audits[VERSIONS[-1]]
    if not any(_is_comparison_for(r, new.run_id) for r in list_runs(store)):
        _say(f"comparing {VERSIONS[0]} with {VERSIONS[-1]}")
        doc, aligned = compare_runs(old, new, measure=True, speed_options={"device": device})
        save_comparison(doc, aligned, store)
    return new.path


#: The scripted expert review of the walkthrough (README): who, why, and where the new set goes.
REVIEWER, REASON, CHILD = "demo-expert", "demo: scripted review", "heldout_v2"


def _scripted_decisions(heldout: Path, baseline: Run) -> list[Decision]:
    """Three targa images the baseline took for carrera: two relabelled carrera, one excluded."""
    table = baseline.table
    confused = table[(table["label"] == "targa") & (table["pred"] == "carrera")]
    picked = confused.sort_values("path").head(3)
    if len(picked) < 3:  # a regenerated demo without three such confusions: its least sure targas
        targa = table[table["label"] == "targa"].sort_values(["correct", "confidence", "path"])
        picked = targa.head(3)
    root = heldout.parent
    out = []
    for i, path in enumerate(picked["path"]):
        relabel = i < 2
        out.append(
            Decision(
                path=path,
                sha256=file_sha256(root / path),
                old_label="targa",
                decision="relabel" if relabel else "exclude",
                new_label="carrera" if relabel else "",
                reviewer=REVIEWER,
                reason=REASON,
            )
        )
    return out


def _reviewed_version(
    store: Path, device: str, model_dir: Path, heldout: Path, baseline: Run
) -> None:
    """The review loop of the walkthrough: corrections beside the held-out set (three scripted
    decisions), ``relabel`` into ``heldout_v2``, and the newest version audited on it."""
    from audits.relabel import relabel

    child = heldout.parent.parent / CHILD / "manifest.csv"
    record = read_freeze(load_dataset(child)) if child.is_file() else None
    if record is None or "lineage" not in record:
        file = corrections_file(heldout, "manifest")
        done = file.is_file() and REVIEWER in set(read_corrections(file)["reviewer"])
        if not done:
            append_decisions(file, _scripted_decisions(heldout, baseline))
            _say(f"scripted review: 2 relabelled, 1 excluded by {REVIEWER} in {file.name}")
        result = relabel(heldout, child, file, force=True)
        record = result.record
        _say(f"relabel: new set {child} ({record['n_images']} images)")
    if _find_audit(list_runs(store), model_dir, record["fingerprint"]) is None:
        _say(f"auditing car-variants {model_dir.name} on the reviewed set {CHILD}")
        run_audit(model_dir, child, store=store, device=device)
