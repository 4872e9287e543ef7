"""Prometheus metrics of the edge worker (served by :func:`prometheus_client.start_http_server`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BROKER_UP",
    "CAMERA_UP",
    "FRAMES",
    "FRAMES_DROPPED",
    "FRAMES_RECOGNISED",
    "FRAMES_SKIPPED_NO_MOTION",
    "PUBLISHED",
    "PUBLISH_ERRORS",
    "READS",
    "RECOGNISE_SECONDS",
    "RECONNECTS",
    "SPOOL_DEPTH",
    "SPOOL_DROPPED",
]

FRAMES = Counter("cordon_edge_frames_total", "Frames decoded from the camera", ["camera"])
FRAMES_DROPPED = Counter(
    "cordon_edge_frames_dropped_total", "Frames replaced by a newer one before recognition", ["camera"]
)
FRAMES_SKIPPED_NO_MOTION = Counter(
    "cordon_edge_frames_skipped_no_motion_total",
    "Frames skipped: no motion in the region of interest",
    ["camera"],
)
FRAMES_RECOGNISED = Counter(
    "cordon_edge_frames_recognised_total", "Frames run through the recogniser", ["camera"]
)
RECOGNISE_SECONDS = Histogram(
    "cordon_edge_recognise_seconds",
    "Recogniser time per frame",
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
)
READS = Counter("cordon_edge_reads_total", "Plate reads (vehicle passes) spooled", ["camera"])
CAMERA_UP = Gauge("cordon_edge_camera_up", "1 if the camera stream is up", ["camera"])
RECONNECTS = Counter("cordon_edge_camera_reconnects_total", "Camera reconnect attempts", ["camera"])
SPOOL_DEPTH = Gauge("cordon_edge_spool_depth", "Reads spooled and not yet acknowledged by Kafka")
SPOOL_DROPPED = Counter("cordon_edge_spool_dropped_total", "Reads dropped because the spool was full")
PUBLISHED = Counter("cordon_edge_published_total", "Messages acknowledged by Kafka")
PUBLISH_ERRORS = Counter("cordon_edge_publish_errors_total", "Failed publish attempts")
BROKER_UP = Gauge("cordon_edge_broker_up", "1 if the last publish to Kafka succeeded")
