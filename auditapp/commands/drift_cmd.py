"""``drift``: does a current batch (usually unlabelled) differ from the reference set, and how?"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from auditapp.commands.options import add_inference_options, batch_date
from auditapp.json_output import read_record, set_result, wants_json

if TYPE_CHECKING:
    from audits.runs import DriftRecord
    from audits.runs.models_drift import EmbeddingDrift


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "drift", help="drift between a reference set and a current batch", description=__doc__
    )
    p.add_argument("--model", required=True, help="model folder holding model.toml")
    p.add_argument(
        "--reference",
        required=True,
        help="reference set (e.g. the held-out set): ImageFolder or manifest",
    )
    p.add_argument(
        "--current",
        required=True,
        help="current batch: ImageFolder, folder of images or manifest (labels optional)",
    )
    add_inference_options(p)
    p.add_argument(
        "--permutations",
        type=int,
        default=1000,
        help="most permutations of the MMD test (default 1000); it stops earlier once p is "
        "clearly above or below --alpha",
    )
    p.add_argument(
        "--no-early-stop",
        dest="early_stop",
        action="store_false",
        help="draw all --permutations (the fixed test: p = (b+1)/(B+1), as before the "
        "sequential test; same p-values for the same --seed)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutations")
    p.add_argument(
        "--label",
        metavar="TEXT",
        help="a name for the current batch in reports (default: its folder's name, e.g. fan_batch)",
    )
    p.add_argument(
        "--batch-date",
        metavar="DATE",
        type=batch_date,
        help="when the current batch was taken (YYYY-MM-DD or an ISO time); the drift timeline "
        "is ordered by it (default: the time of the drift run)",
    )
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow a pickled whole-model weights file (trusted files only)",
    )
    p.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="exit 1 when drift is found (a gate for pipelines); the run is stored either way",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(handler=main)


def summary_lines(record: DriftRecord) -> list[str]:
    """A short human summary of a stored drift run (reads drift.json; computes nothing)."""
    from audits.formatting import ci, p_value, pct

    emb, preds = record.embedding, record.predictions
    ref, cur = record.reference, record.current
    classes, confidence = preds.classes, preds.confidence
    lines = [
        f"{record.model.name} {record.model.version}: reference {ref.n_images} images "
        f"({ref.n_skipped} skipped) vs current batch {record.batch!r} {cur.n_images} "
        f"({cur.n_skipped} skipped)",
        f"drift: {'YES' if record.drift else 'no'} (alpha {record.alpha})",
        f"  embedding   MMD² {emb.mmd2:.4g}, p {p_value(emb.p_value)} ({_permutations(emb)})"
        f"{'  DRIFT' if emb.drift else ''}",
        f"  predictions p {p_value(preds.p_value)} (classes {p_value(classes.p_value)}, confidence "
        f"{p_value(confidence.p_value)}: mean {confidence.reference_mean:.3f} -> "
        f"{confidence.current_mean:.3f}){'  DRIFT' if preds.drift else ''}",
    ]
    acc = preds.accuracy
    if acc.current is not None:
        interval = ci(acc.current_ci_low, acc.current_ci_high)
        lines.append(
            f"  accuracy    {pct(acc.reference)} -> {pct(acc.current)}"
            + (f" (95% CI {interval})" if acc.current_ci_low is not None else "")
        )
    lines.append(_properties_line(record))
    if record.examples:
        far = record.examples[0]
        ratio = f" ({far.ratio:.1f}x the reference spacing)" if far.ratio else ""
        lines.append(f"  farthest    {far.path}{ratio}")
    return lines


def _permutations(emb: EmbeddingDrift) -> str:
    """The permutations in words: '173 of at most 1000 …, settled early' or '1000 …'."""
    if emb.stopped_early:
        return f"{emb.permutations} of at most {emb.permutations_max} permutations, settled early"
    return f"{emb.permutations} permutations"


def _properties_line(record: DriftRecord) -> str:
    """The drifted properties, numeric ones with their means on each side."""
    from audits.drift.wording import property_value

    drifted, n = record.drifted_properties, len(record.properties)
    if not drifted:
        return f"  properties  none of {n} drifted"
    parts = [
        f"{p.name} {property_value(p.name, p.reference_mean)} -> "
        f"{property_value(p.name, p.current_mean)}"
        if p.reference_mean is not None and p.current_mean is not None
        else p.name
        for p in drifted
    ]
    return f"  properties  {len(drifted)} of {n} drifted: " + "; ".join(parts)


def main(args: argparse.Namespace) -> int:
    from auditapp.pipeline.drift import run_drift
    from audits.store import load_run

    path = run_drift(
        args.model,
        args.reference,
        args.current,
        store=args.store,
        device=args.device,
        batch_size=args.batch_size,
        workers=args.workers,
        permutations=args.permutations,
        alpha=args.alpha,
        seed=args.seed,
        allow_pickle=args.allow_pickle,
        progress=not args.quiet,
        label=args.label,
        early_stop=args.early_stop,
        batch_date=args.batch_date,
    )
    record = load_run(path).drift
    if wants_json(args):
        set_result(args, {**read_record(path / "drift.json"), "run": str(path)})
    elif not args.quiet:
        for line in summary_lines(record):
            print(line)
    print(path)
    return 1 if args.fail_on_drift and record.drift else 0
