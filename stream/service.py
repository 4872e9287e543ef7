"""Kafka adapter of the matcher: consume reads in a consumer group, publish hits, commit only after.

Delivery: at-least-once. Offsets are committed only after every hit (and dead letter) of the polled batch
has been acknowledged by the broker; a crash replays the uncommitted reads, and because a hit's id is derived
from the read id and the entry id, the replay produces the same hit ids, which downstream consumers drop.
Malformed messages go to ``cordon.dlq`` with the reason; the matcher never stops on bad input.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from datetime import datetime
from types import FrameType

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Gauge, Histogram

from cordon.errors import BrokerError
from cordon.events import DeadLetter, EventDecodeError, HotlistHit, PlateRead, decode, encode, utc_now
from cordon.kafka import ensure_topics, wait_for_broker
from edge.publisher import close_producer, make_producer
from stream.alerts import AlertDeduper
from stream.core import MatchPolicy, ReadMatcher
from stream.hotlist import HotlistVersion
from stream.hotlist_feed import HotlistFollower
from stream.matching import HotlistIndex
from stream.registry import CameraRegistry
from stream.settings import MatcherSettings

__all__ = ["MatcherService", "run"]

log = logging.getLogger(__name__)

READS = Counter("cordon_matcher_reads_total", "Reads checked against the hotlist")
HITS = Counter("cordon_matcher_hits_total", "Hits published", ["kind"])
DEAD_LETTERS = Counter("cordon_matcher_dead_letters_total", "Messages parked on the DLQ")
HOTLIST_VERSION = Gauge("cordon_matcher_hotlist_version", "Hotlist version in use")
HOTLIST_ENTRIES = Gauge("cordon_matcher_hotlist_entries", "Entries in the hotlist version in use")
READ_TO_HIT = Histogram(
    "cordon_matcher_read_to_hit_seconds",
    "From read capture to hit acknowledged by Kafka",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)


class _LogRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Logs partition moves, so operators (and tests) can see how the group split the reads."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        log.info(
            "partitions revoked",
            extra={"instance": self.instance_id, "partitions": sorted(p.partition for p in revoked)},
        )

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info(
            "partitions assigned",
            extra={"instance": self.instance_id, "partitions": sorted(p.partition for p in assigned)},
        )


class MatcherService:
    """One matcher instance: a consumer-group member that turns reads into hits.

    Parameters
    ----------
    settings
        The matcher's settings.
    registry
        Camera registry; loaded from ``settings.camera_registry`` when None.
    """

    def __init__(self, settings: MatcherSettings, *, registry: CameraRegistry | None = None) -> None:
        self.settings = settings
        if registry is None:
            registry = (
                CameraRegistry.load(settings.camera_registry)
                if settings.camera_registry
                else CameraRegistry()
            )
        self.matcher = ReadMatcher(
            HotlistIndex.build((), version=0),
            registry,
            policy=MatchPolicy(
                all_cameras_hotlists=frozenset(settings.all_cameras_hotlists),
                max_edits=settings.max_edits,
                low_confidence_threshold=settings.low_confidence_threshold,
                edit_max_read_confidence=settings.edit_max_read_confidence,
            ),
            deduper=AlertDeduper(window_s=settings.dedupe_window_s),
        )
        self.stop_event = threading.Event()
        self.reads_processed = 0
        self.hits_published = 0
        self.dead_letters = 0
        self.assigned: set[TopicPartition] = set()
        self._version_lock = threading.Lock()
        self.follower = HotlistFollower(
            settings.kafka_bootstrap, self._on_version, topic=settings.hotlists_topic
        )

    @property
    def hotlist_version(self) -> int:
        """Version of the hotlist index in use (0: none loaded)."""
        return self.matcher.index.version

    def _on_version(self, version: HotlistVersion) -> None:
        with self._version_lock:
            if version.version <= self.matcher.index.version:
                return
            started = time.monotonic()
            index = HotlistIndex.build(version.entries, version=version.version)
            self.matcher.index = index  # one assignment: readers see the old or the new index, never a mix
        HOTLIST_VERSION.set(version.version)
        HOTLIST_ENTRIES.set(len(version.entries))
        log.info(
            "hotlist version in use",
            extra={
                "version": version.version,
                "entries": len(version.entries),
                "build_s": round(time.monotonic() - started, 3),
                "instance": self.settings.instance_id,
            },
        )

    def _consumer(self) -> KafkaConsumer:
        s = self.settings
        consumer = KafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=s.group_id,
            client_id=s.instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.max_poll_records,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(s.session_timeout_ms // 3, 500),
            max_poll_interval_ms=s.max_poll_interval_ms,
            fetch_max_wait_ms=100,
        )
        consumer.subscribe([s.reads_topic], listener=_LogRebalance(s.instance_id))
        return consumer

    def _dead_letter(self, record: ConsumerRecord, reason: str) -> DeadLetter:
        self.dead_letters += 1
        DEAD_LETTERS.inc()
        log.warning(
            "message parked on the DLQ",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
            },
        )
        return DeadLetter(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=reason[:4000],
            consumer=self.settings.instance_id,
            parked_at=utc_now(),
        )

    def process(
        self, record: ConsumerRecord, *, now: datetime | None = None
    ) -> tuple[list[HotlistHit], DeadLetter | None]:
        """Hits for one consumed record, or the dead letter it becomes. Never raises on bad input.

        ``now`` stamps the hits' ``matched_at`` (UTC); the consume loop passes one time per batch.
        """
        try:
            event = decode(record.value)
        except EventDecodeError as exc:
            return [], self._dead_letter(record, str(exc))
        if not isinstance(event, PlateRead):
            return [], self._dead_letter(record, f"expected a plate_read on {record.topic}, got {event.type}")
        try:
            return self.matcher.match(event, now=now or utc_now()), None
        except Exception as exc:  # a bug must not stop the control room's feed: park the read and go on
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            log.exception("matching failed", extra={"read_id": str(event.read_id)})
            return [], self._dead_letter(record, f"matching failed: {detail}")

    def run(self) -> None:
        """Consume until :meth:`stop`."""
        s = self.settings
        wait_for_broker(s.kafka_bootstrap, timeout_s=60)
        ensure_topics(s.kafka_bootstrap)
        self.follower.start()
        if not self.follower.wait_caught_up(s.hotlist_load_timeout_s):
            raise BrokerError(
                f"could not read the current hotlist from {s.hotlists_topic} within "
                f"{s.hotlist_load_timeout_s:g} s (CORDON_HOTLIST_LOAD_TIMEOUT_S)"
            )
        consumer = self._consumer()
        producer = make_producer(s.kafka_bootstrap, client_id=s.instance_id)
        log.info(
            "matcher started", extra={"instance": s.instance_id, "hotlist_version": self.hotlist_version}
        )
        try:
            while not self.stop_event.is_set():
                batch = consumer.poll(timeout_ms=500)
                self.assigned = set(consumer.assignment())
                if not batch:
                    continue
                try:
                    self._handle_batch(consumer, producer, batch)
                except BrokerError as exc:
                    log.warning("Kafka unavailable; replaying the batch", extra={"error": str(exc)})
                    close_producer(producer)
                    self._rewind(consumer)
                    self.stop_event.wait(1.0)
                    producer = make_producer(s.kafka_bootstrap, client_id=s.instance_id)
        finally:
            self.follower.stop()
            close_producer(producer, timeout_s=5.0)
            consumer.close(autocommit=False)
            log.info("matcher stopped", extra={"instance": s.instance_id})

    def _handle_batch(
        self,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        batch: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        s = self.settings
        batch_time = utc_now()
        pending = []
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        hit_kinds: list[str] = []
        captured = []
        for partition, records in batch.items():
            for record in records:
                hits, dead = self.process(record, now=batch_time)
                for hit in hits:
                    pending.append(
                        producer.send(s.hits_topic, key=str(hit.alert_id).encode(), value=encode(hit))
                    )
                    hit_kinds.append(hit.match_kind)
                    captured.append(hit.captured_at)
                if dead is not None:
                    pending.append(producer.send(s.dlq_topic, key=record.key, value=encode(dead)))
                offsets[partition] = OffsetAndMetadata(record.offset + 1, "", -1)
        try:
            producer.flush()
            for future in pending:
                future.get(timeout=30)
        except KafkaError as exc:
            # Nothing is committed: the whole batch is consumed again after the rebalance/restart.
            raise BrokerError(f"hits not acknowledged; batch will be replayed: {exc}") from exc
        now = utc_now()
        for kind, when in zip(hit_kinds, captured, strict=True):
            HITS.labels(kind).inc()
            READ_TO_HIT.observe(max((now - when).total_seconds(), 0.0))
        processed = sum(len(r) for r in batch.values())
        READS.inc(processed)
        try:
            consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group rebalanced while we worked: another member will replay these reads (same hit ids).
            log.warning("commit failed after a rebalance; reads will be replayed", extra={"error": str(exc)})
            return
        self.reads_processed += processed
        self.hits_published += len(hit_kinds)

    @staticmethod
    def _rewind(consumer: KafkaConsumer) -> None:
        """Go back to the last committed offset of every assigned partition, so nothing is skipped."""
        for partition in consumer.assignment():
            committed = consumer.committed(partition)
            if committed is None:
                consumer.seek_to_beginning(partition)
            else:
                consumer.seek(partition, committed)

    def stop(self) -> None:
        """Ask the consume loop to finish its batch and leave the group."""
        self.stop_event.set()


def run(settings: MatcherSettings) -> None:
    """Run a matcher instance until SIGINT/SIGTERM."""
    from prometheus_client import start_http_server

    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0")
    service = MatcherService(settings)

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received; stopping", extra={"signal": signum})
        service.stop()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    service.run()
