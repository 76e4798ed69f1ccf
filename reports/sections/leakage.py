"""Section "Leakage between training and test": held-out images also in the training data
(exact copies, the same object by group, near duplicates) and what they do to the accuracy."""

from __future__ import annotations

from typing import Any

from audits.runs.models_integrity import (
    AccuracyBlock,
    Leakage,
    LeakGroup,
    LeakPair,
    Unavailable,
)
from audits.store import Run
from reports.present import fmt
from reports.sections.base import c, cell_text, ci_cell, cols, count_cell, kv, more, pct_cell
from reports.tree import (
    LIST_ROWS,
    Block,
    Callout,
    Column,
    Figure,
    Gallery,
    Heading,
    KeyValue,
    KeyValues,
    Section,
    Table,
)

TITLE = "Leakage between training and test"
LEAD = "A test image the model saw in training makes the accuracy look better than it is."
_ACCURACY = (
    ("all", "All test images"),
    ("without_leaked", "Without the leaked ones"),
    ("leaked", "Leaked ones only"),
)
#: The columns of the listed pairs and groups: (record field, column title).
_EXACT = (
    ("test_path", "Test image"),
    ("train_path", "Training image"),
    ("label", "Label"),
    ("train_label", "Training label"),
)
_NEAR = (
    ("test_path", "Test image"),
    ("train_path", "Training image"),
    ("found_by", "Found by"),
    ("phash_distance", "Hash distance"),
    ("thumb_rms", "Thumbnail RMS"),
    ("cosine", "Cosine"),
)
_GROUPS = (("group", "Group"), ("n_test", "Test images"), ("n_train", "Training images"))
_TEXT_FIELDS = {"test_path", "train_path", "label", "train_label", "group", "found_by"}

Fields = tuple[tuple[str, str], ...]


def _thumb_pairs(leak: Leakage, run: Run) -> list[dict[str, Any]]:
    """The first exact and near pairs whose two thumbnails are stored (at most 6)."""
    out = []
    for kind, pairs in (("exact", leak.exact), ("near", leak.near)):
        for e in pairs:
            shots = [run.thumb(e.test_thumb), run.thumb(e.train_thumb)]
            if shots[0] is not None and shots[1] is not None:
                out.append({"kind": kind, "pair": e, "shots": [str(p) for p in shots]})
            if len(out) >= 6:
                return out
    return out


def _lists(leak: Leakage) -> list[tuple[str, Fields, list[LeakPair] | list[LeakGroup], int]]:
    """The listed exact pairs, near pairs and shared groups, each with its complete count."""
    return [
        ("Exact duplicates", _EXACT, leak.exact, leak.counts.exact),
        ("Near duplicates", _NEAR, leak.near, leak.counts.near),
        # As always, the groups' total is the list's own length (not counts.group).
        ("Shared groups", _GROUPS, leak.groups, len(leak.groups)),
    ]


def _read(leak: Leakage | Unavailable, run: Run) -> dict[str, Any]:
    """integrity.json's leakage block: counts, checks, accuracies, thumbnails and lists."""
    if isinstance(leak, Unavailable):
        return {"available": False, "reason": leak.reason}
    accuracy = leak.accuracy
    return {
        "available": True,
        "n_test": leak.n_test,
        "n_train": leak.n_train,
        "training_manifest": leak.training_manifest,
        "counts": leak.counts,
        "group_check": leak.checks.group,
        "near": leak.checks.near,
        "accuracy": [(title, getattr(accuracy, key)) for key, title in _ACCURACY],
        "thumb_pairs": _thumb_pairs(leak, run),
        "lists": _lists(leak),
    }


def _callout(s: dict[str, Any]) -> Callout:
    n_leaked = s["counts"].leaked_images
    if not n_leaked:
        text = "No test image was found in the training data."
        return Callout(text, tone="good", title="No leakage found")
    text = (
        f"{fmt.count(n_leaked)} of {fmt.count(s['n_test'])} test images were also in the "
        "training data, exactly, as the same object, or nearly."
    )
    return Callout(text, tone="bad", title="Leakage found")


def _check_rows(s: dict[str, Any]) -> list[KeyValue]:
    counts, group_check, near = s["counts"], s["group_check"], s["near"]
    shared = (
        f"{fmt.count(counts.group)} group(s), {fmt.count(counts.group_test_images)} test image(s)"
    )
    rows = [
        kv("Training manifest", s["training_manifest"], mono=True),
        kv("Training images", fmt.count(s["n_train"])),
        kv("Exact duplicates (same file bytes)", fmt.count(counts.exact)),
        kv("Shared groups (same object on both sides)", shared),
        kv("Near duplicates (resized, re-encoded)", fmt.count(counts.near)),
    ]
    if group_check.startswith("not run"):
        rows.append(kv("Group check", group_check))
    method = near.method if near.method is not None else "not recorded"
    note = f". {near.note}" if near.note is not None else ""
    rows.append(kv("Near-duplicate method", method + note))
    return rows


def _accuracy_table(accuracy: list[tuple[str, AccuracyBlock]]) -> Table:
    rows = [
        [
            c(title),
            count_cell(v.n),
            pct_cell(v.accuracy),
            ci_cell(v.ci_low, v.ci_high),
        ]
        for title, v in accuracy
    ]
    return Table(
        cols(
            ("Images", "left", "40%"),
            ("Count", "right"),
            ("Accuracy", "right"),
            ("95% CI", "right"),
        ),
        rows,
        caption="Accuracy with and without the leaked images: a gap means the leaked images "
        "flatter the model.",
    )


def _gallery(pairs: list[dict[str, Any]]) -> Gallery:
    figures = [
        Figure(
            p["shots"],
            [f"{p['kind']}: test {p['pair'].test_path}", f"training {p['pair'].train_path}"],
        )
        for p in pairs
    ]
    caption = "Held-out image (left) and its copy in the training data (right)."
    return Gallery(figures, caption, columns=3)


def _list_table(fields: Fields, items: list[LeakPair] | list[LeakGroup], total: int) -> Table:
    shown = items[:LIST_ROWS]
    columns = [
        Column(title, "left" if f in _TEXT_FIELDS else "right", "30%" if "path" in f else None)
        for f, title in fields
    ]
    # The columns name the record's fields, so one table serves pairs and groups.
    rows = [[c(cell_text(f, getattr(i, f)), mono="path" in f) for f, _ in fields] for i in shown]
    caption = more(total, len(shown), "the listed ones are in the JSON export").strip()
    return Table(columns, rows, caption=caption, css="compact")


def leakage_section(leak: Leakage | Unavailable, run: Run) -> Section:
    """The leakage section from integrity.json's leakage block (checked, or why not)."""
    s = _read(leak, run)
    if not s["available"]:
        reason = str(s["reason"] or "Leakage could not be checked for this run.")
        return Section(
            "leakage", TITLE, [Callout(reason, tone="warn", title="Not checked")], lead=LEAD
        )
    blocks: list[Block] = [_callout(s), KeyValues(_check_rows(s))]
    if s["accuracy"]:
        blocks.append(_accuracy_table(s["accuracy"]))
    if s["thumb_pairs"]:
        blocks.append(_gallery(s["thumb_pairs"]))
    for title, fields, items, total in s["lists"]:
        if items:
            blocks += [Heading(title, 3), _list_table(fields, items, total)]
    return Section("leakage", TITLE, blocks, lead=LEAD)
