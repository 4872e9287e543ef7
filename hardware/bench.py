"""Measure the edge pipeline on the box it runs on, for sizing (``cordon hardware bench``).

For each resolution (720p, 1080p) a synthetic H.264 traffic video with known plates is rendered once and
cached (:func:`edge.camera.render.render_traffic_video`); then, for at most ``seconds`` each:

1. **decode only**: an :func:`edge.frames.open_capture` read loop — the box's H.264 decode rate;
2. **the whole pipeline**: :class:`edge.frames.FileFrameSource` → :meth:`edge.worker.CameraPipeline.process`
   (motion gate, the real fast-alpr recogniser from local model files, tracker, read building), timing the
   recogniser's calls, the process's CPU time and its peak resident memory (psutil).

The result is a :class:`hardware.profiles.Measurement`, written as YAML for ``cordon hardware size``.
``benchmarks/edge_bench.py`` uses the same measuring functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cordon.events import PlateRead
from edge.camera import render as render_module
from edge.camera.render import DEFAULT_PLATES, GroundTruth, random_uk_plates, render_traffic_video, truth_path
from edge.detections import Detection
from edge.frames import FileFrameSource, open_capture
from edge.recognise import PlateRecogniser, build_recogniser
from edge.settings import CameraConfig, EdgeSettings, RecogniserSettings
from edge.worker import CameraPipeline
from hardware.errors import BenchError
from hardware.machine import (
    cpu_model,
    hostname,
    logical_cpus,
    onnx_providers_available,
    package_version,
    ram_gb,
)
from hardware.profiles import (
    RESOLUTIONS,
    MachineInfo,
    Measurement,
    ProfileKind,
    Resolution,
    StreamMeasurement,
)

__all__ = [
    "DecodeResult",
    "PipelineRun",
    "TimedRecogniser",
    "VideoInfo",
    "default_output",
    "machine_info",
    "measure_decode",
    "prepare_video",
    "progress_bar",
    "run_bench",
    "run_pipeline",
    "warm_up",
]

DEFAULT_FPS = 25
DEFAULT_SEED = 0
BOX_ID = "bench-box"
_SECONDS_PER_PASS = 7.0  # 5 s vehicle + 2 s empty road, the renderer's defaults
_START = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)  # capture time of a replay's first frame

Image = npt.NDArray[np.uint8]


def progress_bar(console: Console) -> Progress:
    """The progress bar every bench stage shows."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


# --- The video ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """A bench video: size in pixels, length in frames and seconds, and its ground-truth passes."""

    path: str
    width: int
    height: int
    fps: int
    frames: int
    duration_s: float
    passes: int
    plates: tuple[str, ...]
    cached: bool
    render_s: float | None


def _layout(seconds: float) -> tuple[int, float, float]:
    """Split ``seconds`` of video into ``(vehicles, seconds_per_vehicle, gap_s)`` at the renderer's 5:2."""
    vehicles = max(1, round(seconds / _SECONDS_PER_PASS))
    per = seconds / vehicles
    gap = per * 2.0 / _SECONDS_PER_PASS
    return vehicles, per - gap, gap


def _video_info(video: Path, truth: GroundTruth, *, cached: bool, render_s: float | None) -> VideoInfo:
    return VideoInfo(
        path=str(video),
        width=truth.width,
        height=truth.height,
        fps=truth.fps,
        frames=truth.frame_count,
        duration_s=round(truth.duration_s, 3),
        passes=len(truth.passes),
        plates=tuple(p.plate_normalised for p in truth.passes),
        cached=cached,
        render_s=None if render_s is None else round(render_s, 3),
    )


def prepare_video(
    workdir: Path,
    *,
    seconds: float,
    height: int,
    progress: Progress,
    fps: int = DEFAULT_FPS,
    seed: int = DEFAULT_SEED,
) -> tuple[Path, GroundTruth, VideoInfo]:
    """Render a bench video into ``workdir``, or reuse the cached one made with the same parameters.

    Parameters
    ----------
    workdir
        Cache folder (created if missing).
    seconds
        Approximate length, seconds (at least 3).
    height
        Frame height, pixels; the width is 16:9 of it.
    progress
        Shows rendering progress.
    fps, seed
        Frame rate (frames per second) and random seed of the rendering.
    """
    if seconds < 3:
        raise BenchError(f"the bench video must be at least 3 s long, got {seconds}")
    workdir.mkdir(parents=True, exist_ok=True)
    width = height * 16 // 9
    width += width % 2
    # The renderer's source is part of the key: a changed renderer may draw a different video.
    renderer = hashlib.sha256(Path(render_module.__file__).read_bytes()).hexdigest()[:10]
    video = workdir / f"traffic-{width}x{height}-{fps}fps-{seconds:g}s-seed{seed}-{renderer}.mp4"
    truth_file = truth_path(video)
    if video.is_file() and truth_file.is_file():
        with contextlib.suppress(ValueError, OSError):
            truth = GroundTruth.load(truth_file)
            if (truth.width, truth.height, truth.fps) == (width, height, fps):
                return video, truth, _video_info(video, truth, cached=True, render_s=None)
    vehicles, per_vehicle, gap = _layout(seconds)
    plates = (
        list(DEFAULT_PLATES[:vehicles])
        if vehicles <= len(DEFAULT_PLATES)
        else random_uk_plates(vehicles, seed=seed)
    )
    task = progress.add_task(f"render {width}x{height} H.264", total=None)

    def _on_frame(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    start = time.perf_counter()
    truth = render_traffic_video(
        video,
        plates=plates,
        width=width,
        height=height,
        fps=fps,
        seconds_per_vehicle=per_vehicle,
        gap_s=gap,
        seed=seed,
        progress=_on_frame,
    )
    render_s = time.perf_counter() - start
    for stale in workdir.glob(video.name.replace(renderer, "*")):
        if stale != video:  # the same video drawn by an older renderer
            stale.unlink(missing_ok=True)
            truth_path(stale).unlink(missing_ok=True)
    return video, truth, _video_info(video, truth, cached=False, render_s=render_s)


# --- Decode only -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """Decode-only read loop over a file (or its first ``max_seconds``)."""

    frames: int
    seconds: float
    fps: float
    cpu_ms_per_frame: float
    """CPU time of this process (every thread) per frame, ms: steadier than wall time on a busy machine."""


def measure_decode(
    video: Path, *, frames_hint: int, progress: Progress, max_seconds: float | None = None
) -> DecodeResult:
    """Time an :func:`open_capture` read loop (every frame decoded to BGR) to the end or ``max_seconds``.

    Raises
    ------
    BenchError
        FFmpeg cannot open the file or decodes no frame.
    """
    cap = open_capture(str(video))
    if not cap.isOpened():
        raise BenchError(f"FFmpeg cannot open {video}")
    task = progress.add_task("decode only", total=frames_hint)
    frames = 0
    try:
        cpu_start, start = time.process_time(), time.perf_counter()
        while max_seconds is None or time.perf_counter() - start < max_seconds:
            ok, image = cap.read()
            if not ok or image is None:
                break
            frames += 1
            progress.advance(task)
        seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        cap.release()
    if frames == 0:
        raise BenchError(f"FFmpeg decoded no frame of {video}")
    progress.update(task, total=frames, completed=frames)
    return DecodeResult(
        frames=frames,
        seconds=round(seconds, 4),
        fps=round(frames / seconds, 2),
        cpu_ms_per_frame=round(1000 * cpu_s / frames, 2),
    )


# --- The whole pipeline ------------------------------------------------------------------------------------


class TimedRecogniser:
    """A :class:`edge.recognise.PlateRecogniser` that times every call of the one it wraps (seconds).

    Calls that found at least one plate with text are also counted apart (:attr:`plate_seconds`,
    :attr:`plates`), for the time it takes to read a plate.
    """

    def __init__(self, inner: PlateRecogniser) -> None:
        self.inner = inner
        self.calls = 0
        self.seconds = 0.0
        self.plates = 0
        self.plate_seconds = 0.0

    def read(self, image: Image) -> list[Detection]:
        """Delegate to the wrapped recogniser, adding the call's wall time to :attr:`seconds`."""
        start = time.perf_counter()
        detections: list[Detection] = []
        try:
            detections = self.inner.read(image)
            return detections
        finally:
            elapsed = time.perf_counter() - start
            self.seconds += elapsed
            self.calls += 1
            found = sum(1 for d in detections if d.text)
            if found:
                self.plates += found
                self.plate_seconds += elapsed


def warm_up(recogniser: PlateRecogniser, video: Path, truth: GroundTruth) -> None:
    """Recognise one frame showing a plate twice: ONNX Runtime's first runs allocate and optimise."""
    middle = truth.passes[0]
    cap = open_capture(str(video))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, (middle.plate_first_frame + middle.plate_last_frame) // 2)
        ok, image = cap.read()
    finally:
        cap.release()
    if ok and image is not None:
        for _ in range(2):
            recogniser.read(np.asarray(image, dtype=np.uint8))


class _PeakRss:
    """Samples this process's resident memory on a thread while in use; :attr:`peak` in bytes."""

    def __init__(self, interval_s: float = 0.05) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak = self._process.memory_info().rss

    def _sample(self) -> None:
        self.peak = max(self.peak, self._process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """What one pipeline run over a file did; times in seconds, memory in bytes."""

    motion_gating: bool
    frames: int
    frames_recognised: int
    seconds: float
    decode_seconds: float
    recognise_seconds: float
    recognise_calls: int
    plate_seconds: float
    plates_found: int
    cpu_seconds: float
    peak_rss_bytes: int
    reads: tuple[PlateRead, ...]

    @property
    def fps(self) -> float:
        """Frames processed per second of wall time."""
        return self.frames / self.seconds


def run_pipeline(
    video: Path,
    recogniser: PlateRecogniser,
    *,
    motion_gating: bool,
    progress: Progress,
    label: str,
    total_frames: int,
    max_seconds: float | None = None,
) -> PipelineRun:
    """Run ``FileFrameSource`` → ``CameraPipeline.process`` over the file (or its first ``max_seconds``).

    Open tracks are flushed at the end, as at shutdown; the flush is inside the timed window.

    Raises
    ------
    BenchError
        No frame could be read.
    """
    settings = EdgeSettings.load(
        box_id=BOX_ID,
        cameras=(CameraConfig(id="bench-cam1", url=str(video), inbound_motion="down"),),
        motion_gating=motion_gating,
        metrics_port=None,
    )
    timed = TimedRecogniser(recogniser)
    reads: list[PlateRead] = []
    source = FileFrameSource("bench-cam1", video, start=_START)
    pipeline = CameraPipeline(
        settings.cameras[0], source, timed, reads.append, edge_box_id=BOX_ID, settings=settings
    )
    task = progress.add_task(label, total=total_frames)
    frames = 0
    decode_s = 0.0
    try:
        with _PeakRss() as rss:
            cpu_start, start = time.process_time(), time.perf_counter()
            while max_seconds is None or time.perf_counter() - start < max_seconds:
                t0 = time.perf_counter()
                frame = source.read()
                decode_s += time.perf_counter() - t0
                if frame is None:
                    break
                pipeline.process(frame)
                frames += 1
                progress.advance(task)
            pipeline.finish()
            seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        source.close()
    if frames == 0:
        raise BenchError(f"no frame of {video} could be read")
    progress.update(task, total=frames, completed=frames)
    return PipelineRun(
        motion_gating=motion_gating,
        frames=frames,
        frames_recognised=pipeline.frames_recognised,
        seconds=seconds,
        decode_seconds=decode_s,
        recognise_seconds=timed.seconds,
        recognise_calls=timed.calls,
        plate_seconds=timed.plate_seconds,
        plates_found=timed.plates,
        cpu_seconds=cpu_s,
        peak_rss_bytes=rss.peak,
        reads=tuple(reads),
    )


# --- The bench ---------------------------------------------------------------------------------------------


def machine_info() -> MachineInfo:
    """Describe this machine and the versions of the engines being measured."""
    import onnxruntime
    import psutil

    return MachineInfo(
        hostname=hostname()[:255] or "unknown",
        platform=platform.platform(),
        cpu_model=cpu_model(),
        cpu_arch=platform.machine() or "unknown",
        logical_cpus=logical_cpus(),
        physical_cores=psutil.cpu_count(logical=False),
        ram_gb=ram_gb(),
        onnx_providers_available=onnx_providers_available(),
        python=platform.python_version(),
        onnxruntime=str(onnxruntime.__version__),
        opencv=str(cv2.__version__),
        fast_alpr=package_version("fast-alpr"),
    )


def _stream(
    resolution: Resolution, truth: GroundTruth, decode: DecodeResult, run: PipelineRun
) -> StreamMeasurement:
    truth_plates = {p.plate_normalised for p in truth.passes}
    return StreamMeasurement(
        resolution=resolution,
        width=truth.width,
        height=truth.height,
        source_fps=truth.fps,
        motion_gating=run.motion_gating,
        frames=run.frames,
        seconds=round(run.seconds, 3),
        decode_fps=round(decode.fps, 2),
        processed_fps=round(run.fps, 2),
        frames_recognised=run.frames_recognised,
        recognise_ms_per_call=round(1000 * run.recognise_seconds / max(run.recognise_calls, 1), 2),
        ms_per_plate=round(1000 * run.plate_seconds / run.plates_found, 2) if run.plates_found else None,
        plates_found=run.plates_found,
        reads=len(run.reads),
        reads_correct=sum(r.plate in truth_plates for r in run.reads),
        cpu_percent=round(100 * run.cpu_seconds / run.seconds, 1),
        peak_rss_mb=round(run.peak_rss_bytes / 1e6, 1),
    )


def run_bench(
    *,
    model_dir: Path,
    workdir: Path,
    console: Console,
    resolutions: Sequence[Resolution] = ("720p", "1080p"),
    seconds: float = 20.0,
    video_seconds: float = 14.0,
    motion_gating: bool = True,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    profile: ProfileKind | None = None,
    notes: str = "",
) -> Measurement:
    """Measure decode and the whole pipeline at each resolution on this box.

    Parameters
    ----------
    model_dir
        Directory of the local plate model files (never downloaded).
    workdir
        Cache of the rendered videos.
    console
        Where progress bars go.
    resolutions
        Which resolutions to measure, each once.
    seconds
        Longest time spent on each of decode and pipeline per resolution, s.
    video_seconds
        Length of the rendered videos, s (at least 3); the runs stop at its end if it is shorter.
    motion_gating
        Whether frames without motion skip recognition, as deployed.
    providers
        ONNX Runtime execution providers for the recogniser, in order.
    profile
        Which profile kind this box is, recorded in the measurement.
    notes
        Free text recorded in the measurement.

    Raises
    ------
    BenchError
        An argument is out of range, a provider is not in this ONNX Runtime build, or a video cannot be made.
    edge.errors.ModelNotFoundError
        A model file is missing from ``model_dir``.
    """
    if not resolutions or len(set(resolutions)) != len(resolutions):
        raise BenchError(f"give each resolution once, got {list(resolutions)}")
    if seconds <= 0:
        raise BenchError(f"seconds must be > 0, got {seconds}")
    available = onnx_providers_available()
    missing = [p for p in providers if p not in available]
    if missing:
        raise BenchError(f"ONNX Runtime here has no {missing}; available: {list(available)}")
    measured_at = datetime.now(UTC).replace(microsecond=0)
    streams = []
    with progress_bar(console) as progress:
        load = progress.add_task("load recogniser", total=None)
        t0 = time.perf_counter()
        recogniser = build_recogniser(RecogniserSettings(model_dir=model_dir, providers=tuple(providers)))
        load_s = time.perf_counter() - t0
        progress.update(load, total=1, completed=1)
        for resolution in resolutions:
            height = RESOLUTIONS[resolution][1]
            video, truth, _info = prepare_video(
                workdir, seconds=video_seconds, height=height, progress=progress
            )
            warm_up(recogniser, video, truth)
            decode = measure_decode(
                video, frames_hint=truth.frame_count, progress=progress, max_seconds=seconds
            )
            run = run_pipeline(
                video,
                recogniser,
                motion_gating=motion_gating,
                progress=progress,
                label=f"pipeline {resolution}",
                total_frames=truth.frame_count,
                max_seconds=seconds,
            )
            streams.append(_stream(resolution, truth, decode, run))
    return Measurement(
        measured_at=measured_at,
        profile=profile,
        machine=machine_info(),
        providers=tuple(providers),
        recogniser_load_s=round(load_s, 3),
        streams=tuple(streams),
        notes=notes,
    )


def default_output(measurement: Measurement) -> Path:
    """``bench-<host>-<UTC time>.yaml`` in the current directory."""
    stamp = measurement.measured_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in measurement.machine.hostname)
    return Path(f"bench-{host}-{stamp}.yaml")
