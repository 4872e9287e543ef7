"""Group one camera's plate sightings into vehicle passes and vote each pass's text (pure, no I/O).

A vehicle crossing a camera's view is read in many frames. :class:`PlateTracker` links those sightings into
tracks and ends a track once its plate has not been seen for a while. It then votes the OCR texts with
:func:`vote_plate` and returns one :class:`PlatePass` per vehicle. Time comes only from the sightings'
``captured_at`` and the caller's ``now``, so a replay of the same frames gives the same passes.

Image coordinates are pixels, x to the right and y downwards; times are timezone-aware datetimes; durations
are seconds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from statistics import median
from typing import Literal, TypeAlias

from cordon.events import BBox
from edge.detections import Sighting

__all__ = ["Motion", "PlatePass", "PlateTracker", "drop_duplicate_sightings", "text_similarity", "vote_plate"]

Motion: TypeAlias = Literal["up", "down", "left", "right"]
"""Dominant motion of a plate in the image; ``down`` is towards the bottom of the frame."""


def vote_plate(candidates: Sequence[tuple[str, Sequence[float]]]) -> tuple[str, tuple[float, ...]]:
    """Vote one text from several OCR reads of the same plate, character by character.

    Like OpenALPR's plate groups: each candidate weighs the mean of its character confidences. The text
    length with the greatest summed weight wins. Then, at each position, the character with the greatest
    summed confidence among candidates of that length wins. Ties are broken by the number of candidates,
    then by the longer length, then by the smaller character. Sums use :func:`math.fsum`, which is exactly
    rounded, so the result does not depend on the order of the candidates.

    Parameters
    ----------
    candidates
        ``(text, char_confidences)`` pairs, one confidence in 0..1 per character. Empty texts are ignored.

    Returns
    -------
    tuple of (str, tuple of float)
        The voted text and, per character, its support. Support is the summed confidence of the winning
        character divided by the number of candidates of the winning length, in 0..1. It equals the mean
        confidence when all candidates agree, and every dissenting candidate lowers it. ``("", ())`` if
        there is no non-empty candidate.

    Raises
    ------
    ValueError
        A candidate's confidences do not match its text in length, or are not within 0..1.
    """
    by_length: dict[int, list[tuple[str, Sequence[float]]]] = defaultdict(list)
    for text, confidences in candidates:
        if len(confidences) != len(text):
            raise ValueError(f"{len(confidences)} confidences for the {len(text)} characters of {text!r}")
        if any(not 0.0 <= c <= 1.0 for c in confidences):  # also rejects NaN
            raise ValueError(f"confidences of {text!r} must be within 0..1, got {tuple(confidences)}")
        if text:
            by_length[len(text)].append((text, confidences))
    if not by_length:
        return "", ()

    def length_key(length: int) -> tuple[float, int, int]:
        group = by_length[length]
        return math.fsum(math.fsum(c) / length for _, c in group), len(group), length

    length = max(by_length, key=length_key)
    group = by_length[length]
    chars: list[str] = []
    support: list[float] = []
    for pos in range(length):
        votes: dict[str, list[float]] = defaultdict(list)
        for text, confidences in group:
            votes[text[pos]].append(confidences[pos])
        sums = {ch: math.fsum(cs) for ch, cs in votes.items()}
        winner = min(votes, key=lambda ch: (-sums[ch], -len(votes[ch]), ch))
        chars.append(winner)
        support.append(min(sums[winner] / len(group), 1.0))
    return "".join(chars), tuple(support)


def text_similarity(a: str, b: str) -> float:
    """Normalised Levenshtein similarity, ``1 - distance / max(len(a), len(b))``, in 0..1.

    Two empty texts count as identical (1.0).
    """
    if a == b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


@dataclass(frozen=True, slots=True)
class PlatePass:
    """One vehicle's pass in front of one camera: its sightings and the voted plate.

    Attributes
    ----------
    sightings
        The track's sightings in capture order; at least the tracker's ``min_sightings``.
    text
        Voted text, in the OCR's own alphabet (not yet UK-normalised).
    char_confidences
        Support of each voted character, 0..1 (see :func:`vote_plate`).
    confidence
        The weakest character's support times the best sighting's detector score, 0..1. This mirrors
        :attr:`edge.detections.Detection.confidence`.
    best
        The sighting to publish: the most confident one whose text equals ``text``, or the most confident
        one if none does. Ties go to the earliest.
    motion
        Dominant motion of the plate centre from the first to the last sighting, image coordinates. None if
        the centre moved less than the tracker's ``min_motion`` plate widths.
    """

    sightings: tuple[Sighting, ...]
    text: str
    char_confidences: tuple[float, ...]
    confidence: float
    best: Sighting
    motion: Motion | None

    @property
    def first_seen(self) -> datetime:
        """Capture time of the first sighting."""
        return self.sightings[0].captured_at

    @property
    def last_seen(self) -> datetime:
        """Capture time of the last sighting."""
        return self.sightings[-1].captured_at


@dataclass(slots=True)
class _Track:
    track_id: int
    sightings: list[Sighting] = field(default_factory=list)

    @property
    def first_seen(self) -> datetime:
        return self.sightings[0].captured_at

    @property
    def last_seen(self) -> datetime:
        return self.sightings[-1].captured_at


def _width(box: BBox) -> int:
    return box.x2 - box.x1


def _centre(box: BBox) -> tuple[float, float]:
    return (box.x1 + box.x2) / 2.0, (box.y1 + box.y2) / 2.0


def _area(box: BBox) -> int:
    return (box.x2 - box.x1) * (box.y2 - box.y1)


def _intersection(a: BBox, b: BBox) -> int:
    """Area the two boxes share, pixels (0 if they do not overlap)."""
    inter_w = min(a.x2, b.x2) - max(a.x1, b.x1)
    inter_h = min(a.y2, b.y2) - max(a.y1, b.y1)
    return inter_w * inter_h if inter_w > 0 and inter_h > 0 else 0


def _iou(a: BBox, b: BBox) -> float:
    inter = _intersection(a, b)
    union = _area(a) + _area(b) - inter
    return inter / union if inter and union > 0 else 0.0


def _overlap(a: BBox, b: BBox) -> float:
    """Share of the smaller box's area that lies inside the other box, 0..1."""
    inter = _intersection(a, b)
    smaller = min(_area(a), _area(b))
    return inter / smaller if inter and smaller > 0 else 0.0


def drop_duplicate_sightings(frame: Sequence[Sighting], min_overlap: float) -> list[Sighting]:
    """Keep one sighting per plate of one frame: drop any that mostly overlaps a more confident one.

    The plate detector can return two boxes for one plate, e.g. the plate and a looser box around it, and
    their IoU can be too low for its own non-maximum suppression (0.34 was seen on a near plate). Two boxes
    are one plate when at least ``min_overlap`` of the smaller box lies inside the other; two real plates
    never overlap like that. Sightings are taken by :attr:`Detection.confidence`, best first, ties in the
    given order, and the survivors are returned in the given order.

    Parameters
    ----------
    frame
        Sightings of one frame.
    min_overlap
        Share of the smaller box's area, 0..1, from which two sightings count as one plate.
    """
    order = sorted(range(len(frame)), key=lambda i: -frame[i].detection.confidence)
    kept: list[int] = []
    for i in order:
        box = frame[i].detection.bbox
        if all(_overlap(box, frame[k].detection.bbox) < min_overlap for k in kept):
            kept.append(i)
    return [frame[i] for i in sorted(kept)]


def _motion(sightings: Sequence[Sighting], min_motion: float) -> Motion | None:
    (x0, y0) = _centre(sightings[0].detection.bbox)
    (x1, y1) = _centre(sightings[-1].detection.bbox)
    dx, dy = x1 - x0, y1 - y0
    width = max(median(_width(s.detection.bbox) for s in sightings), 1)
    if math.hypot(dx, dy) < min_motion * width:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


class PlateTracker:
    """Links one camera's plate sightings into tracks and returns one :class:`PlatePass` per vehicle.

    Duplicate boxes of one plate in one frame are dropped first (:func:`drop_duplicate_sightings` with
    ``duplicate_overlap``), so one plate never feeds two tracks at once.

    A new sighting may join an open track only if both hold:

    * Geometry: its box overlaps the track's last box with IoU >= ``min_iou``, or its centre is at most
      ``max_centre_jump`` plate widths from the last centre. Plate width is the mean width of the two boxes.
    * Text: its text has :func:`text_similarity` >= ``min_text_similarity`` with at least one of the
      track's last three texts.

    The score of a pair is ``max(IoU, 1 - jump / max_centre_jump) + similarity``. Pairs are taken greedily
    from the best score down, with at most one sighting per track per frame. Ties go to the older track.
    Sightings left over start new tracks.

    A track ends when it has not been seen for more than ``max_gap_s``. Then:

    * A track with fewer than ``min_sightings`` sightings is dropped as noise (counted in :attr:`discarded`).
    * Otherwise its sightings are voted into a pass. Repeat suppression handles one vehicle that was split
      into two tracks, for example by a passing occlusion. The rule: a pass is suppressed if this tracker
      already returned or suppressed a pass with the same voted text whose last sighting is at most
      ``repeat_suppression_s`` before this pass's first sighting, or later. Suppressed passes are counted in
      :attr:`suppressed`. The window slides: a suppressed fragment extends it, so a vehicle waiting in a
      queue and occluded again and again still yields one pass. With ``repeat_suppression_s=0`` only
      fragments that overlap in time are suppressed. Passes are returned as soon as their track ends, not
      held back to be merged, so a hotlist alert is never delayed by the suppression window.

    Parameters
    ----------
    max_gap_s
        A track ends after this many seconds without a sighting.
    min_iou
        Box overlap that is enough for geometry, 0..1.
    max_centre_jump
        Centre distance that is still enough for geometry, in plate widths.
    min_text_similarity
        Least text similarity for a sighting to join a track, 0..1.
    min_sightings
        Tracks with fewer sightings are discarded.
    repeat_suppression_s
        Window of the repeat suppression, seconds.
    min_motion
        Least centre displacement, first to last sighting, that counts as motion, in plate widths.
    duplicate_overlap
        Two sightings of one frame are one plate when this share of the smaller box, 0..1, lies inside the
        other; the less confident one is dropped.

    Notes
    -----
    Sightings must be given in capture order across calls (within one call any order is fine). Sightings
    with an empty text are ignored, because they carry nothing to vote on.
    """

    def __init__(
        self,
        *,
        max_gap_s: float = 1.0,
        min_iou: float = 0.05,
        max_centre_jump: float = 3.0,
        min_text_similarity: float = 0.5,
        min_sightings: int = 2,
        repeat_suppression_s: float = 10.0,
        min_motion: float = 0.5,
        duplicate_overlap: float = 0.7,
    ) -> None:
        problems = [
            f"{name}={value!r} must be {rule}"
            for name, value, ok, rule in (
                ("max_gap_s", max_gap_s, max_gap_s > 0, "> 0"),
                ("min_iou", min_iou, 0 <= min_iou <= 1, "within 0..1"),
                ("max_centre_jump", max_centre_jump, max_centre_jump > 0, "> 0"),
                ("min_text_similarity", min_text_similarity, 0 <= min_text_similarity <= 1, "within 0..1"),
                ("min_sightings", min_sightings, min_sightings >= 1, ">= 1"),
                ("repeat_suppression_s", repeat_suppression_s, repeat_suppression_s >= 0, ">= 0"),
                ("min_motion", min_motion, min_motion >= 0, ">= 0"),
                ("duplicate_overlap", duplicate_overlap, 0 < duplicate_overlap <= 1, "within (0, 1]"),
            )
            if not ok
        ]
        if problems:
            raise ValueError("invalid PlateTracker options: " + "; ".join(problems))
        self.max_gap_s = max_gap_s
        self.min_iou = min_iou
        self.max_centre_jump = max_centre_jump
        self.min_text_similarity = min_text_similarity
        self.min_sightings = min_sightings
        self.repeat_suppression_s = repeat_suppression_s
        self.min_motion = min_motion
        self.duplicate_overlap = duplicate_overlap
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._recent: dict[str, datetime] = {}  # voted text -> last sighting of its latest pass or fragment
        self._suppressed = 0
        self._discarded = 0

    @property
    def open_tracks(self) -> int:
        """Number of tracks not yet ended."""
        return len(self._tracks)

    @property
    def suppressed(self) -> int:
        """Passes suppressed as repeats since the tracker was made."""
        return self._suppressed

    @property
    def discarded(self) -> int:
        """Tracks dropped for having fewer than ``min_sightings`` sightings since the tracker was made."""
        return self._discarded

    def update(self, sightings: Sequence[Sighting], now: datetime) -> list[PlatePass]:
        """Add new sightings and return the passes whose tracks have ended.

        Parameters
        ----------
        sightings
            New sightings, of one frame or several; any order within the call.
        now
            Current time on the sightings' clock (timezone-aware). Tracks last seen more than
            ``max_gap_s`` before it end.

        Returns
        -------
        list of PlatePass
            Passes of the tracks that ended, in order of first sighting, repeats suppressed.
        """
        ended: list[_Track] = []
        usable = sorted(
            (s for s in sightings if s.detection.text), key=lambda s: (s.captured_at, s.frame_index)
        )
        for (captured_at, _), frame in groupby(usable, key=lambda s: (s.captured_at, s.frame_index)):
            ended += self._expire(captured_at)
            self._associate(drop_duplicate_sightings(list(frame), self.duplicate_overlap))
        ended += self._expire(now)
        passes = self._finish(ended)
        self._prune(now)
        return passes

    def flush(self) -> list[PlatePass]:
        """End every open track (end of stream or shutdown) and return their passes, as :meth:`update`."""
        ended, self._tracks = self._tracks, []
        return self._finish(ended)

    def _expire(self, at: datetime) -> list[_Track]:
        gap = timedelta(seconds=self.max_gap_s)
        ended = [t for t in self._tracks if at - t.last_seen > gap]
        if ended:
            self._tracks = [t for t in self._tracks if at - t.last_seen <= gap]
        return ended

    def _score(self, track: _Track, sighting: Sighting) -> float | None:
        """Association score of a sighting with a track, None if the gates reject the pair."""
        last = track.sightings[-1].detection
        new = sighting.detection
        iou = _iou(last.bbox, new.bbox)
        (x0, y0), (x1, y1) = _centre(last.bbox), _centre(new.bbox)
        width = max((_width(last.bbox) + _width(new.bbox)) / 2.0, 1.0)
        jump = math.hypot(x1 - x0, y1 - y0) / width
        if iou < self.min_iou and jump > self.max_centre_jump:
            return None
        similarity = max(text_similarity(s.detection.text, new.text) for s in track.sightings[-3:])
        if similarity < self.min_text_similarity:
            return None
        return max(iou, 1.0 - jump / self.max_centre_jump) + similarity

    def _associate(self, frame: Sequence[Sighting]) -> None:
        """Attach one frame's sightings to open tracks, starting new tracks for the rest."""
        pairs: list[tuple[float, int, int]] = []
        for t_index, track in enumerate(self._tracks):
            for s_index, sighting in enumerate(frame):
                score = self._score(track, sighting)
                if score is not None:
                    pairs.append((score, t_index, s_index))
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        taken_tracks: set[int] = set()
        taken_sightings: set[int] = set()
        for _, t_index, s_index in pairs:
            if t_index in taken_tracks or s_index in taken_sightings:
                continue
            self._tracks[t_index].sightings.append(frame[s_index])
            taken_tracks.add(t_index)
            taken_sightings.add(s_index)
        for s_index, sighting in enumerate(frame):
            if s_index not in taken_sightings:
                self._tracks.append(_Track(self._next_id, [sighting]))
                self._next_id += 1

    def _finish(self, ended: Iterable[_Track]) -> list[PlatePass]:
        """Vote ended tracks into passes, dropping short tracks and suppressing repeats."""
        window = timedelta(seconds=self.repeat_suppression_s)
        passes: list[PlatePass] = []
        for track in sorted(ended, key=lambda t: (t.first_seen, t.track_id)):
            if len(track.sightings) < self.min_sightings:
                self._discarded += 1
                continue
            plate_pass = self._make_pass(track.sightings)
            previous = self._recent.get(plate_pass.text)
            if previous is None:
                self._recent[plate_pass.text] = plate_pass.last_seen
            else:
                self._recent[plate_pass.text] = max(previous, plate_pass.last_seen)
                if plate_pass.first_seen - previous <= window:
                    self._suppressed += 1
                    continue
            passes.append(plate_pass)
        return passes

    def _prune(self, now: datetime) -> None:
        # A later pass starts no earlier than the oldest open track, or (allowing sightings up to max_gap_s
        # late) max_gap_s before now; entries older than that minus the window can never suppress again.
        horizon = min([now, *(t.first_seen for t in self._tracks)])
        cutoff = horizon - timedelta(seconds=self.repeat_suppression_s + self.max_gap_s)
        self._recent = {text: seen for text, seen in self._recent.items() if seen >= cutoff}

    def _make_pass(self, sightings: Sequence[Sighting]) -> PlatePass:
        text, char_confidences = vote_plate(
            [(s.detection.text, s.detection.char_confidences) for s in sightings]
        )
        matching = [s for s in sightings if s.detection.text == text] or list(sightings)
        best = max(enumerate(matching), key=lambda p: (p[1].detection.confidence, -p[0]))[1]
        weakest = min(char_confidences, default=0.0)
        confidence = min(max(weakest * best.detection.detector_confidence, 0.0), 1.0)
        return PlatePass(
            sightings=tuple(sightings),
            text=text,
            char_confidences=char_confidences,
            confidence=confidence,
            best=best,
            motion=_motion(sightings, self.min_motion),
        )
