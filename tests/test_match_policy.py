"""The matcher's policy (stream.core.ReadMatcher): which matches raise hits, and its cheap pre-check."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cordon.events import BBox, HotlistEntry, PlateRead, encode, screened_plate_reads
from stream.core import MatchPolicy, ReadMatcher
from stream.matching import HotlistIndex
from stream.registry import CameraInfo, CameraRegistry

AT = datetime(2025, 6, 1, 12, tzinfo=UTC)
NOW = AT + timedelta(seconds=1)
LISTED = ("AB12CDE", "LV70XKM", "MA15KLO")
REGISTRY = CameraRegistry(
    [CameraInfo(id="arterial", road="A580", arterial=True), CameraInfo(id="estate", arterial=False)]
)


def _entries() -> list[HotlistEntry]:
    return [
        HotlistEntry(
            entry_id=f"{hotlist}:{plate}",
            plate=plate,
            hotlist=hotlist,
            category="stolen",
            priority=2,
            action="Stop",
        )
        for plate, hotlist in zip(LISTED, ("pnc-stolen", "local-intel", "pnc-stolen"), strict=True)
    ]


def _matcher() -> ReadMatcher:
    return ReadMatcher(
        HotlistIndex.build(_entries(), version=1),
        REGISTRY,
        policy=MatchPolicy(all_cameras_hotlists=frozenset({"pnc-stolen"})),
    )


def _read(
    plate: str, chars: tuple[float, ...] | None, *, confidence: float | None = None, camera: str = "arterial"
) -> PlateRead:
    return PlateRead(
        read_id=uuid.uuid4(),
        camera_id=camera,
        edge_box_id="box",
        captured_at=AT,
        plate_raw=plate,
        plate=plate,
        confidence=min(chars) if confidence is None and chars else (confidence or 0.5),
        char_confidences=chars,
        bbox=BBox(x1=0, y1=0, x2=10, y2=10),
    )


def _kinds(read: PlateRead) -> list[str]:
    return [hit.match_kind for hit in _matcher().match(read, now=NOW)]


def test_an_edit_raises_a_hit_only_where_the_ocr_was_unsure() -> None:
    sure, unsure = 0.98, 0.6
    # AB12CDF for AB12CDE: the last character differs.
    assert _kinds(_read("AB12CDF", (sure,) * 6 + (unsure,))) == ["edit"]
    assert _kinds(_read("AB12CDF", (unsure,) + (sure,) * 6)) == []  # unsure of the A, sure of the F
    assert _kinds(_read("AB12CDF", None, confidence=unsure)) == ["edit"]  # nothing to say where: the read
    assert _kinds(_read("AB12CDF", (sure,) * 7)) == []  # a confident read
    # AB2CDE for AB12CDE: "1" missed between B and 2; either neighbour unsure will do.
    assert _kinds(_read("AB2CDE", (sure, unsure, sure, sure, sure, sure))) == ["edit"]
    assert _kinds(_read("AB2CDE", (sure, sure, unsure, sure, sure, sure))) == ["edit"]
    assert _kinds(_read("AB2CDE", (unsure, sure, sure, sure, sure, sure))) == []
    # Confusions (B/8) and exact reads are not edits: the character rule does not apply to them.
    assert _kinds(_read("A812CDE", (sure,) * 7)) == ["confusion"]
    assert _kinds(_read("AB12CDE", (sure,) * 7)) == ["exact"]


def test_the_character_threshold_is_a_setting() -> None:
    matcher = ReadMatcher(
        HotlistIndex.build(_entries(), version=1),
        REGISTRY,
        policy=MatchPolicy(all_cameras_hotlists=frozenset({"pnc-stolen"}), edit_max_char_confidence=0.5),
    )
    read = _read("AB12CDF", (0.98,) * 6 + (0.6,))
    assert matcher.match(read, now=NOW) == []


unit = st.floats(0.3, 1.0)


@st.composite
def reads(draw: st.DrawFn) -> PlateRead:
    listed = draw(st.sampled_from(LISTED))
    i = draw(st.integers(0, len(listed) - 1))
    char = draw(st.sampled_from("AB18XZ2"))
    plate = draw(
        st.sampled_from(
            [
                listed,
                listed[:i] + char + listed[i + 1 :],
                listed[:i] + listed[i + 1 :],
                listed[:i] + char + listed[i:],
            ]
        )
    )
    chars = draw(st.none() | st.tuples(*[unit] * len(plate)))
    confidence = min(chars) if chars else draw(unit)
    return _read(plate, chars, confidence=confidence, camera=draw(st.sampled_from(["arterial", "estate"])))


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(reads(), max_size=12))
def test_would_hit_says_which_reads_raise_hits_also_from_their_screened_messages(
    batch: list[PlateRead],
) -> None:
    hits = _matcher().match_batch(batch, now=NOW)
    expected = [bool(of_read) for of_read in hits]
    assert _matcher().would_hit(batch) == expected
    screened = screened_plate_reads([encode(read) for read in batch])
    assert all(view is not None for view in screened)
    views = [view for view in screened if view is not None]
    assert _matcher().would_hit(views) == expected
    # The matches found on the screened reads, handed back, make the same hits as a fresh look-up.
    found = _matcher().hit_matches(views)
    assert [matches is not None for matches in found] == expected
    again = _matcher().match_batch(batch, now=NOW, found=found)
    assert again == hits
    # Each hit record is a valid HotlistHit, whose own bytes are the record's.
    for hit in (hit for of_read in hits for hit in of_read):
        assert encode(hit.to_event()) == encode(hit)


@settings(max_examples=300, deadline=None)
@given(
    confidences=st.lists(st.floats(0.0, 1.0), max_size=20),
    max_edits=st.sampled_from([0, 1]),
    threshold=st.floats(0.0, 1.0),
)
def test_max_edits_for_each_is_max_edits_for_of_each(
    confidences: list[float], max_edits: int, threshold: float
) -> None:
    policy = MatchPolicy(max_edits=max_edits, edit_max_read_confidence=threshold)
    each = policy.max_edits_for_each(confidences)
    assert each == [policy.max_edits_for(confidence) for confidence in confidences]
    assert all(type(edits) is int for edits in each)
