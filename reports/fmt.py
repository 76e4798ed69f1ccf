"""Number formatting shared by every renderer, so the PDF, the HTML and the tests agree.

Percentages come from ``audits.narrative.pct`` (one decimal), the same helper the dashboard
uses. Every function accepts None (or a value of the wrong type) and returns "n/a" rather than
raising: a missing key in a run must never crash an export.
"""

from __future__ import annotations

import math
from typing import Any

from audits.narrative import pct as _pct

NA = "n/a"


def is_num(x: Any) -> bool:
    """A real, finite number (bools are not numbers here)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: Any, digits: int = 1) -> str:
    """0.8423 -> '84.2%'."""
    return _pct(float(x), digits) if is_num(x) else NA


def ci(low: Any, high: Any) -> str:
    """'81.2–86.9%' (a Wilson or Newcombe interval)."""
    if not (is_num(low) and is_num(high)):
        return NA
    return f"{100 * low:.1f}–{100 * high:.1f}%"


def count(x: Any) -> str:
    """1234 -> '1,234'."""
    if isinstance(x, bool) or not is_num(x):
        return NA
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.2f}"


def num(x: Any, digits: int = 3) -> str:
    """A plain float with fixed decimals."""
    return f"{x:.{digits}f}" if is_num(x) else NA


def pval(p: Any) -> str:
    """p-values as a reader expects them: '<0.001', '0.023', '0.41'."""
    if not is_num(p):
        return NA
    if p < 0.001:
        return "<0.001"
    return f"{p:.2f}" if p >= 0.1 else f"{p:.3f}"


def pts(diff: Any) -> str:
    """A difference of proportions in percentage points: '+2.3 pts'."""
    if not is_num(diff):
        return NA
    return f"{100 * diff:+.1f} pts"


def pts_ci(low: Any, high: Any) -> str:
    if not (is_num(low) and is_num(high)):
        return NA
    return f"{100 * low:+.1f} to {100 * high:+.1f} pts"


def yes_no(x: Any) -> str:
    if x is None:
        return NA
    return "yes" if bool(x) else "no"


def text(x: Any) -> str:
    """Any stored value as display text (None -> 'n/a'); escaping is the template's job."""
    if x is None:
        return NA
    if isinstance(x, float):
        return num(x, 4) if is_num(x) else NA
    if isinstance(x, list | tuple):
        return ", ".join(text(v) for v in x)
    return str(x)
