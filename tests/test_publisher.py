"""Spool → Kafka against a real Tansu broker, including a broker killed for 20 s and restarted empty; keys."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from cordon.broker import EmbeddedBroker
from cordon.events import PlateRead, decode, encode
from edge.publisher import SpoolPublisher
from edge.spool import Spool
from tests.conftest import TopicReader, make_read


def _spool_read(spool: Spool, publisher: SpoolPublisher, read: PlateRead) -> None:
    spool.append(
        event_id=str(read.read_id), topic="cordon.reads", key=read.camera_id.encode(), payload=encode(read)
    )
    publisher.notify()


def test_drains_spool_in_order(broker: EmbeddedBroker, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    publisher = SpoolPublisher(spool, bootstrap=broker.bootstrap, client_id="t")
    reads = [make_read(f"AB{i:02d}CDE", seconds=i) for i in range(40)]
    for read in reads:
        _spool_read(spool, publisher, read)
    while publisher.publish_batch():
        pass
    assert spool.depth == 0
    reader = TopicReader(broker.bootstrap, "cordon.reads")
    got = reader.read_until(lambda v: len(v) >= 40, timeout_s=15)
    reader.close()
    assert [decode(v).read_id for v in got] == [r.read_id for r in reads]  # type: ignore[union-attr]


@pytest.mark.slow
def test_broker_outage_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    """Reads keep coming while the broker is dead for 20 s; a fresh (empty) broker then gets them in order."""
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log").start()
    spool = Spool(tmp_path / "spool.db")
    publisher = SpoolPublisher(spool, bootstrap=broker.bootstrap, client_id="t", backoff_max_s=2.0)
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        before = [make_read(f"BE{i:02d}FOR", seconds=i) for i in range(10)]
        for read in before:
            _spool_read(spool, publisher, read)
        reader = TopicReader(broker.bootstrap, "cordon.reads")
        seen_before = reader.read_until(lambda v: len(v) >= 10, timeout_s=15)
        reader.close()
        assert len(seen_before) == 10

        broker.kill()
        during = [make_read(f"DU{i:02d}RIN", seconds=100 + i) for i in range(25)]
        outage_end = time.monotonic() + 20
        for read in during:  # reads captured while the broker is down go to the spool
            _spool_read(spool, publisher, read)
            time.sleep(0.5)
        time.sleep(max(0.0, outage_end - time.monotonic()))
        assert spool.depth == 25, "nothing may be removed from the spool while the broker is down"
        assert not publisher.connected

        broker.start()  # same port, empty: topics are recreated
        deadline = time.monotonic() + 30
        while spool.depth and time.monotonic() < deadline:
            time.sleep(0.2)
        assert spool.depth == 0
        reader = TopicReader(broker.bootstrap, "cordon.reads")
        after = reader.read_until(lambda v: len(v) >= 25, timeout_s=15)
        reader.close()
        ids = [decode(v).read_id for v in after]
        assert len(ids) == len(set(ids)), "no duplicates"
        assert ids == [r.read_id for r in during], "every outage read, in capture order"
    finally:
        stop.set()
        thread.join(timeout=30)
        broker.stop()
