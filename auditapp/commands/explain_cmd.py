"""``explain``: Grad-CAM (or another method) heatmaps on the failures of an existing audit run.

Writes a new sub-folder of the run atomically: ``explain/``, or ``explain-<method>/`` when
``explain/`` exists already (runs are immutable: nothing existing is rewritten). The model is
re-read from the run's model folder and must have the run's weights (sha256); the images are
re-read from the run's data set and must not have changed.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain", help="heatmaps on the failures of an audit run", description=__doc__
    )
    p.add_argument("run", help="audit run folder")
    p.add_argument("--method", default="gradcam", help="gradcam (default), gradcam++, xgradcam, layercam, hirescam, "
                   "eigencam, scorecam, ... (pytorch-grad-cam), layergradcam, integrated-gradients (captum)")  # fmt: skip
    p.add_argument(
        "--layer",
        default=None,
        help="target layer (default: the card's target_layer, else the last convolution)",
    )
    p.add_argument("--max", type=int, default=500, help="explain at most N failures (default 500)")
    p.add_argument(
        "--top-by-loss",
        action="store_true",
        help="over the cap, keep the N highest-loss failures (default: a sample spread over the confused pairs)",
    )
    p.add_argument(
        "--baseline",
        type=int,
        default=50,
        help="correct images per class as a baseline (default 50)",
    )
    p.add_argument("--all", action="store_true", help="no cap: every failure")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per batch (default 32 on CPU, 64 on CUDA)",
    )
    p.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="allow a pickled whole-model weights file (trusted files only)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or sentences")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from audits.datasets import load_dataset
    from audits.errors import AuditError
    from audits.inference import resolve_device
    from audits.model_card import load_card, load_model, weights_sha256
    from audits.store import add_to_run, load_run
    from explain.registry import canonical, method_class
    from explain.stage import run_explain

    run = load_run(args.run)
    if run.kind != "audit":
        raise AuditError(
            f"{run.path}: a {run.kind} run; explain works on audit runs (python -m audits run)"
        )
    method = canonical(args.method)
    method_class(method)  # an unknown name fails before any loading
    model_meta = run.meta.get("model", {})
    if not model_meta.get("dir"):
        raise AuditError(f"{run.path}: audit.json records no model folder")
    card = load_card(model_meta["dir"])
    sha = weights_sha256(card.weights)
    if sha != model_meta.get("weights_sha256"):
        raise AuditError(
            f"{card.weights}: weights differ from the run's (sha256 {sha[:12]}… vs {str(model_meta.get('weights_sha256'))[:12]}…); "
            "explain needs the exact model that was audited: restore its weights or audit the new ones"
        )
    if card.classes != model_meta.get("classes", card.classes):
        raise AuditError(
            f"{card.card_path}: classes differ from the run's; restore the card that was audited"
        )
    data_path = run.meta.get("dataset", {}).get("path")
    if not data_path:
        raise AuditError(f"{run.path}: audit.json records no data set path")
    image_set = load_dataset(data_path)
    device = resolve_device(args.device)
    model = load_model(card, device, allow_pickle=args.allow_pickle)

    name = "explain" if not (run.path / "explain").exists() else f"explain-{_slug(method)}"
    options = {
        "explain_method": method,
        "explain_layer": args.layer,
        "explain_max": None if args.all else args.max,
        "explain_top_by_loss": args.top_by_loss,
        "explain_baseline": args.baseline,
        "explain_batch_size": args.batch_size,
        "explain_overlays": not args.no_overlays,
    }
    with add_to_run(run.path, name) as tmp:
        summary = run_explain(
            model, card, device, image_set, run.table, tmp,
            options=options, progress=not args.quiet, verify_files=True, folder=name,
        )  # fmt: skip
        if summary["skipped"]:
            first = summary["skipped"][0]
            raise AuditError(
                f"{image_set.root / first['path']}: {first['reason']} ({len(summary['skipped'])} image(s)); "
                "the data set moved since the run, so its heatmaps would not match the stored predictions"
            )
    if not args.quiet:
        print(
            f"{summary['method']} on layer {summary['layer']}: {summary['n_explained']} of {summary['n_failures']} "
            f"failures and {summary['n_baseline']} correct images explained"
        )
        for pair in summary["pairs"]:
            print(f"  {pair['sentence']}")
    print(run.path / name)
    return 0


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else {"+": "p"}.get(ch, "-") for ch in text)
