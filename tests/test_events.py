"""The shared event schema: round trips, UTC milliseconds, version and field errors."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cordon.events import (
    BBox,
    CameraStatus,
    EventDecodeError,
    Heartbeat,
    PlateRead,
    SchemaVersionError,
    decode,
    encode,
    utc_now,
)
from tests.conftest import make_read


def test_plate_read_round_trip_keeps_crop_bytes() -> None:
    read = make_read().model_copy(update={"crop_jpeg": b"\xff\xd8\x00binary\xff"})
    assert decode(encode(read)) == read


def test_heartbeat_round_trip() -> None:
    beat = Heartbeat(
        edge_box_id="box1",
        sent_at=utc_now(),
        cameras=(CameraStatus(camera_id="cam1", state="reconnecting", fps=0.0, down_since=utc_now()),),
        spool_depth=3,
    )
    assert decode(encode(beat)) == beat


@given(st.datetimes(timezones=st.just(timezone(timedelta(hours=5, minutes=30)))))
def test_captured_at_is_utc_milliseconds(when: datetime) -> None:
    read = make_read().model_copy(update={"captured_at": when})
    parsed = decode(encode(read))
    assert isinstance(parsed, PlateRead)
    assert parsed.captured_at.utcoffset() == timedelta(0)
    assert parsed.captured_at.microsecond % 1000 == 0
    assert abs(parsed.captured_at - when) < timedelta(milliseconds=1)


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(ValueError, match="captured_at"):
        PlateRead(
            read_id=uuid.uuid4(),
            camera_id="c",
            edge_box_id="b",
            captured_at=datetime(2026, 1, 1),
            plate_raw="X1",
            plate="X1",
            confidence=0.5,
            bbox=BBox(x1=0, y1=0, x2=1, y2=1),
        )


def test_unknown_version_is_rejected_by_name() -> None:
    raw = json.loads(encode(make_read()))
    raw["schema_version"] = 2
    with pytest.raises(SchemaVersionError, match="schema_version=2"):
        decode(json.dumps(raw).encode())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "plate_read"}', "schema_version=None"),
        (b'{"type": "alien", "schema_version": 1}', "type"),
    ],
)
def test_bad_messages_are_named(data: bytes, message: str) -> None:
    with pytest.raises(EventDecodeError, match=message):
        decode(data)


def test_bad_field_names_field_and_value() -> None:
    raw = json.loads(encode(make_read()))
    raw["confidence"] = 7
    with pytest.raises(EventDecodeError, match=r"confidence.*7"):
        decode(json.dumps(raw).encode())


def test_char_confidences_must_match_plate() -> None:
    with pytest.raises(ValueError, match="char_confidences"):
        PlateRead(**(make_read().model_dump() | {"char_confidences": (0.5,)}))
