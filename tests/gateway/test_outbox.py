"""The outbox numbers events durably: seq survives restarts and purges, nothing unacknowledged is lost."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.events import Decoded, Kind, decode_event
from gateway.outbox import Outbox


def beacon(n: int) -> Decoded:
    return Decoded(Kind.BEACON, datetime.now(UTC), f"gps:car-{n}", None, {"protocol": "test", "n": n})


def test_seq_is_monotonic_across_restarts_and_purges(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", "gw1")
    assert [box.append(beacon(i), "c1").seq for i in range(3)] == [1, 2, 3]
    box.mark_published([1, 2, 3])
    assert box.purge(retention_s=-1) == 3  # everything published is older than "now + 1 s"
    box.close()
    box = Outbox(tmp_path / "o.sqlite", "gw1")
    assert box.append(beacon(4), "c1").seq == 4
    assert box.stats() == {"pending": 1, "next_seq": 5, "oldest_seq": 4, "clips_pending": 0}


def test_unpublished_in_order_and_payload_is_the_event(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", "gw1")
    events = [box.append(beacon(i), f"c{i % 2}") for i in range(10)]
    box.mark_published([2, 5])
    rows = box.unpublished()
    assert [r.seq for r in rows] == [1, 3, 4, 6, 7, 8, 9, 10]
    assert [decode_event(r.payload) for r in rows] == [e for e in events if e.seq not in (2, 5)]
    assert [r.seq for r in box.unpublished(after_seq=6, limit=2)] == [7, 8]


def test_replay_range_includes_published_until_purged(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", "gw1")
    for i in range(5):
        box.append(beacon(i), "c")
    box.mark_published([1, 2, 3, 4, 5])
    assert [r.seq for r in box.range(2, 4)] == [2, 3, 4]
    assert box.purge(retention_s=3600) == 0  # inside the retention window: kept
    assert [r.seq for r in box.range(1, 99)] == [1, 2, 3, 4, 5]
