"""``cordon hardware bench`` here for a few seconds: the real renderer, decoder, plate models and pipeline.

Then ``cordon hardware size`` reads the file it wrote and shows numbers that follow from it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cordon.cli import app
from hardware.machine import logical_cpus
from hardware.profiles import RESOLUTIONS, load_measurement
from hardware.sizing import size_fleet, stream_cost


def test_bench_measures_both_resolutions_and_size_reads_it(tmp_path: Path, models_dir: Path) -> None:
    out = tmp_path / "bench.yaml"
    args = [
        "hardware",
        "bench",
        "--model-dir",
        str(models_dir),
        "--out",
        str(out),
        "--workdir",
        str(tmp_path),
    ]
    args += ["--seconds", "1", "--video-seconds", "3", "--profile", "intel-n100", "--notes", "test run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"measurement written to {out}" in " ".join(result.output.split())

    measurement = load_measurement(out)
    assert measurement.profile == "intel-n100"
    assert measurement.notes == "test run"
    assert measurement.providers == ("CPUExecutionProvider",)
    assert measurement.machine.logical_cpus == logical_cpus()
    assert "CPUExecutionProvider" in measurement.machine.onnx_providers_available
    assert measurement.machine.fast_alpr == "0.4.0"
    assert measurement.recogniser_load_s > 0
    assert [s.resolution for s in measurement.streams] == ["720p", "1080p"]
    for stream in measurement.streams:
        assert (stream.width, stream.height) == RESOLUTIONS[stream.resolution]
        assert stream.source_fps == 25
        assert stream.frames >= 1
        assert 0 < stream.seconds < 1 + 5, "bounded by --seconds (plus the last frame and the track flush)"
        # The pipeline decodes every frame too, and recognises most: it is slower than decoding alone.
        assert 0 < stream.processed_fps < stream.decode_fps
        assert 0 < stream.frames_recognised <= stream.frames
        assert stream.recognise_ms_per_call > 0
        assert stream.cpu_percent > 0
        assert stream.peak_rss_mb > 50, "the process holds OpenCV, ONNX Runtime and two models"
        assert stream.reads_correct <= stream.reads

    cached = list(tmp_path.glob("traffic-*.mp4"))
    assert len(cached) == 2, "one rendered video per resolution, cached in --workdir"

    sized = CliRunner().invoke(
        app, ["hardware", "size", "--cameras", "3", "--measurement", str(out), "--fps-needed", "1"]
    )
    hd = measurement.stream("1080p")
    assert hd is not None
    expected = size_fleet(
        stream_cost(resolution="1080p", decode_fps=hd.decode_fps, processed_fps=hd.processed_fps),
        cameras=3,
        fps_needed=1.0,
    )
    text = " ".join(sized.output.split())
    assert f"load per camera │ {expected.camera_load_ms:.1f} ms/s" in text
    if expected.boxes is None:
        assert sized.exit_code == 1
        assert "one box cannot serve even one 1080p camera" in text
    else:
        assert sized.exit_code == 0, sized.output
        assert (
            f"{expected.cameras_per_box} camera(s) per box; {expected.boxes} box(es) for 3 camera(s)" in text
        )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--provider", "CUDAExecutionProvider"], "ONNX Runtime here has no ['CUDAExecutionProvider']"),
        (["--resolution", "4k"], "'4k' is not a resolution"),
        (["--profile", "pi-zero"], "'pi-zero' is not a profile kind"),
    ],
)
def test_bench_refuses_what_this_box_cannot_measure(
    tmp_path: Path, models_dir: Path, extra: list[str], message: str
) -> None:
    args = ["hardware", "bench", "--model-dir", str(models_dir), "--workdir", str(tmp_path), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not list(tmp_path.glob("*.mp4")), "refused before rendering anything"


def test_bench_without_models_names_the_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    result = CliRunner().invoke(
        app, ["hardware", "bench", "--model-dir", str(empty), "--workdir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "yolo-v9-t-416-license-plates-end2end-int8.onnx' not found" in " ".join(result.output.split())
