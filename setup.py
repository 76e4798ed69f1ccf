"""Builds the wheel's layout; the project's metadata is in pyproject.toml.

``build_py`` writes ``audits/`` and ``model_audit/{auditapp,reports,dashboard,explain,fixtures}``
with their imports rewritten (``scripts/wheel_layout.py``, docs/ARCHITECTURE.md "Installed
layout"). Editable installs are refused: the relocated imports exist only in a built wheel, and
the repository's own venv (``scripts/venv.sh``) already runs the code in place.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _layout():
    spec = importlib.util.spec_from_file_location(
        "wheel_layout", HERE / "scripts" / "wheel_layout.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


class BuildRelocated(build_py):
    """Write the installed layout instead of copying packages as they are.

    ``packages=["audits"]`` only makes setuptools run this command; ``run`` writes everything.
    """

    def run(self) -> None:
        if getattr(self, "editable_mode", False):
            raise SystemExit(
                "error: model-audit does not support editable installs (pip install -e): the "
                "wheel relocates packages under model_audit; in the repository use its venv "
                "(source scripts/venv.sh) and `python -m audits`"
            )
        layout = _layout()
        out = Path(self.build_lib)
        for top in ("audits", layout.TOP):  # no module left over from an earlier build
            shutil.rmtree(out / top, ignore_errors=True)
        layout.build_tree(HERE, out)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:  # noqa: ARG002
        return [str(p) for p in Path(self.build_lib).rglob("*") if p.is_file()]


setup(packages=["audits"], cmdclass={"build_py": BuildRelocated})
