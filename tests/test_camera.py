"""The demo camera against the real things.

ffmpeg's H.264 encoder, GStreamer's RTSP server, OpenCV's FFmpeg capture and the fast-alpr recogniser with
the offline models in ``../shared/models`` (never downloaded).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from typer.testing import CliRunner

import edge.camera
from edge.camera import (
    GroundTruth,
    RenderError,
    RtspCameraServer,
    RtspServerError,
    random_uk_plates,
    read_frame_marker,
    render_traffic_video,
    truth_path,
)
from edge.camera.cli import camera_app

Frame = npt.NDArray[np.uint8]

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
PLATES = ("AB12 CDE", "P427 HFR", "LV70 XKM")  # current, prefix, current
TIMEOUTS = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10_000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 10_000]


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    """A 720p video of three vehicles (towards, away, towards), ~15 s, and its ground truth."""
    path = tmp_path_factory.mktemp("camera") / "traffic.mp4"
    truth = render_traffic_video(path, plates=PLATES, seconds_per_vehicle=4.0, gap_s=1.0, seed=3)
    return path, truth


@pytest.fixture
def rtsp_over_tcp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make OpenCV's FFmpeg backend use RTSP over TCP (interleaved), as the edge worker does."""
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


def _decode(path: Path) -> Iterator[Frame]:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert capture.isOpened(), f"OpenCV cannot open {path}"
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield np.asarray(frame, dtype=np.uint8)
    finally:
        capture.release()


def _open(url: str) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, TIMEOUTS)
    assert capture.isOpened(), f"OpenCV cannot open {url}"
    return capture


def _read_indices(capture: cv2.VideoCapture, count: int, shape: tuple[int, ...]) -> list[int]:
    """Read ``count`` frames and return their burnt-in frame indices."""
    indices: list[int] = []
    for _ in range(count):
        ok, frame = capture.read()
        assert ok, f"stream ended after {len(indices)} frames"
        assert frame.shape == shape
        index = read_frame_marker(frame)
        assert index is not None, "frame without a valid frame marker"
        indices.append(index)
    return indices


def _assert_consecutive(indices: list[int]) -> None:
    steps = Counter(b - a for a, b in itertools.pairwise(indices))
    assert set(steps) == {1}, f"frames skipped or repeated: steps {dict(steps)} in {indices}"


# --- pure parts ---------------------------------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert sorted(edge.camera.__all__) == [
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


def test_random_plates_are_valid_current_format_and_reproducible() -> None:
    plates = random_uk_plates(200, seed=11)
    current = re.compile(r"[A-HK-PR-WY][A-HK-PR-Y](0[2-9]|1[0-9]|2[0-5]|5[1-9]|6[0-9]|7[0-5]) [A-HK-PR-Z]{3}")
    assert all(current.fullmatch(p) for p in plates), [p for p in plates if not current.fullmatch(p)]
    assert len(set(plates)) == 200
    assert random_uk_plates(200, seed=11) == plates
    assert random_uk_plates(200, seed=12) != plates


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"plates": ["AB12 CD!"]}, "2-7 characters"),
        ({"plates": ["ABCD1234"]}, "2-7 characters"),
        ({"plates": []}, "must not be empty"),
        ({"width": 1279}, "even"),
        ({"seconds_per_vehicle": 1.0}, "seconds_per_vehicle"),
        ({"gap_s": -1.0}, "gap_s"),
        ({"fps": 0}, "fps"),
    ],
)
def test_render_rejects_bad_options(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_traffic_video(tmp_path / "x.mp4", **options)
    assert not list(tmp_path.iterdir())


def test_render_without_ffmpeg_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"apt-get install ffmpeg"):
        render_traffic_video(tmp_path / "x.mp4", ffmpeg="cordon-no-such-ffmpeg")


def test_render_needs_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        render_traffic_video(tmp_path / "missing" / "x.mp4")


def test_cli_offers_simulate() -> None:
    result = CliRunner().invoke(camera_app, ["simulate", "--help"])
    assert result.exit_code == 0, result.output
    assert "--loop" in result.output
    assert "--video" in result.output


def test_frame_marker_rejects_frames_without_one() -> None:
    assert read_frame_marker(np.zeros((720, 1280, 3), np.uint8)) is None
    assert read_frame_marker(np.full((720, 1280, 3), 255, np.uint8)) is None


# --- rendering (ffmpeg) ----------------------------------------------------------------------------------


def test_small_render_decodes_with_marked_frames(tmp_path: Path) -> None:
    path = tmp_path / "small.mp4"
    truth = render_traffic_video(
        path, plates=["ab12cde"], width=640, height=360, seconds_per_vehicle=2.0, gap_s=0.4
    )
    frames = list(_decode(path))
    assert len(frames) == truth.frame_count
    assert 55 <= truth.frame_count <= 65  # (2.0 s +- 8 % for the vehicle + 0.4 s of gap) x 25 fps
    assert [read_frame_marker(f) for f in frames] == list(range(len(frames)))
    assert truth.passes[0].plate == "AB12 CDE"
    assert truth.passes[0].plate_normalised == "AB12CDE"


@pytest.mark.slow
def test_rendered_video_decodes_and_matches_its_truth(traffic: tuple[Path, GroundTruth]) -> None:
    path, truth = traffic
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
    capture.release()
    frames = list(_decode(path))
    assert len(frames) == truth.frame_count
    assert {f.shape for f in frames} == {(720, 1280, 3)}
    assert [read_frame_marker(f) for f in frames] == list(range(truth.frame_count))

    # The truth file beside the video says the same, in plain JSON.
    assert GroundTruth.load(truth_path(path)) == truth
    raw = json.loads(truth_path(path).read_text(encoding="utf-8"))
    assert raw["video"] == "traffic.mp4"
    assert [(p["plate"], p["plate_normalised"], p["motion"]) for p in raw["passes"]] == [
        ("AB12 CDE", "AB12CDE", "down"),
        ("P427 HFR", "P427HFR", "up"),
        ("LV70 XKM", "LV70XKM", "down"),
    ]
    assert [(p.side, p.plate_colour, p.plate_format) for p in truth.passes] == [
        ("front", "white", "current"),
        ("rear", "yellow", "prefix"),
        ("front", "white", "current"),
    ]

    # One vehicle at a time, with empty road before, between and after; each plate readable for >= 2 s.
    assert truth.passes[0].t_in_s > 0.3
    for before, after in itertools.pairwise(truth.passes):
        assert after.t_in_s - before.t_out_s >= 0.9
    assert truth.duration_s - truth.passes[-1].t_out_s > 0.3
    for p in truth.passes:
        assert p.t_in_s <= p.plate_from_s < p.plate_until_s <= p.t_out_s
        assert p.plate_seconds >= 2.0
        assert p.plate_width_min_px >= 150
        assert p.plate_width_max_px > p.plate_width_min_px * 1.3  # it grows or shrinks as it moves

    # Pixels agree with the truth: an empty road differs from the first frame only by noise; a frame with a
    # vehicle differs strongly on a good part of the frame.
    def changed(a: int, b: int) -> float:
        """Fraction of pixels of frames ``a`` and ``b`` differing by more than 40 grey levels."""
        return float(np.mean(cv2.absdiff(frames[a], frames[b]).max(axis=2) > 40))

    gap_frame = round((truth.passes[0].t_out_s + truth.passes[1].t_in_s) / 2 * truth.fps)
    assert truth.pass_at_frame(gap_frame) is None
    assert changed(0, gap_frame) < 0.001
    for p in truth.passes:
        middle = (p.plate_first_frame + p.plate_last_frame) // 2
        assert truth.pass_at_frame(middle) == p
        assert changed(0, middle) > 0.1


@pytest.mark.slow
def test_renders_1080p_with_the_same_scene_scaled(tmp_path: Path) -> None:
    path = tmp_path / "hd.mp4"
    truth = render_traffic_video(
        path, plates=["YK19 RFN"], width=1920, height=1080, fps=10, seconds_per_vehicle=2.0, gap_s=0.4
    )
    frames = list(_decode(path))
    assert len(frames) == truth.frame_count
    assert {f.shape for f in frames} == {(1080, 1920, 3)}
    assert read_frame_marker(frames[-1]) == truth.frame_count - 1
    assert truth.passes[0].plate_width_min_px >= 1.5 * 170


# --- the RTSP server (GStreamer) -------------------------------------------------------------------------


def test_server_reports_a_video_it_cannot_serve(tmp_path: Path) -> None:
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video", encoding="utf-8")
    with pytest.raises(RtspServerError, match=r"H\.264 mp4"):
        RtspCameraServer(not_video).start()
    with pytest.raises(RtspServerError, match="python3-gi"):
        RtspCameraServer(not_video, python="/nonexistent/python3").start()
    with pytest.raises(FileNotFoundError):
        RtspCameraServer(tmp_path / "missing.mp4").start()


@pytest.mark.slow
@pytest.mark.usefixtures("rtsp_over_tcp")
def test_rtsp_serves_the_video_to_several_clients(traffic: tuple[Path, GroundTruth]) -> None:
    path, truth = traffic
    with RtspCameraServer(path) as server:
        assert server.url == f"rtsp://127.0.0.1:{server.port}/cam1"
        first = _open(server.url)
        start = _read_indices(first, 30, (truth.height, truth.width, 3))
        assert start[0] == 0  # the first client gets the video from its first frame
        _assert_consecutive(start)

        # A second client joins the shared stream where it is (at a keyframe), without rewinding the first.
        second = _open(server.url)
        joined = _read_indices(second, 10, (truth.height, truth.width, 3))
        _assert_consecutive(joined)
        assert joined[0] >= 25
        assert joined[0] % truth.fps == 0
        _assert_consecutive(start + _read_indices(first, 40, (truth.height, truth.width, 3)))
        first.release()
        second.release()


@pytest.mark.slow
@pytest.mark.usefixtures("rtsp_over_tcp")
def test_rtsp_server_killed_then_restarted_on_the_same_port(traffic: tuple[Path, GroundTruth]) -> None:
    path, truth = traffic
    shape = (truth.height, truth.width, 3)
    with RtspCameraServer(path) as server:
        url, port = server.url, server.port
        capture = _open(url)
        _read_indices(capture, 10, shape)

        server.kill()
        assert not server.running
        deadline = time.monotonic() + 10.0
        while capture.read()[0]:  # frames already buffered, then the dead connection
            assert time.monotonic() < deadline, "the client never noticed the server died"
        capture.release()

        server.restart()
        assert server.running
        assert (server.url, server.port) == (url, port)
        capture = _open(url)
        indices = _read_indices(capture, 10, shape)
        assert indices[0] == 0  # a new stream, from the start
        _assert_consecutive(indices)
        capture.release()


@pytest.mark.slow
@pytest.mark.usefixtures("rtsp_over_tcp")
def test_rtsp_loop_repeats_the_video_without_breaking_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "short.mp4"
    truth = render_traffic_video(
        path, plates=["BD51 SMR"], width=640, height=360, seconds_per_vehicle=2.0, gap_s=0.4
    )
    with RtspCameraServer(path, loop=True) as server:
        capture = _open(server.url)
        indices = _read_indices(capture, 2 * truth.frame_count + 20, (360, 640, 3))
        capture.release()
    # Starting a looping stream repeats its first frame or two once (see rtsp_server.py); after that every
    # frame follows the previous one, and the last frame of the file is followed by the first.
    restart = next((i for i in range(1, 5) if indices[i] <= indices[i - 1]), 0)
    indices = indices[restart:]
    last = truth.frame_count - 1
    steps = [(a, b) for a, b in itertools.pairwise(indices) if b != a + 1]
    assert steps, "the video never looped"
    assert set(steps) == {(last, 0)}


# --- the recogniser reads what the truth says ------------------------------------------------------------


@pytest.fixture(scope="module")
def alpr() -> Any:
    """fast-alpr with the offline models, loaded exactly as ../shared/models/README.md shows (no download)."""
    if not MODELS.is_dir():
        pytest.fail(f"plate models not found at {MODELS}; see the team's shared/models/README.md")
    from fast_alpr import ALPR
    from fast_alpr.base import BaseDetector
    from open_image_models import create_detector

    class LocalPlateDetector(BaseDetector):  # type: ignore[misc]
        """open-image-models YOLOv9 plate detector loaded from a local ONNX file (no download)."""

        def __init__(
            self,
            model_path: Path,
            conf_thresh: float = 0.4,
            providers: tuple[str, ...] = ("CPUExecutionProvider",),
        ) -> None:
            self._det = create_detector(
                model_path,
                backend="yolo_v9",
                class_labels=("License Plate",),
                conf_thresh=conf_thresh,
                providers=list(providers),
            )

        def predict(self, frame: Frame) -> Any:
            return self._det.predict(frame)

    return ALPR(
        detector=LocalPlateDetector(MODELS / "yolo-v9-t-416-license-plates-end2end-int8.onnx"),
        ocr_model=None,
        ocr_model_path=MODELS / "cct_xs_v2_global.onnx",
        ocr_config_path=MODELS / "cct_xs_v2_global_plate_config.yaml",
        ocr_device="cpu",
    )


@pytest.mark.slow
def test_fast_alpr_reads_every_plate_on_most_frames(
    traffic: tuple[Path, GroundTruth], alpr: Any, record_property: Any
) -> None:
    path, truth = traffic
    reads: dict[int, Counter[str]] = {p.index: Counter() for p in truth.passes}
    sampled: Counter[int] = Counter()
    empty_road_reads = []
    for n, frame in enumerate(_decode(path)):
        vehicle = truth.pass_at_frame(n)
        if vehicle is None:
            if n % 10 == 0:  # empty road: nothing may be read
                empty_road_reads += [r.ocr.text for r in alpr.predict(frame) if r.ocr and r.ocr.text]
            continue
        if not vehicle.plate_first_frame <= n <= vehicle.plate_last_frame or n % 4:
            continue  # sample every fourth frame where the whole plate is in view
        sampled[vehicle.index] += 1
        texts = {r.ocr.text for r in alpr.predict(frame) if r.ocr}
        reads[vehicle.index].update(texts or {"<none>"})

    assert not empty_road_reads
    for p in truth.passes:
        rate = reads[p.index][p.plate_normalised] / sampled[p.index]
        record_property(f"read_rate_{p.plate_normalised}", round(rate, 3))
        print(f"{p.plate} ({p.side}, {p.motion}): read on {rate:.0%} of {sampled[p.index]} frames")
        assert sampled[p.index] >= 12
        assert rate >= 0.8, f"{p.plate} read on only {rate:.0%} of frames: {reads[p.index]}"
        misreads = sum(c for text, c in reads[p.index].items() if text not in {p.plate_normalised, "<none>"})
        assert misreads <= 0.1 * sampled[p.index], f"{p.plate} misread: {reads[p.index]}"
