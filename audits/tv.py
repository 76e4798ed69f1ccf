"""The single place torchvision is first imported.

torchvision 0.28.0's Linux wheel is a CUDA build. Under the CPU build of torch,
``import torchvision`` fails with ``operator torchvision::nms does not exist``
(pytorch/vision#9085) because the CUDA extension that registers the operator schemas
cannot load. Registering the two schemas first makes models, transforms, pytorch-grad-cam
and captum importable; ``torchvision.ops.nms`` and ``torchvision.io`` decoding stay broken
on such a machine, so images are decoded with Pillow everywhere.
"""

import contextlib

import torch

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor qdets, Tensor qscores, float dets_scale, int dets_zero_point, "
    "float scores_scale, int scores_zero_point, float iou_threshold) -> Tensor",
)


def _register_missing_schemas() -> None:
    if torch.cuda.is_available():
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018 - probe: present when the extension loaded
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS:
        with contextlib.suppress(RuntimeError):  # already defined by another importer
            lib.define(schema)
    # Keep the library object alive for the life of the process.
    _register_missing_schemas.lib = lib  # type: ignore[attr-defined]


_register_missing_schemas()

import torchvision  # noqa: E402

__all__ = ["torchvision"]
