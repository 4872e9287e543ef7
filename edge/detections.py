"""Plain-data types that flow through the edge pipeline's pure core (no I/O, no engines)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cordon.events import BBox

__all__ = ["Detection", "Sighting"]


@dataclass(frozen=True, slots=True)
class Detection:
    """One plate found in one frame by a :class:`edge.recognise.PlateRecogniser`.

    Attributes
    ----------
    bbox
        Plate box in frame pixels.
    text
        OCR text as read: upper-case A-Z/0-9, no padding; may be empty when OCR found nothing.
    char_confidences
        Probability of each character of ``text``, 0..1, same length as ``text``.
    detector_confidence
        Plate detector score, 0..1.
    region
        Country/region the OCR predicted (e.g. ``"United Kingdom"``), if it predicts one.
    """

    bbox: BBox
    text: str
    char_confidences: tuple[float, ...]
    detector_confidence: float
    region: str | None = None

    @property
    def confidence(self) -> float:
        """Overall confidence: the weakest character times the detector score."""
        weakest = min(self.char_confidences, default=0.0)
        return weakest * self.detector_confidence


@dataclass(frozen=True, slots=True)
class Sighting:
    """A detection together with when and in which frame it was seen.

    Attributes
    ----------
    detection
        What the recogniser found.
    captured_at
        Capture time of the frame, timezone-aware UTC.
    frame_index
        Monotonic index of the frame within its stream.
    crop_jpeg
        The plate crop encoded as JPEG, kept so the best sighting of a pass can be published with its image.
    """

    detection: Detection
    captured_at: datetime
    frame_index: int
    crop_jpeg: bytes | None = None
