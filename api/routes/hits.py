"""Control room: alerts, their live stream, and acknowledge / escalate / close."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from api import queries
from api.deps import SessionDep, client_address, require
from api.errors import NotFoundError
from api.schemas import AlertAction, HitOut, Page
from api.tables import Camera, HitRow, User

router = APIRouter(prefix="/api/v1/hits", tags=["control room"])
Operator = Annotated[User, Depends(require("operator"))]

STREAM_POLL_S = 0.25


def hit_out(row: HitRow, cameras: dict[str, Camera]) -> HitOut:
    """An alert as the control room sees it: the entry's reason and action, and the camera's place."""
    camera = cameras.get(row.camera_id)
    return HitOut(
        seq=row.seq,
        alert_id=row.alert_id,
        hit_id=row.hit_id,
        sighting=row.sighting,
        read_id=row.read_id,
        camera_id=row.camera_id,
        camera_name=camera.name if camera else "",
        latitude=camera.latitude if camera else None,
        longitude=camera.longitude if camera else None,
        road=camera.road if camera else "",
        captured_at=row.captured_at,
        plate_read=row.plate_read,
        direction=row.direction,  # type: ignore[arg-type]
        hotlist=row.hotlist,
        hotlist_plate=row.hotlist_plate,
        priority=row.priority,
        match_kind=row.match_kind,
        match_score=row.match_score,
        action=str(row.entry.get("action", "")),
        category=str(row.entry.get("category", "")),
        information=str(row.entry.get("information", "")),
        has_crop=row.crop_jpeg is not None,
        status=row.status,  # type: ignore[arg-type]
        outcome=row.outcome,
        handled_by=row.handled_by,
        handled_at=row.handled_at,
    )


def _cameras(session: Session, ids: set[str]) -> dict[str, Camera]:
    if not ids:
        return {}
    return {c.camera_id: c for c in session.scalars(select(Camera).where(Camera.camera_id.in_(ids)))}


def _outs(session: Session, rows: list[HitRow]) -> list[HitOut]:
    cameras = _cameras(session, {r.camera_id for r in rows})
    return [hit_out(r, cameras) for r in rows]


@router.get("")
def list_alerts(
    session: SessionDep,
    _: Operator,
    status: Annotated[list[Literal["new", "acknowledged", "escalated", "closed"]] | None, Query()] = None,
    cursor: Annotated[int | None, Query(ge=0, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[HitOut]:
    """Alerts, newest first, optionally by state."""
    rows = queries.alerts(session, status=status or (), before_seq=cursor, limit=limit + 1)
    return Page[HitOut](
        items=_outs(session, rows[:limit]), next_cursor=rows[limit - 1].seq if len(rows) > limit else None
    )


@router.get("/stream", response_class=EventSourceResponse)
async def stream_alerts(
    request: Request,
    _: Operator,
    after: Annotated[int, Query(ge=0, description="Send alerts stored after this seq (0: all).")] = 0,
) -> EventSourceResponse:
    """Server-Sent Events: one ``hit`` event (a HitOut as JSON) per new alert or sighting, as it is stored."""
    factory: sessionmaker[Session] = request.app.state.sessions

    def fetch(last: int) -> list[HitOut]:
        with factory() as session:
            return _outs(session, queries.alerts(session, after_seq=last, limit=200))

    async def events() -> AsyncIterator[ServerSentEvent]:
        last = after
        while True:
            batch = await run_in_threadpool(fetch, last)
            for hit in batch:
                last = max(last, hit.seq)
                yield ServerSentEvent(data=hit.model_dump_json(), event="hit", id=str(hit.seq))
            if not batch:
                await asyncio.sleep(STREAM_POLL_S)

    return EventSourceResponse(events(), ping=15)


@router.get("/{alert_id}")
def get_alert(alert_id: uuid.UUID, session: SessionDep, _: Operator) -> HitOut:
    """One alert (its newest sighting)."""
    return _outs(session, [queries.alert(session, alert_id=alert_id)])[0]


@router.post("/{alert_id}/actions")
def act(
    alert_id: uuid.UUID, body: AlertAction, request: Request, session: SessionDep, user: Operator
) -> HitOut:
    """Acknowledge, escalate or close an alert; audited."""
    row = queries.act_on_alert(
        session, alert_id=alert_id, action=body.action, outcome=body.outcome, username=user.username
    )
    queries.record_audit(
        session,
        username=user.username,
        action=f"alert_{body.action}",
        reason=body.outcome,
        detail={"alert_id": str(alert_id), "plate": row.plate_read, "hotlist": row.hotlist},
        client=client_address(request),
    )
    return _outs(session, [row])[0]


@router.get("/{alert_id}/crop.jpg", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def alert_crop(alert_id: uuid.UUID, session: SessionDep, _: Operator) -> Response:
    """The plate crop of the alert's newest sighting."""
    row = queries.alert(session, alert_id=alert_id)
    if row.crop_jpeg is None:
        raise NotFoundError(f"alert {alert_id} has no plate crop")
    return Response(content=row.crop_jpeg, media_type="image/jpeg")
