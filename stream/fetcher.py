"""The matcher's Kafka consumer in a process of its own: it polls reads while the matcher matches them.

kafka-python parses every record in Python on the thread that polls, and one Python process runs Python on
one core at a time. :class:`ReadFetcher` runs the consumer-group member in a child process (``spawn``) that
polls the next batches while the matcher process matches the last one, on another core. The child does the
per-read work that needs no hotlist entries:

- it parses record batches with a compiled parser (:mod:`cordon.kafka_records`), not kafka-python's Python;
- it screens every read (:func:`cordon.events.screened_plate_reads`: one msgspec call a batch), except in
  a batch polled while the matcher has little else to do (it holds at most
  :attr:`FetcherConfig.share_while_held` batches), which the matcher screens itself
  (:attr:`FetcherConfig.share_screening`);
- with a :class:`ReadPrefilter` from the matcher (the index's hash directory and fingerprints, sent again
  with each hotlist version), it holds back the reads that share no fingerprint with any entry: they cannot
  match, so they raise no hit (about 86 % of reads against a 1M-entry list). Only the others, and whatever
  the screen cannot vouch for (the matcher decodes those, and parks the malformed ones), go on. Each batch
  names the prefilter it was held back with, and the matcher matches it against that same index.

The child is only the group member and the keeper of offsets; every decision stays with the matcher:

- batches (:class:`FetchedBatch`: the records as columns, and the offsets that would commit them) are sent at
  most ``batches_ahead`` at a time; the matcher returns a credit for each (:meth:`ReadFetcher.done`);
- offsets are committed only when the matcher asks (:meth:`ReadFetcher.commit_async`,
  :meth:`ReadFetcher.commit`), and only for partitions the member still holds;
- before partitions are given up in a rebalance, the child asks the matcher what may be committed (the
  ``on_revoked`` callback, run in the matcher's thread when it next waits for a batch) and commits that; it
  waits for the answer at most ``handover_timeout_s``;
- :meth:`ReadFetcher.rewind` takes the member back to the last committed offsets; batches polled before it
  carry an older epoch and are dropped.

The child dies with the process that started it (``PR_SET_PDEATHSIG``) and stops when the pipe closes, so a
crashed matcher leaves no member behind holding partitions.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import itertools
import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any, Final

from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from cordon.errors import BrokerError
from cordon.kafka_records import use_compiled_record_parser
from cordon.logs import LogFormat, configure_logging
from stream.core import MatchPolicy, ReadColumns, ReadView, screened_reads
from stream.matching import HotlistPrefilter

__all__ = [
    "YOUNG_COLLECTION_THRESHOLD",
    "FetchedBatch",
    "FetcherConfig",
    "FetcherGoneError",
    "ReadFetcher",
    "ReadPrefilter",
    "space_young_collections",
]

log = logging.getLogger(__name__)

Offsets = dict[TopicPartition, OffsetAndMetadata]

_PR_SET_PDEATHSIG: Final = 1
_START_TIMEOUT_S: Final = 60.0
_STOP_TIMEOUT_S: Final = 15.0


class FetcherGoneError(BrokerError):
    """The fetcher process died or closed the pipe: its partitions go to other members (or to a new one)."""


@dataclass(frozen=True, slots=True)
class ReadPrefilter:
    """What the fetcher process needs to hold back reads that cannot raise a hit (one per hotlist version).

    Attributes
    ----------
    generation
        Number the matcher gave it (increasing); batches it was used on carry it
        (:attr:`FetchedBatch.prefilter`), so that the matcher matches them against that same index.
    hotlist
        The index's prefilter (:meth:`stream.matching.HotlistIndex.prefilter`).
    policy
        The matcher's policy: which reads are looked up with one edit (:meth:`MatchPolicy.max_edits_for`).
    """

    generation: int
    hotlist: HotlistPrefilter
    policy: MatchPolicy

    def could_match(self, reads: Sequence[ReadView]) -> list[bool]:
        """Whether each read could match an entry (False: it raises no hit against that index)."""
        max_edits = self.policy.max_edits_for_each([read.confidence for read in reads])
        return self.hotlist.could_match([read.plate for read in reads], max_edits=max_edits)


@dataclass(frozen=True, slots=True)
class FetchedBatch:
    """One poll's records (those the matcher needs), as columns (cheap to send), and what commits them.

    Attributes
    ----------
    seq
        Number of the batch, from 0, in the order the child sent them.
    epoch
        Rewinds the child had made when it polled the batch (see :meth:`ReadFetcher.rewind`).
    records
        Records polled; with a prefilter, only some of them are carried (``len()`` of the batch).
    next_offsets
        Per partition, the offset after the batch's last record: what to commit once it is done.
    assignment
        Partitions the member held when it sent the batch.
    screened
        With :attr:`FetcherConfig.screen`: the rows that :func:`cordon.events.screened_plate_reads` vouches
        for, and what matching needs of them; the other rows must be decoded in full.
    prefilter
        The :attr:`ReadPrefilter.generation` used: then the batch carries only the records the screen could
        not vouch for and the reads that could match that prefilter's index; the others raise no hit there.
        None: every record is carried.
    """

    seq: int
    epoch: int
    topic: str
    records: int
    partitions: list[int]
    offsets: list[int]
    timestamps: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]
    next_offsets: Offsets
    assignment: frozenset[TopicPartition]
    screened: tuple[list[int], ReadColumns] | None = None
    prefilter: int | None = None

    @classmethod
    def of(
        cls,
        polled: Mapping[TopicPartition, list[ConsumerRecord]],
        *,
        seq: int,
        epoch: int,
        assignment: frozenset[TopicPartition],
        screen: bool = False,
        prefilter: ReadPrefilter | None = None,
    ) -> FetchedBatch:
        """The batch of what ``KafkaConsumer.poll`` returned (records of one topic).

        ``screen``: screen it; and with a ``prefilter``, carry only what the matcher needs (see
        :attr:`prefilter`).
        """
        records = [record for partition_records in polled.values() for record in partition_records]
        polled_count = len(records)
        screened = None
        generation = None
        if screen:
            rows, reads = screened_reads([record.value for record in records])
            if prefilter is not None:
                possible = prefilter.could_match(reads)
                needed = [True] * len(records)  # what the screen cannot vouch for is decoded by the matcher
                for row, maybe in zip(rows, possible, strict=True):
                    needed[row] = maybe
                carried = [i for i, need in enumerate(needed) if need]
                position = {row: i for i, row in enumerate(carried)}
                kept = [j for j, maybe in enumerate(possible) if maybe]
                rows, reads = [position[rows[j]] for j in kept], [reads[j] for j in kept]
                records = [records[i] for i in carried]
                generation = prefilter.generation
            screened = rows, ReadColumns.of(reads)  # columns of the carried reads only
        return cls(
            seq=seq,
            epoch=epoch,
            topic=next(iter(polled)).topic if polled else "",
            records=polled_count,
            partitions=[record.partition for record in records],
            offsets=[record.offset for record in records],
            timestamps=[record.timestamp for record in records],
            keys=[record.key for record in records],
            values=[record.value for record in records],
            next_offsets={
                partition: OffsetAndMetadata(partition_records[-1].offset + 1, "", -1)
                for partition, partition_records in polled.items()
                if partition_records
            },
            assignment=assignment,
            screened=screened,
            prefilter=generation,
        )

    def __len__(self) -> int:
        return len(self.values)

    def record(self, i: int) -> ConsumerRecord:
        """Record ``i`` of the batch, as kafka-python gives it (without headers)."""
        key, value = self.keys[i], self.values[i]
        return ConsumerRecord(
            self.topic,
            self.partitions[i],
            -1,
            self.offsets[i],
            self.timestamps[i],
            0,
            key,
            value,
            [],
            None,
            -1 if key is None else len(key),
            -1 if value is None else len(value),
            0,
        )


@dataclass(frozen=True, slots=True)
class FetcherConfig:
    """What the child process is started with (pickled to it): the consumer and the hand-over rules."""

    topic: str
    consumer: dict[str, Any]
    """Keyword arguments of :class:`kafka.KafkaConsumer` (group, client id, timeouts, batch size)."""
    batches_ahead: int = 4
    screen: bool = False
    """Screen the plate reads of the batches here (:attr:`FetchedBatch.screened`), off the matcher's core."""
    share_screening: bool = True
    """With ``screen``: a batch polled while the matcher holds at most :attr:`share_while_held` of this
    process's batches (sent and not handed back: it will soon be idle) goes unscreened and unfiltered, and
    the matcher screens it, so that neither process waits while the other works. The rule balances itself:
    a matcher that falls behind holds more batches, and the fetcher screens again."""
    share_while_held: int = 2
    """The most batches the matcher may hold for the next one to go unscreened (0: only when it is idle).
    Measured on the matcher benchmark (2 cores, 1M entries, medians of 5 runs, interleaved runs):

    - 0: 2-5 % of reads go unscreened; matcher/bare 0.806-0.866 (matcher 77k-94k reads/s);
    - 1: 23-28 %; 0.863-0.961 (87k-94k reads/s);
    - 2: 34 %; 0.970, 0.984 (91k, 95k reads/s); the two processes are then about equally busy (1.6 s
      of CPU each a run, against 1.2 s and 2.0 s with 0).
    """
    poll_timeout_ms: int = 50
    handover_timeout_s: float = 5.0
    log_level: str = "INFO"
    log_format: LogFormat = "json"
    instance_id: str = "matcher"


# --- The child process --------------------------------------------------------------------------------------


YOUNG_COLLECTION_THRESHOLD: Final = 50_000
"""Allocations between young collections in the matcher's processes (Python's default: 700)."""


def space_young_collections() -> None:
    """Collect the youngest generation every :data:`YOUNG_COLLECTION_THRESHOLD` allocations, not 700.

    A poll makes a tuple for each of its thousands of records, and they live until the batch is sent: with
    the default, the collector walks them again and again while they are made. Measured on a 5,000-record
    poll of plate reads (frozen heap): 1.6 us a record to take them with the default, 0.9 with this, the same
    as with the collector off. Cycles are still collected, a little later; the older generations' thresholds
    are left as they are.
    """
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the thread that started it ends (no effect elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class _Child:
    """The child's state: its consumer, the pipe, and what came from the matcher."""

    config: FetcherConfig
    conn: Connection
    consumer: KafkaConsumer | None = None
    inbox: queue.Queue[tuple[Any, ...]] = field(default_factory=queue.Queue)
    """Requests for the main loop (credits, commits, rewinds, stop), in order."""
    handovers: queue.Queue[Offsets | None] = field(default_factory=queue.Queue)
    """Answers to hand-over questions, for the rebalance listener."""
    outbox: queue.Queue[tuple[Any, ...] | None] = field(default_factory=queue.Queue)
    """What goes to the matcher, in order; a thread of its own writes it to the pipe (None: no more)."""

    def send(self, *message: object) -> None:
        self.outbox.put(message)

    def write_pipe(self) -> None:
        """Write the outbox to the pipe (on a thread of its own), so that polling never waits for the matcher.

        A batch is about a megabyte: far more than the pipe holds, so writing it waits until the matcher reads
        it, and the main loop polls and screens the next batches meanwhile (``batches_ahead`` of them).
        """
        try:
            while (message := self.outbox.get()) is not None:
                self.conn.send(message)
        except (OSError, EOFError):
            self.inbox.put(("stop",))  # the matcher is gone

    def read_pipe(self) -> None:
        """Sort what the matcher sends (on a thread of its own); a closed pipe means stop."""
        try:
            while True:
                message = self.conn.recv()
                if message[0] == "handover":
                    self.handovers.put(message[1])
                else:
                    self.inbox.put(message)
        except (EOFError, OSError):
            self.inbox.put(("stop",))
            self.handovers.put(None)

    def commit_held(self, offsets: Offsets, *, sync: bool) -> None:
        """Commit the offsets of partitions this member still holds (another owner's are not ours to move)."""
        consumer = self.consumer
        if consumer is None:
            return
        held = consumer.assignment()
        mine = {partition: offset for partition, offset in offsets.items() if partition in held}
        if not mine:
            return
        if sync:
            consumer.commit(mine)
        else:
            consumer.commit_async(mine, callback=_on_commit)


def _on_commit(_offsets: Offsets, result: object) -> None:
    if isinstance(result, Exception):
        # A later commit covers these offsets; if the group rebalanced, the reads are replayed (same ids).
        log.warning("offset commit failed; reads may be replayed", extra={"error": str(result)})


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands partitions over in a rebalance; logs partition moves, so operators (and tests) can see them.

    kafka-python calls it on its network thread while the main loop waits in ``poll``, so it makes no
    blocking consumer calls (they would deadlock): it commits asynchronously.
    """

    def __init__(self, child: _Child) -> None:
        self.child = child
        self.instance_id = child.config.instance_id

    def _log(self, what: str, partitions: set[TopicPartition], level: int = logging.INFO) -> None:
        numbers = sorted(p.partition for p in partitions)
        log.log(level, what, extra={"instance": self.instance_id, "partitions": numbers})

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._log("partitions revoked", revoked)
        child = self.child
        if not revoked:
            return
        while not child.handovers.empty():  # an answer that came after its question timed out
            child.handovers.get_nowait()
        child.send("revoked", set(revoked))
        try:
            offsets = child.handovers.get(timeout=child.config.handover_timeout_s)
        except queue.Empty:
            log.warning("the matcher did not answer the hand-over in time; its reads will be replayed")
            return
        if offsets:
            child.commit_held(offsets, sync=False)

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self._log("partitions lost (this member was dropped from the group)", lost, logging.WARNING)
        self.child.send("lost", set(lost))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._log("partitions assigned", assigned)
        self.child.send("assigned", set(assigned))


def _rewind(consumer: KafkaConsumer) -> None:
    """Go back to the last committed offset of every assigned partition, so nothing is skipped."""
    for partition in consumer.assignment():
        committed = consumer.committed(partition)
        if committed is None:
            consumer.seek_to_beginning(partition)
        else:
            consumer.seek(partition, committed)


def _child_main(config: FetcherConfig, conn: Connection) -> None:
    """Entry point of the fetcher process (spawned)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the matcher decides when to stop (a Ctrl-C reaches both)
    configure_logging(level=config.log_level, fmt=config.log_format)
    child = _Child(config, conn)
    threading.Thread(target=child.read_pipe, name="fetcher-pipe-in", daemon=True).start()
    writer = threading.Thread(target=child.write_pipe, name="fetcher-pipe-out", daemon=True)
    writer.start()
    try:
        child.consumer = consumer = KafkaConsumer(**config.consumer)
        use_compiled_record_parser(consumer)
        consumer.subscribe([config.topic], listener=_Rebalance(child))
    except (KafkaError, OSError) as exc:
        child.send("failed", f"cannot start a consumer of {config.topic}: {exc}")
        child.outbox.put(None)
        writer.join(5)
        return
    # What exists now lives as long as the process: keep it out of the collector's full walks, which would
    # otherwise scan every imported module's objects several times a second (a poll makes many objects).
    gc.freeze()
    space_young_collections()
    child.send("started", gc.get_threshold())
    credit, epoch, seq = config.batches_ahead, 0, 0
    prefilter: ReadPrefilter | None = None
    try:
        while True:
            try:
                message = child.inbox.get(timeout=0.5) if credit <= 0 else child.inbox.get_nowait()
            except queue.Empty:
                message = None
            if message is not None:
                kind = message[0]
                if kind == "stop":
                    break
                if kind == "done":
                    credit += 1
                elif kind == "commit":
                    _, offsets, token = message
                    try:
                        child.commit_held(offsets, sync=token is not None)
                        error = None
                    except KafkaError as exc:
                        error = str(exc)
                    if token is not None:
                        child.send("committed", token, error)
                elif kind == "rewind":
                    epoch = message[1]
                    _rewind(consumer)
                elif kind == "prefilter":
                    prefilter = message[1]
                    child.send("prefilter-applied", prefilter.generation)  # after every batch before it
                continue  # every request before the next poll
            polled = consumer.poll(timeout_ms=config.poll_timeout_ms)
            if polled:
                held = config.batches_ahead - credit  # batches the matcher has not handed back
                screen = config.screen and not (config.share_screening and held <= config.share_while_held)
                batch = FetchedBatch.of(
                    polled,
                    seq=seq,
                    epoch=epoch,
                    assignment=frozenset(consumer.assignment()),
                    screen=screen,
                    prefilter=prefilter,
                )
                child.send("batch", batch)
                seq += 1
                credit -= 1
    finally:
        consumer.close(autocommit=False)
        child.outbox.put(None)
        writer.join(5)


# --- The matcher's side -------------------------------------------------------------------------------------


class ReadFetcher:
    """The consumer-group member, in a child process, from the matcher's side.

    Parameters
    ----------
    config
        The consumer and hand-over settings.
    on_revoked
        Called (in the thread that calls :meth:`next_batch`) with partitions about to be given up; it may
        call :meth:`commit_async`, whose offsets are then committed before they go.
    on_lost
        Called with partitions already taken away (nothing of them can be committed).
    """

    def __init__(
        self,
        config: FetcherConfig,
        *,
        on_revoked: Callable[[set[TopicPartition]], None] = lambda _: None,
        on_lost: Callable[[set[TopicPartition]], None] = lambda _: None,
    ) -> None:
        self.config = config
        self.on_revoked = on_revoked
        self.on_lost = on_lost
        self._assignment: frozenset[TopicPartition] = frozenset()
        self._epoch = 0
        self._tokens = itertools.count(1)
        self._handover: Offsets | None = None
        self._held: set[int] = set()
        self._replies: dict[int, str | None] = {}
        self._process: SpawnProcess | None = None
        self._conn: Connection | None = None
        self.prefilter_offered: int | None = None
        """Generation of the last :class:`ReadPrefilter` sent to the child."""
        self.prefilter_applied: int | None = None
        """Generation of the last :class:`ReadPrefilter` the child took up (later batches: it or newer)."""
        self.child_gc_threshold: tuple[int, ...] | None = None
        """The child's garbage-collector thresholds (``gc.get_threshold()``), as it reported them at start."""

    def start(self) -> ReadFetcher:
        """Start the child and wait until its consumer exists (it joins the group on its first poll)."""
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_child_main, args=(self.config, theirs), name=f"{self.config.instance_id}-fetcher"
        )
        process.start()
        theirs.close()
        self._process, self._conn = process, ours
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            message = self._receive(max(deadline - time.monotonic(), 0.0))
            if message is None:
                self.close()
                raise BrokerError(f"the fetcher process did not start within {_START_TIMEOUT_S:g} s")
            if message[0] == "started":
                self.child_gc_threshold = tuple(message[1])
                return self
            if message[0] == "failed":
                self.close()
                raise BrokerError(message[1])

    @property
    def alive(self) -> bool:
        """Whether the child process is running."""
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """Process id of the child."""
        return None if self._process is None else self._process.pid

    def assignment(self) -> set[TopicPartition]:
        """Partitions the member holds, as of the child's last word."""
        return set(self._assignment)

    def _send(self, *message: object) -> None:
        if self._conn is None:
            raise BrokerError("the fetcher process is not running")
        try:
            self._conn.send(message)
        except (OSError, EOFError) as exc:
            raise FetcherGoneError(f"the fetcher process is gone: {exc}") from exc

    def _receive(self, timeout_s: float) -> tuple[Any, ...] | None:
        """The child's next message, or None after ``timeout_s``; raises if the child is gone."""
        conn = self._conn
        if conn is None:
            raise BrokerError("the fetcher process is not running")
        try:
            if not conn.poll(timeout_s):
                if not self.alive:
                    raise FetcherGoneError("the fetcher process died")
                return None
            message: tuple[Any, ...] = conn.recv()
        except (OSError, EOFError) as exc:
            raise FetcherGoneError(f"the fetcher process is gone: {exc}") from exc
        return message

    def _handle(self, message: tuple[Any, ...]) -> FetchedBatch | None:
        """Act on a control message; return a batch that is still current."""
        kind = message[0]
        if kind == "batch":
            batch: FetchedBatch = message[1]
            self._assignment = batch.assignment
            if batch.epoch == self._epoch:
                self._held.add(batch.seq)
                return batch
            self.done(batch)  # polled before a rewind: it will be polled again
        elif kind == "revoked":
            self._handover = {}
            try:
                self.on_revoked(message[1])
                offsets = self._handover
            finally:
                self._handover = None
            self._assignment = self._assignment - message[1]
            self._send("handover", offsets)
        elif kind == "lost":
            self._assignment = self._assignment - message[1]
            self.on_lost(message[1])
        elif kind == "assigned":
            self._assignment = frozenset(message[1])
        elif kind == "committed":
            self._replies[message[1]] = message[2]
        elif kind == "prefilter-applied":
            self.prefilter_applied = message[1]
        return None

    def next_batch(self, timeout_s: float) -> FetchedBatch | None:
        """The next batch, or None if none came within ``timeout_s`` (control messages are handled meanwhile).

        Raises
        ------
        FetcherGoneError
            The child process died or closed the pipe.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            message = self._receive(max(deadline - time.monotonic(), 0.0))
            if message is None:
                return None
            batch = self._handle(message)
            if batch is not None:
                return batch
            if time.monotonic() >= deadline:
                return None

    def done(self, batch: FetchedBatch) -> None:
        """The matcher has taken ``batch`` in (or dropped it, to be replayed): the child may poll one more."""
        self._held.discard(batch.seq)
        self._send("done", batch.seq)

    @property
    def batches_held(self) -> int:
        """Batches :meth:`next_batch` gave out that are not :meth:`done` yet.

        The child polls ahead only while fewer than ``batches_ahead`` of its batches are not handed back
        (after that, once every 0.5 s, to stay in the group), so a batch never handed back slows it down for
        good.
        """
        return len(self._held)

    def commit_async(self, offsets: Offsets, **_: object) -> None:
        """Commit ``offsets`` without waiting (during a hand-over: before the partitions go)."""
        if self._handover is not None:
            self._handover.update(offsets)
        else:
            self._send("commit", dict(offsets), None)

    def commit(self, offsets: Offsets, *, timeout_s: float = 10.0) -> None:
        """Commit ``offsets`` and wait for the broker's answer.

        Raises
        ------
        BrokerError
            The commit failed (a rebalance, the broker), or no answer came in ``timeout_s``.
        """
        token = next(self._tokens)
        self._send("commit", dict(offsets), token)
        deadline = time.monotonic() + timeout_s
        while token not in self._replies:
            if time.monotonic() >= deadline:
                raise BrokerError(f"no answer to an offset commit within {timeout_s:g} s")
            message = self._receive(max(deadline - time.monotonic(), 0.0))
            if message is None:
                continue
            batch = self._handle(message)
            if batch is not None:
                self.done(batch)  # not taken in: the reads are replayed from the commit
        error = self._replies.pop(token)
        if error is not None:
            raise BrokerError(f"offset commit failed: {error}")

    def set_prefilter(self, prefilter: ReadPrefilter) -> None:
        """Have the child hold back reads that cannot match, from its next poll on (:class:`ReadPrefilter`).

        Batches it polled before carry an older generation (or none); :attr:`prefilter_applied` tells when no
        more of them can come.
        """
        self._send("prefilter", prefilter)
        self.prefilter_offered = prefilter.generation

    def rewind(self) -> None:
        """Go back to the last committed offsets; batches polled before this are dropped when they arrive."""
        self._epoch += 1
        self._send("rewind", self._epoch)

    def close(self) -> None:
        """Stop the child (it leaves the group without committing) and wait for it."""
        process, conn = self._process, self._conn
        if conn is not None:
            with contextlib.suppress(OSError, EOFError, BrokenPipeError):
                conn.send(("stop",))
        if process is not None:
            deadline = time.monotonic() + _STOP_TIMEOUT_S
            while process.is_alive() and time.monotonic() < deadline:
                # Keep reading: a child blocked on a full pipe could not see the stop, and one leaving the
                # group may ask about a hand-over (nothing more is committed now).
                with contextlib.suppress(OSError, EOFError, BrokenPipeError):
                    if conn is not None and conn.poll(0.05) and conn.recv()[0] == "revoked":
                        conn.send(("handover", {}))
            if process.is_alive():
                log.warning("the fetcher process did not stop in time; killing it")
                process.kill()
            process.join(5)
            process.close()
        if conn is not None:
            conn.close()
        self._process = self._conn = None
