"""Compiled parsing of fetched record batches for a kafka-python consumer.

kafka-python parses every record of a fetch response in Python: about 4.6 us a record on this project's
machine, as much as all of the matcher's own work on a read. aiokafka (aio-libs) ships a compiled (Cython)
parser of the same record-batch format (Kafka message format v2). :func:`use_compiled_record_parser` makes a
:class:`kafka.KafkaConsumer` read plain record batches with it (about 0.6 us a record with the records built);
everything else stays kafka-python's: the fetching, the group membership, the positions and the commits, and
the checks of each batch (CRC, control and aborted batches).

Only plain batches take the compiled path: message format v2, uncompressed, not a control batch, and not
transactional under ``read_committed``. A fetch holding anything else, or a consumer with deserializers, is
parsed by kafka-python's own code, as before. The records are kafka-python's own
:class:`~kafka.consumer.fetcher.ConsumerRecord` s, field for field the same as kafka-python makes them
(checked in the tests on random batches).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Final

from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatch as CompiledRecordBatch
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord, Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.memory_records import MemoryRecords
from kafka.structs import TopicPartition

__all__ = ["CompiledPartitionRecords", "compiled_record_parser_active", "use_compiled_record_parser"]

log = logging.getLogger(__name__)

_PLAIN_MAGIC: Final = 2
_READ_COMMITTED: Final = 1
_new_tuple: Final = tuple.__new__


def _plain_batches(records: MemoryRecords, isolation_level: int) -> list[DefaultRecordBatch] | None:
    """The batches of a fetch, if every one of them is plain (see the module docstring); else None."""
    if not isinstance(getattr(records, "_buffer", None), bytes | bytearray | memoryview):
        return None
    walk = MemoryRecords(records._buffer)  # its own walk: ``records`` is left unread for the fallback
    batches: list[DefaultRecordBatch] = []
    while (batch := walk.next_batch()) is not None:
        if (
            batch.magic != _PLAIN_MAGIC
            or batch.compression_type != DefaultRecordBatch.CODEC_NONE
            or batch.is_control_batch
            or (isolation_level == _READ_COMMITTED and batch.has_producer_id())
            or not isinstance(getattr(batch, "_buffer", None), bytearray)
        ):
            return None
        batches.append(batch)
    return batches


class CompiledPartitionRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """kafka-python's records of one fetched partition, parsed by aiokafka's compiled parser where plain."""

    compiled_batches = 0
    """Batches parsed by the compiled parser, in this process (for tests and metrics)."""

    def _unpack_records(
        self, tp: TopicPartition, records: MemoryRecords, key_deserializer: Any, value_deserializer: Any
    ) -> Iterator[ConsumerRecord]:
        batches = None
        if key_deserializer is None and value_deserializer is None:
            batches = _plain_batches(records, self.isolation_level)
        if batches is None:
            yield from super()._unpack_records(tp, records, key_deserializer, value_deserializer)
            return
        topic, partition = tp.topic, tp.partition
        for batch in batches:
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(
                    f"Record batch for partition {tp} at offset {batch.base_offset} failed crc check"
                )
            self.leader_epoch = epoch = batch.leader_epoch
            try:
                parsed = list(CompiledRecordBatch(batch._buffer))
            except CorruptRecordException as exc:
                raise CorruptRecordError(f"Found invalid record structure: {exc!r}") from exc
            CompiledPartitionRecords.compiled_batches += 1
            self.records_read += len(parsed)
            self.bytes_read += len(batch._buffer)
            for record in parsed:
                key, value, headers = record.key, record.value, record.headers
                offset = record.offset
                self.next_fetch_offset = offset + 1
                yield _new_tuple(  # ConsumerRecord(...) without its Python __new__: a tenth less per record
                    ConsumerRecord,
                    (
                        topic,
                        partition,
                        epoch,
                        offset,
                        record.timestamp,
                        record.timestamp_type,
                        key,
                        value,
                        headers,
                        None,
                        -1 if key is None else len(key),
                        -1 if value is None else len(value),
                        sum(len(k.encode("utf-8")) + (len(v) if v is not None else 0) for k, v in headers)
                        if headers
                        else -1,
                    ),
                )
        if batches:
            # As kafka-python: past the last batch, even if compaction removed its last records.
            self.next_fetch_offset = batches[-1].next_offset
        self.drain()


def compiled_record_parser_active(consumer: KafkaConsumer) -> bool:
    """Whether ``consumer`` parses plain record batches with the compiled parser."""
    fetcher = getattr(consumer, "_fetcher", None)
    return getattr(fetcher, "PartitionRecords", None) is CompiledPartitionRecords


def use_compiled_record_parser(consumer: KafkaConsumer) -> bool:
    """Make ``consumer`` parse plain record batches with aiokafka's compiled parser; True if it does.

    Call it before the first poll. It fits kafka-python 3.0 (its fetcher makes each partition's records
    with ``self.PartitionRecords``); if the consumer is not shaped so, it is left as it is (and False
    returned: the records are the same, only slower to parse).
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if getattr(fetcher, "PartitionRecords", None) is not Fetcher.PartitionRecords:
        log.warning("kafka-python's fetcher is not as expected; records are parsed by kafka-python")
        return False
    fetcher.PartitionRecords = CompiledPartitionRecords  # type: ignore[union-attr]
    return True
