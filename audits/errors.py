"""The one exception type users see: a single line naming the file or field and what to do."""


class AuditError(Exception):
    """A user-facing failure. The CLI prints its message on one line and exits non-zero."""
