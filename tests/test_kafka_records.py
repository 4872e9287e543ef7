"""The compiled record-batch parser gives exactly kafka-python's records, and falls back where it must."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord, Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import calc_crc32c
from kafka.structs import TopicPartition

from cordon.broker import EmbeddedBroker
from cordon.kafka_records import (
    CompiledPartitionRecords,
    compiled_record_parser_active,
    use_compiled_record_parser,
)

_Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]
_Batch = tuple[list[_Record], int, bool]
"""Records (key, value, headers, timestamp), offsets skipped before the batch, log-append time."""

TP = TopicPartition("cordon.reads", 3)
_ATTRIBUTES = 21
_LOG_APPEND_TIME = 0x08
_CONTROL = 0x20

_headers = st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=5)), max_size=2)
_record = st.tuples(
    st.none() | st.binary(max_size=12),  # key
    st.none() | st.binary(max_size=300),  # value
    _headers,
    st.integers(min_value=0, max_value=2**41),  # timestamp
)
_batch = st.tuples(
    st.lists(_record, min_size=1, max_size=20),
    st.integers(min_value=0, max_value=3),  # offsets skipped before the batch (compaction)
    st.booleans(),  # log-append time
)


class _Upper:
    """A value deserializer (kafka-python's interface)."""

    def deserialize(self, _topic: str, _headers: object, data: bytes | None) -> bytes | None:
        return None if data is None else data.upper()


def _set_attribute(buffer: bytearray, bit: int) -> None:
    """Set an attribute bit of a built batch and recompute its CRC (which covers attributes onwards)."""
    (attributes,) = struct.unpack_from(">h", buffer, _ATTRIBUTES)
    struct.pack_into(">h", buffer, _ATTRIBUTES, attributes | bit)
    struct.pack_into(">I", buffer, 17, calc_crc32c(bytes(buffer[_ATTRIBUTES:])))


def _fetch(
    batches: list[_Batch],
    *,
    base: int = 1_000,
    compression: int = 0,
    control: bool = False,
) -> bytes:
    """A fetch response's record bytes: the batches one after another, at increasing offsets."""
    out, offset = [], base
    for records, gap, log_append in batches:
        offset += gap
        builder = DefaultRecordBatchBuilder(
            magic=2,
            compression_type=compression,
            is_transactional=0,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=10**7,
        )
        for delta, (key, value, headers, timestamp) in enumerate(records):
            builder.append(delta, timestamp=timestamp, key=key, value=value, headers=headers)
        buffer = builder.build()
        struct.pack_into(">q", buffer, 0, offset)  # the base offset is outside the CRC
        if log_append:
            _set_attribute(buffer, _LOG_APPEND_TIME)
        if control:
            _set_attribute(buffer, _CONTROL)
        out.append(bytes(buffer))
        offset += len(records)
    return b"".join(out)


def _take(
    kind: Callable[..., Fetcher.PartitionRecords],
    data: bytes,
    fetch_offset: int,
    sizes: list[int | None] | None = None,
    **options: object,
) -> list[tuple[list[ConsumerRecord] | str, int, int, bool]]:
    """Per ``take`` of ``sizes`` (default: one of all): records or error, position, count, undrained."""
    records = kind(fetch_offset, TP, MemoryRecords(data), **options)
    out: list[tuple[list[ConsumerRecord] | str, int, int, bool]] = []
    for size in [None] if sizes is None else sizes:
        if not records:  # drained: kafka-python's fetcher takes no more
            break
        try:
            taken: list[ConsumerRecord] | str = records.take(size)
        except CorruptRecordError as exc:
            taken = type(exc).__name__
        # The count feeds kafka-python's metrics when drained; before that, it is counted as the records go.
        count = records.records_read if not records else -1
        out.append((taken, records.next_fetch_offset, count, bool(records)))
    return out


@settings(max_examples=200, deadline=None)
@given(
    batches=st.lists(_batch, max_size=4),
    skip=st.integers(min_value=0, max_value=25),
    cut=st.integers(min_value=0, max_value=40),
)
def test_compiled_records_are_kafka_pythons(
    batches: list[_Batch],
    skip: int,
    cut: int,
) -> None:
    """Same records, positions and counts, whatever the batches, where the fetch starts, or a cut-off end."""
    data = _fetch(batches)
    data = data[: max(len(data) - cut, 0)]  # a fetch response may end in a partial batch
    before = CompiledPartitionRecords.compiled_batches
    compiled = _take(CompiledPartitionRecords, data, 1_000 + skip)
    assert compiled == _take(Fetcher.PartitionRecords, data, 1_000 + skip)
    complete = len(list(iter(MemoryRecords(data).next_batch, None)))
    assert CompiledPartitionRecords.compiled_batches - before == complete


@settings(max_examples=200, deadline=None)
@given(
    batches=st.lists(_batch, min_size=1, max_size=4),
    skip=st.integers(min_value=0, max_value=25),
    sizes=st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=8),
    corrupt=st.none() | st.integers(min_value=0, max_value=3),
)
def test_takes_of_any_size_are_kafka_pythons(
    batches: list[_Batch], skip: int, sizes: list[int], corrupt: int | None
) -> None:
    """Records, positions and counts agree take by take, also with a corrupt batch among good ones."""
    parts = [_fetch([batch], base=1_000 + 100 * i) for i, batch in enumerate(batches)]
    if corrupt is not None and corrupt < len(parts):
        broken = bytearray(parts[corrupt])
        broken[-1] ^= 0xFF  # inside the last record: the CRC no longer matches
        parts[corrupt] = bytes(broken)
    data = b"".join(parts)
    takes: list[int | None] = [*sizes, None, None]
    compiled = _take(CompiledPartitionRecords, data, 1_000 + skip, takes)
    assert compiled == _take(Fetcher.PartitionRecords, data, 1_000 + skip, takes)


@pytest.mark.parametrize(
    ("what", "make", "options"),
    [
        ("gzip", lambda rows: _fetch([(rows, 0, False)], compression=1), {}),
        ("control batch", lambda rows: _fetch([(rows, 0, False)], control=True), {}),
        ("deserializer", lambda rows: _fetch([(rows, 0, False)]), {"value_deserializer": _Upper()}),
    ],
)
def test_batches_the_compiled_parser_does_not_take_go_to_kafka_python(
    what: str, make: Callable[..., bytes], options: dict[str, object]
) -> None:
    rows = [(b"cam-1", b"value %d" % i, [], 1_700_000_000_000 + i) for i in range(5)]
    data = make(rows)
    before = CompiledPartitionRecords.compiled_batches
    compiled = _take(CompiledPartitionRecords, data, 1_000, **options)
    assert compiled == _take(Fetcher.PartitionRecords, data, 1_000, **options), what
    assert CompiledPartitionRecords.compiled_batches == before, what


def test_a_corrupt_batch_raises_as_kafka_python_does() -> None:
    data = bytearray(_fetch([([(b"k", b"some value", [], 1)] * 3, 0, False)]))
    data[-5] ^= 0xFF  # inside the records: the CRC no longer matches
    for kind in (CompiledPartitionRecords, Fetcher.PartitionRecords):
        with pytest.raises(CorruptRecordError, match="crc"):
            kind(1_000, TP, MemoryRecords(bytes(data))).take()


def test_a_consumer_on_a_real_broker_reads_the_same_records(broker: EmbeddedBroker) -> None:
    topic = f"records-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    try:
        for i in range(500):
            producer.send(
                topic,
                key=None if i % 7 == 0 else b"cam-%d" % (i % 3),
                value=None if i % 11 == 1 and i % 7 else b"read %d" % i,
                headers=[("trace", b"%d" % i)] if i % 5 == 0 else [],
                partition=i % 2,
            )
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)

    def read_all(compiled: bool) -> list[ConsumerRecord]:
        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
        )
        try:
            if compiled:
                assert use_compiled_record_parser(consumer)
            assert compiled_record_parser_active(consumer) == compiled
            consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
            out: list[ConsumerRecord] = []
            for _ in range(100):
                for records in consumer.poll(timeout_ms=200).values():
                    out.extend(records)
                if len(out) >= 500:
                    break
            return sorted(out, key=lambda record: (record.partition, record.offset))
        finally:
            consumer.close()

    before = CompiledPartitionRecords.compiled_batches
    compiled = read_all(True)
    assert CompiledPartitionRecords.compiled_batches > before
    assert len(compiled) == 500
    assert compiled == read_all(False)
