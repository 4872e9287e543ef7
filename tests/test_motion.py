"""Motion gating on real pixel data."""

from __future__ import annotations

import numpy as np

from edge.motion import MotionGate, roi_mask


def _frame(x: int | None) -> np.ndarray:
    image = np.full((360, 640, 3), 90, np.uint8)
    if x is not None:
        image[200:300, x : x + 120] = (30, 30, 40)  # a dark "car"
    return image


def test_static_scene_has_no_motion_after_hold() -> None:
    gate = MotionGate(hold_frames=2)
    results = [gate.has_motion(_frame(None)) for _ in range(6)]
    assert results == [True, True, True, False, False, False]


def test_moving_object_opens_gate() -> None:
    gate = MotionGate(hold_frames=0)
    gate.has_motion(_frame(None))
    assert gate.has_motion(_frame(100))
    assert gate.has_motion(_frame(130))
    assert not gate.has_motion(_frame(130))


def test_motion_outside_roi_is_ignored() -> None:
    # ROI: the left quarter of the frame; the car moves on the right.
    gate = MotionGate(roi=[(0, 0), (0.25, 0), (0.25, 1), (0, 1)], hold_frames=0)
    gate.has_motion(_frame(400))
    assert not gate.has_motion(_frame(440))
    assert gate.has_motion(_frame(40))


def test_roi_mask_covers_polygon() -> None:
    mask = roi_mask((100, 200), [(0, 0), (0.5, 0), (0.5, 1), (0, 1)])
    assert mask[:, :99].all()
    assert not mask[:, 101:].any()
    assert roi_mask((10, 10), None).all()
