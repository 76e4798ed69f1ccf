"""``run``: audit a model on a held-out set."""

from __future__ import annotations

import argparse

from auditapp.commands.engine_options import add_engine_options, engine_spec
from auditapp.commands.mlflow_options import add_mlflow_options, log_stored, mlflow_target
from auditapp.commands.options import add_inference_options, non_negative_int
from auditapp.json_output import read_record, set_result, wants_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="audit a model on a labelled held-out set", description=__doc__)
    p.add_argument("--model", required=True, help="model folder holding model.toml")
    p.add_argument(
        "--data", required=True, help="held-out set: ImageFolder or .csv/.parquet manifest"
    )
    add_inference_options(p)
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow a pickled whole-model weights file (runs code in it: trusted files only)",
    )
    p.add_argument("--no-explain", action="store_true", help="skip Grad-CAM on failures")
    p.add_argument(
        "--explain-method",
        default="gradcam",
        help="attribution method (gradcam, gradcam++, xgradcam, layercam, hirescam, eigencam, integrated-gradients, …)",
    )
    p.add_argument(
        "--explain-max",
        type=non_negative_int,
        default=500,
        help="explain at most N failures (default 500; 0 for all)",
    )
    p.add_argument(
        "--explain-top-by-loss",
        action="store_true",
        help="over the cap, keep the highest-loss failures (default: a sample spread over the confused pairs)",
    )
    p.add_argument(
        "--explain-baseline",
        type=non_negative_int,
        default=50,
        help="correct images per class explained as a baseline (default 50)",
    )
    p.add_argument(
        "--no-integrity", action="store_true", help="skip leakage, suspect labels and slices"
    )
    p.add_argument(
        "--no-map", action="store_true", help="skip the 2-D embedding map (UMAP, else PCA)"
    )
    p.add_argument(
        "--map",
        dest="map_method",
        choices=("pca", "umap"),
        default="pca",
        help="embedding map method (default pca; umap needs umap-learn and adds its compile time)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_engine_options(p)
    add_mlflow_options(p)
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from auditapp.pipeline.audit import run_audit
    from auditapp.summary import print_summary
    from audits.store import load_run

    skip = tuple(
        k
        for k, off in (
            ("explain", args.no_explain),
            ("integrity", args.no_integrity),
            ("embedding_map", args.no_map),
        )
        if off
    )
    if "explain" not in skip:
        check_explain_method(args.explain_method)
    mlflow = mlflow_target(args)  # checked before the audit: a typo costs seconds
    engine = engine_spec(args)
    path = run_audit(
        args.model,
        args.data,
        store=args.store,
        device=args.device,
        batch_size=args.batch_size,
        workers=args.workers,
        allow_pickle=args.allow_pickle,
        progress=not args.quiet,
        skip=skip,
        engine=engine,
        options={
            "explain_method": args.explain_method,
            "explain_max": None if args.explain_max == 0 else args.explain_max,
            "explain_top_by_loss": args.explain_top_by_loss,
            "explain_baseline": args.explain_baseline,
            "map_method": args.map_method,
        },
    )
    log_stored(mlflow, path, args.store)
    if wants_json(args):
        set_result(args, {**read_record(path / "audit.json"), "run": str(path)})
    elif not args.quiet:
        print_summary(load_run(path))
    print(path)
    return 0


def check_explain_method(name: str) -> None:
    """Refuse an unknown ``--explain-method`` before any work, listing the known ones.

    Checked here rather than as an argparse choice so that ``--help`` does not import the
    attribution libraries.
    """
    from audits.errors import AuditError
    from explain.registry import available_methods, method_class

    try:
        method_class(name)
    except AuditError:
        raise AuditError(
            f"--explain-method {name!r}: unknown method; choose one of: "
            f"{', '.join(available_methods())} (or --no-explain)"
        ) from None
