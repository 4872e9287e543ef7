"""``cordon camera``: run the synthetic demo camera from the command line.

Mount with ``app.add_typer(camera_app, name="camera")``; then ``cordon camera simulate`` renders a traffic
video with known plates, serves it over RTSP and runs until Ctrl-C.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edge.camera.render import (
    DEFAULT_PLATES,
    GroundTruth,
    RenderError,
    random_uk_plates,
    render_traffic_video,
    truth_path,
)
from edge.camera.server import DEFAULT_SYSTEM_PYTHON, RtspCameraServer, RtspServerError

__all__ = ["camera_app"]

camera_app = typer.Typer(
    help="Synthetic demo camera: a traffic video with known UK plates, served over RTSP.",
    no_args_is_help=True,
)


@camera_app.callback()
def camera() -> None:
    """Synthetic demo camera: a traffic video with known UK plates, served over RTSP."""


def _render(
    console: Console,
    out: Path,
    *,
    plates: list[str],
    width: int,
    height: int,
    fps: int,
    seconds_per_vehicle: float,
    gap_s: float,
    seed: int,
) -> GroundTruth:
    """Render the video with a progress bar."""
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = (
        TextColumn("Rendering"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("render", total=None)

        def on_frame(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return render_traffic_video(
            out,
            plates=plates,
            width=width,
            height=height,
            fps=fps,
            seconds_per_vehicle=seconds_per_vehicle,
            gap_s=gap_s,
            seed=seed,
            progress=on_frame,
        )


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@camera_app.command()
def simulate(
    video: Annotated[
        Path | None,
        typer.Option(help="Serve this H.264 mp4 instead of rendering one.", exists=True, dir_okay=False),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Where to write the rendered video (and <out>.truth.json).")
    ] = Path("var/camera/traffic.mp4"),
    plate: Annotated[
        list[str] | None,
        typer.Option(
            "--plate", help="A plate to show, e.g. 'AB12 CDE'; repeat for more. Default: a fixed set."
        ),
    ] = None,
    random_count: Annotated[
        int, typer.Option("--random", min=0, help="Show this many random current-format plates instead.")
    ] = 0,
    width: Annotated[int, typer.Option(min=64, help="Frame width, pixels (even).")] = 1280,
    height: Annotated[int, typer.Option(min=64, help="Frame height, pixels (even).")] = 720,
    fps: Annotated[int, typer.Option(min=1, max=120, help="Frames per second.")] = 25,
    seconds_per_vehicle: Annotated[
        float, typer.Option(min=2.0, help="Seconds each vehicle takes to cross the frame.")
    ] = 5.0,
    gap: Annotated[float, typer.Option(min=0.0, help="Seconds of empty road between vehicles.")] = 2.0,
    seed: Annotated[
        int, typer.Option(help="Random seed (colours, lanes, speeds, noise, random plates).")
    ] = 0,
    port: Annotated[int, typer.Option(min=1, max=65535, help="RTSP server TCP port.")] = 8554,
    mount: Annotated[str, typer.Option(help="Stream path: rtsp://host:port/<mount>.")] = "cam1",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    loop: Annotated[bool, typer.Option("--loop/--no-loop", help="Repeat the video forever.")] = True,
    python: Annotated[
        str, typer.Option(help="Python with GStreamer's gi bindings, to run the RTSP server.")
    ] = DEFAULT_SYSTEM_PYTHON,
) -> None:
    """Render a traffic video with known plates (or take --video), serve it over RTSP until Ctrl-C."""
    console = Console()
    try:
        if video is None:
            if random_count:
                plates = random_uk_plates(random_count, seed=seed)
            else:
                plates = list(plate) if plate else list(DEFAULT_PLATES)
            truth = _render(
                console,
                out,
                plates=plates,
                width=width,
                height=height,
                fps=fps,
                seconds_per_vehicle=seconds_per_vehicle,
                gap_s=gap,
                seed=seed,
            )
            video = out
            console.print(
                f"Rendered {len(truth.passes)} vehicles, {truth.duration_s:.1f} s at "
                f"{truth.width}x{truth.height} {truth.fps} fps: {', '.join(p.plate for p in truth.passes)}"
            )
        server = RtspCameraServer(video, port=port, mount=mount, loop=loop, python=python, host=host)
        server.start()
    except (ValueError, RenderError, RtspServerError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from exc

    truth_file = truth_path(video)
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly under a service manager too
    try:
        console.print(f"RTSP URL:     [bold]{server.url}[/bold]")
        console.print(f"Video:        {video}")
        console.print(f"Ground truth: {truth_file if truth_file.is_file() else '(none beside the video)'}")
        console.print(f"{'Looping' if loop else 'Playing once'}; press Ctrl-C to stop.")
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("Stopping...")
    finally:
        crashed = not server.running
        server.stop()
    if crashed:
        console.print(
            f"[red]error:[/red] the RTSP server stopped unexpectedly:\n{server.stderr_text().strip()}"
        )
        raise typer.Exit(code=1)
    console.print("Stopped.")
