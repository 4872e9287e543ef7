"""API against PostgreSQL: login and tokens, alerts, read search with audit, hotlists, fleet, retention."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from rapidfuzz.distance import Levenshtein
from sqlalchemy import event, func, insert, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api import queries
from api.app import create_app
from api.db import alembic_config, make_engine, migrate, session_factory, session_scope
from api.settings import ApiSettings
from api.tables import AuditEntry, HotlistVersionRow, ReadPlateKey, ReadRow
from cordon.events import CameraStatus, Heartbeat, HotlistEntry, HotlistHit, utc_now
from stream.matching import canonical, search_keys
from tests.conftest import make_read

ADMIN_PASSWORD = "admin-pass-1234"
ROLES = ("operator", "planner", "engineer", "auditor", "admin")


class Api:
    """A TestClient with one logged-in token per role."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    def login(self, username: str, password: str) -> str:
        response = self.client.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @property
    def sessions(self):  # type: ignore[no-untyped-def]
        return self.client.app.state.sessions  # type: ignore[attr-defined]

    def audit(self, action: str) -> list[AuditEntry]:
        with session_scope(self.sessions) as session:
            return list(session.query(AuditEntry).filter(AuditEntry.action == action).order_by(AuditEntry.id))


def make_api(database_url: str, **overrides: object) -> Iterator[Api]:
    settings = ApiSettings.load(
        database_url=database_url,
        bootstrap_admin_password=ADMIN_PASSWORD,
        hotlist_publish=False,
        registry_publish=False,
        **overrides,
    )
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        api = Api(client)
        api.tokens["admin"] = api.login("admin", ADMIN_PASSWORD)
        for role in ROLES[:-1]:
            response = client.post(
                "/api/v1/users",
                json={"username": f"{role}1", "password": f"{role}-password-1", "role": role},
                headers=api.as_("admin"),
            )
            assert response.status_code == 201, response.text
            api.tokens[role] = api.login(f"{role}1", f"{role}-password-1")
        yield api
    app.state.engine.dispose()


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    yield from make_api(pg_url)


def make_hit(plate: str = "LV70XKM", *, sighting: int = 1, alert_id: uuid.UUID | None = None) -> HotlistHit:
    read = make_read(plate)
    entry = HotlistEntry(
        entry_id=f"pnc-stolen:{plate}",
        plate=plate,
        hotlist="pnc-stolen",
        source="PNC",
        category="stolen",
        priority=1,
        action="Stop the vehicle",
        information="stolen in a burglary",
    )
    return HotlistHit(
        hit_id=uuid.uuid4(),
        alert_id=alert_id or uuid.uuid4(),
        sighting=sighting,
        read_id=read.read_id,
        camera_id=read.camera_id,
        captured_at=read.captured_at,
        plate_read=plate,
        confidence=0.95,
        direction="in",
        entry=entry,
        hotlist_version=1,
        match_kind="exact",
        match_score=1.0,
        priority=1,
        matched_at=utc_now(),
        crop_jpeg=b"\xff\xd8fakejpeg",
    )


def test_migrations_make_an_append_only_audit_log_on_postgres(api: Api) -> None:
    assert api.audit("login")  # the logins above
    with pytest.raises(Exception, match="append-only"), session_scope(api.sessions) as session:
        session.execute(text("UPDATE audit_log SET reason = 'tampered'"))
    with pytest.raises(Exception, match="append-only"), session_scope(api.sessions) as session:
        session.execute(text("DELETE FROM audit_log"))


def test_login_is_audited_and_a_wrong_password_gets_401(api: Api) -> None:
    response = api.client.post("/api/v1/auth/token", data={"username": "operator1", "password": "wrong-one"})
    assert response.status_code == 401
    failed = api.audit("login_failed")
    assert [e.username for e in failed] == ["operator1"]
    assert "wrong-one" not in json.dumps([e.detail for e in failed])  # no secrets in the audit log
    assert api.client.get("/api/v1/auth/me").status_code == 401
    me = api.client.get("/api/v1/auth/me", headers=api.as_("planner")).json()
    assert me["role"] == "planner"


def test_logout_revokes_the_token(api: Api) -> None:
    headers = api.as_("operator")
    assert api.client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert api.client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_login_is_rate_limited_per_address(pg_url: str) -> None:
    for api in make_api(pg_url, login_rate_limit="8/minute"):
        codes = [
            api.client.post("/api/v1/auth/token", data={"username": "x", "password": "y"}).status_code
            for _ in range(5)
        ]
        # make_api logged in 5 times already: the limit of 8 is reached within these 5.
        assert codes[:3] == [401, 401, 401]
        assert codes[3:] == [429, 429]


def test_passwords_are_stored_hashed(api: Api) -> None:
    with session_scope(api.sessions) as session:
        hashes = [row[0] for row in session.execute(text("SELECT password_hash FROM users"))]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any("password-1" in h for h in hashes)


def test_alert_lifecycle_is_audited_and_sightings_keep_the_state(api: Api) -> None:
    first = make_hit()
    with session_scope(api.sessions) as session:
        assert queries.store_events(session, hits=[first, first]) == (0, 1, 0)  # idempotent by hit_id
    op = api.as_("operator")
    page = api.client.get("/api/v1/hits", headers=op).json()
    assert [h["alert_id"] for h in page["items"]] == [str(first.alert_id)]
    hit = page["items"][0]
    assert (hit["status"], hit["action"], hit["priority"], hit["has_crop"]) == (
        "new",
        "Stop the vehicle",
        1,
        True,
    )
    crop = api.client.get(f"/api/v1/hits/{first.alert_id}/crop.jpg", headers=op)
    assert crop.content == first.crop_jpeg
    assert crop.headers["content-type"] == "image/jpeg"

    acked = api.client.post(
        f"/api/v1/hits/{first.alert_id}/actions", json={"action": "acknowledge"}, headers=op
    )
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["handled_by"] == "operator1"
    again = api.client.post(
        f"/api/v1/hits/{first.alert_id}/actions", json={"action": "acknowledge"}, headers=op
    )
    assert again.status_code == 409
    no_outcome = api.client.post(
        f"/api/v1/hits/{first.alert_id}/actions", json={"action": "close"}, headers=op
    )
    assert no_outcome.status_code == 422
    assert "outcome" in no_outcome.json()["detail"]

    second = make_hit(sighting=2, alert_id=first.alert_id)
    with session_scope(api.sessions) as session:
        queries.store_events(session, hits=[second])
    newest = api.client.get(f"/api/v1/hits/{first.alert_id}", headers=op).json()
    assert (newest["sighting"], newest["status"]) == (2, "acknowledged")

    closed = api.client.post(
        f"/api/v1/hits/{first.alert_id}/actions",
        json={"action": "close", "outcome": "stopped, driver arrested"},
        headers=op,
    )
    assert closed.json()["status"] == "closed"
    assert [e.detail["alert_id"] for e in api.audit("alert_acknowledge")] == [str(first.alert_id)]
    assert [e.reason for e in api.audit("alert_close")] == ["stopped, driver arrested"]
    assert api.client.get("/api/v1/hits?status=new", headers=op).json()["items"] == []
    missing = api.client.get(f"/api/v1/hits/{uuid.uuid4()}", headers=op)
    assert missing.status_code == 404


def test_read_search_needs_a_reason_and_is_audited(api: Api) -> None:
    reads = [make_read("AB12CDE", seconds=-60), make_read("AB12CDF", seconds=-30), make_read("XY99ZZZ")]
    reads.append(make_read("A812CDE", camera_id="cam2", seconds=-10))  # B read as 8
    with session_scope(api.sessions) as session:
        assert queries.store_events(session, reads=reads + reads[:1]) == (4, 0, 0)
    op = api.as_("operator")
    no_reason = api.client.get("/api/v1/reads", params={"plate": "AB12CDE"}, headers=op)
    assert no_reason.status_code == 422

    def search(**params: str) -> list[str]:
        response = api.client.get(
            "/api/v1/reads", params={"reason": "crime ref 01/12345/26", **params}, headers=op
        )
        assert response.status_code == 200, response.text
        return [r["plate"] for r in response.json()["items"]]

    assert search(plate="AB12CDE") == ["AB12CDE"]
    assert search(plate="AB12CD*", mode="wildcard") == ["AB12CDF", "AB12CDE"]
    assert search(plate="AB12CD?", mode="wildcard") == ["AB12CDF", "AB12CDE"]
    assert search(plate="AB12CDE", mode="fuzzy") == ["A812CDE", "AB12CDF", "AB12CDE"]
    assert search(plate="AB12CDE", mode="fuzzy", camera_id="cam2") == ["A812CDE"]
    # Fuzzy looks reads up by search keys, not by scanning the range: any range will do.
    years = {"since": "2020-01-01T00:00:00Z"}
    assert search(plate="AB12CDE", mode="fuzzy", **years) == ["A812CDE", "AB12CDF", "AB12CDE"]
    assert len(search()) == 4
    bad = api.client.get(
        "/api/v1/reads", params={"reason": "crime ref 01/12345/26", "plate": "AB-12"}, headers=op
    )
    assert bad.status_code == 422
    assert "plate" in bad.text

    audits = api.audit("reads_search")
    assert len(audits) == 7
    assert audits[0].reason == "crime ref 01/12345/26"
    assert audits[0].detail["plate"] == "AB12CDE"
    assert audits[0].username == "operator1"
    assert (
        api.client.get("/api/v1/reads", params={"reason": "x" * 12}, headers=api.as_("planner")).status_code
        == 403
    )


def test_reads_paginate_without_gaps_or_repeats(api: Api) -> None:
    reads = [make_read(f"AB{i:02d}CDE", seconds=-i) for i in range(25)]
    with session_scope(api.sessions) as session:
        queries.store_events(session, reads=reads)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"reason": "audit sample 2026", "limit": "10", **({"cursor": str(cursor)} if cursor else {})}
        page = api.client.get("/api/v1/reads", params=params, headers=api.as_("operator")).json()
        seen += [r["plate"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(r.plate for r in reads)


HOTLIST_CSV = """plate,category,priority,action,information
LV70 XKM,stolen,1,Stop the vehicle,stolen in a burglary
YK19RFN,intelligence,3,Do not stop: intelligence only,
"""


def test_hotlist_upload_validates_versions_diffs_and_expires(api: Api) -> None:
    admin = api.as_("admin")
    files = {"file": ("pnc.csv", HOTLIST_CSV.encode(), "text/csv")}
    first = api.client.post(
        "/api/v1/hotlists/versions", files=files, data={"hotlist": "pnc-stolen"}, headers=admin
    )
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["entry_count"], first.json()["active"]) == (1, 2, False)

    bad = "plate,category,priority,action\nLV70XKM,stolen,9,Stop\n!!!,stolen,1,Stop\n"
    rejected = api.client.post(
        "/api/v1/hotlists/versions",
        files={"file": ("bad.csv", bad.encode(), "text/csv")},
        data={"hotlist": "pnc-stolen"},
        headers=admin,
    )
    assert rejected.status_code == 422
    assert "row 2" in rejected.json()["detail"]
    assert "priority" in rejected.json()["detail"]
    assert "row 3" in rejected.json()["detail"]
    assert "plate" in rejected.json()["detail"]
    assert len(api.client.get("/api/v1/hotlists/versions", headers=admin).json()) == 1  # nothing changed

    assert api.client.post("/api/v1/hotlists/versions/1/activate", headers=admin).json()["active"] is True
    more = "plate,category,priority,action\nGN66WTA,no-insurance,2,Stop if resources allow\n"
    second = api.client.post(
        "/api/v1/hotlists/versions",
        files={"file": ("insurance.csv", more.encode(), "text/csv")},
        data={"hotlist": "no-insurance", "activate": "true"},
        headers=admin,
    ).json()
    assert (second["version"], second["entry_count"], second["active"]) == (2, 3, True)
    assert second["hotlists"] == {"pnc-stolen": 2, "no-insurance": 1}

    diff = api.client.get("/api/v1/hotlists/versions/1/diff/2", headers=api.as_("operator")).json()
    assert [e["plate"] for e in diff["added"]] == ["GN66WTA"]
    assert diff["removed"] == []
    assert diff["changed"] == []

    expired = api.client.post(
        "/api/v1/hotlists/expire",
        json={"entry_ids": ["pnc-stolen:LV70XKM"], "note": "vehicle recovered"},
        headers=admin,
    ).json()
    assert (expired["version"], expired["active"]) == (3, True)
    changed = api.client.get("/api/v1/hotlists/versions/2/diff/3", headers=admin).json()["changed"]
    assert [(old["expires_at"], new["plate"]) for old, new in changed] == [(None, "LV70XKM")]
    unknown = api.client.post("/api/v1/hotlists/expire", json={"entry_ids": ["nope:AB12CDE"]}, headers=admin)
    assert unknown.status_code == 404
    actions = [e.action for e in api.audit("hotlist_uploaded") + api.audit("hotlist_activated")]
    assert actions.count("hotlist_uploaded") == 2
    assert actions.count("hotlist_activated") == 3
    assert (
        api.client.post("/api/v1/hotlists/versions/1/activate", headers=api.as_("operator")).status_code
        == 403
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty store (PostgreSQL or SQLite), for tests that migrate it step by step."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_listing_hotlist_versions_reads_no_entries(api: Api) -> None:
    """A version's entries can be hundreds of MB: the versions list comes from the per-list counts alone."""
    admin = api.as_("admin")
    for name in ("pnc-stolen", "local-intel"):
        files = {"file": (f"{name}.csv", HOTLIST_CSV.encode(), "text/csv")}
        uploaded = api.client.post(
            "/api/v1/hotlists/versions", files=files, data={"hotlist": name}, headers=admin
        )
        assert uploaded.status_code == 201, uploaded.text
        api.client.post(f"/api/v1/hotlists/versions/{uploaded.json()['version']}/activate", headers=admin)
    statements: list[str] = []
    engine = api.client.app.state.engine  # type: ignore[attr-defined]

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        versions = api.client.get("/api/v1/hotlists/versions", headers=admin).json()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [(v["version"], v["hotlists"]) for v in versions] == [
        (2, {"local-intel": 2, "pnc-stolen": 2}),
        (1, {"pnc-stolen": 2}),
    ]
    version_queries = [s for s in statements if "hotlist_versions" in s]
    assert version_queries
    assert not [s for s in version_queries if "hotlist_versions.entries" in s]


def test_upgrading_a_store_with_hotlist_versions_counts_their_lists(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "0002")
    entries = [{"hotlist": "pnc-stolen"}] * 3 + [{"hotlist": "no-insurance"}]
    with engine.begin() as connection:
        for version, stored in ((1, entries[:2]), (2, entries)):
            connection.execute(
                text(
                    "INSERT INTO hotlist_versions (version, created_at, created_by, note, sha256, "
                    "entry_count, entries, active, activated_by) VALUES (:version, :at, 'admin', '', "
                    "'0', :count, :entries, :active, '')"
                ),
                {
                    "version": version,
                    "at": utc_now(),
                    "count": len(stored),
                    "entries": json.dumps({"entries": stored}),
                    "active": version == 2,
                },
            )
    migrate(engine)
    with session_scope(session_factory(engine)) as session:
        counts = {row.version: row.hotlists for row in session.scalars(select(HotlistVersionRow))}
    assert counts == {1: {"pnc-stolen": 2}, 2: {"no-insurance": 1, "pnc-stolen": 3}}
    command.downgrade(alembic_config(engine), "0002")
    with engine.connect() as connection:
        assert "hotlists" not in {c["name"] for c in inspect(connection).get_columns("hotlist_versions")}


def test_cameras_boxes_config_and_fleet_health(api: Api) -> None:
    from edge.settings import EdgeSettings

    eng = api.as_("engineer")
    assert (
        api.client.put("/api/v1/boxes/box-7", json={"site": "A580 East Lancs Rd"}, headers=eng).status_code
        == 200
    )
    camera = {
        "name": "A580 eastbound",
        "edge_box_id": "box-7",
        "rtsp_url": "rtsp://10.1.2.3:554/stream1",
        "latitude": 53.45,
        "longitude": -2.85,
        "road": "A580",
        "bearing_deg": 90,
        "arterial": True,
        "inbound_motion": "down",
    }
    assert api.client.put("/api/v1/cameras/cam-a580-e", json=camera, headers=eng).status_code == 200
    orphan = api.client.put("/api/v1/cameras/cam-x", json={**camera, "edge_box_id": "nope"}, headers=eng)
    assert orphan.status_code == 422
    assert "edge_box_id" in orphan.text
    config = api.client.get("/api/v1/boxes/box-7/config", headers=eng)
    assert config.status_code == 200
    import yaml

    loaded = EdgeSettings.model_validate(yaml.safe_load(config.text))
    assert loaded.box_id == "box-7"
    assert [c.id for c in loaded.cameras] == ["cam-a580-e"]
    assert loaded.cameras[0].credentials_env == "CORDON_RTSP_CAM_A580_E"
    assert "@" not in config.text  # no credentials in the rendered config

    now = utc_now()
    beat = Heartbeat(
        edge_box_id="box-7",
        sent_at=now - timedelta(seconds=5),
        cameras=(
            CameraStatus(
                camera_id="cam-a580-e", state="down", fps=0.0, down_since=now - timedelta(seconds=120)
            ),
        ),
        spool_depth=12,
    )
    stale = Heartbeat(edge_box_id="box-9", sent_at=now - timedelta(seconds=600))
    with session_scope(api.sessions) as session:
        queries.store_events(session, heartbeats=[beat, beat, stale])
    fleet = api.client.get("/api/v1/fleet", headers=eng).json()
    assert {(a["kind"], a["box_id"]) for a in fleet["alerts"]} == {
        ("camera_down", "box-7"),
        ("box_silent", "box-9"),
    }
    box = next(b for b in fleet["boxes"] if b["box_id"] == "box-7")
    assert (box["registered"], box["spool_depth"]) == (True, 12)
    assert api.client.get("/api/v1/fleet", headers=api.as_("operator")).status_code == 403


def test_retention_purge_dry_run_then_real(api: Api) -> None:
    old = make_read("OL00OLD", seconds=-400 * 86400)
    new = make_read("NE00NEW")
    with session_scope(api.sessions) as session:
        queries.store_events(session, reads=[old, new])
    admin = api.as_("admin")
    dry = api.client.post("/api/v1/retention/purge", headers=admin).json()
    assert (dry["dry_run"], dry["reads"]) == (True, 1)
    real = api.client.post("/api/v1/retention/purge", params={"dry_run": "false"}, headers=admin).json()
    assert (real["dry_run"], real["reads"]) == (False, 1)
    left = api.client.get(
        "/api/v1/reads", params={"reason": "retention check", "since": "2020-01-01T00:00:00Z"}, headers=admin
    ).json()
    assert [r["plate"] for r in left["items"]] == ["NE00NEW"]
    with session_scope(api.sessions) as session:  # the purged read's search keys went with it
        assert set(session.scalars(select(ReadPlateKey.key))) == search_keys("NE00NEW")
    assert len(api.audit("retention_purge")) == 2
    audit = api.client.get("/api/v1/audit", params={"action": "retention_purge"}, headers=api.as_("auditor"))
    assert len(audit.json()["items"]) == 2


def _fuzzy_search(session: Session, plate: str, *, camera_id: str | None = None, limit: int = 7) -> list[int]:
    """Every page of a fuzzy search over all time: the reads' seqs, in the order found."""
    found: list[int] = []
    cursor = None
    while True:
        rows, cursor = queries.search_reads(
            session,
            plate=plate,
            mode="fuzzy",
            camera_id=camera_id,
            since=utc_now() - timedelta(days=365),
            until=utc_now() + timedelta(days=1),
            cursor=cursor,
            limit=limit,
        )
        found += [row.seq for row in rows]
        if cursor is None:
            return found


def _fuzzy_scan(session: Session, plate: str, *, camera_id: str | None = None) -> list[int]:
    """What a fuzzy search must find: a scan of every read, newest first."""
    return [
        row.seq
        for row in session.scalars(select(ReadRow).order_by(ReadRow.seq.desc()))
        if Levenshtein.distance(canonical(row.plate), canonical(plate)) <= 1
        and camera_id in (None, row.camera_id)
    ]


def _plates_near(plate: str, rng: random.Random, count: int) -> list[str]:
    """Plates one confusion, one edit, two edits from ``plate``, and unrelated ones."""
    alphabet = "ABCDEFGHJKLMNOPRSTUVWXYZ0123456789"
    plates = []
    for n in range(count):
        chars = list(plate)
        for _ in range(n % 4):  # 0, 1, 2 or 3 random edits
            i = rng.randrange(len(chars))
            op = rng.choice(["sub", "ins", "del", "confuse"])
            if op == "sub":
                chars[i] = rng.choice(alphabet)
            elif op == "ins" and len(chars) < 10:
                chars.insert(i, rng.choice(alphabet))
            elif op == "del" and len(chars) > 2:
                del chars[i]
            else:
                chars[i] = {"B": "8", "8": "B", "O": "0", "0": "O", "1": "I", "I": "1"}.get(
                    chars[i], chars[i]
                )
        plates.append("".join(chars) if n % 5 else "".join(rng.choices(alphabet, k=7)))
    return plates


def test_fuzzy_read_search_finds_what_a_scan_of_every_read_finds(api: Api) -> None:
    rng = random.Random(5)
    plates = _plates_near("AB12CDE", rng, 150) + _plates_near("LV70XKM", rng, 150)
    reads = [make_read(p, camera_id=f"cam{n % 3}", seconds=-n) for n, p in enumerate(plates)]
    with session_scope(api.sessions) as session:
        queries.store_events(session, reads=reads[:200])
        queries.store_events(session, reads=reads[100:])  # a redelivery: its keys are not stored twice
    with session_scope(api.sessions) as session:
        assert session.scalar(select(func.count()).select_from(ReadPlateKey)) == sum(
            len(search_keys(p)) for p in plates
        )
        for query in ("AB12CDE", "A812CDE", "AB12CD", "AB12CDEF", "LV70XKM", "LV7OXK", "ZZ99ZZZ"):
            expected = _fuzzy_scan(session, query)
            assert _fuzzy_search(session, query) == expected
            assert _fuzzy_search(session, query, camera_id="cam1") == _fuzzy_scan(
                session, query, camera_id="cam1"
            )
        assert len(_fuzzy_scan(session, "AB12CDE")) > 20  # the searches above found something


def test_upgrading_a_store_with_reads_fills_in_their_search_keys(engine: Engine) -> None:
    """Reads stored before the keys table existed are found by a fuzzy search after the upgrade."""
    command.upgrade(alembic_config(engine), "0001")
    plates = _plates_near("AB12CDE", random.Random(9), 6000)  # more than one batch of the backfill
    now = utc_now()
    rows = [
        {
            "read_id": uuid.uuid4(),
            "camera_id": "cam1",
            "edge_box_id": "box-test",
            "captured_at": now - timedelta(seconds=n),
            "plate": p,
            "plate_canonical": canonical(p),
            "plate_raw": p,
            "confidence": 0.9,
            "direction": None,
            "crop_jpeg": None,
            "stored_at": now,
        }
        for n, p in enumerate(plates)
    ]
    with engine.begin() as connection:
        connection.execute(insert(ReadRow), rows)
    migrate(engine)
    with session_scope(session_factory(engine)) as session:
        keys = session.scalar(select(func.count()).select_from(ReadPlateKey))
        assert keys == sum(len(search_keys(p)) for p in plates)
        expected = _fuzzy_scan(session, "AB12CDE")
        assert len(expected) > 1000
        assert _fuzzy_search(session, "AB12CDE", limit=500) == expected
    command.downgrade(alembic_config(engine), "0001")
    with engine.connect() as connection:
        assert not inspect(connection).has_table("read_plate_keys")


def test_health_readiness_metrics_and_pages(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json()["ready"] is True
    assert "python_info" in api.client.get("/metrics").text
    for page in ("/", "/control-room", "/planner", "/fleet"):
        response = api.client.get(page)
        assert response.status_code == 200
        assert "http://" not in response.text
        assert "https://" not in response.text
    assert api.client.get("/static/leaflet/leaflet.js").status_code == 200


def test_planner_runs_a_plan_job_and_serves_its_files(api: Api) -> None:
    planner = api.as_("planner")
    started = api.client.post("/api/v1/plans", json={"cameras": 5, "radius_m": 150}, headers=planner)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    deadline = time.monotonic() + 120
    job = started.json()
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = api.client.get(f"/api/v1/plans/{job_id}", headers=planner).json()
    assert job["state"] == "done", job
    assert job["summary"]["cctv"]["cameras"] == 5
    assert job["summary"]["anpr"]["certificate_holds"] is True
    geojson = api.client.get(f"/api/v1/plans/{job_id}/sites.geojson", headers=planner)
    features = geojson.json()["features"]
    assert len(features) == job["summary"]["ranked_sites"]
    assert [f["properties"]["rank"] for f in features] == list(range(1, len(features) + 1))
    assert api.client.get(f"/api/v1/plans/{job_id}/map.html", headers=planner).text.startswith("<!")
    assert api.client.get(f"/api/v1/plans/{job_id}/sites.csv", headers=api.as_("operator")).status_code == 403
    assert [e.detail["job_id"] for e in api.audit("plan_started")] == [job_id]


def test_migrations_match_the_tables(api: Api) -> None:
    """Alembic's autogenerate finds nothing to add: the migrations create exactly the tables' schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from api.tables import Base

    with api.client.app.state.engine.connect() as connection:  # type: ignore[attr-defined]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_no_password_or_token_reaches_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    token = api.login("operator1", "operator-password-1")
    api.client.post("/api/v1/auth/token", data={"username": "operator1", "password": "a-wrong-password"})
    api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    for secret in ("operator-password-1", "a-wrong-password", token):
        assert secret not in logged
