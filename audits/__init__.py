"""Model audits for PyTorch image classifiers: the core (domain) package (docs/ARCHITECTURE.md)."""

from audits.version import __version__

__all__ = ["__version__"]
