"""The ``cordon`` command: parses arguments, loads and validates settings, and calls each role's ``run``."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cordon.errors import CordonError
from cordon.logs import configure_logging
from cordon.settings import RoleSettings

__all__ = ["app"]

app = typer.Typer(help="Cordon: ANPR reads, hotlist hits and camera-site planning.", no_args_is_help=True)
edge_app = typer.Typer(help="Edge worker: read plates from cameras and publish them.", no_args_is_help=True)
app.add_typer(edge_app, name="edge")

console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (CORDON_* env vars override it).")
]
CheckOption = Annotated[
    bool, typer.Option("--check-config", help="Validate the settings, print them and exit.")
]


def _fail(exc: CordonError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(code=2)


def _check(settings: RoleSettings) -> None:
    console.print_json(settings.model_dump_json())
    console.print("[green]settings are valid[/green]")


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1.")] = 9092,
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu) with Cordon's topics until Ctrl-C."""
    from cordon.broker import EmbeddedBroker

    configure_logging(fmt="console")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with EmbeddedBroker(port=port) as embedded:
            console.print(f"broker ready: CORDON_KAFKA_BOOTSTRAP={embedded.bootstrap}")
            try:
                while not stop.wait(0.5):
                    if not embedded.running:
                        raise typer.Exit(code=1)
            except KeyboardInterrupt:
                pass
    except CordonError as exc:
        raise _fail(exc) from exc


@edge_app.command("run")
def edge_run(config: ConfigOption = None, check_config: CheckOption = False) -> None:
    """Run the edge worker for this box's cameras."""
    from edge.settings import EdgeSettings
    from edge.worker import run

    try:
        settings = EdgeSettings.load(config)
        if check_config:
            _check(settings)
            return
        configure_logging(level=settings.log_level, fmt=settings.log_format)
        run(settings)
    except CordonError as exc:
        raise _fail(exc) from exc


def _mount_optional() -> None:
    """Sub-commands whose modules carry their own typer apps."""
    from edge.camera.cli import camera_app

    app.add_typer(camera_app, name="camera", help="Demo camera: synthetic traffic served over RTSP.")
    from cordon.demo import demo

    app.command()(demo)


_mount_optional()
