"""The edge worker: cameras → motion gate → recogniser → tracker/voting → spool → Kafka, plus heartbeats.

Threads: one per camera (read, gate, recognise, track), one publisher (drains the spool), one heartbeat
sender. The recogniser is shared and called under a lock: ONNX Runtime already uses every core for one frame.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType

import cv2
from kafka import KafkaProducer
from kafka.errors import KafkaError

from cordon import __version__
from cordon.errors import BrokerError, ConfigError
from cordon.events import CameraStatus, Heartbeat, PlateRead, encode, utc_now
from edge import metrics
from edge.detections import Detection, Sighting
from edge.frames import FileFrameSource, Frame, FrameSource, LiveFrameSource, RateMeter
from edge.motion import MotionGate
from edge.publisher import SpoolPublisher, close_producer, make_producer
from edge.reads import pass_to_read
from edge.recognise import PlateRecogniser, build_recogniser
from edge.settings import CameraConfig, EdgeSettings
from edge.spool import Spool
from edge.tracking import PlatePass, PlateTracker

__all__ = ["CameraPipeline", "EdgeWorker", "run"]

log = logging.getLogger(__name__)

ReadSink = Callable[[PlateRead], None]


def _touches_edge(detection: Detection, frame: Frame, margin_px: int = 2) -> bool:
    """Whether the plate box touches the frame border: the plate may be cut off, so its text is unreliable."""
    height, width = frame.image.shape[:2]
    box = detection.bbox
    return (
        box.x1 < margin_px
        or box.y1 < margin_px
        or box.x2 >= width - margin_px
        or box.y2 >= height - margin_px
    )


class CameraPipeline:
    """Per-camera processing: frames in, one :class:`PlateRead` per vehicle pass out to ``sink``.

    Parameters
    ----------
    camera
        The camera's configuration.
    source
        Where frames come from.
    recogniser
        Shared plate recogniser (called under ``recogniser_lock``).
    sink
        Receives every finished read (the worker spools it).
    """

    def __init__(
        self,
        camera: CameraConfig,
        source: FrameSource,
        recogniser: PlateRecogniser,
        sink: ReadSink,
        *,
        edge_box_id: str,
        settings: EdgeSettings,
        recogniser_lock: threading.Lock | None = None,
    ) -> None:
        self.camera = camera
        self.source = source
        self.recogniser = recogniser
        self.sink = sink
        self.edge_box_id = edge_box_id
        self.gate = (
            MotionGate(roi=camera.roi, min_changed_fraction=settings.motion_min_changed_fraction)
            if settings.motion_gating
            else None
        )
        self.tracker = PlateTracker(
            max_gap_s=settings.tracker.max_gap_s,
            min_sightings=settings.tracker.min_sightings,
            repeat_suppression_s=settings.tracker.repeat_suppression_s,
            min_motion=settings.tracker.min_motion_plate_widths,
            duplicate_overlap=settings.tracker.duplicate_overlap,
        )
        self.jpeg_quality = settings.crop_jpeg_quality
        self.skip_edge_plates = settings.skip_plates_at_frame_edge
        self._lock = recogniser_lock or threading.Lock()
        self.recognised = RateMeter()
        self.reads = 0

    def process(self, frame: Frame) -> list[PlateRead]:
        """Gate, recognise and track one frame; publish and return the reads of passes that ended."""
        sightings: list[Sighting] = []
        if self.gate is None or self.gate.has_motion(frame.image):
            with self._lock, metrics.RECOGNISE_SECONDS.time():
                detections = self.recogniser.read(frame.image)
            self.recognised.tick()
            metrics.FRAMES_RECOGNISED.labels(self.camera.id).inc()
            sightings = [
                Sighting(
                    detection=d,
                    captured_at=frame.captured_at,
                    frame_index=frame.index,
                    crop_jpeg=self._crop_jpeg(frame, d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2),
                )
                for d in detections
                if d.text and not (self.skip_edge_plates and _touches_edge(d, frame))
            ]
        else:
            metrics.FRAMES_SKIPPED_NO_MOTION.labels(self.camera.id).inc()
        return self._emit(self.tracker.update(sightings, frame.captured_at))

    @property
    def frames_recognised(self) -> int:
        """Frames run through the recogniser so far."""
        return self.recognised.total

    def status(self) -> CameraStatus:
        """The camera's health, with the rate at which frames are being recognised."""
        return self.source.status().model_copy(update={"processed_fps": self.recognised.rate})

    def tick(self, now: datetime) -> list[PlateRead]:
        """Advance time with no frame (camera down or idle) so tracks that went quiet still end."""
        return self._emit(self.tracker.update([], now))

    def finish(self) -> list[PlateRead]:
        """End every open track (end of a replay, or shutdown) and publish their reads."""
        return self._emit(self.tracker.flush())

    def _emit(self, passes: list[PlatePass]) -> list[PlateRead]:
        reads = []
        for plate_pass in passes:
            read = pass_to_read(
                plate_pass,
                camera_id=self.camera.id,
                edge_box_id=self.edge_box_id,
                inbound_motion=self.camera.inbound_motion,
            )
            if read is None:
                continue
            self.sink(read)
            self.reads += 1
            metrics.READS.labels(self.camera.id).inc()
            log.info(
                "plate read",
                extra={
                    "camera": self.camera.id,
                    "plate": read.plate,
                    "read_id": str(read.read_id),
                    "frames": read.frames,
                    "confidence": round(read.confidence, 3),
                },
            )
            reads.append(read)
        return reads

    def _crop_jpeg(self, frame: Frame, x1: int, y1: int, x2: int, y2: int) -> bytes | None:
        crop = frame.image[y1 : y2 + 1, x1 : x2 + 1]
        if crop.size == 0:
            return None
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return bytes(buf) if ok else None

    def run(self, stop: threading.Event) -> None:
        """Process frames until ``stop`` is set (or a replayed file ends), then flush open tracks."""
        try:
            while not stop.is_set():
                frame = self.source.read(timeout_s=0.5)
                if frame is None:
                    if isinstance(self.source, FileFrameSource) and self.source.ended:
                        break
                    self.tick(utc_now())
                    continue
                self.process(frame)
        except Exception:
            log.exception("camera pipeline failed", extra={"camera": self.camera.id})
            raise
        finally:
            self.finish()


def open_source(camera: CameraConfig, settings: EdgeSettings) -> FrameSource:
    """Open the camera's stream (live URL) or file (replay)."""
    if camera.is_live:
        return LiveFrameSource(
            camera.id,
            camera.stream_url(),
            backoff_initial_s=settings.reconnect_backoff_initial_s,
            backoff_max_s=settings.reconnect_backoff_max_s,
        )
    return FileFrameSource(camera.id, Path(camera.url))


class EdgeWorker:
    """Runs every camera of one box, the spool publisher and the heartbeat sender.

    Parameters
    ----------
    settings
        The box's settings.
    recogniser
        A built recogniser; built from ``settings.recogniser`` when None.
    """

    def __init__(self, settings: EdgeSettings, *, recogniser: PlateRecogniser | None = None) -> None:
        if not settings.cameras:
            raise ConfigError("no cameras configured (CORDON_CAMERAS or `cameras:` in the config file)")
        self.settings = settings
        self.recogniser = recogniser or build_recogniser(settings.recogniser)
        self.spool = Spool(
            settings.spool_path, max_entries=settings.spool_max_reads, policy=settings.spool_full_policy
        )
        metrics.SPOOL_DEPTH.set(self.spool.depth)
        self.publisher = SpoolPublisher(
            self.spool, bootstrap=settings.kafka_bootstrap, client_id=settings.box_id
        )
        self.stop_event = threading.Event()
        self._pipelines_stop = threading.Event()
        lock = threading.Lock()
        self.pipelines = [
            CameraPipeline(
                camera,
                open_source(camera, settings),
                self.recogniser,
                self.spool_read,
                edge_box_id=settings.box_id,
                settings=settings,
                recogniser_lock=lock,
            )
            for camera in settings.cameras
        ]
        self._threads: list[threading.Thread] = []
        self._heartbeat_producer: KafkaProducer | None = None
        self.heartbeats_sent = 0

    def spool_read(self, read: PlateRead) -> None:
        """Durably spool a read for publishing (the only way a read leaves a pipeline)."""
        self.spool.append(
            event_id=str(read.read_id),
            topic=self.settings.reads_topic,
            key=read.camera_id.encode(),
            payload=encode(read),
        )
        metrics.SPOOL_DEPTH.set(self.spool.depth)
        self.publisher.notify()

    def heartbeat(self) -> Heartbeat:
        """The box's current health."""
        return Heartbeat(
            edge_box_id=self.settings.box_id,
            sent_at=utc_now(),
            cameras=tuple(p.status() for p in self.pipelines),
            queue_depth=sum(p.source.pending for p in self.pipelines),
            spool_depth=self.spool.depth,
            spool_dropped=self.spool.dropped,
            clock_offset_s=None,
            software_version=__version__,
        )

    def _send_heartbeat(self) -> None:
        """Queue the current heartbeat for sending; never waits for the broker.

        Heartbeats are not spooled: a missing beat is itself the signal that the box was cut off.
        """
        beat = self.heartbeat()
        try:
            if self._heartbeat_producer is None:
                self._heartbeat_producer = make_producer(
                    self.settings.kafka_bootstrap, client_id=f"{self.settings.box_id}-heartbeat"
                )
            future = self._heartbeat_producer.send(
                self.settings.heartbeats_topic, key=self.settings.box_id.encode(), value=encode(beat)
            )
            future.add_callback(self._heartbeat_sent)
            future.add_errback(lambda exc: log.warning("heartbeat not delivered", extra={"error": str(exc)}))
        except (BrokerError, KafkaError) as exc:
            log.warning("heartbeat not sent", extra={"error": str(exc)})
            if self._heartbeat_producer is not None:
                close_producer(self._heartbeat_producer)
                self._heartbeat_producer = None

    def _heartbeat_sent(self, _metadata: object) -> None:
        self.heartbeats_sent += 1

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.wait(self.settings.heartbeat_interval_s):
            self._send_heartbeat()
        if self._heartbeat_producer is not None:
            close_producer(self._heartbeat_producer, timeout_s=2.0)

    def start(self) -> EdgeWorker:
        """Start every thread; returns at once."""
        for pipeline in self.pipelines:
            self._threads.append(
                threading.Thread(
                    target=pipeline.run, args=(self._pipelines_stop,), name=f"pipe-{pipeline.camera.id}"
                )
            )
        self._publisher_thread = threading.Thread(
            target=self.publisher.run, args=(self.stop_event,), name="publisher"
        )
        self._heartbeat_thread = threading.Thread(target=self._heartbeat_loop, name="heartbeat")
        for thread in [*self._threads, self._publisher_thread, self._heartbeat_thread]:
            thread.daemon = True
            thread.start()
        log.info(
            "edge worker started",
            extra={
                "box": self.settings.box_id,
                "cameras": [c.id for c in self.settings.cameras],
                "spool_depth": self.spool.depth,
            },
        )
        return self

    def wait_cameras(self, timeout_s: float | None = None) -> bool:
        """Wait until every camera pipeline has ended (replayed files); True if all ended."""
        for thread in self._threads:
            thread.join(timeout_s)
        return not any(t.is_alive() for t in self._threads)

    def stop(self) -> None:
        """Stop cameras (flushing open tracks into the spool), then the publisher and heartbeats."""
        self._pipelines_stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        for pipeline in self.pipelines:
            pipeline.source.close()
        self.stop_event.set()
        self._publisher_thread.join(timeout=30)
        self._heartbeat_thread.join(timeout=15)
        self.spool.close()
        log.info("edge worker stopped", extra={"box": self.settings.box_id})


def run(settings: EdgeSettings) -> None:
    """Run the edge worker until SIGINT/SIGTERM (or until every replayed file has ended)."""
    from prometheus_client import start_http_server

    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0")
    worker = EdgeWorker(settings).start()
    done = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received; stopping", extra={"signal": signum})
        done.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    live = any(c.is_live for c in settings.cameras)
    while not done.wait(0.5):
        if not live and worker.wait_cameras(0):
            break
    worker.stop()
