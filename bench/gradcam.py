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

Each unit of work (one batch; 8 images for the per-image loop) is timed on its own, round-robin
over the paths (order rotated each round, one untimed unit after each switch) for ``--repeats``
rounds. On the CPU the clock is the process's CPU time with one torch thread: time spent
waiting for a core on a shared machine is not counted, and a path's rate is its heatmaps per
unit over its cheapest unit (cache and memory-bandwidth contention from other processes only
ever add CPU time, so the minimum is the undisturbed cost, as ``timeit`` advises). The median
wall-clock rate is listed too. On CUDA the clock is wall time (synchronised).
With ``--results`` the "## Grad-CAM (issue 4)" section of that file is written (replaced if
present; the rest of the file is left alone).
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from audits.tv import torchvision  # noqa: E402 - the CPU-torch workaround, before captum and grad-cam
from bench.common import (  # noqa: E402
    Stopwatch,
    add_device,
    add_repeats,
    cpu_name,
    load_average,
    make_parser,
    torch_device,
    write_section,
)
from explain.base import frozen_parameters  # noqa: E402
from explain.gradcam import GradCAM  # noqa: E402
from explain.layers import find_target_layer  # noqa: E402

SECTION = "## Grad-CAM (issue 4)"
#: Images per timed unit of the per-image loop (one pytorch-grad-cam object per unit).
PER_IMAGE_UNIT = 8


class SmallCNN(nn.Module):
    """A small 28 px classifier: three convolutions, global pooling, a linear head."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def batches(x: torch.Tensor, t: torch.Tensor, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(images, targets) in consecutive batches of ``size``."""
    return [(x[i : i + size], t[i : i + size]) for i in range(0, len(x), size)]


#: name -> (function of one unit of work, unit index), heatmaps per unit, number of units
Steps = dict[str, tuple[Callable[[int], None], int, int]]


@dataclass
class _Work:
    """The images, targets and model every path of one case works on."""

    model: nn.Module
    layer: nn.Module
    x: torch.Tensor
    t: torch.Tensor
    batch: int

    def __post_init__(self) -> None:
        self.chunks = batches(self.x, self.t, self.batch)
        self.chunks2 = batches(self.x, torch.stack([self.t, (self.t + 1) % 10], dim=1), self.batch)

    def sync(self) -> None:
        if self.x.device.type == "cuda":
            torch.cuda.synchronize()


def steps(
    model: nn.Module,
    layer: nn.Module,
    layer_name: str,
    x: torch.Tensor,
    t: torch.Tensor,
    batch: int,
) -> Steps:
    """Each path as one unit of work: a batch (batched paths) or one image (the per-image loop)."""
    work = _Work(model, layer, x, t, batch)
    return {**_our_steps(work, layer_name), **_library_steps(work), **_bare_steps(work)}


def _our_steps(work: _Work, layer_name: str) -> Steps:
    """Our batched torch Grad-CAM, one and two classes per image."""
    ours = GradCAM(work.model, work.layer, layer_name)

    def run_ours(i: int) -> None:
        ours.attribute(*work.chunks[i])
        work.sync()

    def run_ours2(i: int) -> None:
        ours.attribute(*work.chunks2[i])
        work.sync()

    n_chunks = len(work.chunks)
    return {
        "ours (batched torch Grad-CAM)": (run_ours, work.batch, n_chunks),
        "ours, 2 classes per image": (run_ours2, 2 * work.batch, n_chunks),
    }


def _library_steps(work: _Work) -> Steps:
    """pytorch-grad-cam batched and per image, and captum's LayerGradCam."""
    from captum.attr import LayerGradCam
    from pytorch_grad_cam import GradCAM as LibGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, layer, x, t = work.model, work.layer, work.x, work.t
    captum = LayerGradCam(model, layer)

    # pytorch-grad-cam's hooks stay on the layer for the life of its object and keep every
    # activation they see, so an object lives for one unit only: left attached, it would also
    # slow down (and grow memory under) the other paths.
    def run_lib(i: int) -> None:
        xb, tb = work.chunks[i]
        with LibGradCAM(model=model, target_layers=[layer]) as lib:
            lib(input_tensor=xb, targets=[ClassifierOutputTarget(int(c)) for c in tb])
        model.zero_grad(set_to_none=True)

    def run_lib_loop(i: int) -> None:
        with LibGradCAM(model=model, target_layers=[layer]) as lib:
            for j in range(i * PER_IMAGE_UNIT, (i + 1) * PER_IMAGE_UNIT):
                lib(input_tensor=x[j : j + 1], targets=[ClassifierOutputTarget(int(t[j]))])
        model.zero_grad(set_to_none=True)

    def run_captum(i: int) -> None:
        xb, tb = work.chunks[i]
        captum.attribute(xb, target=tb)
        work.sync()

    n_chunks, batch = len(work.chunks), work.batch
    return {
        "pytorch-grad-cam batched": (run_lib, batch, n_chunks),
        "pytorch-grad-cam per image": (
            run_lib_loop,
            PER_IMAGE_UNIT,
            max(1, batch // 2 // PER_IMAGE_UNIT),
        ),
        "captum LayerGradCam": (run_captum, batch, n_chunks),
    }


def _bare_steps(work: _Work) -> Steps:
    """The bare passes: the floor (forward + backward to the layer), full backward, forward."""
    model, layer = work.model, work.layer
    store: dict[str, torch.Tensor] = {}

    def keep(_m: nn.Module, _a: tuple, out: torch.Tensor) -> torch.Tensor:
        store["a"] = out.detach().requires_grad_(True)
        return store["a"]

    def run_floor(i: int) -> None:
        xb, tb = work.chunks[i]
        handle = layer.register_forward_hook(keep)
        try:
            with frozen_parameters(model), torch.enable_grad():
                out = model(xb)
        finally:
            handle.remove()
        torch.autograd.grad(out.gather(1, tb[:, None]).sum(), store.pop("a"))
        work.sync()

    def run_full(i: int) -> None:
        xb, tb = work.chunks[i]
        model(xb.clone().requires_grad_(True)).gather(1, tb[:, None]).sum().backward()
        model.zero_grad(set_to_none=True)
        work.sync()

    def run_forward(i: int) -> None:
        with torch.inference_mode():
            model(work.chunks[i][0])
        work.sync()

    n_chunks, batch = len(work.chunks), work.batch
    return {
        "floor: forward + backward to layer": (run_floor, batch, n_chunks),
        "forward + full backward": (run_full, batch, n_chunks),
        "forward only (inference)": (run_forward, batch, n_chunks),
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
    """Every path on one model: best-unit rates, median wall rates and the agreement check."""
    model = model.to(device).eval()
    name, layer = find_target_layer(model, shape)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=gen).to(device)
    t = torch.randint(0, 10, (n,), generator=gen).to(device)
    diff = agreement(model, layer, x[:batch], t[:batch])
    # The per-image loop is slow: it runs on the first batch/2 images (a rate is a rate).
    todo = steps(model, layer, name, x, t, batch)
    _warm_up(todo, label)
    cpu = device.type == "cpu"
    cost, wall = _round_robin(todo, repeats, label, cpu)
    rates = {key: todo[key][1] / min(cost[key]) for key in todo}
    typical = {key: todo[key][1] / statistics.median(wall[key]) for key in todo}
    return {
        "label": label,
        "layer": name,
        "n": n,
        "batch": batch,
        "diff": diff,
        "rates": rates,
        "typical": typical,
        "unit": "CPU-second" if cpu else "second",
    }


def _warm_up(todo: Steps, label: str) -> None:
    """One pass over every path: the allocator, oneDNN primitives, cudnn plans."""
    for key, (fn, _, units) in todo.items():
        with Stopwatch() as clock:
            for i in range(units):
                fn(i)
        print(f"  warm-up {label}: {key} {clock.wall:.2f}s", file=sys.stderr, flush=True)


def _round_robin(
    todo: Steps, repeats: int, label: str, cpu: bool
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(cost, wall) seconds of every unit of every path, timed one unit at a time.

    Round-robin over the paths. On the CPU the cost is the process's CPU time (all threads):
    time spent waiting for a core on a shared machine is not counted. On CUDA it is wall time.
    """
    cost: dict[str, list[float]] = {key: [] for key in todo}
    wall: dict[str, list[float]] = {key: [] for key in todo}
    keys = list(todo)
    for round_ in range(repeats):
        # Rotate the order each round, and run one untimed unit before a path's timed ones: the
        # first unit after switching paths pays for the switch (fresh pages for new buffer
        # sizes), which a real run over many batches of one path never does.
        for key in keys[round_ % len(keys) :] + keys[: round_ % len(keys)]:
            fn, _, units = todo[key]
            fn(0)
            for i in range(units):
                with Stopwatch() as clock:
                    fn(i)
                cost[key].append(clock.cpu if cpu else clock.wall)
                wall[key].append(clock.wall)
        print(f"  round {round_ + 1}/{repeats} of {label} done", file=sys.stderr, flush=True)
    return cost, wall


def table(result: dict) -> list[str]:
    """One case's markdown table and its targets line."""
    rates, typical = result["rates"], result["typical"]
    lib = rates["pytorch-grad-cam batched"]
    floor = rates["floor: forward + backward to layer"]
    lines = [
        f"**{result['label']}**: {result['n']} images, batch {result['batch']}, target layer "
        f"`{result['layer']}`; max |ours - pytorch-grad-cam| = {result['diff']:.1e}",
        "",
        f"| path | heatmaps per {result['unit']} (best unit) | × pytorch-grad-cam batched "
        "| × floor | heatmaps/s wall (median) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, rate in rates.items():
        lines.append(
            f"| {key} | {rate:,.1f} | {rate / lib:.2f} | {rate / floor:.2f} | {typical[key]:,.1f} |"
        )
    ours = rates["ours (batched torch Grad-CAM)"]
    met = ours >= 2 * lib and ours >= 0.9 * floor
    lines += [
        "",
        f"Targets (at least 2× pytorch-grad-cam batched, at least 0.9× the floor): "
        f"{ours / lib:.2f}× and {ours / floor:.2f}×, {'met' if met else 'NOT met'}.",
    ]
    return lines


def machine(device: torch.device) -> str:
    """The GPU, or the CPU with its torch threads and load, for the section's heading."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return (
        f"{os.cpu_count()}-core CPU ({cpu_name()}), torch threads: {torch.get_num_threads()}, "
        f"torch {torch.__version__}, load average {load_average():.1f} at the start "
        "(shared machine)"
    )


def main() -> int:
    parser = make_parser(__doc__)
    add_device(parser)
    add_repeats(parser, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads on the CPU (default 1: clean CPU times)",
    )
    parser.add_argument(
        "--results", type=Path, default=None, help="write the section into this markdown file"
    )
    args = parser.parse_args()
    device = torch_device(args.device, args.threads)
    gpu = device.type == "cuda"
    torch.manual_seed(0)
    cases = [
        ("small CNN, 3x28x28", SmallCNN(), (3, 28, 28), 2048 if gpu else 512, 256 if gpu else 128),
        ("resnet18, 3x224x224", torchvision.models.resnet18(weights=None, num_classes=10), (3, 224, 224),
         512 if gpu else 64, 64 if gpu else 32),
    ]  # fmt: skip
    lines = [
        SECTION,
        "",
        f"Machine: {machine(device)}. "
        "Command: `python bench/gradcam.py --results bench/RESULTS.md`.",
        "",
        "Same random images, model, target layer and targets (one class per image) for every path. "
        "Rates are heatmaps per CPU-second of the cheapest timed unit (one batch), so the waiting "
        "for a core on this shared machine is not counted (see the script's docstring); the last "
        "column is the median wall-clock rate. *Floor* = forward + backward to the target layer "
        "with nothing else, the least any gradient CAM on that layer must do.",
        "",
    ]
    for label, model, shape, n, batch in cases:
        result = bench_model(label, model, shape, n, batch, args.repeats, device)
        print("\n".join(table(result)) + "\n", file=sys.stderr, flush=True)
        lines += table(result) + [""]
    lines += [
        "Memory: `tests/test_explain_memory.py` runs 10,000 images (20 batches of 500, two "
        "classes each) through the torch Grad-CAM and checks that no hook is left on any module, "
        "the Python heap does not grow and the RSS floor stays flat (a deliberate leak of one "
        "activation per batch fails it).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.results:
        write_section(SECTION, text, args.results)
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
