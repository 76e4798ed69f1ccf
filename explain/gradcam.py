"""Grad-CAM in torch, batched, with the backward pass stopping at the target layer.

pytorch-grad-cam runs a full backward pass to the input (weights and all) and does the CAM
maths per image in NumPy on the CPU. Here a forward hook re-roots the autograd graph at the
target layer's output (parameters temporarily stop requiring grad), so the forward records
nothing before the layer and the backward computes only ``d score / d activation``: the cost
is one forward pass plus a short partial backward. The CAM weighting, upsampling and
normalisation stay on the device. With K targets per image (predicted and true class) the K
vector-Jacobian products run as one batched backward (``is_grads_batched``).

``LayerGradientCAM`` is the shared machinery; Grad-CAM++, XGrad-CAM, LayerCAM and HiResCAM
(one file each) only change ``cam``.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from audits.errors import AuditError
from explain.base import Attributor, frozen_parameters


class _Capture:
    """Forward hook: keeps the layer's output as a fresh graph leaf and passes a copy on."""

    def __init__(self, layer_name: str | None) -> None:
        self.layer_name = layer_name
        self.activation: Tensor | None = None

    def __call__(self, _module: nn.Module, _args: tuple, output: object) -> Tensor:
        if not isinstance(output, Tensor):
            raise AuditError(
                f"target layer '{self.layer_name}' returns {type(output).__name__}, not a tensor; "
                "pick a convolution layer"
            )
        if self.activation is not None:
            raise AuditError(
                f"target layer '{self.layer_name}' runs more than once per forward pass; pick a layer used once"
            )
        self.activation = output.detach().requires_grad_(True)
        # A copy goes on: a later in-place op (VGG's ReLU(inplace=True)) must not touch the leaf.
        return self.activation.clone()


class LayerGradientCAM(Attributor):
    """Base for CAM methods computed from a layer's activations A and gradients dS/dA."""

    name = "layer-gradient-cam"
    #: Use one batched backward for K > 1 targets; falls back to K backward passes if an op
    #: has no batching rule.
    batched_backward = True

    def __init__(
        self,
        model: nn.Module,
        layer: nn.Module | None = None,
        layer_name: str | None = None,
        amp: torch.dtype | None = None,
    ) -> None:
        super().__init__(model, layer, layer_name)
        self.amp = amp

    def activations_and_grads(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """One forward and one partial backward: A ``[N, C, h, w]`` and dS_k/dA ``[N, K, C, h, w]``."""
        assert self.layer is not None
        capture = _Capture(self.layer_name)
        handle = self.layer.register_forward_hook(capture)
        try:
            with (
                frozen_parameters(self.model),
                torch.enable_grad(),
                torch.autocast(
                    inputs.device.type,
                    dtype=self.amp or torch.bfloat16,
                    enabled=self.amp is not None,
                ),
            ):
                logits = self.model(inputs)
        finally:
            handle.remove()
        act = capture.activation
        capture.activation = None
        if act is None:
            raise AuditError(f"target layer '{self.layer_name}' did not run in the forward pass")
        if act.ndim != 4:
            raise AuditError(
                f"target layer '{self.layer_name}' outputs shape {tuple(act.shape)}; a CAM needs a "
                "[N, C, H, W] feature map (a 2-D convolution)"
            )
        if not isinstance(logits, Tensor) or logits.ndim != 2:
            raise AuditError("the model must return class scores [N, n_classes] for attribution")
        scores = logits.gather(1, targets)
        if not scores.requires_grad:
            raise AuditError(f"the class scores do not depend on target layer '{self.layer_name}'")
        return act.detach(), self._grads(scores, act)

    def _grads(self, scores: Tensor, act: Tensor) -> Tensor:
        k = scores.shape[1]
        if k == 1:
            (grad,) = torch.autograd.grad(scores.sum(), act)
            return grad.unsqueeze(1)
        if self.batched_backward:
            # grad_outputs[k] selects target k of every image: K VJPs in one vmapped backward.
            eye = torch.eye(k, device=scores.device, dtype=scores.dtype)
            grad_outputs = eye[:, None, :].expand(k, scores.shape[0], k)
            try:
                with warnings.catch_warnings():
                    # Silence "performance drop" notes for ops without a batching rule.
                    warnings.simplefilter("ignore")
                    (grad,) = torch.autograd.grad(
                        scores, act, grad_outputs, retain_graph=True, is_grads_batched=True
                    )
                return grad.transpose(0, 1)
            except torch.OutOfMemoryError:
                raise
            except RuntimeError:
                self.batched_backward = False
        grads = [
            torch.autograd.grad(scores[:, j].sum(), act, retain_graph=j < k - 1)[0]
            for j in range(k)
        ]
        return torch.stack(grads, dim=1)

    def _attribute(self, inputs: Tensor, targets: Tensor) -> Tensor:
        act, grads = self.activations_and_grads(inputs, targets)
        return self.cam(act.float(), grads.float())

    def cam(self, act: Tensor, grads: Tensor) -> Tensor:
        """Raw maps ``[N, K, h, w]`` from A ``[N, C, h, w]`` and gradients ``[N, K, C, h, w]``."""
        raise NotImplementedError


class GradCAM(LayerGradientCAM):
    """Grad-CAM (Selvaraju et al. 2017): channel weights are the spatial mean of the gradients."""

    name = "gradcam"

    def cam(self, act: Tensor, grads: Tensor) -> Tensor:
        weights = grads.mean(dim=(-2, -1))  # [N, K, C]
        # One batched matmul: [N, K, C] @ [N, C, h*w].
        return torch.bmm(weights, act.flatten(2)).view(*weights.shape[:2], *act.shape[-2:])
