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

import base64
import functools
import hashlib
import inspect
import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeAlias

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
    "AnyEvent",
    "BBox",
    "CameraRecord",
    "CameraState",
    "CameraStatus",
    "DeadLetter",
    "Direction",
    "Event",
    "EventDecodeError",
    "Heartbeat",
    "HotlistChunk",
    "HotlistEntry",
    "HotlistHit",
    "MatchKind",
    "PlateRead",
    "SchemaVersionError",
    "decode",
    "encode",
    "screen_plate_reads",
    "screen_plate_reads_active",
    "utc_now",
]

SCHEMA_VERSION = 1
"""The schema version this code writes and the only one it reads."""

Direction: TypeAlias = Literal["in", "out"]
"""Direction of travel relative to the borough: ``in`` (entering) or ``out`` (leaving)."""

CameraState: TypeAlias = Literal["up", "down", "reconnecting"]

MatchKind: TypeAlias = Literal["exact", "confusion", "edit"]
"""How a read matched a hotlist plate: identical; equal once OCR-confusable characters (O/0, I/1, B/8, ...)
are treated as one; or one substitution, insertion or deletion away (after that)."""


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


class HotlistEntry(_Frozen):
    """One plate on a hotlist, as the control room needs to act on it."""

    entry_id: str = Field(
        min_length=1, max_length=128, description="Stable id of the entry: '<hotlist>:<plate>' unless given."
    )
    plate: str = Field(min_length=1, max_length=10, pattern=r"^[A-Z0-9]+$", description="Normalised plate.")
    hotlist: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="List name (pnc-stolen...).",
    )
    source: str = Field(default="", max_length=64, description="Who supplies the list (PNC, local intel...).")
    category: str = Field(min_length=1, max_length=64, description="Category (stolen, no-insurance...).")
    priority: int = Field(ge=1, le=4, description="1 (most urgent) to 4.")
    action: str = Field(min_length=1, max_length=500, description="What the operator must do (or not do).")
    valid_from: UtcMillis | None = Field(default=None, description="Entry matches from this time (UTC).")
    expires_at: UtcMillis | None = Field(default=None, description="Entry stops matching at this time (UTC).")
    information: str = Field(default="", max_length=2000, description="Free-text information marker.")
    added_by: str = Field(default="", max_length=128, description="Who added the entry.")

    @model_validator(mode="after")
    def verify_validity_window(self) -> HotlistEntry:
        if self.valid_from and self.expires_at and self.expires_at <= self.valid_from:
            raise ValueError(f"expires_at {self.expires_at} is not after valid_from {self.valid_from}")
        return self

    def active_at(self, when: datetime) -> bool:
        """Whether the entry matches reads captured at ``when``."""
        if self.valid_from is not None and when < self.valid_from:
            return False
        return self.expires_at is None or when < self.expires_at


class HotlistChunk(_Frozen):
    """One chunk of a complete hotlist version, as published on ``cordon.hotlists``.

    A version is the whole active set of entries. It is published as ``chunk_count`` chunks; a matcher
    switches to a version only once it holds every chunk and the digest of all entries matches ``sha256``.
    """

    type: Literal["hotlist_chunk"] = "hotlist_chunk"
    schema_version: Literal[1] = 1
    version: int = Field(ge=1, description="Hotlist version, increasing by one per load.")
    chunk_index: int = Field(ge=0)
    chunk_count: int = Field(ge=1)
    entry_count: int = Field(ge=0, description="Entries in the whole version.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Digest of the whole version's entries.")
    published_at: UtcMillis
    published_by: str = Field(default="", max_length=128)
    entries: tuple[HotlistEntry, ...] = ()

    @model_validator(mode="after")
    def verify_index(self) -> HotlistChunk:
        if self.chunk_index >= self.chunk_count:
            raise ValueError(f"chunk_index {self.chunk_index} is not below chunk_count {self.chunk_count}")
        return self


class HotlistHit(_Frozen):
    """A read that matched a hotlist entry: an alert (or a further sighting of one) for the control room."""

    type: Literal["hotlist_hit"] = "hotlist_hit"
    schema_version: Literal[1] = 1
    hit_id: uuid.UUID = Field(description="UUIDv5 of read id + entry id: a replayed read makes the same hit.")
    alert_id: uuid.UUID = Field(description="Id of the alert this hit raises or updates (de-duplication).")
    sighting: int = Field(ge=1, description="1 for the read that raised the alert; 2, 3, ... for updates.")
    read_id: uuid.UUID
    camera_id: str = Field(min_length=1, max_length=64)
    captured_at: UtcMillis
    plate_read: str = Field(description="Plate as read (normalised).")
    confidence: float = Field(ge=0.0, le=1.0, description="Read confidence, 0..1.")
    direction: Direction | None = None
    entry: HotlistEntry
    hotlist_version: int = Field(ge=1)
    match_kind: MatchKind
    match_score: float = Field(ge=0.0, le=1.0, description="1 for exact; lower for fuzzy matches.")
    priority: int = Field(ge=1, le=4, description="The entry's priority, lowered for weak fuzzy hits.")
    matched_at: UtcMillis
    crop_jpeg: bytes | None = None


class DeadLetter(_Frozen):
    """A message a consumer could not process, parked on ``cordon.dlq`` with the reason."""

    type: Literal["dead_letter"] = "dead_letter"
    schema_version: Literal[1] = 1
    source_topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: bytes | None = None
    value: bytes | None = None
    reason: str = Field(max_length=4000)
    consumer: str = Field(max_length=128, description="Which service parked it.")
    parked_at: UtcMillis


class CameraRecord(_Frozen):
    """A camera's registry entry as the API publishes it on ``cordon.cameras`` (compacted, keyed by id).

    The matchers follow the topic to decide which cameras cover arterial routes; ``removed`` retires a camera.
    """

    type: Literal["camera_record"] = "camera_record"
    schema_version: Literal[1] = 1
    camera_id: str = Field(min_length=1, max_length=64, description="Camera id, as in PlateRead.camera_id.")
    name: str = Field(default="", max_length=200)
    latitude: float | None = Field(default=None, ge=-90.0, le=90.0, description="WGS84 latitude, degrees.")
    longitude: float | None = Field(default=None, ge=-180.0, le=180.0, description="WGS84 longitude.")
    road: str = Field(default="", max_length=128, description="Road name or number, e.g. A580.")
    bearing_deg: float | None = Field(default=None, ge=0.0, lt=360.0, description="Direction it faces.")
    arterial: bool = Field(default=False, description="Covers a main arterial route into/out of the borough.")
    removed: bool = Field(default=False, description="The camera was deleted from the registry.")
    updated_at: UtcMillis
    updated_by: str = Field(default="", max_length=64)


AnyEvent: TypeAlias = PlateRead | Heartbeat | HotlistChunk | HotlistHit | DeadLetter | CameraRecord
Event: TypeAlias = Annotated[AnyEvent, Field(discriminator="type")]
_EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(Event)


def encode(event: AnyEvent) -> bytes:
    """Serialise an event as UTF-8 JSON bytes, the wire format of every Cordon topic."""
    return event.model_dump_json().encode("utf-8")


def decode(data: bytes | str) -> AnyEvent:
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


# --- A fast, strict screen of plate reads -------------------------------------------------------------------
#
# Decoding a PlateRead with pydantic costs about 6 us, most of which a stream consumer does not need for the
# vast majority of reads that match nothing. The screen below recognises, with one regular expression, a
# message in exactly the form encode() writes, and checks every rule of PlateRead on it (types, lengths,
# patterns, ranges, the validators), so that whatever it accepts, decode() accepts too, with the same plate
# and confidence. Anything else (another key order, escapes in strings, other number or date spellings,
# invalid values) is not screened, and must be decoded to find out; the screen never rejects a message.
# It is written against the PlateRead and BBox classes below, and switches itself off (every message then
# needs decoding) if their source changes, until it is checked against the new definition and re-pinned.

_SCREENED_SOURCE_SHA256: Final = "6cc3e53f706a30f8284db5cdd4ae92baee118e64541dc7a60071a018b7f39b09"
"""SHA-256 of the source of PlateRead, BBox and _to_utc_ms, which the screen is written for."""

_TEXT: Final = r"[\x20\x21\x23-\x5b\x5d-\x7e]"  # printable ASCII but " and \: a JSON string without escapes
_UNIT: Final = r"(?:0(?:\.[0-9]+)?|1(?:\.0+)?)"  # a JSON number from 0 to 1
_COUNT: Final = r"(?:0|[1-9][0-9]{0,17})"  # a JSON integer >= 0 that fits in 64 bits
_SCREEN_VALUES: Final = {
    "type": '"plate_read"',
    "schema_version": "1",
    "read_id": '"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"',
    "camera_id": f'"{_TEXT}{{1,64}}"',
    "edge_box_id": f'"{_TEXT}{{1,64}}"',
    # UTC, as encode() writes it; the calendar (30 February) is checked with datetime.fromisoformat.
    "captured_at": '"(?P<captured_at>[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])'
    'T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?)Z"',
    "plate_raw": f'"{_TEXT}{{0,16}}"',
    "plate": '"(?P<plate>[A-Z0-9]{1,10})"',
    "plate_format": f'(?:null|"{_TEXT}*")',
    "confidence": f"(?P<confidence>{_UNIT})",
    # At least one value: an empty list never has the plate's length.
    "char_confidences": f"(?:null|\\[(?P<char_confidences>{_UNIT}(?:,{_UNIT})*)\\])",
    "bbox": f'\\{{"x1":(?P<x1>{_COUNT}),"y1":(?P<y1>{_COUNT}),'
    f'"x2":(?P<x2>{_COUNT}),"y2":(?P<y2>{_COUNT})\\}}',
    "direction": '(?:null|"in"|"out")',
    "frames": "[1-9][0-9]{0,17}",
    # URL-safe, padded base64 (as encode() writes bytes); that the unused bits are zero is checked after.
    "crop_jpeg": '(?:null|"(?P<crop_jpeg>(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?)")',
    "crop_ref": f'(?:null|"{_TEXT}{{0,512}}")',
}


def _screened_source_sha256() -> str | None:
    try:
        source = "".join(inspect.getsource(item) for item in (PlateRead, BBox, _to_utc_ms))
    except (OSError, TypeError):  # no source (a frozen build): the screen stays off
        return None
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


@functools.cache
def _compile_screen() -> re.Pattern[bytes] | None:
    """The screen's expression (compiled once), or None if PlateRead is not what it was written for."""
    if _screened_source_sha256() != _SCREENED_SOURCE_SHA256 or set(PlateRead.model_fields) != set(
        _SCREEN_VALUES
    ):
        return None
    body = ",".join(f'"{name}":{_SCREEN_VALUES[name]}' for name in PlateRead.model_fields)
    return re.compile(("\\{" + body + "\\}").encode("ascii"))


def screen_plate_reads_active() -> bool:
    """Whether :func:`screen_plate_reads` screens anything (False: PlateRead changed since it was written)."""
    return _compile_screen() is not None


def screen_plate_reads(values: Sequence[bytes]) -> list[tuple[str, float] | None]:
    """The plate and confidence of each message that is certainly a valid :class:`PlateRead`, cheaply.

    A message is screened if it is a plate read in exactly the form :func:`encode` writes and satisfies every
    rule of :class:`PlateRead`; :func:`decode` then returns a read with the same ``plate`` and
    ``confidence``. A message that is not screened may still be valid (written by another encoder): decode it
    to know, and to learn what is wrong with it. About 2.5 us per read, against 6 us for :func:`decode`.

    Returns
    -------
    list
        ``(plate, confidence)`` per message, or None for a message that must be decoded.
    """
    screen = _compile_screen()
    if screen is None:
        return [None] * len(values)
    out: list[tuple[str, float] | None] = []
    parse_time = datetime.fromisoformat
    for value in values:
        found = screen.fullmatch(value) if isinstance(value, bytes) else None
        if found is None:
            out.append(None)
            continue
        plate = found["plate"]
        chars = found["char_confidences"]
        crop = found["crop_jpeg"]
        if (
            (chars is not None and chars.count(b",") + 1 != len(plate))
            or int(found["x2"]) < int(found["x1"])
            or int(found["y2"]) < int(found["y1"])
            or (crop is not None and base64.urlsafe_b64encode(base64.urlsafe_b64decode(crop)) != crop)
        ):
            out.append(None)
            continue
        try:
            parse_time(found["captured_at"].decode("ascii"))
        except ValueError:
            out.append(None)
            continue
        out.append((plate.decode("ascii"), float(found["confidence"])))
    return out
