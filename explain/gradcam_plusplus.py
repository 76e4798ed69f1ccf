"""Grad-CAM++ (Chattopadhyay et al. 2018) on the fast torch path; formula as pytorch-grad-cam."""

from __future__ import annotations

import torch
from torch import Tensor

from explain.gradcam import LayerGradientCAM


class GradCAMPlusPlus(LayerGradientCAM):
    """Channel weights: positive gradients weighted by the closed-form alphas of eq. 19."""

    name = "gradcam++"

    def cam(self, act: Tensor, grads: Tensor) -> Tensor:
        a = act[:, None]  # [N, 1, C, h, w] against grads [N, K, C, h, w]
        g2 = grads.pow(2)
        g3 = g2 * grads
        sum_act = a.sum(dim=(-2, -1), keepdim=True)
        alpha = g2 / (2 * g2 + sum_act * g3 + 1e-6)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        weights = (grads.clamp_min(0) * alpha).sum(dim=(-2, -1))  # [N, K, C]
        return torch.einsum("nkc,nchw->nkhw", weights, act)
