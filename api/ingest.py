"""Persist reads, hits and heartbeats from Kafka into the store, idempotently by event id.

At-least-once: offsets are committed only after the batch is committed to the database, and a redelivered
event is skipped by its id (``read_id``, ``hit_id``, ``heartbeat_id``), so a crash or rebalance loses
nothing and duplicates nothing. Malformed messages are parked on ``cordon.dlq`` with the reason.
"""

from __future__ import annotations

import logging
import threading
import time

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api import queries
from cordon.events import (
    DeadLetter,
    EventDecodeError,
    Heartbeat,
    HotlistHit,
    PlateRead,
    decode,
    encode,
)
from cordon.kafka import dead_letter
from edge.publisher import close_producer, make_producer

__all__ = ["EventIngestor"]

log = logging.getLogger(__name__)

STORED = Counter("cordon_api_events_stored_total", "Events newly stored by the API's ingest", ["kind"])
DEAD_LETTERS = Counter("cordon_api_dead_letters_total", "Messages the API's ingest parked on the DLQ")


class EventIngestor:
    """A consumer-group member that stores the topics' events; run it with :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        bootstrap: str,
        group_id: str,
        topics: tuple[str, ...] = ("cordon.reads", "cordon.hits", "cordon.heartbeats"),
        dlq_topic: str = "cordon.dlq",
        max_poll_interval_ms: int = 30_000,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.sessions = sessions
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = topics
        self.dlq_topic = dlq_topic
        self.max_poll_interval_ms = max_poll_interval_ms
        self.session_timeout_ms = session_timeout_ms
        self.stop_event = threading.Event()
        self.healthy = False
        self.stored = 0
        self.dead_letters = 0
        self._thread: threading.Thread | None = None

    def start(self) -> EventIngestor:
        self._thread = threading.Thread(target=self._run, name="cordon-api-ingest", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        delay = 0.5
        while not self.stop_event.is_set():
            try:
                self._consume()
                delay = 0.5
            except (KafkaError, SQLAlchemyError, OSError):
                self.healthy = False
                log.exception("ingest failed; retrying", extra={"retry_in_s": delay})
                self.stop_event.wait(delay)
                delay = min(delay * 2, 10.0)

    def _consume(self) -> None:
        consumer = KafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id=f"{self.group_id}-ingest",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1000,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(self.session_timeout_ms // 3, 500),
            max_poll_interval_ms=self.max_poll_interval_ms,
            fetch_max_wait_ms=100,
        )
        producer = None
        try:
            self.healthy = True
            while not self.stop_event.is_set():
                batches = consumer.poll(timeout_ms=200)
                records = [r for part in batches.values() for r in part]
                if not records:
                    continue
                reads: list[PlateRead] = []
                hits: list[HotlistHit] = []
                beats: list[Heartbeat] = []
                dead: list[DeadLetter] = []
                for record in records:
                    if record.value is None:
                        dead.append(self._dead_letter(record, "empty message (no value)"))
                        continue
                    try:
                        event = decode(record.value)
                    except EventDecodeError as exc:
                        dead.append(self._dead_letter(record, str(exc)))
                        continue
                    if isinstance(event, PlateRead):
                        reads.append(event)
                    elif isinstance(event, HotlistHit):
                        hits.append(event)
                    elif isinstance(event, Heartbeat):
                        beats.append(event)
                    else:
                        dead.append(self._dead_letter(record, f"unexpected {event.type} on {record.topic}"))
                if dead:
                    producer = producer or make_producer(self.bootstrap, client_id=f"{self.group_id}-dlq")
                    futures = [producer.send(self.dlq_topic, value=encode(d)) for d in dead]
                    producer.flush()
                    for future in futures:
                        future.get(timeout=30)
                with self.sessions.begin() as session:
                    new = queries.store_events(session, reads=reads, hits=hits, heartbeats=beats)
                for kind, count in zip(("read", "hit", "heartbeat"), new, strict=True):
                    STORED.labels(kind).inc(count)
                self.stored += sum(new)
                consumer.commit()
        finally:
            self.healthy = False
            consumer.close(autocommit=False)
            if producer is not None:
                close_producer(producer, timeout_s=5.0)

    def _dead_letter(self, record: ConsumerRecord, reason: str) -> DeadLetter:
        self.dead_letters += 1
        DEAD_LETTERS.inc()
        return dead_letter(record, reason, consumer=f"{self.group_id}-ingest")

    def wait_healthy(self, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.healthy:
                return True
            time.sleep(0.05)
        return False
