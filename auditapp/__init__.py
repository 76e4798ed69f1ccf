"""The application layer: the command line, the pipelines that run the stages, the demo builder.

It sits on top of every other package (``audits`` core, ``explain``, ``reports``) and calls
their Python functions; nothing below imports it (see docs/ARCHITECTURE.md).
"""
