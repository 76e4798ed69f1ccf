"""``compare``: is model version B better than A overall, without a worse class, and no slower?

The last line of stdout is the verdict, ``promote: ...`` or ``hold: ...``; the exit code is
0 for promote, 1 for hold (human investigation), 2 for an error, so a training pipeline can
gate on it. The comparison is stored as a folder in the store.
"""

from __future__ import annotations

import argparse

from auditapp.commands.options import (
    STORE_ENV,
    add_device_option,
    default_store,
    non_negative_int,
    positive_int,
)
from auditapp.json_output import set_result, wants_json


def _points_or_off(text: str) -> float | None:
    if text.strip().lower() in {"off", "none", "inf"}:
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of points or 'off', got '{text}'"
        ) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two audit runs (version A vs B) and gate the release",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "run_a",
        metavar="RUN_A",
        help="the current version's audit run: folder, run id in --store, or name@version",
    )
    p.add_argument(
        "run_b", metavar="RUN_B", help="the candidate version's audit run (same held-out set)"
    )
    p.add_argument(
        "--store",
        default=None,
        metavar="DIR",
        help=f"store to look run ids up in and to save the comparison to (default: look up in "
        f"${STORE_ENV} if set, else ./audit-store; save beside RUN_B)",
    )
    p.add_argument(
        "--class-map",
        default=None,
        metavar="FILE",
        help="renames from RUN_A's class names to RUN_B's: CSV (old,new) or TOML (old = \"new\")",
    )
    _add_threshold_flags(p.add_argument_group("decision thresholds"))
    _add_speed_flags(p.add_argument_group("speed measurement"))
    p.add_argument(
        "--across-corrections",
        action="store_true",
        help="compare runs on two versions of one held-out set (one made from the other by "
        "relabel) on the images both share with the same label",
    )
    p.add_argument("--no-save", action="store_true", help="do not store the comparison folder")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.set_defaults(handler=main)


def _add_threshold_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level of every test and 1 - CI level (default 0.05)",
    )
    g.add_argument(
        "--min-gain",
        type=float,
        default=0.0,
        metavar="POINTS",
        help="smallest overall gain in points that counts as better (default 0)",
    )
    g.add_argument(
        "--max-class-drop",
        type=_points_or_off,
        default=5.0,
        metavar="POINTS",
        help="hold when a class's recall falls by this many points or more with unadjusted p < alpha, "
        "even if not significant after adjusting across classes (default 5; 'off' disables)",
    )
    g.add_argument(
        "--tolerance",
        type=float,
        default=0.05,
        help="allowed slow-down as a fraction for latency and throughput (default 0.05)",
    )
    g.add_argument(
        "--primary",
        choices=("accuracy", "balanced_accuracy"),
        default="accuracy",
        help="the overall metric that must improve (default accuracy)",
    )


def _add_speed_flags(s: argparse._ArgumentGroup) -> None:
    s.add_argument(
        "--no-speed",
        action="store_true",
        help="skip timing the models (the verdict says speed was not checked)",
    )
    add_device_option(
        s, help="auto | cpu | cuda | cuda:N | mps: where both models are timed (default auto)"
    )
    s.add_argument(
        "--speed-images", type=positive_int, default=64, help="held-out images timed (default 64)"
    )
    s.add_argument(
        "--speed-batch-size",
        type=positive_int,
        default=32,
        help="batch size of the throughput measurement (default 32)",
    )
    s.add_argument(
        "--speed-repeats",
        type=positive_int,
        default=5,
        help="repeats of the interleaved timing; medians are reported (default 5)",
    )
    s.add_argument(
        "--speed-threads",
        type=non_negative_int,
        default=1,
        help="CPU threads while timing (default 1: reproducible on a shared machine; 0 keeps torch's default)",
    )
    s.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow pickled whole-model weights when rebuilding the models (trusted files only)",
    )
    s.add_argument(
        "--allow-code-change",
        action="store_true",
        help="time a model whose code changed since its audit (warned, recorded as code_changed)",
    )


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from auditapp.compare_view import print_comparison
    from audits.compare import (
        PROMOTE,
        Thresholds,
        compare_runs,
        load_class_map,
        resolve_run,
        save_comparison,
    )

    thresholds = Thresholds(
        alpha=args.alpha,
        min_gain=args.min_gain,
        max_class_drop=args.max_class_drop,
        tolerance=args.tolerance,
        primary=args.primary,
    )
    lookup = Path(args.store or default_store())
    run_a = resolve_run(args.run_a, lookup)
    run_b = resolve_run(args.run_b, lookup, same_set_as=run_a)
    class_map = load_class_map(args.class_map) if args.class_map else None
    doc, aligned = compare_runs(
        run_a,
        run_b,
        thresholds=thresholds,
        class_map=class_map,
        measure=not args.no_speed,
        speed_options={
            "device": args.device,
            "n_images": args.speed_images,
            "batch_size": args.speed_batch_size,
            "repeats": args.speed_repeats,
            "threads": args.speed_threads or None,
            "allow_pickle": args.allow_pickle,
            "allow_code_change": args.allow_code_change,
        },
        across_corrections=args.across_corrections,
    )
    if (doc.get("speed") or {}).get("code_changed"):
        doc["notes"].append(
            "model code changed since the audit; timed anyway (--allow-code-change)"
        )
    path = None
    if not args.no_save:
        store = Path(args.store) if args.store else run_b.path.parent
        path = save_comparison(doc, aligned, store)
        doc["notes"].append(f"stored in {path}")
    if wants_json(args):
        # comparison.json's fields (the verdict and its one-line summary among them).
        set_result(args, {**doc, "comparison": None if path is None else str(path)})
    elif not args.quiet:
        # The notes say when the sets are two versions of one set.
        print_comparison(doc, stored=None if path is None else str(path))
    # The verdict is the last line, printed plainly so no terminal width wraps it.
    print(doc["summary"], flush=True)
    return 0 if doc["verdict"] == PROMOTE else 1
