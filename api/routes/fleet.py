"""Engineers: cameras, edge boxes, a box's provisioning config, and fleet health from heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Path, Request, Response, status
from kafka.errors import KafkaError
from sqlalchemy import delete, select

from api import queries
from api.deps import SessionDep, SettingsDep, client_address, require
from api.errors import NotFoundError
from api.schemas import BoxIn, BoxOut, CameraIn, CameraOut, FleetAlert, FleetBox, FleetOut
from api.settings import ApiSettings
from api.tables import Camera, EdgeBox, HeartbeatRow, User
from cordon.errors import BrokerError
from cordon.events import CameraRecord, Heartbeat, encode, utc_now
from edge.publisher import close_producer, make_producer

router = APIRouter(prefix="/api/v1", tags=["fleet"])
CAMERAS_TOPIC = "cordon.cameras"
Engineer = Annotated[User, Depends(require("engineer"))]
Viewer = Annotated[User, Depends(require("engineer", "operator", "planner"))]
ObjectId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


def publish_camera(settings: ApiSettings, record: CameraRecord) -> None:
    """Send a camera's registry record to ``cordon.cameras`` and wait for the broker (BrokerError if not).

    Called before the store commits, so a change the matchers never got is not kept either.
    """
    if not settings.registry_publish:
        return
    producer = make_producer(settings.kafka_bootstrap, client_id="cordon-api-registry")
    try:
        producer.send(CAMERAS_TOPIC, key=record.camera_id.encode(), value=encode(record)).get(timeout=30)
    except KafkaError as exc:
        raise BrokerError(f"camera {record.camera_id!r} not published to {CAMERAS_TOPIC}: {exc}") from exc
    finally:
        close_producer(producer, timeout_s=5.0)


def camera_record(camera: Camera, *, username: str, removed: bool = False) -> CameraRecord:
    return CameraRecord(
        camera_id=camera.camera_id,
        name=camera.name,
        latitude=camera.latitude,
        longitude=camera.longitude,
        road=camera.road,
        bearing_deg=camera.bearing_deg,
        arterial=camera.arterial,
        removed=removed,
        updated_at=utc_now(),
        updated_by=username,
    )


@router.get("/cameras")
def list_cameras(session: SessionDep, _: Viewer) -> list[CameraOut]:
    """Every registered camera."""
    return [
        CameraOut.model_validate(c, from_attributes=True)
        for c in session.scalars(select(Camera).order_by(Camera.camera_id))
    ]


@router.put("/cameras/{camera_id}")
def put_camera(
    camera_id: ObjectId,
    body: CameraIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Engineer,
) -> CameraOut:
    """Register or update a camera (location, road, bearing, arterial, direction in/out).

    The matchers get the change through ``cordon.cameras`` (arterial cameras raise hits).
    """
    camera = queries.upsert_camera(session, camera_id=camera_id, values=body.model_dump())
    publish_camera(settings, camera_record(camera, username=user.username))
    queries.record_audit(
        session,
        username=user.username,
        action="camera_saved",
        detail={"camera_id": camera_id, **body.model_dump(exclude={"rtsp_url"})},
        client=client_address(request),
    )
    return CameraOut.model_validate(camera, from_attributes=True)


@router.delete("/cameras/{camera_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_camera(
    camera_id: ObjectId, request: Request, session: SessionDep, settings: SettingsDep, user: Engineer
) -> None:
    """Remove a camera from the registry (and from the matchers')."""
    camera = session.get(Camera, camera_id)
    if camera is None:
        raise NotFoundError(f"camera {camera_id!r} not found")
    publish_camera(settings, camera_record(camera, username=user.username, removed=True))
    session.execute(delete(Camera).where(Camera.camera_id == camera_id))
    queries.record_audit(
        session,
        username=user.username,
        action="camera_deleted",
        detail={"camera_id": camera_id},
        client=client_address(request),
    )


@router.get("/boxes")
def list_boxes(session: SessionDep, _: Engineer) -> list[BoxOut]:
    """Every registered edge box."""
    return [
        BoxOut.model_validate(b, from_attributes=True)
        for b in session.scalars(select(EdgeBox).order_by(EdgeBox.box_id))
    ]


@router.put("/boxes/{box_id}")
def put_box(box_id: ObjectId, body: BoxIn, request: Request, session: SessionDep, user: Engineer) -> BoxOut:
    """Register or update an edge box."""
    box = queries.upsert_box(session, box_id=box_id, values=body.model_dump())
    queries.record_audit(
        session,
        username=user.username,
        action="box_saved",
        detail={"box_id": box_id, **body.model_dump()},
        client=client_address(request),
    )
    return BoxOut.model_validate(box, from_attributes=True)


def render_box_config(box: EdgeBox, cameras: list[Camera], settings: ApiSettings) -> dict[str, Any]:
    """The edge worker's settings for ``box`` (``cordon edge run --config``), validated as EdgeSettings.

    RTSP credentials never appear here: each camera names the environment variable (set on the box from
    ``credentials_file``) that holds ``user:password`` for its URL.
    """
    from edge.settings import EdgeSettings

    config: dict[str, Any] = {
        "box_id": box.box_id,
        "kafka_bootstrap": box.kafka_bootstrap or settings.kafka_bootstrap,
        "recogniser": {"model_dir": box.model_dir},
        "spool_path": "/var/lib/cordon/spool.sqlite3",
        "cameras": [
            {
                "id": c.camera_id,
                "url": c.rtsp_url,
                "credentials_env": credentials_env(c.camera_id),
                **({"inbound_motion": c.inbound_motion} if c.inbound_motion else {}),
            }
            for c in cameras
        ],
    }
    EdgeSettings.model_validate(config)  # a config the box cannot load is a server bug: fail here
    return config


def credentials_env(camera_id: str) -> str:
    """Name of the box's environment variable holding ``user:password`` for a camera's RTSP URL."""
    return "CORDON_RTSP_" + "".join(ch if ch.isalnum() else "_" for ch in camera_id.upper())


@router.get(
    "/boxes/{box_id}/config",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}}},
)
def box_config(
    box_id: ObjectId, request: Request, session: SessionDep, settings: SettingsDep, user: Engineer
) -> Response:
    """The box's edge configuration as YAML, for ``cordon edge provision``."""
    box = session.get(EdgeBox, box_id)
    if box is None:
        raise NotFoundError(f"edge box {box_id!r} not registered")
    cameras = list(
        session.scalars(select(Camera).where(Camera.edge_box_id == box_id).order_by(Camera.camera_id))
    )
    config = render_box_config(box, cameras, settings)
    queries.record_audit(
        session,
        username=user.username,
        action="box_config_downloaded",
        detail={"box_id": box_id, "cameras": len(cameras)},
        client=client_address(request),
    )
    body = f"# Cordon edge config for {box_id}, rendered {utc_now().isoformat()}\n" + yaml.safe_dump(
        config, sort_keys=False
    )
    return Response(content=body, media_type="application/yaml")


def fleet_health(
    boxes: list[EdgeBox],
    beats: dict[str, HeartbeatRow],
    *,
    now: datetime,
    camera_down_after_s: float,
    box_silent_after_s: float,
) -> FleetOut:
    """Each box's last heartbeat and camera states, with 'camera down' / 'box silent' alerts (pure)."""
    out: list[FleetBox] = []
    alerts: list[FleetAlert] = []
    for box_id in sorted({b.box_id for b in boxes} | set(beats)):
        row = beats.get(box_id)
        beat = Heartbeat.model_validate(row.body) if row else None
        silent = (now - beat.sent_at).total_seconds() if beat else None
        if beat is None or (silent is not None and silent > box_silent_after_s):
            alerts.append(
                FleetAlert(
                    kind="box_silent",
                    box_id=box_id,
                    since=beat.sent_at if beat else None,
                    detail="no heartbeat yet" if beat is None else f"no heartbeat for {silent:.0f} s",
                )
            )
        cameras = []
        for cam in beat.cameras if beat else ():
            cameras.append(cam.model_dump(mode="json"))
            if cam.state != "up" and cam.down_since is not None:
                down_s = (now - cam.down_since).total_seconds()
                if down_s > camera_down_after_s:
                    alerts.append(
                        FleetAlert(
                            kind="camera_down",
                            box_id=box_id,
                            camera_id=cam.camera_id,
                            since=cam.down_since,
                            detail=f"{cam.state} for {down_s:.0f} s ({cam.reconnects} reconnects)",
                        )
                    )
        out.append(
            FleetBox(
                box_id=box_id,
                registered=any(b.box_id == box_id for b in boxes),
                last_heartbeat=beat.sent_at if beat else None,
                silent_s=silent,
                spool_depth=beat.spool_depth if beat else None,
                spool_dropped=beat.spool_dropped if beat else None,
                cameras=cameras,
            )
        )
    return FleetOut(boxes=out, alerts=alerts)


@router.get("/fleet")
def fleet(session: SessionDep, settings: SettingsDep, _: Engineer) -> FleetOut:
    """Fleet health: boxes, cameras, last heartbeat, spool depth, fps, and alerts."""
    return fleet_health(
        list(session.scalars(select(EdgeBox))),
        queries.latest_heartbeats(session),
        now=utc_now(),
        camera_down_after_s=settings.camera_down_after_s,
        box_silent_after_s=settings.box_silent_after_s,
    )
