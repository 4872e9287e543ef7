"""Kafka adapter of the edge worker: drains the spool to the broker in order, deleting only what was acked."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner import DefaultPartitioner
from kafka.partitioner.abc import Partitioner

from cordon.errors import BrokerError
from cordon.kafka import ensure_topics
from edge import metrics
from edge.spool import Spool, SpoolEntry

__all__ = ["SpoolPublisher", "close_producer", "make_producer"]

log = logging.getLogger(__name__)


def make_producer(
    bootstrap: str,
    *,
    client_id: str,
    timeout_s: float = 5.0,
    partitioner: Partitioner | None = None,
    batch_size: int = 16_384,
) -> KafkaProducer:
    """A producer that waits for every in-sync replica and keeps each partition in send order.

    ``max_in_flight_requests_per_connection=1`` with idempotence keeps per-camera order even across retries.
    Timeouts are short so an outage is noticed in seconds; the spool, not the producer, holds data meanwhile.
    ``partitioner`` replaces kafka-python's default (murmur2 of the key); ``batch_size`` is the most bytes
    a partition's batch takes (kafka-python's default; a busy producer of small records wants more).
    """
    try:
        return KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            max_in_flight_requests_per_connection=1,
            request_timeout_ms=int(timeout_s * 1000),
            delivery_timeout_ms=int(timeout_s * 3000),
            max_block_ms=int(timeout_s * 1000),
            reconnect_backoff_max_ms=1000,
            metadata_max_age_ms=5000,
            linger_ms=5,
            batch_size=batch_size,
            partitioner=partitioner or DefaultPartitioner(),
        )
    except (KafkaError, OSError) as exc:
        raise BrokerError(f"cannot connect a producer to Kafka at {bootstrap!r}: {exc}") from exc


def close_producer(producer: KafkaProducer, *, timeout_s: float = 0.0) -> None:
    """Close a producer, abandoning unsent records after ``timeout_s``; a broker that is down is no error."""
    try:
        producer.close(timeout=timeout_s)
    except KafkaError:
        # kafka-python's close() flushes first and raises while records are still pending (broker down)
        # before it force-closes its sender thread. Finish the close so neither the thread nor its sockets
        # leak, and so the producer's __del__ does not try (and fail) again.
        sender = getattr(producer, "_sender", None)
        if sender is not None and sender.is_alive():
            sender.force_close()
        producer._closed = True
        log.debug("producer force-closed with records pending", exc_info=True)


class SpoolPublisher:
    """Publishes spooled messages to Kafka, oldest first, and removes each once the broker acknowledged it.

    On any failure the producer is discarded (pending sends are abandoned, never reordered), the topics are
    re-created if the broker lost them, and publishing resumes from the oldest unacknowledged message after a
    capped exponential backoff. Delivery is at-least-once: a message whose ack was lost may be sent again
    with the same event id, which consumers use to drop the repeat.

    Parameters
    ----------
    spool
        The durable queue to drain.
    bootstrap
        Kafka bootstrap servers.
    client_id
        Kafka client id (the edge box id).
    batch_size
        Messages sent per flush.
    backoff_initial_s, backoff_max_s
        Retry delay after a failure, doubling up to the cap, seconds.
    """

    def __init__(
        self,
        spool: Spool,
        *,
        bootstrap: str,
        client_id: str,
        batch_size: int = 500,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 5.0,
        producer_factory: Callable[[], KafkaProducer] | None = None,
    ) -> None:
        self.spool = spool
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.batch_size = batch_size
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._factory = producer_factory or (lambda: make_producer(bootstrap, client_id=client_id))
        self._producer: KafkaProducer | None = None
        self._wakeup = threading.Event()
        self._backoff = backoff_initial_s
        self.connected = False

    def notify(self) -> None:
        """Wake the publisher: something was appended to the spool."""
        self._wakeup.set()

    def publish_batch(self) -> int:
        """Send the oldest batch of spooled messages; return how many were acknowledged and removed.

        Raises
        ------
        BrokerError
            Nothing could be delivered (the broker is unreachable or refused the batch).
        """
        entries = self.spool.peek(self.batch_size)
        if not entries:
            return 0
        producer = self._ensure_producer()
        futures = []
        failure: Exception | None = None
        for entry in entries:
            try:
                futures.append(producer.send(entry.topic, key=entry.key, value=entry.payload))
            except KafkaError as exc:  # metadata unavailable: the broker is down or lost the topic
                failure = exc
                break
        try:
            producer.flush()
        except KafkaError as exc:
            failure = failure or exc
        acked = self._acknowledged_prefix(entries, futures)
        self.spool.ack(acked)
        metrics.PUBLISHED.inc(len(acked))
        metrics.SPOOL_DEPTH.set(self.spool.depth)
        if len(acked) < len(entries):
            self._discard_producer()
            raise BrokerError(
                f"published {len(acked)} of {len(entries)} spooled messages to {self.bootstrap}: "
                f"{failure or 'no acknowledgement'}"
            )
        return len(acked)

    @staticmethod
    def _acknowledged_prefix(entries: list[SpoolEntry], futures: list[object]) -> list[int]:
        """Seqs of the leading entries whose sends succeeded; stop at the first failure to keep order."""
        acked: list[int] = []
        for entry, future in zip(entries, futures, strict=False):
            if not future.succeeded():  # type: ignore[attr-defined]
                break
            acked.append(entry.seq)
        return acked

    def _ensure_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self._factory()
            # A freshly started broker (Tansu keeps data in memory) has no topics: create the missing ones.
            ensure_topics(self.bootstrap)
        return self._producer

    def _discard_producer(self) -> None:
        if self._producer is not None:
            close_producer(self._producer)
            self._producer = None

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set, then make a last attempt to drain what is spooled."""
        while not stop.is_set():
            try:
                sent = self.publish_batch()
            except BrokerError as exc:
                self._on_failure(exc, stop)
                continue
            self._on_success()
            if sent == 0:
                self._wakeup.wait(0.5)
                self._wakeup.clear()
        try:
            while self.publish_batch():
                pass
        except BrokerError as exc:
            log.warning(
                "stopping with reads still spooled", extra={"depth": self.spool.depth, "error": str(exc)}
            )
        self._discard_producer()

    def _on_success(self) -> None:
        if not self.connected:
            log.info(
                "publishing to Kafka", extra={"bootstrap": self.bootstrap, "spool_depth": self.spool.depth}
            )
        self.connected = True
        metrics.BROKER_UP.set(1)
        self._backoff = self.backoff_initial_s

    def _on_failure(self, exc: Exception, stop: threading.Event) -> None:
        if self.connected:
            log.warning(
                "Kafka unavailable; spooling reads", extra={"error": str(exc), "depth": self.spool.depth}
            )
        self.connected = False
        metrics.BROKER_UP.set(0)
        metrics.PUBLISH_ERRORS.inc()
        self._discard_producer()
        stop.wait(self._backoff)
        self._backoff = min(self._backoff * 2, self.backoff_max_s)
