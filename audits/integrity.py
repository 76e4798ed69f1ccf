"""The integrity stage of an audit run: leakage, failure patterns, suspect labels and slices.

``integrity_stage(ctx)`` runs inside ``auditapp.pipeline.audit.run_audit`` before the run
folder is sealed. It writes ``integrity.json`` (full results) and ``integrity/thumbs/*.jpg``
(small copies of the images it names, so the dashboard and the exports can show them even
after the data moves) into ``ctx.run_dir``, and returns the compact summary stored as
``audit.json["integrity"]``.

Each section is computed on its own: one that fails records ``{"error": ...}`` and the others
still run. Options (``ctx.options``, all optional): ``phash_max_distance``,
``thumb_rms_max``, ``cosine_min`` (turns the model-embedding check on), ``max_train_near``,
``max_listed``, ``thumbnails``, ``slice_min_support``, ``batch_size``, ``workers``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from audits import images
from audits.class_slices import class_slice_report, training_table
from audits.context import AuditContext
from audits.datasets import ImageSet, hash_files, load_dataset
from audits.errors import AuditError
from audits.failure_patterns import find_patterns, pattern_rows
from audits.inference import predict
from audits.label_consensus import other_versions, table_fingerprint
from audits.labels import flagged_mask, self_confidence, suspect_labels
from audits.leakage.near import sample_rows
from audits.leakage.report import find_leakage
from audits.leakage.thresholds import COSINE_MIN, MAX_TRAIN_NEAR, PHASH_MAX_DISTANCE, THUMB_RMS_MAX
from audits.runs import write_record
from audits.slices import MIN_SUPPORT, slice_report

INTEGRITY_FILE = "integrity.json"
THUMBS_DIR = "integrity/thumbs"
THUMB_SIDE = 128
#: Thumbnails kept for failure patterns: (patterns, images per pattern).
PATTERN_THUMBS = (10, 4)


_FLOATS = {"thumb_rms_max", "cosine_min"}


@dataclass(frozen=True)
class IntegrityOptions:
    """Thresholds and caps of the stage (defaults documented in the modules they feed)."""

    phash_max_distance: int = PHASH_MAX_DISTANCE
    thumb_rms_max: float = THUMB_RMS_MAX
    cosine_min: float | None = COSINE_MIN  # None: the model-embedding check is off
    max_train_near: int = MAX_TRAIN_NEAR
    max_listed: int = 200
    thumbnails: int = 40  # per list: leakage pairs, leaked groups, suspects
    slice_min_support: int = MIN_SUPPORT
    batch_size: int = 64
    workers: int = -1  # DataLoader workers for embedding the training set; -1: by cores

    @classmethod
    def from_mapping(cls, options: dict[str, Any] | None) -> IntegrityOptions:
        """Pick this stage's keys out of the run's options, converting to each field's type."""
        options = options or {}
        values: dict[str, Any] = {}
        for f in fields(cls):
            if options.get(f.name) is not None:
                values[f.name] = (
                    float(options[f.name]) if f.name in _FLOATS else int(options[f.name])
                )
        return cls(**values)


def write_thumbnail(src: Path, dst: Path, side: int = THUMB_SIDE) -> bool:
    """A small JPEG copy of an image (longest side ``side``); False when it cannot be read."""
    return images.write_thumbnail(src, dst, side, "JPEG")


class _Thumbs:
    """Writes each source image's thumbnail once; returns its path relative to the run."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.done: dict[Path, str | None] = {}

    def __call__(self, src: Path, name: str) -> str | None:
        if src not in self.done:
            rel = f"{THUMBS_DIR}/{name}.jpg"
            self.done[src] = rel if write_thumbnail(src, self.run_dir / rel) else None
        return self.done[src]


def _train_embeddings(
    ctx: AuditContext, train: ImageSet, rows: np.ndarray, opts: IntegrityOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Embed the sampled training rows with the audited model: (embeddings, their positions)."""

    subset = ImageSet(
        train.source, train.root, train.kind, train.items.iloc[rows].reset_index(drop=True)
    )
    workers = None if opts.workers < 0 else opts.workers
    preds = predict(
        ctx.model, ctx.card, subset, ctx.device, opts.batch_size, workers, progress=ctx.progress
    )
    # Unreadable training images are skipped by predict; map the rest back to positions.
    position = dict(zip(subset.items["path"], rows.tolist(), strict=True))
    embedded = np.array([position[p] for p in preds.table["path"]], dtype=np.int64)
    return np.asarray(preds.embeddings, dtype=np.float32), embedded


NO_TRAINING_MANIFEST = (
    "the model card names no training_manifest, so leakage between training "
    "and held-out images cannot be checked; add training_manifest to model.toml"
)


def leakage_section(ctx: AuditContext, opts: IntegrityOptions, thumbs: _Thumbs) -> dict[str, Any]:
    """Leakage between the card's training manifest and the held-out set, or why it cannot run."""
    manifest = ctx.card.training_manifest
    if manifest is None:
        return {"available": False, "reason": NO_TRAINING_MANIFEST}
    try:
        train = load_dataset(manifest)
    except AuditError as exc:
        return {"available": False, "reason": f"training manifest unreadable: {exc}"}
    result = _find_leakage(ctx, train, opts)
    _add_thumbnails(result, ctx.image_set.root, train, thumbs, opts.thumbnails)
    return result


def _find_leakage(ctx: AuditContext, train: ImageSet, opts: IntegrityOptions) -> dict[str, Any]:
    """Run the leakage checks of the held-out predictions against the training set."""
    table = ctx.predictions.table
    near_rows = sample_rows(len(train.items), opts.max_train_near)
    train_emb = embedded = test_emb = None
    if opts.cosine_min is not None:  # embedding the training set costs a full inference pass
        train_emb, embedded = _train_embeddings(ctx, train, near_rows, opts)
        test_emb = np.asarray(ctx.predictions.embeddings, dtype=np.float32)
        if len(test_emb) != len(table):
            test_emb = None
    result = find_leakage(
        table,
        ctx.image_set.root,
        train.items,
        train.root,
        hash_files(train),
        near_rows=near_rows,
        test_embeddings=test_emb,
        train_embeddings=train_emb,
        embedded_rows=embedded,
        phash_max=opts.phash_max_distance,
        rms_max=opts.thumb_rms_max,
        cosine_min=opts.cosine_min,
        device=ctx.device,
        max_listed=opts.max_listed,
    )
    result["training_manifest"] = str(train.source)
    result["training_root"] = str(train.root)
    near = result["checks"]["near"]
    if opts.cosine_min is not None:
        near["embedding_source"] = ctx.predictions.embedding_source
    if near["sampled"]:
        near["note"] = (
            f"near duplicates searched among a uniform sample of {len(near_rows):,} of "
            f"{len(train.items):,} training images; exact and group checks used all of them"
        )
    return result


def _add_thumbnails(
    result: dict[str, Any], test_root: Path, train: ImageSet, thumbs: _Thumbs, limit: int
) -> None:
    """Thumbnails of the first ``limit`` pairs and groups of each list, named by row/position."""
    train_pos = {p: j for j, p in enumerate(train.items["path"])}

    def train_thumb(path: str) -> str | None:
        return thumbs(train.root / path, f"train-{train_pos[path]}")

    for key in ("exact", "near"):
        for entry in result[key][:limit]:
            entry["test_thumb"] = thumbs(
                test_root / entry["test_path"], f"test-{entry['test_row']}"
            )
            entry["train_thumb"] = train_thumb(entry["train_path"])
    for entry in result["groups"][:limit]:
        entry["test_thumb"] = thumbs(
            test_root / entry["test_paths"][0], f"test-{entry['test_rows'][0]}"
        )
        entry["train_thumb"] = train_thumb(entry["train_paths"][0])


def _section(name: str, compute: Any) -> tuple[dict[str, Any], float]:
    """Run one section; a failure becomes ``{"error": ...}`` so the other sections survive."""
    started = time.perf_counter()
    try:
        out = compute()
    except AuditError as exc:
        print(f"warning: integrity: {name}: {exc}", file=sys.stderr)
        out = {"error": str(exc)}
    except Exception as exc:  # keep the other sections; say what broke
        print(f"warning: integrity: {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        out = {"error": f"{type(exc).__name__}: {exc}"}
    return out, round(time.perf_counter() - started, 3)


def integrity_stage(ctx: AuditContext) -> dict[str, Any]:
    """Write ``integrity.json`` (+ thumbnails) into the run; return the summary for audit.json."""
    opts = IntegrityOptions.from_mapping(ctx.options)
    thumbs = _Thumbs(ctx.run_dir)
    table = ctx.predictions.table
    classes = list(ctx.card.classes)

    leakage, t_leak = _section("leakage", lambda: leakage_section(ctx, opts, thumbs))

    probabilities = ctx.predictions.probabilities
    paths = dict(zip(table["row"].tolist(), table["path"].tolist(), strict=True))

    def patterns() -> dict[str, Any]:
        out = find_patterns(
            table,
            classes,
            flagged=flagged_mask(table, probabilities),
            self_confidence=self_confidence(table, probabilities),
        )
        for p in out["patterns"][: PATTERN_THUMBS[0]]:
            p["thumbs"] = [
                t
                for r in p["rows"][: PATTERN_THUMBS[1]]
                if (t := thumbs(ctx.image_set.root / paths[r], f"test-{r}")) is not None
            ]
        return out

    failures, t_patterns = _section("failure patterns", patterns)

    def versions() -> list[tuple[str, Any]]:
        """Other audited versions of this model on the same rows (the run's store holds them)."""
        if "file_sha256" not in table.columns:
            return []
        card = ctx.card
        return other_versions(ctx.run_dir.parent, card.name, card.version, table_fingerprint(table))

    def suspects() -> dict[str, Any]:
        # Flags inside a failure pattern are the model's systematic errors, not suspect labels.
        exclude = pattern_rows(failures) if "error" not in failures else None
        out = suspect_labels(
            table, probabilities, classes, opts.max_listed, exclude=exclude, others=versions()
        )
        for entry in out["rows"][: opts.thumbnails]:
            entry["thumb"] = thumbs(ctx.image_set.root / entry["path"], f"test-{entry['row']}")
        return out

    labels, t_labels = _section("suspect labels", suspects)
    slices, t_slices = _section(
        "slices", lambda: slice_report(table, min_support=opts.slice_min_support)
    )
    class_slices, _ = _section(  # class x slice cross-tab and the root-cause sentence
        "class slices", lambda: class_slice_report(table, classes, training_table(ctx.card))
    )
    report = {
        "options": {f.name: getattr(opts, f.name) for f in fields(opts)},
        "leakage": leakage,
        "failure_patterns": failures,
        "suspect_labels": labels,
        "slices": slices,
        "class_slices": class_slices,
        "timings": {
            "leakage_s": t_leak,
            "suspect_labels_s": t_labels,
            "failure_patterns_s": t_patterns,
            "slices_s": t_slices,
        },
    }
    write_record(ctx.run_dir, report, "integrity")
    return summarize(report)


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The compact ``audit.json["integrity"]`` block of a full integrity report."""
    leak = report["leakage"]
    if "error" in leak or not leak.get("available"):
        leak_summary = {"available": False, "reason": leak.get("reason") or leak.get("error")}
    else:
        acc = leak["accuracy"]
        leak_summary = {
            "available": True,
            **leak["counts"],
            "accuracy": acc["all"]["accuracy"],
            "accuracy_without_leaked": acc["without_leaked"]["accuracy"],
        }
    labels = report["suspect_labels"]
    slices = report["slices"]
    return {
        "file": INTEGRITY_FILE,
        "leakage": leak_summary,
        "suspect_labels": {"error": labels["error"]}
        if "error" in labels
        else {
            "n_flagged": labels["n_flagged"],
            "top": [r["path"] for r in labels["rows"][:5]],
            "n_in_patterns": labels.get("n_in_patterns"),
            "n_patterns": len(report.get("failure_patterns", {}).get("patterns", [])),
        },
        "slices": {"error": slices["error"]}
        if "error" in slices
        else {
            "n_slices": len(slices["slices"]),
            "n_significantly_lower": sum(s["significantly_lower"] for s in slices["slices"]),
            "weakest": [
                {
                    k: s[k]
                    for k in ("label", "support", "accuracy", "ci_low", "ci_high", "p_lower_adj")
                }
                for s in slices["weakest"][:3]
            ],
        },
    }
