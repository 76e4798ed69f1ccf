"""``load_format_model``: the loader for a card's graph format (one module per format)."""

from __future__ import annotations

import torch

from audits.errors import AuditError
from audits.formats.base import CardLike, FormatModule
from audits.formats.detect import EXPORTED, ONNX, TORCHSCRIPT
from audits.formats.exported import load_exported
from audits.formats.onnx_runtime import load_onnx
from audits.formats.torchscript import load_torchscript


def load_format_model(card: CardLike, device: torch.device | str = "cpu") -> FormatModule:
    """Load a TorchScript, torch.export or ONNX card's model (no Python of the author runs)."""
    if card.format == TORCHSCRIPT:
        return load_torchscript(card)
    if card.format == EXPORTED:
        return load_exported(card)
    if card.format == ONNX:
        return load_onnx(card, torch.device(device))
    raise AuditError(f"{card.card_path}: unknown model format '{card.format}'")
