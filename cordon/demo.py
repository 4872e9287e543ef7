"""``cordon demo``: the whole system on embedded defaults, on one machine.

Starts the embedded broker (Tansu), a simulated RTSP camera with known UK plates, an edge worker with the real
plate models, the matcher, and the API with SQLite (control-room, planner and fleet pages); registers the
camera and its box in the API, uploads and activates the demo hotlist through the API, and shows every read
and hit as it arrives until Ctrl-C (or ``--duration``).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from kafka import KafkaConsumer
from rich.console import Console

from cordon.broker import EmbeddedBroker, free_port
from cordon.events import HotlistHit, PlateRead, decode
from cordon.logs import configure_logging

__all__ = ["default_model_dir", "demo"]

REPO = Path(__file__).resolve().parents[1]


def default_model_dir() -> Path | None:
    """The offline model copies beside the checkout (``../shared/models``), if present."""
    candidate = Path(os.environ.get("CORDON_SHARED_DIR", REPO.parent / "shared")) / "models"
    return candidate if (candidate / "cct_xs_v2_global.onnx").is_file() else None


DEMO_HOTLIST = (
    ("LV70XKM", "pnc-stolen", "stolen", 1, "Stolen vehicle: stop and detain if safe"),
    ("YK19RFN", "local-intel", "intelligence", 3, "Intelligence only: do not stop, log sighting"),
    ("GN66WTA", "no-insurance", "no-insurance", 2, "No insurance: stop if resources allow"),
)
"""Plates of the demo video that are on the demo hotlist (plate, list, category, priority, action)."""


def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its video, spool and database.")] = Path(
        "var/demo"
    ),
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1 (0: any free port).")] = 8000,
) -> None:
    """Run the full demo: broker, camera, edge worker, matcher and API; show reads and hits live."""
    from api.app import BackgroundServer
    from api.settings import ApiSettings
    from edge.camera import RtspCameraServer, render_traffic_video
    from edge.settings import CameraConfig, EdgeSettings, RecogniserSettings
    from edge.worker import EdgeWorker
    from stream.registry import CameraInfo, CameraRegistry
    from stream.service import MatcherService
    from stream.settings import MatcherSettings

    console = Console()
    configure_logging(level="WARNING", fmt="console")
    logging.getLogger("open_image_models").setLevel(logging.WARNING)
    workdir.mkdir(parents=True, exist_ok=True)
    video = workdir / "demo-camera.mp4"
    if not video.is_file():
        with console.status("rendering the demo camera's traffic video"):
            render_traffic_video(video)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    model_dir = default_model_dir()
    with (
        EmbeddedBroker(log_path=workdir / "tansu.log") as broker,
        RtspCameraServer(video, loop=True) as camera,
    ):
        console.print(
            f"broker  {broker.bootstrap}\ncamera  {camera.url}\nmodels  {model_dir or 'fast-alpr hub'}"
        )
        api_port = port if port and _port_free(port) else free_port()
        passwords = {role: secrets.token_urlsafe(12) for role in ("admin", "operator", "planner", "engineer")}
        server = BackgroundServer(
            ApiSettings.load(
                kafka_bootstrap=broker.bootstrap,
                database_url=f"sqlite:///{(workdir / 'cordon-demo.sqlite3').resolve()}",
                bind_port=api_port,
                bootstrap_admin_password=passwords["admin"],
                group_id=f"cordon-api-demo-{secrets.token_hex(3)}",
                session_timeout_ms=6000,
                max_poll_interval_ms=10000,
            )
        ).start()
        api = _DemoApi(httpx.Client(base_url=server.url, timeout=30), passwords)
        api.set_up(camera_url=camera.url)
        console.print(
            f"API     {server.url}/docs\n[bold]control room[/bold] {server.url}/control-room  "
            + "  ".join(f"{role}: {role}/{pw}" for role, pw in passwords.items())
        )
        console.print(f"hotlist version {api.hotlist_version}: {', '.join(p[0] for p in DEMO_HOTLIST)}")
        matcher = MatcherService(
            MatcherSettings.load(
                kafka_bootstrap=broker.bootstrap,
                instance_id="demo-matcher",
                metrics_port=None,
                session_timeout_ms=6000,
                max_poll_interval_ms=10000,
            ),
            registry=CameraRegistry(
                [CameraInfo(id="demo-cam-1", road="A580 East Lancashire Road", arterial=True)]
            ),
        )
        matcher_thread = threading.Thread(target=matcher.run, name="matcher", daemon=True)
        matcher_thread.start()
        settings = EdgeSettings.load(
            kafka_bootstrap=broker.bootstrap,
            box_id="demo-box",
            cameras=(CameraConfig(id="demo-cam-1", url=camera.url, inbound_motion="down"),),
            recogniser=RecogniserSettings(model_dir=model_dir),
            spool_path=workdir / "spool.sqlite3",
            metrics_port=None,
            heartbeat_interval_s=5.0,
        )
        worker = EdgeWorker(settings).start()
        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=200,
        )
        consumer.subscribe(["cordon.reads", "cordon.hits"])
        console.print("[bold]reads and hotlist hits as they arrive[/bold] (Ctrl-C to stop)")
        deadline = time.monotonic() + duration if duration else None
        try:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        _print_event(console, decode(record.value))
        except KeyboardInterrupt:
            pass
        finally:
            consumer.close()
            worker.stop()
            matcher.stop()
            matcher_thread.join(timeout=30)
            try:
                console.print(f"API stored {api.alert_count()} alerts")
            finally:
                api.http.close()
                server.stop()
    console.print("demo stopped")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


class _DemoApi:
    """The demo's set-up through the API's own endpoints, as an admin and an engineer would do it."""

    def __init__(self, http: httpx.Client, passwords: dict[str, str]) -> None:
        self.http = http
        self.passwords = passwords
        self.tokens: dict[str, str] = {}
        self.hotlist_version = 0

    def _auth(self, role: str) -> dict[str, str]:
        if role not in self.tokens:
            username = role
            response = self.http.post(
                "/api/v1/auth/token", data={"username": username, "password": self.passwords[role]}
            )
            response.raise_for_status()
            self.tokens[role] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def set_up(self, *, camera_url: str) -> None:
        admin = self._auth("admin")
        for role in ("operator", "planner", "engineer"):
            self.http.post(
                "/api/v1/users",
                json={"username": role, "password": self.passwords[role], "role": role},
                headers=admin,
            ).raise_for_status()
        engineer = self._auth("engineer")
        self.http.put("/api/v1/boxes/demo-box", json={"site": "demo"}, headers=engineer).raise_for_status()
        self.http.put(
            "/api/v1/cameras/demo-cam-1",
            json={
                "name": "A580 East Lancashire Road (demo)",
                "edge_box_id": "demo-box",
                "rtsp_url": camera_url,
                "latitude": 53.4663,
                "longitude": -2.8468,
                "road": "A580",
                "bearing_deg": 90,
                "arterial": True,
                "inbound_motion": "down",
            },
            headers=engineer,
        ).raise_for_status()
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["plate", "hotlist", "category", "priority", "action"])
        writer.writerows(DEMO_HOTLIST)
        response = self.http.post(
            "/api/v1/hotlists/versions",
            files={"file": ("demo-hotlist.csv", text.getvalue().encode(), "text/csv")},
            data={"note": "demo hotlist", "activate": "true"},
            headers=admin,
        )
        response.raise_for_status()
        self.hotlist_version = response.json()["version"]

    def alert_count(self) -> int:
        response = self.http.get("/api/v1/hits", params={"limit": "500"}, headers=self._auth("operator"))
        response.raise_for_status()
        return len(response.json()["items"])


def _print_event(console: Console, event: object) -> None:
    if isinstance(event, PlateRead):
        console.print(
            f"read  {event.captured_at:%H:%M:%S.%f}"[:-3],
            event.camera_id,
            f"[bold yellow]{event.plate}[/bold yellow]",
            event.plate_format or "-",
            event.direction or "-",
            f"{event.confidence:.2f}",
            f"{event.frames} frames",
        )
    elif isinstance(event, HotlistHit):
        style = "bold white on red" if event.priority == 1 else "bold red"
        console.print(
            f"[{style}]HIT   P{event.priority} {event.plate_read} on {event.entry.hotlist} "
            f"({event.match_kind}, sighting {event.sighting})[/{style}]  {event.entry.action}"
        )
