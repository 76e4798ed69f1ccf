"""Which layer a CAM explains: the card's ``target_layer``, or the last convolution with spatial output.

"Last" is in execution order, found with one dummy forward pass that records every 2-D
convolution's output shape (definition order can differ from the order modules run).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from audits.errors import AuditError
from explain.base import model_device

IG_HINT = (
    "use --method integrated-gradients (captum), which explains the input pixels and needs no layer"
)


@dataclass(frozen=True)
class ConvInfo:
    """A convolution as seen in a dummy forward: its name and output shape [C, H, W]."""

    name: str
    shape: tuple[int, ...]

    @property
    def spatial(self) -> bool:
        return len(self.shape) == 3 and self.shape[1] * self.shape[2] > 1


def trace_convolutions(
    model: nn.Module, input_shape: tuple[int, int, int], also: str | None = None
) -> list[ConvInfo]:
    """2-D convolutions (and the module ``also``) in the order they run on a zero input (C, H, W)."""
    seen: list[ConvInfo] = []
    handles = []

    def record(name: str):
        def hook(_module: nn.Module, _args: tuple, output: object) -> None:
            if isinstance(output, torch.Tensor):
                seen.append(ConvInfo(name, tuple(output.shape[1:])))

        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) or (also is not None and name == also):
            handles.append(module.register_forward_hook(record(name)))
    try:
        with torch.inference_mode():
            model(torch.zeros(1, *input_shape, device=model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def candidates(convs: list[ConvInfo], n: int = 8) -> str:
    """The last ``n`` spatial convolutions, for error messages."""
    names = [c.name for c in convs if c.spatial]
    names = list(dict.fromkeys(names))[-n:]
    return ", ".join(f"{name} {shape_text(convs, name)}" for name in names)


def shape_text(convs: list[ConvInfo], name: str) -> str:
    shape = next(c.shape for c in convs if c.name == name)
    return "(" + "x".join(str(s) for s in shape) + ")"


def find_target_layer(
    model: nn.Module, input_shape: tuple[int, int, int], name: str | None = None
) -> tuple[str, nn.Module]:
    """The layer to explain: ``name`` checked, or the last convolution with spatial output.

    A wrong name is an error that lists candidate layers; a model without a spatial
    convolution is an error that points to Integrated Gradients.
    """
    modules = dict(model.named_modules())
    traced = trace_convolutions(model, input_shape, also=name if name in modules else None)
    convs = [c for c in traced if isinstance(modules[c.name], nn.Conv2d)]
    spatial = [c for c in convs if c.spatial]
    if name is not None:
        hint = (
            f"; convolution layers (output CxHxW): {candidates(convs)}"
            if spatial
            else f"; the model has no convolution with spatial output: {IG_HINT}"
        )
        if name not in modules or name == "":
            raise AuditError(f"target layer '{name}' is not a module of the model{hint}")
        runs = [c for c in traced if c.name == name]
        if not runs:
            raise AuditError(
                f"target layer '{name}' does not run in the model's forward pass{hint}"
            )
        if not runs[-1].spatial:
            raise AuditError(
                f"target layer '{name}' outputs {shape_text(traced, name)}, not a spatial feature map "
                f"[C, H, W] with H x W > 1{hint}"
            )
        return name, modules[name]
    if not spatial:
        what = (
            "no 2-D convolution"
            if not convs
            else "no convolution whose output keeps a spatial map (all are 1x1)"
        )
        raise AuditError(
            f"the model has {what}, so there is no layer for a CAM to explain; {IG_HINT}"
        )
    last = spatial[-1].name
    return last, modules[last]
