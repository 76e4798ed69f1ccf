"""Client exports of a stored audit run: PDF, self-contained HTML, JSON (with a published
JSON Schema), CSV, and an integrity manifest that ``python -m audits verify`` checks.

Everything is read from the run folder (and its related drift run and comparison); nothing is
recomputed, so every format shows the same numbers as the dashboard. Entry point:
``reports.export.export_run(run_dir, formats, out_dir) -> Path``.
"""

FORMATS = ("pdf", "html", "json", "csv")
