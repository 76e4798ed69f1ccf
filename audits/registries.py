"""Model registries a card may name: ``torchvision:<name>`` and ``timm:<name>``.

A registry builder constructs a known architecture with random weights; the card's weights
file supplies the trained ones. Nothing is ever downloaded: torchvision gets ``weights=None``
and timm ``pretrained=False``, and [kwargs] that would fetch or load weights are refused.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from audits.errors import AuditError

REGISTRIES = ("torchvision", "timm")

#: [kwargs] a registry builder would use to download or read weights behind the card's back.
_WEIGHT_WORDS = ("weights", "pretrained", "checkpoint")


def _names(registry: str) -> list[str]:
    if registry == "torchvision":
        from audits.tv import torchvision

        return list(torchvision.models.list_models())
    import timm

    from audits.tv import torchvision  # noqa: F401 - timm imports torchvision: CPU workaround first

    return list(timm.list_models())


def _require(registry: str, card_path: Path) -> None:
    """Refuse a registry whose package is not installed, saying how to install it."""
    if importlib.util.find_spec(registry) is None:
        raise AuditError(
            f"{card_path}: field 'architecture' names the {registry} registry but {registry} is "
            f"not installed; install it (pip install {registry}) or point 'architecture' at a "
            "file.py:Class in the model folder"
        )


def check_registry(registry: str, name: str, kwargs: dict[str, Any], card_path: Path) -> None:
    """Refuse an unknown model name or [kwargs] that would fetch weights (nothing is built)."""
    _require(registry, card_path)
    fetching = sorted(k for k in kwargs if any(w in k.lower() for w in _WEIGHT_WORDS))
    if fetching:
        raise AuditError(
            f"{card_path}: [kwargs] {', '.join(fetching)} would make {registry} download or read "
            "weights; remove them: the trained weights come from the card's 'weights' file"
        )
    try:
        names = _names(registry)
    except ImportError as exc:
        raise AuditError(
            f"{card_path}: {registry} cannot be imported ({exc}); reinstall it (pip install {registry})"
        ) from None
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AuditError(
            f"{card_path}: field 'architecture': {registry} has no model '{name}'{hint}"
        )


def registry_builder(registry: str, name: str) -> Callable[..., nn.Module]:
    """The builder of ``name`` in ``registry``, with random weights and no download."""
    if registry == "torchvision":
        from audits.tv import torchvision

        def build_tv(**kwargs: Any) -> nn.Module:
            return torchvision.models.get_model(name, weights=None, **kwargs)

        return build_tv

    def build_timm(**kwargs: Any) -> nn.Module:
        import timm

        from audits.tv import torchvision  # noqa: F401 - as in _names

        return timm.create_model(name, pretrained=False, **kwargs)

    return build_timm


def library_version(registry: str) -> str:
    """``"<package> <version>"``: what pins a registry architecture's code in a record."""
    try:
        return f"{registry} {importlib.metadata.version(registry)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{registry} unknown"
