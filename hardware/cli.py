"""``cordon hardware``: edge box profiles, bench this box, and size a fleet from measurements.

Mount with ``app.add_typer(hardware_app, name="hardware")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.console import Console
from rich.table import Table

from cordon.errors import CordonError
from hardware.errors import MeasurementError, SizingError
from hardware.profiles import (
    HardwareProfile,
    Measurement,
    ProfileKind,
    Resolution,
    StreamMeasurement,
    bundled_profiles,
    dump_measurement,
    load_measurement,
)
from hardware.sizing import Sizing, StreamCost, size_fleet, slowest, stream_cost

__all__ = ["hardware_app"]

hardware_app = typer.Typer(
    help="Edge box hardware: profiles, bench this box, size a fleet from measurements.", no_args_is_help=True
)

_KINDS: tuple[str, ...] = get_args(ProfileKind)
_RESOLUTIONS: tuple[str, ...] = get_args(Resolution)


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=160)  # 80 columns would wrap the tables


def _fail(console: Console, message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=code)


def _kind(value: str | None) -> ProfileKind | None:
    if value is not None and value not in _KINDS:
        raise typer.BadParameter(f"{value!r} is not a profile kind; choose from {list(_KINDS)}")
    return value  # type: ignore[return-value]  # checked against the Literal's values above


def _resolution(value: str) -> Resolution:
    if value not in _RESOLUTIONS:
        raise typer.BadParameter(f"{value!r} is not a resolution; choose from {list(_RESOLUTIONS)}")
    return value  # type: ignore[return-value]  # checked against the Literal's values above


@hardware_app.command("profiles")
def profiles() -> None:
    """List the bundled edge box profiles."""
    console = _console()
    try:
        found = bundled_profiles()
    except CordonError as exc:
        raise _fail(console, str(exc)) from exc
    table = Table(title="Edge box profiles (hardware/profiles/*.yaml)")
    table.add_column("kind", no_wrap=True)
    for column in ("CPU", "RAM", "accelerator (used?)", "ONNX Runtime providers", "power W", "IP"):
        table.add_column(column)
    table.add_column("price £ ex VAT", justify="right")
    table.add_column("measurements", justify="right")
    for kind, p in sorted(found.items()):
        accelerator = (
            f"{p.accelerator.name} ({'yes' if p.accelerator.used_by_cordon else 'no'})"
            if p.accelerator
            else "-"
        )
        table.add_row(
            kind,
            f"{p.cpu_cores} cores, {p.cpu_arch}",
            f"{p.ram_gb:g} GB",
            accelerator,
            ", ".join(x.removesuffix("ExecutionProvider") for x in p.onnx_providers),
            f"{p.power.idle_w:g}/{p.power.typical_w:g}/{p.power.max_w:g}",
            f"{p.enclosure.ip_rating_as_sold or 'bare'} → {p.enclosure.recommended_ip_rating}",
            f"{p.price.low_gbp:,.0f}-{p.price.high_gbp:,.0f}",
            str(len(p.measurements)) if p.measurements else "none",
        )
    console.print(table)
    console.print("power: idle/typical/max at the wall; IP: as sold → recommended enclosure (IEC 60529)")


def _measurement_table(measurement: Measurement, title: str) -> Table:
    m = measurement.machine
    table = Table(
        title=(
            f"{title}: {m.cpu_model}, {m.logical_cpus} CPUs, {m.ram_gb:g} GB, "
            f"providers {list(measurement.providers)}, model load {measurement.recogniser_load_s:.1f} s"
        )
    )
    for column in ("resolution", "decode fps", "processed fps", "recognise ms/frame", "ms/plate"):
        table.add_column(column, justify="right")
    for column in ("recognised", "reads (correct)", "CPU %", "peak RSS MB", "window"):
        table.add_column(column, justify="right")
    for s in measurement.streams:
        table.add_row(
            f"{s.resolution} ({s.width}x{s.height}, {s.source_fps:g} fps)",
            f"{s.decode_fps:.1f}",
            f"{s.processed_fps:.1f}",
            f"{s.recognise_ms_per_call:.1f}",
            "-" if s.ms_per_plate is None else f"{s.ms_per_plate:.1f}",
            f"{s.frames_recognised}/{s.frames}",
            f"{s.reads} ({s.reads_correct})",
            f"{s.cpu_percent:.0f}",
            f"{s.peak_rss_mb:.0f}",
            f"{s.seconds:.1f} s",
        )
    return table


@hardware_app.command("bench")
def bench(
    model_dir: Annotated[
        Path, typer.Option(help="Directory of the plate model files (never downloaded).", file_okay=False)
    ],
    out: Annotated[
        Path | None, typer.Option(help="Measurement YAML to write; default bench-<host>-<time>.yaml.")
    ] = None,
    seconds: Annotated[
        float, typer.Option(min=0.5, max=600, help="Longest decode and pipeline run per resolution, s.")
    ] = 20.0,
    video_seconds: Annotated[
        float, typer.Option(min=3, max=600, help="Length of the rendered bench videos, s.")
    ] = 14.0,
    resolution: Annotated[
        list[str] | None,
        typer.Option("--resolution", help="Resolution to measure (720p, 1080p); repeat. Default: both."),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help=f"Profile kind of this box, recorded in the file: {', '.join(_KINDS)}.")
    ] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option("--provider", help="ONNX Runtime execution provider, in order; repeat. Default: CPU."),
    ] = None,
    motion_gating: Annotated[
        bool, typer.Option("--motion-gating/--no-motion-gating", help="Skip recognition without motion.")
    ] = True,
    workdir: Annotated[Path, typer.Option(help="Cache of the rendered videos.")] = Path("var/bench"),
    notes: Annotated[str, typer.Option(help="Free text for the file: cooling, other load, ...")] = "",
) -> None:
    """Run the real edge pipeline on rendered 720p/1080p videos on this box; write a measurement YAML."""
    from hardware.bench import default_output, run_bench

    console = _console()
    kind = _kind(profile)
    resolutions = [_resolution(r) for r in (resolution or list(_RESOLUTIONS))]
    try:
        measurement = run_bench(
            model_dir=model_dir,
            workdir=workdir,
            console=console,
            resolutions=resolutions,
            seconds=seconds,
            video_seconds=video_seconds,
            motion_gating=motion_gating,
            providers=tuple(provider or ("CPUExecutionProvider",)),
            profile=kind,
            notes=notes,
        )
        path = out or default_output(measurement)
        dump_measurement(measurement, path)
    except CordonError as exc:
        raise _fail(console, str(exc)) from exc
    console.print(_measurement_table(measurement, "Measured on this box"))
    console.print(
        f"measurement written to [bold]{path}[/bold]; size with `cordon hardware size --measurement {path}`"
    )


def _candidates(
    console: Console, profile: HardwareProfile | None, files: list[Path], resolution: Resolution
) -> list[tuple[str, Measurement, StreamMeasurement]]:
    found: list[tuple[str, Measurement, StreamMeasurement]] = []
    if profile is not None:
        for measurement, stream in profile.measurements_at(resolution):
            found.append((f"profile {profile.kind}, {measurement.measured_at:%Y-%m-%d}", measurement, stream))
    for path in files:
        measurement = load_measurement(path)
        entry = measurement.stream(resolution)
        if entry is None:
            have = [s.resolution for s in measurement.streams]
            console.print(f"[yellow]{path}: no {resolution} entry (it has {have}); not used[/yellow]")
            continue
        found.append((f"{path.name}, {measurement.measured_at:%Y-%m-%d}", measurement, entry))
    return found


def _sizing_table(result: Sizing, *, chosen: str) -> Table:
    c = result.cost
    table = Table(title=f"Sizing from {chosen}", show_header=True)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column("how")
    rows = [
        ("decode per frame", f"{c.decode_ms:.2f} ms", "1000 / decode fps"),
        ("process per frame", f"{c.process_ms:.2f} ms", "1000 / processed fps - decode per frame"),
        ("camera frame rate", f"{result.camera_fps:g} fps", "--camera-fps"),
        ("frames to process per camera", f"{result.fps_needed:g} fps", "--fps-needed"),
        (
            "decode load per camera",
            f"{result.decode_load_ms:.1f} ms/s",
            f"{result.camera_fps:g} x {c.decode_ms:.2f} ms (every frame is decoded)",
        ),
        (
            "process load per camera",
            f"{result.process_load_ms:.1f} ms/s",
            f"{result.fps_needed:g} x {c.process_ms:.2f} ms",
        ),
        ("load per camera", f"{result.camera_load_ms:.1f} ms/s", "decode + process"),
        (
            "box budget",
            f"{result.budget_ms:.0f} ms/s",
            f"1000 ms/s x (1 - headroom {result.headroom:g})",
        ),
        (
            "cameras per box",
            str(result.cameras_per_box),
            f"floor({result.budget_ms:.0f} / {result.camera_load_ms:.1f})",
        ),
        (
            f"boxes for {result.cameras} cameras",
            "-" if result.boxes is None else str(result.boxes),
            "-" if result.boxes is None else f"ceil({result.cameras} / {result.cameras_per_box})",
        ),
        (
            "one camera alone",
            f"{result.solo_fps:.1f} fps",
            "most frames/s the box could process for a single camera (no headroom)",
        ),
    ]
    if result.busiest_box_share is not None:
        rows.append(("fullest box uses", f"{result.busiest_box_share:.0%}", "of its budget"))
    for row in rows:
        table.add_row(*row)
    return table


@hardware_app.command("size")
def size(
    cameras: Annotated[int, typer.Option(min=1, help="Cameras to serve.")],
    profile: Annotated[
        str | None, typer.Option(help=f"Use this profile's measurements: {', '.join(_KINDS)}.")
    ] = None,
    measurement: Annotated[
        list[Path] | None,
        typer.Option(
            "--measurement", help="Measurement YAML from `cordon hardware bench`; repeat.", dir_okay=False
        ),
    ] = None,
    fps_needed: Annotated[
        float, typer.Option(min=0.1, max=240, help="Frames per second of each camera to process.")
    ] = 10.0,
    camera_fps: Annotated[float, typer.Option(min=1, max=240, help="Frame rate each camera sends.")] = 25.0,
    resolution: Annotated[str, typer.Option(help="Camera resolution: 720p or 1080p.")] = "1080p",
    headroom: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of each box's time kept spare (bursts, heat).")
    ] = 0.3,
) -> None:
    """How many cameras per box, and how many boxes for N cameras, from bench measurements."""
    console = _console()
    kind = _kind(profile)
    res = _resolution(resolution)
    if kind is None and not measurement:
        raise _fail(console, "give --measurement FILE (from `cordon hardware bench`) or --profile KIND")
    try:
        chosen_profile = bundled_profiles()[kind] if kind is not None else None
        candidates = _candidates(console, chosen_profile, list(measurement or []), res)
    except CordonError as exc:
        raise _fail(console, str(exc)) from exc
    if chosen_profile is not None:
        p = chosen_profile
        console.print(
            f"profile [bold]{p.kind}[/bold]: {p.name}; {p.cpu}; {p.ram_gb:g} GB; "
            f"providers {list(p.onnx_providers)}; {p.power.typical_w:g} W typical; "
            f"£{p.price.low_gbp:,.0f}-{p.price.high_gbp:,.0f}"
        )
        if not p.measurements:
            console.print(
                f"[yellow]profile {p.kind} has no measurements, so it gives no numbers. Run "
                f"`cordon hardware bench --profile {p.kind} --model-dir DIR` on such a box and pass its file "
                "with --measurement.[/yellow]"
            )
    if not candidates:
        raise _fail(console, f"no {res} measurement to size from; nothing is estimated without one", code=1)
    costs: dict[str, StreamCost] = {}
    for label, m, stream in candidates:
        console.print(_measurement_table(m, label))
        costs[label] = stream_cost(
            resolution=res, decode_fps=stream.decode_fps, processed_fps=stream.processed_fps, label=label
        )
    try:
        worst = slowest(costs.values(), camera_fps=camera_fps, fps_needed=fps_needed)
        result = size_fleet(
            worst, cameras=cameras, fps_needed=fps_needed, camera_fps=camera_fps, headroom=headroom
        )
    except (SizingError, MeasurementError) as exc:
        raise _fail(console, str(exc)) from exc
    note = " (the slowest of the measurements)" if len(costs) > 1 else ""
    console.print(_sizing_table(result, chosen=f"{worst.label} at {res}{note}"))
    if result.boxes is None:
        console.print(
            f"[red]one box cannot serve even one {res} camera at {fps_needed:g} processed fps: "
            f"a camera needs {result.camera_load_ms:.0f} ms/s of a {result.budget_ms:.0f} ms/s budget[/red]"
        )
        raise typer.Exit(code=1)
    console.print(
        f"[bold]{result.cameras_per_box} camera(s) per box; {result.boxes} box(es) for {cameras} "
        f"camera(s)[/bold] at {res}, {fps_needed:g} of {camera_fps:g} fps processed, headroom {headroom:.0%}"
    )
