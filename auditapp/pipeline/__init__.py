"""Pipelines: load → infer → analyse → store, one module per kind of run."""
