"""The ``cordon`` command: parses arguments, loads and validates settings, and calls each role's ``run``."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cordon.errors import CordonError
from cordon.events import HotlistEntry, utc_now
from cordon.logs import configure_logging
from cordon.settings import RoleSettings

__all__ = ["app"]

app = typer.Typer(help="Cordon: ANPR reads, hotlist hits and camera-site planning.", no_args_is_help=True)
edge_app = typer.Typer(help="Edge worker: read plates from cameras and publish them.", no_args_is_help=True)
app.add_typer(edge_app, name="edge")
matcher_app = typer.Typer(
    help="Stream matcher: check reads against hotlists, publish hits.", no_args_is_help=True
)
app.add_typer(matcher_app, name="matcher")
api_app = typer.Typer(help="API service for operators, planners and engineers.", no_args_is_help=True)
app.add_typer(api_app, name="api")
hotlist_app = typer.Typer(
    help="Hotlists: load a file as a new version, show the live version.", no_args_is_help=True
)
app.add_typer(hotlist_app, name="hotlist")

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


def _run_role(
    load: Callable[[Path | None], RoleSettings], run: Callable[[Any], None], config: Path | None, check: bool
) -> None:
    """Load and validate a role's settings, then run it (or only print them with --check-config)."""
    try:
        settings = load(config)
        if check:
            _check(settings)
            return
        configure_logging(level=settings.log_level, fmt=settings.log_format)
        run(settings)
    except CordonError as exc:
        raise _fail(exc) from exc


@edge_app.command("run")
def edge_run(config: ConfigOption = None, check_config: CheckOption = False) -> None:
    """Run the edge worker for this box's cameras."""
    from edge.settings import EdgeSettings
    from edge.worker import run

    _run_role(EdgeSettings.load, run, config, check_config)


@edge_app.command("provision")
def edge_provision(
    api: Annotated[str, typer.Option(help="API base URL, e.g. https://cordon.example.gov.uk")],
    box_id: Annotated[str, typer.Option(help="This box's id as registered in the API.")],
    username: Annotated[str, typer.Option(help="Engineer account used to fetch the config.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, envvar="CORDON_PROVISION_PASSWORD", help="Engineer's password."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Where the edge service reads its config.")] = Path(
        "/etc/cordon/edge.yaml"
    ),
    credentials_file: Annotated[
        Path, typer.Option(help="EnvironmentFile with the cameras' RTSP credentials (checked, not written).")
    ] = Path("/etc/cordon/rtsp.env"),
) -> None:
    """Fetch this box's config from the API and write it; list RTSP credentials the box still lacks."""
    from edge.provision import provision

    try:
        done = provision(
            api,
            box_id,
            username=username,
            password=password,
            config_path=out,
            credentials_file=credentials_file,
        )
    except CordonError as exc:
        raise _fail(exc) from exc
    console.print(f"wrote {done.config_path}: box {box_id}, cameras {', '.join(done.cameras) or 'none'}")
    for name in done.missing_credentials:
        console.print(f"[yellow]set {name}=user:password in {credentials_file}[/yellow]")


@edge_app.command("selftest")
def edge_selftest(config: ConfigOption = None) -> None:
    """Check cameras, models, broker, clock and spool disk; exit 1 if any check fails."""
    from edge.selftest import print_report, run_selftest
    from edge.settings import EdgeSettings

    try:
        settings = EdgeSettings.load(config)
    except CordonError as exc:
        raise _fail(exc) from exc
    # The broker check reports an unreachable Kafka; kafka-python's own retry log would only repeat it.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    report = run_selftest(settings)
    out = Console()
    print_report(report, out if out.is_terminal else Console(width=160))
    if not report.ok:
        raise typer.Exit(code=1)


@matcher_app.command("run")
def matcher_run(config: ConfigOption = None, check_config: CheckOption = False) -> None:
    """Run a matcher instance (several instances in one group share the reads' partitions)."""
    from stream.service import run
    from stream.settings import MatcherSettings

    _run_role(MatcherSettings.load, run, config, check_config)


@api_app.command("run")
def api_run(config: ConfigOption = None, check_config: CheckOption = False) -> None:
    """Serve the API and web pages; persist reads, hits and heartbeats from Kafka."""
    from api.app import run
    from api.settings import ApiSettings

    _run_role(ApiSettings.load, run, config, check_config)


@app.command()
def plan(
    out: Annotated[
        Path, typer.Option(help="Folder for sites.geojson, sites.csv, map.html, summary.json.")
    ] = Path("var/plan"),
    cameras: Annotated[int | None, typer.Option(help="New CCTV cameras to place.")] = None,
    money: Annotated[float | None, typer.Option(help="Money budget for new CCTV sites, GBP.")] = None,
    anpr_budget: Annotated[int | None, typer.Option(help="ANPR cameras (default: the full cordon).")] = None,
    config: ConfigOption = None,
    check_config: CheckOption = False,
) -> None:
    """Rank camera sites: CCTV coverage of crime (greedy + exact) and the ANPR cordon, with a back-test."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from planner.pipeline import run_plan
    from planner.settings import PlannerSettings

    overrides = {
        k: v
        for k, v in {"cameras": cameras, "money": money, "anpr_budget": anpr_budget}.items()
        if v is not None
    }
    try:
        settings = PlannerSettings.load(config, **overrides)
        if check_config:
            _check(settings)
            return
        configure_logging(level=settings.log_level, fmt="console")
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
        ) as bar:
            task = bar.add_task("planning", total=1.0)
            summary = run_plan(
                settings, out_dir=out, progress=lambda f, m: bar.update(task, completed=f, description=m)
            )
    except CordonError as exc:
        raise _fail(exc) from exc
    cctv, anpr = summary["cctv"], summary["anpr"]
    console.print(
        f"CCTV: {cctv['cameras']} sites cover {cctv['covered_weight']:.1f} of {cctv['coverable_weight']:.1f} "
        f"weighted crimes (HiGHS {cctv['milp_status']}, gap {cctv['milp_gap']}; greedy bound gap "
        f"{cctv['greedy_gap']:.1%})\nANPR: {anpr['cameras']} cameras ({anpr['reader_lanes']:g} lanes), "
        f"certificate {'holds' if anpr['certificate_holds'] else 'FAILS'}, "
        f"{anpr['cameras_saved_vs_one_per_crossing']} fewer than one per crossing road\n"
        f"wrote {out}/sites.geojson, sites.csv, map.html, summary.json in {summary['seconds']} s"
    )


@hotlist_app.command("load")
def hotlist_load(
    path: Annotated[Path, typer.Argument(help="CSV or JSON hotlist file.", exists=True, dir_okay=False)],
    hotlist: Annotated[
        str | None, typer.Option(help="List name, if the file has no 'hotlist' column.")
    ] = None,
    added_by: Annotated[str, typer.Option(help="Who is loading the list (audit).")] = "",
    config: ConfigOption = None,
) -> None:
    """Validate a hotlist file and publish it as the next version; an invalid file changes nothing."""
    from stream.hotlist import load_hotlist_file, next_version
    from stream.hotlist_feed import publish_version, read_latest_version
    from stream.settings import MatcherSettings

    try:
        settings = MatcherSettings.load(config)
        entries = load_hotlist_file(path, hotlist=hotlist, added_by=added_by)
        current = read_latest_version(settings.kafka_bootstrap, settings.hotlists_topic)
        lists: dict[str, list[HotlistEntry]] = {}
        for entry in entries:
            lists.setdefault(entry.hotlist, []).append(entry)
        version = next_version(
            current,
            replace_hotlists=lists,
            version=(current.version if current else 0) + 1,
            now=utc_now(),
        )
        chunks = publish_version(
            settings.kafka_bootstrap, version, topic=settings.hotlists_topic, published_by=added_by
        )
    except CordonError as exc:
        raise _fail(exc) from exc
    console.print(
        f"hotlist version {version.version} published: {len(version.entries)} entries "
        f"({len(entries)} from {path.name}, lists {sorted(lists)}), {chunks} chunks"
    )


@hotlist_app.command("show")
def hotlist_show(config: ConfigOption = None) -> None:
    """Print the live hotlist version's size and lists."""
    from stream.hotlist_feed import read_latest_version
    from stream.settings import MatcherSettings

    try:
        settings = MatcherSettings.load(config)
        current = read_latest_version(settings.kafka_bootstrap, settings.hotlists_topic)
    except CordonError as exc:
        raise _fail(exc) from exc
    if current is None:
        console.print("no hotlist published yet")
        return
    counts: dict[str, int] = {}
    for entry in current.entries:
        counts[entry.hotlist] = counts.get(entry.hotlist, 0) + 1
    console.print(
        f"version {current.version} ({current.sha256[:12]}), {len(current.entries)} entries: {counts}"
    )


def _mount_optional() -> None:
    """Sub-commands whose modules carry their own typer apps."""
    from edge.camera.cli import camera_app

    app.add_typer(camera_app, name="camera", help="Demo camera: synthetic traffic served over RTSP.")
    from hardware.cli import hardware_app

    app.add_typer(hardware_app, name="hardware")
    from cordon.demo import demo

    app.command()(demo)


_mount_optional()
