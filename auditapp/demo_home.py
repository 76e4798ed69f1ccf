"""Where ``model-audit demo`` keeps the generated demo data and the demo's model folders.

In a source checkout: ``fixtures/data/`` and ``fixtures/models/`` (as always). Installed, the
package folder may be read-only and is no place for 200 MB of images, so the demo works in
``$MODEL_AUDIT_DEMO_HOME``, else ``$XDG_CACHE_HOME/model-audit/demo`` (``~/.cache/...``):
``data/<set>/`` and a copy of the bundled ``models/`` beside it, so that the cards' relative
``training_manifest = "../../../data/train_v1/manifest.csv"`` finds the generated set.
The demo store itself goes where ``--store`` says (``./audit-store`` by default).
"""

from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

#: The repository root, or ``model_audit/`` in an installed wheel: ``fixtures/`` is beside us.
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
HOME_ENV = "MODEL_AUDIT_DEMO_HOME"


@dataclass(frozen=True)
class DemoHome:
    data: Path  #: the generated sets: ``<data>/<set>/manifest.csv``
    models: Path  #: the model folders: ``<models>/car-variants/<version>/``


def is_source_checkout() -> bool:
    """Whether this code runs from the repository (or an unpacked sdist), not a wheel."""
    return (ROOT / "pyproject.toml").is_file()


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/model-audit``, else ``~/.cache/model-audit``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "model-audit"


def demo_home() -> DemoHome:
    """The demo's data and model folders (created, with the bundled models copied in, if needed)."""
    env = os.environ.get(HOME_ENV)
    if not env and is_source_checkout():
        return DemoHome(FIXTURES / "data", FIXTURES / "models")
    root = Path(env).expanduser() if env else cache_root() / "demo"
    sync_tree(FIXTURES / "models", root / "models")
    return DemoHome(root / "data", root / "models")


def sync_tree(src: Path, dst: Path) -> None:
    """Copy the files of ``src`` that ``dst`` lacks or holds in another version.

    Each file is copied beside its target and renamed into place, so an interrupted copy never
    leaves a half-written weights file for the next run to load.
    """
    for path in sorted(src.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        target = dst / path.relative_to(src)
        if target.is_file() and filecmp.cmp(path, target, shallow=False):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
