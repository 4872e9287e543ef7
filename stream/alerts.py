"""Alert de-duplication: successive sightings of one vehicle on one hotlist entry make one alert (pure).

A hit is one read matching one entry; an alert is what the control room acts on. Hits of the same read plate
on the same entry belong to one alert while each comes within ``window_s`` of the alert's **last** sighting,
so a vehicle driving past camera after camera keeps one alert open, updated with sighting 2, 3, ...; a gap
longer than the window starts a new alert. Time is passed in (the read's capture time), never read from a
clock, so replaying a topic gives the same alerts.

The key is ``(entry_id, plate)`` exactly as the caller passes them. Passing the *read* plate keeps
differently-read plates apart: ``AB12CDE`` at one camera and ``AB12CDF`` (an ``edit`` match) at the next
raise two alerts, since they may be two vehicles. Passing the *entry's* plate groups every fuzzy read of one
entry into one alert, which is what a control room following one wanted vehicle usually wants. The choice
belongs to the caller (:mod:`stream.core`).

Identifiers are deterministic. An alert's id is ``uuid5(ALERT_NAMESPACE, f"{entry_id}/{read_id}")`` of the
read that raised it, and a hit's id is ``uuid5(HIT_NAMESPACE, f"{read_id}/{entry_id}")``
(:func:`hit_id_for`), so a read processed twice (a redelivery after a consumer-group rebalance) produces the
same hit. The deduper also remembers the reads of each open alert, and gives a read it has already seen the
same decision again instead of counting a new sighting.

Out-of-order reads
------------------
Reads of one plate can arrive out of capture order: different cameras' reads sit on different partitions, and
an edge box may flush a backlog after an outage. A read is placed by its capture time ``at``:

* within ``window_s`` of the alert's last sighting, before or after it: a further sighting of that alert
  (the last sighting time only ever moves forward);
* more than ``window_s`` after it: a new alert, which replaces the open one;
* more than ``window_s`` before it (a straggler from an earlier episode): a new alert for that read alone,
  which does not replace the open one.

An alert's state is dropped once the newest capture time seen (from any key) is more than ``window_s +
lateness_s`` past its last sighting; a read of that plate arriving later than ``lateness_s`` behind the newest
read can then start a new alert where, had it arrived in time, it would have joined the old one. Beyond
``max_keys`` open alerts, the least recently sighted are dropped first.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["ALERT_NAMESPACE", "HIT_NAMESPACE", "AlertDecision", "AlertDeduper", "alert_id_for", "hit_id_for"]

ALERT_NAMESPACE: Final = uuid.UUID("6f1c1a52-2a4e-5d1b-9a43-0c6d8e0b7a01")
"""UUIDv5 namespace of alert ids."""

HIT_NAMESPACE: Final = uuid.UUID("0b3f5e7c-8d21-5a6e-b4c9-7e2a1d9f3c02")
"""UUIDv5 namespace of hit ids."""

_READS_REMEMBERED = 64
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


_ALERT_PREFIX: Final = ALERT_NAMESPACE.bytes
_HIT_PREFIX: Final = HIT_NAMESPACE.bytes
_VERSION_5_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_5_SET: Final = (5 << 76) | (0x8000 << 48)


def _uuid5(namespace: bytes, name: str) -> uuid.UUID:
    """``uuid.uuid5`` of a namespace given as its 16 bytes, without ``UUID.__init__``'s checks (2x faster).

    A matcher makes one or two ids per hit; the standard function spends most of its time in the checks of
    ``UUID(bytes=..., version=5)``, which a SHA-1 digest always passes.
    """
    digest = hashlib.sha1(namespace + name.encode("utf-8")).digest()
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", int.from_bytes(digest[:16]) & _VERSION_5_CLEAR | _VERSION_5_SET)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def alert_id_for(entry_id: str, read_id: uuid.UUID) -> uuid.UUID:
    """Id of the alert raised by ``read_id`` on ``entry_id``: ``uuid5(ALERT_NAMESPACE, "<entry>/<read>")``."""
    return _uuid5(_ALERT_PREFIX, f"{entry_id}/{read_id}")


def hit_id_for(read_id: uuid.UUID, entry_id: str) -> uuid.UUID:
    """Id of the hit of ``read_id`` on ``entry_id``: ``uuid5(HIT_NAMESPACE, "<read>/<entry>")``."""
    return _uuid5(_HIT_PREFIX, f"{read_id}/{entry_id}")


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """Which alert a hit belongs to.

    Attributes
    ----------
    alert_id
        The alert's id (deterministic, see the module docstring).
    sighting
        1 for the read that raised the alert, then 2, 3, ...
    is_new
        Whether this hit raises the alert (``sighting == 1``) rather than updating it.
    """

    alert_id: uuid.UUID
    sighting: int
    is_new: bool


@dataclass(slots=True)
class _Alert:
    alert_id: uuid.UUID
    last_seen: int
    sightings: int
    reads: dict[uuid.UUID, int] = field(default_factory=dict)


class AlertDeduper:
    """Groups hits into alerts by plate, entry and time; see the module docstring for the rules.

    Not thread-safe: one deduper per consumer thread (the consumer is keyed by plate, so one plate's reads
    reach one instance).

    Parameters
    ----------
    window_s
        Seconds after an alert's last sighting within which a hit of the same plate and entry updates it.
    max_keys
        Most open alerts held; beyond it the least recently sighted are dropped.
    lateness_s
        Seconds a read may arrive behind the newest read seen and still join its alert.
    """

    def __init__(
        self, window_s: float = 300.0, max_keys: int = 1_000_000, *, lateness_s: float = 60.0
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        if lateness_s < 0:
            raise ValueError(f"lateness_s must be >= 0, got {lateness_s}")
        self.window_s = float(window_s)
        self.max_keys = max_keys
        self.lateness_s = float(lateness_s)
        # Times are whole microseconds since the epoch, so that a gap of exactly window_s compares exactly.
        self._window = round(window_s * 1_000_000)
        self._lateness = round(lateness_s * 1_000_000)
        self._alerts: OrderedDict[tuple[str, str], _Alert] = OrderedDict()
        self._newest: int | None = None
        self.evicted = 0
        """Open alerts dropped so far, by age or by ``max_keys`` (a counter for metrics)."""

    def __len__(self) -> int:
        """Number of open alerts held."""
        return len(self._alerts)

    def observe(self, *, entry_id: str, plate: str, read_id: uuid.UUID, at: datetime) -> AlertDecision:
        """Place one hit (``read_id`` matching ``entry_id`` as ``plate``, captured at ``at``) in an alert.

        Raises
        ------
        ValueError
            ``at`` is naive.
        """
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        when = (at - _EPOCH) // _MICROSECOND
        key = (entry_id, plate)
        alert = self._alerts.get(key)
        if alert is not None:
            seen = alert.reads.get(read_id)
            if seen is not None:  # the same read again: the same answer
                return AlertDecision(alert.alert_id, seen, seen == 1)
            if abs(when - alert.last_seen) <= self._window:
                alert.sightings += 1
                alert.last_seen = max(alert.last_seen, when)
                self._remember(alert, read_id)
                self._alerts.move_to_end(key)
                self._advance(when)
                return AlertDecision(alert.alert_id, alert.sightings, False)
            if when < alert.last_seen:  # a straggler from an earlier episode
                return AlertDecision(alert_id_for(entry_id, read_id), 1, True)
        new = _Alert(alert_id_for(entry_id, read_id), when, 1)
        self._remember(new, read_id)
        self._alerts[key] = new
        self._alerts.move_to_end(key)
        self._advance(when)
        return AlertDecision(new.alert_id, 1, True)

    @staticmethod
    def _remember(alert: _Alert, read_id: uuid.UUID) -> None:
        alert.reads[read_id] = alert.sightings
        if len(alert.reads) > _READS_REMEMBERED:
            del alert.reads[next(iter(alert.reads))]

    def _advance(self, when: int) -> None:
        """Move the newest capture time forward and drop alerts nobody can join any more."""
        if self._newest is None or when > self._newest:
            self._newest = when
        horizon = self._newest - self._window - self._lateness
        alerts = self._alerts
        # Least recently sighted first: stop at the first alert still open (out-of-order sightings can leave
        # an older one behind it; it is dropped on a later pass, and is never joined wrongly meanwhile).
        while alerts and next(iter(alerts.values())).last_seen < horizon:
            alerts.popitem(last=False)
            self.evicted += 1
        while len(alerts) > self.max_keys:
            alerts.popitem(last=False)
            self.evicted += 1
