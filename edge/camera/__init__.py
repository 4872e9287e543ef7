"""Demo camera: a synthetic traffic video with known UK plates, served over a real RTSP server.

:func:`render_traffic_video` draws vehicles passing a camera one at a time and writes the ground truth
(:class:`GroundTruth`) beside the mp4; :class:`RtspCameraServer` serves the mp4 with GStreamer's RTSP server,
like an IP camera, for tests, benchmarks and the ``cordon camera simulate`` demo.
"""

from edge.camera.render import (
    DEFAULT_PLATES,
    GroundTruth,
    Motion,
    PlateFormat,
    ProgressCallback,
    RenderError,
    VehiclePass,
    random_uk_plates,
    read_frame_marker,
    render_traffic_video,
    truth_path,
)
from edge.camera.server import RtspCameraServer, RtspServerError

__all__ = [
    "DEFAULT_PLATES",
    "GroundTruth",
    "Motion",
    "PlateFormat",
    "ProgressCallback",
    "RenderError",
    "RtspCameraServer",
    "RtspServerError",
    "VehiclePass",
    "random_uk_plates",
    "read_frame_marker",
    "render_traffic_video",
    "truth_path",
]
