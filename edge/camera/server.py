"""Run the demo camera's RTSP server (``rtsp_server.py``) as a child process, for tests, benchmarks and demos.

The server itself is GStreamer's RTSP server, driven by a standalone script that needs the system Python's
``gi`` bindings; this module only starts, watches and stops that process, so the project's own Python needs no
GStreamer bindings.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import urlsplit

from cordon.errors import CordonError

__all__ = ["DEFAULT_SYSTEM_PYTHON", "SERVER_SCRIPT", "RtspCameraServer", "RtspServerError"]

DEFAULT_SYSTEM_PYTHON = "/usr/bin/python3"
"""The Python that has GStreamer's bindings (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0)."""

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
"""The standalone server script, shipped as package data beside this module."""

_READY_PREFIX = "ready "  # must match rtsp_server.READY_PREFIX (the script is not importable from here)
_EXIT_CANNOT_LISTEN = 3  # must match rtsp_server.EXIT_CANNOT_LISTEN
_CHILD_ENV_DROP = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")


class RtspServerError(CordonError, RuntimeError):
    """The RTSP camera server could not be started, or stopped unexpectedly; the message holds its stderr."""


class RtspCameraServer:
    """A real RTSP camera serving an H.264 mp4, run as a child process; also a context manager.

    The stream is shared by all clients and starts when the first client plays; clients that join later see
    the current position; when the last client leaves the next one starts from the beginning. With ``loop``
    the video repeats forever without breaking the stream. See ``rtsp_server.py`` for details.

    Parameters
    ----------
    video
        H.264 mp4 to serve (for example from :func:`edge.camera.render_traffic_video`).
    port
        TCP port; None lets the server pick a free one (read it from :attr:`port` after :meth:`start`).
        Restarts reuse the same port either way.
    mount
        URL path of the stream: ``rtsp://host:port/<mount>``.
    loop
        Repeat the video forever; otherwise clients get end-of-stream when it ends.
    python
        The Python interpreter that has GStreamer's ``gi`` bindings.
    host
        Address to listen on and to put in :attr:`url`.
    start_timeout_s
        Longest wait for the server to report it is listening, seconds.

    Examples
    --------
    >>> with RtspCameraServer(Path("traffic.mp4"), loop=True) as camera:  # doctest: +SKIP
    ...     capture = cv2.VideoCapture(camera.url, cv2.CAP_FFMPEG)
    """

    def __init__(
        self,
        video: Path,
        *,
        port: int | None = None,
        mount: str = "cam1",
        loop: bool = False,
        python: str = DEFAULT_SYSTEM_PYTHON,
        host: str = "127.0.0.1",
        start_timeout_s: float = 15.0,
    ) -> None:
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port must be 1..65535 or None (pick a free one), got {port}")
        mount = mount.strip("/")
        if not mount or any(c in mount for c in ' ?#"'):
            raise ValueError(f"mount must be a non-empty URL path without spaces, ?, # or quotes: {mount!r}")
        if start_timeout_s <= 0:
            raise ValueError(f"start_timeout_s must be > 0, got {start_timeout_s}")
        self._video = Path(video)
        self._port = port
        self._mount = mount
        self._loop = loop
        self._python = python
        self._host = host
        self._start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None  # the running process's stderr, a temporary file
        self._last_log = ""  # stderr of the last process, kept after it ended

    # --- state -------------------------------------------------------------------------------------------

    @property
    def port(self) -> int | None:
        """TCP port of the server; None until first started when it was constructed with ``port=None``."""
        return self._port

    @property
    def url(self) -> str:
        """RTSP URL of the stream, ``rtsp://host:port/mount``.

        Raises
        ------
        RtspServerError
            The port is not known yet (``port=None`` and never started).
        """
        if self._port is None:
            raise RtspServerError("the server has not been started, so its port is not known yet")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"rtsp://{host}:{self._port}/{self._mount}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or None."""
        return self._proc.pid if self.running and self._proc is not None else None

    def stderr_text(self) -> str:
        """Return what the current (or last) server process wrote to stderr: its log and errors."""
        if self._stderr is None:
            return self._last_log
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait until it listens.

        Raises
        ------
        FileNotFoundError
            The video does not exist.
        RtspServerError
            The interpreter or script is missing, the video cannot be served, the port cannot be bound within
            ``start_timeout_s``, or the server did not become ready in time. The message includes the server's
            stderr.
        """
        if self.running:
            raise RtspServerError(f"the server is already running at {self.url}")
        if not self._video.is_file():
            raise FileNotFoundError(f"video to serve not found: {self._video}")
        if shutil.which(self._python) is None:
            raise RtspServerError(
                f"Python interpreter {self._python!r} not found; it must have GStreamer's bindings "
                "(Debian/Ubuntu: apt-get install python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0)"
            )
        if not SERVER_SCRIPT.is_file():
            raise RtspServerError(f"server script missing: {SERVER_SCRIPT} (is the package installed fully?)")
        deadline = time.monotonic() + self._start_timeout_s
        listen_error = ""
        while True:
            try:
                code = self._spawn_and_wait(deadline)
            except BaseException as exc:
                self.kill()  # never leave a half-started server behind (timeout, Ctrl-C)
                if listen_error and isinstance(exc, RtspServerError):
                    raise RtspServerError(
                        f"port {self._port} stayed in use for {self._start_timeout_s:g} s:\n{listen_error}"
                    ) from exc
                raise
            if code is None:
                return
            # A fixed port can stay busy for a moment after a killed server; retry until the deadline.
            if code == _EXIT_CANNOT_LISTEN and self._port is not None and time.monotonic() < deadline:
                listen_error = self.stderr_text().strip()
                time.sleep(0.2)
                continue
            raise RtspServerError(
                f"RTSP server for {self._video} exited with code {code} before it was ready:\n"
                f"{self.stderr_text().strip()}"
            )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the server gracefully (SIGTERM, then SIGKILL after ``timeout_s``); a no-op if not running."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._release()

    def kill(self) -> None:
        """Kill the server abruptly with SIGKILL, as a crash or power cut would (for fault tests)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._release()

    def restart(self) -> None:
        """Stop the server if it runs, then start it again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> RtspCameraServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running pid={self.pid}" if self.running else "stopped"
        where = self.url if self._port is not None else "port=auto"
        return f"RtspCameraServer({str(self._video)!r}, {where}, loop={self._loop}, {state})"

    # --- internals -----------------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        command = [
            self._python,
            str(SERVER_SCRIPT),
            str(self._video.resolve()),
            "--port",
            str(self._port or 0),
            "--address",
            self._host,
            "--mount",
            self._mount,
            "--exit-with-parent",
        ]
        if self._loop:
            command.append("--loop")
        return command

    def _spawn_and_wait(self, deadline: float) -> int | None:
        """Start one server process; return None once it is ready, or its exit code if it exited first."""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this call; closed in _release()
        env = {k: v for k, v in os.environ.items() if k not in _CHILD_ENV_DROP}
        try:
            # Own session: a Ctrl-C in the terminal reaches only our process, which then stops the server.
            proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise RtspServerError(f"could not run {self._python}: {exc}") from exc
        self._proc = proc
        assert proc.stdout is not None
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    raise RtspServerError(
                        f"RTSP server for {self._video} was not ready within {self._start_timeout_s:g} s:\n"
                        f"{self.stderr_text().strip()}"
                    )
                if not selector.select(timeout=min(remaining, 0.5)):
                    continue
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:  # stdout closed: the process is exiting
                    code = proc.wait()
                    self._release()
                    return code
                line += chunk
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith(_READY_PREFIX):
            self.kill()
            raise RtspServerError(f"unexpected output from the RTSP server: {text!r}")
        port = urlsplit(text[len(_READY_PREFIX) :]).port
        if port is None:
            self.kill()
            raise RtspServerError(f"the RTSP server reported no port: {text!r}")
        self._port = port
        return None

    def _release(self) -> None:
        """Forget the ended process: close its pipe, keep its log as text."""
        if self._proc is not None and self._proc.stdout is not None:
            with contextlib.suppress(OSError):
                self._proc.stdout.close()
        self._proc = None
        if self._stderr is not None:
            self._last_log = self.stderr_text()
            self._stderr.close()
            self._stderr = None
