"""Frame sources: our one-method interface in front of OpenCV's FFmpeg capture.

:class:`LiveFrameSource` reads an RTSP camera on a background thread and keeps only the newest frame, so a
slow recogniser never builds up latency (older frames are dropped and counted). It reconnects with capped
exponential backoff and reports its state (``up``/``down``/``reconnecting``) for heartbeats.
:class:`FileFrameSource` replays a video file frame by frame, dropping nothing (benchmarks, replays).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from cordon.events import CameraState, CameraStatus
from edge import metrics
from edge.errors import CameraError

__all__ = ["FileFrameSource", "Frame", "FrameSource", "LiveFrameSource", "RateMeter", "open_capture"]

log = logging.getLogger(__name__)

# RTSP over TCP: no UDP packet loss smearing plates, and a dead server is noticed as a closed connection.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded BGR frame with its capture time (UTC) and its index within the stream."""

    image: Image
    captured_at: datetime
    index: int


class FrameSource(Protocol):
    """Anything that yields frames: ``read`` returns the next frame, or None if none came in ``timeout_s``."""

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        """Return the next frame, or None."""
        ...

    def status(self) -> CameraStatus:
        """Health of the stream for heartbeats."""
        ...

    @property
    def pending(self) -> int:
        """Frames decoded and waiting to be read (0 or 1 for a live source that keeps only the newest)."""
        ...

    def close(self) -> None:
        """Release the stream."""
        ...


def open_capture(url: str, *, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0) -> cv2.VideoCapture:
    """Open ``url`` (rtsp://, http://, or a file path) with OpenCV's FFmpeg backend and bounded timeouts."""
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(read_timeout_s * 1000),
    ]
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)


class RateMeter:
    """Events per second over a window of about ``window_s`` seconds; a statistic, not a precise count."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._start = time.monotonic()
        self._count = 0
        self._rate = 0.0
        self.total = 0

    def tick(self, n: int = 1) -> None:
        """Count ``n`` events now."""
        self.total += n
        self._count += n
        now = time.monotonic()
        if now - self._start >= self.window_s:
            self._rate = self._count / (now - self._start)
            self._count = 0
            self._start = now

    @property
    def rate(self) -> float:
        """Events per second in the last full window; 0 if nothing happened for two windows."""
        if time.monotonic() - self._start > 2 * self.window_s:
            return 0.0
        return round(self._rate, 2)


class LiveFrameSource:
    """A live camera read on a background thread; :meth:`read` always returns the newest unseen frame.

    Parameters
    ----------
    camera_id
        Id used in logs, metrics and heartbeats.
    url
        ``rtsp://`` URL (credentials may be embedded; they are never logged).
    backoff_initial_s, backoff_max_s
        Delay before the first reconnect attempt, doubling up to the cap, seconds.
    read_timeout_s
        A read that blocks longer than this counts as a lost stream, seconds.
    """

    def __init__(
        self,
        camera_id: str,
        url: str,
        *,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 2.0,
        read_timeout_s: float = 3.0,
    ) -> None:
        self.camera_id = camera_id
        self._url = url
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.read_timeout_s = read_timeout_s
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._state: CameraState = "reconnecting"
        self._down_since: datetime | None = datetime.now(UTC)
        self._last_frame_at: datetime | None = None
        self._fps = RateMeter()
        self._dropped = 0
        self._reconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera_id}", daemon=True)
        self._thread.start()

    @property
    def state(self) -> CameraState:
        """Current stream state."""
        return self._state

    def _set_state(self, state: CameraState) -> None:
        if state == self._state:
            return
        if state == "up":
            log.info("camera up", extra={"camera": self.camera_id})
            self._down_since = None
        elif self._state == "up":
            log.warning("camera stream lost", extra={"camera": self.camera_id, "state": state})
            self._down_since = datetime.now(UTC)
        self._state = state
        metrics.CAMERA_UP.labels(self.camera_id).set(1 if state == "up" else 0)

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            cap = open_capture(self._url, open_timeout_s=5.0, read_timeout_s=self.read_timeout_s)
            if not cap.isOpened():
                cap.release()
                self._set_state("down" if self._state == "up" else self._state)
                self._reconnects += 1
                metrics.RECONNECTS.labels(self.camera_id).inc()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                self._set_state("reconnecting")
                continue
            try:
                self._pump(cap)
            finally:
                cap.release()
            if self._state == "up":
                # A stream that ran and then failed gets retried at once; backoff restarts from the start.
                backoff = self.backoff_initial_s
            self._set_state("reconnecting")

    def _pump(self, cap: cv2.VideoCapture) -> None:
        """Read frames until the stream fails or the source is closed."""
        index = self._fps.total
        while not self._stop.is_set():
            ok, image = cap.read()
            if not ok or image is None:
                return
            now = datetime.now(UTC)
            self._set_state("up")
            frame = Frame(image=np.asarray(image, dtype=np.uint8), captured_at=now, index=index)
            index += 1
            with self._cond:
                if self._latest is not None:
                    self._dropped += 1
                    metrics.FRAMES_DROPPED.labels(self.camera_id).inc()
                self._latest = frame
                self._last_frame_at = now
                self._fps.tick()
                self._cond.notify()
            metrics.FRAMES.labels(self.camera_id).inc()

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        """Return the newest frame not yet returned, waiting up to ``timeout_s``; None if none arrived."""
        with self._cond:
            if self._latest is None:
                self._cond.wait(timeout_s)
            frame, self._latest = self._latest, None
            return frame

    def status(self) -> CameraStatus:
        """Health of the stream for heartbeats."""
        return CameraStatus(
            camera_id=self.camera_id,
            state=self._state,
            fps=self._fps.rate if self._state == "up" else 0.0,
            frames_dropped=self._dropped,
            reconnects=self._reconnects,
            last_frame_at=self._last_frame_at,
            down_since=self._down_since,
        )

    @property
    def pending(self) -> int:
        """1 if a decoded frame is waiting to be read, else 0."""
        return 0 if self._latest is None else 1

    def close(self) -> None:
        """Stop the reader thread and release the stream."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=self.read_timeout_s + 6.0)


class FileFrameSource:
    """Replays a video file, every frame in order (nothing dropped); capture times follow the file's clock.

    Parameters
    ----------
    camera_id
        Id used in heartbeats.
    path
        Video file readable by FFmpeg.
    start
        Capture time of the first frame (UTC); defaults to now.
    """

    def __init__(self, camera_id: str, path: Path, *, start: datetime | None = None) -> None:
        if not path.is_file():
            raise CameraError(f"camera {camera_id!r}: video file {str(path)!r} does not exist")
        self.camera_id = camera_id
        self._cap = open_capture(str(path))
        if not self._cap.isOpened():
            raise CameraError(f"camera {camera_id!r}: FFmpeg cannot open {str(path)!r}")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else 25.0
        self._start = start or datetime.now(UTC)
        self._index = 0
        self._ended = False

    @property
    def ended(self) -> bool:
        """Whether the last frame has been read."""
        return self._ended

    def read(self, timeout_s: float = 1.0) -> Frame | None:  # noqa: ARG002 - files never wait
        """Return the next frame, or None at the end of the file."""
        ok, image = self._cap.read()
        if not ok or image is None:
            self._ended = True
            return None
        captured_at = self._start + timedelta(seconds=self._index / self.fps)
        frame = Frame(image=np.asarray(image, dtype=np.uint8), captured_at=captured_at, index=self._index)
        self._index += 1
        return frame

    def status(self) -> CameraStatus:
        """Health of the replay for heartbeats."""
        return CameraStatus(camera_id=self.camera_id, state="down" if self._ended else "up", fps=self.fps)

    @property
    def pending(self) -> int:
        """Frames left in the file are not a backlog: a replay reads at its own pace."""
        return 0

    def close(self) -> None:
        """Release the file."""
        self._cap.release()
