"""What "better" and "no slower" mean: the thresholds of the release gate (all CLI flags)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from audits.errors import AuditError

PRIMARY_METRICS = ("accuracy", "balanced_accuracy")
#: Points are compared with a little slack so that "-5.0 points" meets a 5-point limit.
EPS = 1e-9


def secondary_of(primary: str) -> str:
    """The other headline metric, which must not get significantly worse."""
    return "balanced_accuracy" if primary == "accuracy" else "accuracy"


@dataclass(frozen=True)
class Thresholds:
    """What "better" and "no slower" mean; differences are in percentage points."""

    alpha: float = 0.05
    min_gain: float = 0.0
    max_class_drop: float | None = 5.0
    tolerance: float = 0.05
    primary: str = "accuracy"

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise AuditError(f"--alpha {self.alpha}: must be between 0 and 1 (e.g. 0.05)")
        if self.min_gain < 0 or not math.isfinite(self.min_gain):
            raise AuditError(f"--min-gain {self.min_gain}: must be 0 or more points")
        if self.max_class_drop is not None and (
            self.max_class_drop < 0 or not math.isfinite(self.max_class_drop)
        ):
            raise AuditError(
                f"--max-class-drop {self.max_class_drop}: must be 0 or more points (or 'off')"
            )
        if not 0.0 <= self.tolerance < 1.0:
            raise AuditError(
                f"--tolerance {self.tolerance}: must be a fraction in [0, 1), e.g. 0.05 for 5%"
            )
        if self.primary not in PRIMARY_METRICS:
            raise AuditError(
                f"--primary {self.primary}: expected one of {', '.join(PRIMARY_METRICS)}"
            )

    @property
    def secondary(self) -> str:
        """The other headline metric, which must not get significantly worse."""
        return secondary_of(self.primary)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
