"""``cordon edge selftest`` against the real things: a GStreamer RTSP camera, a Tansu broker, the plate
models, a local HTTP server's ``Date`` header and a local SNTP responder as reference clocks.

Each fault (camera killed, broker stopped, empty model dir, skewed clock, short disk) fails its own check.
"""

from __future__ import annotations

import email.utils
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cordon.broker import EmbeddedBroker
from cordon.cli import app
from cordon.errors import ConfigError
from edge.camera import RtspCameraServer, render_traffic_video
from edge.selftest import (
    NTP_EPOCH_OFFSET_S,
    SelftestReport,
    check_clock,
    check_spool_disk,
    http_date_offset,
    ntp_offset,
    parse_sntp_reply,
    query_sntp,
    redact_url,
    run_selftest,
    sntp_request,
)
from edge.settings import CameraConfig, EdgeSettings, RecogniserSettings

CHECKS = ["camera cam1", "model", "broker", "clock", "spool disk"]


# --- Real components ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short 720p H.264 video of one vehicle (rendered once for the module)."""
    path = tmp_path_factory.mktemp("selftest") / "cam.mp4"
    render_traffic_video(path, plates=["AB12 CDE"], seconds_per_vehicle=3.0, gap_s=1.0, seed=2)
    return path


@pytest.fixture
def camera(video: Path) -> Iterator[RtspCameraServer]:
    with RtspCameraServer(video, loop=True) as server:
        yield server


class _DateHandler(BaseHTTPRequestHandler):
    """Answers any GET with 200; its ``Date`` header is the server's clock plus ``server.skew_s``."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "15")
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def date_time_string(self, timestamp: float | None = None) -> str:
        skew: float = getattr(self.server, "skew_s", 0.0)
        return email.utils.formatdate((timestamp or time.time()) + skew, usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        # To the test's log, not the handler's default of stderr.
        logging.getLogger(__name__).debug(format, *args)


class ClockServer:
    """A real HTTP server on 127.0.0.1 whose responses carry a ``Date`` header, optionally skewed."""

    def __init__(self, skew_s: float = 0.0) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _DateHandler)
        self.httpd.skew_s = skew_s  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/healthz"

    def close(self) -> None:
        self.httpd.shutdown()
        self.thread.join()
        self.httpd.server_close()


@pytest.fixture
def clock_server() -> Iterator[ClockServer]:
    server = ClockServer()
    try:
        yield server
    finally:
        server.close()


def _settings(
    tmp_path: Path, *, bootstrap: str, camera_url: str, models: Path, clock: str | None, **extra: Any
) -> EdgeSettings:
    return EdgeSettings.load(
        kafka_bootstrap=bootstrap,
        box_id="box-selftest",
        cameras=(CameraConfig(id="cam1", url=camera_url),),
        recogniser=RecogniserSettings(model_dir=models),
        spool_path=tmp_path / "state" / "spool.sqlite3",
        clock_reference=clock,
        clock_check_required=True,
        selftest_timeout_s=3.0,
        metrics_port=None,
        **extra,
    )


def _statuses(report: SelftestReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_every_check_passes_on_a_working_box(
    tmp_path: Path,
    broker: EmbeddedBroker,
    camera: RtspCameraServer,
    clock_server: ClockServer,
    models_dir: Path,
) -> None:
    settings = _settings(
        tmp_path, bootstrap=broker.bootstrap, camera_url=camera.url, models=models_dir, clock=clock_server.url
    )
    report = run_selftest(settings)

    assert [c.name for c in report.checks] == CHECKS
    assert all(c.status == "pass" for c in report.checks), report.checks
    assert report.ok
    assert "1280x720 frame" in report.check("camera cam1").detail
    assert "cct_xs_v2_global.onnx" in report.check("model").detail
    assert "cordon.reads" not in report.check("broker").detail, "the fixture broker has Cordon's topics"
    clock = report.check("clock").detail
    offset = float(clock.split()[1])
    assert abs(offset) <= 1.1, clock  # same machine: only the Date header's 1 s resolution
    assert "will be created" in report.check("spool disk").detail
    assert all(c.seconds >= 0 for c in report.checks)

    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")), encoding="utf-8")
    result = CliRunner().invoke(app, ["edge", "selftest", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "self-test passed" in result.output


def test_killed_camera_fails_the_camera_check_only(
    tmp_path: Path,
    broker: EmbeddedBroker,
    camera: RtspCameraServer,
    clock_server: ClockServer,
    models_dir: Path,
) -> None:
    url = camera.url
    camera.kill()
    report = run_selftest(
        _settings(
            tmp_path, bootstrap=broker.bootstrap, camera_url=url, models=models_dir, clock=clock_server.url
        )
    )
    assert _statuses(report) == {name: "fail" if name == "camera cam1" else "pass" for name in CHECKS}
    detail = report.check("camera cam1").detail
    assert detail.startswith(f"cannot open {url}"), detail
    assert not report.ok


def test_stopped_broker_fails_the_broker_check_within_its_bound(
    tmp_path: Path,
    broker: EmbeddedBroker,
    camera: RtspCameraServer,
    clock_server: ClockServer,
    models_dir: Path,
) -> None:
    bootstrap = broker.bootstrap
    broker.stop()
    report = run_selftest(
        _settings(
            tmp_path, bootstrap=bootstrap, camera_url=camera.url, models=models_dir, clock=clock_server.url
        )
    )
    assert _statuses(report) == {name: "fail" if name == "broker" else "pass" for name in CHECKS}
    check = report.check("broker")
    assert f"Kafka at {bootstrap} did not answer within 3 s" in check.detail, check.detail
    assert check.seconds < 3.0 + 3.0, "bounded by selftest_timeout_s, not kafka-python's 30 s default"


def test_empty_model_dir_fails_the_model_check_naming_the_file(
    tmp_path: Path,
    broker: EmbeddedBroker,
    camera: RtspCameraServer,
    clock_server: ClockServer,
) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    report = run_selftest(
        _settings(
            tmp_path, bootstrap=broker.bootstrap, camera_url=camera.url, models=empty, clock=clock_server.url
        )
    )
    assert _statuses(report) == {name: "fail" if name == "model" else "pass" for name in CHECKS}
    detail = report.check("model").detail
    assert detail.startswith("ModelNotFoundError: model file"), detail
    assert str(empty / "yolo-v9-t-416-license-plates-end2end-int8.onnx") in detail


def test_cli_exits_non_zero_and_names_the_failed_checks(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens on this port now
    config = tmp_path / "edge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kafka_bootstrap": f"127.0.0.1:{port}",
                "cameras": [{"id": "gate-1", "url": f"rtsp://admin:s3cret@127.0.0.1:{port}/cam"}],
                "recogniser": {"model_dir": str(tmp_path / "no-models")},
                "spool_path": str(tmp_path / "spool.sqlite3"),
                "selftest_timeout_s": 1.0,
                "metrics_port": None,
            }
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["edge", "selftest", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert "self-test failed: camera gate-1, model, broker" in result.output
    assert "s3cret" not in result.output, "camera credentials are never printed"
    assert "skip" in result.output, "no clock reference and not required: skipped, not failed"

    missing = CliRunner().invoke(app, ["edge", "selftest", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2
    assert "does not exist" in " ".join(missing.output.split())


# --- Clock: the HTTP Date header and SNTP ------------------------------------------------------------------


def test_skewed_reference_clock_fails_with_the_offset() -> None:
    server = ClockServer(skew_s=3600.0)
    try:
        result = check_clock(server.url, max_offset_s=2.0, required=False, timeout_s=3.0)
    finally:
        server.close()
    assert result.status == "fail"
    offset = float(result.detail.split()[1])
    assert 3598.9 <= offset <= 3601.1, result.detail
    assert server.url in result.detail


def test_unreachable_or_missing_reference_is_unknown_and_fails_only_when_required() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/healthz"  # bound, not listening: refused
        lenient = check_clock(url, max_offset_s=2.0, required=False, timeout_s=1.0)
        strict = check_clock(url, max_offset_s=2.0, required=True, timeout_s=1.0)
    assert (lenient.status, strict.status) == ("skip", "fail")
    assert lenient.detail.startswith(f"offset unknown: {url} unreachable")
    assert "CORDON_CLOCK_CHECK_REQUIRED" in strict.detail
    unset = check_clock(None, max_offset_s=2.0, required=True, timeout_s=1.0)
    assert unset.status == "fail"
    assert "CORDON_CLOCK_REFERENCE" in unset.detail


class SntpResponder:
    """A UDP server on 127.0.0.1 answering SNTP requests (RFC 4330 layout) with its clock plus ``skew_s``."""

    def __init__(self, skew_s: float, *, answer: bool = True) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.skew_s = skew_s
        self.answer = answer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    @staticmethod
    def _ntp(unix_s: float) -> tuple[int, int]:
        seconds = math.floor(unix_s)
        return seconds + NTP_EPOCH_OFFSET_S, int((unix_s - seconds) * 2**32)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                request, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            received = time.time() + self.skew_s
            if not self.answer:
                continue
            reply = struct.pack(
                "!BBbb4xI4s8x8s2I2I",
                (0 << 6) | (4 << 3) | 4,  # no leap warning, version 4, mode 4 (server)
                2,  # stratum
                4,
                -20,
                0,
                b"TEST",
                request[40:48],  # originate = the client's transmit time
                *self._ntp(received),
                *self._ntp(time.time() + self.skew_s),
            )
            self.sock.sendto(reply, peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def test_sntp_query_measures_the_offset_of_a_real_udp_server() -> None:
    responder = SntpResponder(skew_s=-42.25)
    try:
        reading = query_sntp("127.0.0.1", responder.port, timeout_s=2.0)
        passing = check_clock(
            f"ntp://127.0.0.1:{responder.port}", max_offset_s=60, required=True, timeout_s=2
        )
        failing = check_clock(f"ntp://127.0.0.1:{responder.port}", max_offset_s=2, required=True, timeout_s=2)
    finally:
        responder.close()
    assert reading.offset_s == pytest.approx(-42.25, abs=0.05)
    assert 0 <= reading.uncertainty_s < 0.05
    assert passing.status == "pass"
    assert failing.status == "fail"
    assert "offset -42.2" in failing.detail


def test_silent_sntp_server_times_out_as_unknown() -> None:
    responder = SntpResponder(skew_s=0.0, answer=False)
    try:
        result = check_clock(
            f"ntp://127.0.0.1:{responder.port}", max_offset_s=1, required=False, timeout_s=0.5
        )
    finally:
        responder.close()
    assert result.status == "skip"
    assert "TimeoutError" in result.detail
    assert result.seconds < 2


@given(
    theta=st.floats(-1e6, 1e6),
    t1=st.floats(1.6e9, 2.0e9),
    out_delay=st.floats(0.0, 2.0),
    back_delay=st.floats(0.0, 2.0),
    processing=st.floats(0.0, 0.5),
)
def test_ntp_offset_is_within_half_the_delay_of_the_true_offset(
    theta: float, t1: float, out_delay: float, back_delay: float, processing: float
) -> None:
    t2 = t1 + out_delay + theta
    t3 = t2 + processing
    t4 = t3 - theta + back_delay
    offset, delay = ntp_offset(t1, t2, t3, t4)
    assert delay == pytest.approx(out_delay + back_delay, abs=1e-5)
    assert abs(offset - theta) <= delay / 2 + 1e-5
    if out_delay == back_delay:
        assert offset == pytest.approx(theta, abs=1e-5)


@given(
    theta=st.floats(-1e6, 1e6),
    sent=st.floats(1.6e9, 2.0e9),
    rtt=st.floats(0.0, 5.0),
    at=st.floats(0.0, 1.0),
)
def test_http_date_offset_bounds_the_true_offset(theta: float, sent: float, rtt: float, at: float) -> None:
    received = sent + rtt
    stamped = sent + at * rtt + theta  # the server's clock when it wrote the header
    header = email.utils.formatdate(stamped, usegmt=True)
    offset, uncertainty = http_date_offset(header, sent_s=sent, received_s=received)
    assert abs(offset - theta) <= uncertainty + 1e-6


def test_sntp_request_and_reply_layout() -> None:
    request = sntp_request(1_700_000_000.25)
    assert len(request) == 48
    assert request[0] == 0x23  # version 4, client
    assert struct.unpack("!II", request[40:48]) == (1_700_000_000 + NTP_EPOCH_OFFSET_S, 2**30)

    def reply(first: int = 0x24, stratum: int = 2, echo: bytes = request[40:48]) -> bytes:
        times = struct.pack("!IIII", 3_908_988_800, 0, 3_908_988_801, 2**31)
        return bytes([first, stratum]) + bytes(22) + echo + times

    received, transmitted = parse_sntp_reply(reply(), request=request)
    assert (received, transmitted) == (1_700_000_000.0, 1_700_000_001.5)
    for bad, message in [
        (reply()[:40], "at least 48"),
        (reply(first=0x23), "mode 3"),
        (reply(stratum=0), "kiss-of-death"),
        (reply(first=0xE4), "not synchronised"),
        (reply(echo=bytes(8)), "does not echo"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_sntp_reply(bad, request=request)


# --- Disk, settings, redaction -----------------------------------------------------------------------------


def test_spool_disk_check_fails_when_space_is_short(tmp_path: Path) -> None:
    ok = check_spool_disk(tmp_path / "spool.sqlite3", min_free_mb=1)
    short = check_spool_disk(tmp_path / "spool.sqlite3", min_free_mb=100_000_000)
    assert ok.status == "pass"
    assert short.status == "fail"
    assert "need 100,000,000 MB" in short.detail
    assert str(tmp_path) in short.detail


def test_selftest_settings_are_validated() -> None:
    settings = EdgeSettings.load(clock_reference="ntp://ntp.example.org:123")
    assert settings.clock_max_offset_s == 2.0
    with pytest.raises(ConfigError, match="clock_reference"):
        EdgeSettings.load(clock_reference="ftp://time.example.org")
    with pytest.raises(ConfigError, match="spool_min_free_mb"):
        EdgeSettings.load(spool_min_free_mb=0)


def test_redact_url_hides_credentials_only() -> None:
    assert redact_url("rtsp://admin:pa@ss@10.0.0.5:554/s1") == "rtsp://***@10.0.0.5:554/s1"
    assert redact_url("rtsp://admin:pw@10.0.0.5:554/s1") == "rtsp://***@10.0.0.5:554/s1"
    assert redact_url("rtsp://10.0.0.5/s1") == "rtsp://10.0.0.5/s1"
    assert redact_url("/var/video.mp4") == "/var/video.mp4"
