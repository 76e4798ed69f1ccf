"""``freeze``: record a held-out set's fingerprint and per-file hashes beside it."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "freeze", help="freeze a held-out set (fingerprint + per-file hashes)", description=__doc__
    )
    p.add_argument("data", help="ImageFolder or .csv/.parquet manifest")
    p.add_argument(
        "--force",
        action="store_true",
        help="freeze again even if the set moved (a new held-out set)",
    )
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from audits.datasets import check_frozen, freeze, hash_files, load_dataset

    image_set = load_dataset(args.data)
    if image_set.freeze_file.exists() and not args.force:
        check_frozen(image_set, hash_files(image_set))
        print(f"already frozen and unchanged: {image_set.freeze_file}")
    else:
        record = freeze(image_set)
        print(f"froze {record['n_images']} images, fingerprint {record['fingerprint'][:16]}…")
    print(image_set.freeze_file)
    return 0
