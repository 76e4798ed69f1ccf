"""``relabel``: apply the expert decisions in a corrections file to a frozen held-out set, as a
new frozen manifest whose freeze record names the parent and the corrections (its lineage).

The parent is never edited. The decision in force for each image is the last one in the file:
keep leaves the row, relabel changes its label, exclude drops it. The new manifest keeps every
column and the parent's relative image paths; outside the parent's folder the images are
hard-linked (copied across file systems) to those paths. The last line of stdout is the new
manifest's path.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from auditapp.json_output import set_result, wants_json

if TYPE_CHECKING:
    from audits.relabel import RelabelResult


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "relabel",
        help="apply a corrections file to a frozen set as a new frozen version",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", metavar="DATA", help="the frozen set: ImageFolder or manifest")
    p.add_argument(
        "--corrections",
        metavar="FILE",
        default=None,
        help="the decisions (default: <manifest stem>.corrections.csv beside DATA, or "
        "corrections.csv in an ImageFolder root)",
    )
    p.add_argument(
        "--out", metavar="NEW_MANIFEST", required=True, help="the new manifest (.csv or .parquet)"
    )
    p.add_argument(
        "--model",
        metavar="DIR",
        default=None,
        help="a model folder whose classes a relabel may name (default: the labels DATA uses)",
    )
    p.add_argument("--force", action="store_true", help="replace NEW_MANIFEST if it exists")
    p.set_defaults(handler=main)


def describe(result: RelabelResult) -> list[str]:
    """The human summary of a relabel (lines for stdout)."""
    lineage = result.lineage
    record = result.record
    reviewers = lineage["reviewers"]
    lines = [
        f"applied {lineage['n_relabelled']} relabel(s), {lineage['n_excluded']} exclusion(s) "
        f"and {lineage['n_kept']} keep(s) by {len(reviewers)} reviewer(s) "
        f"({', '.join(reviewers) or 'unnamed'})",
        f"new set: {record['n_images']} of {lineage['parent_n_images']} images, fingerprint "
        f"{record['fingerprint'][:16]}… (parent {lineage['parent_fingerprint'][:16]}…)",
    ]
    if result.n_linked or result.n_copied:
        lines.append(
            f"images: {result.n_linked} hard-linked, {result.n_copied} copied "
            "beside the new manifest (same files, same relative paths)"
        )
    return lines


def main(args: argparse.Namespace) -> int:
    from audits.relabel import relabel

    classes = None
    if args.model:
        from audits.model_card import load_card

        classes = list(load_card(args.model).classes)
    result = relabel(args.data, args.out, args.corrections, classes=classes, force=args.force)
    for line in describe(result):
        print(line)
    if wants_json(args):
        record = result.record
        set_result(
            args,
            {
                "manifest": str(result.manifest),
                "fingerprint": record["fingerprint"],
                "n_images": record["n_images"],
                "frozen_at": record["frozen_at"],
                "lineage": record["lineage"],
                "n_linked": result.n_linked,
                "n_copied": result.n_copied,
            },
        )
    print(result.manifest)
    return 0
