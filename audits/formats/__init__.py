"""Models that carry their own graph: TorchScript, ``torch.export`` archives (.pt2) and ONNX.

A card whose ``weights`` is one of these has no ``architecture``: no Python of the model's
author is imported or run to build it. ``detect_format`` tells the formats apart by content
(``detect``); ``load_format_model`` loads one as a ``FormatModule`` (``base``), an
``nn.Module`` the batching path, drift and compare use unchanged; ``unsupported_reason`` says
which analyses a format cannot do (Grad-CAM needs hooks and gradients).
"""

from audits.formats.base import (
    ANALYSES,
    FORMAT_NAMES,
    FormatModule,
    StageUnsupported,
    format_identity,
    supported_analyses,
    unsupported_reason,
)
from audits.formats.detect import STATE_DICT, detect_format
from audits.formats.loader import load_format_model

__all__ = [
    "ANALYSES",
    "FORMAT_NAMES",
    "STATE_DICT",
    "FormatModule",
    "StageUnsupported",
    "detect_format",
    "format_identity",
    "load_format_model",
    "supported_analyses",
    "unsupported_reason",
]
