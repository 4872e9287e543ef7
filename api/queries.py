"""Store queries: keyword-only functions over a SQLAlchemy session (routes never write SQL inline)."""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from rapidfuzz.distance import Levenshtein
from sqlalchemy import Row, Select, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.errors import ConflictError, InvalidInputError, NotFoundError
from api.security import hash_password, new_token, token_digest, verify_password
from api.tables import (
    AuditEntry,
    Camera,
    EdgeBox,
    HeartbeatRow,
    HitRow,
    HotlistVersionRow,
    ReadPlateKey,
    ReadRow,
    Token,
    User,
)
from cordon.events import Heartbeat, HotlistEntry, HotlistHit, PlateRead, utc_now
from stream.hotlist import HotlistVersion
from stream.matching import canonical, search_keys

__all__ = [
    "act_on_alert",
    "activate_version",
    "add_hotlist_version",
    "alerts",
    "authenticate",
    "create_user",
    "diff_versions",
    "expire_entries_version",
    "purge",
    "record_audit",
    "search_reads",
    "store_events",
    "store_read_keys",
    "user_for_token",
    "version_entries",
    "version_row",
]

ALERT_STATES = ("new", "acknowledged", "escalated", "closed")


# --- audit and users ---


def record_audit(
    session: Session,
    *,
    username: str,
    action: str,
    reason: str = "",
    detail: dict[str, Any] | None = None,
    client: str = "",
) -> AuditEntry:
    """Append one audit entry (the table refuses updates and deletes)."""
    entry = AuditEntry(
        at=utc_now(), username=username, action=action, reason=reason, detail=detail or {}, client=client
    )
    session.add(entry)
    return entry


def create_user(session: Session, *, username: str, password: str, role: str) -> User:
    """Add a user with an Argon2id password hash.

    Raises
    ------
    ConflictError
        The username is taken.
    """
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError(f"username {username!r} is taken")
    user = User(
        username=username, password_hash=hash_password(password), role=role, active=True, created_at=utc_now()
    )
    session.add(user)
    session.flush()
    return user


def authenticate(
    session: Session, *, username: str, password: str, ttl: timedelta
) -> tuple[User, str, datetime] | None:
    """Check a password; on success store a new token (only its digest is kept); return it and its expiry."""
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if not verify_password(password, user.password_hash if user else None) or user is None:
        return None
    token = new_token()
    now = utc_now()
    session.add(Token(token_sha256=token_digest(token), user_id=user.id, issued_at=now, expires_at=now + ttl))
    session.execute(delete(Token).where(Token.user_id == user.id, Token.expires_at < now))
    return user, token, now + ttl


def user_for_token(session: Session, *, token: str) -> User | None:
    """The active user a bearer token belongs to, if the token is known and unexpired."""
    return session.scalar(
        select(User)
        .join(Token, Token.user_id == User.id)
        .where(Token.token_sha256 == token_digest(token), Token.expires_at > utc_now(), User.active.is_(True))
    )


def revoke_token(session: Session, *, token: str) -> None:
    session.execute(delete(Token).where(Token.token_sha256 == token_digest(token)))


# --- events from Kafka ---


def _insert_ignoring_duplicates(
    session: Session, table: Any, rows: list[dict[str, Any]], key: str, *returning: Any
) -> list[Row[Any]]:
    """Insert rows, skipping any whose ``key`` is already stored (idempotent ingest); return the inserted
    rows' ``returning`` columns (their ``key`` if none are named)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        upsert(table)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[key])
        .returning(*(returning or (getattr(table, key),)))
    )
    return list(session.execute(statement).all())


def store_read_keys(session: Session, reads: Iterable[tuple[int, str]]) -> None:
    """Store the fuzzy-search keys (:func:`stream.matching.search_keys`) of reads, given as ``(seq, plate)``
    pairs (one prepared INSERT run for many rows: faster than compiling a multi-row VALUES)."""
    rows = [{"key": key, "seq": seq} for seq, plate in reads for key in search_keys(plate)]
    for start in range(0, len(rows), _KEY_ROWS_PER_INSERT):
        session.execute(insert(ReadPlateKey), rows[start : start + _KEY_ROWS_PER_INSERT])


_KEY_ROWS_PER_INSERT = 5000


def store_events(
    session: Session,
    *,
    reads: Sequence[PlateRead] = (),
    hits: Sequence[HotlistHit] = (),
    heartbeats: Sequence[Heartbeat] = (),
) -> tuple[int, int, int]:
    """Persist events by id: a redelivered event is skipped. Returns how many of each were new."""
    now = utc_now()
    read_rows = [
        {
            "read_id": r.read_id,
            "camera_id": r.camera_id,
            "edge_box_id": r.edge_box_id,
            "captured_at": r.captured_at,
            "plate": r.plate,
            "plate_canonical": canonical(r.plate),
            "plate_raw": r.plate_raw,
            "confidence": r.confidence,
            "direction": r.direction,
            "crop_jpeg": r.crop_jpeg,
            "stored_at": now,
        }
        for r in {r.read_id: r for r in reads}.values()
    ]
    # A further sighting of an alert the operator is already handling keeps the alert's state.
    alert_ids = {h.alert_id for h in hits}
    states: dict[uuid.UUID, tuple[str, str, str, datetime | None]] = {}
    if alert_ids:
        for row in session.execute(
            select(HitRow.alert_id, HitRow.status, HitRow.outcome, HitRow.handled_by, HitRow.handled_at)
            .where(HitRow.alert_id.in_(alert_ids))
            .order_by(HitRow.seq)
        ):
            states[row.alert_id] = (row.status, row.outcome, row.handled_by, row.handled_at)
    hit_rows = []
    for h in {h.hit_id: h for h in hits}.values():
        status, outcome, handled_by, handled_at = states.get(h.alert_id, ("new", "", "", None))
        hit_rows.append(
            {
                "hit_id": h.hit_id,
                "alert_id": h.alert_id,
                "sighting": h.sighting,
                "read_id": h.read_id,
                "camera_id": h.camera_id,
                "captured_at": h.captured_at,
                "plate_read": h.plate_read,
                "priority": h.priority,
                "match_kind": h.match_kind,
                "match_score": h.match_score,
                "direction": h.direction,
                "hotlist": h.entry.hotlist,
                "hotlist_plate": h.entry.plate,
                "entry": h.entry.model_dump(mode="json"),
                "crop_jpeg": h.crop_jpeg,
                "matched_at": h.matched_at,
                "stored_at": now,
                "status": status,
                "outcome": outcome,
                "handled_by": handled_by,
                "handled_at": handled_at,
            }
        )
    beat_rows = [
        {
            "heartbeat_id": b.heartbeat_id,
            "edge_box_id": b.edge_box_id,
            "sent_at": b.sent_at,
            "body": b.model_dump(mode="json"),
        }
        for b in {b.heartbeat_id: b for b in heartbeats}.values()
    ]
    new_reads = _insert_ignoring_duplicates(
        session, ReadRow, read_rows, "read_id", ReadRow.seq, ReadRow.plate
    )
    store_read_keys(session, ((row.seq, row.plate) for row in new_reads))
    return (
        len(new_reads),
        len(_insert_ignoring_duplicates(session, HitRow, hit_rows, "hit_id")),
        len(_insert_ignoring_duplicates(session, HeartbeatRow, beat_rows, "heartbeat_id")),
    )


# --- alerts ---


def _latest_per_alert() -> Select[Any]:
    newest = select(func.max(HitRow.seq).label("seq")).group_by(HitRow.alert_id).subquery()
    return select(HitRow).join(newest, newest.c.seq == HitRow.seq)


def alerts(
    session: Session,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    status: Iterable[str] = (),
    limit: int = 100,
) -> list[HitRow]:
    """Alerts as their newest sighting. ``after_seq``: changes since (oldest first, for the live stream);
    otherwise newest first, paged with ``before_seq``."""
    query = _latest_per_alert()
    states = list(status)
    if states:
        query = query.where(HitRow.status.in_(states))
    if after_seq is not None:
        return list(session.scalars(query.where(HitRow.seq > after_seq).order_by(HitRow.seq).limit(limit)))
    if before_seq is not None:
        query = query.where(HitRow.seq < before_seq)
    return list(session.scalars(query.order_by(HitRow.seq.desc()).limit(limit)))


def alert(session: Session, *, alert_id: uuid.UUID) -> HitRow:
    """The newest sighting of an alert.

    Raises
    ------
    NotFoundError
        No such alert.
    """
    row = session.scalar(
        select(HitRow).where(HitRow.alert_id == alert_id).order_by(HitRow.seq.desc()).limit(1)
    )
    if row is None:
        raise NotFoundError(f"alert {alert_id} not found")
    return row


_NEXT = {
    "acknowledge": ({"new"}, "acknowledged"),
    "escalate": ({"new", "acknowledged"}, "escalated"),
    "close": ({"new", "acknowledged", "escalated"}, "closed"),
}


def act_on_alert(
    session: Session, *, alert_id: uuid.UUID, action: str, outcome: str, username: str
) -> HitRow:
    """Acknowledge, escalate or close an alert (every sighting's row carries the state).

    Raises
    ------
    NotFoundError
        No such alert.
    ConflictError
        The alert's state does not allow the action (e.g. it is closed).
    InvalidInputError
        Closing without an outcome.
    """
    current = alert(session, alert_id=alert_id)
    allowed_from, new_state = _NEXT[action]
    if current.status not in allowed_from:
        raise ConflictError(f"alert {alert_id} is {current.status}; cannot {action} it")
    if action == "close" and not outcome.strip():
        raise InvalidInputError("outcome: required to close an alert")
    session.execute(
        update(HitRow)
        .where(HitRow.alert_id == alert_id)
        .values(
            status=new_state, outcome=outcome or current.outcome, handled_by=username, handled_at=utc_now()
        )
    )
    session.flush()
    session.refresh(current)
    return current


# --- reads ---

_WILDCARD = re.compile(r"^[A-Z0-9*?]{1,10}$")
_SEQS_PER_QUERY = 5000
"""Candidate reads of a fuzzy search checked a query at a time (a bounded IN list)."""


def search_reads(
    session: Session,
    *,
    plate: str | None,
    mode: str,
    camera_id: str | None,
    since: datetime,
    until: datetime,
    cursor: int | None,
    limit: int,
) -> tuple[list[ReadRow], int | None]:
    """Reads in a time range, newest first, by plate (exact, wildcard ``*``/``?``, or fuzzy) and camera.

    Fuzzy finds plates equal once OCR-confusable characters are merged (O/0, I/1, B/8, ...) or one edit from
    that. It looks up the reads that share a search key with the plate (:class:`api.tables.ReadPlateKey`),
    and checks each one's distance: it reads the reads of nearby plates, not every read of the time range.

    Raises
    ------
    InvalidInputError
        The plate pattern has characters other than A-Z, 0-9 and wildcards.
    """
    query = select(ReadRow).where(ReadRow.captured_at >= since, ReadRow.captured_at < until)
    if camera_id:
        query = query.where(ReadRow.camera_id == camera_id)
    if cursor is not None:
        query = query.where(ReadRow.seq < cursor)
    query = query.order_by(ReadRow.seq.desc())
    if plate:
        plate = plate.upper().replace(" ", "")
        if not _WILDCARD.match(plate) or (mode != "wildcard" and ("*" in plate or "?" in plate)):
            raise InvalidInputError(
                f"plate: {plate!r} is not a plate or pattern (A-Z, 0-9; * and ? in wildcard)"
            )
        if mode == "exact":
            query = query.where(ReadRow.plate == plate)
        elif mode == "wildcard":
            like = plate.replace("*", "%").replace("?", "_")
            query = query.where(ReadRow.plate.like(like))
        else:
            key = canonical(plate)
            # The reads sharing a key with the plate, looked up first, so that the database never scans the
            # time range whatever its statistics say; newest first, in chunks (each a bounded IN list).
            near = select(ReadPlateKey.seq).where(ReadPlateKey.key.in_(sorted(search_keys(plate))))
            near_seqs = sorted(set(session.scalars(near)), reverse=True)
            # Plates sharing a key may be two edits apart: check the candidates' plates (not their rows,
            # which hold the crops), then read the rows of the page.
            plates = query.with_only_columns(ReadRow.seq, ReadRow.plate_canonical)
            seqs: list[int] = []
            for start in range(0, len(near_seqs), _SEQS_PER_QUERY):
                chunk = near_seqs[start : start + _SEQS_PER_QUERY]
                for seq, plate_key in session.execute(plates.where(ReadRow.seq.in_(chunk))):
                    if Levenshtein.distance(plate_key, key) <= 1:
                        seqs.append(seq)
                if len(seqs) > limit:
                    break
            query = select(ReadRow).where(ReadRow.seq.in_(seqs[: limit + 1])).order_by(ReadRow.seq.desc())
    found = list(session.scalars(query.limit(limit + 1)))
    return found[:limit], (found[limit - 1].seq if len(found) > limit else None)


def wildcard_matches(pattern: str, plate: str) -> bool:
    """The wildcard rule of :func:`search_reads` (``*`` any run, ``?`` one character), for tests and pages."""
    return fnmatch.fnmatchcase(plate, pattern)


# --- hotlists ---


def version_entries(row: HotlistVersionRow) -> tuple[HotlistEntry, ...]:
    return tuple(HotlistEntry.model_validate(e) for e in row.entries["entries"])


def version_row(session: Session, version: int) -> HotlistVersionRow:
    row = session.get(HotlistVersionRow, version)
    if row is None:
        raise NotFoundError(f"hotlist version {version} not found")
    return row


def active_version(session: Session) -> HotlistVersionRow | None:
    return session.scalar(select(HotlistVersionRow).where(HotlistVersionRow.active.is_(True)))


def add_hotlist_version(
    session: Session, *, entries: Iterable[HotlistEntry], created_by: str, note: str
) -> HotlistVersionRow:
    """Store a new (inactive) version holding ``entries``; versions are numbered 1, 2, 3, ..."""
    number = (session.scalar(select(func.max(HotlistVersionRow.version))) or 0) + 1
    version = HotlistVersion.of(entries, version=number, created_at=utc_now())
    row = HotlistVersionRow(
        version=number,
        created_at=version.created_at,
        created_by=created_by,
        note=note,
        sha256=version.sha256,
        entry_count=len(version.entries),
        hotlists=dict(sorted(Counter(e.hotlist for e in version.entries).items())),
        entries={"entries": [e.model_dump(mode="json") for e in version.entries]},
        active=False,
        activated_by="",
    )
    session.add(row)
    session.flush()
    return row


def replace_lists(base: Iterable[HotlistEntry], uploaded: Iterable[HotlistEntry]) -> list[HotlistEntry]:
    """Entries of ``base`` with each hotlist present in ``uploaded`` replaced wholesale by the upload."""
    new = list(uploaded)
    names = {e.hotlist for e in new}
    return [e for e in base if e.hotlist not in names] + new


def activate_version(session: Session, *, version: int, username: str) -> HotlistVersionRow:
    """Make ``version`` the live one (the caller publishes it to the matchers)."""
    row = version_row(session, version)
    session.execute(update(HotlistVersionRow).where(HotlistVersionRow.active.is_(True)).values(active=False))
    row.active = True
    row.activated_at = utc_now()
    row.activated_by = username
    session.flush()
    return row


def expire_entries_version(
    session: Session, *, entry_ids: Sequence[str], at: datetime, username: str, note: str
) -> HotlistVersionRow:
    """A new version equal to the active one with ``entry_ids`` expiring at ``at``.

    Raises
    ------
    ConflictError
        No version is active.
    NotFoundError
        An entry id is not in the active version (all are named).
    """
    current = active_version(session)
    if current is None:
        raise ConflictError("no hotlist version is active")
    entries = {e.entry_id: e for e in version_entries(current)}
    missing = [i for i in entry_ids if i not in entries]
    if missing:
        raise NotFoundError(f"entry_ids not in active version {current.version}: {missing[:20]}")
    for entry_id in entry_ids:
        entry = entries[entry_id]
        valid_from = entry.valid_from
        if valid_from is not None and at <= valid_from:
            at = valid_from + timedelta(milliseconds=1)
        entries[entry_id] = entry.model_copy(update={"expires_at": at})
    return add_hotlist_version(
        session,
        entries=entries.values(),
        created_by=username,
        note=note or f"expired {len(entry_ids)} entries of version {current.version}",
    )


def diff_versions(
    session: Session, *, old: int, new: int
) -> tuple[list[HotlistEntry], list[HotlistEntry], list[tuple[HotlistEntry, HotlistEntry]]]:
    """Entries added, removed and changed from version ``old`` to ``new``, by ``entry_id``."""
    before = {e.entry_id: e for e in version_entries(version_row(session, old))}
    after = {e.entry_id: e for e in version_entries(version_row(session, new))}
    added = [after[i] for i in sorted(after.keys() - before.keys())]
    removed = [before[i] for i in sorted(before.keys() - after.keys())]
    changed = [(before[i], after[i]) for i in sorted(before.keys() & after.keys()) if before[i] != after[i]]
    return added, removed, changed


# --- retention ---


def purge(
    session: Session, *, reads_before: datetime, hits_before: datetime, dry_run: bool
) -> tuple[int, int, int]:
    """Delete reads (their search keys go with them: ON DELETE CASCADE), hits and heartbeats older than the
    cut-offs (or only count them). Returns the counts."""
    targets = (
        (ReadRow, ReadRow.captured_at < reads_before),
        (HitRow, HitRow.captured_at < hits_before),
        (HeartbeatRow, HeartbeatRow.sent_at < reads_before),
    )
    counts = []
    for table, condition in targets:
        if dry_run:
            counts.append(session.scalar(select(func.count()).select_from(table).where(condition)) or 0)
        else:
            result = session.execute(delete(table).where(condition))
            counts.append(int(result.rowcount or 0))  # type: ignore[attr-defined]
    return counts[0], counts[1], counts[2]


# --- cameras and boxes ---


def upsert_camera(session: Session, *, camera_id: str, values: dict[str, Any]) -> Camera:
    camera = session.get(Camera, camera_id)
    if values.get("edge_box_id") and session.get(EdgeBox, values["edge_box_id"]) is None:
        raise InvalidInputError(f"edge_box_id: box {values['edge_box_id']!r} is not registered")
    if camera is None:
        camera = Camera(camera_id=camera_id)
        session.add(camera)
    for key, value in values.items():
        setattr(camera, key, value)
    camera.updated_at = utc_now()
    session.flush()
    return camera


def upsert_box(session: Session, *, box_id: str, values: dict[str, Any]) -> EdgeBox:
    box = session.get(EdgeBox, box_id)
    if box is None:
        box = EdgeBox(box_id=box_id)
        session.add(box)
    for key, value in values.items():
        setattr(box, key, value)
    box.updated_at = utc_now()
    session.flush()
    return box


def latest_heartbeats(session: Session) -> dict[str, HeartbeatRow]:
    """The newest heartbeat of every box that has sent one."""
    newest = (
        select(HeartbeatRow.edge_box_id, func.max(HeartbeatRow.seq).label("seq"))
        .group_by(HeartbeatRow.edge_box_id)
        .subquery()
    )
    rows = session.scalars(select(HeartbeatRow).join(newest, newest.c.seq == HeartbeatRow.seq))
    return {row.edge_box_id: row for row in rows}
