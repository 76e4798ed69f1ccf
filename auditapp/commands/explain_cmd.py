"""``explain``: Grad-CAM (or another method) heatmaps on the failures of an existing audit run.

Writes a new sub-folder of the run atomically: ``explain/``, or ``explain-<method>/`` when
``explain/`` exists already (runs are immutable: nothing existing is rewritten). The model is
re-read from the run's model folder and must have the run's weights (sha256); the images are
re-read from the run's data set and must not have changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditapp.commands.options import add_device_option, non_negative_int, positive_int
from auditapp.json_output import read_record, set_result, wants_json

if TYPE_CHECKING:
    import pandas as pd

    from audits.prepare import Prepared


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain", help="heatmaps on the failures of an audit run", description=__doc__
    )
    p.add_argument("run", help="audit run folder")
    p.add_argument(
        "--method",
        default="gradcam",
        help="gradcam (default), gradcam++, xgradcam, layercam, hirescam, eigencam, scorecam, ... "
        "(pytorch-grad-cam), layergradcam, integrated-gradients (captum)",
    )
    p.add_argument(
        "--layer",
        default=None,
        help="target layer (default: the card's target_layer, else the last convolution)",
    )
    p.add_argument(
        "--max", type=non_negative_int, default=500, help="explain at most N failures (default 500)"
    )
    p.add_argument(
        "--top-by-loss",
        action="store_true",
        help="over the cap, keep the N highest-loss failures "
        "(default: a sample spread over the confused pairs)",
    )
    p.add_argument(
        "--baseline",
        type=non_negative_int,
        default=50,
        help="correct images per class as a baseline (default 50)",
    )
    p.add_argument("--all", action="store_true", help="no cap: every failure")
    add_device_option(p)
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="images per batch (default 32 on CPU, 64 on CUDA)",
    )
    p.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow a pickled whole-model weights file (trusted files only)",
    )
    p.add_argument(
        "--allow-code-change",
        action="store_true",
        help="explain with model code that changed since the audit (warned, recorded as code_changed)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or sentences")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from audits.errors import AuditError
    from audits.prepare import reopen_audited
    from audits.store import add_to_run, load_run
    from explain.registry import canonical, method_class

    run = load_run(args.run)
    if run.kind != "audit":
        raise AuditError(
            f"{run.path}: a {run.kind} run; explain works on audit runs (python -m audits run)"
        )
    method = canonical(args.method)
    method_class(method)  # an unknown name fails before any loading
    audited = reopen_audited(
        run.audit.as_dict(),
        str(run.path),
        device=args.device,
        allow_pickle=args.allow_pickle,
        purpose="explain its failures",
        hint="audit it again",
        allow_code_change=args.allow_code_change,
    )
    name = folder_name(run.path, method)
    with add_to_run(run.path, name) as tmp:
        summary = _explain(audited, run.table, tmp, _options(args, method), not args.quiet, name)
        _record_code(tmp, summary, audited.code_changes)
    if wants_json(args):
        folder = run.path / name
        set_result(args, {**read_record(folder / "summary.json"), "folder": str(folder)})
    elif not args.quiet:
        print(
            f"{summary['method']} on layer {summary['layer']}: {summary['n_explained']} of "
            f"{summary['n_failures']} failures and {summary['n_baseline']} correct images explained"
        )
        for pair in summary["pairs"]:
            print(f"  {pair['sentence']}")
    print(run.path / name)
    return 0


def _record_code(out: Path, summary: dict[str, Any], changes: list[dict[str, Any]] | None) -> None:
    """Add to ``summary.json`` whether the model code changed since the audit (null: unknown)."""
    from audits.code_guard import code_record
    from audits.runs import write_record

    write_record(out, {**summary, **code_record(changes)}, "explain")


def folder_name(run_dir: Path, method: str) -> str:
    """``explain``, or ``explain-<method>`` when the run has an ``explain/`` already.

    "+" reads "p" so that gradcam++ gets ``explain-gradcampp``, not ``explain-gradcam``.
    """
    from audits.text import slug

    if not (run_dir / "explain").exists():
        return "explain"
    return f"explain-{slug(method.replace('+', 'p'))}"


def _options(args: argparse.Namespace, method: str) -> dict[str, Any]:
    return {
        "explain_method": method,
        "explain_layer": args.layer,
        "explain_max": None if args.all else args.max,
        "explain_top_by_loss": args.top_by_loss,
        "explain_baseline": args.baseline,
        "explain_batch_size": args.batch_size,
        "explain_overlays": not args.no_overlays,
    }


def _explain(
    audited: Prepared,
    table: pd.DataFrame,
    out: Path,
    options: dict[str, Any],
    progress: bool,
    name: str,
) -> dict[str, Any]:
    """Run the explain stage into ``out``; an image that moved since the run is an error."""
    from audits.errors import AuditError
    from explain.stage import run_explain

    image_set = audited.image_set
    summary = run_explain(
        audited.model,
        audited.card,
        audited.device,
        image_set,
        table,
        out,
        options=options,
        progress=progress,
        verify_files=True,
        folder=name,
    )
    if summary["skipped"]:
        first = summary["skipped"][0]
        raise AuditError(
            f"{image_set.root / first['path']}: {first['reason']} "
            f"({len(summary['skipped'])} image(s)); the data set moved since the run, so its "
            "heatmaps would not match the stored predictions"
        )
    return summary
