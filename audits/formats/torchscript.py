"""TorchScript archives (``torch.jit.save``), loaded with ``torch.jit.load``.

``torch.jit.load`` reads the archive with TorchScript's own C++ deserializer: ``data.pkl``
and ``constants.pkl`` are read by its restricted unpickler (tensors and TorchScript objects,
never Python's ``pickle`` or an arbitrary Python callable), and the model's code is
TorchScript from the archive's ``code/``, run by the TorchScript interpreter (which cannot
import or call Python). ScriptModules take no forward hooks, so CAM heatmaps are unsupported.
"""

from __future__ import annotations

from typing import Any

import torch

from audits.errors import AuditError
from audits.formats.base import CardLike, FormatModule
from audits.formats.detect import TORCHSCRIPT


class TorchScriptModule(FormatModule):
    """A loaded ScriptModule (a registered child, so ``.to(device)`` moves it)."""

    audit_format = TORCHSCRIPT

    def __init__(self, script: torch.jit.ScriptModule, label: str, embedding_output: str | None):
        super().__init__(label, embedding_output)
        self.script = script

    def run(self, x: torch.Tensor) -> Any:
        return self.script(x)


def load_torchscript(card: CardLike) -> TorchScriptModule:
    """The card's TorchScript model on the CPU, in eval mode."""
    try:
        script = torch.jit.load(str(card.weights), map_location="cpu")
    except (RuntimeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuditError(f"{card.weights}: cannot be loaded as TorchScript ({first})") from None
    return TorchScriptModule(script.eval(), f"{card.name}@{card.version}", card.embedding_output)
