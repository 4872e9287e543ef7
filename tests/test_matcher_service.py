"""The matcher against a real Tansu broker: hits, DLQ, live hotlist updates, replay, group failover."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from cordon.broker import EmbeddedBroker
from cordon.events import DeadLetter, HotlistEntry, HotlistHit, PlateRead, decode, encode, utc_now
from stream.hotlist import HotlistVersion, next_version
from stream.hotlist_feed import publish_version, read_latest_version
from stream.registry import CameraInfo, CameraRegistry
from stream.service import MatcherService
from stream.settings import MatcherSettings
from tests.conftest import TopicReader, cordon_process, make_read, read_topic

REGISTRY = CameraRegistry(
    [
        CameraInfo(id="cam-a580", road="A580", arterial=True),
        CameraInfo(id="cam-estate", road="Local road", arterial=False),
    ]
)


def _entry(plate: str, hotlist: str = "pnc-stolen", priority: int = 1, **extra: object) -> HotlistEntry:
    return HotlistEntry(
        entry_id=f"{hotlist}:{plate}",
        plate=plate,
        hotlist=hotlist,
        category="stolen",
        priority=priority,
        action="Stop and check",
        **extra,  # type: ignore[arg-type]
    )


def _version(
    number: int, entries: list[HotlistEntry], current: HotlistVersion | None = None
) -> HotlistVersion:
    lists: dict[str, list[HotlistEntry]] = {}
    for entry in entries:
        lists.setdefault(entry.hotlist, []).append(entry)
    return next_version(current, replace_hotlists=lists, version=number, now=utc_now())


def _settings(broker: EmbeddedBroker, **extra: object) -> MatcherSettings:
    values: dict[str, object] = {
        "kafka_bootstrap": broker.bootstrap,
        "group_id": f"matcher-{uuid.uuid4().hex[:8]}",
        "instance_id": "matcher-test",
        "session_timeout_ms": 6000,
        "max_poll_interval_ms": 10000,
        "metrics_port": None,
        "all_cameras_hotlists": ("pnc-stolen",),
    }
    values.update(extra)
    return MatcherSettings.load(**values)  # type: ignore[arg-type]


@pytest.fixture
def producer(broker: EmbeddedBroker) -> Iterator[KafkaProducer]:
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    yield p
    p.close()


def _send(producer: KafkaProducer, value: bytes, key: bytes = b"cam-a580") -> None:
    producer.send("cordon.reads", key=key, value=value).get(timeout=10)


class Running:
    """A MatcherService on a thread, stopped on exit."""

    def __init__(self, service: MatcherService) -> None:
        self.service = service
        self.thread = threading.Thread(target=service.run, daemon=True)

    def __enter__(self) -> MatcherService:
        self.thread.start()
        return self.service

    def __exit__(self, *_: object) -> None:
        self.service.stop()
        self.thread.join(timeout=30)


def _wait(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.1)
    assert condition(), "condition not met in time"  # type: ignore[operator]


def _hits(values: list[bytes]) -> list[HotlistHit]:
    return [e for e in map(decode, values) if isinstance(e, HotlistHit)]


def test_hits_dead_letters_and_arterial_policy(broker: EmbeddedBroker, producer: KafkaProducer) -> None:
    publish_version(
        broker.bootstrap,
        _version(
            1,
            [
                _entry("AB12CDE"),
                _entry("MA15KLO"),
                _entry("LV70XKM", hotlist="local-intel", priority=3),
                _entry("YR19FHT", expires_at=utc_now() - timedelta(hours=1)),
            ],
        ),
    )
    reads = {
        "exact": make_read("AB12CDE", camera_id="cam-a580"),
        "confusion": make_read("A812CDE", camera_id="cam-a580", seconds=1),  # B read as 8
        # One character wrong, from an unsure read (confident one-off reads are other vehicles).
        "edit": make_read("AB12CDF", camera_id="cam-a580", seconds=2).model_copy(update={"confidence": 0.5}),
        "confident_edit": make_read("AB12CDH", camera_id="cam-a580", seconds=2.5),
        "local_on_estate": make_read("LV70XKM", camera_id="cam-estate", seconds=3),  # list not for estates
        "local_on_arterial": make_read("LV70XKM", camera_id="cam-a580", seconds=4),
        "stolen_on_estate": make_read("MA15KLO", camera_id="cam-estate", seconds=5),  # pnc-stolen: everywhere
        "expired": make_read("YR19FHT", camera_id="cam-a580", seconds=6),
        "clean": make_read("WX64TRB", camera_id="cam-a580", seconds=7),
    }
    with Running(MatcherService(_settings(broker), registry=REGISTRY)) as service:
        _wait(lambda: service.hotlist_version == 1)
        _send(producer, b"\x00\x01 not json")
        _send(producer, json.dumps({"type": "plate_read", "schema_version": 99}).encode())
        _send(producer, json.dumps({"type": "plate_read", "schema_version": 1, "plate": "ab"}).encode())
        for read in reads.values():
            _send(producer, encode(read), key=read.camera_id.encode())
        _wait(lambda: service.reads_processed >= 3 + len(reads))
        assert service.dead_letters == 3

    hits = _hits(read_topic(broker.bootstrap, "cordon.hits"))
    by_read = {h.read_id: h for h in hits}
    assert len(hits) == len(by_read) == 5
    exact, confusion, edit = (by_read[reads[k].read_id] for k in ("exact", "confusion", "edit"))
    assert (exact.match_kind, exact.match_score, exact.priority) == ("exact", 1.0, 1)
    assert confusion.match_kind == "confusion"
    assert edit.match_kind == "edit"
    assert edit.match_score < confusion.match_score < 1.0
    assert edit.priority == 2, "a weak fuzzy hit drops one priority step"
    # One alert for the same plate + entry within the window, updated with each sighting.
    assert exact.alert_id == confusion.alert_id == edit.alert_id
    assert [exact.sighting, confusion.sighting, edit.sighting] == [1, 2, 3]
    assert reads["local_on_estate"].read_id not in by_read
    assert by_read[reads["local_on_arterial"].read_id].entry.hotlist == "local-intel"
    assert reads["stolen_on_estate"].read_id in by_read
    assert reads["expired"].read_id not in by_read
    assert reads["clean"].read_id not in by_read
    assert reads["confident_edit"].read_id not in by_read
    assert all(h.hotlist_version == 1 for h in hits)

    dead = [e for e in map(decode, read_topic(broker.bootstrap, "cordon.dlq")) if isinstance(e, DeadLetter)]
    assert dead[0].value == b"\x00\x01 not json"
    assert "not UTF-8 JSON" in dead[0].reason
    assert "schema_version=99" in dead[1].reason
    assert "plate" in dead[2].reason


def test_hotlist_update_reaches_running_matcher_and_replay_repeats_hit_ids(
    broker: EmbeddedBroker, producer: KafkaProducer
) -> None:
    v1 = _version(1, [_entry("AB12CDE")])
    publish_version(broker.bootstrap, v1)
    settings = _settings(broker, all_cameras_hotlists=())
    first = make_read("YR19FHT", camera_id="cam-a580")
    with Running(MatcherService(settings, registry=REGISTRY)) as service:
        _wait(lambda: service.hotlist_version == 1)
        _send(producer, encode(first))
        _wait(lambda: service.reads_processed >= 1)
        assert service.hits_published == 0  # not listed yet
        publish_version(broker.bootstrap, _version(2, [_entry("YR19FHT", hotlist="local-intel")], current=v1))
        _wait(lambda: service.hotlist_version == 2)
        second = make_read("YR19FHT", camera_id="cam-a580", seconds=1)
        third = make_read("AB12CDE", camera_id="cam-a580", seconds=2)
        _send(producer, encode(second))
        _send(producer, encode(third))
        _wait(lambda: service.reads_processed >= 3)
    assert read_latest_version(broker.bootstrap).version == 2  # type: ignore[union-attr]
    reader = TopicReader(broker.bootstrap, "cordon.hits")
    first_run = _hits(reader.drain())
    assert {h.read_id for h in first_run} == {second.read_id, third.read_id}

    # Replay everything (as a crash before commit would): the same hit ids come out again.
    replay = _settings(broker, all_cameras_hotlists=(), group_id="matcher-replay")
    with Running(MatcherService(replay, registry=REGISTRY)) as service:
        _wait(lambda: service.reads_processed >= 3)
    all_hits = _hits(reader.drain())
    reader.close()
    # The replay matches the first read against version 2 too (it is live now); every hit id of the first run
    # comes out again unchanged, and no read gets two different hit ids for one entry.
    assert {h.hit_id for h in first_run} <= {h.hit_id for h in all_hits}, "a replay repeats the same hit ids"
    assert len({h.hit_id for h in all_hits}) == len({(h.read_id, h.entry.entry_id) for h in all_hits}) == 3


def _assigned(log: Path) -> bool:
    return bool(re.search(r'"partitions assigned".*"partitions": \[\d', log.read_text()))


@pytest.mark.slow
def test_group_failover_leaves_no_read_unmatched(broker: EmbeddedBroker, tmp_path: Path) -> None:
    cameras = [f"cam-{i}" for i in range(12)]
    registry = tmp_path / "cameras.yaml"
    registry.write_text("".join(f"- id: {c}\n  arterial: true\n" for c in cameras))
    publish_version(broker.bootstrap, _version(1, [_entry(f"AB{i:02d}CDE") for i in range(10)]))
    procs, logs = [], []
    for name in ("a", "b"):
        config = tmp_path / f"{name}.yaml"
        config.write_text(
            f"kafka_bootstrap: {broker.bootstrap}\ninstance_id: matcher-{name}\ngroup_id: failover\n"
            f"camera_registry: {registry}\nsession_timeout_ms: 6000\nmax_poll_interval_ms: 10000\n"
            "metrics_port: null\nlog_level: info\n"
        )
        logs.append(tmp_path / f"{name}.log")
        procs.append(cordon_process("matcher", "run", "--config", str(config), log=logs[-1]))
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    reader = TopicReader(broker.bootstrap, "cordon.hits")
    try:
        _wait(lambda: all(_assigned(log) for log in logs), timeout_s=60)  # both members own partitions
        sent: list[PlateRead] = []

        def send(n: int) -> None:
            for i in range(n):
                read = make_read(
                    f"AB{len(sent) % 10:02d}CDE", camera_id=cameras[len(sent) % 12], seconds=len(sent)
                )
                producer.send("cordon.reads", key=read.camera_id.encode(), value=encode(read))
                sent.append(read)
                time.sleep(0.02 if i % 5 else 0)
            producer.flush()

        send(60)
        reader.read_until(lambda v: len({h.read_id for h in _hits(v)}) >= 30, timeout_s=30)
        procs[0].send_signal(signal.SIGKILL)  # a crash: no commit, no leaving the group
        procs[0].wait()
        send(60)
        expected = {r.read_id for r in sent}
        reader.read_until(lambda v: {h.read_id for h in _hits(v)} >= expected, timeout_s=90)
        matched = {h.read_id for h in _hits(reader.values)}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        producer.close()
        reader.close()
    assert matched == expected, f"{len(expected - matched)} reads unmatched after failover"
