"""The planner and fleet pages in headless Chromium, against the API served by uvicorn (SQLite store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from api import queries
from api.app import BackgroundServer
from api.db import session_scope
from api.settings import ApiSettings
from cordon.broker import free_port
from cordon.events import CameraStatus, Heartbeat, utc_now
from tests.conftest import SHARED
from tests.test_api_e2e import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is installed by scripts/install.sh"),
]
ADMIN = "admin-pass-1234"


@pytest.fixture
def server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[BackgroundServer, dict[str, str]]]:
    monkeypatch.setenv("CORDON_DATA_DIR", str(SHARED / "data"))  # the plan jobs' data
    settings = ApiSettings.load(
        database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}",
        bind_port=free_port(),
        bootstrap_admin_password=ADMIN,
        consume_events=False,
    )
    with BackgroundServer(settings) as running, httpx.Client(base_url=running.url) as http:
        token = http.post("/api/v1/auth/token", data={"username": "admin", "password": ADMIN}).json()
        logins = {}
        for role in ("planner", "engineer"):
            password = f"{role}-password-1"
            http.post(
                "/api/v1/users",
                json={"username": role, "password": password, "role": role},
                headers={"Authorization": f"Bearer {token['access_token']}"},
            ).raise_for_status()
            logins[role] = password
        yield running, logins


def _browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    return playwright, playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def _log_in(page, url: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_planner_page_runs_a_plan_and_shows_the_map(server: tuple[BackgroundServer, dict[str, str]]) -> None:
    from playwright.sync_api import expect

    running, logins = server
    playwright, browser = _browser()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        _log_in(page, f"{running.url}/planner", "planner", logins["planner"])
        page.fill("input[name=cameras]", "6")
        page.click("#plan-form button[type=submit]")
        expect(page.locator("#plan-state")).to_contain_text("done", timeout=120_000)
        expect(page.locator("#downloads a")).to_have_count(3)
        frame = page.frame_locator("#plan-map")
        expect(frame.locator("body[data-ready=true]")).to_have_count(1, timeout=30_000)
        expect(frame.locator(".leaflet-interactive").first).to_be_visible()
        assert '"cameras": 6' in page.inner_text("#plan-summary")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "planner.png"), full_page=True)
    finally:
        browser.close()
        playwright.stop()


def test_fleet_page_shows_boxes_and_alerts(server: tuple[BackgroundServer, dict[str, str]]) -> None:
    from playwright.sync_api import expect

    running, logins = server
    now = utc_now()
    beats = [
        Heartbeat(
            edge_box_id="box-a580",
            sent_at=now,
            cameras=(
                CameraStatus(camera_id="cam-e", state="up", fps=24.8, processed_fps=8.1),
                CameraStatus(
                    camera_id="cam-w", state="down", fps=0.0, down_since=now - timedelta(seconds=300)
                ),
            ),
            spool_depth=3,
        ),
        Heartbeat(edge_box_id="box-m57", sent_at=now - timedelta(seconds=900)),
    ]
    with session_scope(running.app.state.sessions) as session:
        queries.store_events(session, heartbeats=beats)
    playwright, browser = _browser()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 700})
        _log_in(page, f"{running.url}/fleet", "engineer", logins["engineer"])
        expect(page.locator("#boxes tbody tr")).to_have_count(2)
        expect(page.locator("tr[data-box=box-a580]")).to_contain_text("24.8 fps")
        alerts = page.locator("#alerts")
        expect(alerts).to_contain_text("camera down: box-a580 / cam-w")
        expect(alerts).to_contain_text("box silent: box-m57")
        assert "spool" not in page.inner_text("#alerts")  # only the two real alerts
        assert page.inner_text("tr[data-box=box-a580] td:nth-child(3)") == "3"  # spool depth
        page.screenshot(path=str(ARTIFACTS / "fleet.png"), full_page=True)
    finally:
        browser.close()
        playwright.stop()
