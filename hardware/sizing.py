"""How many cameras one edge box can serve, and how many boxes N cameras need, from bench measurements.

Pure functions over plain numbers. The model, stated so the numbers can be checked by hand:

* A live camera's stream is decoded in full: every one of its ``camera_fps`` frames a second costs
  ``decode_ms`` of box time (:class:`edge.frames.LiveFrameSource` decodes every frame and keeps the newest).
* Each frame the pipeline processes costs ``process_ms`` more: motion gate, recogniser (when gated in),
  tracker. A camera needs ``fps_needed`` of its frames processed a second for reliable reads.
* So one camera loads the box ``camera_fps * decode_ms + fps_needed * process_ms`` milliseconds per second.
* A box offers ``1000 * (1 - headroom)`` milliseconds per second; ``headroom`` keeps spare time for bursts,
  heat throttling and the publisher.

The bench measures ``decode_ms`` (decode-only rate of a file) and ``decode_ms + process_ms`` (the pipeline's
rate on the same file, decoding and processing every frame in one thread), so ``process_ms`` is their
difference. Adding them up assumes decode and recognition never overlap: conservative on a multi-core box.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from hardware.errors import SizingError

__all__ = ["Sizing", "StreamCost", "camera_load_ms", "size_fleet", "slowest", "stream_cost"]

MAX_HEADROOM = 0.9
"""Largest headroom share accepted: beyond it a box is mostly kept idle."""


@dataclass(frozen=True, slots=True)
class StreamCost:
    """Box time one stream of one resolution costs, per frame, in milliseconds of wall time.

    Attributes
    ----------
    resolution
        Nominal resolution, e.g. ``"1080p"``.
    decode_ms
        Time to decode one frame, ms.
    process_ms
        Time to gate, recognise and track one decoded frame, ms.
    label
        Where the numbers come from (measurement file or profile, and date), for the printed table.
    """

    resolution: str
    decode_ms: float
    process_ms: float
    label: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.decode_ms) and self.decode_ms > 0):
            raise SizingError(f"{self.label or self.resolution}: decode_ms must be > 0, got {self.decode_ms}")
        if not (math.isfinite(self.process_ms) and self.process_ms >= 0):
            raise SizingError(
                f"{self.label or self.resolution}: process_ms must be >= 0, got {self.process_ms}"
            )


def stream_cost(*, resolution: str, decode_fps: float, processed_fps: float, label: str = "") -> StreamCost:
    """Per-frame costs from a bench's decode-only and pipeline rates of one file (frames per second).

    Raises
    ------
    SizingError
        A rate is not positive.
    """
    if decode_fps <= 0 or processed_fps <= 0:
        raise SizingError(
            f"{label or resolution}: rates must be > 0, "
            f"got decode_fps={decode_fps}, processed_fps={processed_fps}"
        )
    decode_ms = 1000.0 / decode_fps
    # The pipeline decodes too, so it is never faster than decoding; a faster measurement is noise.
    process_ms = max(1000.0 / processed_fps - decode_ms, 0.0)
    return StreamCost(resolution=resolution, decode_ms=decode_ms, process_ms=process_ms, label=label)


def camera_load_ms(cost: StreamCost, *, camera_fps: float, fps_needed: float) -> float:
    """Box time one camera takes, milliseconds per second: decode every frame, process ``fps_needed``."""
    return camera_fps * cost.decode_ms + fps_needed * cost.process_ms


def slowest(costs: Iterable[StreamCost], *, camera_fps: float, fps_needed: float) -> StreamCost:
    """The cost that loads a box most at these rates (several measurements: size from the worst).

    Raises
    ------
    SizingError
        No costs were given.
    """
    ordered = sorted(costs, key=lambda c: camera_load_ms(c, camera_fps=camera_fps, fps_needed=fps_needed))
    if not ordered:
        raise SizingError("no measurements to size from")
    return ordered[-1]


@dataclass(frozen=True, slots=True)
class Sizing:
    """The answer with every number used to reach it (times in ms per second of wall time)."""

    cost: StreamCost
    cameras: int
    camera_fps: float
    fps_needed: float
    headroom: float
    decode_load_ms: float
    """Decoding one camera's every frame, ms/s."""
    process_load_ms: float
    """Processing ``fps_needed`` of its frames, ms/s."""
    camera_load_ms: float
    """Both, ms/s."""
    budget_ms: float
    """Box time usable after headroom, ms/s."""
    cameras_per_box: int
    boxes: int | None
    """Boxes for ``cameras``; None when a box cannot serve even one camera at ``fps_needed``."""
    solo_fps: float
    """Frames per second the pipeline could process for one camera alone on a box (no headroom)."""
    busiest_box_share: float | None
    """Share of the budget the fullest box uses, 0..1; None when ``boxes`` is None."""


def _verify(*, cameras: int, camera_fps: float, fps_needed: float, headroom: float) -> None:
    problems = []
    if cameras < 1:
        problems.append(f"cameras must be >= 1, got {cameras}")
    if not 0 < camera_fps <= 240:
        problems.append(f"camera_fps must be in (0, 240], got {camera_fps}")
    if not 0 < fps_needed <= camera_fps:
        problems.append(f"fps_needed must be in (0, camera_fps={camera_fps}], got {fps_needed}")
    if not 0 <= headroom <= MAX_HEADROOM:
        problems.append(f"headroom must be in [0, {MAX_HEADROOM}], got {headroom}")
    if problems:
        raise SizingError("; ".join(problems))


def size_fleet(
    cost: StreamCost, *, cameras: int, fps_needed: float, camera_fps: float = 25.0, headroom: float = 0.3
) -> Sizing:
    """Cameras per box and boxes for ``cameras`` cameras.

    Parameters
    ----------
    cost
        Per-frame costs on the box, ms.
    cameras
        Cameras to serve.
    fps_needed
        Frames per second of each camera the pipeline must process (at most ``camera_fps``).
    camera_fps
        Frame rate each camera sends, frames per second.
    headroom
        Share of the box's time kept spare, 0..0.9.

    Raises
    ------
    SizingError
        An argument is out of range (every problem is named).
    """
    _verify(cameras=cameras, camera_fps=camera_fps, fps_needed=fps_needed, headroom=headroom)
    decode_load = camera_fps * cost.decode_ms
    process_load = fps_needed * cost.process_ms
    load = decode_load + process_load
    budget = 1000.0 * (1.0 - headroom)
    # The relative epsilon keeps an exact fit (budget == k x load in real numbers) from flooring to k - 1.
    per_box = math.floor(budget / load * (1 + 1e-12))
    boxes = math.ceil(cameras / per_box) if per_box > 0 else None
    fullest = min(per_box, cameras)
    spare = 1000.0 - decode_load
    if spare <= 0:
        solo = 0.0
    elif cost.process_ms == 0:
        solo = camera_fps
    else:
        solo = min(camera_fps, spare / cost.process_ms)
    return Sizing(
        cost=cost,
        cameras=cameras,
        camera_fps=camera_fps,
        fps_needed=fps_needed,
        headroom=headroom,
        decode_load_ms=decode_load,
        process_load_ms=process_load,
        camera_load_ms=load,
        budget_ms=budget,
        cameras_per_box=per_box,
        boxes=boxes,
        solo_fps=solo,
        busiest_box_share=None if boxes is None else fullest * load / budget,
    )
