"""The run model: the shape of every file stored in a run folder (see docs/ARCHITECTURE.md)."""

#: Version of the stored files' schema; bumped only with the external contract.
SCHEMA_VERSION = 1
