"""Turn a finished vehicle pass into the shared :class:`cordon.events.PlateRead` (pure: no I/O)."""

from __future__ import annotations

import uuid

from cordon.events import Direction, PlateRead
from edge.errors import PlateTextError
from edge.plates import normalise_plate
from edge.settings import ImageMotion
from edge.tracking import PlatePass

__all__ = ["READ_ID_NAMESPACE", "direction_of", "pass_to_read"]

READ_ID_NAMESPACE = uuid.UUID("6f1d2c52-5b0e-4a43-9a4e-4a8f3c0c7d21")
"""Namespace of read ids: a read id is a UUIDv5 of box, camera and first sighting, so a replay repeats it."""

_OPPOSITE: dict[str, str] = {"up": "down", "down": "up", "left": "right", "right": "left"}


def direction_of(motion: ImageMotion | None, inbound_motion: ImageMotion | None) -> Direction | None:
    """Direction of travel from the image motion of the track and the camera's inbound motion."""
    if motion is None or inbound_motion is None:
        return None
    if motion == inbound_motion:
        return "in"
    if motion == _OPPOSITE[inbound_motion]:
        return "out"
    return None


def pass_to_read(
    plate_pass: PlatePass, *, camera_id: str, edge_box_id: str, inbound_motion: ImageMotion | None = None
) -> PlateRead | None:
    """Build the read for a pass; None if the voted text has no usable characters.

    The read's ``captured_at``, ``bbox`` and crop come from the pass's best sighting; ``plate`` is the
    UK-normalised text and ``plate_raw`` the voted OCR text.
    """
    try:
        plate = normalise_plate(plate_pass.text)
    except PlateTextError:
        return None
    best = plate_pass.best
    first = plate_pass.sightings[0]
    read_id = uuid.uuid5(
        READ_ID_NAMESPACE, f"{edge_box_id}/{camera_id}/{first.captured_at.isoformat()}/{first.frame_index}"
    )
    # Corrections change characters, not length, so the voted per-character confidences still line up.
    chars = plate_pass.char_confidences if len(plate_pass.char_confidences) == len(plate.text) else None
    return PlateRead(
        read_id=read_id,
        camera_id=camera_id,
        edge_box_id=edge_box_id,
        captured_at=best.captured_at,
        plate_raw=plate_pass.text,
        plate=plate.text,
        plate_format=plate.format,
        confidence=min(max(plate_pass.confidence, 0.0), 1.0),
        char_confidences=chars,
        bbox=best.detection.bbox,
        direction=direction_of(plate_pass.motion, inbound_motion),
        frames=len(plate_pass.sightings),
        crop_jpeg=best.crop_jpeg,
    )
