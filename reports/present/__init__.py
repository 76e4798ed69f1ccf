"""The presentation layer shared by the dashboard and the exports: formatters, palette, charts,
plain-language sentences. It renders stored values and never recomputes a metric."""
