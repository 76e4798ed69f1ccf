"""What the three graph formats share: ``FormatModule``, output picking and supported analyses.

A ``FormatModule`` is an ``nn.Module`` whose forward returns the class scores (logits) for a
float NCHW batch, so ``audits.inference.BatchPredictor`` runs every format through the same
batching path. When the card names ``embedding_output``, that output of the model is kept in
``last_embedding`` (the embeddings drift and near-duplicate checks use); otherwise the
embeddings are the logits.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from audits.errors import AuditError
from audits.formats.detect import EXPORTED, ONNX, TORCHSCRIPT


class CardLike(Protocol):
    """What the loaders read of an ``audits.model_card.ModelCard`` (which imports this)."""

    name: str
    version: str
    weights: Path
    format: str
    embedding_output: str | None

    @property
    def card_path(self) -> Path: ...


#: Every analysis of an audit and the commands on a stored one.
ANALYSES = ("metrics", "drift", "compare", "integrity", "explain")
FORMAT_NAMES = {TORCHSCRIPT: "TorchScript", EXPORTED: "torch.export (.pt2)", ONNX: "ONNX"}
_HEATMAPS_HINT = (
    "use a torch.export (.pt2) archive or the eager model (architecture + weights) for heatmaps"
)
#: Why a format cannot do an analysis (a key absent: it can).
_UNSUPPORTED: dict[str, dict[str, str]] = {
    ONNX: {"explain": f"ONNX models have no gradients in this tool; {_HEATMAPS_HINT}"},
    TORCHSCRIPT: {
        # torch: "register_forward_hook is not supported on ScriptModules"; Integrated
        # Gradients needs no layer, so it works.
        "explain": "TorchScript modules do not support forward hooks, so a CAM cannot reach a "
        f"layer; use --method integrated-gradients, or {_HEATMAPS_HINT}"
    },
}


class StageUnsupported(AuditError):
    """An analysis the model's format cannot do: recorded as skipped with this reason."""


def unsupported_reason(model: nn.Module, analysis: str, method: str | None = None) -> str | None:
    """Why ``model``'s format cannot do ``analysis`` (None: it can, or it is an eager model)."""
    fmt = getattr(model, "audit_format", None) if isinstance(model, FormatModule) else None
    if fmt is None:
        return None
    if fmt == TORCHSCRIPT and analysis == "explain" and method == "integratedgradients":
        return None
    return _UNSUPPORTED.get(fmt, {}).get(analysis)


def supported_analyses(fmt: str) -> list[str]:
    """The analyses a format supports (explain by Grad-CAM; see ``unsupported_reason``)."""
    return [a for a in ANALYSES if a not in _UNSUPPORTED.get(fmt, {})]


def _runtime(fmt: str) -> str:
    package = "onnxruntime" if fmt == ONNX else "torch"
    try:
        return f"{package} {importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{package} unknown"


def format_identity(fmt: str) -> dict[str, Any]:
    """The code fields of a run's model block for a graph format: no source code to hash;
    ``code_library`` is the runtime that executes the graph."""
    return {
        "code_sha256": None,
        "code_files": [],
        "code_library": _runtime(fmt),
        "format": fmt,
        "analyses": supported_analyses(fmt),
    }


def _named(outputs: Any) -> dict[str, Any]:
    """A model's outputs by name: a dict's keys, a tuple's positions ("0", "1", ...)."""
    if isinstance(outputs, Mapping):
        return {str(k): v for k, v in outputs.items()}
    if isinstance(outputs, tuple | list):
        return {str(i): v for i, v in enumerate(outputs)}
    return {"0": outputs}


class FormatModule(nn.Module):
    """Base of the format adapters: ``run`` gives the raw outputs; ``forward`` the logits."""

    audit_format = ""

    def __init__(self, label: str, embedding_output: str | None = None) -> None:
        super().__init__()
        self.label = label
        self.embedding_output = embedding_output
        self.embedding_source = f"output:{embedding_output}" if embedding_output else "logits"
        self.last_embedding: torch.Tensor | None = None
        self.default_layer: str | None = None

    def run(self, x: torch.Tensor) -> Any:  # pragma: no cover - every format overrides it
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = _named(self.run(x))
        self.last_embedding = None
        if self.embedding_output is not None:
            if self.embedding_output not in outputs:
                raise AuditError(
                    f"{self.label}: field 'embedding_output' = '{self.embedding_output}' is not "
                    f"an output of the model; its outputs: {', '.join(outputs)}"
                )
            self.last_embedding = outputs.pop(self.embedding_output)
        logits = next(iter(outputs.values()), None)
        if not isinstance(logits, torch.Tensor):
            raise AuditError(
                f"{self.label}: the model's first output is {type(logits).__name__}, not a "
                "tensor of class scores"
            )
        return logits
