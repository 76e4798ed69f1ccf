"""Data text inside Streamlit Markdown: shown as itself, never as a link, heading or directive.

``st.markdown``, ``st.caption``, ``st.warning``/``st.error`` and widget labels read their text
as Markdown (GitHub-flavoured, with Streamlit's ``:color[…]`` and ``:material/…:`` directives),
so a run id, model or class name, store path or error message taken from a URL or a stored file
must pass through ``md_escape`` (running text) or ``md_code`` (a code span) before it is
formatted into one. HTML rendered with ``unsafe_allow_html`` uses ``components.esc`` instead.
"""

from __future__ import annotations

import re
from typing import Any

# Every ASCII punctuation character CommonMark lets a backslash escape that starts markup here:
# links and images ([]()!), code (`), emphasis (*_~), headings (#), lists (+-.), tables (|),
# HTML and autolinks (<>&), math ($), Streamlit directives and emoji shortcodes (:), and the
# characters that make a bare URL or e-mail address an autolink (: / . @).
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~$:/@=\"'^])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")


def md_escape(text: Any, limit: int | None = None) -> str:
    """``text`` as literal Markdown: one line, every markup character backslash-escaped.

    ``limit`` shortens it (with "…") first, for values taken from a URL.
    """
    value = _LINE_BREAKS.sub(" ", str(text))
    if limit is not None and len(value) > limit:
        value = value[: max(limit - 1, 0)] + "…"
    return _SPECIAL.sub(r"\\\1", value)


def md_code(text: Any, limit: int | None = None) -> str:
    """``text`` as an inline code span that no backtick inside it can close.

    The fence is one backtick longer than the longest run of backticks in the text, and padded
    with spaces when the text starts or ends with one (CommonMark strips one space each side).
    """
    value = _LINE_BREAKS.sub(" ", str(text))
    if limit is not None and len(value) > limit:
        value = value[: max(limit - 1, 0)] + "…"
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value.strip() else ""
    return f"{fence}{pad}{value}{pad}{fence}"
