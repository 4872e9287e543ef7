"""Follow the camera registry the API publishes on ``cordon.cameras`` (compacted, keyed by camera id).

Every matcher reads the topic from the beginning; the newest record of each camera is the registry. Each
polled batch that changes it produces a new :class:`~stream.registry.CameraRegistry`, handed over whole, so
the matcher swaps registries atomically (like hotlist versions).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kafka.errors import KafkaError

from cordon.errors import BrokerError
from cordon.events import CameraRecord, EventDecodeError, decode
from stream.hotlist_feed import open_topic_from_start
from stream.registry import CameraInfo, CameraRegistry

__all__ = ["CameraRegistryFollower", "camera_info"]

log = logging.getLogger(__name__)


def camera_info(record: CameraRecord) -> CameraInfo:
    """The registry entry a record describes."""
    return CameraInfo(
        id=record.camera_id,
        name=record.name,
        latitude=record.latitude,
        longitude=record.longitude,
        road=record.road[:100],
        bearing_deg=record.bearing_deg,
        arterial=record.arterial,
    )


class CameraRegistryFollower:
    """Follows ``cordon.cameras`` on a background thread and calls ``on_registry`` after each change."""

    def __init__(
        self,
        bootstrap: str,
        on_registry: Callable[[CameraRegistry], None],
        *,
        topic: str = "cordon.cameras",
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.on_registry = on_registry
        self.cameras: dict[str, CameraInfo] = {}
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera-follower", daemon=True)

    def start(self) -> CameraRegistryFollower:
        self._thread.start()
        return self

    def wait_caught_up(self, timeout_s: float) -> bool:
        """Block until every record on the topic at start has been applied."""
        return self.caught_up.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except (KafkaError, BrokerError, OSError) as exc:
                log.warning("camera registry follower lost Kafka; retrying", extra={"error": str(exc)})
                self._stop.wait(2.0)

    def _follow(self) -> None:
        consumer, partition = open_topic_from_start(self.bootstrap, self.topic, timeout_s=10.0)
        # After a reconnect the topic is read again from the start: begin from an empty registry.
        self.cameras = {}
        try:
            end = consumer.end_offsets([partition])[partition]
            if end == 0:
                self.caught_up.set()
            while not self._stop.is_set():
                changed = False
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        changed |= self._apply(record.key, record.value)
                if changed:
                    self.on_registry(CameraRegistry(self.cameras.values()))
                if not self.caught_up.is_set() and consumer.position(partition) >= end:
                    self.caught_up.set()
        finally:
            consumer.close()

    def _apply(self, key: bytes | None, value: bytes | None) -> bool:
        if value is None:  # a tombstone from compaction tooling: the camera is gone
            return key is not None and self.cameras.pop(key.decode("utf-8", "replace"), None) is not None
        try:
            event = decode(value)
        except EventDecodeError as exc:
            log.warning("bad message on the camera registry topic skipped", extra={"error": str(exc)})
            return False
        if not isinstance(event, CameraRecord):
            log.warning("unexpected message on the camera registry topic", extra={"type": event.type})
            return False
        if event.removed:
            return self.cameras.pop(event.camera_id, None) is not None
        self.cameras[event.camera_id] = camera_info(event)
        return True
