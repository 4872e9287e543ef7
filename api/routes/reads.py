"""Search past reads; every search states a reason and is audited."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime
from sqlalchemy import select

from api import queries
from api.deps import SessionDep, client_address, require
from api.errors import InvalidInputError, NotFoundError
from api.schemas import Page, ReadOut
from api.tables import ReadRow, User
from cordon.events import utc_now

router = APIRouter(prefix="/api/v1/reads", tags=["reads"])
Operator = Annotated[User, Depends(require("operator"))]


@router.get("")
def search(
    request: Request,
    session: SessionDep,
    user: Operator,
    reason: Annotated[
        str,
        Query(
            min_length=10, max_length=500, description="Why you are searching (audited), e.g. a crime ref."
        ),
    ],
    plate: Annotated[str | None, Query(max_length=10, description="Plate, or pattern with * and ?")] = None,
    mode: Annotated[Literal["exact", "wildcard", "fuzzy"], Query()] = "exact",
    camera_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[AwareDatetime | None, Query(description="From (UTC); default 7 days ago.")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Until (UTC); default now.")] = None,
    cursor: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[ReadOut]:
    """Reads by plate (exact, wildcard or fuzzy), camera and time range, newest first."""
    end = until or utc_now()
    start = since or end - timedelta(days=7)
    if start >= end:
        raise InvalidInputError(f"since: {start.isoformat()} is not before until {end.isoformat()}")
    rows, next_cursor = queries.search_reads(
        session,
        plate=plate,
        mode=mode,
        camera_id=camera_id,
        since=start,
        until=end,
        cursor=cursor,
        limit=limit,
    )
    queries.record_audit(
        session,
        username=user.username,
        action="reads_search",
        reason=reason,
        detail={
            "plate": plate,
            "mode": mode,
            "camera_id": camera_id,
            "since": start.isoformat(),
            "until": end.isoformat(),
            "results": len(rows),
        },
        client=client_address(request),
    )
    items = [ReadOut.model_validate({**_read_fields(r), "has_crop": r.crop_jpeg is not None}) for r in rows]
    return Page[ReadOut](items=items, next_cursor=next_cursor)


def _read_fields(row: ReadRow) -> dict[str, object]:
    return {name: getattr(row, name) for name in ReadOut.model_fields if name != "has_crop"}


@router.get("/{read_id}/crop.jpg", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def read_crop(
    read_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    user: Operator,
    reason: Annotated[str, Query(min_length=10, max_length=500, description="Why (audited).")],
) -> Response:
    """The plate crop of one read; audited like a search."""
    crop = session.scalar(select(ReadRow.crop_jpeg).where(ReadRow.read_id == read_id))
    if crop is None:
        raise NotFoundError(f"read {read_id} not found or has no crop")
    queries.record_audit(
        session,
        username=user.username,
        action="read_crop_viewed",
        reason=reason,
        detail={"read_id": str(read_id)},
        client=client_address(request),
    )
    return Response(content=crop, media_type="image/jpeg")


__all__ = ["router"]
