"""Request and response bodies of the API (separate from the store's tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.security import Role
from cordon.events import Direction, HotlistEntry

__all__ = [
    "AlertAction",
    "AuditOut",
    "BoxIn",
    "BoxOut",
    "CameraIn",
    "CameraOut",
    "FleetAlert",
    "FleetBox",
    "FleetOut",
    "HitOut",
    "HotlistDiff",
    "HotlistExpire",
    "HotlistVersionOut",
    "Page",
    "PlanIn",
    "PlanJobOut",
    "PurgeReport",
    "ReadOut",
    "TokenOut",
    "UserIn",
    "UserOut",
]

T = TypeVar("T")

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of results; pass ``next_cursor`` as ``cursor`` for the next page (``None``: last page)."""

    items: list[T]
    next_cursor: int | None = None


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    role: Role
    username: str
    expires_at: datetime


class UserIn(_Strict):
    username: str = Field(min_length=2, max_length=64, pattern=_ID)
    password: str = Field(min_length=10, max_length=256, description="At least 10 characters.")
    role: Role


class UserOut(BaseModel):
    username: str
    role: Role
    active: bool
    created_at: datetime


class HitOut(BaseModel):
    """An alert for the control room: its newest sighting, the entry and the operator's handling."""

    seq: int = Field(description="Store order; the live stream resumes after a given seq.")
    alert_id: uuid.UUID
    hit_id: uuid.UUID
    sighting: int
    read_id: uuid.UUID
    camera_id: str
    camera_name: str = ""
    latitude: float | None = None
    longitude: float | None = None
    road: str = ""
    captured_at: datetime
    plate_read: str
    direction: Direction | None
    hotlist: str
    hotlist_plate: str
    priority: int
    match_kind: str
    match_score: float
    action: str
    category: str
    information: str
    has_crop: bool
    status: Literal["new", "acknowledged", "escalated", "closed"]
    outcome: str
    handled_by: str
    handled_at: datetime | None


class AlertAction(_Strict):
    """Acknowledge, escalate or close an alert."""

    action: Literal["acknowledge", "escalate", "close"]
    outcome: str = Field(
        default="",
        max_length=2000,
        description="Required to close: what happened (e.g. 'stopped, arrested').",
    )


class ReadOut(BaseModel):
    read_id: uuid.UUID
    camera_id: str
    edge_box_id: str
    captured_at: datetime
    plate: str
    plate_raw: str
    confidence: float
    direction: Direction | None
    has_crop: bool


class AuditOut(BaseModel):
    id: int
    at: datetime
    username: str
    action: str
    reason: str
    detail: dict[str, Any]
    client: str


class HotlistVersionOut(BaseModel):
    version: int
    created_at: datetime
    created_by: str
    note: str
    sha256: str
    entry_count: int
    hotlists: dict[str, int]
    active: bool
    activated_at: datetime | None
    activated_by: str


class HotlistDiff(BaseModel):
    """Entries keyed by ``entry_id``: added in ``to``, removed from ``from``, or changed."""

    from_version: int
    to_version: int
    added: list[HotlistEntry]
    removed: list[HotlistEntry]
    changed: list[tuple[HotlistEntry, HotlistEntry]]


class HotlistExpire(_Strict):
    entry_ids: list[str] = Field(min_length=1, max_length=10_000)
    at: AwareDatetime | None = Field(default=None, description="When they stop matching; default now.")
    note: str = Field(default="", max_length=500)


class CameraIn(_Strict):
    name: str = Field(default="", max_length=128)
    edge_box_id: str | None = Field(default=None, max_length=64, pattern=_ID)
    rtsp_url: str = Field(default="", max_length=512, pattern=r"^(rtsps?://\S+)?$")
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    road: str = Field(default="", max_length=128)
    bearing_deg: float | None = Field(default=None, ge=0, lt=360)
    arterial: bool = False
    inbound_motion: Literal["up", "down", "left", "right"] | None = Field(
        default=None, description="Image motion of vehicles entering the borough."
    )


class CameraOut(CameraIn):
    camera_id: str
    updated_at: datetime


class BoxIn(_Strict):
    site: str = Field(default="", max_length=128)
    hardware_profile: str = Field(default="", max_length=64)
    model_dir: str = Field(default="/var/lib/cordon/models", min_length=1, max_length=512)
    kafka_bootstrap: str = Field(default="", max_length=256, description="Empty: the API's own broker.")
    credentials_file: str = Field(
        default="/etc/cordon/rtsp.env", max_length=512, description="Env file on the box with RTSP secrets."
    )


class BoxOut(BoxIn):
    box_id: str
    updated_at: datetime


class FleetAlert(BaseModel):
    kind: Literal["camera_down", "box_silent"]
    box_id: str
    camera_id: str | None = None
    since: datetime | None
    detail: str


class FleetBox(BaseModel):
    box_id: str
    registered: bool
    last_heartbeat: datetime | None
    silent_s: float | None
    spool_depth: int | None
    spool_dropped: int | None
    cameras: list[dict[str, Any]]


class FleetOut(BaseModel):
    boxes: list[FleetBox]
    alerts: list[FleetAlert]


class PlanIn(_Strict):
    """Parameters of a planning run over the bundled or configured data."""

    cameras: int = Field(default=10, ge=1, le=500, description="CCTV cameras to place.")
    radius_m: float = Field(default=100.0, gt=0, le=2000, description="Coverage radius, metres.")
    boundary_prefix: str = Field(default="Knowsley", min_length=1, max_length=64)
    anpr_budget: int | None = Field(
        default=None, ge=1, le=500, description="ANPR cameras; None: full cordon."
    )


class PlanJobOut(BaseModel):
    job_id: uuid.UUID
    created_by: str
    created_at: datetime
    parameters: dict[str, Any]
    state: Literal["queued", "running", "done", "failed"]
    progress: float
    message: str
    finished_at: datetime | None
    summary: dict[str, Any] | None = None


class PurgeReport(BaseModel):
    dry_run: bool
    reads_before: datetime
    hits_before: datetime
    reads: int
    hits: int
    heartbeats: int
