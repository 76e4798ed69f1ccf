"""A private copy of the demo's held-out set and audit runs for review tests.

Decisions are written beside the audited set, so a test must never review the committed
``fixtures/data``: the copy's ``audit.json`` names the copied manifest instead.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: What a review reads from a run folder (explain/ and thumbnails are optional extras).
RUN_FILES = (
    "audit.json",
    "predictions.parquet",
    "probabilities.npy",
    "integrity.json",
    "embeddings.npy",
)


def demo_store() -> Path:
    return Path(os.environ.get("DASHBOARD_DEMO_STORE", REPO / "audit-store"))


def demo_audits(store: Path) -> dict[str, Path]:
    """version -> audit run folder of the demo model in ``store`` (newest per version)."""
    found: dict[str, Path] = {}
    for folder in sorted(store.glob("*-car-variants-*-audit-*"), reverse=True):
        try:
            meta = json.loads((folder / "audit.json").read_text())
        except (OSError, ValueError):
            continue
        found.setdefault(meta["model"]["version"], folder)
    return found


def copy_demo(
    dest: Path, versions: tuple[str, ...] = ("1.0.0", "1.1.0"), extras: tuple[str, ...] = ()
) -> tuple[Path, Path, dict[str, str]]:
    """(store, manifest, version -> run id): the demo's held-out set and audit runs copied
    under ``dest``, each copied ``audit.json`` pointing at the copied manifest. Raises
    FileNotFoundError when the demo store or data set is not built."""
    runs = demo_audits(demo_store())
    missing = [v for v in versions if v not in runs]
    if missing:
        raise FileNotFoundError(f"no demo audit of {', '.join(missing)} in {demo_store()}")
    first = json.loads((runs[versions[0]] / "audit.json").read_text())
    source = Path(first["dataset"]["path"])
    if not source.is_file():
        raise FileNotFoundError(f"{source}: the demo's held-out manifest is not built")
    data = dest / "data" / "heldout"
    data.mkdir(parents=True)
    shutil.copy2(source, data / source.name)
    shutil.copytree(source.parent / "images", data / "images")
    manifest = data / source.name
    store = dest / "store"
    ids = {}
    for version in versions:
        src = runs[version]
        out = store / src.name
        out.mkdir(parents=True)
        for name in RUN_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, out / name)
        for name in extras:
            if (src / name).is_dir():
                shutil.copytree(src / name, out / name)
        meta = json.loads((out / "audit.json").read_text())
        meta["dataset"]["path"] = str(manifest)
        (out / "audit.json").write_text(json.dumps(meta, indent=2))
        ids[version] = src.name
    return store, manifest, ids
