"""From a voted vehicle pass to the shared PlateRead (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cordon.events import BBox
from edge.detections import Detection, Sighting
from edge.reads import direction_of, pass_to_read
from edge.tracking import PlateTracker

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _sighting(text: str, i: int, *, y: int) -> Sighting:
    return Sighting(
        detection=Detection(
            bbox=BBox(x1=100, y1=y, x2=300, y2=y + 45),
            text=text,
            char_confidences=(0.95,) * len(text),
            detector_confidence=0.8,
        ),
        captured_at=T0 + timedelta(milliseconds=100 * i),
        frame_index=i,
        crop_jpeg=b"\xff\xd8" + bytes([i]),
    )


def _pass(texts: list[str]) -> object:
    tracker = PlateTracker(max_gap_s=0.5)
    for i, text in enumerate(texts):
        tracker.update([_sighting(text, i, y=100 + 60 * i)], T0 + timedelta(milliseconds=100 * i))
    (plate_pass,) = tracker.flush()
    return plate_pass


def test_voted_and_corrected_read() -> None:
    # One frame misreads B as 8; voting fixes it. The pass moves down the image: inbound for this camera.
    read = pass_to_read(
        _pass(["AB12CDE", "A812CDE", "AB12CDE"]),  # type: ignore[arg-type]
        camera_id="cam1",
        edge_box_id="box1",
        inbound_motion="down",
    )
    assert read is not None
    assert read.plate == "AB12CDE"
    assert read.plate_format == "current"
    assert read.direction == "in"
    assert read.frames == 3
    assert read.crop_jpeg is not None
    assert read.char_confidences is not None
    assert len(read.char_confidences) == 7


def test_format_correction_applies_after_voting() -> None:
    read = pass_to_read(_pass(["AB12CDE"] * 1 + ["AB1ZCDE"] * 2), camera_id="c", edge_box_id="b")  # type: ignore[arg-type]
    assert read is not None
    assert read.plate_raw == "AB1ZCDE"
    assert read.plate == "AB12CDE"


def test_read_id_is_deterministic() -> None:
    plate_pass = _pass(["AB12CDE", "AB12CDE"])
    one = pass_to_read(plate_pass, camera_id="c", edge_box_id="b")  # type: ignore[arg-type]
    two = pass_to_read(plate_pass, camera_id="c", edge_box_id="b")  # type: ignore[arg-type]
    other = pass_to_read(plate_pass, camera_id="c2", edge_box_id="b")  # type: ignore[arg-type]
    assert one is not None
    assert two is not None
    assert other is not None
    assert one.read_id == two.read_id != other.read_id


@pytest.mark.parametrize(
    ("motion", "inbound", "expected"),
    [
        ("down", "down", "in"),
        ("up", "down", "out"),
        ("left", "down", None),
        ("down", None, None),
        (None, "up", None),
        ("right", "left", "out"),
    ],
)
def test_direction_of(motion: str | None, inbound: str | None, expected: str | None) -> None:
    assert direction_of(motion, inbound) == expected  # type: ignore[arg-type]
