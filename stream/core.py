"""The matcher's pure core: reads in (one or a poll batch at a time), the hits they raise out (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

import numpy as np

from cordon.events import Direction, HotlistHitRecord, ScreenedRead, screened_plate_reads, utc_millis
from stream.alerts import AlertDeduper, hit_id_for
from stream.matching import HotlistIndex, Match, canonical, edit_window, effective_priority
from stream.registry import CameraRegistry

__all__ = ["HitRead", "MatchPolicy", "ReadColumns", "ReadMatcher", "ReadView", "screened_reads"]


class ReadView(Protocol):
    """What matching looks at in a read: a :class:`cordon.events.PlateRead`, or a screened message."""

    @property
    def camera_id(self) -> str: ...
    @property
    def captured_at(self) -> datetime: ...
    @property
    def plate(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def char_confidences(self) -> tuple[float, ...] | None: ...


class HitRead(ReadView, Protocol):
    """What a hit is made of: a :class:`cordon.events.PlateRead`, or its :class:`cordon.events.ReadFields`."""

    @property
    def read_id(self) -> uuid.UUID: ...
    @property
    def direction(self) -> Direction | None: ...
    @property
    def crop_jpeg(self) -> bytes | None: ...


class _Row(NamedTuple):
    camera_id: str
    captured_at: datetime
    plate: str
    confidence: float
    char_confidences: tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class ReadColumns:
    """What matching looks at in a batch of reads, as columns (cheap to send to another process)."""

    camera_ids: list[str]
    captured_at: list[datetime]
    plates: list[str]
    confidences: list[float]
    char_confidences: list[tuple[float, ...] | None]

    @classmethod
    def of(cls, reads: Sequence[ReadView]) -> ReadColumns:
        return cls(
            [read.camera_id for read in reads],
            [read.captured_at for read in reads],
            [read.plate for read in reads],
            [read.confidence for read in reads],
            [read.char_confidences for read in reads],
        )

    @classmethod
    def screen(cls, values: Sequence[bytes | None]) -> tuple[list[int], ReadColumns]:
        """The messages :func:`cordon.events.screened_plate_reads` vouches for: their rows, and columns."""
        rows, reads = screened_reads(values)
        return rows, cls.of(reads)

    def __len__(self) -> int:
        return len(self.plates)

    def row(self, i: int) -> ReadView:
        """Read ``i``."""
        chars = self.char_confidences[i]
        return _Row(self.camera_ids[i], self.captured_at[i], self.plates[i], self.confidences[i], chars)


def screened_reads(values: Sequence[bytes | None]) -> tuple[list[int], list[ScreenedRead]]:
    """The messages :func:`cordon.events.screened_plate_reads` vouches for: their rows, and their reads."""
    views = screened_plate_reads(values)
    return [i for i, view in enumerate(views) if view is not None], [v for v in views if v is not None]


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
    edit_max_char_confidence
        And, for a read that gives per-character confidences, only where the OCR was unsure of a character
        the edit touches (:func:`stream.matching.edit_window`): less confident than this. An OCR error sits
        where the OCR hesitated; an unsure read differing from a listed plate at a character it was sure of
        is another vehicle. On the matcher benchmark's reads (1M-entry list; an unsure read there is unsure
        of most of its characters) it drops about a third of the ``edit`` hits, and no planted OCR error.
    """

    all_cameras_hotlists: frozenset[str] = frozenset()
    max_edits: int = 1
    low_confidence_threshold: float = 0.6
    edit_max_read_confidence: float = 0.9
    edit_max_char_confidence: float = 0.9

    def max_edits_for(self, confidence: float) -> int:
        """Edits to look up for a read: none for a confident one (its ``edit`` matches are dropped anyway)."""
        return self.max_edits if confidence < self.edit_max_read_confidence else 0

    def max_edits_for_each(self, confidences: Sequence[float]) -> list[int]:
        """:meth:`max_edits_for` of each confidence, in one vectorised comparison (for a batch of reads)."""
        if not self.max_edits:
            return [0] * len(confidences)
        unsure = np.asarray(confidences, dtype=np.float64) < self.edit_max_read_confidence
        edits: list[int] = (unsure * self.max_edits).tolist()
        return edits


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

    def match(self, read: HitRead, *, now: datetime) -> list[HotlistHitRecord]:
        """Hits raised by ``read`` (empty for most reads). ``now`` stamps ``matched_at`` (UTC).

        The hits are records (:class:`cordon.events.HotlistHitRecord`): what :func:`cordon.events.encode`
        publishes; ``.to_event()`` gives the validated :class:`cordon.events.HotlistHit`.
        """
        now = utc_millis(now)
        index = self.index
        matches = index.match(
            read.plate, at=read.captured_at, max_edits=self.policy.max_edits_for(read.confidence)
        )
        return self._hits(read, matches, index.version, now) if matches else []

    def match_batch(
        self,
        reads: Sequence[HitRead],
        *,
        now: datetime,
        index: HotlistIndex | None = None,
        found: Sequence[list[Match] | None] | None = None,
    ) -> list[list[HotlistHitRecord]]:
        """Hits raised by each of a batch of reads: what :meth:`match` raises for each in turn, but faster.

        The plates are looked up together (:meth:`HotlistIndex.match_batch`) in one version of the index
        (``index``, or the one in use); each read's matches then go through the policy and the deduper in the
        order of ``reads``. ``found``: per read, its matches in that index if already known (from
        :meth:`hit_matches` of the same read), or None to look them up.

        Returns
        -------
        list of list of HotlistHitRecord
            One list per read, in the order of ``reads`` (most of them empty).
        """
        now = utc_millis(now)
        index = self.index if index is None else index
        known: Sequence[list[Match] | None] = [None] * len(reads) if found is None else found
        if len(known) != len(reads):
            raise ValueError(f"need one found per read ({len(reads)}), got {len(known)}")
        missing = [i for i, matches in enumerate(known) if matches is None]
        looked_up = index.match_batch(
            [reads[i].plate for i in missing],
            at=[reads[i].captured_at for i in missing],
            max_edits=self.policy.max_edits_for_each([reads[i].confidence for i in missing]),
        )
        matches_of = list(known)
        for i, matches in zip(missing, looked_up, strict=True):
            matches_of[i] = matches
        version = index.version
        return [
            self._hits(read, matches, version, now) if matches else []
            for read, matches in zip(reads, matches_of, strict=True)
        ]

    def would_hit(
        self, reads: Sequence[ReadView] | ReadColumns, *, index: HotlistIndex | None = None
    ) -> list[bool]:
        """Whether each read would raise a hit now (before de-duplication, which never drops one).

        The same look-up and policy as :meth:`match_batch` over anything read-like (screened messages, not
        yet :class:`cordon.events.PlateRead` s, or their columns), without building hits or touching the
        deduper. ``index``: as for :meth:`match_batch`.
        """
        return [matches is not None for matches in self.hit_matches(reads, index=index)]

    def hit_matches(
        self, reads: Sequence[ReadView] | ReadColumns, *, index: HotlistIndex | None = None
    ) -> list[list[Match] | None]:
        """Each read's matches (all of them, best first) if it would raise a hit now; None if it would not.

        :meth:`would_hit` with the matches kept: the service decodes in full only the reads that raise hits,
        and hands their matches back to :meth:`match_batch` (``found``) rather than looking them up again.
        """
        columns = reads if isinstance(reads, ReadColumns) else ReadColumns.of(reads)
        found = (self.index if index is None else index).match_batch(
            columns.plates,
            at=columns.captured_at,
            max_edits=self.policy.max_edits_for_each(columns.confidences),
        )
        out: list[list[Match] | None] = [None] * len(found)
        registry = self.registry
        for i, matches in enumerate(found):
            if matches:
                read = columns.row(i)
                arterial = registry.is_arterial(read.camera_id)
                if any(self._raises(read, match, arterial) for match in matches):
                    out[i] = matches
        return out

    def _raises(self, read: ReadView, match: Match, arterial: bool | None = None) -> bool:
        """Whether ``match`` of ``read`` raises a hit under the policy."""
        policy = self.policy
        if arterial is None:
            arterial = self.registry.is_arterial(read.camera_id)
        if not arterial and match.hotlist not in policy.all_cameras_hotlists:
            return False
        if match.kind != "edit":
            return True
        if read.confidence >= policy.edit_max_read_confidence:
            return False  # not looked up for such reads (max_edits_for); the rule is kept here too
        chars = read.char_confidences
        if chars is None:
            return True
        start, stop = edit_window(canonical(read.plate), canonical(match.plate))
        return min(chars[start:stop]) < policy.edit_max_char_confidence

    def _hits(
        self, read: HitRead, matches: list[Match], version: int, now: datetime
    ) -> list[HotlistHitRecord]:
        """The hits a read's matches raise under the policy, each placed in its alert.

        ``now`` and the read's ``captured_at`` must be in UTC to the millisecond (as a read is decoded).
        """
        arterial = self.registry.is_arterial(read.camera_id)
        hits = []
        crop = HotlistHitRecord.crop_text(read.crop_jpeg)
        for match in matches:
            if not self._raises(read, match, arterial):
                continue
            entry = match.entry_record
            # Keyed on the listed plate: exact, confused and one-off reads of one vehicle make one alert.
            decision = self.deduper.observe(
                entry_id=entry.entry_id, plate=entry.plate, read_id=read.read_id, at=read.captured_at
            )
            hits.append(
                HotlistHitRecord(
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
                    hotlist_version=version,
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
                    crop_jpeg=crop,
                )
            )
        return hits
