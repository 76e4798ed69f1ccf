"""HiResCAM (Draelos & Carin 2020) on the fast torch path; formula as pytorch-grad-cam."""

from __future__ import annotations

from torch import Tensor

from explain.gradcam import LayerGradientCAM


class HiResCAM(LayerGradientCAM):
    """Element-wise gradient x activation, summed over channels (no spatial averaging)."""

    name = "hirescam"

    def cam(self, act: Tensor, grads: Tensor) -> Tensor:
        return (grads * act[:, None]).sum(dim=2)
