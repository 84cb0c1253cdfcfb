"""The outbox on a full disk, in-process and without root: SQLite's own ``max_page_count`` makes every
write that would grow the file fail with "database or disk is full", as a full filesystem does."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import wait_until

from gateway import outbox as outbox_module
from gateway.events import Decoded, Kind, decode_event
from gateway.outbox import Outbox


def alert(n: int) -> Decoded:
    return Decoded(Kind.ALERT, datetime.now(UTC), f"mdc:{1000 + n}", None, {"protocol": "test", "n": n,
                                                                            "pad": "x" * 2000})


def fill(box: Outbox, pages: int | None) -> None:
    db = box._db  # the test plays the filesystem: only the outbox's own connection sees the limit
    if pages is None:
        db.execute("PRAGMA max_page_count = 1073741823")
    else:
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0] + pages}")


def test_events_decoded_on_a_full_disk_are_held_in_order_and_written_when_it_has_room(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "RETRY_S", 0.05)
    box = Outbox(tmp_path / "o.sqlite", "gw1")
    try:
        assert box.append(alert(0), "c1").seq == 1
        fill(box, 0)
        held = [box.append(alert(n), "c1") for n in range(1, 6)]  # nothing raises: nothing is lost
        assert [e.seq for e in held] == [2, 3, 4, 5, 6]
        stats = box.stats()
        assert stats["held"] == 5 and "database or disk is full" in str(stats["error"])
        assert stats["pending"] == 6 and stats["next_seq"] == 7  # the bridge must not take the held as published
        assert [r.seq for r in box.unpublished()] == [1]  # not published before they are durable
        fill(box, None)  # room again: the retry thread writes them without any new event arriving
        wait_until(lambda: len(box.unpublished()) == 6, 5, "the held events written")
        assert box.stats().get("error") is None and "held" not in box.stats()
        rows = box.unpublished()
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
        assert [decode_event(r.payload).detail["n"] for r in rows] == [0, 1, 2, 3, 4, 5]
        assert [decode_event(r.payload).id for r in rows[1:]] == [e.id for e in held]
        assert box.append(alert(6), "c1").seq == 7  # and later ones follow them
    finally:
        box.close()
    reopened = Outbox(tmp_path / "o.sqlite", "gw1")
    try:
        assert reopened.stats()["next_seq"] == 8
    finally:
        reopened.close()


def test_published_marks_refused_by_a_full_disk_are_kept_and_written_later(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", "gw1")
    try:
        for n in range(3):
            box.append(alert(n), "c1")
        fill(box, 0)
        box.mark_published([1, 2])  # an UPDATE that would grow the file fails: kept in memory, no raise
        fill(box, None)
        box.mark_published([3])
        assert box.unpublished() == []
    finally:
        box.close()
