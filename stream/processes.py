"""Several matcher processes on one machine: consumer-group members started with ``spawn`` and watched over.

One Python process matches reads on one core at most (the interpreter lock), so a machine with more cores
runs several :class:`stream.service.MatcherService` s, each a member of the same consumer group: Kafka gives
each its share of the reads' partitions (6, so more than 6 processes leave some idle). Each process loads
the hotlist itself and keeps its own index and alert de-duplication (reads are keyed by camera, so one
camera's reads reach one process).

:class:`MatcherProcesses` starts the processes with the ``spawn`` method (no state is inherited from the
parent, which may hold Kafka client threads), lets them all load the hotlist and then join the group
together (one rebalance instead of one per process), restarts any that dies (after a growing delay), and
stops them all on :meth:`~MatcherProcesses.stop`. Process ``i`` (0-based) gets the instance id
``<instance_id>-<i>`` and, if metrics are on, serves them on ``metrics_port + i``. Each process writes its
counters (reads, hits, dead letters, hotlist version, partitions held) to shared memory every
:data:`PUBLISH_INTERVAL_S`, for the parent's :attr:`~MatcherProcesses.reads_processed` and the like.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import SynchronizedArray
from multiprocessing.synchronize import Barrier, Event
from types import FrameType
from typing import Final

from cordon.logs import configure_logging
from stream.registry import CameraRegistry
from stream.service import MatcherService
from stream.settings import MatcherSettings

__all__ = ["PUBLISH_INTERVAL_S", "MatcherProcesses"]

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S: Final = 0.01
"""How often each process copies its counters to shared memory, seconds."""

_COUNTERS: Final = ("reads_processed", "hits_published", "dead_letters", "hotlist_version", "partitions")
_RESTART_DELAYS_S: Final = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class _ChildSpec:
    """What one matcher process is started with (pickled to it)."""

    settings: MatcherSettings
    registry: CameraRegistry | None
    slot: int
    start_together: bool


def _write_counters(service: MatcherService, counters: SynchronizedArray[int], slot: int) -> None:
    values = (
        service.reads_processed,
        service.hits_published,
        service.dead_letters,
        service.hotlist_version,
        len(service.assigned),
    )
    base = slot * len(_COUNTERS)
    for offset, value in enumerate(values):
        counters[base + offset] = value


def _publish_counters(
    service: MatcherService,
    counters: SynchronizedArray[int],
    slot: int,
    stop: Event,
    done: threading.Event,
) -> None:
    """Copy the service's counters to this process's slot until it has finished; pass on a stop request."""
    while not done.wait(PUBLISH_INTERVAL_S):
        _write_counters(service, counters, slot)
        if stop.is_set():
            service.stop()
    _write_counters(service, counters, slot)  # what the last batches added while stopping


def _child_main(spec: _ChildSpec, counters: SynchronizedArray[int], stop: Event, together: Barrier) -> None:
    """Entry point of one matcher process (spawned): run a :class:`MatcherService` until stopped."""
    settings = spec.settings
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    service = MatcherService(settings, registry=spec.registry)

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received; stopping", extra={"signal": signum, "instance": settings.instance_id})
        service.stop()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr="0.0.0.0")
    done = threading.Event()
    publisher = threading.Thread(
        target=_publish_counters,
        args=(service, counters, spec.slot, stop, done),
        name="counters",
        daemon=True,
    )
    publisher.start()

    def _join_together() -> None:
        # Join the group with the other processes (one rebalance); a sibling that fails to load its hotlist
        # breaks the barrier (or times out) and the others go ahead alone.
        try:
            together.wait(timeout=settings.hotlist_load_timeout_s)
        except threading.BrokenBarrierError:
            log.warning("starting without waiting for the other matcher processes")

    try:
        service.run(before_consuming=_join_together if spec.start_together else None)
    finally:
        service.stop()
        done.set()
        publisher.join(timeout=5)


class MatcherProcesses:
    """``processes`` matcher processes in one consumer group, started, watched and stopped from here.

    Parameters
    ----------
    settings
        The matcher's settings; ``settings.processes`` is how many processes, unless ``processes`` is given.
    registry
        Camera registry for every process; each loads ``settings.camera_registry`` itself when None.
    processes
        How many processes (>= 1); overrides ``settings.processes``.
    """

    def __init__(
        self,
        settings: MatcherSettings,
        *,
        registry: CameraRegistry | None = None,
        processes: int | None = None,
    ) -> None:
        count = settings.processes if processes is None else processes
        if count < 1:
            raise ValueError(f"processes must be >= 1, got {count}")
        self.settings = settings
        self.registry = registry
        self.count = count
        self.restarts = 0
        """Processes restarted after dying, since :meth:`start` (a counter for logs and tests)."""
        self._context = multiprocessing.get_context("spawn")
        self._counters: SynchronizedArray[int] = self._context.Array("q", count * len(_COUNTERS))
        self._carried = [0] * len(_COUNTERS)  # counts of processes that died, so totals never go back
        self._stop = self._context.Event()
        self._together = self._context.Barrier(count)
        self._children: list[SpawnProcess | None] = [None] * count
        self._failures = [0] * count
        self._stopping = threading.Event()

    def _spec(self, slot: int, *, start_together: bool) -> _ChildSpec:
        s = self.settings
        port = s.metrics_port + slot if s.metrics_port else s.metrics_port
        child = s.model_copy(update={"instance_id": f"{s.instance_id}-{slot}", "metrics_port": port})
        return _ChildSpec(child, self.registry, slot, start_together)

    def _launch(self, slot: int, *, start_together: bool) -> None:
        process = self._context.Process(
            target=_child_main,
            args=(
                self._spec(slot, start_together=start_together),
                self._counters,
                self._stop,
                self._together,
            ),
            name=f"matcher-{slot}",
        )
        process.start()
        self._children[slot] = process
        log.info("matcher process started", extra={"slot": slot, "pid": process.pid})

    def start(self) -> MatcherProcesses:
        """Start every process; they load the hotlist, then join the group together."""
        for slot in range(self.count):
            self._launch(slot, start_together=self.count > 1)
        return self

    def _total(self, field: str) -> int:
        index = _COUNTERS.index(field)
        width = len(_COUNTERS)
        return self._carried[index] + sum(self._counters[slot * width + index] for slot in range(self.count))

    @property
    def reads_processed(self) -> int:
        """Reads whose hits are acknowledged, over every process (and processes that died)."""
        return self._total("reads_processed")

    @property
    def hits_published(self) -> int:
        """Hits acknowledged by the broker, over every process."""
        return self._total("hits_published")

    @property
    def dead_letters(self) -> int:
        """Messages parked on the DLQ, over every process."""
        return self._total("dead_letters")

    @property
    def hotlist_version(self) -> int:
        """The oldest hotlist version in use by a process (0: some process has none loaded yet)."""
        index, width = _COUNTERS.index("hotlist_version"), len(_COUNTERS)
        return min(self._counters[slot * width + index] for slot in range(self.count))

    @property
    def partitions(self) -> list[int]:
        """Number of partitions each process holds now."""
        index, width = _COUNTERS.index("partitions"), len(_COUNTERS)
        return [self._counters[slot * width + index] for slot in range(self.count)]

    def pids(self) -> list[int]:
        """Process ids of the running processes."""
        return [child.pid for child in self._children if child is not None and child.pid is not None]

    def alive(self) -> list[bool]:
        """Whether each process is running."""
        return [child is not None and child.is_alive() for child in self._children]

    def check(self) -> None:
        """Restart processes that died (unless stopping), each after a delay that grows with its failures."""
        if self._stopping.is_set():
            return
        width = len(_COUNTERS)
        for slot, child in enumerate(self._children):
            if child is None or child.is_alive():
                continue
            delay = _RESTART_DELAYS_S[min(self._failures[slot], len(_RESTART_DELAYS_S) - 1)]
            log.error(
                "matcher process died; restarting it",
                extra={"slot": slot, "exitcode": child.exitcode, "restart_in_s": delay},
            )
            child.close()
            self._children[slot] = None
            for index, field in enumerate(_COUNTERS):
                if field in ("reads_processed", "hits_published", "dead_letters"):
                    self._carried[index] += self._counters[slot * width + index]
                self._counters[slot * width + index] = 0
            self._failures[slot] += 1
            if self._stopping.wait(delay):
                return
            self._launch(slot, start_together=False)
            self.restarts += 1

    def stop_requested(self) -> None:
        """Make :meth:`run` stop the processes and return (safe in a signal handler: it only sets a flag)."""
        self._stopping.set()

    def run(self) -> None:
        """Start the processes and watch over them until :meth:`stop_requested` (or :meth:`stop`)."""
        self.start()
        try:
            while not self._stopping.wait(1.0):
                self.check()
        finally:
            self.stop()

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Ask every process to finish its batch and leave the group; terminate those that do not in time."""
        self._stopping.set()
        self._stop.set()
        self._together.abort()  # a process still loading its hotlist must not wait for the others
        deadline = time.monotonic() + timeout_s
        for slot, child in enumerate(self._children):
            if child is None:
                continue
            child.join(max(deadline - time.monotonic(), 0.1))
            if child.is_alive():
                log.warning("matcher process did not stop in time; terminating it", extra={"slot": slot})
                child.terminate()
                child.join(5)
            if child.is_alive():
                child.kill()
                child.join(5)
            child.close()
            self._children[slot] = None

    def __enter__(self) -> MatcherProcesses:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
