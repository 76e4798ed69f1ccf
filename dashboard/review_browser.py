"""The two things the Review page needs from the browser itself: the reviewer's name kept per
browser, and the R key.

The name lives in a cookie (``ma_reviewer``, one year, this site only): Streamlit's
``st.context.cookies`` reads it when a session starts, and a tiny script in a zero-height
``components.html`` frame writes it when the name changes (``st.context.cookies`` is read-only).
There is no login: the name is whatever the reviewer types.

Streamlit reserves the R key (rerun) for ``st.button(shortcut=...)``, so R (and Enter for the
grid's "confirm page") is bound by a capture-phase listener on the page that clicks the
button and keeps the key from reaching Streamlit; it ignores keys typed into text fields.
"""

from __future__ import annotations

import json
import urllib.parse

import streamlit as st
import streamlit.components.v1 as components

COOKIE = "ma_reviewer"
MAX_AGE_S = 365 * 24 * 3600


def cookie_reviewer() -> str:
    """The reviewer name this browser sent with the session's cookies ('' when none)."""
    try:
        raw = st.context.cookies.get(COOKIE, "")
    except Exception:  # no browser behind the session (AppTest)
        return ""
    if not isinstance(raw, str):  # AppTest's stand-in context is not a browser
        return ""
    return urllib.parse.unquote(raw).strip()


def _js_string(text: str) -> str:
    """A JSON string literal that cannot close the script element it sits in."""
    return json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def remember_reviewer(name: str) -> None:
    """Write the name to this browser's cookie (URL-encoded)."""
    value = urllib.parse.quote(name, safe="")
    components.html(
        "<script>document.cookie = "
        + _js_string(f"{COOKIE}={value}; path=/; max-age={MAX_AGE_S}; SameSite=Lax")
        + ";</script>",
        height=0,
    )


#: Keys bound by the page itself (key -> the button's widget key): R is reserved by Streamlit,
#: and a form's submit button did not answer its ``shortcut`` in Chromium here.
KEYS = {"r": "rv_relabel", "R": "rv_relabel", "Enter": "rv_confirm"}

#: The listener, run in the parent page's own realm (a listener made in the frame would die
#: with the frame when Streamlit replaces it); installed once per page, replaced on change.
LISTENER = """(function () {
  const keys = KEYS_JSON;
  if (window.__maReviewKey) { window.removeEventListener("keydown", window.__maReviewKey, true); }
  window.__maReviewKey = function (e) {
    const target = keys[e.key];
    if (!target || e.ctrlKey || e.metaKey || e.altKey || e.shiftKey) return;
    const t = e.target;
    const tag = t && t.tagName ? t.tagName.toLowerCase() : "";
    if (tag === "input" && t.type !== "checkbox") return;
    if (tag === "textarea" || (t && t.isContentEditable)) return;
    const b = document.querySelector(".st-key-" + target + " button");
    if (!b || b.disabled) return;
    e.preventDefault(); e.stopImmediatePropagation(); e.stopPropagation();
    b.click();
  };
  window.addEventListener("keydown", window.__maReviewKey, true);
})();"""

KEYS_JS = """<script>
(function () {
  const d = window.parent.document;
  if (d.getElementById("ma-review-keys")) return;
  const s = d.createElement("script");
  s.id = "ma-review-keys";
  s.textContent = LISTENER_JSON;
  d.head.appendChild(s);
})();
</script>"""


def bind_keys() -> None:
    """Make R press Relabel and Enter press "Confirm page" on this page."""
    listener = LISTENER.replace("KEYS_JSON", json.dumps(KEYS))
    components.html(KEYS_JS.replace("LISTENER_JSON", _js_string(listener)), height=0)
