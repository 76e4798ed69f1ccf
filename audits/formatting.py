"""The one set of number formatters: terminal output, stored sentences, dashboard and exports.

Every function accepts ``None`` (or a non-finite or non-numeric value) and returns ``"n/a"``
rather than raising, so a missing value never crashes a renderer. p-values read the same
everywhere: ``"< 0.001"``, ``"0.023"``, ``"0.41"``.
"""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"


def is_num(x: Any) -> bool:
    """A real, finite number (bools are not numbers here)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: Any, digits: int = 1) -> str:
    """0.8423 -> '84.2%'."""
    return f"{100 * float(x):.{digits}f}%" if is_num(x) else NA


def pct_short(x: Any) -> str:
    """A target or threshold as short as it can be: 0.5 -> '50%', 0.125 -> '12.5%'."""
    if not is_num(x):
        return NA
    return f"{100 * float(x):.1f}".rstrip("0").rstrip(".") + "%"


def pct_whole(x: Any) -> str:
    """A share in whole percent that never hides a non-zero count: 0.004 -> '<1%',
    0.996 -> '>99%', 0 -> '0%', 1 -> '100%'."""
    if not is_num(x):
        return NA
    x = float(x)
    if 0 < x < 0.005:
        return "<1%"
    if 0.995 <= x < 1:
        return ">99%"
    return f"{100 * x:.0f}%"


def ci(low: Any, high: Any) -> str:
    """'81.2–86.9%' (a Wilson or Newcombe interval)."""
    if not (is_num(low) and is_num(high)):
        return NA
    return f"{100 * low:.1f}–{100 * high:.1f}%"


def count(x: Any) -> str:
    """1234 -> '1,234'."""
    if not is_num(x):
        return NA
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.2f}"


def num(x: Any, digits: int = 3) -> str:
    """A plain float with fixed decimals."""
    return f"{x:.{digits}f}" if is_num(x) else NA


def p_value(p: Any) -> str:
    """'< 0.001', '0.023', '0.41': three decimals below 0.1, two above."""
    if not is_num(p):
        return NA
    if p < 0.001:
        return "< 0.001"
    return f"{p:.2f}" if p >= 0.1 else f"{p:.3f}"


def p_equals(p: Any) -> str:
    """'p < 0.001' or 'p = 0.023', for sentences."""
    text = p_value(p)
    if text == NA:
        return f"p {NA}"
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def pts(diff: Any) -> str:
    """A difference of proportions in percentage points: '+2.3 pts'."""
    return f"{100 * diff:+.1f} pts" if is_num(diff) else NA


def pts_ci(low: Any, high: Any) -> str:
    """'+1.2 to +3.4 pts'."""
    if not (is_num(low) and is_num(high)):
        return NA
    return f"{100 * low:+.1f} to {100 * high:+.1f} pts"


def yes_no(x: Any) -> str:
    return NA if x is None else ("yes" if bool(x) else "no")


def text(x: Any) -> str:
    """Any stored value as display text (None -> 'n/a'); escaping is the renderer's job."""
    if x is None:
        return NA
    if isinstance(x, float):
        return num(x, 4) if is_num(x) else NA
    if isinstance(x, list | tuple):
        return ", ".join(text(v) for v in x)
    return str(x)
