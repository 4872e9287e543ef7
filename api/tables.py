"""SQLAlchemy 2 tables of the API's store (SQLite embedded, PostgreSQL in tests and production).

Request and response schemas live in :mod:`api.schemas`; these classes never leave the store layer. All times
are timezone-aware UTC.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditEntry",
    "Base",
    "Camera",
    "EdgeBox",
    "HeartbeatRow",
    "HitRow",
    "HotlistVersionRow",
    "PlanJob",
    "ReadPlateKey",
    "ReadRow",
    "Token",
    "User",
]


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps aware UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
_Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}  # noqa: RUF012


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Token(Base):
    """An opaque bearer token; only its SHA-256 is stored."""

    __tablename__ = "tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class AuditEntry(Base):
    """Append-only audit log: logins, searches, acknowledgements, hotlist and configuration changes."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client: Mapped[str] = mapped_column(String(64), default="")


class ReadRow(Base):
    __tablename__ = "reads"
    __table_args__ = (Index("ix_reads_camera_time", "camera_id", "captured_at"),)

    seq: Mapped[int] = mapped_column(_Id, primary_key=True)
    read_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    edge_box_id: Mapped[str] = mapped_column(String(64))
    captured_at: Mapped[datetime] = mapped_column(index=True)
    plate: Mapped[str] = mapped_column(String(10), index=True)
    plate_canonical: Mapped[str] = mapped_column(String(10), index=True)
    plate_raw: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    direction: Mapped[str | None] = mapped_column(String(3))
    crop_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime]


class ReadPlateKey(Base):
    """One fuzzy-search key of a read (:func:`stream.matching.search_keys` of its plate): a fuzzy search
    looks up the reads sharing a key with the searched plate instead of scanning a time range's reads."""

    __tablename__ = "read_plate_keys"
    # The primary key (seq, key) serves deleting a read's keys; the index, looking reads up by key.
    __table_args__ = (Index("ix_read_plate_keys_key_seq", "key", "seq"),)

    seq: Mapped[int] = mapped_column(
        _Id, ForeignKey("reads.seq", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    key: Mapped[str] = mapped_column(String(10), primary_key=True)


class HitRow(Base):
    """One hit event from the matcher; the alert's working state lives on its first sighting's row."""

    __tablename__ = "hits"

    seq: Mapped[int] = mapped_column(_Id, primary_key=True)
    hit_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    sighting: Mapped[int] = mapped_column(Integer)
    read_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    camera_id: Mapped[str] = mapped_column(String(64))
    captured_at: Mapped[datetime] = mapped_column(index=True)
    plate_read: Mapped[str] = mapped_column(String(10), index=True)
    priority: Mapped[int] = mapped_column(Integer)
    match_kind: Mapped[str] = mapped_column(String(16))
    match_score: Mapped[float] = mapped_column(Float)
    direction: Mapped[str | None] = mapped_column(String(3))
    hotlist: Mapped[str] = mapped_column(String(64))
    hotlist_plate: Mapped[str] = mapped_column(String(10))
    entry: Mapped[dict[str, Any]] = mapped_column(JSON)
    crop_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary)
    matched_at: Mapped[datetime]
    stored_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    outcome: Mapped[str] = mapped_column(Text, default="")
    handled_by: Mapped[str] = mapped_column(String(64), default="")
    handled_at: Mapped[datetime | None]


class HeartbeatRow(Base):
    __tablename__ = "heartbeats"

    seq: Mapped[int] = mapped_column(_Id, primary_key=True)
    heartbeat_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    edge_box_id: Mapped[str] = mapped_column(String(64), index=True)
    sent_at: Mapped[datetime] = mapped_column(index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class Camera(Base):
    __tablename__ = "cameras"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    edge_box_id: Mapped[str | None] = mapped_column(
        ForeignKey("edge_boxes.box_id", ondelete="SET NULL"), index=True
    )
    rtsp_url: Mapped[str] = mapped_column(String(512), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    road: Mapped[str] = mapped_column(String(128), default="")
    bearing_deg: Mapped[float | None] = mapped_column(Float)
    arterial: Mapped[bool] = mapped_column(Boolean, default=False)
    inbound_motion: Mapped[str | None] = mapped_column(String(8))
    updated_at: Mapped[datetime]


class EdgeBox(Base):
    __tablename__ = "edge_boxes"

    box_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(128), default="")
    hardware_profile: Mapped[str] = mapped_column(String(64), default="")
    model_dir: Mapped[str] = mapped_column(String(512), default="/var/lib/cordon/models")
    kafka_bootstrap: Mapped[str] = mapped_column(String(256), default="")
    credentials_file: Mapped[str] = mapped_column(String(512), default="/etc/cordon/rtsp.env")
    updated_at: Mapped[datetime]


class HotlistVersionRow(Base):
    """A hotlist version as uploaded; ``active`` marks the one the matchers run.

    ``entries`` (every entry, as JSON) is loaded only when read: a million-entry version is hundreds of MB,
    and listing versions needs only ``hotlists``, the number of entries of each list.
    """

    __tablename__ = "hotlist_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64))
    entry_count: Mapped[int] = mapped_column(Integer)
    hotlists: Mapped[dict[str, int]] = mapped_column(JSON)
    entries: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    activated_at: Mapped[datetime | None]
    activated_by: Mapped[str] = mapped_column(String(64), default="")


class PlanJob(Base):
    __tablename__ = "plan_jobs"

    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    finished_at: Mapped[datetime | None]
