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
from cordon.events import PlateRead, decode
from cordon.logs import configure_logging

__all__ = ["default_model_dir", "demo"]

REPO = Path(__file__).resolve().parents[1]


def default_model_dir() -> Path | None:
    """The offline model copies beside the checkout (``../shared/models``), if present."""
    candidate = Path(os.environ.get("CORDON_SHARED_DIR", REPO.parent / "shared")) / "models"
    return candidate if (candidate / "cct_xs_v2_global.onnx").is_file() else None


def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its video and spool.")] = Path(
        "var/demo"
    ),
) -> None:
    """Run the full demo: broker, simulated camera, edge worker; print reads as they arrive."""
    from edge.camera import RtspCameraServer, render_traffic_video
    from edge.settings import CameraConfig, EdgeSettings, RecogniserSettings
    from edge.worker import EdgeWorker

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
            "cordon.reads",
            bootstrap_servers=broker.bootstrap,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )
        console.print("[bold]reads arriving on cordon.reads[/bold] (Ctrl-C to stop)")
        deadline = time.monotonic() + duration if duration else None
        try:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        event = decode(record.value)
                        if isinstance(event, PlateRead):
                            _print_read(console, event)
        except KeyboardInterrupt:
            pass
        finally:
            consumer.close()
            worker.stop()
    console.print("demo stopped")


def _print_read(console: Console, read: PlateRead) -> None:
    console.print(
        f"{read.captured_at:%H:%M:%S.%f}"[:-3],
        read.camera_id,
        f"[bold yellow]{read.plate}[/bold yellow]",
        read.plate_format or "-",
        read.direction or "-",
        f"{read.confidence:.2f}",
        f"{read.frames} frames",
    )
