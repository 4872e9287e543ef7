"""Tests of per-character plate voting and the plate tracker (edge.tracking)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edge.tracking
from cordon.events import BBox
from edge.detections import Detection, Sighting
from edge.tracking import PlatePass, PlateTracker, drop_duplicate_sightings, text_similarity, vote_plate

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
PLATE_W, PLATE_H = 120, 30


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sighting(
    text: str,
    t: float,
    *,
    frame: int | None = None,
    x: float = 300.0,
    y: float = 400.0,
    conf: float | Sequence[float] = 0.9,
    detector: float = 0.9,
) -> Sighting:
    """A sighting of ``text`` with its plate centred at ``(x, y)``, ``t`` seconds after T0."""
    confs = tuple(conf) if isinstance(conf, Sequence) else (conf,) * len(text)
    box = BBox(
        x1=round(x - PLATE_W / 2),
        y1=round(y - PLATE_H / 2),
        x2=round(x + PLATE_W / 2),
        y2=round(y + PLATE_H / 2),
    )
    detection = Detection(bbox=box, text=text, char_confidences=confs, detector_confidence=detector)
    return Sighting(
        detection=detection, captured_at=at(t), frame_index=frame if frame is not None else round(t * 25)
    )


def run(
    tracker: PlateTracker, frames: Sequence[tuple[float, Sequence[Sighting]]], end: float
) -> list[PlatePass]:
    """Feed ``(time, sightings)`` frames with ``now`` = frame time, then advance to ``end``."""
    passes: list[PlatePass] = []
    for t, frame in frames:
        passes += tracker.update(frame, at(t))
    passes += tracker.update([], at(end))
    return passes


def test_public_api_is_pinned() -> None:
    assert set(edge.tracking.__all__) == {
        "Motion",
        "PlatePass",
        "PlateTracker",
        "drop_duplicate_sightings",
        "text_similarity",
        "vote_plate",
    }


# --- vote_plate ------------------------------------------------------------------------------------------


def test_vote_takes_the_per_position_winner() -> None:
    text, support = vote_plate([("AB12CDE", [0.9] * 7), ("AB12CDE", [0.9] * 7), ("A812CDE", [0.95] * 7)])
    assert text == "AB12CDE"
    assert support[1] == pytest.approx(1.8 / 3)
    assert support[0] == pytest.approx((0.9 + 0.9 + 0.95) / 3)


def test_vote_picks_the_length_with_most_summed_confidence() -> None:
    text, _ = vote_plate([("AB12CDE", [0.8] * 7), ("AB12CDE", [0.8] * 7), ("B12CDE", [0.99] * 6)])
    assert text == "AB12CDE"
    # A single confident long read does not beat two shorter ones: each read weighs its mean confidence.
    # (Summing raw character confidences would favour the long read here: 7.0 against 6.6.)
    text, _ = vote_plate([("AB12CDE", [1.0] * 7), ("B12CDE", [0.55] * 6), ("B12CDE", [0.55] * 6)])
    assert text == "B12CDE"


def test_vote_mixes_characters_from_different_reads() -> None:
    text, _ = vote_plate([("AB12CDX", [0.9] * 7), ("XB12CDE", [0.9] * 7), ("AB12CDE", [0.5] * 7)])
    assert text == "AB12CDE"


def test_vote_of_nothing_is_empty() -> None:
    assert vote_plate([]) == ("", ())
    assert vote_plate([("", ())]) == ("", ())
    assert vote_plate([("", ()), ("A1", (0.5, 0.5))]) == ("A1", (0.5, 0.5))


@pytest.mark.parametrize(
    "candidates",
    [
        [("AB1", (0.9, 0.9))],
        [("AB1", (0.9, 1.1, 0.9))],
        [("AB1", (0.9, -0.1, 0.9))],
        [("AB1", (0.9, math.nan, 0.9))],
    ],
)
def test_vote_rejects_bad_confidences(candidates: list[tuple[str, tuple[float, ...]]]) -> None:
    with pytest.raises(ValueError, match="AB1"):
        vote_plate(candidates)


plate_texts = st.text(alphabet="AB128O0", min_size=1, max_size=5)
confidence = st.floats(0.0, 1.0)


@st.composite
def candidate(draw: st.DrawFn, texts: st.SearchStrategy[str] = plate_texts) -> tuple[str, tuple[float, ...]]:
    text = draw(texts)
    return text, tuple(draw(st.lists(confidence, min_size=len(text), max_size=len(text))))


@given(candidate(), st.integers(1, 8))
def test_vote_of_copies_returns_the_text(cand: tuple[str, tuple[float, ...]], n: int) -> None:
    text, support = vote_plate([cand] * n)
    assert text == cand[0]
    assert support == pytest.approx(cand[1])


@given(
    st.lists(candidate(), min_size=1, max_size=8).flatmap(
        lambda cs: st.tuples(st.just(cs), st.permutations(cs))
    )
)
def test_vote_does_not_depend_on_order(case: tuple[list[tuple[str, tuple[float, ...]]], ...]) -> None:
    candidates, shuffled = case
    assert vote_plate(shuffled) == vote_plate(candidates)


@given(st.lists(candidate(), max_size=8))
def test_vote_support_is_a_probability_per_character(candidates: list[tuple[str, tuple[float, ...]]]) -> None:
    text, support = vote_plate(candidates)
    assert len(support) == len(text)
    assert all(0.0 <= s <= 1.0 for s in support)
    assert (text == "") == all(t == "" for t, _ in candidates)


@given(
    st.text(alphabet="ABC123", min_size=1, max_size=7).flatmap(
        lambda truth: st.tuples(
            st.just(truth),
            st.lists(
                st.lists(st.sampled_from("ABC123"), min_size=len(truth), max_size=len(truth)), min_size=1
            ),
        )
    ),
    st.floats(0.05, 1.0),
)
def test_vote_majority_wins_each_position(case: tuple[str, list[list[str]]], conf: float) -> None:
    truth, reads = case
    texts = [truth, *("".join(r) for r in reads)]
    voted, _ = vote_plate([(t, [conf] * len(t)) for t in texts])
    for pos, ch in enumerate(voted):
        counts = Counter(t[pos] for t in texts).most_common()
        if len(counts) == 1 or counts[0][1] > counts[1][1]:
            assert ch == counts[0][0]


def test_text_similarity() -> None:
    assert text_similarity("AB12CDE", "AB12CDE") == 1.0
    assert text_similarity("AB12CDE", "AB12CDF") == pytest.approx(6 / 7)
    assert text_similarity("AB12CDE", "B12CDE") == pytest.approx(6 / 7)
    assert text_similarity("", "") == 1.0
    assert text_similarity("ABC", "") == 0.0
    assert text_similarity("ABC", "XYZ") == 0.0


# --- PlateTracker: plain cases ---------------------------------------------------------------------------


def test_one_vehicle_yields_one_pass_once_its_track_ends() -> None:
    tracker = PlateTracker()
    frames = [(i * 0.2, [sighting("AB12CDE", i * 0.2, y=300 + 20 * i)]) for i in range(5)]
    for t, frame in frames:
        assert tracker.update(frame, at(t)) == []
    assert tracker.update([], at(0.8 + 1.0)) == []  # exactly max_gap_s: not yet ended
    assert tracker.open_tracks == 1
    (plate_pass,) = tracker.update([], at(0.8 + 1.01))
    assert plate_pass.text == "AB12CDE"
    assert plate_pass.sightings == tuple(s for _, f in frames for s in f)
    assert (plate_pass.first_seen, plate_pass.last_seen) == (at(0), at(0.8))
    assert plate_pass.motion == "down"
    assert plate_pass.confidence == pytest.approx(0.9 * 0.9)
    assert tracker.open_tracks == 0


def test_noisy_reads_are_voted_and_the_best_sighting_has_the_voted_text() -> None:
    reads = [("AB12CDE", 0.9), ("A812CDE", 0.99), ("AB12CDE", 0.95), ("AB12CDE", 0.8)]
    sightings = [sighting(text, i * 0.1, conf=c) for i, (text, c) in enumerate(reads)]
    passes = run(
        PlateTracker(), [(s.captured_at.timestamp() - T0.timestamp(), [s]) for s in sightings], end=5
    )
    (plate_pass,) = passes
    assert plate_pass.text == "AB12CDE"
    assert plate_pass.best is sightings[2]  # the most confident read of the voted text, not the 0.99 A812CDE
    assert plate_pass.char_confidences[1] == pytest.approx((0.9 + 0.95 + 0.8) / 4)
    assert plate_pass.motion is None  # it did not move


@pytest.mark.parametrize(
    ("dx", "dy", "motion"),
    [(0, 40, "down"), (0, -40, "up"), (40, 5, "right"), (-40, -5, "left"), (10, 10, None)],
)
def test_motion_is_the_dominant_image_direction(dx: float, dy: float, motion: str | None) -> None:
    frames = [(i * 0.1, [sighting("AB12CDE", i * 0.1, x=500 + dx * i, y=500 + dy * i)]) for i in range(4)]
    (plate_pass,) = run(PlateTracker(), frames, end=5)
    assert plate_pass.motion == motion


def test_short_tracks_are_discarded_as_noise() -> None:
    tracker = PlateTracker(min_sightings=2)
    assert run(tracker, [(0.0, [sighting("AB12CDE", 0.0)])], end=5) == []
    assert tracker.discarded == 1
    (plate_pass,) = run(PlateTracker(min_sightings=1), [(0.0, [sighting("AB12CDE", 0.0)])], end=5)
    assert len(plate_pass.sightings) == 1


def test_two_vehicles_in_the_same_frames_yield_two_passes() -> None:
    frames = [
        (
            i * 0.2,
            [
                sighting("AB12CDE", i * 0.2, x=200, y=300 + 30 * i),
                sighting("XY34ZZW", i * 0.2, x=900, y=700 - 30 * i),
            ],
        )
        for i in range(6)
    ]
    passes = run(PlateTracker(), frames, end=5)
    assert sorted((p.text, p.motion, len(p.sightings)) for p in passes) == [
        ("AB12CDE", "down", 6),
        ("XY34ZZW", "up", 6),
    ]


def test_a_track_takes_at_most_one_sighting_per_frame() -> None:
    # A second plate, one character different, appears next to a tracked one: it passes both gates of the
    # existing track, but that track already has its own plate in this frame.
    frames = [(0.0, [sighting("AB12CDE", 0.0, x=300)])]
    frames += [
        (i * 0.1, [sighting("AB12CDE", i * 0.1, x=300), sighting("AB12CDF", i * 0.1, x=500)])
        for i in range(1, 4)
    ]
    passes = run(PlateTracker(), frames, end=5)
    assert sorted((p.text, len(p.sightings)) for p in passes) == [("AB12CDE", 4), ("AB12CDF", 3)]


def test_a_different_plate_in_the_same_place_starts_a_new_track() -> None:
    frames = [(0.0, [sighting("AB12CDE", 0.0)]), (0.1, [sighting("AB12CDE", 0.1)])]
    frames += [(0.2, [sighting("XY34ZZW", 0.2)]), (0.3, [sighting("XY34ZZW", 0.3)])]
    assert sorted(p.text for p in run(PlateTracker(), frames, end=5)) == ["AB12CDE", "XY34ZZW"]


def test_a_far_jump_starts_a_new_track() -> None:
    frames = [(0.0, [sighting("AB12CDE", 0.0, x=100)]), (0.1, [sighting("AB12CDE", 0.1, x=100)])]
    frames += [(0.2, [sighting("AB12CDE", 0.2, x=900)]), (0.3, [sighting("AB12CDE", 0.3, x=900)])]
    tracker = PlateTracker(min_sightings=1, repeat_suppression_s=0.0)
    assert [p.text for p in run(tracker, frames, end=5)] == ["AB12CDE", "AB12CDE"]


def test_occluded_vehicle_split_into_two_tracks_yields_one_pass() -> None:
    before = [(i * 0.1, [sighting("AB12CDE", i * 0.1, y=300 + 10 * i)]) for i in range(4)]
    after = [(3 + i * 0.1, [sighting("AB12CDE", 3 + i * 0.1, y=400 + 10 * i)]) for i in range(4)]
    tracker = PlateTracker()
    (plate_pass,) = run(tracker, before + after, end=10)
    assert plate_pass.sightings == tuple(s for _, f in before for s in f)
    assert tracker.suppressed == 1
    # Without the window, the same frames give two passes: the suppression is what merges them.
    assert len(run(PlateTracker(repeat_suppression_s=0.0), before + after, end=10)) == 2
    # A window shorter than the occlusion does not suppress either.
    assert len(run(PlateTracker(repeat_suppression_s=2.0), before + after, end=10)) == 2


def test_suppression_window_slides_with_each_suppressed_fragment() -> None:
    # Seen every 8 s for 2 frames: each fragment is within 10 s of the previous one, though not of the first.
    frames = [(k * 8 + d, [sighting("AB12CDE", k * 8 + d)]) for k in range(4) for d in (0.0, 0.1)]
    tracker = PlateTracker()
    assert len(run(tracker, frames, end=40)) == 1
    assert tracker.suppressed == 3
    # Once the window has passed, the same plate is a new pass.
    assert len(tracker.update([sighting("AB12CDE", 60), sighting("AB12CDE", 60.1)], at(62))) == 1


def test_flush_ends_open_tracks() -> None:
    tracker = PlateTracker()
    tracker.update([sighting("AB12CDE", 0.0, x=200), sighting("XY34ZZW", 0.0, x=900)], at(0.0))
    tracker.update([sighting("AB12CDE", 0.1, x=200), sighting("XY34ZZW", 0.1, x=900)], at(0.1))
    tracker.update([sighting("QQ99QQQ", 0.1, x=600, frame=99)], at(0.1))
    assert tracker.open_tracks == 3
    passes = tracker.flush()
    assert sorted(p.text for p in passes) == ["AB12CDE", "XY34ZZW"]
    assert (tracker.open_tracks, tracker.discarded) == (0, 1)
    assert tracker.flush() == []


def test_sightings_within_one_call_may_come_in_any_order() -> None:
    sightings = [sighting("AB12CDE", i * 0.1, y=300 + 10 * i) for i in range(5)]
    tracker = PlateTracker()
    assert tracker.update(list(reversed(sightings)), at(0.4)) == []
    (plate_pass,) = tracker.flush()
    assert plate_pass.sightings == tuple(sightings)


def test_empty_reads_are_ignored() -> None:
    tracker = PlateTracker()
    tracker.update([sighting("", 0.0), sighting("", 0.1, x=900)], at(0.1))
    assert tracker.open_tracks == 0


def test_tracking_is_deterministic() -> None:
    frames = [
        (i * 0.2, [sighting("AB12CDE", i * 0.2, x=200, y=300 + 30 * i), sighting("XY34ZZW", i * 0.2, x=600)])
        for i in range(6)
    ]
    assert run(PlateTracker(), frames, end=5) == run(PlateTracker(), frames, end=5)


def boxed(text: str, t: float, box: tuple[int, int, int, int], detector: float, frame: int) -> Sighting:
    detection = Detection(
        bbox=BBox(x1=box[0], y1=box[1], x2=box[2], y2=box[3]),
        text=text,
        char_confidences=(0.9,) * len(text),
        detector_confidence=detector,
    )
    return Sighting(detection=detection, captured_at=at(t), frame_index=frame)


# Boxes the real detector returned for one approaching plate (SN68WPU in the edge end-to-end test's video,
# frames 620-642): from frame 626 on, a second, looser box around the plate, IoU about 0.34 with the tight.
SEEN = [
    (620, [(708, 358, 935, 410, 0.85)]),
    (625, [(714, 420, 947, 472, 0.89)]),
    (626, [(710, 432, 946, 486, 0.74), (689, 418, 1038, 524, 0.43)]),
    (627, [(650, 424, 1042, 537, 0.75), (709, 446, 948, 503, 0.42)]),
    (628, [(711, 461, 950, 513, 0.67), (650, 434, 1046, 551, 0.59)]),
    (630, [(661, 467, 1032, 584, 0.58), (714, 487, 956, 540, 0.50)]),
    (631, [(715, 502, 960, 555, 0.54), (683, 485, 1038, 595, 0.42)]),
    (633, [(656, 510, 1055, 630, 0.69), (716, 533, 961, 584, 0.60)]),
    (635, [(617, 526, 1063, 651, 0.67), (714, 560, 966, 617, 0.50)]),
    (638, [(627, 558, 1065, 688, 0.60), (715, 606, 977, 663, 0.41)]),
    (640, [(719, 639, 981, 696, 0.55), (685, 610, 1073, 719, 0.45)]),
    (642, [(719, 672, 985, 719, 0.79), (710, 622, 1053, 719, 0.49)]),
]


def test_a_second_box_around_the_same_plate_does_not_split_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [(n / 25, [boxed("SN68WPU", n / 25, b[:4], b[4], n) for b in boxes]) for n, boxes in SEEN]
    tracker = PlateTracker(min_motion=0.2)
    (plate_pass,) = run(tracker, frames, end=40)
    assert (len(plate_pass.sightings), plate_pass.motion, tracker.suppressed) == (len(SEEN), "down", 0)
    # The better box of each frame is the one kept.
    assert [s.detection.detector_confidence for s in plate_pass.sightings] == [b[0][4] for _, b in SEEN]
    # Without dropping duplicates the looser boxes start a second track. Repeat suppression then publishes
    # whichever track ends first: live, that was once a 3-sighting fragment too short to give a direction.
    monkeypatch.setattr(edge.tracking, "drop_duplicate_sightings", lambda frame, _: list(frame))
    split = PlateTracker(min_motion=0.2)
    passes = run(split, frames, end=40)
    assert (len(passes), split.suppressed) == (1, 1), "two tracks for one plate"


def test_plates_side_by_side_are_not_duplicates() -> None:
    frame = [sighting("AB12CDE", 0.0, x=300), sighting("XY34ZZW", 0.0, x=300 + PLATE_W * 0.8)]
    assert drop_duplicate_sightings(frame, 0.7) == frame


boxes = st.tuples(st.integers(0, 1200), st.integers(0, 680), st.integers(4, 400), st.integers(4, 120)).map(
    lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3])
)


@given(
    st.lists(st.tuples(boxes, st.floats(0.05, 1.0)), max_size=8),
    st.floats(0.05, 1.0),
)
def test_dropping_duplicates_keeps_the_best_and_leaves_no_overlap(
    found: list[tuple[tuple[int, int, int, int], float]], min_overlap: float
) -> None:
    frame = [boxed("AB12CDE", 0.0, box, detector, 0) for box, detector in found]
    kept = drop_duplicate_sightings(frame, min_overlap)
    kept_ids = [id(s) for s in kept]
    assert [id(s) for s in frame if id(s) in kept_ids] == kept_ids, "a subset, in the given order"
    if frame:
        assert max(s.detection.confidence for s in kept) == max(s.detection.confidence for s in frame)
    for i, a in enumerate(kept):
        for b in kept[i + 1 :]:
            assert edge.tracking._overlap(a.detection.bbox, b.detection.bbox) < min_overlap
    for dropped in (s for s in frame if id(s) not in kept_ids):
        assert any(
            edge.tracking._overlap(dropped.detection.bbox, k.detection.bbox) >= min_overlap
            and k.detection.confidence >= dropped.detection.confidence
            for k in kept
        ), "only a sighting that a better one covers is dropped"
    assert [id(s) for s in drop_duplicate_sightings(kept, min_overlap)] == kept_ids


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"max_gap_s": 0.0}, "max_gap_s"),
        ({"min_iou": 1.5}, "min_iou"),
        ({"max_centre_jump": -1.0}, "max_centre_jump"),
        ({"min_text_similarity": 2.0}, "min_text_similarity"),
        ({"min_sightings": 0}, "min_sightings"),
        ({"repeat_suppression_s": -1.0}, "repeat_suppression_s"),
        ({"min_motion": -0.1}, "min_motion"),
        ({"duplicate_overlap": 0.0}, "duplicate_overlap"),
    ],
)
def test_bad_options_are_rejected_by_name(options: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        PlateTracker(**options)  # type: ignore[arg-type]


# --- PlateTracker: simulated traffic ---------------------------------------------------------------------

PLATES = st.tuples(
    st.sampled_from("ABCDEFGHJKLMNOPRSTUVWXY"),
    st.sampled_from("ABCDEFGHJKLMNOPRSTUVWXY"),
    st.integers(0, 99).map(lambda n: f"{n:02d}"),
    st.text(alphabet="ABCDEFGHJKLMNOPRSTUVWXYZ", min_size=3, max_size=3),
).map("".join)


@dataclass(frozen=True)
class Vehicle:
    text: str
    lane_x: float
    start: int  # first frame it is seen in
    frames: int
    y0: float
    vy: float  # pixels per second
    noise: dict[int, tuple[int, str]]  # frame offset -> (position, wrong character)
    confs: tuple[float, ...]  # per frame offset


@st.composite
def vehicle(draw: st.DrawFn, *, lane_x: float, start: int, text: str) -> Vehicle:
    frames = draw(st.integers(3, 12))
    # A strict minority of frames reads one character wrong, with no more confidence than the true reads.
    noisy = draw(st.sets(st.integers(0, frames - 1), max_size=(frames - 1) // 2))
    noise = {}
    for offset in sorted(noisy):
        pos = draw(st.integers(0, len(text) - 1))
        noise[offset] = (
            pos,
            draw(st.sampled_from([c for c in "0123456789ABCDEFGHJKLMNPRSTUVWXYZ" if c != text[pos]])),
        )
    confs = tuple(
        draw(st.floats(0.3, 0.7) if offset in noise else st.floats(0.7, 1.0)) for offset in range(frames)
    )
    return Vehicle(
        text, lane_x, start, frames, draw(st.floats(450, 550)), draw(st.floats(-30, 30)), noise, confs
    )


@st.composite
def traffic(draw: st.DrawFn) -> tuple[list[Vehicle], list[float]]:
    """One or two vehicles in separate lanes; the second is seen while the first still is."""
    first = draw(vehicle(lane_x=250.0, start=0, text=draw(PLATES)))
    vehicles = [first]
    if draw(st.booleans()):
        text = draw(PLATES.filter(lambda t: t != first.text))
        vehicles.append(draw(vehicle(lane_x=1000.0, start=draw(st.integers(0, first.frames - 1)), text=text)))
    n_frames = max(v.start + v.frames for v in vehicles)
    gaps = draw(st.lists(st.floats(0.02, 0.9), min_size=n_frames, max_size=n_frames))  # all under max_gap_s
    times = [math.fsum(gaps[:i]) for i in range(n_frames)]
    return vehicles, times


def frame_sightings(vehicles: Sequence[Vehicle], times: Sequence[float], index: int) -> list[Sighting]:
    out = []
    for v in vehicles:
        offset = index - v.start
        if not 0 <= offset < v.frames:
            continue
        text = v.text
        if offset in v.noise:
            pos, wrong = v.noise[offset]
            text = text[:pos] + wrong + text[pos + 1 :]
        t = times[index]
        y = v.y0 + v.vy * (t - times[v.start])
        out.append(sighting(text, t, frame=index, x=v.lane_x, y=y, conf=v.confs[offset]))
    return out


@settings(deadline=None, max_examples=150)
@given(traffic(), st.booleans())
def test_each_simulated_vehicle_yields_exactly_one_pass(
    case: tuple[list[Vehicle], list[float]], flush: bool
) -> None:
    vehicles, times = case
    tracker = PlateTracker()
    passes: list[PlatePass] = []
    for index, t in enumerate(times):
        passes += tracker.update(frame_sightings(vehicles, times, index), at(t))
    if flush:
        passes += tracker.flush()
    else:
        passes += tracker.update([], at(times[-1] + 1.5))
        assert tracker.flush() == []
    assert tracker.open_tracks == 0
    assert sorted(p.text for p in passes) == sorted(v.text for v in vehicles)
    frames_by_text = {p.text: len(p.sightings) for p in passes}
    assert frames_by_text == {v.text: v.frames for v in vehicles}
    assert tracker.suppressed == tracker.discarded == 0


@settings(deadline=None)
@given(
    PLATES,
    st.integers(2, 6),
    st.integers(2, 6),
    st.floats(1.05, 9.5),  # occlusion longer than max_gap_s, shorter than repeat_suppression_s
    st.floats(0.04, 0.5),
)
def test_an_occluded_vehicle_yields_one_pass(
    text: str, before: int, after: int, gap: float, step: float
) -> None:
    first = [sighting(text, i * step, frame=i) for i in range(before)]
    resume = (before - 1) * step + gap
    second = [sighting(text, resume + i * step, frame=before + i, y=420) for i in range(after)]
    tracker = PlateTracker()
    passes: list[PlatePass] = []
    for s in first + second:
        passes += tracker.update([s], s.captured_at)
    passes += tracker.update([], second[-1].captured_at + timedelta(seconds=2))
    assert [p.text for p in passes] == [text]
    assert passes[0].sightings == tuple(first)
    assert tracker.suppressed == 1
