"""Heatmaps against a region box: energy share inside it and the pointing game. Pure functions.

Boxes come in pixels of the *original* image (``roi_x0, roi_y0, roi_x1, roi_y1``, continuous
coordinates, x1/y1 the far edges). Images are resized straight to the model's input size
without cropping, so a box maps to a heatmap of size (H, W) by ``x * W / width`` and
``y * H / height``. A heatmap pixel (i, j) is inside when its centre (j + 0.5, i + 0.5) is; a
box smaller than one pixel keeps the pixel holding its centre.

- energy share (energy-based pointing game, Wang et al. 2020, Score-CAM): sum of the heatmap
  inside the box / sum over the whole map, on the [0, 1]-scaled map at input resolution.
- pointing game (Zhang et al. 2016, without tolerance): whether the map's maximum (first
  arg-max) lies inside the box.
- box share: the fraction of the image the box covers, the energy share of a flat map.

Values are NaN where a row has no usable box (missing, empty, outside the image) or the map
is zero everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor


def scale_boxes(boxes: Tensor, orig_wh: Tensor, size: tuple[int, int]) -> Tensor:
    """Boxes ``[N, 4]`` in original pixels -> heatmap pixels, for originals ``[N, 2]`` (width, height)."""
    boxes = boxes.double()
    orig_wh = orig_wh.double()
    sx = size[1] / orig_wh[:, 0]
    sy = size[0] / orig_wh[:, 1]
    return torch.stack(
        [boxes[:, 0] * sx, boxes[:, 1] * sy, boxes[:, 2] * sx, boxes[:, 3] * sy], dim=1
    )


def _axis_mask(lo: Tensor, hi: Tensor, n: int) -> Tensor:
    centres = torch.arange(n, device=lo.device, dtype=lo.dtype) + 0.5
    inside = (centres >= lo[:, None]) & (centres < hi[:, None])
    # A box thinner than a pixel still owns the pixel that holds its centre.
    mid = ((lo + hi) / 2).clamp(0, n - 1e-6).floor().long()
    thin = ~inside.any(dim=1) & (hi > 0) & (lo < n)
    inside[thin, mid[thin].clamp(0, n - 1)] = True
    return inside


def box_masks(boxes: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Boolean masks ``[N, H, W]`` for boxes ``[N, 4]`` in heatmap pixels, and which boxes are usable."""
    h, w = size
    boxes = boxes.double()
    finite = torch.isfinite(boxes).all(dim=1)
    safe = torch.where(finite[:, None], boxes, torch.zeros_like(boxes))
    ordered = (safe[:, 2] > safe[:, 0]) & (safe[:, 3] > safe[:, 1])
    cols = _axis_mask(safe[:, 0], safe[:, 2], w)
    rows = _axis_mask(safe[:, 1], safe[:, 3], h)
    masks = rows[:, :, None] & cols[:, None, :]
    valid = finite & ordered & masks.flatten(1).any(dim=1)
    masks &= valid[:, None, None]
    return masks, valid


def energy_in_box(maps: Tensor, masks: Tensor, valid: Tensor) -> Tensor:
    """Share of each map's sum inside its box: ``maps`` ``[N, H, W]`` or ``[N, K, H, W]``."""
    m = masks if maps.ndim == 3 else masks[:, None]
    total = maps.sum(dim=(-2, -1), dtype=torch.float64)
    inside = (maps * m).sum(dim=(-2, -1), dtype=torch.float64)
    share = inside / total
    ok = (total > 0) & (valid if maps.ndim == 3 else valid[:, None])
    return torch.where(ok, share, torch.full_like(share, float("nan")))


def peak_in_box(maps: Tensor, masks: Tensor, valid: Tensor) -> Tensor:
    """1.0 where the map's maximum lies inside the box, 0.0 where not, NaN where undefined."""
    m = masks if maps.ndim == 3 else masks[:, None].expand_as(maps)
    flat = maps.flatten(-2)
    peak = flat.argmax(dim=-1, keepdim=True)
    hit = m.flatten(-2).gather(-1, peak).squeeze(-1).double()
    ok = (flat.amax(dim=-1) > 0) & (valid if maps.ndim == 3 else valid[:, None])
    return torch.where(ok, hit, torch.full_like(hit, float("nan")))


def box_share(masks: Tensor, valid: Tensor) -> Tensor:
    """Fraction of the heatmap's pixels inside each box (NaN for unusable boxes)."""
    share = masks.flatten(1).double().mean(dim=1)
    return torch.where(valid, share, torch.full_like(share, float("nan")))


def region_scores(maps: Tensor, boxes: Tensor, orig_wh: Tensor) -> dict[str, Tensor]:
    """Energy share, pointing game and box share for maps ``[N, (K,) H, W]`` and original-pixel boxes."""
    size = (maps.shape[-2], maps.shape[-1])
    scaled = scale_boxes(boxes.to(maps.device), orig_wh.to(maps.device), size)
    masks, valid = box_masks(scaled, size)
    return {
        "energy": energy_in_box(maps, masks, valid),
        "peak": peak_in_box(maps, masks, valid),
        "box_share": box_share(masks, valid),
    }
