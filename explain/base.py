"""The one interface every attribution method implements: ``attribute(inputs, targets)``.

An ``Attributor`` wraps a model (and, for the CAM family, a target layer). ``attribute`` takes
a batch of *normalised* model inputs ``[N, C, H, W]`` and class indices, and returns heatmaps
at input resolution, on the model's device, each scaled to [0, 1]:

- ``targets`` of shape ``[N]`` (or an int for all)  -> ``[N, H, W]``
- ``targets`` of shape ``[N, K]`` (K classes per image, e.g. predicted and true) -> ``[N, K, H, W]``

Normalisation is pytorch-grad-cam's, done in torch on the device: ReLU, per-map min-max to
[0, 1] at the method's own resolution, bilinear upsampling (half-pixel centres, as
``cv2.resize``) to the input size, then min-max again. A map that is zero everywhere stays zero.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audits.errors import AuditError

#: pytorch-grad-cam's epsilon in ``scale_cam_image``: ``(x - min) / (1e-7 + max)``.
EPS = 1e-7


def minmax(maps: Tensor) -> Tensor:
    """Scale each ``[..., h, w]`` map to [0, 1] exactly as pytorch-grad-cam's ``scale_cam_image``."""
    flat = maps.flatten(-2)
    low, high = torch.aminmax(flat, dim=-1, keepdim=True)
    # max(x - min) == max(x) - min; (x - min) / d as one fused pass: x * (1/d) - min/d.
    inv = 1.0 / (EPS + (high - low))
    return torch.addcmul(-low * inv, flat, inv).view_as(maps)


def scale_maps(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """ReLU, min-max, bilinear upsampling to ``size`` (H, W), min-max: ``[..., h, w] -> [..., H, W]``."""
    maps = minmax(maps.float().clamp_min(0))
    if tuple(maps.shape[-2:]) != tuple(size):
        lead = maps.shape[:-2]
        # align_corners=False is cv2.INTER_LINEAR's half-pixel convention (what the library uses).
        maps = F.interpolate(
            maps.reshape(-1, 1, *maps.shape[-2:]), size=size, mode="bilinear", align_corners=False
        )
        maps = maps.reshape(*lead, *size)
    # Bilinear weights are convex, so the upsampled map stays >= 0: no second ReLU needed.
    return minmax(maps)


def as_targets(
    targets: Tensor | Sequence[int] | int, n: int, device: torch.device
) -> tuple[Tensor, bool]:
    """Targets as a LongTensor ``[N, K]`` on ``device``; the flag says whether K was implied (1-D)."""
    t = torch.as_tensor(targets, dtype=torch.long)
    if t.ndim == 0:
        t = t.expand(n)
    squeeze = t.ndim == 1
    if squeeze:
        t = t[:, None]
    if t.ndim != 2 or t.shape[0] != n:
        raise ValueError(
            f"targets must be an int, [N] or [N, K] with N={n}; got shape {tuple(t.shape)}"
        )
    return t.to(device), squeeze


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a parameter-free model)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Temporarily stop parameters from requiring grad, restoring each flag afterwards.

    Gradient methods need gradients with respect to activations or inputs only; without this,
    autograd would also record the whole forward for weight gradients nobody reads.
    """
    params = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in params:
            p.requires_grad_(flag)


class Attributor:
    """Base class: subclasses implement ``_attribute`` (raw maps); the base scales them.

    Attributors hold no hooks between calls (each call registers and removes its own), so an
    instance can be kept for a whole run and dropped at any time.
    """

    #: Registry name of the method.
    name: str = "base"
    #: Whether the method explains a layer (the CAM family) rather than the input pixels.
    needs_layer: bool = True

    def __init__(
        self, model: nn.Module, layer: nn.Module | None = None, layer_name: str | None = None
    ) -> None:
        if self.needs_layer and layer is None:
            raise AuditError(f"method '{self.name}' needs a target layer")
        self.model = model
        self.layer = layer
        self.layer_name = layer_name

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def attribute(self, inputs: Tensor, targets: Tensor | Sequence[int] | int) -> Tensor:
        """Heatmaps in [0, 1] at input resolution: ``[N, H, W]`` or ``[N, K, H, W]`` (see module doc)."""
        if inputs.ndim != 4:
            raise ValueError(
                f"inputs must be a batch [N, C, H, W]; got shape {tuple(inputs.shape)}"
            )
        x = inputs.to(self.device)
        t, squeeze = as_targets(targets, x.shape[0], x.device)
        raw = self._attribute(x, t).detach()
        maps = scale_maps(raw, (x.shape[-2], x.shape[-1]))
        return maps[:, 0] if squeeze else maps

    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """Raw, unnormalised maps ``[N, K, h, w]`` (any resolution) for targets ``[N, K]``."""
        raise NotImplementedError

    def describe(self) -> dict[str, str | None]:
        """What to record in a run: the method and the layer it explains."""
        return {"method": self.name, "layer": self.layer_name}
