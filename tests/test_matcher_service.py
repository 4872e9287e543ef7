"""The matcher against a real Tansu broker: hits, DLQ, live hotlist updates, replay, group failover."""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import json
import logging
import os
import pickle
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

import stream.service
from cordon.broker import EmbeddedBroker
from cordon.errors import BrokerError
from cordon.events import DeadLetter, Heartbeat, HotlistEntry, HotlistHit, PlateRead, decode, encode, utc_now
from cordon.kafka_batches import BatchPublisher, Delivery, OutRecord
from stream.core import MatchPolicy, ReadMatcher
from stream.fetcher import (
    YOUNG_COLLECTION_THRESHOLD,
    FetchedBatch,
    FetcherConfig,
    ReadFetcher,
    ReadPrefilter,
    space_young_collections,
)
from stream.hotlist import HotlistVersion, next_version
from stream.hotlist_feed import publish_version, read_latest_version
from stream.matching import HotlistIndex
from stream.registry import CameraInfo, CameraRegistry
from stream.service import MatcherService, _SentBatch
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
        # A read whose camera id holds a byte that is not UTF-8 (msgspec raises UnicodeDecodeError on it).
        bad_text = encode(make_read("AB12CDE")).replace(b'"camera_id":"', b'"camera_id":"\xa9', 1)
        _send(producer, bad_text)
        for read in reads.values():
            _send(producer, encode(read), key=read.camera_id.encode())
        _wait(lambda: service.reads_processed >= 4 + len(reads))
        assert service.dead_letters == 4

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
    assert dead[3].value == bad_text
    assert "not UTF-8 JSON" in dead[3].reason


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


def test_a_broker_crash_mid_stream_loses_no_hit(tmp_path: Path) -> None:
    """Kafka dies (SIGKILL) under a running matcher and comes back: reads sent after it returns all hit.

    The embedded broker keeps its data in memory, so what it held is gone: the hotlist (the matcher keeps
    the version it has), the group's offsets, and the reads and hits of before. The matcher's consumer
    rejoins and its publisher reconnects (or fails the batch, which is then replayed).
    """
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log").start()
    try:
        publish_version(broker.bootstrap, _version(1, [_entry("AB12CDE")]))
        before = [make_read("AB12CDE", camera_id="cam-a580", seconds=i) for i in range(5)]
        after = [make_read("AB12CDE", camera_id="cam-a580", seconds=10 + i) for i in range(10)]
        with Running(MatcherService(_settings(broker), registry=REGISTRY)) as service:
            _wait(lambda: service.hotlist_version == 1)
            with contextlib.closing(KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")) as sender:
                for read in before:
                    _send(sender, encode(read))
            _wait(lambda: service.hits_published >= len(before))
            broker.kill()
            time.sleep(2.0)  # long enough for the consumer and publisher to notice
            broker.start()
            with contextlib.closing(KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")) as sender:
                for read in after:
                    _send(sender, encode(read))
            reader = TopicReader(broker.bootstrap, "cordon.hits")
            try:
                wanted = {read.read_id for read in after}
                reader.read_until(lambda values: wanted <= {h.read_id for h in _hits(values)}, timeout_s=90)
                hits = _hits(reader.values)
            finally:
                reader.close()
            assert service.hotlist_version == 1
        assert {h.read_id for h in hits} == wanted
        # Replays write the same hit again, never a second hit for one read.
        assert len({h.hit_id for h in hits}) == len(wanted)
    finally:
        broker.stop()


def test_batches_that_fail_to_publish_are_replayed_however_often_it_happens(
    broker: EmbeddedBroker, producer: KafkaProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The publisher cannot start (Kafka refuses it) more often than the fetcher polls ahead: no read is lost.

    Each failed batch is replayed from the last commit, and handed back to the fetcher every time: a batch
    never handed back would leave the fetcher polling only every 0.5 s once ``batches_ahead`` of them had
    failed.
    """
    failures = FetcherConfig(topic="cordon.reads", consumer={}).batches_ahead + 2
    real_start = BatchPublisher._start
    attempts: list[int] = []

    async def failing_start(publisher: BatchPublisher) -> None:
        attempts.append(1)
        if len(attempts) <= failures:
            raise OSError("injected: connection refused")
        await real_start(publisher)

    monkeypatch.setattr(BatchPublisher, "_start", failing_start)
    publish_version(broker.bootstrap, _version(1, [_entry("AB12CDE")]))
    reads = [make_read("AB12CDE", camera_id="cam-a580", seconds=i) for i in range(3)]
    with Running(MatcherService(_settings(broker), registry=REGISTRY)) as service:
        _wait(lambda: service.hotlist_version == 1)
        for read in reads:
            _send(producer, encode(read))
        _wait(lambda: service.hits_published >= len(reads), timeout_s=60)
        fetcher = service._consumer_in_use
        assert fetcher is not None
        _wait(lambda: fetcher.batches_held == 0)  # the failed batches' credits came back
    assert len(attempts) == failures + 1
    hits = _hits(read_topic(broker.bootstrap, "cordon.hits"))
    assert {h.read_id for h in hits} == {r.read_id for r in reads}


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


def test_a_killed_fetcher_process_is_replaced_and_no_read_is_lost(
    broker: EmbeddedBroker, producer: KafkaProducer
) -> None:
    publish_version(broker.bootstrap, _version(1, [_entry(f"AB{i:02d}CDE") for i in range(10)]))
    settings = _settings(broker)
    sent: list[PlateRead] = []

    def send(n: int) -> None:
        for _ in range(n):
            read = make_read(f"AB{len(sent) % 10:02d}CDE", camera_id="cam-a580", seconds=len(sent))
            producer.send("cordon.reads", key=b"cam-a580", value=encode(read))
            sent.append(read)
        producer.flush()

    reader = TopicReader(broker.bootstrap, "cordon.hits")
    try:
        with Running(MatcherService(settings, registry=REGISTRY)) as service:
            _wait(lambda: service.hotlist_version == 1 and bool(service.assigned))
            send(40)
            _wait(lambda: service.reads_processed >= 40)
            fetcher = service._consumer_in_use
            assert fetcher is not None
            assert fetcher.pid is not None
            old_pid = fetcher.pid
            os.kill(old_pid, signal.SIGKILL)  # the consumer-group member dies; the matcher lives on
            send(40)
            _wait(lambda: service.reads_processed >= 80, timeout_s=60)
            replacement = service._consumer_in_use
            assert replacement is not None
            assert replacement.pid not in (None, old_pid)
        expected = {r.read_id for r in sent}
        reader.read_until(lambda v: {h.read_id for h in _hits(v)} >= expected, timeout_s=30)
        matched = {h.read_id for h in _hits(reader.values)}
    finally:
        reader.close()
    assert matched == expected
    assert _committed(broker.bootstrap, settings.group_id) == 80


# --- batches, pipelined delivery, rebalances ---------------------------------------------------------------


def _record(value: bytes | None, offset: int, partition: int = 0) -> ConsumerRecord:
    size = -1 if value is None else len(value)
    return ConsumerRecord(
        "cordon.reads", partition, -1, offset, 0, 0, b"cam-a580", value, [], None, 8, size, 0
    )


def test_a_batch_is_processed_as_record_after_record() -> None:
    """process_batch (screen, index look, full decode of the few) gives what process gives one by one."""
    settings = MatcherSettings.load(metrics_port=None, all_cameras_hotlists=("pnc-stolen",))
    entries = [_entry("AB12CDE"), _entry("LV70XKM", hotlist="local-intel", priority=3)]
    reads = [
        make_read("AB12CDE", camera_id="cam-a580"),
        make_read("A812CDE", camera_id="cam-estate", seconds=1),  # a confusion, on an estate camera
        make_read("AB12CDF", camera_id="cam-a580", seconds=2).model_copy(update={"confidence": 0.5}),
        make_read("AB12CDH", camera_id="cam-a580", seconds=3),  # a confident one-off: no hit
        make_read("LV70XKM", camera_id="cam-estate", seconds=4),  # local list, not on estates
        make_read("WX64TRB", camera_id="cam-a580", seconds=5),
    ]
    values: list[bytes | None] = [encode(read) for read in reads]
    values[2] = encode(reads[2]).replace(b'"plate":', b'"plate": ')  # valid, but not as encode() writes it
    values += [
        b"\x00\x01 not json",
        json.dumps({"type": "plate_read", "schema_version": 1, "plate": "ab"}).encode(),
        encode(Heartbeat(edge_box_id="box", sent_at=utc_now())),
        None,  # a tombstone
    ]
    # Hits made of the screen's fields (a crop) and of a full decode (nanoseconds, which the screen leaves).
    cropped = make_read("AB12CDE", camera_id="cam-a580", seconds=6).model_copy(
        update={"crop_jpeg": b"\xff\xd8\xff\xe0"}
    )
    precise = make_read("AB12CDE", camera_id="cam-a580", seconds=7)
    stamp = precise.captured_at.strftime("%Y-%m-%dT%H:%M:%S.%f").encode()
    values += [encode(cropped), encode(precise).replace(stamp + b"Z", stamp + b"999+00:00")]
    records = [_record(value, offset) for offset, value in enumerate(values)]
    one, batch = (MatcherService(settings, registry=REGISTRY) for _ in range(2))
    for service in (one, batch):
        service.matcher.index = HotlistIndex.build(entries, version=1)
    now = utc_now()

    hits, dead = batch.process_batch(records, now=now)

    expected_hits, expected_dead = [], []
    for record in records:
        found, letter = one.process(record, now=now)
        expected_hits.extend(found)
        if letter is not None:
            expected_dead.append(letter)
    assert [h.read_id for h in hits] == [
        *(reads[i].read_id for i in (0, 1, 2)),
        cropped.read_id,
        precise.read_id,
    ]
    assert (hits[3].to_event().crop_jpeg, hits[3].sighting, hits[4].sighting) == (b"\xff\xd8\xff\xe0", 4, 5)
    assert hits[4].captured_at == precise.captured_at
    assert hits == expected_hits
    assert [(d.offset, d.reason) for d in dead] == [(d.offset, d.reason) for d in expected_dead]
    assert [d.offset for d in dead] == [6, 7, 8, 9]
    assert "plate" in dead[1].reason
    assert "got heartbeat" in dead[2].reason
    assert dead[3].reason == "message has no value"
    assert batch.dead_letters == one.dead_letters == 4


def test_a_failing_screen_decode_of_hit_reads_falls_back_to_full_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in the screen's decoding of the reads that raise hits costs speed, not hits."""

    def broken(_values: object) -> list[None]:
        raise RuntimeError("a bug")

    settings = MatcherSettings.load(metrics_port=None, all_cameras_hotlists=("pnc-stolen",))
    reads = [
        make_read("AB12CDE", camera_id="cam-a580"),
        make_read("WX64TRB", camera_id="cam-a580", seconds=1),
    ]
    records = [_record(encode(read), offset) for offset, read in enumerate(reads)]
    one, batch = (MatcherService(settings, registry=REGISTRY) for _ in range(2))
    for service in (one, batch):
        service.matcher.index = HotlistIndex.build([_entry("AB12CDE")], version=1)
    now = utc_now()
    monkeypatch.setattr(stream.service, "screened_read_fields", broken)

    hits, dead = batch.process_batch(records, now=now)

    assert hits == one.process(records[0], now=now)[0]
    assert [hit.read_id for hit in hits] == [reads[0].read_id]
    assert dead == []


def _committed(bootstrap: str, group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic == "cordon.reads")


def test_reads_without_hits_are_committed_too(broker: EmbeddedBroker, producer: KafkaProducer) -> None:
    publish_version(broker.bootstrap, _version(1, [_entry("AB12CDE")]))
    settings = _settings(broker)
    with Running(MatcherService(settings, registry=REGISTRY)) as service:
        _wait(lambda: service.hotlist_version == 1)
        for i in range(40):
            read = make_read("AB12CDE" if i == 20 else f"WX{i:02d}TRB", camera_id="cam-a580", seconds=i)
            producer.send("cordon.reads", key=b"cam-a580", value=encode(read))
        producer.flush()
        _wait(lambda: service.reads_processed >= 40)
        # Committed asynchronously as batches are acknowledged, not only when the matcher stops.
        _wait(lambda: _committed(broker.bootstrap, settings.group_id) == 40)
        assert service.hits_published == 1
    assert _committed(broker.bootstrap, settings.group_id) == 40


@pytest.mark.slow
def test_a_member_joining_mid_stream_takes_partitions_and_no_read_is_lost(
    broker: EmbeddedBroker, producer: KafkaProducer, caplog: pytest.LogCaptureFixture
) -> None:
    publish_version(broker.bootstrap, _version(1, [_entry(f"AB{i:02d}CDE") for i in range(10)]))
    cameras = [f"cam-{i}" for i in range(12)]
    registry = CameraRegistry([CameraInfo(id=c, arterial=True) for c in cameras])
    settings = _settings(broker, group_id=f"join-{uuid.uuid4().hex[:6]}")
    first = MatcherService(settings.model_copy(update={"instance_id": "first"}), registry=registry)
    second = MatcherService(settings.model_copy(update={"instance_id": "second"}), registry=registry)
    sent: list[PlateRead] = []
    stop_sending = threading.Event()

    def send() -> None:  # about 1,000 reads a second until told to stop
        while not stop_sending.is_set() and len(sent) < 50_000:
            read = make_read(
                f"AB{len(sent) % 10:02d}CDE", camera_id=cameras[len(sent) % 12], seconds=len(sent)
            )
            producer.send("cordon.reads", key=read.camera_id.encode(), value=encode(read))
            sent.append(read)
            if len(sent) % 50 == 0:
                producer.flush()
                time.sleep(0.05)
        producer.flush()

    sender = threading.Thread(target=send)
    reader = TopicReader(broker.bootstrap, "cordon.hits")
    try:
        with Running(first):
            _wait(lambda: first.hotlist_version == 1)
            sender.start()
            _wait(lambda: first.reads_processed > 300, timeout_s=60)
            with Running(second):
                _wait(lambda: bool(second.assigned) and second.reads_processed > 300, timeout_s=90)
                stop_sending.set()
                sender.join()
                _wait(lambda: first.reads_processed + second.reads_processed >= len(sent), timeout_s=60)
                assert first.assigned
                assert second.assigned
        expected = {r.read_id for r in sent}
        reader.read_until(lambda v: {h.read_id for h in _hits(v)} >= expected, timeout_s=60)
        matched = {h.read_id for h in _hits(reader.values)}
    finally:
        stop_sending.set()
        if sender.is_alive():
            sender.join()
        reader.close()
    assert matched == expected, f"{len(expected - matched)} reads unmatched after a member joined"
    # kafka-python logs a metadata refresh cancelled by a client closing as an ERROR: not a callback failure.
    errors = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and not (r.name == "kafka.cluster" and "Metadata refresh" in str(r.msg))
    ]
    assert not errors, "a rebalance callback failed"


class _Commits:
    """Stands in for the consumer around the commit logic (a unit test; Tansu tests above)."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    def commit_async(self, offsets: dict[TopicPartition, OffsetAndMetadata], **_: object) -> None:
        self.commits.append({tp: o.offset for tp, o in offsets.items()})


def _sent(service: MatcherService, offsets: dict[int, int], sends: int) -> concurrent.futures.Future[None]:
    """A batch handed to the publisher with ``sends`` hits; its delivery's future, not yet answered."""
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    sent = _SentBatch(
        offsets={TopicPartition("cordon.reads", p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()},
        reads=10,
        delivery=Delivery(future, sends) if sends else None,
        hit_kinds=["exact"] * sends,
        captured=[utc_now()] * sends,
    )
    service._in_flight.append(sent)
    return future


def test_only_a_prefix_of_acknowledged_batches_is_committed() -> None:
    service = MatcherService(MatcherSettings.load(metrics_port=None), registry=REGISTRY)
    fake = _Commits()
    service._consumer_in_use = fake
    first = _sent(service, {0: 100, 1: 50}, sends=2)
    second = _sent(service, {0: 200}, sends=1)
    _sent(service, {1: 90, 2: 10}, sends=0)  # a batch without hits: acknowledged as soon as it is sent
    fourth = _sent(service, {2: 20}, sends=1)

    second.set_result(None)
    service._settle()
    assert fake.commits == []  # the first batch still waits for an ack: nothing after it may be committed
    first.set_result(None)
    service._settle()
    assert fake.commits == [{tp(0): 200, tp(1): 90, tp(2): 10}]  # the highest offsets of batches 1-3
    assert (service.reads_processed, service.hits_published) == (30, 3)

    fourth.set_exception(BrokerError("broker gone"))
    with pytest.raises(BrokerError, match="replayed"):
        service._settle()
    assert len(fake.commits) == 1


def test_a_rebalance_commits_what_is_acknowledged_and_forgets_the_revoked_rest() -> None:
    service = MatcherService(MatcherSettings.load(metrics_port=None), registry=REGISTRY)
    fake = _Commits()
    service._consumer_in_use = fake
    _sent(service, {0: 100, 1: 50}, sends=1).set_result(None)
    _sent(service, {0: 200, 1: 70}, sends=1)  # not acknowledged when the partitions go

    service._hand_over({tp(0)}, commit=True)

    assert fake.commits == [{tp(0): 100, tp(1): 50}]
    (waiting,) = service._in_flight
    assert set(waiting.offsets) == {tp(1)}  # partition 0's next owner replays from offset 100
    service._hand_over({tp(1)}, commit=False)  # lost: nothing can be committed
    assert fake.commits == [{tp(0): 100, tp(1): 50}]
    assert waiting.offsets == {}


def tp(partition: int) -> TopicPartition:
    return TopicPartition("cordon.reads", partition)


def test_a_fetched_batch_carries_its_screened_reads_as_columns() -> None:
    reads = [make_read("AB12CDE"), make_read("WX64TRB", seconds=1)]
    values: list[bytes | None] = [encode(reads[0]), b"not json", None, encode(reads[1])]
    polled = {tp(0): [_record(value, offset) for offset, value in enumerate(values)]}

    batch = FetchedBatch.of(polled, seq=3, epoch=1, assignment=frozenset({tp(0)}), screen=True)

    assert batch.screened is not None
    rows, columns = batch.screened
    assert rows == [0, 3]
    assert columns.plates == ["AB12CDE", "WX64TRB"]
    assert columns.captured_at == [r.captured_at for r in reads]
    assert batch.next_offsets == {tp(0): OffsetAndMetadata(4, "", -1)}
    assert batch.record(1) == _record(b"not json", 1)._replace(checksum=None, timestamp=0)
    assert pickle.loads(pickle.dumps(batch)) == batch  # what crosses the pipe
    assert FetchedBatch.of(polled, seq=0, epoch=0, assignment=frozenset()).screened is None


def test_a_prefiltered_batch_carries_only_what_may_hit_and_what_the_screen_cannot_vouch_for() -> None:
    listed = HotlistIndex.build([_entry("AB12CDE"), _entry("KM07XYZ")], version=4)
    reads = [
        make_read("WX64TRB"),  # nowhere near a listed plate: held back
        make_read("A812CDE", seconds=1),  # a confusion of AB12CDE
        # One edit from KM07XYZ: a confident read is not looked up with an edit; an unsure one may hit.
        make_read("KM07XYQ", seconds=2).model_copy(update={"confidence": 0.95}),
        make_read("KM07XYQ", seconds=3).model_copy(update={"confidence": 0.7}),
    ]
    values: list[bytes | None] = [encode(reads[0]), encode(reads[1]), b"not json", encode(reads[2])]
    values.append(encode(reads[3]))
    polled = {tp(0): [_record(v, offset) for offset, v in enumerate(values[:3])]}
    polled[tp(1)] = [_record(v, offset, 1) for offset, v in enumerate(values[3:], start=10)]
    policy = MatchPolicy()
    prefilter = ReadPrefilter(7, listed.prefilter(), policy)

    batch = FetchedBatch.of(polled, seq=0, epoch=0, assignment=frozenset(), screen=True, prefilter=prefilter)

    assert batch.prefilter == 7
    assert batch.records == 5
    assert batch.values == [values[1], b"not json", values[4]]
    assert (batch.partitions, batch.offsets) == ([0, 0, 1], [1, 2, 11])
    assert batch.next_offsets == {tp(0): OffsetAndMetadata(3, "", -1), tp(1): OffsetAndMetadata(12, "", -1)}
    assert batch.screened is not None
    rows, columns = batch.screened
    assert rows == [0, 2]
    assert columns.plates == ["A812CDE", "KM07XYQ"]
    assert columns.confidences == [reads[1].confidence, 0.7]
    # Nothing held back could raise a hit against that index.
    matcher = ReadMatcher(listed, REGISTRY, policy=policy)
    held_back = [
        read for read, value in zip(reads, values[:2] + values[3:], strict=True) if value not in batch.values
    ]
    assert len(held_back) == 2
    assert not any(matcher.would_hit(held_back))
    assert pickle.loads(pickle.dumps(batch)) == batch


class _PrefilterFetcher:
    """Stands in for the fetcher process's proxy where prefilters are offered (a unit test)."""

    def __init__(self) -> None:
        self.offered: list[ReadPrefilter] = []
        self.prefilter_offered: int | None = None
        self.prefilter_applied: int | None = None

    def set_prefilter(self, prefilter: ReadPrefilter) -> None:
        self.offered.append(prefilter)
        self.prefilter_offered = prefilter.generation


class _Publisher:
    """A publisher that keeps what is published, and never acknowledges it (a unit test)."""

    def __init__(self) -> None:
        self.sent: list[OutRecord] = []

    def publish(self, records: list[OutRecord]) -> Delivery:
        self.sent.extend(records)
        return Delivery(concurrent.futures.Future(), len(records))


def test_a_batch_held_back_with_an_older_prefilter_is_matched_against_that_index() -> None:
    """Reads left behind by version 1's prefilter might match version 2: the batch is matched against 1."""
    service = MatcherService(MatcherSettings.load(metrics_port=None), registry=REGISTRY)
    fetcher, publisher = _PrefilterFetcher(), _Publisher()
    v1 = HotlistIndex.build([_entry("AB12CDE")], version=1)
    v2 = HotlistIndex.build([_entry("WX64TRB")], version=2)
    service.matcher.index = v1
    service._offer_prefilter(fetcher)  # type: ignore[arg-type]
    service._offer_prefilter(fetcher)  # type: ignore[arg-type]  # already has it: nothing sent
    assert [(p.generation, p.hotlist.version) for p in fetcher.offered] == [(1, 1)]
    reads = [make_read("AB12CDE", camera_id="cam-a580"), make_read("WX64TRB", camera_id="cam-a580")]
    polled = {tp(0): [_record(encode(read), offset) for offset, read in enumerate(reads)]}
    held_back = FetchedBatch.of(
        polled, seq=0, epoch=0, assignment=frozenset(), screen=True, prefilter=fetcher.offered[0]
    )
    assert held_back.values == [encode(reads[0])]  # WX64TRB cannot match version 1

    service.matcher.index = v2  # version 2 arrives while the batch is on its way
    service._offer_prefilter(fetcher)  # type: ignore[arg-type]
    assert [(p.generation, p.hotlist.version) for p in fetcher.offered] == [(1, 1), (2, 2)]
    service._consumer_in_use = fetcher  # type: ignore[assignment]
    service._publisher = publisher  # type: ignore[assignment]
    assert service.hotlist_version == 2  # nothing taken up by the fetcher yet: the index in use
    fetcher.prefilter_applied = 1
    assert service.hotlist_version == 1  # reads consumed now are still matched against version 1
    service._send_batch(held_back)

    (hit,) = [decode(record.value) for record in publisher.sent]
    assert isinstance(hit, HotlistHit)
    assert (hit.plate_read, hit.hotlist_version) == ("AB12CDE", 1)
    assert service._in_flight[0].reads == 2  # both reads are counted (and committed) with the batch
    fetcher.prefilter_applied = 2
    service._offer_prefilter(fetcher)  # type: ignore[arg-type]
    assert list(service._prefiltered) == [2]  # no batch can come with generation 1 any more
    assert service.hotlist_version == 2


def test_the_matcher_processes_space_their_young_collections(broker: EmbeddedBroker) -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        space_young_collections()
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 10, 10)
    finally:
        gc.set_threshold(*before)
    config = FetcherConfig(
        topic="cordon.reads",
        consumer={"bootstrap_servers": broker.bootstrap, "group_id": f"gc-{uuid.uuid4().hex[:8]}"},
    )
    fetcher = ReadFetcher(config).start()
    try:
        assert fetcher.child_gc_threshold is not None
        assert fetcher.child_gc_threshold[0] == YOUNG_COLLECTION_THRESHOLD
    finally:
        fetcher.close()


@pytest.mark.parametrize(("share", "while_held"), [(True, 0), (True, 2), (False, 2)])
def test_a_batch_polled_while_the_matcher_has_little_to_do_is_left_for_it_to_screen(
    broker: EmbeddedBroker, share: bool, while_held: int
) -> None:
    """The fetcher screens (and prefilters) a batch only while the matcher holds more than ``while_held``."""
    config = FetcherConfig(
        topic="cordon.reads",
        consumer={
            "bootstrap_servers": broker.bootstrap,
            "group_id": f"share-{uuid.uuid4().hex[:8]}",
            "auto_offset_reset": "earliest",
            "enable_auto_commit": False,
            "max_poll_records": 2,
            "max_poll_interval_ms": 10_000,
        },
        screen=True,
        share_screening=share,
        share_while_held=while_held,
    )
    fetcher = ReadFetcher(config).start()
    try:
        index = HotlistIndex.build([_entry("AB12CDE")], version=1)
        fetcher.set_prefilter(ReadPrefilter(1, index.prefilter(), MatchPolicy()))
        deadline = time.monotonic() + 30
        while fetcher.prefilter_applied != 1:  # taken up before any read is polled
            assert fetcher.next_batch(timeout_s=0.2) is None
            assert time.monotonic() < deadline, "the fetcher did not take up the prefilter"
        plates = ["AB12CDE", "WX64TRB", "LV70XKM", "YK19ABC", "MA66PZT", "SN68WPU", "GH52RTY", "KP03NMV"]
        plates += ["FD21JXW", "EY07UUJ"]
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        try:
            for i, plate in enumerate(plates):
                producer.send("cordon.reads", key=b"cam-a580", value=encode(make_read(plate, seconds=i)))
            producer.flush()
        finally:
            producer.close()
        batches: list[FetchedBatch] = []
        deadline = time.monotonic() + 60
        while sum(batch.records for batch in batches) < len(plates):  # no done(): the matcher holds them all
            assert time.monotonic() < deadline, f"polled {[batch.records for batch in batches]}"
            batch = fetcher.next_batch(timeout_s=1.0)
            if batch is not None:
                batches.append(batch)
    finally:
        fetcher.close()

    assert sum(batch.records for batch in batches) == len(plates)
    assert [next(iter(batch.next_offsets.values())).offset for batch in batches][-1] == len(plates)
    assert len(batches) >= while_held + 2
    # The matcher held 0, 1, 2, ... batches when each was polled: those polled while it held at most
    # while_held come with every record, for it to screen itself.
    unscreened = while_held + 1 if share else 0
    for batch in batches[:unscreened]:
        assert (batch.screened, batch.prefilter, len(batch)) == (None, None, batch.records)
    later = batches[unscreened:]
    for batch in later:
        assert batch.screened is not None
        assert batch.prefilter == 1
    assert sum(batch.records - len(batch) for batch in later) >= len(later)  # the prefilter held reads back
