"""Hooks are always released and memory stays flat over 10,000 images."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import torch
from scipy.stats import theilslopes

from audits.model_card import load_card, load_model
from explain.registry import get_method
from tests.builders import make_model_dir

MIB = 2**20


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def live_tensors() -> int:
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def memory_trend(batch: Callable[[], None], batches: int = 24) -> tuple[float, float, list[int]]:
    """RSS slope per batch (Theil-Sen, MiB), live tensors gained, and the RSS series (MiB)."""
    for _ in range(2):  # warm-up: allocator pools and one-off caches
        batch()
    gc.collect()
    tensors = live_tensors()
    rss = []
    for _ in range(batches):
        batch()
        gc.collect()
        rss.append(rss_bytes() / MIB)
    # The C allocator makes RSS jump between a few levels (tens of MB) as it keeps or returns
    # pages, in either direction; a robust slope ignores those jumps, a leak moves it.
    slope = theilslopes(rss).slope
    return slope, live_tensors() - tensors, [round(r) for r in rss]


def gradcam_batch(tmp_path: Path, keep: list | None = None) -> tuple[Callable[[], None], object]:
    model = load_model(load_card(make_model_dir(tmp_path / "m", size=(16, 16))))
    method = get_method("gradcam", model, input_shape=(3, 16, 16))
    x = torch.randn(500, 3, 16, 16)
    targets = torch.randint(0, 3, (500, 2))
    if keep is not None:  # a deliberate leak: every batch's activations stay referenced
        inner = method._attribute

        def leaky(inputs, t):
            keep.append(model(inputs).detach().clone().repeat(1, 2000))
            return inner(inputs, t)

        method._attribute = leaky

    def batch() -> None:
        maps = method.attribute(x, targets)
        assert maps.shape == (500, 2, 16, 16)
        assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())

    return batch, model


def test_ten_thousand_images_leave_no_hooks_and_flat_memory(tmp_path):
    batch, model = gradcam_batch(tmp_path)
    slope, tensors, rss = memory_trend(batch)  # 2 + 24 batches of 500 = 13,000 images
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(6):
        batch()
    gc.collect()
    grown_py = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert grown_py < 256 * 1024, f"Python heap grew by {grown_py} bytes"
    assert tensors <= 0, f"{tensors} more live tensors after 24 batches"
    # One batch's activations are about 8 MB; a leak of them climbs 8 MiB per batch.
    assert slope < 2, f"RSS climbs {slope:.1f} MiB per batch: {rss}"
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_the_memory_check_sees_a_leak(tmp_path):
    """The trend check above fails for a leak of one batch's activations (~8 MB) per batch."""
    kept: list = []
    batch, _ = gradcam_batch(tmp_path, keep=kept)
    slope, tensors, rss = memory_trend(batch, batches=12)
    assert tensors >= 12
    assert slope > 4, f"a leak of 8 MB per batch went unseen: {slope:.1f} MiB/batch, {rss}"
