"""Model audits for PyTorch image classifiers: the domain package (see docs/ARCHITECTURE.md)."""

__version__ = "0.1.0"
