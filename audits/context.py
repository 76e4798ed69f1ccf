"""What an analysis stage of an audit may read (the pipeline builds it; stages only read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audits.datasets import ImageSet
from audits.inference import Predictions
from audits.model_card import ModelCard


@dataclass
class AuditContext:
    """Everything an analysis stage may read; stages write only inside ``run_dir``."""

    card: ModelCard
    model: nn.Module
    device: torch.device
    image_set: ImageSet
    predictions: Predictions
    metrics: dict[str, Any]
    run_dir: Path
    options: dict[str, Any] = field(default_factory=dict)
    progress: bool = False
