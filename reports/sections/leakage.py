"""Section "Leakage between training and test": held-out images also in the training data
(exact copies, the same object by group, near duplicates) and what they do to the accuracy."""

from __future__ import annotations

from typing import Any

from audits.store import Run
from reports.present import fmt
from reports.sections.base import c, cell_text, ci_cell, cols, count_cell, kv, more, pct_cell
from reports.sections.reading import mapping, pick, records, run_file
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
_COUNTS = ("exact", "group", "group_test_images", "near", "leaked_images")
_ACCURACY = {
    "all": "All test images",
    "without_leaked": "Without the leaked ones",
    "leaked": "Leaked ones only",
}
#: The listed pairs and groups: (key, title, ((field, column title), ...)).
_LISTS = (
    (
        "exact",
        "Exact duplicates",
        (
            ("test_path", "Test image"),
            ("train_path", "Training image"),
            ("label", "Label"),
            ("train_label", "Training label"),
        ),
    ),
    (
        "near",
        "Near duplicates",
        (
            ("test_path", "Test image"),
            ("train_path", "Training image"),
            ("found_by", "Found by"),
            ("phash_distance", "Hash distance"),
            ("thumb_rms", "Thumbnail RMS"),
            ("cosine", "Cosine"),
        ),
    ),
    (
        "groups",
        "Shared groups",
        (("group", "Group"), ("n_test", "Test images"), ("n_train", "Training images")),
    ),
)
_TEXT_FIELDS = {"test_path", "train_path", "label", "train_label", "group", "found_by"}


def _thumb_pairs(leak: dict[str, Any], run: Run) -> list[dict[str, Any]]:
    """The first exact and near pairs whose two thumbnails are stored (at most 6)."""
    out = []
    for kind in ("exact", "near"):
        for e in records(leak.get(kind), "test_path", "train_path", "test_thumb", "train_thumb"):
            shots = [run_file(run, e["test_thumb"]), run_file(run, e["train_thumb"])]
            if all(shots):
                out.append({"kind": kind, **e, "shots": shots})
            if len(out) >= 6:
                return out
    return out


def _read(leak: Any, run: Run) -> dict[str, Any] | None:
    """integrity.json's leakage block (or audit.json's compact one, whose counts are at the
    top level); None when there is none."""
    if not isinstance(leak, dict) or not leak:
        return None
    if leak.get("available") is False:
        return {"available": False, "reason": leak.get("reason")}
    counts = mapping(leak.get("counts")) or pick(leak, *_COUNTS)
    checks = mapping(leak.get("checks"))
    near = checks.get("near") if isinstance(checks.get("near"), dict) else {}
    accuracy = leak.get("accuracy")
    lists = []
    for key, title, fields in _LISTS:
        items = records(leak.get(key), *(f for f, _ in fields))
        total = counts.get(key) if fmt.is_num(counts.get(key)) else len(items)
        lists.append((title, fields, items, int(total)))
    return {
        "available": True,
        **pick(leak, "n_test", "training_manifest", "n_train"),
        "counts": pick(counts, *_COUNTS),
        "group_check": checks.get("group"),
        "near": pick(near, "method", "note") if near else None,
        "accuracy": [
            (k, pick(v, "n", "accuracy", "ci_low", "ci_high"))
            for k, v in (accuracy.items() if isinstance(accuracy, dict) else ())
            if isinstance(v, dict)
        ],
        "thumb_pairs": _thumb_pairs(leak, run),
        "lists": lists,
    }


def _callout(s: dict[str, Any]) -> Callout:
    n_leaked = s["counts"]["leaked_images"]
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
        f"{fmt.count(counts['group'])} group(s), "
        f"{fmt.count(counts['group_test_images'])} test image(s)"
    )
    rows = [
        kv("Training manifest", s["training_manifest"], mono=True),
        kv("Training images", fmt.count(s["n_train"])),
        kv("Exact duplicates (same file bytes)", fmt.count(counts["exact"])),
        kv("Shared groups (same object on both sides)", shared),
        kv("Near duplicates (resized, re-encoded)", fmt.count(counts["near"])),
    ]
    if isinstance(group_check, str) and group_check.startswith("not run"):
        rows.append(kv("Group check", group_check))
    if near is not None:
        method = near["method"] if isinstance(near["method"], str) else "not recorded"
        note = f". {near['note']}" if isinstance(near["note"], str) else ""
        rows.append(kv("Near-duplicate method", method + note))
    return rows


def _accuracy_table(accuracy: list[tuple[str, dict[str, Any]]]) -> Table:
    rows = [
        [
            c(_ACCURACY.get(k, str(k))),
            count_cell(v["n"]),
            pct_cell(v["accuracy"]),
            ci_cell(v["ci_low"], v["ci_high"]),
        ]
        for k, v in accuracy
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
            [
                f"{p['kind']}: test {fmt.text(p['test_path'])}",
                f"training {fmt.text(p['train_path'])}",
            ],
        )
        for p in pairs
    ]
    caption = "Held-out image (left) and its copy in the training data (right)."
    return Gallery(figures, caption, columns=3)


def _list_table(
    fields: tuple[tuple[str, str], ...], items: list[dict[str, Any]], total: int
) -> Table:
    shown = items[:LIST_ROWS]
    columns = [
        Column(title, "left" if f in _TEXT_FIELDS else "right", "30%" if "path" in f else None)
        for f, title in fields
    ]
    rows = [[c(cell_text(f, i[f]), mono="path" in f) for f, _ in fields] for i in shown]
    caption = more(total, len(shown), "the listed ones are in the JSON export").strip()
    return Table(columns, rows, caption=caption, css="compact")


def leakage_section(leak: Any, run: Run) -> Section | None:
    """The leakage section from integrity's leakage block; None when it has none."""
    s = _read(leak, run)
    if s is None:
        return None
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
