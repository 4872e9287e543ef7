"""Hit records (what the matcher publishes) encode to their HotlistHit's exact bytes, for any valid values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cordon.events import (
    EventDecodeError,
    HotlistEntry,
    HotlistEntryRecord,
    HotlistHit,
    HotlistHitRecord,
    decode,
    encode,
    utc_millis,
)
from stream.matching import HotlistIndex

_TIMES = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]
    ),
)
_UNIT = st.floats(min_value=0.0, max_value=1.0)
_PLATES = st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789", min_size=1, max_size=10)


@st.composite
def entries(draw: st.DrawFn) -> HotlistEntry:
    """Any valid entry: any text, times in any zone, with or without a validity window."""
    plate = draw(_PLATES)
    hotlist = draw(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True))
    valid_from = draw(st.none() | _TIMES)
    expires_at = draw(st.none() | _TIMES)
    if valid_from is not None and expires_at is not None and utc_millis(expires_at) <= utc_millis(valid_from):
        expires_at = None
    return HotlistEntry(
        entry_id=draw(st.just(f"{hotlist}:{plate}") | st.text(min_size=1, max_size=40)),
        plate=plate,
        hotlist=hotlist,
        source=draw(st.text(max_size=20)),
        category=draw(st.text(min_size=1, max_size=20)),
        priority=draw(st.integers(1, 4)),
        action=draw(st.text(min_size=1, max_size=60)),
        valid_from=valid_from,
        expires_at=expires_at,
        information=draw(st.text(max_size=60)),
        added_by=draw(st.text(max_size=20)),
    )


@st.composite
def hits(draw: st.DrawFn) -> HotlistHit:
    """Any valid hit."""
    return HotlistHit(
        hit_id=draw(st.uuids()),
        alert_id=draw(st.uuids()),
        sighting=draw(st.integers(1, 10**9)),
        read_id=draw(st.uuids()),
        camera_id=draw(st.text(min_size=1, max_size=64)),
        captured_at=draw(_TIMES),
        plate_read=draw(_PLATES),
        confidence=draw(_UNIT),
        direction=draw(st.sampled_from([None, "in", "out"])),
        entry=draw(entries()),
        hotlist_version=draw(st.integers(1, 2**40)),
        match_kind=draw(st.sampled_from(["exact", "confusion", "edit"])),
        match_score=draw(_UNIT),
        priority=draw(st.integers(1, 4)),
        matched_at=draw(_TIMES),
        crop_jpeg=draw(st.none() | st.binary(max_size=64)),
    )


def record_of(hit: HotlistHit) -> HotlistHitRecord:
    """The record a matcher makes of the values ``hit`` holds."""
    values: dict[str, Any] = {name: getattr(hit, name) for name in HotlistHitRecord.__struct_fields__}
    values["entry"] = HotlistEntryRecord.of(hit.entry)
    values["crop_jpeg"] = HotlistHitRecord.crop_text(hit.crop_jpeg)
    return HotlistHitRecord(**values)


def test_the_records_have_the_models_fields_in_their_order() -> None:
    assert HotlistHitRecord.__struct_fields__ == tuple(HotlistHit.model_fields)
    assert HotlistEntryRecord.__struct_fields__ == tuple(HotlistEntry.model_fields)


@settings(max_examples=400, deadline=None)
@given(hit=hits())
def test_a_record_encodes_to_its_hits_bytes_and_decodes_to_it(hit: HotlistHit) -> None:
    record = record_of(hit)

    assert encode(record) == encode(hit)
    assert record.to_event() == hit == decode(encode(record))


@settings(max_examples=100, deadline=None)
@given(listed=st.lists(entries(), min_size=1, max_size=8, unique_by=lambda e: e.entry_id))
def test_the_index_gives_back_each_entry_as_its_record(listed: list[HotlistEntry]) -> None:
    """What a hit carries of an entry is the entry as it was listed, field for field, after any rebuild."""
    index = HotlistIndex.build(listed, version=1)
    for position, entry in enumerate(listed):
        record = index._entries.entry_record(position)
        assert record == HotlistEntryRecord.of(entry)
        assert index._entries.entry(position) == entry


def test_a_record_of_bad_values_is_refused_by_name_when_made_an_event() -> None:
    hit = HotlistHit(
        hit_id=uuid.uuid4(),
        alert_id=uuid.uuid4(),
        sighting=1,
        read_id=uuid.uuid4(),
        camera_id="cam-a580",
        captured_at=datetime(2026, 11, 26, 12, tzinfo=UTC),
        plate_read="AB12CDE",
        confidence=0.9,
        entry=HotlistEntry(
            plate="AB12CDE",
            hotlist="pnc-stolen",
            entry_id="pnc-stolen:AB12CDE",
            category="stolen",
            priority=2,
            action="stop",
        ),
        hotlist_version=1,
        match_kind="exact",
        match_score=1.0,
        priority=2,
        matched_at=datetime(2026, 11, 26, 12, tzinfo=UTC),
    )
    bad = record_of(hit.model_copy(update={"priority": 9}))

    with pytest.raises(EventDecodeError, match="priority"):
        bad.to_event()


def test_event_times_must_be_aware() -> None:
    assert utc_millis(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))) == datetime(
        2026, 1, 2, 1, 4, 5, 678000, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        utc_millis(datetime(2026, 1, 2))
