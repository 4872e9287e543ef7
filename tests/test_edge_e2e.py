"""End to end on real components: synthetic video over a real RTSP server → edge worker (real models) → Tansu.

Also the faults: the broker killed for 20 s and restarted empty, the RTSP server killed and restarted, and the
edge process SIGKILLed with reads in its spool.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from cordon.broker import EmbeddedBroker, free_port
from cordon.events import Heartbeat, PlateRead, decode
from edge.camera import GroundTruth, RtspCameraServer, render_traffic_video
from edge.settings import CameraConfig, EdgeSettings, RecogniserSettings
from edge.worker import EdgeWorker
from tests.conftest import TopicReader, cordon_process

PLATES = ["AB12 CDE", "LV70 XKM", "YR19 FHT", "K123 ABC", "SN68 WPU"]


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    """A 720p video of five vehicles passing, with its ground truth (rendered once per module)."""
    video = tmp_path_factory.mktemp("video") / "traffic.mp4"
    truth = render_traffic_video(video, plates=PLATES, seconds_per_vehicle=4.0, gap_s=1.5, seed=3)
    return video, truth


@pytest.fixture
def camera(traffic: tuple[Path, GroundTruth]) -> Iterator[RtspCameraServer]:
    with RtspCameraServer(traffic[0], loop=False) as server:
        yield server


def _settings(tmp_path: Path, bootstrap: str, url: str, models_dir: Path, **extra: object) -> EdgeSettings:
    return EdgeSettings.load(
        kafka_bootstrap=bootstrap,
        box_id="box-e2e",
        cameras=(CameraConfig(id="cam1", url=url, inbound_motion="down"),),
        recogniser=RecogniserSettings(model_dir=models_dir),
        spool_path=tmp_path / "spool.sqlite3",
        metrics_port=None,
        **extra,
    )


def _reads(values: list[bytes]) -> list[PlateRead]:
    return [e for e in map(decode, values) if isinstance(e, PlateRead)]


def _expected(truth: GroundTruth) -> list[str]:
    return [p.plate_normalised for p in truth.passes]


def test_every_plate_arrives_exactly_once(
    tmp_path: Path,
    broker: EmbeddedBroker,
    camera: RtspCameraServer,
    traffic: tuple[Path, GroundTruth],
    models_dir: Path,
) -> None:
    truth = traffic[1]
    reads_metric_before = REGISTRY.get_sample_value("cordon_edge_reads_total", {"camera": "cam1"}) or 0.0
    worker = EdgeWorker(_settings(tmp_path, broker.bootstrap, camera.url, models_dir)).start()
    reader = TopicReader(broker.bootstrap, "cordon.reads")
    try:
        reader.read_until(lambda v: len(v) >= len(truth.passes), timeout_s=truth.duration_s + 30)
    finally:
        worker.stop()  # flushes open tracks: a late false read would show up now
    reader.drain()
    reader.close()
    reads = _reads(reader.values)
    assert len({r.read_id for r in reads}) == len(reads), "each read id once"
    assert sorted(r.plate for r in reads) == sorted(_expected(truth)), "every plate once, read right"
    by_plate = {r.plate: r for r in reads}
    for vehicle in truth.passes:
        read = by_plate[vehicle.plate_normalised]
        assert read.direction == ("in" if vehicle.motion == "down" else "out"), (
            read.frames,
            read.bbox,
            vehicle,
        )
        assert read.crop_jpeg is not None
        assert read.crop_jpeg[:2] == b"\xff\xd8"
        assert read.frames >= 3
        assert read.plate_format is not None
    reads_metric = REGISTRY.get_sample_value("cordon_edge_reads_total", {"camera": "cam1"})
    assert reads_metric == reads_metric_before + len(truth.passes), "the Prometheus counter agrees"


@pytest.mark.slow
def test_broker_killed_mid_stream_loses_no_read(tmp_path: Path, models_dir: Path) -> None:
    truth = render_traffic_video(
        tmp_path / "long.mp4",
        plates=[*PLATES, "MA15 KLO", "WX64 TRB", "T456 DEF"],
        seconds_per_vehicle=4.0,
        gap_s=1.5,
        seed=5,
    )
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log").start()
    server = RtspCameraServer(tmp_path / "long.mp4", loop=False)
    server.start()
    worker = EdgeWorker(_settings(tmp_path, broker.bootstrap, server.url, models_dir)).start()
    try:
        reader = TopicReader(broker.bootstrap, "cordon.reads")
        reader.read_until(lambda v: len(v) >= 2, timeout_s=40)
        # Kill only once everything acknowledged has been consumed: an in-memory broker forgets what it held.
        deadline = time.monotonic() + 10
        while worker.spool.depth and time.monotonic() < deadline:
            time.sleep(0.05)
        before = _reads(reader.values)
        broker.kill()
        reader.close()
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 20:
            time.sleep(0.5)
        spooled_during_outage = worker.spool.depth
        broker.start()
        reader = TopicReader(broker.bootstrap, "cordon.reads")
        remaining = len(truth.passes) - len(before)
        reader.read_until(lambda v: len(v) >= remaining, timeout_s=truth.duration_s + 30)
        time.sleep(3)
        reader.poll(1.0)
        after = _reads(reader.values)
        reader.close()
    finally:
        worker.stop()
        server.stop()
        broker.stop()
    assert len(before) >= 2
    assert spooled_during_outage >= 1, "reads were captured while the broker was down"
    plates = [r.plate for r in before + after]
    assert sorted(plates) == sorted(_expected(truth)), "no read lost, none duplicated"
    captured = [r.captured_at for r in after]
    assert captured == sorted(captured), "reads published after recovery are in capture order"


@pytest.mark.slow
def test_rtsp_server_killed_worker_reconnects(
    tmp_path: Path, broker: EmbeddedBroker, traffic: tuple[Path, GroundTruth], models_dir: Path
) -> None:
    server = RtspCameraServer(traffic[0], loop=True)
    server.start()
    worker = EdgeWorker(
        _settings(tmp_path, broker.bootstrap, server.url, models_dir, heartbeat_interval_s=0.5)
    ).start()
    source = worker.pipelines[0].source
    try:
        deadline = time.monotonic() + 20
        while source.status().state != "up" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert source.status().state == "up"
        time.sleep(1.5)  # long enough for heartbeats to report the camera up before it dies
        server.kill()
        time.sleep(3)
        assert source.status().state != "up"
        server.restart()
        restarted = time.monotonic()
        while source.status().state != "up" and time.monotonic() - restarted < 10:
            time.sleep(0.05)
        assert time.monotonic() - restarted < 5, "reconnected within 5 s of the camera coming back"
        frames_at_reconnect = source.status().last_frame_at
        time.sleep(2)
        assert source.status().last_frame_at != frames_at_reconnect, "keeps reading after reconnect"
        time.sleep(1)
    finally:
        worker.stop()
        server.stop()
    reader = TopicReader(broker.bootstrap, "cordon.heartbeats")
    reader.drain()
    reader.close()
    beats = [e for e in map(decode, reader.values) if isinstance(e, Heartbeat)]
    states = [b.cameras[0].state for b in beats]
    first_up = states.index("up")
    gap = [b for b in beats[first_up:] if b.cameras[0].state != "up"]
    assert gap, f"heartbeats show the gap after the camera was up: {states}"
    assert all(b.cameras[0].down_since is not None for b in gap)
    assert max(b.cameras[0].reconnects for b in beats) >= 1
    assert states[-1] == "up", "heartbeats show the camera back up"


def _spooled_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            return [row[0] for row in db.execute("SELECT event_id FROM spool ORDER BY seq")]
        except sqlite3.OperationalError:  # table not created yet
            return []


@pytest.mark.slow
def test_sigkilled_edge_delivers_spooled_reads_on_restart(
    tmp_path: Path, traffic: tuple[Path, GroundTruth], models_dir: Path
) -> None:
    video, truth = traffic
    port = free_port()  # nothing listens yet: every read stays in the spool
    spool = tmp_path / "spool.sqlite3"
    common = (
        f"box_id: box-kill\nkafka_bootstrap: 127.0.0.1:{port}\nspool_path: {spool}\nmetrics_port: null\n"
        f"recogniser:\n  model_dir: {models_dir}\n"
    )
    replay = tmp_path / "replay.yaml"
    replay.write_text(common + f"cameras:\n  - id: cam1\n    url: {video}\n")
    proc = cordon_process("edge", "run", "--config", str(replay), log=tmp_path / "edge1.log")
    deadline = time.monotonic() + 120
    while len(_spooled_ids(spool)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "killed mid-replay, not after a clean exit"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    spooled = _spooled_ids(spool)
    assert len(spooled) >= 2, (tmp_path / "edge1.log").read_text()[-3000:]

    broker = EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log").start()
    idle = tmp_path / "idle.yaml"  # restart with a camera that is down: only the spool has anything to send
    idle.write_text(common + f"cameras:\n  - id: cam1\n    url: rtsp://127.0.0.1:{free_port()}/none\n")
    proc = cordon_process("edge", "run", "--config", str(idle), log=tmp_path / "edge2.log")
    try:
        reader = TopicReader(broker.bootstrap, "cordon.reads")
        reader.read_until(lambda v: len(v) >= len(spooled), timeout_s=60)
        time.sleep(2)
        reader.poll(1.0)
        reads = _reads(reader.values)
        reader.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        broker.stop()
    assert [str(r.read_id) for r in reads] == spooled, "every spooled read, once, in order"
    assert {r.plate for r in reads} <= set(_expected(truth))
    assert _spooled_ids(spool) == []
