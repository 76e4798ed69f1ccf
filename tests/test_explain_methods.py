"""The attribution methods against pytorch-grad-cam's and captum's own implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM as LibGradCAM
from pytorch_grad_cam import GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from audits.errors import AuditError
from audits.model_card import load_card, load_model
from audits.tv import torchvision
from explain.base import minmax, scale_maps
from explain.registry import available_methods, canonical, get_method
from tests.builders import make_model_dir

TOL = 1e-4


def tiny(tmp_path, channels=3, size=(32, 32), seed=0):
    card = load_card(
        make_model_dir(tmp_path / f"m{channels}", channels=channels, size=size, seed=seed)
    )
    return load_model(card), card


def resnet(num_classes=5, seed=0):
    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None, num_classes=num_classes).eval()


def mini_resnet(num_classes=5, seed=0):
    """torchvision's residual blocks (BatchNorm, in-place ReLU, skip adds) at a cheap width."""
    from torchvision.models.resnet import BasicBlock

    torch.manual_seed(seed)
    down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        BasicBlock(8, 8), BasicBlock(8, 16, stride=2, downsample=down), BasicBlock(16, 16),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes),
    )  # fmt: skip
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def library_maps(cls, model, layer, x, targets):
    cam = cls(model=model, target_layers=[layer])
    try:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    finally:
        cam.activations_and_grads.release()
        model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("channels,size", [(3, (32, 32)), (1, (28, 36))])
def test_gradcam_matches_pytorch_grad_cam_on_tiny_net(tmp_path, channels, size):
    model, _ = tiny(tmp_path, channels, size)
    torch.manual_seed(1)
    x = torch.randn(6, channels, *size)
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    ours = get_method("gradcam", model, "features.2", input_shape=(channels, *size)).attribute(
        x, targets
    )
    ref = library_maps(LibGradCAM, model, model.features[2], x, targets)
    assert ours.shape == (6, *size)
    assert ref.max() > 0.99  # a real map, not an all-zero one
    np.testing.assert_allclose(ours.numpy(), ref, atol=TOL)


@pytest.mark.parametrize(
    "name,cls", [("gradcam", LibGradCAM), ("gradcam++", GradCAMPlusPlus), ("xgradcam", XGradCAM),
                 ("layercam", LayerCAM), ("hirescam", HiResCAM)],
)  # fmt: skip
def test_fast_cams_match_the_library_on_residual_blocks(name, cls):
    model = mini_resnet()
    torch.manual_seed(2)
    x = torch.randn(3, 3, 32, 24)  # non-square: the upsampling must keep (H, W) apart
    targets = torch.tensor([0, 3, 4])
    layer = model[5].conv2
    ours = get_method(name, model, layer).attribute(x, targets)
    ref = library_maps(cls, model, layer, x, targets)
    assert ours.shape == (3, 32, 24)
    np.testing.assert_allclose(ours.numpy(), ref, atol=TOL)


def test_gradcam_matches_the_library_on_resnet18():
    model = resnet()
    x = torch.randn(2, 3, 48, 40)
    targets = torch.tensor([1, 4])
    method = get_method("gradcam", model, "layer3.1.conv2", input_shape=(3, 48, 40))
    ref = library_maps(LibGradCAM, model, model.layer3[1].conv2, x, targets)
    np.testing.assert_allclose(method.attribute(x, targets).numpy(), ref, atol=TOL)


def test_two_targets_per_image_equal_two_single_calls(tmp_path):
    model = mini_resnet()
    x = torch.randn(4, 3, 20, 20)
    pred, true = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 4, 0, 1])
    method = get_method("gradcam", model, input_shape=(3, 20, 20))
    assert method.layer_name == "5.conv2"
    both = method.attribute(x, torch.stack([pred, true], dim=1))
    assert both.shape == (4, 2, 20, 20)
    np.testing.assert_allclose(both[:, 0].numpy(), method.attribute(x, pred).numpy(), atol=1e-6)
    np.testing.assert_allclose(both[:, 1].numpy(), method.attribute(x, true).numpy(), atol=1e-6)
    method.batched_backward = False  # the K-backward fallback gives the same maps
    np.testing.assert_allclose(
        method.attribute(x, torch.stack([pred, true], 1)).numpy(), both.numpy(), atol=1e-6
    )


def test_captum_layer_gradcam_agrees_with_ours(tmp_path):
    model, _ = tiny(tmp_path)
    x = torch.randn(5, 3, 32, 32)
    t = torch.tensor([2, 1, 0, 2, 1])
    ours = get_method("gradcam", model, "features.2", input_shape=(3, 32, 32)).attribute(x, t)
    theirs = get_method(
        "captum-layergradcam", model, "features.2", input_shape=(3, 32, 32)
    ).attribute(x, t)
    np.testing.assert_allclose(theirs.numpy(), ours.numpy(), atol=TOL)


def test_library_wrapper_returns_the_library_maps(tmp_path):
    model, _ = tiny(tmp_path)
    x = torch.randn(3, 3, 32, 32)
    t = torch.tensor([0, 1, 2])
    wrapped = get_method("pgc-gradcam", model, "features.2", input_shape=(3, 32, 32)).attribute(
        x, t
    )
    ref = library_maps(LibGradCAM, model, model.features[2], x, t)
    np.testing.assert_allclose(wrapped.numpy(), ref, atol=1e-6)
    eigen = get_method("Eigen-CAM", model, "features.2", input_shape=(3, 32, 32)).attribute(x, t)
    assert eigen.shape == (3, 32, 32) and float(eigen.max()) == pytest.approx(1.0, abs=1e-5)
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())


def test_integrated_gradients_matches_captum_and_needs_no_conv():
    from captum.attr import IntegratedGradients

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    x = torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 1, 2, 1])
    ours = get_method("integrated-gradients", mlp).attribute(x, t)
    attr = IntegratedGradients(mlp).attribute(x, baselines=0.0, target=t, n_steps=32)
    expected = minmax(minmax(attr.sum(1).clamp_min(0)))
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), atol=1e-5)
    assert all(p.requires_grad for p in mlp.parameters())


def test_inplace_relu_after_the_target_layer_is_safe():
    def net(inplace):
        torch.manual_seed(3)
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(4, 6, 3, padding=1),
            nn.ReLU(inplace=inplace), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
        ).eval()  # fmt: skip

    x = torch.randn(2, 3, 16, 16)
    a = get_method("gradcam", net(True), "2", input_shape=(3, 16, 16)).attribute(x, [0, 1])
    b = get_method("gradcam", net(False), "2", input_shape=(3, 16, 16)).attribute(x, [0, 1])
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_scale_maps_matches_scale_cam_image():
    from pytorch_grad_cam.utils.image import scale_cam_image

    raw = torch.randn(3, 5, 7)
    ours = scale_maps(raw, (20, 28)).numpy()
    ref = scale_cam_image(scale_cam_image(np.maximum(raw.numpy(), 0), (28, 20)))
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert scale_maps(torch.zeros(1, 4, 4), (8, 8)).abs().max() == 0  # a dead map stays zero


def test_layer_autodetect_and_errors(tmp_path):
    model, _ = tiny(tmp_path)
    assert get_method("gradcam", model, input_shape=(3, 32, 32)).layer_name == "features.2"
    assert get_method("gradcam", mini_resnet(), input_shape=(3, 16, 16)).layer_name == "5.conv2"

    class Backwards(nn.Module):  # defines the last-run convolution first
        def __init__(self):
            super().__init__()
            self.late = nn.Conv2d(4, 4, 3, padding=1)
            self.early = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.late(self.early(x)).mean(dim=(2, 3)))

    assert get_method("gradcam", Backwards(), input_shape=(3, 8, 8)).layer_name == "late"
    with pytest.raises(
        AuditError, match=r"'features\.9' is not a module.*features\.2 \(16x32x32\)"
    ):
        get_method("gradcam", model, "features.9", input_shape=(3, 32, 32))
    with pytest.raises(AuditError, match=r"'fc' outputs \(3\), not a spatial feature map"):
        get_method("gradcam", model, "fc", input_shape=(3, 32, 32))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    with pytest.raises(AuditError, match="no 2-D convolution.*integrated-gradients"):
        get_method("gradcam", mlp, input_shape=(3, 2, 2))
    with pytest.raises(AuditError, match="unknown explanation method 'gradkam'.*gradcam"):
        get_method("gradkam", model)


def test_method_names():
    assert canonical("Grad-CAM++") == "gradcam++"
    assert canonical("captum_LayerGradCam") == "layergradcam"
    assert canonical("IG") == "integratedgradients"
    assert canonical("PGC-Eigen-CAM") == "pgc-eigencam"
    names = available_methods()
    assert {
        "gradcam",
        "gradcam++",
        "xgradcam",
        "eigencam",
        "scorecam",
        "layergradcam",
        "integratedgradients",
    } <= set(names)


def test_hooks_and_parameter_flags_are_restored_after_an_error(tmp_path):
    model, _ = tiny(tmp_path)
    method = get_method("gradcam", model, "features.2", input_shape=(3, 32, 32))
    with pytest.raises(RuntimeError):
        # A wrong channel count fails inside the forward pass.
        method.attribute(torch.randn(2, 5, 32, 32), [0, 1])
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gradcam_on_cuda_matches_cpu():
    model = mini_resnet()
    x = torch.randn(4, 3, 64, 64)
    t = torch.tensor([0, 1, 2, 3])
    cpu = get_method("gradcam", model, input_shape=(3, 64, 64)).attribute(x, t)
    gpu_model = mini_resnet().cuda()
    gpu = get_method("gradcam", gpu_model, input_shape=(3, 64, 64)).attribute(x.cuda(), t.cuda())
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), atol=1e-2)  # TF32 convolutions
