"""Kafka adapter of the matcher: consume reads in a consumer group, publish hits, commit only after.

The consumer-group member runs in a fetcher process of its own (:class:`stream.fetcher.ReadFetcher`): on
another core, while this process matches the previous batch, it polls, screens each batch's plate reads
(:func:`cordon.events.screened_plate_reads`), and holds back the reads that cannot match the hotlist: this
process sends it the index's prefilter (:meth:`stream.matching.HotlistIndex.prefilter`) whenever the index
changes, keeps that index until no batch held back with it can still come, and matches each batch against
the index it was held back with (so a read is never judged by a version it was not filtered for;
:attr:`MatcherService.hotlist_version` is the version new reads are matched against). Here the reads that
came on are matched from their columns first (:meth:`stream.core.ReadMatcher.hit_matches`: look-up and
policy); only those that raise hits are decoded further, by the screen into the fields hits are made of
(:func:`cordon.events.screened_read_fields`, as :func:`cordon.events.decode` gives them), and whatever the
screen could not vouch for is decoded in full; they are then matched as reads
(:meth:`stream.core.ReadMatcher.match_batch`, with the matches already found), into hit records
(:class:`cordon.events.HotlistHitRecord`: the bytes of a :class:`cordon.events.HotlistHit`, without building
one). Their hits and dead letters are handed to the publisher (:class:`cordon.kafka_batches.BatchPublisher`:
one record batch a partition, about a sixth of kafka-python's ``send`` cost a hit) without waiting for them:
the next batch is matched while they are on their way.

Delivery: at-least-once. A batch's offsets are committed only once every hit (and dead letter) produced for
it, and for every earlier batch, has been acknowledged by the broker: sent batches wait in order in a queue,
and after each poll the longest prefix of fully acknowledged batches is committed (asynchronously; the commit
of a later prefix covers one that was lost). Before partitions are given up in a rebalance, and at shutdown,
the hits in flight are waited for (briefly) and everything acknowledged is committed synchronously. If a send
fails, nothing more is committed: the fetcher rewinds to the last committed offsets and the reads are matched
again. If the fetcher process dies, its partitions go back to the group and another fetcher is started. A
crash replays the uncommitted reads too; because a hit's id is derived from the read id and the entry id, a
replay produces the same hit ids, which downstream consumers drop. Malformed messages go to ``cordon.dlq``
with the reason; the matcher never stops on bad input.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import itertools
import logging
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Final, cast

from kafka import OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Gauge, Histogram

from cordon.errors import BrokerError
from cordon.events import (
    DeadLetter,
    EventDecodeError,
    HotlistHitRecord,
    PlateRead,
    ReadFields,
    decode,
    encode,
    screened_read_fields,
    utc_now,
)
from cordon.kafka import dead_letter, ensure_topics, wait_for_broker
from cordon.kafka_batches import BatchPublisher, Delivery, OutRecord
from stream.alerts import AlertDeduper
from stream.camera_feed import CameraRegistryFollower
from stream.core import HitRead, MatchPolicy, ReadColumns, ReadMatcher
from stream.fetcher import (
    FetchedBatch,
    FetcherConfig,
    FetcherGoneError,
    ReadFetcher,
    ReadPrefilter,
    space_young_collections,
)
from stream.hotlist import HotlistVersion
from stream.hotlist_feed import HotlistFollower
from stream.matching import HotlistIndex, Match
from stream.registry import CameraRegistry
from stream.settings import MatcherSettings

__all__ = ["MatcherService", "run"]

log = logging.getLogger(__name__)

READS = Counter("cordon_matcher_reads_total", "Reads checked against the hotlist")
READS_HELD_BACK = Counter(
    "cordon_matcher_reads_held_back_total",
    "Reads the fetcher process's prefilter found unable to match (checked there, not sent on)",
)
READS_SCREENED_HERE = Counter(
    "cordon_matcher_reads_screened_here_total",
    "Reads of batches the fetcher process left unscreened (this process was nearly idle), screened here",
)
HITS = Counter("cordon_matcher_hits_total", "Hits published", ["kind"])
DEAD_LETTERS = Counter("cordon_matcher_dead_letters_total", "Messages parked on the DLQ")
HOTLIST_VERSION = Gauge("cordon_matcher_hotlist_version", "Hotlist version in use")
HOTLIST_ENTRIES = Gauge("cordon_matcher_hotlist_entries", "Entries in the hotlist version in use")
READ_TO_HIT = Histogram(
    "cordon_matcher_read_to_hit_seconds",
    "From read capture to hit acknowledged by Kafka",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)


_MAX_IN_FLIGHT: Final = 8
"""Most polled batches whose hits may be unacknowledged at once; beyond it the loop waits for the oldest."""
_BUSY_POLL_S: Final = 0.005
"""Wait for a batch while batches await acknowledgement, so they are committed soon after their acks."""
_ACK_TIMEOUT_S: Final = 30.0
_SHUTDOWN_FLUSH_S: Final = 5.0
"""Longest wait for hits in flight when the matcher stops (what is not acknowledged then is replayed), s."""
_HAND_OVER_FLUSH_S: Final = 3.0
"""Longest wait for hits in flight when partitions are revoked (heartbeats wait meanwhile), seconds."""


@dataclass(slots=True)
class _SentBatch:
    """A matched batch whose hits and dead letters are with the publisher; committed once all are acked."""

    offsets: dict[TopicPartition, OffsetAndMetadata]
    reads: int
    held_back: int = 0
    screened_here: bool = False
    delivery: Delivery | None = None
    hit_kinds: list[str] = field(default_factory=list)
    captured: list[datetime] = field(default_factory=list)

    def acknowledged(self) -> bool:
        """Whether every record is acknowledged; raises :class:`BrokerError` if one of them failed."""
        delivery = self.delivery
        if delivery is None:
            return True
        if not delivery.done():
            return False
        error = delivery.error()
        if error is not None:
            raise BrokerError(f"hits not acknowledged; reads will be replayed: {error}") from error
        return True


def _freeze_what_lives() -> None:
    """Collect, then move every object alive out of the garbage collector's full walks (``gc.freeze``).

    Young collections are spaced too (:func:`stream.fetcher.space_young_collections`).

    Called once a hotlist version is in use: what exists then (modules, the index, the service) lives until
    the next version at least. Batches of thousands of reads keep many objects alive across young
    collections, so full collections come often; without this each of them walks all the process holds.
    """
    gc.collect()
    gc.freeze()
    space_young_collections()


def _return_free_memory() -> None:
    """Hand memory freed on the heap back to the OS (glibc ``malloc_trim``; nothing elsewhere).

    Loading a version makes a million short-lived entry objects (about 1.4 GB for a national list) that the
    index does not keep; without this, the process keeps that much resident until the next version.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


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
        # Without a registry given or a file named, follow the one the API publishes on cordon.cameras.
        self.camera_follower: CameraRegistryFollower | None = None
        if registry is None and settings.camera_registry is None:
            self.camera_follower = CameraRegistryFollower(
                settings.kafka_bootstrap, self._on_registry, topic=settings.cameras_topic
            )
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
                edit_max_char_confidence=settings.edit_max_char_confidence,
            ),
            deduper=AlertDeduper(window_s=settings.dedupe_window_s),
        )
        self.stop_event = threading.Event()
        self.reads_processed = 0
        self.reads_held_back = 0
        """Of :attr:`reads_processed`, those the fetcher process's prefilter cleared (no hit possible)."""
        self.reads_screened_here = 0
        """Of :attr:`reads_processed`, those in batches the fetcher left unscreened (we had little to do)."""
        self.hits_published = 0
        self.dead_letters = 0
        self.assigned: set[TopicPartition] = set()
        self._version_lock = threading.Lock()
        self._in_flight: deque[_SentBatch] = deque()
        self._consumer_in_use: ReadFetcher | None = None
        self._publisher: BatchPublisher | None = None
        # The indexes whose prefilters the fetcher may have used on batches still to come, by generation.
        self._prefiltered: dict[int, HotlistIndex] = {}
        self._generations = itertools.count(1)
        self.follower = HotlistFollower(
            settings.kafka_bootstrap, self._on_version, topic=settings.hotlists_topic
        )

    def _registry_caught_up(self) -> bool:
        return self.camera_follower is None or self.camera_follower.wait_caught_up(0.0)

    def _stop_followers(self) -> None:
        self.follower.stop()
        if self.camera_follower is not None:
            self.camera_follower.stop()

    def _on_registry(self, registry: CameraRegistry) -> None:
        self.matcher.registry = registry  # one assignment: a read sees the old or the new registry
        log.info(
            "camera registry in use", extra={"cameras": len(registry), "instance": self.settings.instance_id}
        )

    @property
    def hotlist_version(self) -> int:
        """Version of the hotlist that reads consumed from now on are matched against (0: none loaded).

        A new version is loaded first (:attr:`ReadMatcher.index`), then its prefilter goes to the fetcher
        process; until the fetcher has taken it up, batches it polls are still held back with, and matched
        against, the version before.
        """
        fetcher = self._consumer_in_use
        applied = None if fetcher is None else fetcher.prefilter_applied
        index = None if applied is None else self._prefiltered.get(applied)
        return (self.matcher.index if index is None else index).version

    def _on_version(self, version: HotlistVersion) -> None:
        with self._version_lock:
            if version.version <= self.matcher.index.version:
                return
            started = time.monotonic()
            index = HotlistIndex.build(version.entries, version=version.version)
            self.matcher.index = index  # one assignment: readers see the old or the new index, never a mix
        _return_free_memory()
        _freeze_what_lives()
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

    def _publishing(self) -> BatchPublisher:
        """The publisher of hits and dead letters, started on first use (after a Kafka outage: again).

        Raises
        ------
        BrokerError
            Kafka is unavailable.
        """
        if self._publisher is None:
            s = self.settings
            self._publisher = BatchPublisher(s.kafka_bootstrap, client_id=s.instance_id).start()
        return self._publisher

    def _close_publisher(self, *, timeout_s: float = 0.0) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close(timeout_s=timeout_s)

    def _fetcher(self) -> ReadFetcher:
        s = self.settings
        config = FetcherConfig(
            topic=s.reads_topic,
            consumer={
                "bootstrap_servers": s.kafka_bootstrap,
                "group_id": s.group_id,
                "client_id": s.instance_id,
                "enable_auto_commit": False,
                "auto_offset_reset": "earliest",
                "max_poll_records": s.max_poll_records,
                "session_timeout_ms": s.session_timeout_ms,
                "heartbeat_interval_ms": max(s.session_timeout_ms // 3, 500),
                "max_poll_interval_ms": s.max_poll_interval_ms,
                "fetch_max_wait_ms": 100,
            },
            screen=True,
            handover_timeout_s=_HAND_OVER_FLUSH_S + 2.0,
            log_level=s.log_level,
            log_format=s.log_format,
            instance_id=s.instance_id,
        )
        return ReadFetcher(
            config,
            on_revoked=lambda partitions: self._hand_over(partitions, commit=True),
            on_lost=lambda partitions: self._hand_over(partitions, commit=False),
        ).start()

    def _dead_letter(self, record: ConsumerRecord, reason: str) -> DeadLetter:
        self.dead_letters += 1
        DEAD_LETTERS.inc()
        return dead_letter(record, reason, consumer=self.settings.instance_id)

    def process(
        self, record: ConsumerRecord, *, now: datetime | None = None
    ) -> tuple[list[HotlistHitRecord], DeadLetter | None]:
        """Hits for one consumed record, or the dead letter it becomes. Never raises on bad input.

        ``now`` stamps the hits' ``matched_at`` (UTC); the consume loop passes one time per batch.
        """
        event = self._decode(record)
        if isinstance(event, DeadLetter):
            return [], event
        return self._match_one(record, event, now or utc_now())

    def _decode(self, record: ConsumerRecord) -> PlateRead | DeadLetter:
        """The read a record holds, or the dead letter it becomes."""
        if not isinstance(record.value, bytes):
            return self._dead_letter(record, "message has no value")
        try:
            event = decode(record.value)
        except EventDecodeError as exc:
            return self._dead_letter(record, str(exc))
        if not isinstance(event, PlateRead):
            return self._dead_letter(record, f"expected a plate_read on {record.topic}, got {event.type}")
        return event

    def process_batch(
        self, records: Sequence[ConsumerRecord], *, now: datetime | None = None
    ) -> tuple[list[HotlistHitRecord], list[DeadLetter]]:
        """Hits for a batch of consumed records, and the dead letters of those that cannot be matched.

        The same as :meth:`process` on each record in turn, but the reads are matched together. Never raises
        on bad input. ``now`` stamps the hits' ``matched_at`` (UTC).
        """
        return self._process_values([record.value for record in records], records.__getitem__, now=now)

    def _process_values(
        self,
        values: Sequence[bytes | None],
        record_at: Callable[[int], ConsumerRecord],
        *,
        now: datetime | None = None,
        screened: tuple[list[int], ReadColumns] | None = None,
        index: HotlistIndex | None = None,
    ) -> tuple[list[HotlistHitRecord], list[DeadLetter]]:
        """:meth:`process_batch` over the records' values; ``record_at(i)`` gives record ``i`` in full.

        ``screened``: the rows :func:`cordon.events.screened_plate_reads` vouches for, and their columns, if
        the fetcher process screened the batch already (:attr:`stream.fetcher.FetchedBatch.screened`).
        ``index``: the hotlist index to match against (default: the one in use).
        """
        now = now or utc_now()
        reads: list[HitRead] = []
        read_records: list[ConsumerRecord] = []
        dead: list[DeadLetter] = []
        # Most reads raise no hit: a strict screen of the raw bytes (one msgspec call for the batch) and the
        # matcher's look-up and policy on what it decoded find them without building a PlateRead. The reads
        # that raise hits are decoded again, by the screen, into the fields hits are made of, as decode()
        # would give them (cordon.events.screened_read_fields, a third of decode's cost). Whatever the screen
        # cannot vouch for is decoded in full, which is also what names the problem of a malformed message
        # for the DLQ. A read keeps the matches its screened form found if it is the same read to matching
        # (plate, time, confidence); otherwise it is looked up again.
        rows, columns = screened or ReadColumns.screen(values)
        try:
            hit_matches: list[list[Match] | None] = self.matcher.hit_matches(columns, index=index)
        except Exception:  # a bug: look at every read in full rather than stop
            log.exception("screening the batch against the index failed; decoding every read")
            rows, columns, hit_matches = [], ReadColumns.of([]), []
        needed = [True] * len(values)
        column_of: dict[int, int] = {}
        for j, (row, matches) in enumerate(zip(rows, hit_matches, strict=True)):
            needed[row] = matches is not None
            column_of[row] = j
        hitting = [row for row in rows if needed[row]]  # screened: their values are bytes
        fields_of: dict[int, ReadFields | None] = {}
        try:
            fields = screened_read_fields([cast(bytes, values[i]) for i in hitting])
            fields_of = dict(zip(hitting, fields, strict=True))
        except Exception:  # a bug: decode these reads in full rather than stop
            log.exception("decoding the reads that raise hits by the screen failed; decoding them in full")
        known: list[list[Match] | None] = []
        for i, need in enumerate(needed):
            if not need:
                continue  # a valid read that raises no hit
            record = record_at(i)
            event: HitRead | DeadLetter | None = fields_of.get(i)
            if event is None:
                event = self._decode(record)
            if isinstance(event, DeadLetter):
                dead.append(event)
                continue
            reads.append(event)
            read_records.append(record)
            column = column_of.get(i)
            if column is not None and (
                event.plate == columns.plates[column]
                and event.captured_at == columns.captured_at[column]
                and event.confidence == columns.confidences[column]
            ):
                known.append(hit_matches[column])
            else:
                known.append(None)
        try:
            per_read = self.matcher.match_batch(reads, now=now, index=index, found=known)
        except Exception:  # a bug: find the read that causes it, and park only that one (as process() does)
            log.exception("batch matching failed; matching the batch's reads one by one")
            hits: list[HotlistHitRecord] = []
            for record, read in zip(read_records, reads, strict=True):
                found, letter = self._match_one(record, read, now)
                hits.extend(found)
                if letter is not None:
                    dead.append(letter)
            return hits, dead
        return [hit for found in per_read for hit in found], dead

    def _match_one(
        self, record: ConsumerRecord, read: HitRead, now: datetime
    ) -> tuple[list[HotlistHitRecord], DeadLetter | None]:
        try:
            return self.matcher.match(read, now=now), None
        except Exception as exc:  # a bug must not stop the control room's feed: park the read and go on
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            log.exception("matching failed", extra={"read_id": str(read.read_id)})
            return [], self._dead_letter(record, f"matching failed: {detail}")

    def run(self, *, before_consuming: Callable[[], None] | None = None) -> None:
        """Consume until :meth:`stop`.

        ``before_consuming`` is called once the current hotlist is in use, just before joining the consumer
        group (:class:`stream.processes.MatcherProcesses` uses it to make its processes join together).
        """
        s = self.settings
        wait_for_broker(s.kafka_bootstrap, timeout_s=60)
        ensure_topics(s.kafka_bootstrap)
        self.follower.start()
        if self.camera_follower is not None:
            self.camera_follower.start()
        deadline = time.monotonic() + s.hotlist_load_timeout_s
        while not (self.follower.wait_caught_up(0.2) and self._registry_caught_up()):
            if self.stop_event.is_set():  # asked to stop while still loading the hotlist
                self._stop_followers()
                return
            if time.monotonic() > deadline:
                self._stop_followers()
                raise BrokerError(
                    f"could not read the current hotlist from {s.hotlists_topic} (and cameras from "
                    f"{s.cameras_topic}) within "
                    f"{s.hotlist_load_timeout_s:g} s (CORDON_HOTLIST_LOAD_TIMEOUT_S)"
                )
        if before_consuming is not None:
            before_consuming()
        if self.stop_event.is_set():
            self._stop_followers()
            return
        fetcher = self._consumer_in_use = self._fetcher()
        log.info(
            "matcher started",
            extra={"instance": s.instance_id, "hotlist_version": self.hotlist_version, "pid": fetcher.pid},
        )
        try:
            while not self.stop_event.is_set():
                try:
                    self._offer_prefilter(fetcher)
                    batch = fetcher.next_batch(timeout_s=_BUSY_POLL_S if self._in_flight else 0.5)
                except FetcherGoneError as exc:
                    # Its partitions go back to the group; nothing in flight may be committed by a new member.
                    log.error("the fetcher process is gone; starting another", extra={"error": str(exc)})
                    self._in_flight.clear()
                    self.assigned = set()
                    fetcher.close()
                    if self.stop_event.wait(1.0):
                        break
                    fetcher = self._consumer_in_use = self._fetcher()
                    continue
                self.assigned = fetcher.assignment()
                try:
                    if batch is not None:
                        try:
                            self._send_batch(batch)
                        finally:
                            fetcher.done(batch)  # its credit comes back even if it is to be replayed
                    self._settle(wait=len(self._in_flight) > _MAX_IN_FLIGHT)
                except FetcherGoneError:
                    continue  # noticed when next waiting for a batch
                except BrokerError as exc:
                    log.warning("Kafka unavailable; replaying the batch", extra={"error": str(exc)})
                    self._in_flight.clear()  # nothing of them is committed: they are consumed again
                    self._close_publisher()  # the next batch with hits starts another
                    fetcher.rewind()
                    self.stop_event.wait(1.0)
        finally:
            self._stop_followers()
            with contextlib.suppress(FetcherGoneError):
                self._finish_in_flight()
            self._close_publisher(timeout_s=_SHUTDOWN_FLUSH_S)
            fetcher.close()
            self._consumer_in_use = None
            log.info("matcher stopped", extra={"instance": s.instance_id})

    def _offer_prefilter(self, fetcher: ReadFetcher) -> None:
        """Send the fetcher the prefilter of the index in use, if it does not have it yet.

        The index stays here, under the prefilter's generation, for as long as batches held back with it
        may come: they are matched against it, not against a newer one that the reads they left behind
        might match. Indexes of generations before the one the fetcher last took up are dropped.
        """
        applied = fetcher.prefilter_applied
        if applied is not None:
            for generation in [g for g in self._prefiltered if g < applied]:
                del self._prefiltered[generation]
        index = self.matcher.index
        offered = fetcher.prefilter_offered
        if offered is not None and self._prefiltered.get(offered) is index:
            return
        generation = next(self._generations)
        self._prefiltered[generation] = index
        fetcher.set_prefilter(ReadPrefilter(generation, index.prefilter(), self.matcher.policy))

    def _send_batch(self, batch: FetchedBatch) -> None:
        """Match a fetched batch and hand its hits and dead letters to the publisher, without waiting.

        Raises
        ------
        BrokerError
            Kafka is unavailable (the batch is to be replayed).
        """
        s = self.settings
        sent = _SentBatch(
            offsets=dict(batch.next_offsets),
            reads=batch.records,
            held_back=batch.records - len(batch),
            screened_here=batch.screened is None,
        )
        index = None
        if batch.prefilter is not None:
            index = self._prefiltered.get(batch.prefilter)
            if index is None:  # never expected: the reads held back are lost to this index
                log.error("no index for the batch's prefilter", extra={"generation": batch.prefilter})
        hits, dead = self._process_values(
            batch.values, batch.record, now=utc_now(), screened=batch.screened, index=index
        )
        # Hits are keyed by alert: every sighting of an alert on one partition, in order.
        records = [OutRecord(s.hits_topic, str(hit.alert_id).encode(), encode(hit)) for hit in hits]
        records += [OutRecord(s.dlq_topic, letter.key, encode(letter)) for letter in dead]
        sent.hit_kinds = [hit.match_kind for hit in hits]
        sent.captured = [hit.captured_at for hit in hits]
        if records:
            sent.delivery = self._publishing().publish(records)  # sent at once: no linger
        self._in_flight.append(sent)

    def _settle(self, *, wait: bool = False) -> None:
        """Commit the longest prefix of sent batches that are fully acknowledged (asynchronously).

        ``wait``: block until at least the oldest batch is acknowledged first (back-pressure).

        Raises
        ------
        BrokerError
            A send failed: nothing of it or after it may be committed.
        """
        in_flight = self._in_flight
        if wait and in_flight:
            self._await(in_flight[0], timeout_s=_ACK_TIMEOUT_S)
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        while in_flight and in_flight[0].acknowledged():
            done = in_flight.popleft()
            offsets.update(done.offsets)  # later batches' offsets are higher
            self._count(done)
        if offsets and self._consumer_in_use is not None:
            self._consumer_in_use.commit_async(offsets, callback=MatcherService._on_commit)

    @staticmethod
    def _await(sent: _SentBatch, *, timeout_s: float) -> None:
        if sent.delivery is not None:
            sent.delivery.wait(timeout_s)

    def _count(self, done: _SentBatch) -> None:
        """Metrics and counters of an acknowledged batch."""
        now = utc_now()
        for kind, when in zip(done.hit_kinds, done.captured, strict=True):
            HITS.labels(kind).inc()
            READ_TO_HIT.observe(max((now - when).total_seconds(), 0.0))
        READS.inc(done.reads)
        READS_HELD_BACK.inc(done.held_back)
        self.reads_processed += done.reads
        self.reads_held_back += done.held_back
        if done.screened_here:
            READS_SCREENED_HERE.inc(done.reads)
            self.reads_screened_here += done.reads
        self.hits_published += len(done.hit_kinds)

    @staticmethod
    def _on_commit(_offsets: dict[TopicPartition, OffsetAndMetadata], result: object) -> None:
        if isinstance(result, Exception):
            # A later commit covers these offsets; if the group rebalanced, the reads are replayed (same ids).
            log.warning("offset commit failed; reads may be replayed", extra={"error": str(result)})

    def _hand_over(self, partitions: set[TopicPartition], *, commit: bool) -> None:
        """Partitions are being taken away (the fetcher asks, see :class:`stream.fetcher.ReadFetcher`).

        With ``commit``, wait (briefly) for the hits in flight and commit, asynchronously, the prefix of sent
        batches that is acknowledged; then forget the offsets of ``partitions`` in the batches still waiting,
        which their next owner replays from the last commit (same hit ids).
        """
        consumer, publisher, in_flight = self._consumer_in_use, self._publisher, self._in_flight
        if consumer is None or not in_flight:
            return
        if commit:
            offsets: dict[TopicPartition, OffsetAndMetadata] = {}
            try:
                if publisher is not None:
                    publisher.flush(timeout_s=_HAND_OVER_FLUSH_S)
                while in_flight and in_flight[0].acknowledged():
                    done = in_flight.popleft()
                    offsets.update(done.offsets)
                    self._count(done)
            except (BrokerError, KafkaError) as exc:
                log.warning("hits not all acknowledged at a rebalance", extra={"error": str(exc)})
            if offsets:
                consumer.commit_async(offsets, callback=MatcherService._on_commit)
        for sent in in_flight:
            for partition in partitions:
                sent.offsets.pop(partition, None)

    def _finish_in_flight(self) -> None:
        """Wait for every sent batch's hits and commit the batches synchronously (at shutdown).

        On a send failure nothing more is committed, and the uncommitted reads are consumed again later.
        """
        consumer, in_flight = self._consumer_in_use, self._in_flight
        if consumer is None or not in_flight:
            return
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        try:
            while in_flight:
                self._await(in_flight[0], timeout_s=_SHUTDOWN_FLUSH_S)
                done = in_flight.popleft()
                offsets.update(done.offsets)
                self._count(done)
        except (BrokerError, KafkaError) as exc:
            log.warning(
                "hits not acknowledged; uncommitted reads will be replayed", extra={"error": str(exc)}
            )
        finally:
            in_flight.clear()
        if not offsets:
            return
        try:
            consumer.commit(offsets)
        except (CommitFailedError, KafkaError, BrokerError) as exc:
            # The group rebalanced while we worked: another member will replay these reads (same hit ids).
            log.warning("commit failed after a rebalance; reads will be replayed", extra={"error": str(exc)})

    def stop(self) -> None:
        """Ask the consume loop to finish its batch and leave the group."""
        self.stop_event.set()


def run(settings: MatcherSettings) -> None:
    """Run the matcher until SIGINT/SIGTERM: one instance, or ``settings.processes`` of them.

    With ``processes > 1`` this process only starts and watches the matcher processes
    (:class:`stream.processes.MatcherProcesses`); each serves its own metrics on ``metrics_port + i``.
    """
    if settings.processes > 1:
        from stream.processes import MatcherProcesses

        group = MatcherProcesses(settings)

        def _stop_group(signum: int, _frame: FrameType | None) -> None:
            log.info("signal received; stopping the matcher processes", extra={"signal": signum})
            group.stop_requested()

        signal.signal(signal.SIGINT, _stop_group)
        signal.signal(signal.SIGTERM, _stop_group)
        group.run()
        return

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
