"""``cordon edge selftest``: can this box do its job? Each check passes or fails with a detail and a duration.

Checks, run at the same time, each bounded in time:

* **camera <id>** (one per camera): the stream opens with OpenCV's FFmpeg backend and yields a frame.
* **model**: the plate models load (:func:`edge.recognise.build_recogniser`) and run once on a blank frame.
* **broker**: Kafka answers a metadata request.
* **clock**: the offset from a reference clock is within ``clock_max_offset_s``. The reference is an SNTP
  server (``ntp://host[:port]``) or the ``Date`` header of an HTTP response (``http(s)://...``, e.g. the API's
  ``/healthz``). With no reference set, or none reachable, the offset is unknown: that fails only when
  ``clock_check_required`` is set, and is reported as skipped otherwise.
* **spool disk**: the spool's folder is writable and has at least ``spool_min_free_mb`` free.

The SNTP and Date-header arithmetic are pure functions; the checks are thin adapters around them.
"""

from __future__ import annotations

import email.utils
import math
import os
import re
import shutil
import socket
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
from rich.console import Console

from cordon.errors import CordonError
from edge.frames import open_capture
from edge.recognise import build_recogniser
from edge.settings import CameraConfig, EdgeSettings, RecogniserSettings

__all__ = [
    "NTP_EPOCH_OFFSET_S",
    "CheckResult",
    "CheckStatus",
    "ClockReading",
    "SelftestReport",
    "check_broker",
    "check_camera",
    "check_clock",
    "check_model",
    "check_spool_disk",
    "http_date_offset",
    "ntp_offset",
    "parse_sntp_reply",
    "print_report",
    "query_http_date",
    "query_sntp",
    "read_reference_clock",
    "redact_url",
    "run_selftest",
    "sntp_request",
]

CheckStatus: TypeAlias = Literal["pass", "fail", "skip"]

NTP_EPOCH_OFFSET_S = 2_208_988_800
"""Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome; ``seconds`` is how long it took (wall time)."""

    name: str
    status: CheckStatus
    detail: str
    seconds: float


@dataclass(frozen=True, slots=True)
class SelftestReport:
    """Every check's outcome, in a stable order (cameras, model, broker, clock, spool disk)."""

    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """Whether no check failed (skipped checks do not fail the self-test)."""
        return all(c.status != "fail" for c in self.checks)

    def check(self, name: str) -> CheckResult:
        """The check called ``name``; KeyError if there is none."""
        for result in self.checks:
            if result.name == name:
                return result
        raise KeyError(name)


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, for logs and reports."""
    # Greedy up to the last "@" before the path: a password may itself contain "@".
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/]*@", r"\1***@", url)


# --- Clock arithmetic (pure) -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockReading:
    """This box's clock against a reference: ``offset_s`` (reference minus local) ± ``uncertainty_s``, s."""

    offset_s: float
    uncertainty_s: float
    source: str


def sntp_request(transmit_s: float) -> bytes:
    """A 48-byte SNTP v4 client request (RFC 4330) whose transmit timestamp is ``transmit_s`` (Unix s)."""
    seconds = math.floor(transmit_s)
    fraction = int((transmit_s - seconds) * 2**32) & 0xFFFFFFFF
    # Byte 0: leap indicator 0, version 4, mode 3 (client); the transmit timestamp is bytes 40-47.
    return struct.pack("!B39xII", 0x23, (seconds + NTP_EPOCH_OFFSET_S) & 0xFFFFFFFF, fraction)


def _ntp_time(seconds: int, fraction: int) -> float:
    return seconds - NTP_EPOCH_OFFSET_S + fraction / 2**32


def parse_sntp_reply(data: bytes, *, request: bytes) -> tuple[float, float]:
    """The server's receive and transmit times (Unix s) from an SNTP reply to ``request``.

    Raises
    ------
    ValueError
        The reply is short, not a server reply, a kiss-of-death (stratum 0), unsynchronised (leap
        indicator 3), or does not echo the request's transmit time.
    """
    if len(data) < 48:
        raise ValueError(f"SNTP reply is {len(data)} bytes, expected at least 48")
    first, stratum = data[0], data[1]
    leap, mode = first >> 6, first & 0x7
    if mode not in (4, 5):
        raise ValueError(f"SNTP reply has mode {mode}, expected 4 (server)")
    if stratum == 0:
        raise ValueError(f"SNTP server sent a kiss-of-death ({data[12:16].decode('ascii', 'replace')!r})")
    if leap == 3:
        raise ValueError("SNTP server clock is not synchronised (leap indicator 3)")
    if data[24:32] != request[40:48]:
        raise ValueError("SNTP reply does not echo our transmit time (stale or spoofed reply)")
    rx_s, rx_f, tx_s, tx_f = struct.unpack("!IIII", data[32:48])
    return _ntp_time(rx_s, rx_f), _ntp_time(tx_s, tx_f)


def ntp_offset(t1: float, t2: float, t3: float, t4: float) -> tuple[float, float]:
    """Clock offset and round-trip delay from the four NTP timestamps, seconds (RFC 4330 section 5).

    ``t1`` request sent (local), ``t2`` received (server), ``t3`` reply sent (server), ``t4`` reply received
    (local).
    The true offset lies within ``delay / 2`` of the returned offset.
    """
    offset = ((t2 - t1) + (t3 - t4)) / 2
    delay = max((t4 - t1) - (t3 - t2), 0.0)
    return offset, delay


def http_date_offset(date_header: str, *, sent_s: float, received_s: float) -> tuple[float, float]:
    """Clock offset from an HTTP ``Date`` header, and its uncertainty, seconds.

    The header is whole seconds (RFC 9110) stamped some time between ``sent_s`` and ``received_s`` (local Unix
    times), so the server's clock read ``date + 0.5 ± 0.5`` at the midpoint ``± half the round trip``.

    Raises
    ------
    ValueError
        The header is not an HTTP date.
    """
    try:
        stamped = email.utils.parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"not an HTTP date: {date_header!r}") from exc
    if stamped.tzinfo is None:
        raise ValueError(f"HTTP date without a time zone: {date_header!r}")
    server = stamped.timestamp() + 0.5
    midpoint = (sent_s + received_s) / 2
    return server - midpoint, 0.5 + max(received_s - sent_s, 0.0) / 2


# --- Clock queries (adapters) ------------------------------------------------------------------------------


def query_sntp(host: str, port: int = 123, *, timeout_s: float = 5.0) -> ClockReading:
    """Ask an SNTP server for the time over UDP.

    Raises
    ------
    OSError
        No reply within ``timeout_s`` (``TimeoutError``) or the host cannot be reached.
    ValueError
        The reply is not a usable SNTP reply.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.settimeout(timeout_s)
        t1 = time.time()
        request = sntp_request(t1)
        sock.sendto(request, address)
        data, _ = sock.recvfrom(512)
        t4 = time.time()
    t2, t3 = parse_sntp_reply(data, request=request)
    offset, delay = ntp_offset(t1, t2, t3, t4)
    return ClockReading(offset_s=offset, uncertainty_s=delay / 2, source=f"ntp://{host}:{port}")


def query_http_date(url: str, *, timeout_s: float = 5.0) -> ClockReading:
    """Read the ``Date`` header of a GET of ``url`` (any status: error pages carry the date too).

    Raises
    ------
    OSError
        The server cannot be reached in ``timeout_s``.
    ValueError
        The response has no usable ``Date`` header.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "cordon-edge-selftest"})
    sent = time.time()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            received = time.time()
            date = response.headers.get("Date")
    except urllib.error.HTTPError as exc:
        received = time.time()
        date = exc.headers.get("Date")
        exc.close()
    if not date:
        raise ValueError(f"{redact_url(url)} sent no Date header")
    offset, uncertainty = http_date_offset(date, sent_s=sent, received_s=received)
    return ClockReading(offset_s=offset, uncertainty_s=uncertainty, source=redact_url(url))


def read_reference_clock(reference: str, *, timeout_s: float) -> ClockReading:
    """Query ``reference`` (``ntp://host[:port]`` or an ``http(s)://`` URL)."""
    parsed = urllib.parse.urlsplit(reference)
    if parsed.scheme == "ntp":
        if not parsed.hostname:
            raise ValueError(f"no host in {reference!r}")
        return query_sntp(parsed.hostname, parsed.port or 123, timeout_s=timeout_s)
    return query_http_date(reference, timeout_s=timeout_s)


# --- Checks (adapters) -------------------------------------------------------------------------------------


def _timed(name: str, check: Callable[[], tuple[CheckStatus, str]]) -> CheckResult:
    start = time.perf_counter()
    try:
        status, detail = check()
    except Exception as exc:  # a check that breaks is a failed check, with the reason
        status, detail = "fail", f"{type(exc).__name__}: {exc}"
    return CheckResult(name=name, status=status, detail=detail, seconds=round(time.perf_counter() - start, 3))


def check_camera(camera: CameraConfig, *, timeout_s: float) -> CheckResult:
    """Open the camera's stream (or file) and read one frame, each step within ``timeout_s``."""

    def _check() -> tuple[CheckStatus, str]:
        shown = redact_url(camera.url)
        try:
            url = camera.stream_url()
        except CordonError as exc:
            return "fail", str(exc)
        cap = open_capture(url, open_timeout_s=timeout_s, read_timeout_s=timeout_s)
        try:
            if not cap.isOpened():
                return "fail", f"cannot open {shown} (no stream within {timeout_s:g} s, or refused)"
            ok, image = cap.read()
        finally:
            cap.release()
        if not ok or image is None:
            return "fail", f"{shown} opened but sent no frame within {timeout_s:g} s"
        height, width = image.shape[:2]
        return "pass", f"{shown}: got a {width}x{height} frame"

    return _timed(f"camera {camera.id}", _check)


def check_model(settings: RecogniserSettings) -> CheckResult:
    """Load the plate models and run them once on a blank 1280x720 frame."""

    def _check() -> tuple[CheckStatus, str]:
        start = time.perf_counter()
        recogniser = build_recogniser(settings)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        recogniser.read(np.zeros((720, 1280, 3), dtype=np.uint8))
        infer_ms = 1000 * (time.perf_counter() - start)
        where = f"from {settings.model_dir}" if settings.model_dir else "by fast-alpr hub name"
        return "pass", (
            f"{settings.detector_file}, {settings.ocr_file} {where} loaded in {load_s:.1f} s; "
            f"one frame in {infer_ms:.0f} ms on {list(settings.providers)}"
        )

    return _timed("model", _check)


def check_broker(bootstrap: str, *, timeout_s: float, topics: Sequence[str] = ()) -> CheckResult:
    """Ask Kafka for its topics (a metadata request), waiting at most about ``timeout_s``."""

    def _check() -> tuple[CheckStatus, str]:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        timeout_ms = int(timeout_s * 1000)
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id="cordon-edge-selftest",
                bootstrap_timeout_ms=timeout_ms,
                request_timeout_ms=timeout_ms,
                reconnect_backoff_max_ms=min(1000, timeout_ms),
            )
        except (KafkaError, OSError) as exc:
            return "fail", f"Kafka at {bootstrap} did not answer within {timeout_s:g} s: {exc!r}"
        try:
            existing = set(admin.list_topics())
        except (KafkaError, OSError) as exc:
            return "fail", f"Kafka at {bootstrap} accepted a connection but no metadata request: {exc!r}"
        finally:
            admin.close()
        missing = [t for t in topics if t not in existing]
        note = f"; topics {missing} not created yet (the publisher creates them)" if missing else ""
        return "pass", f"Kafka at {bootstrap} answered ({len(existing)} topics){note}"

    return _timed("broker", _check)


def check_clock(
    reference: str | None, *, max_offset_s: float, required: bool, timeout_s: float
) -> CheckResult:
    """Compare this box's clock with ``reference``; an unknown offset fails only when ``required``.

    The check fails when the offset is outside ``max_offset_s`` even allowing for the measurement's
    uncertainty (an HTTP ``Date`` header is only good to about half a second).
    """

    def _check() -> tuple[CheckStatus, str]:
        unknown: CheckStatus = "fail" if required else "skip"
        needed = " (required: CORDON_CLOCK_CHECK_REQUIRED)" if required else ""
        if reference is None:
            return unknown, f"offset unknown: no reference clock set (CORDON_CLOCK_REFERENCE){needed}"
        try:
            reading = read_reference_clock(reference, timeout_s=timeout_s)
        except (OSError, ValueError) as exc:
            return unknown, f"offset unknown: {redact_url(reference)} unreachable: {exc!r}{needed}"
        within = abs(reading.offset_s) - reading.uncertainty_s <= max_offset_s
        detail = (
            f"offset {reading.offset_s:+.3f} s ± {reading.uncertainty_s:.3f} s against {reading.source} "
            f"(tolerance {max_offset_s:g} s)"
        )
        return ("pass" if within else "fail"), detail

    return _timed("clock", _check)


def check_spool_disk(spool_path: Path, *, min_free_mb: int) -> CheckResult:
    """The spool's folder (or the nearest existing parent, where it will be made) is writable and has room."""

    def _check() -> tuple[CheckStatus, str]:
        folder = spool_path.absolute().parent
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        free_mb = shutil.disk_usage(existing).free / 1e6
        problems = []
        if not os.access(existing, os.W_OK | os.X_OK):
            problems.append(f"{existing} is not writable by this user")
        if free_mb < min_free_mb:
            problems.append(f"only {free_mb:,.0f} MB free on {existing}, need {min_free_mb:,} MB")
        if problems:
            return "fail", "; ".join(problems)
        made = "" if existing == folder else f" ({folder} will be created)"
        return "pass", f"{free_mb:,.0f} MB free on {existing} (need {min_free_mb:,} MB), writable{made}"

    return _timed("spool disk", _check)


# --- Running them ------------------------------------------------------------------------------------------


def _bounded(name: str, run: Callable[[], CheckResult], bound_s: float) -> Callable[[], CheckResult]:
    """Start ``run`` on a daemon thread; the returned function waits up to ``bound_s`` for its result.

    A daemon thread, so a native call that ignores its timeout (an FFmpeg open, say) cannot hold up the
    process's exit.
    """
    box: list[CheckResult] = []
    thread = threading.Thread(target=lambda: box.append(run()), name=f"selftest-{name}", daemon=True)
    start = time.perf_counter()
    thread.start()

    def _wait() -> CheckResult:
        thread.join(max(bound_s - (time.perf_counter() - start), 0.0))
        if box:
            return box[0]
        return CheckResult(
            name=name,
            status="fail",
            detail=f"no answer within {bound_s:g} s",
            seconds=round(time.perf_counter() - start, 3),
        )

    return _wait


def run_selftest(settings: EdgeSettings) -> SelftestReport:
    """Run every check at once; each is bounded by ``selftest_timeout_s`` (model loading by a minute more)."""
    timeout = settings.selftest_timeout_s
    waits = [
        _bounded(f"camera {camera.id}", partial(check_camera, camera, timeout_s=timeout), 2 * timeout + 5)
        for camera in settings.cameras
    ]
    waits.append(_bounded("model", lambda: check_model(settings.recogniser), timeout + 60))
    waits.append(
        _bounded(
            "broker",
            lambda: check_broker(
                settings.kafka_bootstrap,
                timeout_s=timeout,
                topics=(settings.reads_topic, settings.heartbeats_topic),
            ),
            2 * timeout + 5,
        )
    )
    waits.append(
        _bounded(
            "clock",
            lambda: check_clock(
                settings.clock_reference,
                max_offset_s=settings.clock_max_offset_s,
                required=settings.clock_check_required,
                timeout_s=timeout,
            ),
            timeout + 5,
        )
    )
    waits.append(
        _bounded(
            "spool disk",
            lambda: check_spool_disk(settings.spool_path, min_free_mb=settings.spool_min_free_mb),
            timeout,
        )
    )
    checks = [wait() for wait in waits]
    if not settings.cameras:
        checks.insert(0, CheckResult("cameras", "fail", "no cameras configured (CORDON_CAMERAS)", 0.0))
    return SelftestReport(checks=tuple(checks))


def print_report(report: SelftestReport, console: Console) -> None:
    """Print one row per check (status, duration, detail) and the verdict."""
    from rich.table import Table

    styles = {"pass": "green", "fail": "red", "skip": "yellow"}
    table = Table(title="Edge self-test")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("detail")
    for c in report.checks:
        table.add_row(c.name, f"[{styles[c.status]}]{c.status}[/]", f"{c.seconds:.2f} s", c.detail)
    console.print(table)
    failed = [c.name for c in report.checks if c.status == "fail"]
    if failed:
        console.print(f"[red]self-test failed: {', '.join(failed)}[/red]")
    else:
        console.print("[green]self-test passed[/green]")
