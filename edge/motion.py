"""Motion gating: skip recognition on frames where nothing moves inside the region of interest."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["MotionGate", "roi_mask"]


def roi_mask(shape: tuple[int, int], roi: Sequence[tuple[float, float]] | None) -> npt.NDArray[np.bool_]:
    """Boolean mask of a polygon given in fractions of the frame (``(x, y)`` in 0..1), or all True if None."""
    height, width = shape
    if roi is None:
        return np.ones((height, width), dtype=bool)
    pts = np.array([[round(x * (width - 1)), round(y * (height - 1))] for x, y in roi], dtype=np.int32)
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(mask, [pts], 1)
    return mask.astype(bool)


class MotionGate:
    """Decides per frame whether anything moved in the ROI since the previous frame.

    Frames are shrunk to ``work_width`` pixels wide and blurred, then compared with the previous frame; the
    frame has motion when more than ``min_changed_fraction`` of the ROI's pixels changed by more than
    ``pixel_threshold`` grey levels. The first frame always counts as motion. After motion, the gate stays
    open for ``hold_frames`` more frames so a vehicle that stops at the line is still read.

    Parameters
    ----------
    roi
        Polygon in frame fractions ``(x, y)``, 0..1; the whole frame if None.
    """

    def __init__(
        self,
        *,
        roi: Sequence[tuple[float, float]] | None = None,
        pixel_threshold: int = 18,
        min_changed_fraction: float = 0.002,
        work_width: int = 320,
        hold_frames: int = 5,
    ) -> None:
        self.roi = tuple(roi) if roi is not None else None
        self.pixel_threshold = pixel_threshold
        self.min_changed_fraction = min_changed_fraction
        self.work_width = work_width
        self.hold_frames = hold_frames
        self._previous: npt.NDArray[np.uint8] | None = None
        self._mask: npt.NDArray[np.bool_] | None = None
        self._hold = 0

    def _shrink(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        height, width = image.shape[:2]
        scale = self.work_width / width
        small = cv2.resize(
            image, (self.work_width, max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        blurred: npt.NDArray[np.uint8] = cv2.GaussianBlur(grey, (5, 5), 0).astype(np.uint8, copy=False)
        return blurred

    def changed_fraction(self, image: npt.NDArray[np.uint8]) -> float:
        """Fraction of ROI pixels that changed since the previous frame (1.0 for the first frame)."""
        grey = self._shrink(image)
        if self._mask is None or self._mask.shape != grey.shape:
            self._mask = roi_mask(grey.shape[:2], self.roi)
            self._previous = None
        previous, self._previous = self._previous, grey
        if previous is None:
            return 1.0
        diff = cv2.absdiff(grey, previous) > self.pixel_threshold
        area = int(self._mask.sum())
        return float(np.count_nonzero(diff & self._mask)) / area if area else 0.0

    def has_motion(self, image: npt.NDArray[np.uint8]) -> bool:
        """Whether ``image`` should go to the recogniser."""
        if self.changed_fraction(image) > self.min_changed_fraction:
            self._hold = self.hold_frames
            return True
        if self._hold > 0:
            self._hold -= 1
            return True
        return False
