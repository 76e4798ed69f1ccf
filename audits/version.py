"""The auditor's version, in its own module so that no lower layer imports a facade."""

__version__ = "0.1.0"
