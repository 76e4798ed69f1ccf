"""What every stored record shares: the base model, the schema version and the common blocks."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag

#: Version of the stored files' schema; bumped only with the external contract.
SCHEMA_VERSION = 1
#: ``created``: UTC, to the second.
CREATED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
CREATED_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"

#: A statistic that is null when undefined (NaN is stored as null).
Num = float | None


class Part(BaseModel):
    """A block of a stored JSON file: read-only, strict types, unknown keys kept."""

    model_config = ConfigDict(
        extra="allow", frozen=True, strict=True, populate_by_name=True, serialize_by_alias=True
    )
    # The dict this record was validated from (its key order is the file's): see ``as_dict``.
    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Validate plain JSON values; the record remembers them for ``as_dict``."""
        record = cls.model_validate(data)
        record._raw = data
        return record

    def as_dict(self) -> dict[str, Any]:
        """The record as stored: the dict it was read from (field order kept), else a dump."""
        if self._raw is not None:
            return self._raw
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy._raw = None  # the stored dict no longer describes the copy
        return copy


class StageError(Part):
    """An analysis that failed: ``{"error": "..."}`` stored instead of its result."""

    error: str


def _block_tag(value: Any) -> str:
    if isinstance(value, StageError) or (isinstance(value, dict) and "error" in value):
        return "<error>"
    return "<result>"


def stage(model: type[Part]) -> Any:
    """``model``, or the ``StageError`` a failed analysis stored instead."""
    return Annotated[
        Annotated[model, Tag("<result>")] | Annotated[StageError, Tag("<error>")],
        Discriminator(_block_tag),
    ]


class Auditor(Part):
    """This tool's version and git commit when the file was written."""

    version: str
    commit: str


class ModelInput(Part):
    size: list[int]
    channels: int


class ModelIdentity(Part):
    """A model version as far as a record names it (every field may be missing)."""

    name: str | None = None
    version: str | None = None
    weights_sha256: str | None = None
    code_commit: str | None = None
    dir: str | None = None


class ModelInfo(Part):
    """The audited model: DESIGN.md's identity fields, then the card's details."""

    name: str
    version: str
    weights_sha256: str
    code_commit: str
    dir: str | None = None
    architecture: str | None = None
    classes: list[str] | None = None
    target_layer: str | None = None
    input: ModelInput | None = None
    training_manifest: str | None = None


class DecodeInfo(Part):
    """Where the images were decoded (``--decode``; ``audits.device_decode``)."""

    #: ``cpu``: Pillow in the reading workers; ``device``: JPEGs by ``torchvision.io.decode_jpeg``
    #: on the inference device (nvJPEG on CUDA), everything else by Pillow.
    path: Literal["cpu", "device"]
    requested: str | None = None
    why: str | None = None
    device_images: int | None = None
    pillow_images: int | None = None


class DeviceInfo(Part):
    """What ran the inference."""

    type: str | None = None
    name: str | None = None
    torch: str | None = None
    threads: int | None = None
    amp: str | None = None
    decode: DecodeInfo | None = None


class Skipped(Part):
    """An image that could not be read, and why."""

    path: str
    reason: str


Created = Annotated[str, Field(pattern=CREATED_PATTERN)]
DataKind = Literal["manifest", "imagefolder"]
