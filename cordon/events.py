"""The one shared, versioned event schema that every Cordon role imports.

Every message on a Cordon Kafka topic is one of the frozen pydantic models below, serialised as UTF-8 JSON by
:func:`encode` and read back by :func:`decode`. Each message carries ``type`` (which model) and
``schema_version``; a consumer that meets a version it does not know gets :class:`SchemaVersionError` (never a
half-parsed object), so it can park the message on the dead-letter topic.

JSON was chosen over a binary format because reads are small (the plate crop, a few kB of JPEG, dominates and
is base64-encoded either way), operators and auditors can read the topics with standard tools, and the same
bytes are served by the API unchanged.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from cordon.errors import CordonError

__all__ = [
    "SCHEMA_VERSION",
    "BBox",
    "CameraState",
    "CameraStatus",
    "Direction",
    "Event",
    "EventDecodeError",
    "Heartbeat",
    "PlateRead",
    "SchemaVersionError",
    "decode",
    "encode",
    "utc_now",
]

SCHEMA_VERSION = 1
"""The schema version this code writes and the only one it reads."""

Direction: TypeAlias = Literal["in", "out"]
"""Direction of travel relative to the borough: ``in`` (entering) or ``out`` (leaving)."""

CameraState: TypeAlias = Literal["up", "down", "reconnecting"]


class EventDecodeError(CordonError, ValueError):
    """A message could not be decoded into a Cordon event (bad JSON, unknown type or invalid field)."""


class SchemaVersionError(EventDecodeError):
    """A message carries a ``schema_version`` this code does not read."""


def _to_utc_ms(value: datetime) -> datetime:
    """Convert an aware datetime to UTC and truncate it to whole milliseconds."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


UtcMillis = Annotated[AwareDatetime, AfterValidator(_to_utc_ms)]
"""A timezone-aware timestamp, stored in UTC with millisecond precision."""


def utc_now() -> datetime:
    """Return the current time in UTC, truncated to milliseconds."""
    return _to_utc_ms(datetime.now(UTC))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")


class BBox(_Frozen):
    """An axis-aligned box in image pixels, ``(x1, y1)`` top-left and ``(x2, y2)`` bottom-right."""

    x1: int = Field(ge=0, description="Left edge, pixels.")
    y1: int = Field(ge=0, description="Top edge, pixels.")
    x2: int = Field(ge=0, description="Right edge, pixels.")
    y2: int = Field(ge=0, description="Bottom edge, pixels.")

    @model_validator(mode="after")
    def verify_ordered(self) -> BBox:
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(f"bbox corners out of order: ({self.x1},{self.y1})-({self.x2},{self.y2})")
        return self


class PlateRead(_Frozen):
    """One vehicle pass seen by one camera: the best-voted plate of a finished track."""

    type: Literal["plate_read"] = "plate_read"
    schema_version: Literal[1] = 1
    read_id: uuid.UUID = Field(
        description="Unique id of this read, fixed at the edge; consumers dedupe on it."
    )
    camera_id: str = Field(min_length=1, max_length=64, description="Id of the camera that saw the plate.")
    edge_box_id: str = Field(min_length=1, max_length=64, description="Id of the edge box that read it.")
    captured_at: UtcMillis = Field(description="When the best frame of the pass was captured (UTC, ms).")
    plate_raw: str = Field(max_length=16, description="Plate text as the OCR voted it, before correction.")
    plate: str = Field(
        min_length=1, max_length=10, pattern=r"^[A-Z0-9]+$", description="Normalised plate: A-Z and 0-9 only."
    )
    plate_format: str | None = Field(
        default=None, description="UK format the plate matched (current, prefix, suffix, ...), None if none."
    )
    confidence: float = Field(ge=0.0, le=1.0, description="Overall read confidence, 0..1.")
    char_confidences: tuple[float, ...] | None = Field(
        default=None, description="Per-character confidence of `plate`, 0..1 each, if the OCR gives them."
    )
    bbox: BBox = Field(description="Plate box in the best frame, pixels.")
    direction: Direction | None = Field(default=None, description="Direction of travel, if known.")
    frames: int = Field(default=1, ge=1, description="Number of frames whose detections were voted.")
    crop_jpeg: bytes | None = Field(default=None, description="Plate crop as JPEG bytes (base64 in JSON).")
    crop_ref: str | None = Field(default=None, max_length=512, description="Reference to a stored crop.")

    @model_validator(mode="after")
    def verify_char_confidences(self) -> PlateRead:
        if self.char_confidences is not None:
            if len(self.char_confidences) != len(self.plate):
                raise ValueError(
                    f"char_confidences has {len(self.char_confidences)} values for plate {self.plate!r}"
                )
            if any(not 0.0 <= c <= 1.0 for c in self.char_confidences):
                raise ValueError("char_confidences values must be within 0..1")
        return self


class CameraStatus(_Frozen):
    """Health of one camera stream on an edge box."""

    camera_id: str = Field(min_length=1, max_length=64)
    state: CameraState = Field(description="up, down or reconnecting.")
    fps: float = Field(ge=0.0, description="Frames decoded per second over the last interval.")
    processed_fps: float = Field(default=0.0, ge=0.0, description="Frames recognised per second.")
    frames_dropped: int = Field(
        default=0, ge=0, description="Frames replaced unread since start (newest wins)."
    )
    reconnects: int = Field(default=0, ge=0, description="Reconnect attempts since start.")
    last_frame_at: UtcMillis | None = Field(default=None, description="Capture time of the newest frame.")
    down_since: UtcMillis | None = Field(default=None, description="When the stream was lost, if not up.")


class Heartbeat(_Frozen):
    """Periodic health report of an edge box."""

    type: Literal["heartbeat"] = "heartbeat"
    schema_version: Literal[1] = 1
    heartbeat_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    edge_box_id: str = Field(min_length=1, max_length=64)
    sent_at: UtcMillis
    cameras: tuple[CameraStatus, ...] = ()
    queue_depth: int = Field(default=0, ge=0, description="Frames waiting for recognition.")
    spool_depth: int = Field(default=0, ge=0, description="Reads spooled and not yet acknowledged.")
    spool_dropped: int = Field(default=0, ge=0, description="Reads dropped because the spool was full.")
    clock_offset_s: float | None = Field(
        default=None, description="Box clock minus reference clock, seconds."
    )
    software_version: str = Field(default="", max_length=32)


Event: TypeAlias = Annotated[PlateRead | Heartbeat, Field(discriminator="type")]
_EVENT_ADAPTER: TypeAdapter[PlateRead | Heartbeat] = TypeAdapter(Event)


def encode(event: PlateRead | Heartbeat) -> bytes:
    """Serialise an event as UTF-8 JSON bytes, the wire format of every Cordon topic."""
    return event.model_dump_json().encode("utf-8")


def decode(data: bytes | str) -> PlateRead | Heartbeat:
    """Parse wire bytes into an event.

    Raises
    ------
    SchemaVersionError
        The message names a ``schema_version`` other than :data:`SCHEMA_VERSION`.
    EventDecodeError
        The bytes are not JSON, the ``type`` is unknown, or a field is invalid; the message names the field.
    """
    try:
        return _EVENT_ADAPTER.validate_json(data)
    except ValidationError as exc:
        error = exc
    # Slow path, only for bad input: work out the clearest reason.
    try:
        raw: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventDecodeError(f"message is not UTF-8 JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EventDecodeError(f"message must be a JSON object, got {type(raw).__name__}")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"schema_version={version!r} is not supported (this code reads version {SCHEMA_VERSION})"
        )
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<message>'}: {err['msg']} (got {err.get('input')!r:.60})"
        for err in error.errors()
    )
    raise EventDecodeError(f"invalid {raw.get('type', 'event')!s} message: {problems}") from error
