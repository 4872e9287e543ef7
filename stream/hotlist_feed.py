"""Kafka adapter for hotlist versions on ``cordon.hotlists``: publish a version, follow the newest one.

Every matcher instance reads the whole (single-partition) topic with its own consumer (no group), assembles
versions from their chunks and swaps to each complete, digest-verified version as it arrives, so all instances
converge on the same version without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from cordon.errors import BrokerError
from cordon.events import EventDecodeError, HotlistChunk, decode, encode
from edge.publisher import close_producer, make_producer
from stream.hotlist import HotlistVersion, VersionAssembler, chunk_version

__all__ = ["HotlistFollower", "open_topic_from_start", "publish_version", "read_latest_version"]

log = logging.getLogger(__name__)


def open_topic_from_start(
    bootstrap: str, topic: str, *, timeout_s: float
) -> tuple[KafkaConsumer, TopicPartition]:
    """A consumer assigned to partition 0 of a one-partition topic, at its beginning (no group)."""
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            request_timeout_ms=int(max(timeout_s, 5.0) * 1000),
        )
    except (KafkaError, OSError) as exc:
        raise BrokerError(f"cannot connect to Kafka at {bootstrap!r}: {exc}") from exc
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    return consumer, partition


def _feed(assembler: VersionAssembler, value: bytes) -> HotlistVersion | None:
    try:
        event = decode(value)
    except EventDecodeError as exc:
        log.error("unreadable message on the hotlists topic; ignored", extra={"error": str(exc)})
        return None
    if not isinstance(event, HotlistChunk):
        log.error("unexpected message type on the hotlists topic; ignored", extra={"type": event.type})
        return None
    return assembler.add(event)


def read_latest_version(
    bootstrap: str, topic: str = "cordon.hotlists", *, timeout_s: float = 30.0
) -> HotlistVersion | None:
    """Read the topic up to its current end and return the newest complete version (None if there is none)."""
    consumer, partition = open_topic_from_start(bootstrap, topic, timeout_s=timeout_s)
    try:
        end = consumer.end_offsets([partition])[partition]
        assembler = VersionAssembler()
        latest: HotlistVersion | None = None
        deadline = time.monotonic() + timeout_s
        while consumer.position(partition) < end:
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"timed out reading {topic} ({consumer.position(partition)}/{end} messages)"
                )
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    version = _feed(assembler, record.value)
                    if version is not None:
                        latest = version
        return latest
    finally:
        consumer.close()


def publish_version(
    bootstrap: str,
    version: HotlistVersion,
    *,
    topic: str = "cordon.hotlists",
    published_by: str = "",
) -> int:
    """Publish every chunk of ``version``, wait for the broker to acknowledge them; return the chunk count."""
    chunks = chunk_version(version, published_by=published_by)
    producer = make_producer(bootstrap, client_id="cordon-hotlist-publisher")
    try:
        futures = [
            producer.send(topic, key=f"chunk-{c.chunk_index}".encode(), value=encode(c)) for c in chunks
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
    except KafkaError as exc:
        raise BrokerError(f"hotlist version {version.version} not published to {topic}: {exc}") from exc
    finally:
        close_producer(producer, timeout_s=5.0)
    log.info("hotlist version published", extra={"version": version.version, "entries": len(version.entries)})
    return len(chunks)


class HotlistFollower:
    """Follows ``cordon.hotlists`` on a background thread and calls ``on_version`` for each new version.

    Parameters
    ----------
    bootstrap
        Kafka bootstrap servers.
    on_version
        Called (on the follower's thread) with every complete version newer than the last one.
    """

    def __init__(
        self, bootstrap: str, on_version: Callable[[HotlistVersion], None], *, topic: str = "cordon.hotlists"
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.on_version = on_version
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hotlist-follower", daemon=True)

    def start(self) -> HotlistFollower:
        """Start following."""
        self._thread.start()
        return self

    def wait_caught_up(self, timeout_s: float) -> bool:
        """Block until everything on the topic at start has been read (and its newest version applied)."""
        return self.caught_up.wait(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except (KafkaError, BrokerError, OSError) as exc:
                log.warning("hotlist follower lost Kafka; retrying", extra={"error": str(exc)})
                self._stop.wait(2.0)

    def _follow(self) -> None:
        consumer, partition = open_topic_from_start(self.bootstrap, self.topic, timeout_s=10.0)
        assembler = VersionAssembler()
        try:
            end = consumer.end_offsets([partition])[partition]
            if end == 0:
                self.caught_up.set()
            while not self._stop.is_set():
                self._apply(assembler, consumer.poll(timeout_ms=500))
                if not self.caught_up.is_set() and consumer.position(partition) >= end:
                    self.caught_up.set()
        finally:
            consumer.close()

    def _apply(self, assembler: VersionAssembler, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        # A function of its own, so that the polled chunks (hundreds of MB of JSON for a national list) and
        # the version made of them are dropped on return, not kept by loop variables until the next message.
        for records in batch.values():
            for record in records:
                version = _feed(assembler, record.value)
                if version is not None:
                    self.on_version(version)

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        self._thread.join(timeout=10)
