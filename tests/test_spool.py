"""The store-and-forward spool: order, durability across reopen and kill, size policy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import SpoolError
from edge.spool import Spool


def _fill(spool: Spool, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        assert spool.append(event_id=f"e{i}", topic="t", key=b"k", payload=f"p{i}".encode())


def test_fifo_and_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    _fill(spool, 5)
    entries = spool.peek(3)
    assert [e.payload for e in entries] == [b"p0", b"p1", b"p2"]
    spool.ack([entries[0].seq, entries[1].seq])
    assert spool.depth == 3
    assert [e.payload for e in spool.peek()] == [b"p2", b"p3", b"p4"]


def test_duplicate_event_id_is_not_spooled_twice(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    assert spool.append(event_id="same", topic="t", key=None, payload=b"1")
    assert spool.append(event_id="same", topic="t", key=None, payload=b"1")
    assert spool.depth == 1


def test_survives_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    _fill(spool, 4)
    spool.ack([spool.peek(1)[0].seq])
    spool.close()
    again = Spool(tmp_path / "s.db")
    assert again.depth == 3
    assert [e.event_id for e in again.peek()] == ["e1", "e2", "e3"]


def test_survives_sigkill_of_writer(tmp_path: Path) -> None:
    """A process killed right after append returns leaves the read on disk."""
    path = tmp_path / "s.db"
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from edge.spool import Spool\n"
        f"s = Spool(Path({str(path)!r}))\n"
        "for i in range(50):\n"
        "    s.append(event_id=f'e{i}', topic='t', key=None, payload=b'x')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, cwd=Path(__file__).parents[1])
    assert proc.returncode == -9
    assert Spool(path).depth == 50


def test_drop_oldest_when_full(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_entries=3, policy="drop_oldest")
    _fill(spool, 5)
    assert spool.depth == 3
    assert [e.event_id for e in spool.peek()] == ["e2", "e3", "e4"]
    assert spool.dropped == 2


def test_reject_new_when_full(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_entries=2, policy="reject_new")
    _fill(spool, 2)
    assert not spool.append(event_id="e9", topic="t", key=None, payload=b"x")
    assert [e.event_id for e in spool.peek()] == ["e0", "e1"]
    assert spool.dropped == 1


def test_bad_capacity_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="max_entries"):
        Spool(tmp_path / "s.db", max_entries=0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=15))
def test_acked_prefixes_keep_order(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[int, int]]
) -> None:
    """Whatever the interleaving of appends and acks, what remains is the un-acked tail in append order."""
    spool = Spool(tmp_path_factory.mktemp("spool") / "s.db")
    appended: list[str] = []
    acked: set[str] = set()
    n = 0
    for add, take in ops:
        _fill(spool, add, start=n)
        appended += [f"e{i}" for i in range(n, n + add)]
        n += add
        head = spool.peek(take)
        spool.ack([e.seq for e in head])
        acked |= {e.event_id for e in head}
    assert [e.event_id for e in spool.peek(10_000)] == [e for e in appended if e not in acked]
    assert spool.depth == len(appended) - len(acked)
