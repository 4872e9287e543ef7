"""Sizing from measurements (pure): a worked example by hand, and properties over any inputs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.errors import SizingError
from hardware.sizing import StreamCost, camera_load_ms, size_fleet, slowest, stream_cost


def test_worked_example() -> None:
    # decode 500 fps -> 2 ms a frame; pipeline 50 fps -> 20 ms a frame, so 18 ms beyond decoding.
    cost = stream_cost(resolution="1080p", decode_fps=500.0, processed_fps=50.0, label="box A")
    assert cost.decode_ms == pytest.approx(2.0)
    assert cost.process_ms == pytest.approx(18.0)
    result = size_fleet(cost, cameras=12, fps_needed=5.0, camera_fps=25.0, headroom=0.3)
    assert result.decode_load_ms == pytest.approx(50.0)  # 25 frames x 2 ms
    assert result.process_load_ms == pytest.approx(90.0)  # 5 frames x 18 ms
    assert result.camera_load_ms == pytest.approx(140.0)
    assert result.budget_ms == pytest.approx(700.0)
    assert result.cameras_per_box == 5  # 5 x 140 = 700 fits exactly
    assert result.boxes == 3
    assert result.busiest_box_share == pytest.approx(1.0)
    assert result.solo_fps == 25.0  # (1000 - 50) / 18 = 52.8 fps, capped at what the camera sends


def test_a_box_too_slow_for_one_camera_gives_no_box_count() -> None:
    cost = StreamCost(resolution="1080p", decode_ms=10.0, process_ms=100.0)
    result = size_fleet(cost, cameras=3, fps_needed=10.0, camera_fps=25.0, headroom=0.3)
    assert result.cameras_per_box == 0
    assert result.boxes is None
    assert result.busiest_box_share is None
    assert result.solo_fps == pytest.approx(7.5)  # (1000 - 250) / 100


def test_decoding_alone_can_exceed_the_box() -> None:
    result = size_fleet(StreamCost("1080p", 50.0, 10.0), cameras=1, fps_needed=1.0, camera_fps=25.0)
    assert result.solo_fps == 0.0
    assert result.boxes is None


def test_pipeline_faster_than_decode_is_noise_not_negative_cost() -> None:
    assert stream_cost(resolution="720p", decode_fps=100.0, processed_fps=120.0).process_ms == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cameras": 0}, "cameras must be >= 1"),
        ({"fps_needed": 30.0}, "fps_needed must be in"),
        ({"fps_needed": 0.0}, "fps_needed must be in"),
        ({"headroom": 0.95}, "headroom must be in"),
        ({"camera_fps": 0.0}, "camera_fps must be in"),
    ],
)
def test_out_of_range_questions_are_refused(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float] = {"cameras": 4, "fps_needed": 10.0, "camera_fps": 25.0, "headroom": 0.3} | kwargs
    with pytest.raises(SizingError, match=message):
        size_fleet(StreamCost("720p", 2.0, 20.0), **args)  # type: ignore[arg-type]


def test_invalid_costs_are_refused() -> None:
    with pytest.raises(SizingError, match="decode_ms must be > 0"):
        StreamCost("720p", 0.0, 1.0)
    with pytest.raises(SizingError, match="process_ms must be >= 0"):
        StreamCost("720p", 1.0, math.nan)
    with pytest.raises(SizingError, match="rates must be > 0"):
        stream_cost(resolution="720p", decode_fps=0.0, processed_fps=1.0)
    with pytest.raises(SizingError, match="no measurements"):
        slowest([], camera_fps=25.0, fps_needed=5.0)


# --- Properties --------------------------------------------------------------------------------------------

decode_ms = st.floats(0.05, 200.0)
process_ms = st.floats(0.0, 2000.0)
camera_fps = st.floats(1.0, 60.0)
share = st.floats(0.01, 1.0)  # fps_needed as a share of camera_fps
headroom = st.floats(0.0, 0.9)
cameras = st.integers(1, 10_000)


@given(decode_ms, process_ms, camera_fps, share, headroom, cameras)
def test_boxes_cover_the_cameras_with_no_box_to_spare(
    d: float, p: float, fps: float, need: float, h: float, n: int
) -> None:
    result = size_fleet(
        StreamCost("720p", d, p), cameras=n, fps_needed=fps * need, camera_fps=fps, headroom=h
    )
    if result.boxes is None:
        assert result.cameras_per_box == 0
        assert result.camera_load_ms > result.budget_ms * (1 - 1e-9)
        return
    assert result.boxes * result.cameras_per_box >= n
    assert (result.boxes - 1) * result.cameras_per_box < n
    # per box is the most that fits: k cameras fit the budget, k + 1 do not
    assert result.cameras_per_box * result.camera_load_ms <= result.budget_ms * (1 + 1e-9)
    assert (result.cameras_per_box + 1) * result.camera_load_ms > result.budget_ms * (1 - 1e-9)
    assert result.busiest_box_share is not None
    assert 0 < result.busiest_box_share <= 1 + 1e-9


@given(decode_ms, process_ms, camera_fps, share, headroom, cameras, cameras)
def test_more_cameras_never_need_fewer_boxes(
    d: float, p: float, fps: float, need: float, h: float, a: int, b: int
) -> None:
    small, large = sorted((a, b))
    cost = StreamCost("720p", d, p)
    few = size_fleet(cost, cameras=small, fps_needed=fps * need, camera_fps=fps, headroom=h)
    many = size_fleet(cost, cameras=large, fps_needed=fps * need, camera_fps=fps, headroom=h)
    assert few.cameras_per_box == many.cameras_per_box
    if few.boxes is not None and many.boxes is not None:
        assert few.boxes <= many.boxes


@given(decode_ms, process_ms, camera_fps, share, share, headroom, headroom)
def test_asking_more_of_a_box_never_fits_more_cameras(
    d: float, p: float, fps: float, need_a: float, need_b: float, h_a: float, h_b: float
) -> None:
    cost = StreamCost("720p", d, p)
    lo_need, hi_need = sorted((need_a, need_b))
    lo_room, hi_room = sorted((h_a, h_b))
    easy = size_fleet(cost, cameras=1, fps_needed=fps * lo_need, camera_fps=fps, headroom=lo_room)
    hard = size_fleet(cost, cameras=1, fps_needed=fps * hi_need, camera_fps=fps, headroom=hi_room)
    assert hard.cameras_per_box <= easy.cameras_per_box


@given(decode_ms, process_ms, st.floats(1.0, 4.0), camera_fps, share, headroom)
def test_a_faster_box_fits_proportionally_more(
    d: float, p: float, speedup: float, fps: float, need: float, h: float
) -> None:
    slow = size_fleet(StreamCost("720p", d, p), cameras=1, fps_needed=fps * need, camera_fps=fps, headroom=h)
    fast = size_fleet(
        StreamCost("720p", d / speedup, p / speedup),
        cameras=1,
        fps_needed=fps * need,
        camera_fps=fps,
        headroom=h,
    )
    assert fast.cameras_per_box >= math.floor(slow.cameras_per_box * speedup * (1 - 1e-9))
    assert fast.solo_fps >= slow.solo_fps * (1 - 1e-9)


@given(st.lists(st.tuples(decode_ms, process_ms), min_size=1, max_size=6), camera_fps, share)
def test_slowest_is_the_heaviest_measurement(
    costs: list[tuple[float, float]], fps: float, need: float
) -> None:
    streams = [StreamCost("720p", d, p, label=str(i)) for i, (d, p) in enumerate(costs)]
    worst = slowest(streams, camera_fps=fps, fps_needed=fps * need)
    loads = [camera_load_ms(s, camera_fps=fps, fps_needed=fps * need) for s in streams]
    assert camera_load_ms(worst, camera_fps=fps, fps_needed=fps * need) == max(loads)
