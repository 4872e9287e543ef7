"""Hotlists: upload a file as a new version, list, diff, activate (publishes to the matchers), expire."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile, status
from sqlalchemy import select

from api import queries
from api.deps import SessionDep, SettingsDep, client_address, require
from api.errors import InvalidInputError
from api.schemas import HotlistDiff, HotlistExpire, HotlistVersionOut, Page
from api.settings import ApiSettings
from api.tables import HotlistVersionRow, User
from cordon.events import HotlistEntry, utc_now
from stream.errors import HotlistValidationError
from stream.hotlist import HotlistVersion, load_hotlist_file
from stream.hotlist_feed import publish_version

router = APIRouter(prefix="/api/v1/hotlists", tags=["hotlists"])
Reader = Annotated[User, Depends(require("operator", "auditor"))]
Admin = Annotated[User, Depends(require("admin"))]

MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def version_out(row: HotlistVersionRow) -> HotlistVersionOut:
    """A version's summary (never its entries, which stay unloaded)."""
    return HotlistVersionOut(
        version=row.version,
        created_at=row.created_at,
        created_by=row.created_by,
        note=row.note,
        sha256=row.sha256,
        entry_count=row.entry_count,
        hotlists=row.hotlists,
        active=row.active,
        activated_at=row.activated_at,
        activated_by=row.activated_by,
    )


def _publish(settings: ApiSettings, row: HotlistVersionRow, username: str) -> None:
    """Send the version to ``cordon.hotlists`` so every matcher swaps to it (BrokerError on failure)."""
    if not settings.hotlist_publish:
        return
    version = HotlistVersion.of(queries.version_entries(row), version=row.version, created_at=row.created_at)
    publish_version(settings.kafka_bootstrap, version, published_by=username)


@router.get("/versions")
def list_versions(session: SessionDep, _: Reader) -> list[HotlistVersionOut]:
    """Every version, newest first."""
    rows = session.scalars(select(HotlistVersionRow).order_by(HotlistVersionRow.version.desc()))
    return [version_out(r) for r in rows]


@router.get("/versions/{version}/entries")
def version_entries(
    version: int,
    session: SessionDep,
    _: Reader,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[HotlistEntry]:
    """A version's entries, by entry id; ``next_cursor`` is the next offset."""
    entries = queries.version_entries(queries.version_row(session, version))
    page = list(entries[offset : offset + limit])
    return Page[HotlistEntry](
        items=page, next_cursor=offset + limit if offset + limit < len(entries) else None
    )


@router.post("/versions", status_code=status.HTTP_201_CREATED)
def upload(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Admin,
    file: Annotated[UploadFile, File(description="CSV or JSON hotlist file, UTF-8.")],
    hotlist: Annotated[str | None, Form(description="List name if the file has no 'hotlist' column.")] = None,
    note: Annotated[str, Form(max_length=500)] = "",
    activate: Annotated[bool, Form(description="Make it live at once (publishes to the matchers).")] = False,
) -> HotlistVersionOut:
    """Validate a file and store a new version: the active version with the file's lists replaced.

    An invalid file is rejected whole (422 naming every row and field) and nothing changes.
    """
    suffix = Path(file.filename or "").suffix.lower()
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInputError(f"file: larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            uploaded = load_hotlist_file(path, hotlist=hotlist, added_by=user.username, now=utc_now())
        except HotlistValidationError as exc:
            raise InvalidInputError(str(exc).replace(str(path), file.filename or "upload")) from exc
    current = queries.active_version(session)
    base = queries.version_entries(current) if current else ()
    row = queries.add_hotlist_version(
        session, entries=queries.replace_lists(base, uploaded), created_by=user.username, note=note
    )
    lists = sorted({e.hotlist for e in uploaded})
    queries.record_audit(
        session,
        username=user.username,
        action="hotlist_uploaded",
        reason=note,
        detail={"version": row.version, "file": file.filename, "entries": len(uploaded), "hotlists": lists},
        client=client_address(request),
    )
    if activate:
        _activate(session, settings, row.version, user, request)
    return version_out(row)


def _activate(session: SessionDep, settings: ApiSettings, version: int, user: User, request: Request) -> None:
    row = queries.activate_version(session, version=version, username=user.username)
    queries.record_audit(
        session,
        username=user.username,
        action="hotlist_activated",
        detail={"version": version, "entries": row.entry_count, "sha256": row.sha256},
        client=client_address(request),
    )
    _publish(settings, row, user.username)


@router.post("/versions/{version}/activate")
def activate(
    version: int, request: Request, session: SessionDep, settings: SettingsDep, user: Admin
) -> HotlistVersionOut:
    """Make a version live and publish it to the matchers (nothing changes if the broker refuses)."""
    _activate(session, settings, version, user, request)
    return version_out(queries.version_row(session, version))


@router.post("/expire", status_code=status.HTTP_201_CREATED)
def expire(
    body: HotlistExpire, request: Request, session: SessionDep, settings: SettingsDep, user: Admin
) -> HotlistVersionOut:
    """Expire entries of the active version: makes, activates and publishes a new version."""
    row = queries.expire_entries_version(
        session, entry_ids=body.entry_ids, at=body.at or utc_now(), username=user.username, note=body.note
    )
    queries.record_audit(
        session,
        username=user.username,
        action="hotlist_entries_expired",
        reason=body.note,
        detail={"version": row.version, "entry_ids": body.entry_ids[:100], "count": len(body.entry_ids)},
        client=client_address(request),
    )
    _activate(session, settings, row.version, user, request)
    return version_out(row)


@router.get("/versions/{old}/diff/{new}")
def diff(old: int, new: int, session: SessionDep, _: Reader) -> HotlistDiff:
    """What changed between two versions."""
    added, removed, changed = queries.diff_versions(session, old=old, new=new)
    return HotlistDiff(from_version=old, to_version=new, added=added, removed=removed, changed=changed)
