"""Render a synthetic ANPR camera video of vehicles with known UK plates, and write its ground truth.

The scene is a steep, narrow view of a two-lane road from a gantry, framed the way ANPR cameras are: each
vehicle either drives towards the camera (enters at the top, moves **down** the image and grows; its white
*front* plate faces the camera) or away from it (enters at the bottom, moves **up** and shrinks; its yellow
*rear* plate faces the camera). Vehicles pass one at a time with an empty road between them, so every pass is
distinct. Frames are drawn with OpenCV and Pillow and piped as raw BGR to the ``ffmpeg`` CLI for H.264
encoding, because OpenCV's pip wheel has no H.264 encoder.

Geometry: a flat road seen by a pinhole camera whose horizon lies above the frame. A vehicle at apparent scale
``s`` (1 is a reference distance) is ``s * CAR_WIDTH`` wide and its ground line is at image row
``horizon + k * s``; vehicles move at constant speed, so ``1 / s`` changes linearly in time. All sizes are
fractions of the frame height, so a 1080p render is a 720p render scaled by 1.5.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal, TypeAlias

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, ConfigDict, Field

from cordon.errors import CordonError

__all__ = [
    "DEFAULT_PLATES",
    "PLATE_FONT",
    "TRUTH_SCHEMA_VERSION",
    "GroundTruth",
    "Motion",
    "PlateFormat",
    "ProgressCallback",
    "RenderError",
    "VehiclePass",
    "random_uk_plates",
    "read_frame_marker",
    "render_traffic_video",
    "truth_path",
]

PLATE_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf")
"""Plate font: DejaVu Sans Condensed Bold (Debian ``fonts-dejavu-core``), not the statutory Charles Wright."""

DEFAULT_PLATES: tuple[str, ...] = (
    "AB12 CDE",
    "LV70 XKM",
    "P427 HFR",
    "YK19 RFN",
    "BD51 SMR",
    "GN66 WTA",
    "EF23 HKP",
    "WR15 NXG",
)
"""Valid UK plates of mixed formats: current (``AB12 CDE``) and one prefix-style (``P427 HFR``).

They avoid ``J``: in the DejaVu font it looks like ``I`` to the OCR (``EF23 HJP`` was read ``EF23HIP`` on a
fifth of frames)."""

TRUTH_SCHEMA_VERSION: Final = 1
"""Version of the ground-truth JSON this code writes and the only one it reads."""

Motion: TypeAlias = Literal["down", "up"]
"""Direction a vehicle moves in the image: ``down`` (towards the camera) or ``up`` (away from it)."""

PlateFormat: TypeAlias = Literal["current", "prefix", "suffix", "other"]
"""UK registration format of a plate, by its letters and digits."""

ProgressCallback: TypeAlias = Callable[[int, int], None]
"""Called after each encoded frame with ``(frames_done, frames_total)``."""

Frame: TypeAlias = npt.NDArray[np.uint8]

# --- Scene constants, in fractions of the frame height unless stated --------------------------------------
_CAR_WIDTH = 1.05  # vehicle width at scale 1
_CAR_HEIGHT = 0.75  # vehicle height / vehicle width (front or rear view, tyres to roof)
_PLATE_WIDTH = 0.34  # plate width / vehicle width (real: 520 mm on a ~1.8 m car; larger here to be readable)
_PLATE_ASPECT = 111 / 520  # UK plate height / width
_PLATE_BOTTOM = 0.13  # plate bottom edge above the ground line / vehicle width
_S_ENTER = 0.65  # scale at which a down-moving vehicle's ground line crosses the top edge
_S_EXIT = 1.30  # scale at which its roof crosses the bottom edge
_LANE_X = 0.30  # lane centre, left/right of the road centre line at scale 1
_LANE_JITTER = 0.05  # random per-vehicle offset within the lane at scale 1
_ROAD_EDGE_X = 1.0  # solid edge lines at scale 1
_MARKER_INDEX_BITS = 20  # frame-index marker: 20 bits of index (12 h at 25 fps) ...
_MARKER_BITS = _MARKER_INDEX_BITS + 4  # ... and a 4-bit check
_SPEED_JITTER = 0.08  # per-vehicle relative change of seconds_per_vehicle
_DASH = (0.07, 0.06)  # centre-line dash and gap, in units of 1/s (ground distance)

_YELLOW = (23, 212, 247)  # BGR of a rear plate (RGB 247, 212, 23)
_WHITE = (255, 255, 255)
_GB_BLUE_RGB = (0, 51, 153)
_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (  # name, BGR
    ("silver", (190, 188, 184)),
    ("black", (32, 30, 30)),
    ("white", (232, 232, 228)),
    ("red", (40, 38, 170)),
    ("blue", (140, 72, 30)),
    ("grey", (105, 105, 100)),
    ("green", (48, 82, 34)),
    ("orange", (30, 110, 215)),
)

_FORMATS: tuple[tuple[PlateFormat, re.Pattern[str], int], ...] = (  # format, pattern, printed space position
    ("current", re.compile(r"[A-Z]{2}[0-9]{2}[A-Z]{3}"), 4),
    ("prefix", re.compile(r"[A-Z][0-9]{1,3}[A-Z]{3}"), -3),
    ("suffix", re.compile(r"[A-Z]{3}[0-9]{1,3}[A-Z]"), 3),
)


class RenderError(CordonError, RuntimeError):
    """The video could not be rendered or encoded (``ffmpeg`` or the plate font missing, or ffmpeg failed)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VehiclePass(_Frozen):
    """One vehicle passing the camera, as drawn.

    Times are seconds from the start of the video; a thing is on screen for ``from <= t < until``. Frame
    indices are zero-based and inclusive. Pixel sizes are in frame pixels.
    """

    index: int = Field(ge=0, description="Order of the pass in the video, from 0.")
    plate: str = Field(min_length=2, max_length=13, description="Plate as printed, e.g. 'AB12 CDE'.")
    plate_normalised: str = Field(pattern=r"^[A-Z0-9]{2,7}$", description="Plate, A-Z and 0-9 only.")
    plate_format: PlateFormat = Field(description="UK registration format of the plate.")
    side: Literal["front", "rear"] = Field(description="End of the vehicle facing the camera.")
    plate_colour: Literal["white", "yellow"] = Field(description="White front plate or yellow rear plate.")
    motion: Motion = Field(description="Direction the vehicle moves in the image.")
    vehicle_colour: str = Field(description="Body colour name.")
    t_in_s: float = Field(ge=0.0, description="Time of the first frame showing any part of the vehicle.")
    t_out_s: float = Field(ge=0.0, description="Time just after the last frame showing the vehicle.")
    first_frame: int = Field(ge=0, description="First frame showing any part of the vehicle.")
    last_frame: int = Field(ge=0, description="Last frame showing any part of the vehicle.")
    plate_from_s: float = Field(ge=0.0, description="Time of the first frame showing the whole plate.")
    plate_until_s: float = Field(ge=0.0, description="Time after the last frame showing the whole plate.")
    plate_first_frame: int = Field(ge=0, description="First frame showing the whole plate.")
    plate_last_frame: int = Field(ge=0, description="Last frame showing the whole plate.")
    plate_width_min_px: int = Field(ge=1, description="Narrowest plate width while wholly visible, pixels.")
    plate_width_max_px: int = Field(ge=1, description="Widest plate width while wholly visible, pixels.")

    @property
    def plate_seconds(self) -> float:
        """How long the whole plate is on screen, seconds."""
        return self.plate_until_s - self.plate_from_s


class GroundTruth(_Frozen):
    """What a rendered video shows: its format and every vehicle pass, in order.

    Saved as JSON beside the video (see :func:`truth_path`).
    """

    schema_version: Literal[1] = TRUTH_SCHEMA_VERSION
    video: str = Field(description="File name of the video, in the same folder as the truth file.")
    width: int = Field(gt=0, description="Frame width, pixels.")
    height: int = Field(gt=0, description="Frame height, pixels.")
    fps: int = Field(gt=0, description="Frames per second.")
    frame_count: int = Field(gt=0, description="Number of frames in the video.")
    seed: int = Field(description="Random seed the video was rendered with.")
    frame_marker: bool = Field(description="Whether frames carry their index (see read_frame_marker).")
    passes: tuple[VehiclePass, ...] = Field(description="Vehicle passes in order of time.")

    @property
    def duration_s(self) -> float:
        """Length of the video, seconds."""
        return self.frame_count / self.fps

    def pass_at_frame(self, frame: int) -> VehiclePass | None:
        """Return the pass whose vehicle is on screen in ``frame`` (zero-based), or None for an empty road."""
        return next((p for p in self.passes if p.first_frame <= frame <= p.last_frame), None)

    def save(self, path: Path) -> None:
        """Write the truth as indented UTF-8 JSON to ``path``, atomically."""
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        """Read a truth file written by :meth:`save`."""
        return cls.model_validate_json(path.read_text(encoding="utf-8"))


def _marker_block(height: int) -> int:
    """Side of one frame-marker bit square, pixels."""
    return max(2, round(height / 90))


def _marker_check(index: int) -> int:
    # Sum of the index's nibbles, offset so an all-black or all-white strip never passes.
    return (sum((index >> shift) & 0xF for shift in range(0, _MARKER_INDEX_BITS, 4)) + 0xA) & 0xF


def _draw_frame_marker(frame: Frame, index: int) -> None:
    """Burn ``index`` into the top-left corner as a row of black/white squares, like a camera's OSD."""
    block = _marker_block(frame.shape[0])
    index &= (1 << _MARKER_INDEX_BITS) - 1
    value = index << 4 | _marker_check(index)
    for bit in range(_MARKER_BITS):
        on = (value >> (_MARKER_BITS - 1 - bit)) & 1
        x = block + bit * block
        frame[block : 2 * block, x : x + block] = 235 if on else 16


def read_frame_marker(frame: npt.NDArray[Any]) -> int | None:
    """Return the frame index burnt into a rendered frame, or None if there is no valid marker.

    Each frame of :func:`render_traffic_video` (unless ``frame_marker=False``) carries its zero-based index in
    the file as 24 small squares in the top-left corner (20 index bits and a 4-bit check), so a client of the
    RTSP stream can tell exactly which frame it got, count loops and measure latency. The frame must have
    the rendered size (BGR, HxWx3).
    """
    block = _marker_block(frame.shape[0])
    strip = frame[block : 2 * block, block : block + _MARKER_BITS * block]
    if strip.shape[:2] != (block, _MARKER_BITS * block):
        return None
    inner = slice(block // 4, block - block // 4)
    squares = strip.reshape(block, _MARKER_BITS, block, -1)[inner, :, inner].mean(axis=(0, 2, 3))
    value = 0
    for level in squares:
        value = value << 1 | int(level > 128)
    index = value >> 4
    return index if value & 0xF == _marker_check(index) else None


def truth_path(video: Path) -> Path:
    """Return the ground-truth path of ``video``: ``<video>.truth.json`` beside it."""
    return video.with_name(video.name + ".truth.json")


def random_uk_plates(count: int, *, seed: int = 0) -> list[str]:
    """Return ``count`` distinct random, valid current-format UK plates, printed (``"AB12 CDE"``).

    The area letters and the age identifier (March ``02``-``25`` or September ``51``-``75``) follow DVLA
    rules; the three random letters never use I or Q (DVLA) nor J (drawn in DejaVu it reads as I).
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = np.random.default_rng(seed)
    area = "ABCDEFGHKLMNOPRSVWY"
    second = "ABCDEFGHKLMNOPRSTUVWXY"
    letters = "ABCDEFGHKLMNOPRSTUVWXYZ"
    ages = [f"{y:02d}" for y in range(2, 26)] + [f"{y}" for y in range(51, 76)]
    plates: list[str] = []
    seen: set[str] = set()
    while len(plates) < count:
        text = (
            str(rng.choice(list(area)))
            + str(rng.choice(list(second)))
            + str(rng.choice(ages))
            + " "
            + "".join(str(c) for c in rng.choice(list(letters), size=3))
        )
        if text not in seen:
            seen.add(text)
            plates.append(text)
    return plates


def _plate_text(plate: str) -> tuple[str, str, PlateFormat]:
    """Return ``(printed, normalised, format)`` of a plate given as e.g. ``"AB12 CDE"`` or ``"ab12cde"``."""
    normalised = "".join(plate.split()).upper()
    if not re.fullmatch(r"[A-Z0-9]{2,7}", normalised):
        raise ValueError(f"plate {plate!r} must have 2-7 characters A-Z/0-9 (spaces ignored)")
    for fmt, pattern, space_at in _FORMATS:
        if pattern.fullmatch(normalised):
            return f"{normalised[:space_at]} {normalised[space_at:]}", normalised, fmt
    return " ".join(plate.upper().split()), normalised, "other"


# --- Drawing ---------------------------------------------------------------------------------------------


def _draw_plate(text: str, background: tuple[int, int, int]) -> Frame:
    """Draw a UK plate at 1040 x 222 px (2 px per mm), BGR: black text, blue GB band on the left."""
    width, height = 1040, 222
    rgb = (background[2], background[1], background[0])
    image = Image.new("RGB", (width, height), rgb)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width - 1, height - 1), outline=(0, 0, 0), width=6)
    draw.rectangle((6, 6, 100, height - 7), fill=_GB_BLUE_RGB)
    font = ImageFont.truetype(str(PLATE_FONT), 172)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    draw.text(
        (100 + (width - 100 - (x1 - x0)) // 2 - x0, (height - (y1 - y0)) // 2 - y0),
        text,
        font=font,
        fill=(0, 0, 0),
    )
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def _fill(frame: Frame, points: Sequence[tuple[float, float]], colour: tuple[int, int, int]) -> None:
    """Fill a polygon given in float pixels, anti-aliased, with 1/16-pixel precision."""
    pts = np.round(np.asarray(points, dtype=np.float64) * 16).astype(np.int32)
    cv2.fillPoly(frame, [pts], colour, lineType=cv2.LINE_AA, shift=4)


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    b, g, r = (min(255, max(0, round(c * factor))) for c in colour)
    return b, g, r


@dataclass(frozen=True, slots=True)
class _Vehicle:
    """A vehicle to draw: its plate, look and timing."""

    index: int
    plate: str
    plate_normalised: str
    plate_format: PlateFormat
    plate_image: Frame
    motion: Motion
    colour_name: str
    colour: tuple[int, int, int]
    lane_x: float  # lane centre at scale 1, fraction of frame height, + is right of the centre line
    start_s: float  # time the vehicle starts crossing the frame edge
    duration_s: float  # time from entering to leaving the frame

    @property
    def side(self) -> Literal["front", "rear"]:
        return "front" if self.motion == "down" else "rear"


@dataclass(frozen=True, slots=True)
class _Placement:
    """Where a vehicle is drawn in one frame, in pixels."""

    body: tuple[float, float, float, float]  # x1, y1, x2, y2
    plate: tuple[float, float, float, float]


class _Scene:
    """The fixed road and camera geometry of one video size, and the drawing of vehicles on it."""

    def __init__(self, width: int, height: int, rng: np.random.Generator, noise: float) -> None:
        self.width = width
        self.height = height
        self.unit = float(height)
        # Horizon and ground-line slope from: ground line at the top edge when s = _S_ENTER,
        # roof at the bottom edge when s = _S_EXIT.
        self.k = self.unit * (1 + _CAR_HEIGHT * _CAR_WIDTH * _S_EXIT) / (_S_EXIT - _S_ENTER)
        self.horizon = -self.k * _S_ENTER
        self.centre_x = width / 2
        self.background = self._draw_background(rng)
        # Sensor noise: one tall bank, sliced at a random row per frame (a view, so no per-frame cost).
        self._noise_rows = 97
        if noise > 0:
            bank = rng.normal(0.0, noise, (height + self._noise_rows, width, 3))
            self._noise_pos: Frame | None = np.clip(bank, 0, 255).astype(np.uint8)
            self._noise_neg: Frame | None = np.clip(-bank, 0, 255).astype(np.uint8)
        else:
            self._noise_pos = self._noise_neg = None

    def ground_y(self, s: float) -> float:
        """Image row of the ground at scale ``s``."""
        return self.horizon + self.k * s

    def scale_at_row(self, y: float) -> float:
        """Scale of the ground at image row ``y``."""
        return (y - self.horizon) / self.k

    def ground_x(self, lateral: float, s: float) -> float:
        """Image column of a ground point ``lateral`` from the centre (frame heights at scale 1)."""
        return self.centre_x + lateral * self.unit * s

    def _draw_background(self, rng: np.random.Generator) -> Frame:
        h, w = self.height, self.width
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = (62, 104, 70)  # verge
        s_top, s_bottom = self.scale_at_row(0.0), self.scale_at_row(float(h))
        road = [
            (self.ground_x(-_ROAD_EDGE_X - 0.08, s_top), 0.0),
            (self.ground_x(_ROAD_EDGE_X + 0.08, s_top), 0.0),
            (self.ground_x(_ROAD_EDGE_X + 0.08, s_bottom), float(h)),
            (self.ground_x(-_ROAD_EDGE_X - 0.08, s_bottom), float(h)),
        ]
        _fill(frame, road, (88, 86, 84))
        # Asphalt texture: low-frequency blotches plus fine grain, fixed for the whole video.
        blotch = cv2.resize(rng.normal(0.0, 5.0, (max(2, h // 24), max(2, w // 24))), (w, h))
        grain = rng.normal(0.0, 3.0, (h, w))
        texture = (blotch + grain)[:, :, None]
        frame = np.clip(frame.astype(np.float64) + texture, 0, 255).astype(np.uint8)
        line = (208, 212, 214)
        for edge in (-_ROAD_EDGE_X, _ROAD_EDGE_X):
            half = 0.012
            _fill(
                frame,
                [
                    (self.ground_x(edge - half, s_top), 0.0),
                    (self.ground_x(edge + half, s_top), 0.0),
                    (self.ground_x(edge + half, s_bottom), float(h)),
                    (self.ground_x(edge - half, s_bottom), float(h)),
                ],
                line,
            )
        # Dashed centre line: dashes are evenly spaced in ground distance, i.e. in 1/s.
        dash, gap = _DASH
        inv = 1 / s_bottom - dash
        while inv < 1 / s_top:
            s_near, s_far = 1 / inv, 1 / (inv + dash)
            y_near, y_far = self.ground_y(s_near), self.ground_y(s_far)
            half = 0.012
            _fill(
                frame,
                [
                    (self.ground_x(-half, s_far), y_far),
                    (self.ground_x(half, s_far), y_far),
                    (self.ground_x(half, s_near), y_near),
                    (self.ground_x(-half, s_near), y_near),
                ],
                line,
            )
            inv += dash + gap
        return frame

    def place(self, vehicle: _Vehicle, s: float) -> _Placement:
        """Return where ``vehicle`` is drawn at scale ``s``."""
        w = _CAR_WIDTH * self.unit * s
        cx = self.ground_x(vehicle.lane_x, s)
        yb = self.ground_y(s)
        pw = _PLATE_WIDTH * w
        ph = pw * _PLATE_ASPECT
        py2 = yb - _PLATE_BOTTOM * w
        return _Placement(
            body=(cx - 0.53 * w, yb - _CAR_HEIGHT * w, cx + 0.53 * w, yb),
            plate=(cx - pw / 2, py2 - ph, cx + pw / 2, py2),
        )

    def draw_vehicle(self, frame: Frame, vehicle: _Vehicle, s: float) -> _Placement:
        """Draw ``vehicle`` at scale ``s`` on ``frame`` and return where it was drawn."""
        w = _CAR_WIDTH * self.unit * s
        cx = self.ground_x(vehicle.lane_x, s)
        yb = self.ground_y(s)

        def pt(x: float, up: float) -> tuple[float, float]:
            # x and up are fractions of the vehicle width, from the centre and from the ground line.
            return cx + x * w, yb - up * w

        def box(x1: float, x2: float, up1: float, up2: float, colour: tuple[int, int, int]) -> None:
            _fill(frame, [pt(x1, up1), pt(x2, up1), pt(x2, up2), pt(x1, up2)], colour)

        body = vehicle.colour
        dark = _shade(body, 0.62)
        # Shadow on the road, then tyres, body, glass, lights, plate.
        _fill(frame, [pt(-0.55, -0.015), pt(0.55, -0.015), pt(0.5, 0.05), pt(-0.5, 0.05)], (38, 38, 40))
        box(-0.47, -0.32, 0.0, 0.16, (22, 22, 24))
        box(0.32, 0.47, 0.0, 0.16, (22, 22, 24))
        _fill(
            frame,
            [
                pt(-0.47, 0.06),
                pt(0.47, 0.06),
                pt(0.5, 0.1),
                pt(0.5, 0.4),
                pt(0.47, 0.43),
                pt(-0.47, 0.43),
                pt(-0.5, 0.4),
                pt(-0.5, 0.1),
            ],
            body,
        )
        box(-0.47, 0.47, 0.06, 0.1, dark)  # bumper lip
        _fill(frame, [pt(-0.46, 0.43), pt(0.46, 0.43), pt(0.37, 0.75), pt(-0.37, 0.75)], body)  # cabin
        glass = (72, 58, 50) if vehicle.side == "front" else (60, 50, 44)
        _fill(frame, [pt(-0.41, 0.46), pt(0.41, 0.46), pt(0.335, 0.71), pt(-0.335, 0.71)], glass)
        _fill(frame, [pt(-0.2, 0.46), pt(-0.08, 0.46), pt(0.06, 0.71), pt(-0.04, 0.71)], _shade(glass, 1.35))
        for sign in (-1.0, 1.0):  # mirrors
            _fill(
                frame,
                [pt(sign * 0.46, 0.44), pt(sign * 0.55, 0.46), pt(sign * 0.55, 0.52), pt(sign * 0.46, 0.52)],
                dark,
            )
        if vehicle.side == "front":
            box(-0.22, 0.22, 0.24, 0.32, (28, 28, 30))  # grille
            for sign in (-1.0, 1.0):
                _fill(
                    frame,
                    [
                        pt(sign * 0.28, 0.27),
                        pt(sign * 0.46, 0.29),
                        pt(sign * 0.46, 0.36),
                        pt(sign * 0.3, 0.35),
                    ],
                    (214, 228, 236),
                )
        else:
            box(-0.3, 0.3, 0.335, 0.345, dark)  # boot-lid crease
            box(-0.08, 0.08, 0.69, 0.705, (40, 40, 200))  # high-level brake light
            for sign in (-1.0, 1.0):
                _fill(
                    frame,
                    [
                        pt(sign * 0.33, 0.25),
                        pt(sign * 0.48, 0.25),
                        pt(sign * 0.48, 0.38),
                        pt(sign * 0.33, 0.38),
                    ],
                    (36, 36, 190),
                )
        placement = self.place(vehicle, s)
        self._paste_plate(frame, vehicle.plate_image, placement.plate)
        return placement

    def _paste_plate(self, frame: Frame, plate: Frame, rect: tuple[float, float, float, float]) -> None:
        x1, y1 = round(rect[0]), round(rect[1])
        pw, ph = max(1, round(rect[2] - rect[0])), max(1, round(rect[3] - rect[1]))
        fx1, fy1 = max(x1, 0), max(y1, 0)
        fx2, fy2 = min(x1 + pw, self.width), min(y1 + ph, self.height)
        if fx1 >= fx2 or fy1 >= fy2:
            return
        scaled = cv2.resize(plate, (pw, ph), interpolation=cv2.INTER_AREA)
        frame[fy1:fy2, fx1:fx2] = scaled[fy1 - y1 : fy2 - y1, fx1 - x1 : fx2 - x1]

    def finish(self, frame: Frame, rng: np.random.Generator) -> Frame:
        """Apply lens softness and sensor noise to a drawn frame."""
        cv2.GaussianBlur(frame, (3, 3), 0.7, dst=frame)
        if self._noise_pos is not None and self._noise_neg is not None:
            row = int(rng.integers(0, self._noise_rows))
            cv2.add(frame, self._noise_pos[row : row + self.height], dst=frame)
            cv2.subtract(frame, self._noise_neg[row : row + self.height], dst=frame)
        return frame

    def scale_of(self, vehicle: _Vehicle, t: float) -> float | None:
        """Scale of ``vehicle`` at time ``t`` (seconds), or None outside its crossing."""
        progress = (t - vehicle.start_s) / vehicle.duration_s
        if not 0.0 <= progress <= 1.0:
            return None
        if vehicle.motion == "up":
            progress = 1.0 - progress
        # Constant speed: distance, i.e. 1/s, is linear in time.
        return 1.0 / (1.0 / _S_ENTER + progress * (1.0 / _S_EXIT - 1.0 / _S_ENTER))

    def visible(self, rect: tuple[float, float, float, float], *, whole: bool) -> bool:
        """Whether ``rect`` is on screen: wholly if ``whole``, else any part of it."""
        x1, y1, x2, y2 = rect
        if whole:
            return x1 >= 0 and y1 >= 0 and x2 <= self.width and y2 <= self.height
        return x2 > 0 and y2 > 0 and x1 < self.width and y1 < self.height


# --- Encoding --------------------------------------------------------------------------------------------


def _find_ffmpeg(ffmpeg: str) -> str:
    found = shutil.which(ffmpeg)
    if found is None:
        raise RenderError(
            f"{ffmpeg!r} was not found on PATH; install the ffmpeg CLI with libx264 "
            "(Debian/Ubuntu: apt-get install ffmpeg)"
        )
    return found


def _ffmpeg_command(
    ffmpeg: str, out: Path, *, width: int, height: int, fps: int, crf: int, preset: str
) -> list[str]:
    return [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "pipe:0",
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        # A keyframe every second, exactly, and no B-frames: what IP cameras send, and it lets RTSP
        # clients join within a second.
        "-g",
        str(fps),
        "-keyint_min",
        str(fps),
        "-sc_threshold",
        "0",
        "-bf",
        "0",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(out),
    ]


def _stderr_text(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode("utf-8", "replace").strip()[-2000:]


def _validate(
    *, width: int, height: int, fps: int, seconds_per_vehicle: float, gap_s: float, repeat: int, noise: float
) -> None:
    problems = []
    if width < 64 or height < 64 or width % 2 or height % 2:
        problems.append(f"width x height must be even and >= 64 (got {width}x{height})")
    if not 1 <= fps <= 120:
        problems.append(f"fps must be 1..120 (got {fps})")
    if not seconds_per_vehicle >= 2.0:
        problems.append(f"seconds_per_vehicle must be >= 2.0 (got {seconds_per_vehicle})")
    if not gap_s >= 0.0:
        problems.append(f"gap_s must be >= 0 (got {gap_s})")
    if repeat < 1:
        problems.append(f"repeat must be >= 1 (got {repeat})")
    if not 0.0 <= noise <= 30.0:
        problems.append(f"noise must be 0..30 grey levels (got {noise})")
    if problems:
        raise ValueError("; ".join(problems))


def render_traffic_video(
    path: Path,
    *,
    plates: Sequence[str] | None = None,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    seconds_per_vehicle: float = 5.0,
    gap_s: float = 2.0,
    repeat: int = 1,
    motions: Literal["alternate", "down", "up"] = "alternate",
    seed: int = 0,
    noise: float = 2.5,
    frame_marker: bool = True,
    crf: int = 20,
    preset: str = "veryfast",
    ffmpeg: str = "ffmpeg",
    progress: ProgressCallback | None = None,
) -> GroundTruth:
    """Render an H.264 mp4 of vehicles passing a camera one at a time, and write its ground truth beside it.

    Parameters
    ----------
    path
        Output ``.mp4``; its folder must exist. The truth JSON goes to :func:`truth_path` of it.
    plates
        Plates in order of appearance, e.g. ``"AB12 CDE"`` or ``"ab12cde"`` (printed with the standard space
        for current, prefix and suffix formats). Defaults to :data:`DEFAULT_PLATES`; see
        :func:`random_uk_plates` for more.
    width, height
        Frame size, pixels; even. Scene sizes scale with ``height`` (1280x720 and 1920x1080 look the same).
    fps
        Frames per second; a keyframe is written every ``fps`` frames (1 s).
    seconds_per_vehicle
        Nominal time from a vehicle entering the frame to leaving it, seconds; each vehicle varies by up to
        8 %. The whole plate is on screen for about 60 % of it (3 s at the default 5 s).
    gap_s
        Empty road between one vehicle leaving and the next entering, seconds; the video starts and ends
        with half of it, so a looped video keeps the gap.
    repeat
        Times the plate list is driven through; each repeat swaps the motions, so plates show both ends.
    motions
        ``"alternate"`` (towards, away, towards, ...), or all ``"down"`` (towards) or all ``"up"`` (away).
    seed
        Seed of every random choice (colours, lane offsets, speeds, noise); equal inputs give equal videos.
    noise
        Standard deviation of the per-frame sensor noise, grey levels (0 for none).
    frame_marker
        Burn each frame's index into its top-left corner (see :func:`read_frame_marker`).
    crf, preset
        libx264 quality (lower is better, 18-23 typical) and speed preset.
    ffmpeg
        Name or path of the ffmpeg executable.
    progress
        Called after each frame with ``(frames_done, frames_total)``.

    Returns
    -------
    GroundTruth
        Every pass with its plate and timing, also saved as JSON.

    Raises
    ------
    ValueError
        A parameter or a plate is invalid.
    FileNotFoundError
        The folder of ``path`` does not exist.
    RenderError
        ffmpeg or the font is missing, or encoding failed; the message includes ffmpeg's error output.
    """
    _validate(
        width=width,
        height=height,
        fps=fps,
        seconds_per_vehicle=seconds_per_vehicle,
        gap_s=gap_s,
        repeat=repeat,
        noise=noise,
    )
    texts = [_plate_text(p) for p in (DEFAULT_PLATES if plates is None else plates)]
    if not texts:
        raise ValueError("plates must not be empty")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder for the video does not exist: {path.parent}")
    ffmpeg_path = _find_ffmpeg(ffmpeg)
    if not PLATE_FONT.is_file():
        raise RenderError(f"plate font {PLATE_FONT} is missing; install Debian package fonts-dejavu-core")

    rng = np.random.default_rng(seed)
    vehicles: list[_Vehicle] = []
    plate_images: dict[tuple[str, Motion], Frame] = {}
    t = gap_s / 2
    for rep in range(repeat):
        for i, (printed, normalised, fmt) in enumerate(texts):
            motion: Motion = motions if motions != "alternate" else ("down", "up")[(i + rep) % 2]
            if (printed, motion) not in plate_images:
                plate_images[printed, motion] = _draw_plate(printed, _WHITE if motion == "down" else _YELLOW)
            colour_name, colour = _COLOURS[int(rng.integers(len(_COLOURS)))]
            side_sign = 1.0 if motion == "down" else -1.0  # UK: oncoming traffic on the camera's right
            duration = seconds_per_vehicle * (1.0 + float(rng.uniform(-_SPEED_JITTER, _SPEED_JITTER)))
            vehicles.append(
                _Vehicle(
                    index=len(vehicles),
                    plate=printed,
                    plate_normalised=normalised,
                    plate_format=fmt,
                    plate_image=plate_images[printed, motion],
                    motion=motion,
                    colour_name=colour_name,
                    colour=colour,
                    lane_x=side_sign * _LANE_X + float(rng.uniform(-_LANE_JITTER, _LANE_JITTER)),
                    start_s=t,
                    duration_s=duration,
                )
            )
            t += duration + gap_s
    frame_count = math.ceil((t - gap_s / 2) * fps)

    scene = _Scene(width, height, rng, noise)
    seen: dict[int, list[int]] = {v.index: [] for v in vehicles}
    plate_seen: dict[int, list[tuple[int, float]]] = {v.index: [] for v in vehicles}

    tmp = path.with_name(f".{path.name}.partial")
    command = _ffmpeg_command(ffmpeg_path, tmp, width=width, height=height, fps=fps, crf=crf, preset=preset)
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=stderr)
        except OSError as exc:
            raise RenderError(f"could not start {ffmpeg_path}: {exc}") from exc
        assert proc.stdin is not None
        try:
            first = 0  # vehicles before this index have left for good
            for n in range(frame_count):
                t_frame = n / fps
                frame = scene.background.copy()
                while (
                    first < len(vehicles) and vehicles[first].start_s + vehicles[first].duration_s < t_frame
                ):
                    first += 1
                for vehicle in vehicles[first:]:
                    if vehicle.start_s > t_frame:
                        break
                    s = scene.scale_of(vehicle, t_frame)
                    if s is None:
                        continue
                    placement = scene.draw_vehicle(frame, vehicle, s)
                    if scene.visible(placement.body, whole=False):
                        seen[vehicle.index].append(n)
                    if scene.visible(placement.plate, whole=True):
                        plate_seen[vehicle.index].append((n, placement.plate[2] - placement.plate[0]))
                frame = scene.finish(frame, rng)
                if frame_marker:
                    _draw_frame_marker(frame, n)
                proc.stdin.write(frame.tobytes())
                if progress is not None:
                    progress(n + 1, frame_count)
            proc.stdin.close()
            code = proc.wait()
        except BrokenPipeError as exc:
            proc.wait()
            raise RenderError(f"ffmpeg stopped while encoding {path}: {_stderr_text(stderr)}") from exc
        except BaseException:
            proc.kill()
            proc.wait()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        if code != 0:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise RenderError(f"ffmpeg failed (exit {code}) encoding {path}: {_stderr_text(stderr)}")
    os.replace(tmp, path)

    passes = []
    for vehicle in vehicles:
        frames, plate_frames = seen[vehicle.index], plate_seen[vehicle.index]
        if not frames or not plate_frames:
            raise RenderError(f"internal error: vehicle {vehicle.index} ({vehicle.plate}) never on screen")
        plate_widths = [w for _, w in plate_frames]
        passes.append(
            VehiclePass(
                index=vehicle.index,
                plate=vehicle.plate,
                plate_normalised=vehicle.plate_normalised,
                plate_format=vehicle.plate_format,
                side=vehicle.side,
                plate_colour="white" if vehicle.side == "front" else "yellow",
                motion=vehicle.motion,
                vehicle_colour=vehicle.colour_name,
                t_in_s=frames[0] / fps,
                t_out_s=(frames[-1] + 1) / fps,
                first_frame=frames[0],
                last_frame=frames[-1],
                plate_from_s=plate_frames[0][0] / fps,
                plate_until_s=(plate_frames[-1][0] + 1) / fps,
                plate_first_frame=plate_frames[0][0],
                plate_last_frame=plate_frames[-1][0],
                plate_width_min_px=max(1, math.floor(min(plate_widths))),
                plate_width_max_px=max(1, math.ceil(max(plate_widths))),
            )
        )
    truth = GroundTruth(
        video=path.name,
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        seed=seed,
        frame_marker=frame_marker,
        passes=tuple(passes),
    )
    truth.save(truth_path(path))
    return truth
