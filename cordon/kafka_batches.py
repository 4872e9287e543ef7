"""Publishing many records at once, as one record batch a partition, with aiokafka's batch API.

kafka-python's ``KafkaProducer.send`` costs 25-35 us of CPU a record on this project's machine: a Python
accumulator, a future a record and a sender thread that completes each one. A matcher raising hundreds of
hits a poll spends a third of its CPU there. aiokafka (aio-libs) builds record batches with a compiled
builder and acknowledges a batch at a time: about 5 us a record, in all. :class:`BatchPublisher` runs an
``AIOKafkaProducer`` on an event loop of its own, in a daemon thread, so that synchronous code can hand it a
list of records and carry on; :class:`Delivery` says when the broker has acknowledged them all.

Guarantees, for what is published through one publisher:

- **order:** records of a key go to one partition (:func:`key_partition`), in the order given, and one
  call's batches are queued before the next call's;
- **at least once:** ``acks="all"``; aiokafka retries a failed batch before the partition's next one, so a
  retry may write a batch twice, never out of order. Cordon's events carry deterministic ids for that. The
  idempotent producer is not used: the embedded broker (Tansu) rejects aiokafka's ``InitProducerId`` request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import zlib
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError as AioKafkaError

from cordon.errors import BrokerError

__all__ = ["BatchPublisher", "Delivery", "OutRecord", "key_partition"]

log = logging.getLogger(__name__)

_START_TIMEOUT_S: Final = 10.0
_MAX_BATCH_BYTES: Final = 1 << 20


class OutRecord(NamedTuple):
    """A record to publish: its topic, key (None: placed by its value, :func:`key_partition`) and value."""

    topic: str
    key: bytes | None
    value: bytes


def key_partition(key: bytes, partitions: Sequence[int]) -> int:
    """The partition of a record with ``key``: ``partitions[CRC-32(key) mod len(partitions)]`` (sorted ones).

    Kafka's Java clients hash keys with murmur2, which kafka-python computes in Python (about 5 us a key).
    Any stable hash keeps what keys are for here, every record of one key on one partition and in order; no
    Cordon consumer depends on Java's choice of partition. (A record without a key is placed by its value.)
    """
    return partitions[zlib.crc32(key) % len(partitions)]


class _ClosedError(BrokerError):
    """What records still pending when a publisher closes fail with."""


class Delivery:
    """The acknowledgement of one :meth:`BatchPublisher.publish`: done once every record is acknowledged."""

    __slots__ = ("_future", "records")

    def __init__(self, future: concurrent.futures.Future[None], records: int) -> None:
        self._future = future
        self.records = records

    def done(self) -> bool:
        """Whether the broker acknowledged every record, or one of the batches failed."""
        return self._future.done()

    def error(self) -> BrokerError | None:
        """What failed, once :meth:`done`; None if every record was acknowledged (or it is not done yet)."""
        if not self._future.done():
            return None
        exc = self._future.exception()
        if exc is None:
            return None
        return exc if isinstance(exc, BrokerError) else BrokerError(f"records not acknowledged: {exc!r}")

    def wait(self, timeout_s: float) -> None:
        """Wait until :meth:`done`.

        Raises
        ------
        BrokerError
            A batch failed, or it was not acknowledged within ``timeout_s``.
        """
        concurrent.futures.wait([self._future], timeout=timeout_s)
        if not self._future.done():
            raise BrokerError(f"{self.records} records not acknowledged within {timeout_s:g} s")
        error = self.error()
        if error is not None:
            raise error


class BatchPublisher:
    """Publishes lists of records as record batches (aiokafka) from synchronous code.

    Parameters
    ----------
    bootstrap
        ``host:port`` of the brokers.
    client_id
        The client's name to the broker.
    timeout_s
        How long a batch may wait for its acknowledgement, retries included, before it fails.
    max_batch_bytes
        The most bytes of one record batch (a call's records for a partition go in as many as needed).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        timeout_s: float = 5.0,
        max_batch_bytes: int = _MAX_BATCH_BYTES,
    ) -> None:
        self.bootstrap = bootstrap
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._on_loop_error)
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"publisher-{client_id}", daemon=True
        )
        self._producer: AIOKafkaProducer | None = None
        self._queued: asyncio.Lock | None = None
        self._pending: set[concurrent.futures.Future[None]] = set()  # guarded by _pending_lock
        self._pending_lock = threading.Lock()
        self._closed = False
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "acks": "all",
            "linger_ms": 0,  # a call hands over whole batches: send them at once
            "max_batch_size": max_batch_bytes,
            "max_request_size": max_batch_bytes + 64 * 1024,
            "request_timeout_ms": int(timeout_s * 1000),
            "retry_backoff_ms": 100,
            "metadata_max_age_ms": 5000,
        }

    def start(self) -> BatchPublisher:
        """Connect to the brokers; returns ``self``.

        Raises
        ------
        BrokerError
            No broker answered within 10 s (the publisher is closed again).
        """
        self._thread.start()
        try:
            self._run(self._start(), timeout_s=_START_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        return self

    async def _start(self) -> None:
        self._queued = asyncio.Lock()
        producer = AIOKafkaProducer(**self._config)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    def publish(self, records: Sequence[OutRecord]) -> Delivery:
        """Queue ``records`` to be sent, in order, and return at once (see :class:`Delivery`).

        Raises
        ------
        BrokerError
            The publisher is closed.
        """
        if self._closed or self._producer is None:
            raise BrokerError("the publisher is not running")
        future = asyncio.run_coroutine_threadsafe(self._deliver(list(records)), self._loop)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._settled)
        return Delivery(future, len(records))

    def _settled(self, future: concurrent.futures.Future[None]) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    async def _deliver(self, records: list[OutRecord]) -> None:
        producer, queued = self._producer, self._queued
        if producer is None or queued is None:
            raise BrokerError("the publisher is not running")
        try:
            async with queued:  # one call's batches are queued before the next call's (per-partition order)
                deliveries = await self._queue_batches(producer, records)
            outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
        except AioKafkaError as exc:
            raise BrokerError(f"records not acknowledged: {exc!r}") from exc
        failed = next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None)
        if isinstance(failed, BrokerError):
            raise failed
        if failed is not None:
            raise BrokerError(f"records not acknowledged: {failed!r}") from failed

    async def _queue_batches(self, producer: AIOKafkaProducer, records: list[OutRecord]) -> list[Any]:
        """Put each record in its partition's batch and queue the batches; their delivery futures."""
        partitions_of: dict[str, list[int]] = {}
        batches: dict[tuple[str, int], Any] = {}
        deliveries: list[Any] = []
        for topic, key, value in records:
            partitions = partitions_of.get(topic)
            if partitions is None:
                partitions = partitions_of[topic] = sorted(await producer.partitions_for(topic))
            partition = key_partition(value if key is None else key, partitions)
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[topic, partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[topic, partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any one record
        for (topic, partition), batch in batches.items():
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        return deliveries

    def flush(self, timeout_s: float) -> None:
        """Wait at most ``timeout_s`` for everything published so far to be acknowledged (or to fail)."""
        with self._pending_lock:
            pending = list(self._pending)
        concurrent.futures.wait(pending, timeout=timeout_s)

    def close(self, timeout_s: float = 0.0) -> None:
        """Wait at most ``timeout_s`` for what is pending, abandon the rest, and stop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self._thread.is_alive():
            self._loop.close()
            return
        if timeout_s > 0:
            self.flush(timeout_s)
        with contextlib.suppress(Exception):
            self._run(self._stop(), timeout_s=10.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10.0)
        if not self._thread.is_alive():
            self._loop.close()

    async def _stop(self) -> None:
        producer, self._producer = self._producer, None
        try:
            if producer is not None:
                # What is still pending fails now rather than after its timeout (the caller replays it).
                producer._message_accumulator.fail_all(_ClosedError("the publisher was closed"))
                await producer.stop()
        finally:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Batches abandoned by :meth:`close` are expected; anything else goes to asyncio's own handler."""
        if isinstance(context.get("exception"), _ClosedError):
            log.debug("abandoned at close: %s", context.get("message"))
            return
        loop.default_exception_handler(context)

    def _run(self, coroutine: Any, *, timeout_s: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise BrokerError(f"Kafka at {self.bootstrap!r} did not answer within {timeout_s:g} s") from exc
        except (AioKafkaError, OSError) as exc:
            raise BrokerError(f"cannot publish to Kafka at {self.bootstrap!r}: {exc!r}") from exc
