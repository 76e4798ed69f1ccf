"""Model audits for PyTorch image classifiers: the core (domain) package (docs/ARCHITECTURE.md).

This ``__init__`` is also the public facade of the Python API (``from audits import audit``):
its names are resolved lazily from ``auditapp.api`` on first use, so ``import audits.metrics``
stays cheap and no module below the application layer ever runs the application. No module of
ours imports this facade (``tests/test_import_graph.py``); the version lives in
``audits.version`` so none needs to.

``drift`` and ``compare`` are also sub-packages (``audits/drift/``, ``audits/compare/``). The
package attribute of either name is a ``_Dual``: calling it runs the API function, any other
attribute comes from the sub-package, so ``audits.compare(a, b)`` and
``audits.compare.compare_runs`` both work (``from audits.compare import …`` is unaffected).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from audits.version import __version__

#: The API's names, all from ``auditapp.api``.
_API = (
    "AuditResult",
    "Comparison",
    "DriftResult",
    "audit",
    "check_claims",
    "compare",
    "drift",
    "load_run",
)
#: API names that are also sub-packages of ``audits``.
_DUAL = ("compare", "drift")

__all__ = ["__version__", *_API]


def _api(name: str) -> Any:
    from auditapp import api  # the facade's one upward import (tests/test_import_graph.py)

    return getattr(api, name)


class _Dual:
    """``audits.compare`` / ``audits.drift``: the API function when called, else the sub-package."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _api(self._name)(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(f"{__name__}.{self._name}"), attr)

    def __setattr__(self, attr: str, value: Any) -> None:  # monkeypatch reaches the package
        if attr == "_name":
            object.__setattr__(self, attr, value)
        else:
            setattr(importlib.import_module(f"{__name__}.{self._name}"), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(importlib.import_module(f"{__name__}.{self._name}"), attr)

    def __repr__(self) -> str:
        return f"<function and package audits.{self._name}>"


class _Facade(types.ModuleType):
    # Data descriptors win over the module's __dict__, where the import system would put the
    # sub-package after ``import audits.compare``; the setter just lets that assignment happen.
    compare = property(lambda self: _Dual("compare"), lambda self, value: None)
    drift = property(lambda self: _Dual("drift"), lambda self, value: None)


def __getattr__(name: str) -> Any:
    if name in _API:
        return _api(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})


sys.modules[__name__].__class__ = _Facade
