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
import binascii
import contextlib
import functools
import hashlib
import inspect
import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, NamedTuple, TypeAlias, cast

import msgspec
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
    "HotlistEntryRecord",
    "HotlistHit",
    "HotlistHitRecord",
    "MatchKind",
    "PlateRead",
    "ReadFields",
    "SchemaVersionError",
    "ScreenedRead",
    "decode",
    "encode",
    "screen_plate_reads",
    "screen_plate_reads_active",
    "screened_plate_reads",
    "screened_read_fields",
    "utc_millis",
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


def utc_millis(value: datetime) -> datetime:
    """An aware datetime as events hold it: in UTC, truncated to milliseconds.

    Raises
    ------
    ValueError
        ``value`` is naive.
    """
    if value.utcoffset() is None:
        raise ValueError(f"a time must be timezone-aware, got {value.isoformat()}")
    return _to_utc_ms(value)


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


# --- Hits as the matcher makes them: records that encode to a HotlistHit's exact bytes ----------------------
#
# A matcher raises thousands of hits a second at peak; building each as a validated HotlistHit, with its entry
# a validated HotlistEntry, and serialising it through pydantic cost more than all the rest of a hit's work.
# The records below hold the same fields, already in their final form (times in UTC to the millisecond, the
# crop as URL-safe base64 text), made of values that were validated where they came from (a read, a hotlist
# entry). msgspec encodes them to the same bytes encode() writes for the HotlistHit of those values; the tests
# check that for random values, so a change to HotlistHit that the records do not follow fails there.


class HotlistEntryRecord(msgspec.Struct, frozen=True, gc=False):
    """A :class:`HotlistEntry` 's fields as a hit record carries them (same names, same order)."""

    entry_id: str
    plate: str
    hotlist: str
    source: str
    category: str
    priority: int
    action: str
    valid_from: datetime | None
    expires_at: datetime | None
    information: str
    added_by: str

    @classmethod
    def of(cls, entry: HotlistEntry) -> HotlistEntryRecord:
        """The record of a validated entry."""
        return cls(*(getattr(entry, name) for name in cls.__struct_fields__))


class HotlistHitRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A :class:`HotlistHit` as a matcher makes it: not validated again, encoded by :func:`encode`.

    Every field is :class:`HotlistHit` 's, in its order and final form: ``captured_at`` and ``matched_at``
    in UTC to the millisecond, and ``crop_jpeg`` the URL-safe base64 text of the crop (what the JSON holds).
    :func:`encode` gives the bytes it gives for the :class:`HotlistHit` of these values, and
    :meth:`to_event` that event; make records only of values validated elsewhere.
    """

    type: Literal["hotlist_hit"] = "hotlist_hit"
    schema_version: Literal[1] = 1
    hit_id: uuid.UUID
    alert_id: uuid.UUID
    sighting: int
    read_id: uuid.UUID
    camera_id: str
    captured_at: datetime
    plate_read: str
    confidence: float
    direction: Direction | None
    entry: HotlistEntryRecord
    hotlist_version: int
    match_kind: MatchKind
    match_score: float
    priority: int
    matched_at: datetime
    crop_jpeg: str | None

    @staticmethod
    def crop_text(crop: bytes | None) -> str | None:
        """A crop as a record holds it: URL-safe base64, padded (as :func:`encode` writes bytes)."""
        return None if crop is None else base64.urlsafe_b64encode(crop).decode("ascii")

    def to_event(self) -> HotlistHit:
        """The :class:`HotlistHit` a consumer decodes from this record's bytes (validated).

        Raises
        ------
        EventDecodeError
            A value breaks a rule of :class:`HotlistHit` (the record was made of unvalidated values).
        """
        event = decode(encode(self))
        if not isinstance(event, HotlistHit):  # cannot happen: the type tag is fixed
            raise EventDecodeError(f"a hit record encoded to a {type(event).__name__}")
        return event


_RECORD_ENCODER: Final = msgspec.json.Encoder()


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


def encode(event: AnyEvent | HotlistHitRecord) -> bytes:
    """Serialise an event as UTF-8 JSON bytes, the wire format of every Cordon topic.

    A :class:`HotlistHitRecord` gives the bytes of its :class:`HotlistHit`.
    """
    if type(event) is HotlistHitRecord:
        return _RECORD_ENCODER.encode(event)
    return cast(AnyEvent, event).model_dump_json().encode("utf-8")


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
# vast majority of reads that match nothing. The screen below decodes a whole batch of messages in one call
# of msgspec (a compiled JSON decoder with typed validation) into a struct that mirrors PlateRead, then checks
# the rules msgspec does not express (the plate's characters, one confidence per character, the box's corners,
# canonical base64), so that whatever it accepts, decode() accepts too, with the same plate and confidence.
# Where the two decoders differ, the screen is the stricter: it never rejects a message, it only leaves it
# to decode() to judge. It is written against the PlateRead and BBox classes below, and switches itself off
# (every message then needs decoding) if their source changes, until it is checked against the new
# definition and re-pinned.

_SCREENED_SOURCE_SHA256: Final = "6cc3e53f706a30f8284db5cdd4ae92baee118e64541dc7a60071a018b7f39b09"
"""SHA-256 of the source of PlateRead, BBox and _to_utc_ms, which the screen is written for."""

_Unit = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
_Count = Annotated[int, msgspec.Meta(ge=0)]
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _ScreenBBox(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    x1: _Count
    y1: _Count
    x2: _Count
    y2: _Count


class ScreenedRead(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A plate read that :func:`screened_plate_reads` vouches for: its fields as sent, already validated.

    The fields are PlateRead's, with its rules as msgspec checks them (stricter where they differ: no
    defaults). Two are not yet normalised as :func:`decode` would: ``captured_at`` keeps its UTC offset and
    sub-millisecond digits (msgspec rounds beyond microseconds where pydantic truncates), and ``crop_jpeg``
    is the base64 text. ``read_id`` is the UUID's text, lowercase and hyphenated as ``encode()`` writes it
    (the screen checks that form for a whole batch at once, far cheaper than msgspec making ``uuid.UUID``
    objects). Use it to decide what to decode in full, not in place of a :class:`PlateRead`.
    """

    type: Literal["plate_read"]
    schema_version: Literal[1]
    read_id: Annotated[str, msgspec.Meta(min_length=36, max_length=36)]
    camera_id: _Id
    edge_box_id: _Id
    captured_at: Annotated[datetime, msgspec.Meta(tz=True)]
    plate_raw: Annotated[str, msgspec.Meta(max_length=16)]
    plate: Annotated[str, msgspec.Meta(min_length=1, max_length=10)]
    plate_format: str | None
    confidence: _Unit
    char_confidences: tuple[_Unit, ...] | None
    bbox: _ScreenBBox
    direction: Literal["in", "out"] | None
    frames: Annotated[int, msgspec.Meta(ge=1)]
    crop_jpeg: str | None
    crop_ref: Annotated[str, msgspec.Meta(max_length=512)] | None


def _screened_source_sha256() -> str | None:
    try:
        source = "".join(inspect.getsource(item) for item in (PlateRead, BBox, _to_utc_ms))
    except (OSError, TypeError):  # no source (a frozen build): the screen stays off
        return None
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


@functools.cache
def _screen_decoder() -> msgspec.json.Decoder[ScreenedRead] | None:
    """The screen's decoder (made once), or None if PlateRead is not what it was written for."""
    if _screened_source_sha256() != _SCREENED_SOURCE_SHA256 or set(PlateRead.model_fields) != set(
        ScreenedRead.__struct_fields__
    ):
        return None
    return msgspec.json.Decoder(ScreenedRead)


_UUID_TEXT: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UUID_TEXT_LENGTH: Final = 36
_UUID_HYPHENS: Final = (8, 13, 18, 23)


def _uuid_texts(texts: Sequence[str]) -> list[bool]:
    """Whether each text of 36 characters is a UUID as ``encode()`` writes one: lowercase, hyphenated.

    The texts are checked together, joined, by a few byte operations in C (a few ns a text): nothing but
    lowercase hex digits and hyphens, and hyphens exactly where each text has them. One by one (a regular
    expression) only if the batch fails.
    """
    count = len(texts)
    with contextlib.suppress(UnicodeEncodeError):
        joined = "".join(texts).encode("ascii")
        if (
            len(joined) == _UUID_TEXT_LENGTH * count
            and not joined.translate(None, b"0123456789abcdef-")
            and joined.count(b"-") == len(_UUID_HYPHENS) * count
            and all(joined[at::_UUID_TEXT_LENGTH].count(b"-") == count for at in _UUID_HYPHENS)
        ):
            return [True] * count
    return [_UUID_TEXT.fullmatch(text) is not None for text in texts]


_NOT_SCREENED: Final = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)
"""What msgspec raises on a message that is not a screened read (invalid UTF-8 in a string: the last)."""


def _screen_one(decoder: msgspec.json.Decoder[ScreenedRead], value: bytes) -> ScreenedRead | None:
    try:
        return decoder.decode(value)
    except _NOT_SCREENED:
        return None


def _screen_rules(read: ScreenedRead) -> bool:
    """The rules of PlateRead that the struct does not check itself."""
    plate, chars, box, crop = read.plate, read.char_confidences, read.bbox, read.crop_jpeg
    if not (plate.isascii() and plate.isalnum() and plate.upper() == plate):
        return False  # the pattern ^[A-Z0-9]+$
    if (chars is not None and len(chars) != len(plate)) or box.x2 < box.x1 or box.y2 < box.y1:
        return False
    if crop is not None:  # URL-safe, padded base64 (as encode() writes bytes), with the unused bits zero
        try:
            data = crop.encode("ascii")
            return base64.urlsafe_b64encode(base64.urlsafe_b64decode(data)) == data
        except (UnicodeEncodeError, binascii.Error):
            return False
    return True


def screen_plate_reads_active() -> bool:
    """Whether :func:`screen_plate_reads` screens anything (False: PlateRead changed since it was written)."""
    return _screen_decoder() is not None


def screened_plate_reads(values: Sequence[bytes | None]) -> list[ScreenedRead | None]:
    """Each message that is certainly a valid :class:`PlateRead`, decoded cheaply; None for the others.

    A message is screened if it is a plate read that satisfies every rule of :class:`PlateRead`;
    :func:`decode` then returns a read with the same fields (see :class:`ScreenedRead` for two not yet
    normalised). A message that is not screened may still be valid (the screen is stricter in a few
    corners): decode it to know, and to learn what is wrong with it. The messages are decoded together, in
    one call, unless one of them is malformed (then one by one): about 1.5 us per read, against 6 us for
    :func:`decode`.
    """
    decoder = _screen_decoder()
    out: list[ScreenedRead | None] = [None] * len(values)
    if decoder is None:
        return out
    present = [i for i, value in enumerate(values) if type(value) is bytes]
    messages = [cast(bytes, values[i]) for i in present]
    reads: list[ScreenedRead] | None = None
    # One message a line: each line is decoded on its own, so a message cannot run into the next; a message
    # holding a newline (or an empty one, a line msgspec skips) shows in the counts, and the batch is then
    # decoded one message at a time, as it is when any message is malformed.
    joined = b"\n".join(messages)
    if joined.count(b"\n") == len(messages) - 1:
        with contextlib.suppress(*_NOT_SCREENED):
            lines = decoder.decode_lines(joined)
            if len(lines) == len(messages):
                reads = lines
    if reads is None:
        one_by_one = zip(present, (_screen_one(decoder, message) for message in messages), strict=True)
        decoded = [(i, read) for i, read in one_by_one if read is not None]
        present, reads = [i for i, _ in decoded], [read for _, read in decoded]
    uuids = _uuid_texts([read.read_id for read in reads])
    for i, read, uuid_text in zip(present, reads, uuids, strict=True):
        if uuid_text and _screen_rules(read):
            out[i] = read
    return out


def screen_plate_reads(values: Sequence[bytes | None]) -> list[tuple[str, float] | None]:
    """The plate and confidence of each message :func:`screened_plate_reads` vouches for; None for others."""
    return [None if read is None else (read.plate, read.confidence) for read in screened_plate_reads(values)]


class ReadFields(NamedTuple):
    """The fields of a plate read that matching and its hits use, exactly as :func:`decode` gives them."""

    read_id: uuid.UUID
    camera_id: str
    captured_at: datetime
    plate: str
    confidence: float
    char_confidences: tuple[float, ...] | None
    direction: Direction | None
    crop_jpeg: bytes | None


_CAPTURED_AT_KEY: Final = b'"captured_at":"'
_FRACTION: Final = re.compile(rb"\.([0-9]+)")


def _captured_at_as_decoded(value: bytes, read: ScreenedRead) -> datetime | None:
    """``read.captured_at`` as :func:`decode` gives it, or None where the two may differ.

    Both truncate to milliseconds, but beyond microseconds msgspec rounds where pydantic truncates, so they
    agree only for a time with at most 6 decimals; that is read off the raw text where ``encode()`` writes
    it. A message written otherwise (spaces, an escaped key, the key twice) gets None.
    """
    start = value.find(_CAPTURED_AT_KEY)
    if start < 0:
        return None
    start += len(_CAPTURED_AT_KEY)
    end = value.find(b'"', start)
    if end < 0 or value.find(_CAPTURED_AT_KEY, end) >= 0:
        return None
    fraction = _FRACTION.search(value, start, end)
    if fraction is not None and fraction.end(1) - fraction.start(1) > 6:
        return None
    return _to_utc_ms(read.captured_at)


def screened_read_fields(values: Sequence[bytes]) -> list[ReadFields | None]:
    """For each message the screen vouches for, what :func:`decode` would make of the fields in
    :class:`ReadFields`; None for the others (decode those in full). About a third of decode()'s cost.

    The screen (:func:`screened_plate_reads`) has checked every rule of :class:`PlateRead`; what is left is
    to give each field decode()'s form: the time in UTC to the millisecond (:func:`_captured_at_as_decoded`)
    and the crop's bytes (its base64 is canonical, so either decoder gives the same bytes).
    """
    out: list[ReadFields | None] = []
    for value, read in zip(values, screened_plate_reads(values), strict=True):
        captured_at = None if read is None else _captured_at_as_decoded(value, read)
        if read is None or captured_at is None:
            out.append(None)
            continue
        crop = read.crop_jpeg
        out.append(
            ReadFields(
                uuid.UUID(read.read_id),
                read.camera_id,
                captured_at,
                read.plate,
                read.confidence,
                read.char_confidences,
                read.direction,
                None if crop is None else base64.urlsafe_b64decode(crop),
            )
        )
    return out
