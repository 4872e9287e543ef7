"""``cordon demo``: the whole read path on embedded defaults, on one machine.

Starts the embedded broker (Tansu), a simulated RTSP camera with known UK plates, and an edge worker with the
real plate models; shows every read as it arrives on ``cordon.reads`` until Ctrl-C (or ``--duration``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from kafka import KafkaConsumer
from rich.console import Console

from cordon.broker import EmbeddedBroker
from cordon.events import HotlistEntry, HotlistHit, PlateRead, decode, utc_now
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
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its video and spool.")] = Path(
        "var/demo"
    ),
) -> None:
    """Run the full demo: broker, simulated camera, edge worker and matcher; show reads and hits live."""
    from edge.camera import RtspCameraServer, render_traffic_video
    from edge.settings import CameraConfig, EdgeSettings, RecogniserSettings
    from edge.worker import EdgeWorker
    from stream.hotlist import HotlistVersion
    from stream.hotlist_feed import publish_version
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
        entries = [
            HotlistEntry(
                entry_id=f"{name}:{plate}",
                plate=plate,
                hotlist=name,
                category=category,
                priority=priority,
                action=action,
                added_by="demo",
            )
            for plate, name, category, priority, action in DEMO_HOTLIST
        ]
        publish_version(broker.bootstrap, HotlistVersion.of(entries, version=1, created_at=utc_now()))
        console.print(f"hotlist version 1: {', '.join(e.plate for e in entries)}")
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
    console.print("demo stopped")


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
