"""The durable outbox: every event is numbered and written here before anything else happens to it.

One SQLite file per gateway (WAL, ``synchronous=FULL``: an event the gateway has accepted survives a
crash or a power cut). A row is marked published when the broker acknowledged it (PUBACK), and kept
for the retention window after that so that a bridge can ask for a range again (``cmd/replay``).

    events(seq PK, id, kind, topic_kind, created, payload, published NULL|time)
    clips(id PK, payload, published NULL|time)
                                 the audio of a call event, published after the event itself
    meta(key PK, value)          next_seq: survives purges, so seq never goes back

A disk that is full (or failing) does not lose what was decoded: the event is numbered and held in
memory, in seq order, and written first as soon as the file takes it; ``stats()`` then shows ``held`` and
the ``error`` (the gateway's state, the console's health screen).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

from config.private import private_sqlite
from gateway.events import Decoded, Event, encode_event

log = logging.getLogger(__name__)

#: Events numbered while the outbox cannot be written (disk full, I/O error), held in memory in seq order
#: and written as soon as it can be; past this many the newest are refused (their seq shows as a hole).
HELD_MAX = 20_000
RETRY_S = 1.0  # how often a held event is tried again when nothing new arrives

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
CREATE INDEX IF NOT EXISTS alerts_unpublished ON events(seq) WHERE published IS NULL AND kind = 'alert';
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


class OutboxStats(TypedDict):
    """What the gateway's state says of its outbox."""

    pending: int  # events not yet acknowledged by the broker, held ones included
    next_seq: int
    oldest_seq: int | None  # None: the outbox is empty
    clips_pending: int
    # Only when one of them is not zero or None:
    held: NotRequired[int]  # events not yet written to disk
    refused: NotRequired[int]  # events dropped because too many were held
    error: NotRequired[str | None]  # why the outbox cannot be written now


class Outbox:
    """Thread-safe: drivers append from their threads, the publisher reads and marks from its own."""

    def __init__(self, path: Path | str, gateway: str) -> None:
        self.path = Path(path)
        self.gateway = gateway
        if str(path) != ":memory:":
            private_sqlite(self.path)  # positions, names and voice: the owner's alone, whatever the umask
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # The log shrinks back after a checkpoint: a backlog after an outage must not keep megabytes of a
        # field box's small disk (and a disk that fills up is then noticed at once, not after the old log).
        self._db.execute("PRAGMA journal_size_limit=262144")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._hold_lock = threading.Lock()  # held events and numbering: appends stay in seq order
        self._closed = False
        row = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        top = self._db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        # Both: meta survives purges, MAX(seq) guards against a meta row lost with an old file format.
        self._next_seq = max(row[0] if row else 1, (top or 0) + 1)
        # An append that cannot be written (the disk is full) must not lose what was decoded, nor let
        # anything decoded later overtake it: it is numbered, held here, and written first when it can be.
        self._held: deque[tuple[int, Event, bytes, bytes | None]] = deque()
        self._marks_held: list[int] = []  # published marks the disk refused; tried again with the next
        self.refused = 0  # events dropped because HELD_MAX were already held
        self.error: str | None = None  # why the outbox cannot be written now (the gateway's health shows it)
        self._retrying = False

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.OperationalError:
                    pass  # SQLite already rolled back (a full disk does that): the original error counts
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.OperationalError:  # a full disk can refuse the commit itself: leave no transaction open
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.OperationalError:
                    pass
                raise

    def append(self, decoded: Decoded, channel: str, *, event_id: str | None = None,
               clip: bytes | None = None) -> Event:
        """Number the event, write it durably (with its audio ``clip``, if any), and return it; only then
        may anyone publish it. While the file cannot be written the event is held in memory, in order,
        and written (by a retry thread, or the next append) before anything numbered after it."""
        with self._hold_lock:
            seq = self._next_seq
            self._next_seq = seq + 1
            event = Event.stamp(decoded, seq=seq, gateway=self.gateway, channel=channel, id=event_id)
            if len(self._held) >= HELD_MAX:
                self.refused += 1
                log.error("outbox %s: %d events held unwritten already; seq %d (%s %s) refused",
                          self.path, len(self._held), seq, event.kind, event.unit or "-")
                return event
            self._held.append((seq, event, encode_event(event), clip))
            self._write_held()
        return event

    def _write_held(self) -> None:
        while self._held:
            seq, event, payload, clip = self._held[0]
            try:
                with self._tx() as db:
                    db.execute(
                        "INSERT INTO events(seq, id, kind, created, payload) VALUES (?, ?, ?, ?, ?)",
                        (seq, event.id, str(event.kind), time.time(), payload),
                    )
                    if clip is not None:
                        db.execute("INSERT INTO clips(id, payload) VALUES (?, ?)", (event.id, clip))
                    db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('next_seq', ?)", (seq + 1,))
            except sqlite3.OperationalError as exc:  # "database or disk is full", "disk I/O error"
                if self.error is None:
                    log.error("outbox %s cannot be written (%s): holding events in memory, in order, until it "
                              "can", self.path, exc)
                self.error = f"cannot write the outbox: {exc}"
                self._start_retrying()
                return
            except sqlite3.Error:
                self._held.popleft()  # refused for what it is, not for want of room: its caller hears it
                raise
            self._held.popleft()
        if self.error is not None:
            log.warning("outbox %s writable again: held events written", self.path)
            self.error = None

    def _start_retrying(self) -> None:
        # Without new events nobody would call append: a thread of its own writes the held ones.
        if self._retrying:
            return
        self._retrying = True

        def run() -> None:
            while True:
                time.sleep(RETRY_S)
                with self._hold_lock:
                    if not self._closed:
                        try:
                            self._write_held()
                        except sqlite3.Error as exc:
                            log.error("outbox %s: a held event refused: %s", self.path, exc)
                    if not self._held or self._closed:
                        self._retrying = False
                        return

        threading.Thread(target=run, name="outbox-retry", daemon=True).start()

    def unpublished(self, after_seq: int = 0, limit: int = 500, *, alerts_only: bool = False) -> list[OutboxRow]:
        kind = " AND kind = 'alert'" if alerts_only else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT seq, id, kind, payload FROM events WHERE published IS NULL{kind} AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def mark_published(self, seqs: list[int]) -> None:
        seqs = self._marks_held + list(seqs)
        if not seqs:
            return
        now = time.time()
        try:
            with self._tx() as db:
                db.executemany("UPDATE events SET published=? WHERE seq=? AND published IS NULL",
                               [(now, s) for s in seqs])
        except sqlite3.OperationalError as exc:
            # Unmarked, they would only be sent again after a restart (the bridge ignores repeats).
            self._marks_held = seqs[-HELD_MAX:]
            self.error = f"cannot write the outbox: {exc}"
            return
        self._marks_held = []

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
            try:
                with self._tx() as db:
                    db.executemany("UPDATE clips SET published=? WHERE id=?", [(time.time(), i) for i in ids])
            except sqlite3.OperationalError as exc:  # left unpublished: sent again, the bridge ignores it
                self.error = f"cannot write the outbox: {exc}"

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
        try:
            with self._tx() as db:
                cutoff = time.time() - retention_s
                db.execute("DELETE FROM clips WHERE id IN (SELECT id FROM events WHERE published IS NOT NULL AND "
                           "published < ?)", (cutoff,))
                cur = db.execute("DELETE FROM events WHERE published IS NOT NULL AND published < ?", (cutoff,))
        except sqlite3.OperationalError as exc:  # a full disk: purging is what frees it, next time
            log.warning("outbox %s: purge failed: %s", self.path, exc)
            return 0
        return cur.rowcount

    def stats(self) -> OutboxStats:
        # Under the hold lock: a seq being numbered is either held or written, never neither, so
        # next_seq - pending never claims an event published that is not.
        with self._hold_lock, self._lock:
            pending = self._db.execute("SELECT COUNT(*) FROM events WHERE published IS NULL").fetchone()[0]
            oldest = self._db.execute("SELECT MIN(seq) FROM events").fetchone()[0]
            clips = self._db.execute("SELECT COUNT(*) FROM clips WHERE published IS NULL").fetchone()[0]
            held, next_seq = len(self._held), self._next_seq
        # Held events are pending too: the bridge reads next_seq - pending as "published so far".
        out: OutboxStats = {"pending": pending + held, "next_seq": next_seq, "oldest_seq": oldest,
                            "clips_pending": clips}
        if held or self.refused or self.error:  # only when it matters: the health screen shows it
            out.update({"held": held, "refused": self.refused, "error": self.error})
        return out

    def close(self) -> None:
        with self._hold_lock:
            self._closed = True
            if self._held:
                log.error("outbox %s: %d events held unwritten are lost with this process (%s)", self.path,
                          len(self._held), self.error)
        with self._lock:
            self._db.close()
