"""ONNX models through onnxruntime (CPUExecutionProvider; CUDAExecutionProvider when present).

onnxruntime parses the protobuf graph and runs it with its own kernels: no Python runs at
load time. Tensors stored as external data must lie inside the model folder (checked with
``onnx`` before the session opens). The adapter is numpy in, numpy out: ``forward`` hands the
normalised batch to the session and returns its first output (or the one that is not
``embedding_output``) as a tensor. ONNX has no gradients here, so Grad-CAM is unsupported.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from audits.errors import AuditError
from audits.formats.base import CardLike, FormatModule
from audits.formats.detect import ONNX

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def providers(device: torch.device) -> list[str]:
    """CUDA first when the device is CUDA and onnxruntime has the provider; always the CPU."""
    import onnxruntime as ort

    chosen = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        chosen.insert(0, "CUDAExecutionProvider")
    return chosen


class OnnxModule(FormatModule):
    """An onnxruntime session as a module: float NCHW tensor in, logits tensor out."""

    audit_format = ONNX

    def __init__(self, session: Any, label: str, embedding_output: str | None) -> None:
        super().__init__(label, embedding_output)
        self.session = session
        (inp,) = session.get_inputs()
        self.input_name = inp.name
        self.input_dtype = _DTYPES[inp.type]
        self.output_names = [o.name for o in session.get_outputs()]

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feed = np.ascontiguousarray(x.detach().float().cpu().numpy(), dtype=self.input_dtype)
        values = self.session.run(self.output_names, {self.input_name: feed})
        return {
            name: torch.from_numpy(np.asarray(v, dtype=np.float32)).to(x.device)
            for name, v in zip(self.output_names, values, strict=True)
        }


def _check_external_data(card: CardLike) -> None:
    """Refuse tensors stored in files outside the model folder (``../``, absolute paths)."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    try:
        proto = onnx.load(str(card.weights), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise AuditError(f"{card.weights}: not a readable ONNX model ({exc})") from None
    folder = os.path.realpath(card.weights.parent)
    for tensor in proto.graph.initializer:
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        real = os.path.realpath(os.path.join(folder, location))
        if os.path.isabs(location) or os.path.commonpath([real, folder]) != folder:
            raise AuditError(
                f"{card.weights}: tensor '{tensor.name}' reads external data '{location}' "
                "outside the model's folder; keep the data file beside the .onnx"
            )


def load_onnx(card: CardLike, device: torch.device) -> OnnxModule:
    """An onnxruntime session for the card's model, with one image input checked."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise AuditError(
            f"{card.card_path}: the model is ONNX but onnxruntime is not installed; "
            "pip install onnxruntime (and onnx)"
        ) from None
    _check_external_data(card)
    options = ort.SessionOptions()
    try:
        session = ort.InferenceSession(
            str(card.weights), sess_options=options, providers=providers(device)
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuditError(f"{card.weights}: onnxruntime cannot load the model ({first})") from None
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type not in _DTYPES:
        shown = ", ".join(f"{i.name} {i.type}" for i in inputs)
        raise AuditError(
            f"{card.weights}: expected one float image input [N, C, H, W], the model has: {shown}"
        )
    names = [o.name for o in session.get_outputs()]
    if card.embedding_output is not None and card.embedding_output not in names:
        raise AuditError(
            f"{card.card_path}: field 'embedding_output' = '{card.embedding_output}' is not an "
            f"output of {card.weights.name}; its outputs: {', '.join(names)}"
        )
    return OnnxModule(session, f"{card.name}@{card.version}", card.embedding_output)
