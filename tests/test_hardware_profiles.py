"""Hardware profiles and measurement files: bundled YAML, validation errors, ``cordon hardware size``."""

from __future__ import annotations

import copy
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from typer.testing import CliRunner

from cordon.cli import app
from hardware.errors import MeasurementError, ProfileError
from hardware.profiles import (
    IntelN100,
    JetsonOrinNano,
    MachineInfo,
    Measurement,
    ProfileKind,
    RaspberryPi5Hailo8L,
    StreamMeasurement,
    X86Server,
    bundled_profiles,
    dump_measurement,
    load_measurement,
    load_profile_file,
    load_profiles,
    parse_measurement,
    parse_profile,
)

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "hardware" / "profiles"
POWER = {"idle_w": 6, "typical_w": 15, "max_w": 30, "supply": "12 V DC"}
ENCLOSURE = {"recommended_ip_rating": "IP55", "ambient_min_c": 0, "ambient_max_c": 40}


def _raw(kind: str) -> dict[str, Any]:
    data = yaml.safe_load((PROFILES / f"{kind}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _flat(text: str) -> str:
    return " ".join(text.split())


# --- Bundled profiles --------------------------------------------------------------------------------------


def test_every_profile_kind_is_bundled_and_valid() -> None:
    profiles = bundled_profiles()
    assert set(profiles) == set(get_args(ProfileKind))
    assert isinstance(profiles["jetson-orin-nano"], JetsonOrinNano)
    assert isinstance(profiles["raspberry-pi-5-hailo-8l"], RaspberryPi5Hailo8L)
    assert isinstance(profiles["intel-n100"], IntelN100)
    assert isinstance(profiles["x86-server"], X86Server)
    for profile in profiles.values():
        assert profile.onnx_providers[-1] == "CPUExecutionProvider"
        assert profile.power.idle_w <= profile.power.typical_w <= profile.power.max_w
        assert profile.price.low_gbp <= profile.price.high_gbp
    pi = profiles["raspberry-pi-5-hailo-8l"]
    assert pi.accelerator is not None
    assert not pi.accelerator.used_by_cordon, "fast-alpr runs ONNX Runtime, which cannot use a Hailo"
    assert pi.onnx_providers == ("CPUExecutionProvider",)


def test_profiles_are_package_data() -> None:
    """Installed (non-editable) packages, such as the edge image's, need the YAML files declared."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    assert "profiles/*.yaml" in package_data.get("hardware", []), (
        'add `"hardware" = ["profiles/*.yaml"]` to [tool.setuptools.package-data] in pyproject.toml'
    )


# --- Validation errors name the file, the key and the value -------------------------------------------------


def test_field_error_names_file_key_and_value(tmp_path: Path) -> None:
    data = _raw("intel-n100")
    data["ram_gb"] = -4
    path = tmp_path / "intel-n100.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile_file(path)
    message = str(caught.value)
    assert f"{path}: intel-n100.ram_gb: Input should be greater than or equal to 0.5; got -4" in message


@pytest.mark.parametrize(
    ("kind", "change", "expected"),
    [
        (
            "jetson-orin-nano",
            {"onnx_providers": ["OpenVINOExecutionProvider", "CPUExecutionProvider"]},
            "onnx_providers ['OpenVINOExecutionProvider'] are not available on JetsonOrinNano",
        ),
        (
            "intel-n100",
            {"onnx_providers": ["CPUExecutionProvider", "OpenVINOExecutionProvider"]},
            "must end with CPUExecutionProvider",
        ),
        ("intel-n100", {"cpu_arch": "aarch64"}, "cpu_arch must be 'x86_64', got 'aarch64'"),
        ("x86-server", {"gpu": None}, "need a gpu; gpu is not set"),
        ("raspberry-pi-5-hailo-8l", {"hailo_used": True}, "hailo_used: Input should be False; got True"),
        ("jetson-orin-nano", {"power_mode_w": 30}, "power_mode_w: Input should be 7, 15 or 25; got 30"),
        ("intel-n100", {"tdp_w": 6}, "tdp_w: Extra inputs are not permitted; got 6"),
        ("intel-n100", {"kind": "intel-n200"}, "does not match any of the expected tags"),
        ("intel-n100", {"power": POWER | {"idle_w": 20}}, "need idle_w <= typical_w <= max_w, got 20.0"),
        ("intel-n100", {"enclosure": ENCLOSURE | {"recommended_ip_rating": "IP99"}},
         "enclosure.recommended_ip_rating: String should match pattern"),
        ("intel-n100", {"enclosure": ENCLOSURE | {"ambient_min_c": 50}}, "ambient_min_c=50.0 must be below"),
    ],
)  # fmt: skip
def test_profile_rules(kind: str, change: dict[str, Any], expected: str) -> None:
    data = _raw(kind) | change
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, source=f"{kind}.yaml")
    assert expected in str(caught.value)
    assert f"{kind}.yaml: " in str(caught.value)


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "intel-n100.yaml").write_text("kind: intel-n100\nname: [unclosed\n", encoding="utf-8")
    wrong_name = _raw("x86-server")
    (tmp_path / "server.yaml").write_text(yaml.safe_dump(wrong_name), encoding="utf-8")
    (tmp_path / "jetson-orin-nano.yaml").write_text(
        yaml.safe_dump(_raw("jetson-orin-nano")), encoding="utf-8"
    )
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path.glob("*.yaml"))
    message = str(caught.value)
    assert f"{tmp_path / 'intel-n100.yaml'}: not valid YAML" in message
    assert f"{tmp_path / 'server.yaml'}: kind: file name must be x86-server.yaml" in message
    assert "jetson-orin-nano.yaml" not in message
    with pytest.raises(ProfileError, match="a profile must be a mapping"):
        parse_profile(["kind", "intel-n100"], source="list.yaml")


# --- Measurements ------------------------------------------------------------------------------------------


def _stream(
    resolution: str = "1080p", *, decode_fps: float = 500.0, processed_fps: float = 50.0
) -> dict[str, Any]:
    width, height = (1920, 1080) if resolution == "1080p" else (1280, 720)
    return {
        "resolution": resolution,
        "width": width,
        "height": height,
        "source_fps": 25.0,
        "motion_gating": True,
        "frames": 500,
        "seconds": 10.0,
        "decode_fps": decode_fps,
        "processed_fps": processed_fps,
        "frames_recognised": 400,
        "recognise_ms_per_call": 15.0,
        "ms_per_plate": 16.0,
        "plates_found": 120,
        "reads": 3,
        "reads_correct": 3,
        "cpu_percent": 180.0,
        "peak_rss_mb": 310.0,
    }


def _measurement(*streams: dict[str, Any], profile: str | None = None) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "measured_at": "2026-03-01T10:00:00Z",
        "profile": profile,
        "machine": {
            "hostname": "box-7",
            "platform": "Linux-6.1-aarch64",
            "cpu_model": "Cortex-A76",
            "cpu_arch": "aarch64",
            "logical_cpus": 4,
            "physical_cores": 4,
            "ram_gb": 8.2,
            "onnx_providers_available": ["CPUExecutionProvider"],
            "python": "3.11.2",
            "onnxruntime": "1.20.0",
            "opencv": "4.10.0",
            "fast_alpr": "0.4.0",
        },
        "providers": ["CPUExecutionProvider"],
        "recogniser_load_s": 1.2,
        "streams": list(streams) or [_stream()],
    }


def test_measurement_file_round_trip(tmp_path: Path) -> None:
    measurement = parse_measurement(_measurement(_stream("720p"), _stream("1080p")))
    path = tmp_path / "m.yaml"
    dump_measurement(measurement, path)
    assert load_measurement(path) == measurement
    assert measurement.measured_at == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert measurement.stream("720p") is not None
    assert path.read_text(encoding="utf-8").startswith("# Cordon edge bench measurement (Cortex-A76")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_measurement(_stream("720p"), _stream("720p")), "one stream entry per resolution, repeated"),
        (_measurement(_stream() | {"reads_correct": 4}), "reads_correct=4 exceeds reads=3"),
        (_measurement(_stream() | {"processed_fps": 0}), "streams.0.processed_fps: Input should be greater"),
        (_measurement(_stream() | {"resolution": "4k"}), "streams.0.resolution: Input should be '720p' or"),
        ({**_measurement(), "schema_version": 2}, "schema_version: Input should be 1; got 2"),
        ({**_measurement(), "measured_at": "2026-03-01T10:00:00"}, "measured_at: Input should have timezone"),
    ],
)  # fmt: skip
def test_measurement_rules(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(MeasurementError) as caught:
        parse_measurement(data, source="bench.yaml")
    assert expected in str(caught.value)
    assert "bench.yaml: " in str(caught.value)


def test_profile_measurements_must_be_of_its_kind() -> None:
    data = _raw("intel-n100") | {"measurements": [_measurement(profile="jetson-orin-nano")]}
    with pytest.raises(ProfileError, match="measurements taken on another profile kind than 'intel-n100'"):
        parse_profile(data)
    same = parse_profile(_raw("intel-n100") | {"measurements": [_measurement(profile="intel-n100")]})
    assert len(same.measurements_at("1080p")) == 1
    assert same.measurements_at("720p") == []


# --- cordon hardware profiles | size -----------------------------------------------------------------------


def _write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    dump_measurement(Measurement.model_validate(data), path)
    return path


def test_profiles_command_lists_every_kind() -> None:
    result = CliRunner().invoke(app, ["hardware", "profiles"])
    assert result.exit_code == 0, result.output
    for kind in get_args(ProfileKind):
        assert kind in result.output


def test_size_a_profile_without_measurements_says_so_and_estimates_nothing() -> None:
    result = CliRunner().invoke(
        app, ["hardware", "size", "--cameras", "10", "--profile", "raspberry-pi-5-hailo-8l"]
    )
    assert result.exit_code == 1, result.output
    text = _flat(result.output)
    assert "profile raspberry-pi-5-hailo-8l has no measurements, so it gives no numbers" in text
    assert "no 1080p measurement to size from; nothing is estimated without one" in text
    assert "cameras per box" not in text


def test_size_from_a_measurement_shows_the_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path, "box.yaml", _measurement(_stream("1080p", decode_fps=500.0, processed_fps=50.0)))
    args = ["hardware", "size", "--cameras", "12", "--measurement", str(path), "--fps-needed", "5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    # by hand: 25 fps x 2 ms + 5 fps x 18 ms = 140 ms/s per camera; 700 ms/s budget -> 5 per box -> 3 boxes
    for shown in (
        "2.00 ms",
        "18.00 ms",
        "50.0 ms/s",
        "90.0 ms/s",
        "140.0 ms/s",
        "700 ms/s",
        "floor(700 / 140.0)",
    ):
        assert shown in text, shown
    assert (
        "5 camera(s) per box; 3 box(es) for 12 camera(s) at 1080p, 5 of 25 fps processed, headroom 30%"
        in text
    )


def test_size_uses_the_slowest_of_several_measurements(tmp_path: Path) -> None:
    fast = _write(tmp_path, "fast.yaml", _measurement(_stream(processed_fps=100.0)))
    slow = _write(tmp_path, "slow.yaml", _measurement(_stream(processed_fps=25.0)))
    args = ["hardware", "size", "--cameras", "4", "--measurement", str(fast), "--measurement", str(slow)]
    result = CliRunner().invoke(app, [*args, "--fps-needed", "5", "--headroom", "0"])
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "Sizing from slow.yaml, 2026-03-01 at 1080p (the slowest of the measurements)" in text
    # slow: 2 ms decode, 38 ms process: 50 + 190 = 240 ms/s per camera; 1000 / 240 -> 4 per box
    assert "4 camera(s) per box; 1 box(es) for 4 camera(s)" in text


def test_size_refuses_what_it_cannot_answer(tmp_path: Path) -> None:
    only_720 = _write(tmp_path, "720.yaml", _measurement(_stream("720p")))
    result = CliRunner().invoke(app, ["hardware", "size", "--cameras", "2", "--measurement", str(only_720)])
    assert result.exit_code == 1
    assert "no 1080p entry (it has ['720p'])" in _flat(result.output)

    slow = _write(tmp_path, "slow.yaml", _measurement(_stream(processed_fps=5.0)))
    result = CliRunner().invoke(app, ["hardware", "size", "--cameras", "2", "--measurement", str(slow)])
    assert result.exit_code == 1
    assert "one box cannot serve even one 1080p camera at 10 processed fps" in _flat(result.output)

    bad = tmp_path / "bad.yaml"
    data = copy.deepcopy(_measurement())
    data["streams"][0]["decode_fps"] = -1
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(app, ["hardware", "size", "--cameras", "2", "--measurement", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: streams.0.decode_fps: Input should be greater than 0; got -1" in _flat(result.output)

    result = CliRunner().invoke(app, ["hardware", "size", "--cameras", "2"])
    assert result.exit_code == 2
    assert "give --measurement FILE" in _flat(result.output)


def test_machine_info_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="logical_cpus"):
        MachineInfo.model_validate(_measurement()["machine"] | {"logical_cpus": 0})
    with pytest.raises(ValueError, match="frames_recognised=501 exceeds frames=500"):
        StreamMeasurement.model_validate(_stream() | {"frames_recognised": 501})


def test_public_names_are_pinned() -> None:
    import edge.selftest
    import hardware.bench
    import hardware.cli
    import hardware.errors
    import hardware.machine
    import hardware.profiles
    import hardware.sizing

    pinned = {
        hardware.cli: ["hardware_app"],
        hardware.errors: ["BenchError", "HardwareError", "MeasurementError", "ProfileError", "SizingError"],
        hardware.sizing: ["Sizing", "StreamCost", "camera_load_ms", "size_fleet", "slowest", "stream_cost"],
        hardware.machine: [
            "cpu_model", "hostname", "logical_cpus", "onnx_providers_available", "package_version", "ram_gb",
        ],
        hardware.bench: [
            "DecodeResult", "PipelineRun", "TimedRecogniser", "VideoInfo", "default_output", "machine_info",
            "measure_decode", "prepare_video", "progress_bar", "run_bench", "run_pipeline", "warm_up",
        ],
        hardware.profiles: [
            "MEASUREMENT_SCHEMA_VERSION", "RESOLUTIONS", "Accelerator", "Enclosure", "ExecutionProvider",
            "HardwareProfile", "IntelN100", "JetsonOrinNano", "MachineInfo", "Measurement", "PowerDraw",
            "PriceBand", "ProfileKind", "RaspberryPi5Hailo8L", "Resolution", "StreamMeasurement", "X86Server",
            "bundled_profiles", "dump_measurement", "format_errors", "load_measurement", "load_profile_file",
            "load_profiles", "parse_measurement", "parse_profile",
        ],
        edge.selftest: [
            "NTP_EPOCH_OFFSET_S", "CheckResult", "CheckStatus", "ClockReading", "SelftestReport",
            "check_broker", "check_camera", "check_clock", "check_model", "check_spool_disk",
            "http_date_offset", "ntp_offset",
            "parse_sntp_reply", "print_report", "query_http_date", "query_sntp", "read_reference_clock",
            "redact_url", "run_selftest", "sntp_request",
        ],
    }  # fmt: skip
    for module, names in pinned.items():
        assert module.__all__ == names, module.__name__
        assert all(hasattr(module, name) for name in names), module.__name__
