"""``export``: client exports of an audit run (PDF, HTML, JSON, CSV) with an integrity manifest."""

from __future__ import annotations

import argparse

from auditapp.commands.options import STORE_ENV, default_store
from auditapp.json_output import read_record, set_result, wants_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export an audit run as PDF, HTML, JSON and CSV with a sha256 manifest",
        description=__doc__,
    )
    p.add_argument(
        "run", help="audit run folder, run id in --store, or name@version (newest audit)"
    )
    p.add_argument(
        "--format",
        default="pdf,html,json,csv",
        help="comma-separated: pdf, html, json, csv, or all (default: all four)",
    )
    p.add_argument(
        "--out",
        default="exports",
        metavar="DIR",
        help="folder for exports; the run's export goes in OUT/<run id> (default ./exports)",
    )
    p.add_argument(
        "--store",
        default=None,
        metavar="DIR",
        help=f"audit store for run ids and related runs (default: a run folder's own store; "
        f"run ids are looked up in ${STORE_ENV} if set, else ./audit-store)",
    )
    p.set_defaults(handler=main)


def _resolve(ref: str, store: str | None):
    from pathlib import Path

    from audits.store import load_run

    # A folder needs no lookup; the comparison package (scipy, statsmodels) loads only for
    # run ids and name@version references.
    if Path(ref).expanduser().is_dir():
        return load_run(ref)
    from audits.compare import resolve_run

    return resolve_run(ref, store or default_store())


def main(args: argparse.Namespace) -> int:
    from reports.export import export_run, file_stem, manifest_digest
    from reports.manifest import MANIFEST

    run = _resolve(args.run, args.store)
    folder = export_run(run, args.format, args.out, store=args.store)
    if wants_json(args):
        set_result(
            args,
            {
                "folder": str(folder),
                "run_id": run.run_id,
                "manifest_sha256": manifest_digest(folder),
                "manifest": read_record(folder / MANIFEST),
            },
        )
        print(folder)
        return 0
    for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        print(f"  {name}")
    print(f"exported {file_stem(run)} ({run.run_id}); {MANIFEST} sha256 {manifest_digest(folder)}")
    print(folder)
    return 0
