"""The durable outbox: every event is numbered and written here before anything else happens to it.

One SQLite file per gateway (WAL, ``synchronous=FULL``: an event the gateway has accepted survives a
crash or a power cut). A row is marked published when the broker acknowledged it (PUBACK), and kept
for the retention window after that so that a bridge can ask for a range again (``cmd/replay``).

    events(seq PK, id, kind, topic_kind, created, payload, published NULL|time)
    clips(id PK, payload, published NULL|time)
                                 the audio of a call event, published after the event itself
    meta(key PK, value)          next_seq: survives purges, so seq never goes back
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway.events import Decoded, Event, encode_event

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    kind      TEXT NOT NULL,
    created   REAL NOT NULL,
    payload   BLOB NOT NULL,
    published REAL
);
CREATE INDEX IF NOT EXISTS events_unpublished ON events(seq) WHERE published IS NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS clips (
    id        TEXT PRIMARY KEY,  -- the call event's id; purged with it
    payload   BLOB NOT NULL,
    published REAL
);
"""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    id: str
    kind: str
    payload: bytes


class Outbox:
    """Thread-safe: drivers append from their threads, the publisher reads and marks from its own."""

    def __init__(self, path: Path | str, gateway: str) -> None:
        self.path = Path(path)
        self.gateway = gateway
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        row = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        top = self._db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        # Both: meta survives purges, MAX(seq) guards against a meta row lost with an old file format.
        self._next_seq = max(row[0] if row else 1, (top or 0) + 1)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def append(self, decoded: Decoded, channel: str, *, event_id: str | None = None,
               clip: bytes | None = None) -> Event:
        """Number the event, write it durably (with its audio ``clip``, if any), and return it; only then
        may anyone publish it."""
        with self._tx() as db:
            seq = self._next_seq
            event = Event.stamp(decoded, seq=seq, gateway=self.gateway, channel=channel, id=event_id)
            db.execute(
                "INSERT INTO events(seq, id, kind, created, payload) VALUES (?, ?, ?, ?, ?)",
                (seq, event.id, str(event.kind), time.time(), encode_event(event)),
            )
            if clip is not None:
                db.execute("INSERT INTO clips(id, payload) VALUES (?, ?)", (event.id, clip))
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('next_seq', ?)", (seq + 1,))
            self._next_seq = seq + 1
        return event

    def unpublished(self, after_seq: int = 0, limit: int = 500) -> list[OutboxRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, kind, payload FROM events WHERE published IS NULL AND seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def mark_published(self, seqs: list[int]) -> None:
        if not seqs:
            return
        now = time.time()
        with self._tx() as db:
            db.executemany("UPDATE events SET published=? WHERE seq=? AND published IS NULL", [(now, s) for s in seqs])

    def unpublished_clips(self, limit: int = 4) -> list[tuple[str, bytes]]:
        """Clips whose event the broker has acknowledged: a bridge never gets audio for an unknown event
        before the event itself (it could not check the clip's hash)."""
        with self._lock:
            return self._db.execute(
                "SELECT c.id, c.payload FROM clips c JOIN events e ON e.id = c.id "
                "WHERE c.published IS NULL AND e.published IS NOT NULL ORDER BY e.seq LIMIT ?",
                (limit,),
            ).fetchall()

    def mark_clips_published(self, ids: list[str]) -> None:
        if ids:
            with self._tx() as db:
                db.executemany("UPDATE clips SET published=? WHERE id=?", [(time.time(), i) for i in ids])

    def range(self, first: int, last: int, limit: int = 10_000) -> list[OutboxRow]:
        """Events ``first..last`` still held (published or not), for a replay request."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, kind, payload FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq LIMIT ?",
                (first, last, limit),
            ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def purge(self, retention_s: float) -> int:
        """Forget published events older than the retention window; returns how many."""
        with self._tx() as db:
            cutoff = time.time() - retention_s
            db.execute("DELETE FROM clips WHERE id IN (SELECT id FROM events WHERE published IS NOT NULL AND "
                       "published < ?)", (cutoff,))
            cur = db.execute("DELETE FROM events WHERE published IS NOT NULL AND published < ?", (cutoff,))
        return cur.rowcount

    def stats(self) -> dict[str, int | None]:
        with self._lock:
            pending = self._db.execute("SELECT COUNT(*) FROM events WHERE published IS NULL").fetchone()[0]
            oldest = self._db.execute("SELECT MIN(seq) FROM events").fetchone()[0]
            clips = self._db.execute("SELECT COUNT(*) FROM clips WHERE published IS NULL").fetchone()[0]
        return {"pending": pending, "next_seq": self._next_seq, "oldest_seq": oldest, "clips_pending": clips}

    def close(self) -> None:
        with self._lock:
            self._db.close()
