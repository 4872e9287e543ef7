"""End to end, all real: Tansu broker, PostgreSQL, the matcher, the API under uvicorn, headless Chromium."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from kafka import KafkaProducer

from api.app import BackgroundServer
from api.settings import ApiSettings
from cordon.broker import EmbeddedBroker, free_port
from cordon.events import DeadLetter, Heartbeat, decode, encode, utc_now
from stream.service import MatcherService
from stream.settings import MatcherSettings
from tests.conftest import REPO, make_read, read_topic
from tests.test_api import ADMIN_PASSWORD, make_hit

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _plate_crop(text: str) -> bytes:
    """A JPEG plate crop, as the edge sends it."""
    image = np.full((40, 160, 3), (0, 214, 255), np.uint8)
    cv2.putText(image, text, (6, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def _wait(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def _api_settings(pg_url: str, broker: EmbeddedBroker) -> ApiSettings:
    return ApiSettings.load(
        database_url=pg_url,
        kafka_bootstrap=broker.bootstrap,
        bind_port=free_port(),
        bootstrap_admin_password=ADMIN_PASSWORD,
        group_id=f"api-{uuid.uuid4().hex[:6]}",
        session_timeout_ms=6000,
        max_poll_interval_ms=10000,
    )


class Client:
    """httpx against the running server, logged in per role."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.headers: dict[str, str] = {}

    def login(self, role: str, username: str, password: str) -> None:
        response = self.http.post("/api/v1/auth/token", data={"username": username, "password": password})
        response.raise_for_status()
        self.headers[role] = f"Bearer {response.json()['access_token']}"

    def add_user(self, role: str) -> tuple[str, str]:
        username, password = f"{role}1", f"{role}-password-1"
        response = self.http.post(
            "/api/v1/users",
            json={"username": username, "password": password, "role": role},
            headers={"Authorization": self.headers["admin"]},
        )
        response.raise_for_status()
        self.login(role, username, password)
        return username, password

    def get(self, role: str, path: str, **params: str) -> httpx.Response:
        return self.http.get(path, params=params, headers={"Authorization": self.headers[role]})


@pytest.fixture
def client_factory() -> Iterator[Callable[[str], Client]]:
    clients: list[Client] = []

    def make(url: str) -> Client:
        client = Client(url)
        client.login("admin", "admin", ADMIN_PASSWORD)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.http.close()


@pytest.mark.slow
def test_ingest_stores_each_event_once_parks_bad_ones_and_survives_a_broker_restart(
    pg_url: str, broker: EmbeddedBroker, client_factory: Callable[[str], Client]
) -> None:
    reads = [make_read(f"AB{i:02d}CDE", seconds=-i) for i in range(40)]
    hits = [make_hit("LV70XKM"), make_hit("GN66WTA")]
    beat = Heartbeat(edge_box_id="box-1", sent_at=utc_now())
    with BackgroundServer(_api_settings(pg_url, broker)) as server:
        api = client_factory(server.url)
        api.add_user("operator")
        api.add_user("engineer")
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        try:
            for read in reads + reads[:10]:  # ten redelivered
                producer.send("cordon.reads", key=read.camera_id.encode(), value=encode(read))
            for hit in hits + hits:
                producer.send("cordon.hits", value=encode(hit))
            producer.send("cordon.heartbeats", value=encode(beat))
            producer.send("cordon.reads", value=b'{"type": "plate_read", "schema_version": 1, "plate": "x"}')
            producer.send("cordon.reads", value=b"\xff not json")
            producer.flush()
        finally:
            producer.close()

        def stored() -> int:
            items = api.get("operator", "/api/v1/reads", reason="ingest test check", limit="500").json()[
                "items"
            ]
            return len(items)

        _wait(lambda: stored() == 40, what="40 reads stored")
        _wait(lambda: len(api.get("operator", "/api/v1/hits").json()["items"]) == 2, what="2 alerts")
        fleet = api.get("engineer", "/api/v1/fleet").json()
        assert [b["box_id"] for b in fleet["boxes"]] == ["box-1"]
        dead = [decode(v) for v in read_topic(broker.bootstrap, "cordon.dlq")]
        assert len(dead) == 2
        assert all(isinstance(d, DeadLetter) and d.source_topic == "cordon.reads" for d in dead)

        # The broker dies (in-memory: it comes back empty); the ingest reconnects and goes on.
        broker.stop()
        time.sleep(3)
        broker.start()
        later = [make_read(f"CD{i:02d}EFG") for i in range(5)]
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        try:
            for read in later + reads[:3]:
                producer.send("cordon.reads", key=read.camera_id.encode(), value=encode(read))
            producer.flush()
        finally:
            producer.close()
        _wait(lambda: stored() == 45, timeout_s=60, what="45 reads after the broker restart")
        time.sleep(1.0)
        assert stored() == 45  # the three redelivered reads were not stored twice


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is installed by scripts/install.sh")
def test_control_room_page_shows_a_hit_within_2s_and_the_acknowledgement_is_audited(
    pg_url: str, broker: EmbeddedBroker, client_factory: Callable[[str], Client]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with BackgroundServer(_api_settings(pg_url, broker)) as server:
        api = client_factory(server.url)
        operator, password = api.add_user("operator")
        api.add_user("auditor")
        hotlist = (
            "plate,category,priority,action,information\n"
            "LV70XKM,stolen,1,Stop the vehicle,stolen in a burglary\n"
            "YK19RFN,stolen,2,Stop if safe,\n"
        )
        api.add_user("engineer")
        camera = {"name": "A580 eastbound", "latitude": 53.4663, "longitude": -2.8468, "road": "A580"}
        api.http.put(
            "/api/v1/cameras/cam1", json=camera, headers={"Authorization": api.headers["engineer"]}
        ).raise_for_status()
        response = api.http.post(
            "/api/v1/hotlists/versions",
            files={"file": ("pnc.csv", hotlist.encode(), "text/csv")},
            data={"hotlist": "pnc-stolen", "activate": "true"},
            headers={"Authorization": api.headers["admin"]},
        )
        assert response.status_code == 201, response.text

        matcher = MatcherService(
            MatcherSettings.load(
                kafka_bootstrap=broker.bootstrap,
                group_id=f"matcher-{uuid.uuid4().hex[:6]}",
                session_timeout_ms=6000,
                max_poll_interval_ms=10000,
                metrics_port=None,
                all_cameras_hotlists=("pnc-stolen",),
            )
        )
        thread = threading.Thread(target=matcher.run, daemon=True)
        thread.start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        try:
            _wait(lambda: matcher.hotlist_version == 1, what="the matcher to load the activated hotlist")
            # Warm the path (group joins of the matcher and the API's ingest) with another listed plate.
            producer.send("cordon.reads", key=b"cam1", value=encode(make_read("YK19RFN"))).get(10)
            _wait(
                lambda: len(api.get("operator", "/api/v1/hits").json()["items"]) == 1,
                timeout_s=60,
                what="the warm-up hit",
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 800})
                    page.goto(f"{server.url}/control-room")
                    page.fill("input[name=username]", operator)
                    page.fill("input[name=password]", password)
                    page.click("button[type=submit]")
                    expect(page.locator("#stream-state")).to_have_text("live", timeout=10_000)
                    expect(page.locator("tr[data-plate=YK19RFN]")).to_be_visible()

                    read = make_read("LV70XKM").model_copy(update={"crop_jpeg": _plate_crop("LV70 XKM")})
                    sent = time.monotonic()
                    producer.send("cordon.reads", key=b"cam1", value=encode(read)).get(10)
                    row = page.locator("tr[data-plate=LV70XKM]")
                    row.wait_for(state="visible", timeout=10_000)
                    elapsed = time.monotonic() - sent
                    assert elapsed <= 2.0, f"the hit took {elapsed:.2f} s to reach the page"
                    expect(row).to_contain_text("Stop the vehicle")
                    expect(row).to_contain_text("P1")
                    expect(row).to_contain_text("A580")
                    crop = row.locator("img.crop")
                    expect(crop).to_have_attribute("src", re.compile(r"^blob:"))
                    assert crop.evaluate("img => img.decode().then(() => img.naturalWidth)") == 160
                    expect(page.locator("#map .leaflet-interactive")).to_have_count(1)  # the camera

                    row.locator("button.ack").click()
                    acknowledged = page.locator("tr[data-plate=LV70XKM] td.status")
                    expect(acknowledged).to_contain_text(f"acknowledged by {operator}")
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(ARTIFACTS / "control-room.png"), full_page=True)
                finally:
                    browser.close()
        finally:
            producer.close()
            matcher.stop()
            thread.join(30)

        audit = api.get("auditor", "/api/v1/audit", action="alert_acknowledge").json()["items"]
        assert [(e["username"], e["detail"]["plate"]) for e in audit] == [(operator, "LV70XKM")]
        print(f"read -> control-room page: {elapsed:.2f} s")


@pytest.mark.slow
def test_cameras_registered_in_the_api_decide_where_the_matcher_raises_hits(
    pg_url: str, broker: EmbeddedBroker, client_factory: Callable[[str], Client]
) -> None:
    """The matcher follows the registry the API publishes (cordon.cameras): arterial cameras raise hits."""
    with BackgroundServer(_api_settings(pg_url, broker)) as server:
        api = client_factory(server.url)
        api.add_user("engineer")
        engineer = {"Authorization": api.headers["engineer"]}
        for camera_id, arterial in (("cam-a580", True), ("cam-side", False), ("cam-gone", True)):
            api.http.put(
                f"/api/v1/cameras/{camera_id}", json={"road": "A580", "arterial": arterial}, headers=engineer
            ).raise_for_status()
        api.http.delete("/api/v1/cameras/cam-gone", headers=engineer).raise_for_status()
        response = api.http.post(
            "/api/v1/hotlists/versions",
            files={
                "file": (
                    "intel.csv",
                    b"plate,category,priority,action\nLV70XKM,intel,3,Log only\n",
                    "text/csv",
                )
            },
            data={"hotlist": "local-intel", "activate": "true"},
            headers={"Authorization": api.headers["admin"]},
        )
        assert response.status_code == 201, response.text
        matcher = MatcherService(
            MatcherSettings.load(
                kafka_bootstrap=broker.bootstrap,
                group_id=f"matcher-{uuid.uuid4().hex[:6]}",
                session_timeout_ms=6000,
                max_poll_interval_ms=10000,
                metrics_port=None,
            )
        )
        thread = threading.Thread(target=matcher.run, daemon=True)
        thread.start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        try:
            _wait(
                lambda: matcher.hotlist_version == 1 and len(matcher.matcher.registry) == 2, what="registry"
            )
            assert matcher.matcher.registry.is_arterial("cam-a580")
            for camera_id in ("cam-side", "cam-gone", "cam-unknown", "cam-a580"):
                read = make_read("LV70XKM", camera_id=camera_id)
                producer.send("cordon.reads", key=camera_id.encode(), value=encode(read)).get(10)
            _wait(lambda: matcher.hits_published >= 1, what="the arterial camera's hit")
            time.sleep(2.0)
        finally:
            producer.close()
            matcher.stop()
            thread.join(30)
        hits = [decode(v) for v in read_topic(broker.bootstrap, "cordon.hits")]
        assert [h.camera_id for h in hits] == ["cam-a580"]  # type: ignore[union-attr]
