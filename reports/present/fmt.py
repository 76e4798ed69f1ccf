"""Number formatting for every renderer: the core's one set (``audits.formatting``), so the
terminal, the dashboard, the PDF and the HTML agree to the character."""

from audits.formatting import (
    NA,
    ci,
    count,
    is_num,
    num,
    p_equals,
    p_value,
    pct,
    pct_short,
    pct_whole,
    pts,
    pts_ci,
    text,
    yes_no,
)

#: The name the report templates use.
pval = p_value

__all__ = [
    "NA", "ci", "count", "is_num", "num", "p_equals", "p_value", "pct", "pct_short", "pct_whole", "pts",
    "pts_ci", "pval", "text", "yes_no",
]  # fmt: skip
