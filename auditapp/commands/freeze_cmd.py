"""``freeze``: record a held-out set's fingerprint, per-file hashes and labels, and every row's
metadata (groups, ROIs, other columns) beside it."""

from __future__ import annotations

import argparse

from auditapp.json_output import read_record, set_result, wants_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "freeze",
        help="freeze a held-out set (fingerprint + per-file hashes + metadata)",
        description=__doc__,
    )
    p.add_argument("data", help="ImageFolder or .csv/.parquet manifest")
    p.add_argument(
        "--force",
        action="store_true",
        help="freeze again even if the set moved or its metadata changed (a new held-out set)",
    )
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from audits.datasets import freeze, freeze_status, hash_files, load_dataset
    from audits.errors import AuditError

    image_set = load_dataset(args.data)
    if image_set.freeze_file.exists() and not args.force:
        status = freeze_status(image_set, hash_files(image_set))
        if status.metadata_changed:
            raise AuditError(
                f"{image_set.source}: metadata changed since it was frozen "
                f"({image_set.freeze_file.name}): {status.describe_changes()}; restore the values, "
                f"or freeze it again as a new held-out set: python -m audits freeze {image_set.source} --force"
            )
        if status.covers_metadata is False:
            print(
                f"already frozen, files and labels unchanged: {image_set.freeze_file} predates "
                "metadata coverage (groups, ROIs and other columns are not covered); re-freeze to "
                f"cover metadata: python -m audits freeze {image_set.source} --force"
            )
        else:
            print(f"already frozen and unchanged: {image_set.freeze_file}")
        status_word = "unchanged"
    else:
        record = freeze(image_set)
        status_word = "frozen"
        print(
            f"froze {record['n_images']} images and {len(record['metadata_columns'])} metadata "
            f"column(s), fingerprint {record['fingerprint'][:16]}…"
        )
    if wants_json(args):
        set_result(
            args,
            {
                **read_record(image_set.freeze_file),
                "freeze_file": str(image_set.freeze_file),
                "status": status_word,
            },
        )
    print(image_set.freeze_file)
    return 0
