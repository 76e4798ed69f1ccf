"""pytorch-grad-cam's own CAM classes behind the ``Attributor`` interface, chosen by name.

Used for the methods without a torch fast path here (Eigen-CAM, Score-CAM, Ablation-CAM,
FullGrad, ...) and, under ``pgc-<name>``, to run the library's own version of any method
(for cross-checks and the benchmark). The library computes per image in NumPy on the CPU;
its output is already scaled to [0, 1] at input size, and the base scaling leaves it unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from explain.base import Attributor

#: Registry name -> pytorch-grad-cam class name.
LIBRARY_CLASSES: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "hirescam": "HiResCAM",
    "gradcamelementwise": "GradCAMElementWise",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
    "fullgrad": "FullGrad",
    "kpcacam": "KPCA_CAM",
    "shapleycam": "ShapleyCAM",
    "randomcam": "RandomCAM",
}


class LibraryCAM(Attributor):
    """One pytorch-grad-cam class; hooks are released and parameter grads dropped after each call."""

    def __init__(
        self,
        model: nn.Module,
        layer: nn.Module | None = None,
        layer_name: str | None = None,
        *,
        method: str,
    ) -> None:
        super().__init__(model, layer, layer_name)
        self.name = method
        self.cam_class = LIBRARY_CLASSES[method.removeprefix("pgc-")]

    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        import audits.tv  # noqa: F401, I001 - the CPU-torch workaround before the library
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        cls = getattr(pytorch_grad_cam, self.cam_class)
        cam = cls(model=self.model, target_layers=[self.layer])
        try:
            maps = []
            for k in range(targets.shape[1]):
                wanted = [ClassifierOutputTarget(int(t)) for t in targets[:, k].tolist()]
                maps.append(torch.from_numpy(cam(input_tensor=inputs, targets=wanted)))
        finally:
            cam.activations_and_grads.release()
            # The library calls loss.backward(): drop the parameter gradients it leaves behind.
            self.model.zero_grad(set_to_none=True)
        return torch.stack(maps, dim=1).to(inputs.device)
