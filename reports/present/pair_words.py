"""Plain words for one confused pair's region numbers (``explain/summary.json`` ``pairs``).

The stored sentence (``explain.pairs``) states every number; a reader who has not seen the
method needs one sentence with one number: on how many of the pair's failures the heat-map
left the region that decides the class. "Outside" means the box holds less of the heat-map
than of the image (what a flat map would put there), or less than the stored fixed threshold.
Shared by the PDF/HTML section and the dashboard, so both say the same thing.
"""

from __future__ import annotations

from typing import Any

from audits.formatting import count, is_num, pct, pct_whole

#: What the report calls the region box.
REGION = "the white box (the part that tells the classes apart)"


def _get(pair: Any, key: str) -> Any:
    return pair.get(key) if isinstance(pair, dict) else getattr(pair, key, None)


def share(x: Any) -> str:
    """A share of a heat-map: '<1%' for a small non-zero share, '0%' only for a true zero."""
    return pct_whole(x)


def rule(threshold: Any) -> str:
    """What "outside" means for the stored threshold ('box area' or a number)."""
    if is_num(threshold):
        return f"less than {pct(threshold, 0)} of the heat-map inside the region box"
    return "less of the heat-map inside the region box than the box's share of the image"


def below_header(threshold: Any) -> str:
    """Column title for the per-image "below" count (never 'Below n/a')."""
    return f"Under {pct(threshold, 0)} in box" if is_num(threshold) else "Heat mostly outside box"


def pair_sentence(pair: Any) -> str:
    """'On 88 targa images read as carrera, the heat sits outside … on 88.' (one number)."""
    true, pred = _get(pair, "true"), _get(pair, "predicted")
    n_fail = _get(pair, "n_failures")
    n_box, below = _get(pair, "n_with_box"), _get(pair, "below_threshold")
    head = f"On {count(n_fail)} {true} images read as {pred}"
    if not is_num(n_box) or not is_num(below) or not n_box:
        return f"{head}, the data gives no region box, so there is no region number."
    n_box, below = int(n_box), int(below)
    of = "" if n_box == n_fail else f" of the {count(n_box)} with a box"
    if below * 2 >= n_box:
        text = f"{head}, the heat sits outside {REGION} on {count(below)}{of}"
    else:
        text = f"{head}, the heat lands on {REGION} on {count(n_box - below)}{of}"
    base = _get(pair, "baseline_energy_median")
    mine = _get(pair, "energy_median")
    if is_num(base) and is_num(mine):
        text += (
            f"; median heat in the box {share(mine)}, against {share(base)} on correctly "
            f"classified {true} images"
        )
    return text + "."
