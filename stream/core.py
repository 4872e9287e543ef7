"""The matcher's pure core: one read in, the hotlist hits it raises out (no Kafka, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cordon.events import HotlistHit, PlateRead
from stream.alerts import AlertDeduper, hit_id_for
from stream.matching import HotlistIndex, effective_priority
from stream.registry import CameraRegistry

__all__ = ["MatchPolicy", "ReadMatcher"]


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    """What raises a hit.

    Attributes
    ----------
    all_cameras_hotlists
        Hotlists that raise hits on every camera; other lists only on cameras covering an arterial route.
    max_edits
        1 for fuzzy matching (one edit after OCR-confusion classes), 0 for exact and confusion matches only.
    low_confidence_threshold
        A non-exact hit whose ``score x read confidence`` is below this drops one priority step.
    edit_max_read_confidence
        One-edit (``edit``) matches raise hits only for reads less confident than this. Against a 1M-entry
        hotlist about 31 % of all reads are one edit from some listed plate, so a confident read that differs
        by a real character is most likely another vehicle; an unsure read is worth the operator's look.
    """

    all_cameras_hotlists: frozenset[str] = frozenset()
    max_edits: int = 1
    low_confidence_threshold: float = 0.6
    edit_max_read_confidence: float = 0.9


class ReadMatcher:
    """Checks reads against the live hotlist index and de-duplicates alerts.

    The index is replaced whole when a new hotlist version arrives (:attr:`index` is a plain attribute, so the
    swap is atomic for readers).
    """

    def __init__(
        self,
        index: HotlistIndex,
        registry: CameraRegistry,
        *,
        policy: MatchPolicy = MatchPolicy(),
        deduper: AlertDeduper | None = None,
    ) -> None:
        self.index = index
        self.registry = registry
        self.policy = policy
        self.deduper = deduper or AlertDeduper()

    def match(self, read: PlateRead, *, now: datetime) -> list[HotlistHit]:
        """Hits raised by ``read`` (empty for most reads). ``now`` stamps ``matched_at`` (UTC)."""
        index = self.index
        matches = index.match(read.plate, at=read.captured_at, max_edits=self.policy.max_edits)
        if not matches:
            return []
        arterial = self.registry.is_arterial(read.camera_id)
        hits = []
        for match in matches:
            entry = match.entry
            if not arterial and entry.hotlist not in self.policy.all_cameras_hotlists:
                continue
            if match.kind == "edit" and read.confidence >= self.policy.edit_max_read_confidence:
                continue
            # Keyed on the listed plate: exact, confused and one-off reads of one vehicle make one alert.
            decision = self.deduper.observe(
                entry_id=entry.entry_id, plate=entry.plate, read_id=read.read_id, at=read.captured_at
            )
            hits.append(
                HotlistHit(
                    hit_id=hit_id_for(read.read_id, entry.entry_id),
                    alert_id=decision.alert_id,
                    sighting=decision.sighting,
                    read_id=read.read_id,
                    camera_id=read.camera_id,
                    captured_at=read.captured_at,
                    plate_read=read.plate,
                    confidence=read.confidence,
                    direction=read.direction,
                    entry=entry,
                    hotlist_version=index.version,
                    match_kind=match.kind,
                    match_score=match.score,
                    priority=effective_priority(
                        entry.priority,
                        match.kind,
                        match.score,
                        read.confidence,
                        low_confidence_threshold=self.policy.low_confidence_threshold,
                    ),
                    matched_at=now,
                    crop_jpeg=read.crop_jpeg,
                )
            )
        return hits
