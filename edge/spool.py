"""Store-and-forward spool: every read is made durable on the box before it is published.

A read is appended (and fsync'd: SQLite WAL with ``synchronous=FULL``) before anything is sent to Kafka, and
deleted only after the broker has acknowledged it, so a broker outage, a crash or a power cut loses nothing
already accepted. Entries leave in the order they were appended.

Size policy: the spool holds at most ``max_entries`` reads. When full, ``drop_oldest`` (default) discards the
oldest unsent read to make room — on a box cut off for days the newest reads matter most to a control room —
and ``reject_new`` refuses the new read instead. Either way the loss is counted (``dropped``), logged and
exported as a metric; nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge import metrics
from edge.errors import SpoolError

__all__ = ["Spool", "SpoolEntry", "SpoolFullPolicy"]

log = logging.getLogger(__name__)

SpoolFullPolicy = Literal["drop_oldest", "reject_new"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic   TEXT NOT NULL,
    key     BLOB,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One spooled message, in append order (``seq`` increases)."""

    seq: int
    event_id: str
    topic: str
    key: bytes | None
    payload: bytes


class Spool:
    """A durable FIFO of messages waiting for a broker acknowledgement.

    Safe to share between threads (one connection guarded by a lock; SQLite serialises anyway).

    Parameters
    ----------
    path
        SQLite file; its directory is created if needed.
    max_entries
        Capacity in messages.
    policy
        What to do when full: ``drop_oldest`` or ``reject_new``.
    """

    def __init__(
        self, path: Path, *, max_entries: int = 100_000, policy: SpoolFullPolicy = "drop_oldest"
    ) -> None:
        if max_entries < 1:
            raise SpoolError(f"spool max_entries must be >= 1, got {max_entries}")
        self.path = path
        self.max_entries = max_entries
        self.policy: SpoolFullPolicy = policy
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsync'd at every commit, so an appended read survives a power cut.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open spool {str(path)!r}: {exc}") from exc
        self._depth = self._count()

    def _count(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM spool").fetchone()
        return int(row[0])

    @property
    def depth(self) -> int:
        """Messages waiting for acknowledgement."""
        return self._depth

    @property
    def dropped(self) -> int:
        """Messages lost to the size policy over the spool's whole life (survives restarts)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name='dropped'").fetchone()
        return int(row[0]) if row else 0

    def append(self, *, event_id: str, topic: str, key: bytes | None, payload: bytes) -> bool:
        """Durably append one message; return False if it was refused (full, ``reject_new``).

        Appending an ``event_id`` that is already spooled is a no-op that returns True, so a retried append
        cannot create a duplicate.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                dropped = 0
                if self._depth >= self.max_entries:
                    if self.policy == "reject_new":
                        self._bump_dropped(1)
                        self._db.execute("COMMIT")
                        log.error(
                            "spool full; read refused", extra={"event_id": event_id, "depth": self._depth}
                        )
                        return False
                    dropped = self._depth - self.max_entries + 1
                    self._db.execute(
                        "DELETE FROM spool WHERE seq IN (SELECT seq FROM spool ORDER BY seq LIMIT ?)",
                        (dropped,),
                    )
                    self._bump_dropped(dropped)
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO spool (event_id, topic, key, payload) VALUES (?, ?, ?, ?)",
                    (event_id, topic, key, payload),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise SpoolError(f"cannot append to spool {str(self.path)!r}: {exc}") from exc
            self._depth += cur.rowcount - dropped
            if dropped:
                log.error(
                    "spool full; oldest reads dropped", extra={"dropped": dropped, "depth": self._depth}
                )
            return True

    def _bump_dropped(self, n: int) -> None:
        metrics.SPOOL_DROPPED.inc(n)
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES ('dropped', ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (n,),
        )

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def peek(self, limit: int = 500) -> list[SpoolEntry]:
        """Return up to ``limit`` of the oldest messages, oldest first, without removing them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, topic, key, payload FROM spool ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [SpoolEntry(int(r[0]), str(r[1]), str(r[2]), r[3], bytes(r[4])) for r in rows]

    def ack(self, seqs: list[int]) -> None:
        """Delete messages the broker has acknowledged."""
        if not seqs:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cur = self._db.executemany("DELETE FROM spool WHERE seq = ?", [(s,) for s in seqs])
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise SpoolError(
                    f"cannot delete acknowledged entries from {str(self.path)!r}: {exc}"
                ) from exc
            self._depth -= cur.rowcount

    def close(self) -> None:
        """Close the database (pending entries stay on disk)."""
        with self._lock:
            self._db.close()
