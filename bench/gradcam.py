"""Grad-CAM throughput: our batched torch path against pytorch-grad-cam and the bare passes.

    python bench/gradcam.py [--device auto] [--repeats 3] [--results bench/RESULTS.md]

For a small CNN (28 px) and torchvision's resnet18 (random init, 224 px), on the same images,
model and target layer, in one process, it times (heatmaps per second, one class per image):

- ours: ``explain.gradcam.GradCAM`` (forward + backward to the layer, CAM maths on the device)
- ours, 2 classes: predicted and true class per image from one forward (what the stage runs)
- pytorch-grad-cam batched: ``GradCAM(model, [layer])(batch, targets)``
- pytorch-grad-cam per image: the same, one image at a time
- captum LayerGradCam: for reference
- floor: forward + backward to the target layer and nothing else (no CAM maths, no
  upsampling): the minimum any gradient CAM on that layer must do
- forward + full backward: a plain training-style pass (to the input and every weight)
- forward only: inference, for reference

Methods are timed round-robin and the best of ``--repeats`` rounds is kept, so a noisy shared
machine penalises them alike. With ``--results`` the "## Grad-CAM (issue 4)" section of that
file is written (replaced if present; the rest of the file is left alone).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from audits.tv import torchvision  # noqa: E402 - the CPU-torch workaround, before captum and grad-cam
from explain.base import frozen_parameters  # noqa: E402
from explain.gradcam import GradCAM  # noqa: E402
from explain.layers import find_target_layer  # noqa: E402

SECTION = "## Grad-CAM (issue 4)"


class SmallCNN(nn.Module):
    """A small 28 px classifier: three convolutions, global pooling, a linear head."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def batches(x: torch.Tensor, t: torch.Tensor, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i : i + size], t[i : i + size]) for i in range(0, len(x), size)]


def runners(
    model: nn.Module,
    layer: nn.Module,
    layer_name: str,
    x: torch.Tensor,
    t: torch.Tensor,
    batch: int,
) -> dict[str, tuple[Callable[[], None], int]]:
    """name -> (function that makes every heatmap once, number of heatmaps it makes)."""
    from captum.attr import LayerGradCam
    from pytorch_grad_cam import GradCAM as LibGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    device = x.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    chunks = batches(x, t, batch)
    n = len(x)
    ours = GradCAM(model, layer, layer_name)
    t2 = torch.stack([t, (t + 1) % 10], dim=1)
    chunks2 = batches(x, t2, batch)
    lib = LibGradCAM(model=model, target_layers=[layer])
    captum = LayerGradCam(model, layer)

    def run_ours() -> None:
        for xb, tb in chunks:
            ours.attribute(xb, tb)
        sync()

    def run_ours2() -> None:
        for xb, tb in chunks2:
            ours.attribute(xb, tb)
        sync()

    def run_lib() -> None:
        for xb, tb in chunks:
            lib(input_tensor=xb, targets=[ClassifierOutputTarget(int(c)) for c in tb])
        model.zero_grad(set_to_none=True)

    def run_lib_loop() -> None:
        for i in range(n):
            lib(input_tensor=x[i : i + 1], targets=[ClassifierOutputTarget(int(t[i]))])
        model.zero_grad(set_to_none=True)

    def run_captum() -> None:
        for xb, tb in chunks:
            captum.attribute(xb, target=tb)
        sync()

    def run_floor() -> None:
        store: dict[str, torch.Tensor] = {}

        def hook(_m: nn.Module, _a: tuple, out: torch.Tensor) -> torch.Tensor:
            store["a"] = out.detach().requires_grad_(True)
            return store["a"]

        for xb, tb in chunks:
            handle = layer.register_forward_hook(hook)
            try:
                with frozen_parameters(model), torch.enable_grad():
                    out = model(xb)
            finally:
                handle.remove()
            torch.autograd.grad(out.gather(1, tb[:, None]).sum(), store.pop("a"))
        sync()

    def run_full() -> None:
        for xb, tb in chunks:
            xg = xb.clone().requires_grad_(True)
            model(xg).gather(1, tb[:, None]).sum().backward()
        model.zero_grad(set_to_none=True)
        sync()

    def run_forward() -> None:
        with torch.inference_mode():
            for xb, _ in chunks:
                model(xb)
        sync()

    return {
        "ours (batched torch Grad-CAM)": (run_ours, n),
        "ours, 2 classes per image": (run_ours2, 2 * n),
        "pytorch-grad-cam batched": (run_lib, n),
        "pytorch-grad-cam per image": (run_lib_loop, n),
        "captum LayerGradCam": (run_captum, n),
        "floor: forward + backward to layer": (run_floor, n),
        "forward + full backward": (run_full, n),
        "forward only (inference)": (run_forward, n),
    }


def agreement(model: nn.Module, layer: nn.Module, x: torch.Tensor, t: torch.Tensor) -> float:
    """Max |ours - pytorch-grad-cam| over a batch (both scaled to [0, 1])."""
    from pytorch_grad_cam import GradCAM as LibGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ours = GradCAM(model, layer).attribute(x, t).cpu().numpy()
    cam = LibGradCAM(model=model, target_layers=[layer])
    ref = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in t])
    cam.activations_and_grads.release()
    model.zero_grad(set_to_none=True)
    return float(abs(ours - ref).max())


def bench_model(
    label: str,
    model: nn.Module,
    shape: tuple[int, int, int],
    n: int,
    batch: int,
    repeats: int,
    device: torch.device,
) -> dict:
    model = model.to(device).eval()
    name, layer = find_target_layer(model, shape)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=gen).to(device)
    t = torch.randint(0, 10, (n,), generator=gen).to(device)
    diff = agreement(model, layer, x[:batch], t[:batch])
    todo = runners(model, layer, name, x, t, batch)
    for fn, _ in todo.values():  # warm-up: allocator, oneDNN primitives, cudnn plans
        fn()
    best = dict.fromkeys(todo, float("inf"))
    for _ in range(repeats):
        for key, (fn, _) in todo.items():
            start = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - start)
    rates = {key: todo[key][1] / best[key] for key in todo}
    return {"label": label, "layer": name, "n": n, "batch": batch, "diff": diff, "rates": rates}


def table(result: dict) -> list[str]:
    rates = result["rates"]
    lib = rates["pytorch-grad-cam batched"]
    floor = rates["floor: forward + backward to layer"]
    lines = [
        f"**{result['label']}**: {result['n']} images, batch {result['batch']}, target layer "
        f"`{result['layer']}`; max |ours - pytorch-grad-cam| = {result['diff']:.1e}",
        "",
        "| path | heatmaps/s | × pytorch-grad-cam batched | × floor |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, rate in rates.items():
        lines.append(f"| {key} | {rate:,.1f} | {rate / lib:.2f} | {rate / floor:.2f} |")
    return lines


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core CPU ({cpu}), {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def write_section(path: Path, text: str) -> None:
    """Replace (or append) this benchmark's section; other sections stay as they are."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _m: text.rstrip() + "\n\n", old, count=1).rstrip() + "\n"
    else:
        new = old.rstrip() + "\n\n" + text.rstrip() + "\n"
    path.write_text(new, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--results", type=Path, default=None, help="write the section into this markdown file"
    )
    args = parser.parse_args()
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    gpu = device.type == "cuda"
    results = [
        bench_model("small CNN, 3x28x28", SmallCNN(), (3, 28, 28), 2048 if gpu else 512, 256 if gpu else 128,
                    args.repeats, device),
        bench_model("resnet18, 3x224x224", torchvision.models.resnet18(weights=None, num_classes=10), (3, 224, 224),
                    512 if gpu else 64, 64 if gpu else 32, args.repeats, device),
    ]  # fmt: skip
    lines = [SECTION, "", f"Machine: {machine(device)}. Command: `python bench/gradcam.py`.", ""]
    for result in results:
        lines += table(result) + [""]
    text = "\n".join(lines)
    print(text)
    if args.results:
        write_section(args.results, text)
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
