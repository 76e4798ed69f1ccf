"""XGrad-CAM (Fu et al. 2020) on the fast torch path; formula as pytorch-grad-cam."""

from __future__ import annotations

import torch
from torch import Tensor

from explain.gradcam import LayerGradientCAM


class XGradCAM(LayerGradientCAM):
    """Channel weights: gradients averaged with the activations' own spatial distribution."""

    name = "xgradcam"

    def cam(self, act: Tensor, grads: Tensor) -> Tensor:
        a = act[:, None]
        sum_act = a.sum(dim=(-2, -1), keepdim=True)
        weights = (grads * a / (sum_act + 1e-7)).sum(dim=(-2, -1))  # [N, K, C]
        return torch.einsum("nkc,nchw->nkhw", weights, act)
