"""Several matcher processes in one consumer group (stream.processes), against a real Tansu broker."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from kafka import KafkaProducer

import stream.processes
from cordon.broker import EmbeddedBroker
from cordon.errors import ConfigError
from cordon.events import HotlistEntry, HotlistHit, PlateRead, decode, encode, utc_now
from stream.hotlist import HotlistVersion
from stream.hotlist_feed import publish_version
from stream.processes import MatcherProcesses
from stream.registry import CameraInfo, CameraRegistry
from stream.settings import MatcherSettings
from tests.conftest import TopicReader, cordon_process, make_read

CAMERAS = [f"cam-{i}" for i in range(12)]
PLATES = [f"AB{i:02d}CDE" for i in range(10)]


def _publish(broker: EmbeddedBroker) -> None:
    entries = [
        HotlistEntry(
            entry_id=f"pnc-stolen:{p}",
            plate=p,
            hotlist="pnc-stolen",
            category="stolen",
            priority=1,
            action="Stop",
        )
        for p in PLATES
    ]
    publish_version(broker.bootstrap, HotlistVersion.of(entries, version=1, created_at=utc_now()))


def _send(producer: KafkaProducer, sent: list[PlateRead], count: int) -> None:
    for _ in range(count):
        read = make_read(PLATES[len(sent) % 10], camera_id=CAMERAS[len(sent) % 12], seconds=len(sent))
        producer.send("cordon.reads", key=read.camera_id.encode(), value=encode(read))
        sent.append(read)
    producer.flush()


def _wait(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert condition(), "condition not met in time"


def _hit_reads(values: list[bytes]) -> set[uuid.UUID]:
    return {e.read_id for e in map(decode, values) if isinstance(e, HotlistHit)}


def test_public_api_is_pinned() -> None:
    assert set(stream.processes.__all__) == {"PUBLISH_INTERVAL_S", "MatcherProcesses"}


def test_processes_setting_is_bounded() -> None:
    assert MatcherSettings.load(metrics_port=None).processes == 1
    assert MatcherSettings.load(metrics_port=None, processes=6).processes == 6
    for bad in (0, 33):
        with pytest.raises(ConfigError, match="processes"):
            MatcherSettings.load(processes=bad)
    with pytest.raises(ValueError, match="processes must be >= 1"):
        MatcherProcesses(MatcherSettings.load(metrics_port=None), processes=0)


@pytest.mark.slow
def test_processes_share_the_partitions_and_a_dead_one_is_restarted(broker: EmbeddedBroker) -> None:
    _publish(broker)
    settings = MatcherSettings.load(
        kafka_bootstrap=broker.bootstrap,
        group_id=f"processes-{uuid.uuid4().hex[:6]}",
        instance_id="matcher-test",
        session_timeout_ms=6000,
        max_poll_interval_ms=10000,
        metrics_port=None,
        log_format="json",
        log_level="info",  # partition moves are logged, with the instance and partitions: shown on a failure
    )
    registry = CameraRegistry([CameraInfo(id=c, arterial=True) for c in CAMERAS])
    group = MatcherProcesses(settings, registry=registry, processes=2)
    watcher = threading.Thread(target=group.run)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    reader = TopicReader(broker.bootstrap, "cordon.hits")
    sent: list[PlateRead] = []
    try:
        watcher.start()
        _wait(
            lambda: (
                group.hotlist_version == 1 and all(n > 0 for n in group.partitions) and len(group.pids()) == 2
            )
        )
        assert sum(group.partitions) == 6
        _send(producer, sent, 120)
        _wait(lambda: group.reads_processed >= 120)
        assert group.hits_published >= 120

        os.kill(group.pids()[0], signal.SIGKILL)  # a crash: the watchdog starts it again
        _wait(lambda: group.restarts == 1 and all(group.alive()), timeout_s=30)
        _send(producer, sent, 120)
        expected = {r.read_id for r in sent}
        reader.read_until(lambda v: _hit_reads(v) >= expected, timeout_s=90)
        hit = _hit_reads(reader.values)
        missing = [r for r in sent if r.read_id not in hit]
        assert not missing, (
            f"{len(missing)} of {len(sent)} reads have no hit (sent #{sent.index(missing[0])} first), from "
            f"cameras {sorted({r.camera_id for r in missing})}; partitions held {group.partitions}, reads "
            f"processed {group.reads_processed}, alive {group.alive()}, restarts {group.restarts}"
        )
        _wait(lambda: group.hotlist_version == 1 and all(n > 0 for n in group.partitions))
    finally:
        pids = group.pids()
        group.stop_requested()
        watcher.join(60)
        producer.close()
        reader.close()
    assert not watcher.is_alive()
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids
    )


@pytest.mark.slow
def test_cordon_matcher_run_with_processes_setting(broker: EmbeddedBroker, tmp_path: Path) -> None:
    _publish(broker)
    registry = tmp_path / "cameras.yaml"
    registry.write_text("".join(f"- id: {c}\n  arterial: true\n" for c in CAMERAS))
    config = tmp_path / "matcher.yaml"
    config.write_text(
        f"kafka_bootstrap: {broker.bootstrap}\ninstance_id: matcher-cli\n"
        f"group_id: cli-{uuid.uuid4().hex[:6]}\n"
        f"camera_registry: {registry}\nsession_timeout_ms: 6000\nmax_poll_interval_ms: 10000\n"
        "metrics_port: null\nprocesses: 2\nlog_level: info\n"
    )
    log = tmp_path / "matcher.log"
    proc = cordon_process("matcher", "run", "--config", str(config), log=log)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    reader = TopicReader(broker.bootstrap, "cordon.hits")
    sent: list[PlateRead] = []
    try:
        _wait(lambda: log.read_text().count('"partitions assigned"') >= 2, timeout_s=90)
        children = psutil.Process(proc.pid).children()
        assert len([c for c in children if "python" in c.name().lower()]) >= 2
        _send(producer, sent, 60)
        expected = {r.read_id for r in sent}
        reader.read_until(lambda v: _hit_reads(v) >= expected, timeout_s=60)
        assert _hit_reads(reader.values) >= expected
        assert '"instance": "matcher-cli-0"' in log.read_text()
        assert '"instance": "matcher-cli-1"' in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        producer.close()
        reader.close()
    assert code == 0
    # The members are joined before the parent exits; multiprocessing's resource tracker (also a child)
    # notices the parent has gone a moment later.
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not [c for c in alive if c.status() != psutil.STATUS_ZOMBIE]
