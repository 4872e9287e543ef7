"""Shared fixtures: real components only (Tansu broker, GStreamer RTSP server, the real plate models)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from cordon.broker import EmbeddedBroker
from cordon.events import BBox, PlateRead, utc_now

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CORDON_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CORDON_* variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("CORDON_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The offline plate models in ../shared/models (never downloaded in tests)."""
    path = SHARED / "models"
    if not (path / "cct_xs_v2_global.onnx").is_file():
        pytest.fail(f"plate models not found in {path}; tests need ../shared/models")
    return path


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh Tansu broker with Cordon's topics, on a free port."""
    embedded = EmbeddedBroker(log_path=tmp_path / "tansu.log").start()
    try:
        yield embedded
    finally:
        embedded.stop()


def cordon_process(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """Run ``python -m cordon ARGS`` as its own process (so a test can SIGKILL it), output to ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORDON_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cordon", *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def make_read(plate: str = "AB12CDE", *, camera_id: str = "cam1", seconds: float = 0.0) -> PlateRead:
    """A valid read for tests that do not need a camera."""
    return PlateRead(
        read_id=uuid.uuid4(),
        camera_id=camera_id,
        edge_box_id="box-test",
        captured_at=utc_now() + timedelta(seconds=seconds),
        plate_raw=plate,
        plate=plate,
        confidence=0.9,
        bbox=BBox(x1=10, y1=10, x2=120, y2=40),
    )


class TopicReader:
    """Reads a whole topic from the beginning with manual assignment (no consumer-group join delay)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            request_timeout_ms=5000,
            reconnect_backoff_max_ms=500,
        )
        deadline = time.monotonic() + 10
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            partitions = self.consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.1)
        assert partitions, f"topic {topic} not found"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self.values: list[bytes] = []

    def poll(self, seconds: float = 0.5) -> list[bytes]:
        """Fetch for up to ``seconds``; return what arrived."""
        got: list[bytes] = []
        for records in self.consumer.poll(timeout_ms=int(seconds * 1000)).values():
            got.extend(r.value for r in records)
        self.values.extend(got)
        return got

    def read_until(self, done: Callable[[list[bytes]], bool], *, timeout_s: float) -> list[bytes]:
        """Poll until ``done(all values so far)`` or the timeout; return every value read."""
        deadline = time.monotonic() + timeout_s
        while not done(self.values) and time.monotonic() < deadline:
            self.poll(0.3)
        return self.values

    def drain(self, *, quiet_s: float = 1.5, timeout_s: float = 30.0) -> list[bytes]:
        """Poll until nothing new arrives for ``quiet_s`` (or the timeout); return every value read."""
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_new < quiet_s:
            if self.poll(0.3):
                last_new = time.monotonic()
        return self.values

    def close(self) -> None:
        self.consumer.close()


def read_topic(bootstrap: str, topic: str) -> list[bytes]:
    """Every message on ``topic`` now (until it has been quiet for a moment); the consumer is closed after.

    Closing matters: a Kafka client left running keeps background threads that draw from the global
    ``random`` module, which hypothesis tests in later modules detect and reject.
    """
    reader = TopicReader(bootstrap, topic)
    try:
        return reader.drain()
    finally:
        reader.close()


PG_ADMIN_URL = os.environ.get("CORDON_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database on the machine's server, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"cordon_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
