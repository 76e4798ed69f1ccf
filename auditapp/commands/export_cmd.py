"""``export``: client exports of an audit run (PDF, HTML, JSON, CSV) with an integrity manifest."""

from __future__ import annotations

import argparse


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
        "--out", default="exports", help="folder for exports; the run's export goes in OUT/<run id>"
    )
    p.add_argument(
        "--store",
        default=None,
        help="audit store for run ids and related runs (default: the run's own folder's store)",
    )
    p.set_defaults(handler=main)


def _resolve(ref: str, store: str | None):
    from pathlib import Path

    from audits.store import DEFAULT_STORE, load_run

    # A folder needs no lookup; the comparison package (scipy, statsmodels) loads only for
    # run ids and name@version references.
    if Path(ref).expanduser().is_dir():
        return load_run(ref)
    from audits.compare import resolve_run

    return resolve_run(ref, store or DEFAULT_STORE)


def main(args: argparse.Namespace) -> int:
    from reports.export import export_run, file_stem, manifest_digest
    from reports.manifest import MANIFEST

    run = _resolve(args.run, args.store)
    folder = export_run(run, args.format, args.out, store=args.store)
    for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        print(f"  {name}")
    print(f"exported {file_stem(run)} ({run.run_id}); {MANIFEST} sha256 {manifest_digest(folder)}")
    print(folder)
    return 0
