"""captum's ``LayerGradCam`` and ``IntegratedGradients`` behind the ``Attributor`` interface.

``LayerGradCam`` is a cross-check of the torch Grad-CAM (same maths, captum's hooks).
``IntegratedGradients`` explains the input pixels directly, so it needs no convolution: it is
the method for models without one. Its heatmap is the attribution summed over colour channels,
positive part (evidence *for* the class), then min-max scaled like the CAMs. The default
baseline is an all-zero *normalised* input, i.e. the data set's mean colour.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from explain.base import Attributor, frozen_parameters


class CaptumLayerGradCam(Attributor):
    """captum's ``LayerGradCam`` at the target layer."""

    name = "layergradcam"

    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        from captum.attr import LayerGradCam

        method = LayerGradCam(self.model, self.layer)
        maps = [
            method.attribute(inputs, target=targets[:, k])[:, 0] for k in range(targets.shape[1])
        ]
        return torch.stack(maps, dim=1)


class CaptumIntegratedGradients(Attributor):
    """captum's ``IntegratedGradients`` over the input pixels (no layer needed)."""

    name = "integratedgradients"
    needs_layer = False

    def __init__(
        self,
        model: nn.Module,
        layer: nn.Module | None = None,
        layer_name: str | None = None,
        n_steps: int = 32,
        baseline: float = 0.0,
        pixels_per_pass: int = 1 << 20,
    ) -> None:
        super().__init__(model, None, None)
        self.n_steps = n_steps
        self.baseline = baseline
        self.pixels_per_pass = pixels_per_pass

    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        from captum.attr import IntegratedGradients

        method = IntegratedGradients(self.model)
        # captum runs n_steps x N scaled inputs; a few large passes beat many small ones, within
        # a pixel budget that bounds memory whatever the input size.
        per_pass = max(
            inputs.shape[0], self.pixels_per_pass // (inputs.shape[-2] * inputs.shape[-1])
        )
        maps = []
        with frozen_parameters(self.model):  # gradients w.r.t. the pixels only
            for k in range(targets.shape[1]):
                attr = method.attribute(
                    inputs,
                    baselines=self.baseline,
                    target=targets[:, k],
                    n_steps=self.n_steps,
                    internal_batch_size=per_pass,
                )
                maps.append(attr.sum(dim=1))
        return torch.stack(maps, dim=1)

    def describe(self) -> dict[str, str | None]:
        return {"method": self.name, "layer": None}
