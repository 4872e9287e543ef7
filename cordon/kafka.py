"""Kafka topics and small helpers every role shares. Only the Kafka protocol is spoken (kafka-python).

Pointing ``CORDON_KAFKA_BOOTSTRAP`` at Apache Kafka instead of the embedded Tansu broker needs no code change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, TopicAlreadyExistsError

from cordon.errors import BrokerError
from cordon.events import DeadLetter, utc_now

__all__ = [
    "TOPICS",
    "TopicSpec",
    "dead_letter",
    "ensure_topics",
    "wait_for_broker",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic Cordon uses, with its partition count and why."""

    name: str
    partitions: int
    purpose: str
    compact: bool = False


TOPICS: tuple[TopicSpec, ...] = (
    # Reads are keyed by camera id: 6 partitions lets up to 6 matcher instances share the load while each
    # camera's reads stay in capture order on one partition.
    TopicSpec("cordon.reads", 6, "one PlateRead per vehicle pass, keyed by camera id"),
    TopicSpec("cordon.heartbeats", 1, "edge box health, keyed by box id"),
    TopicSpec("cordon.hits", 3, "HotlistHit events for the control room"),
    TopicSpec("cordon.dlq", 1, "messages no consumer could process, with the reason"),
    # One partition: every matcher reads the whole topic and must see the chunks of a version in order.
    TopicSpec("cordon.hotlists", 1, "hotlist versions, published as HotlistChunk messages", compact=True),
    # Compacted and keyed by camera id: the newest record of every camera is the registry.
    TopicSpec("cordon.cameras", 1, "camera registry records (CameraRecord) from the API", compact=True),
)


def _admin(bootstrap: str, timeout_s: float) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="cordon-admin",
            request_timeout_ms=int(timeout_s * 1000),
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at CORDON_KAFKA_BOOTSTRAP={bootstrap!r}: {exc}") from exc


def wait_for_broker(bootstrap: str, *, timeout_s: float = 30.0) -> None:
    """Block until the broker at ``bootstrap`` answers a metadata request.

    Raises
    ------
    BrokerError
        The broker did not answer within ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = _admin(bootstrap, timeout_s=5.0)
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except (BrokerError, KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.2)
    raise BrokerError(f"Kafka at {bootstrap!r} did not answer within {timeout_s:.0f} s: {last}")


def ensure_topics(
    bootstrap: str, topics: Iterable[TopicSpec] = TOPICS, *, timeout_s: float = 10.0
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Idempotent: a topic that already exists is left as it is (its partition count is not changed).
    """
    wanted = list(topics)
    admin = _admin(bootstrap, timeout_s)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if not missing:
            return []
        try:
            admin.create_topics(
                [
                    NewTopic(
                        t.name,
                        num_partitions=t.partitions,
                        replication_factor=1,
                        topic_configs={"cleanup.policy": "compact"} if t.compact else {},
                    )
                    for t in missing
                ],
                timeout_ms=int(timeout_s * 1000),
            )
        except TopicAlreadyExistsError:
            # Another process created them between list and create: that is the state we want.
            pass
        except KafkaError as exc:
            raise BrokerError(
                f"cannot create topics {[t.name for t in missing]} on {bootstrap!r}: {exc}"
            ) from exc
        created = [t.name for t in missing]
        log.info("created topics", extra={"topics": created, "bootstrap": bootstrap})
        return created
    finally:
        admin.close()


def dead_letter(record: ConsumerRecord, reason: str, *, consumer: str) -> DeadLetter:
    """Log a message a consumer cannot process and wrap it, with the reason, for ``cordon.dlq``."""
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
        consumer=consumer,
        parked_at=utc_now(),
    )
