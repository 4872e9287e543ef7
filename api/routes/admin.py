"""Audit log (auditor, admin) and retention purge (admin)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime
from sqlalchemy import select

from api import queries
from api.deps import SessionDep, SettingsDep, require
from api.schemas import AuditOut, Page, PurgeReport
from api.settings import ApiSettings
from api.tables import AuditEntry, User
from cordon.events import utc_now

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit")
def audit_log(
    session: SessionDep,
    _: Annotated[User, Depends(require("auditor"))],
    action: Annotated[str | None, Query(max_length=64)] = None,
    username: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    cursor: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[AuditOut]:
    """Audit entries, newest first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if action:
        query = query.where(AuditEntry.action == action)
    if username:
        query = query.where(AuditEntry.username == username)
    if since:
        query = query.where(AuditEntry.at >= since)
    if cursor is not None:
        query = query.where(AuditEntry.id < cursor)
    rows = list(session.scalars(query.limit(limit + 1)))
    return Page[AuditOut](
        items=[AuditOut.model_validate(r, from_attributes=True) for r in rows[:limit]],
        next_cursor=rows[limit - 1].id if len(rows) > limit else None,
    )


def run_purge(session: SessionDep, settings: ApiSettings, *, dry_run: bool, username: str) -> PurgeReport:
    """Purge (or count) what the retention periods say has expired; audited."""
    now = utc_now()
    reads_before = now - timedelta(days=settings.reads_retention_days)
    hits_before = now - timedelta(days=settings.hits_retention_days)
    reads, hits, beats = queries.purge(
        session, reads_before=reads_before, hits_before=hits_before, dry_run=dry_run
    )
    report = PurgeReport(
        dry_run=dry_run,
        reads_before=reads_before,
        hits_before=hits_before,
        reads=reads,
        hits=hits,
        heartbeats=beats,
    )
    queries.record_audit(
        session, username=username, action="retention_purge", detail=report.model_dump(mode="json")
    )
    return report


@router.post("/retention/purge")
def purge(
    session: SessionDep,
    settings: SettingsDep,
    user: Annotated[User, Depends(require("admin"))],
    dry_run: Annotated[bool, Query(description="Only count what would go.")] = True,
) -> PurgeReport:
    """Delete reads and hits past their retention period (default: a dry run that only counts)."""
    return run_purge(session, settings, dry_run=dry_run, username=user.username)
