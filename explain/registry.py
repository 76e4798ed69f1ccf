"""Method names to ``Attributor`` classes: ``get_method(name, model, layer)``.

Names are matched case-insensitively, ignoring ``-``, ``_`` and spaces ("Grad-CAM++" is
``gradcam++``). The gradient CAMs run on the fast torch path; the rest of pytorch-grad-cam's
methods are wrapped from the library; ``pgc-<name>`` forces the library's own implementation.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from audits.errors import AuditError
from explain.base import Attributor
from explain.cam_methods import LIBRARY_CLASSES, LibraryCAM
from explain.captum_methods import CaptumIntegratedGradients, CaptumLayerGradCam
from explain.gradcam import GradCAM
from explain.gradcam_plusplus import GradCAMPlusPlus
from explain.hirescam import HiResCAM
from explain.layercam import LayerCAM
from explain.layers import find_target_layer
from explain.xgradcam import XGradCAM

DEFAULT_METHOD = "gradcam"

#: Methods with their own class here (torch fast path or captum).
NATIVE: dict[str, type[Attributor]] = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "xgradcam": XGradCAM,
    "layercam": LayerCAM,
    "hirescam": HiResCAM,
    "layergradcam": CaptumLayerGradCam,
    "integratedgradients": CaptumIntegratedGradients,
}

ALIASES = {
    "gradcampp": "gradcam++",
    "gradcamplusplus": "gradcam++",
    "captumlayergradcam": "layergradcam",
    "captumgradcam": "layergradcam",
    "ig": "integratedgradients",
    "captumig": "integratedgradients",
    "captumintegratedgradients": "integratedgradients",
}


def canonical(name: str) -> str:
    """The registry key for a user-typed method name (``pgc-`` prefix kept)."""
    key = name.strip().lower()
    prefix = ""
    if key.startswith(("pgc-", "pgc_", "pgc ")):
        prefix, key = "pgc-", key[4:]
    key = "".join(ch for ch in key if ch not in "-_ ")
    return prefix + ALIASES.get(key, key)


def available_methods() -> list[str]:
    """Every name ``get_method`` accepts (canonical forms)."""
    library_only = [m for m in LIBRARY_CLASSES if m not in NATIVE]
    return [*NATIVE, *library_only, *(f"pgc-{m}" for m in LIBRARY_CLASSES)]


def method_class(name: str) -> Callable[..., Attributor]:
    """The class (or factory) for a method name; an unknown name lists the known ones."""
    key = canonical(name)
    if key in NATIVE:
        return NATIVE[key]
    if key.removeprefix("pgc-") in LIBRARY_CLASSES:
        return lambda model, layer=None, layer_name=None, **kw: LibraryCAM(
            model, layer, layer_name, method=key, **kw
        )
    raise AuditError(
        f"unknown explanation method '{name}'; choose one of: {', '.join(available_methods())}"
    )


def needs_layer(name: str) -> bool:
    """Whether the method explains a layer (everything but Integrated Gradients)."""
    return canonical(name) != "integratedgradients"


def get_method(
    name: str,
    model: nn.Module,
    layer: str | nn.Module | None = None,
    input_shape: tuple[int, int, int] | None = None,
    **kwargs: object,
) -> Attributor:
    """Build method ``name`` on ``model``.

    ``layer`` is a dotted module name (checked), a module, or None to find the last
    convolution with spatial output (which needs ``input_shape`` = (C, H, W) for a dummy forward).
    """
    factory = method_class(name)
    if not needs_layer(name):
        return factory(model, None, None, **kwargs)
    if isinstance(layer, nn.Module):
        names = {id(m): n for n, m in model.named_modules()}
        return factory(model, layer, names.get(id(layer)), **kwargs)
    if input_shape is None:
        modules = dict(model.named_modules())
        if layer is None or layer not in modules:
            raise ValueError("input_shape (C, H, W) is needed to find or check the target layer")
        return factory(model, modules[layer], layer, **kwargs)
    layer_name, module = find_target_layer(model, input_shape, layer)
    return factory(model, module, layer_name, **kwargs)
