"""BatchPublisher against a real Tansu broker: partitions and order, split batches, failures, outages."""

from __future__ import annotations

import time
import zlib
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, TopicPartition

from cordon.broker import EmbeddedBroker, free_port
from cordon.errors import BrokerError
from cordon.kafka_batches import BatchPublisher, OutRecord, key_partition


def _read(bootstrap: str, topic: str, expected: int) -> dict[int, list[tuple[bytes | None, bytes]]]:
    """Per partition, the (key, value) of the records on ``topic`` in offset order (``expected`` or more)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        got: dict[int, list[tuple[bytes | None, bytes]]] = defaultdict(list)
        deadline = time.monotonic() + 20
        while sum(map(len, got.values())) < expected and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=300).items():
                got[tp.partition].extend((r.key, r.value) for r in records)
        return dict(got)
    finally:
        consumer.close()


def test_records_go_to_their_keys_partitions_in_order_over_calls_and_topics(broker: EmbeddedBroker) -> None:
    publisher = BatchPublisher(broker.bootstrap, client_id="test").start()
    try:
        keys = [f"alert-{i % 7}".encode() for i in range(300)]
        hits = [OutRecord("cordon.hits", key, b"hit %d" % i) for i, key in enumerate(keys)]
        letters = [OutRecord("cordon.dlq", None, b"letter %d" % i) for i in range(5)]
        deliveries = [publisher.publish(hits[:100] + letters), publisher.publish(hits[100:])]
        for delivery in deliveries:
            delivery.wait(10)
            assert delivery.done()
            assert delivery.error() is None
    finally:
        publisher.close()

    got = _read(broker.bootstrap, "cordon.hits", 300)
    partitions = sorted(got)
    assert len(partitions) > 1  # seven keys spread over the topic's three partitions
    for partition, records in got.items():
        # Each key on its partition, in the order published.
        assert all(key_partition(key, [0, 1, 2]) == partition for key, _ in records if key is not None)
        assert records == [
            (r.key, r.value) for r in hits if key_partition(r.key or b"", [0, 1, 2]) == partition
        ]
    assert sorted(v for records in _read(broker.bootstrap, "cordon.dlq", 5).values() for _, v in records) == [
        b"letter %d" % i for i in range(5)
    ]


@settings(max_examples=200, deadline=None)
@given(key=st.binary(max_size=64), count=st.integers(1, 32))
def test_key_partition_puts_each_key_on_one_partition(key: bytes, count: int) -> None:
    partitions = list(range(100, 100 + count))
    chosen = key_partition(key, partitions)
    assert chosen == partitions[zlib.crc32(key) % count]
    assert key_partition(bytes(key), list(partitions)) == chosen


def test_a_call_bigger_than_a_batch_is_split_and_stays_in_order(broker: EmbeddedBroker) -> None:
    publisher = BatchPublisher(broker.bootstrap, client_id="test", max_batch_bytes=4096).start()
    try:
        records = [OutRecord("cordon.hits", b"one-key", b"%05d" % i + b"x" * 200) for i in range(200)]
        publisher.publish(records).wait(10)  # ~45 KB for one partition: a dozen batches
    finally:
        publisher.close()
    (got,) = _read(broker.bootstrap, "cordon.hits", 200).values()
    assert [value for _, value in got] == [r.value for r in records]


def test_a_record_bigger_than_a_batch_goes_in_a_batch_of_its_own(broker: EmbeddedBroker) -> None:
    publisher = BatchPublisher(broker.bootstrap, client_id="test", max_batch_bytes=4096).start()
    try:
        records = [OutRecord("cordon.hits", b"k", b"small"), OutRecord("cordon.hits", b"k", b"x" * 10_000)]
        publisher.publish(records).wait(10)
    finally:
        publisher.close()
    (got,) = _read(broker.bootstrap, "cordon.hits", 2).values()
    assert [value for _, value in got] == [r.value for r in records]


def test_an_outage_fails_the_delivery_in_time_and_close_is_quick(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log").start()
    publisher = BatchPublisher(broker.bootstrap, client_id="test", timeout_s=1.0).start()
    try:
        publisher.publish([OutRecord("cordon.hits", b"k", b"before")]).wait(10)
        broker.kill()
        delivery = publisher.publish([OutRecord("cordon.hits", b"k", b"during")])
        with pytest.raises(BrokerError):
            delivery.wait(15)
    finally:
        started = time.monotonic()
        publisher.close(timeout_s=0.5)
        assert time.monotonic() - started < 5
        broker.stop()
    with pytest.raises(BrokerError, match="not running"):
        publisher.publish([OutRecord("cordon.hits", b"k", b"after")])


def test_closing_abandons_what_is_pending_and_its_delivery_fails(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log").start()
    publisher = BatchPublisher(broker.bootstrap, client_id="test", timeout_s=30.0).start()
    try:
        broker.kill()
        delivery = publisher.publish([OutRecord("cordon.hits", b"k", b"never acknowledged")])
        publisher.close()
        assert delivery.done()
        assert delivery.error() is not None
    finally:
        publisher.close()
        broker.stop()


def test_no_broker_fails_start_with_the_address() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    with pytest.raises(BrokerError, match=bootstrap):
        BatchPublisher(bootstrap, client_id="test").start()
