"""LayerCAM (Jiang et al. 2021) on the fast torch path; formula as pytorch-grad-cam."""

from __future__ import annotations

from torch import Tensor

from explain.gradcam import LayerGradientCAM


class LayerCAM(LayerGradientCAM):
    """Per-location weights: the positive gradient at each position times the activation."""

    name = "layercam"

    def cam(self, act: Tensor, grads: Tensor) -> Tensor:
        return (grads.clamp_min(0) * act[:, None]).sum(dim=2)
