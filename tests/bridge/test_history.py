"""History and search on SQLite and PostgreSQL: keyset pages newest first that return every row exactly
once (also when many rows share one time), each filter, text search, and pages that never read more than
``limit + 1`` rows from the database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bridge.history import CallEntry, Cursor, Filters, History
from bridge.models import EventRow, IncidentRow
from bridge.store import Store
from bridge.views import IncidentView
from gateway.events import Event, Kind, uuid7

T0 = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)


def make(kind: Kind, unit: str | None, at: float, *, gateway: str = "gw1", channel: str = "patrol-1",
         seq: int, **detail: object) -> Event:
    t = T0 + timedelta(seconds=at)
    return Event(id=uuid7(t), seq=seq, gateway=gateway, channel=channel, kind=kind, time=t, unit=unit,
                 detail=detail)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, incident_window_s=600)
    yield s
    s.close()


@pytest.fixture
def history(store: Store) -> History:
    return History(store.engine)


class Loads:
    """Counts rows the ORM builds from what the database returned, and the SELECTs sent."""

    def __init__(self, store: Store) -> None:
        self.rows = 0
        self.selects: list[tuple[str, Any]] = []
        self.engine = store.engine

    def _load(self, *_: object) -> None:
        self.rows += 1

    def _sql(self, _conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.selects.append((statement, parameters))

    def __enter__(self) -> Loads:
        event.listen(EventRow, "load", self._load)
        event.listen(IncidentRow, "load", self._load)
        event.listen(self.engine, "before_cursor_execute", self._sql)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(EventRow, "load", self._load)
        event.remove(IncidentRow, "load", self._load)
        event.remove(self.engine, "before_cursor_execute", self._sql)


def test_every_event_exactly_once_across_pages_even_with_equal_times(store: Store, history: History) -> None:
    # 5 times x 7 events each: pages of 4 split groups of equal time; the (time, id) key keeps order.
    events = [make(Kind.BEACON, f"mdc:{1000 + n}", at=float(n % 5), seq=n + 1) for n in range(35)]
    store.ingest(events)
    seen: list[str] = []
    cursor: Cursor | None = None
    pages = 0
    while True:
        page = history.events(Filters(scope="events"), cursor, limit=4)
        assert len(page.rows) <= 4
        seen += [e.id for e in page.rows]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 9  # 8 full pages and the last 3
    assert len(seen) == len(set(seen)) == 35
    assert set(seen) == {e.id for e in events}
    expected = sorted(events, key=lambda e: (e.time, e.id), reverse=True)
    assert seen == [e.id for e in expected]  # newest first, ties by id


def test_an_exact_last_page_says_there_is_no_next_one(store: Store, history: History) -> None:
    store.ingest([make(Kind.BEACON, "mdc:1", at=n, seq=n + 1) for n in range(6)])
    first = history.events(Filters(scope="events"), limit=3)
    assert first.next_cursor is not None
    second = history.events(Filters(scope="events"), first.next_cursor, limit=3)
    assert len(second.rows) == 3 and second.next_cursor is None
    assert history.events(Filters(scope="events", unit="mdc:nobody")).rows == []


def test_rows_written_after_the_first_page_do_not_shift_the_next(store: Store, history: History) -> None:
    store.ingest([make(Kind.BEACON, "mdc:1", at=n, seq=n + 1) for n in range(6)])
    first = history.events(Filters(scope="events"), limit=3)
    store.ingest([make(Kind.BEACON, "mdc:1", at=100 + n, seq=10 + n) for n in range(3)])  # newer ones
    second = history.events(Filters(scope="events"), first.next_cursor, limit=3)
    assert [e.time for e in second.rows] == [T0 + timedelta(seconds=s) for s in (2, 1, 0)]


def test_a_page_reads_at_most_limit_plus_one_rows(store: Store, history: History) -> None:
    store.ingest([make(Kind.CALL if n % 2 else Kind.BEACON, f"mdc:{n}", at=n, seq=n + 1, duration_s=1.0)
                  for n in range(60)])
    store.ingest([make(Kind.ALERT, f"mdc:{n}", at=100 + n, seq=100 + n, rule="emergency") for n in range(30)])
    for scope, total in (("events", 90), ("calls", 30), ("incidents", 30)):
        cursor: Cursor | None = None
        read = 0
        while True:
            with Loads(store) as loads:
                page = history.page(Filters(scope=scope), cursor, limit=7)  # type: ignore[arg-type]
            # One SELECT for the page (an incident page adds one for its units' aliases), each with
            # LIMIT 8, and no more than 8 rows built from what came back.
            assert len(loads.selects) == (2 if scope == "incidents" else 1), loads.selects
            assert loads.rows <= 8 and len(page.rows) <= 7
            statement, parameters = loads.selects[0]
            assert "LIMIT" in statement.upper()
            values = parameters.values() if isinstance(parameters, dict) else parameters
            assert 8 in list(values)
            read += len(page.rows)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert read == total, scope


def test_each_filter_narrows_the_events(store: Store, history: History) -> None:
    seq = iter(range(1, 1000))
    store.ingest([
        make(Kind.BEACON, "mdc:1001", at=0, seq=next(seq)),
        make(Kind.BEACON, "mdc:1002", at=10, seq=next(seq), channel="patrol-2"),
        make(Kind.STATUS, "fleetsync:100-2001", at=20, seq=next(seq), text="Car 7 at the bridge"),
        make(Kind.BEACON, "fleetsync:100-2002", at=30, gateway="gw2", seq=1),
        make(Kind.PTT, None, at=40, seq=next(seq), text="100%_sure"),
    ])

    def units(**f: Any) -> list[str | None]:
        return [e.unit for e in history.events(Filters(scope="events", **f)).rows]

    assert units() == [None, "fleetsync:100-2002", "fleetsync:100-2001", "mdc:1002", "mdc:1001"]
    assert units(unit="mdc:1001") == ["mdc:1001"]
    assert units(unit="mdc:100") == []  # no wildcard: exact
    assert units(unit="MDC:*") == ["mdc:1002", "mdc:1001"]  # a glob, case-insensitive
    assert units(unit="fleetsync:100-200?") == ["fleetsync:100-2002", "fleetsync:100-2001"]
    assert units(gateway="gw2") == ["fleetsync:100-2002"]
    assert units(channel="patrol-2") == ["mdc:1002"]
    assert units(channel="patrol-*", gateway="gw1", unit="mdc:*") == ["mdc:1002", "mdc:1001"]
    assert units(kind="status") == ["fleetsync:100-2001"]
    assert units(since=T0 + timedelta(seconds=10), until=T0 + timedelta(seconds=30)) == [
        "fleetsync:100-2001", "mdc:1002"]  # since inclusive, until exclusive
    # Text: in the detail (as JSON text) or the unit, whatever the case; LIKE's own wildcards are literal.
    assert units(text="car 7") == ["fleetsync:100-2001"]
    assert units(text="2002") == ["fleetsync:100-2002"]
    assert units(text="100%_") == [None]
    assert units(text="100%x") == []
    assert units(text="_") == [None]  # only the PTT's detail has an underscore


def test_calls_come_with_their_clip(store: Store, history: History) -> None:
    import io

    import numpy as np
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, np.zeros(800, np.float32), 8000, format="FLAC")
    flac = buf.getvalue()
    with_clip = make(Kind.CALL, "mdc:1001", at=0, seq=1, duration_s=2.5,
                     audio={"sha256": hashlib.sha256(flac).hexdigest()})
    pending = make(Kind.CALL, None, at=5, seq=2, channel="patrol-2", duration_s=1.0)
    store.ingest([with_clip, pending, make(Kind.BEACON, "mdc:1001", at=6, seq=3)])
    store.add_clip("gw1", with_clip.id, flac)
    rows = history.calls(Filters(scope="calls")).rows
    assert all(isinstance(r, CallEntry) for r in rows)
    assert [(r.event.id, r.call.codec, r.call.duration_s) for r in rows] == [
        (pending.id, None, 1.0), (with_clip.id, "flac", 2.5)]
    assert rows[1].call.sha256 == hashlib.sha256(flac).hexdigest() and rows[1].event.gateway == "gw1"
    assert [r.event.id for r in history.calls(Filters(scope="calls", unit="mdc:1001")).rows] == [with_clip.id]
    assert [r.event.id for r in history.calls(Filters(scope="calls", channel="patrol-2")).rows] == [pending.id]


def test_incidents_every_one_once_by_filter_and_by_text_in_notes(store: Store, history: History) -> None:
    # Ten units press their emergency button at the same second: ten incidents with equal times.
    alerts = [make(Kind.ALERT, f"mdc:{2000 + n}", at=0, seq=n + 1, rule="emergency") for n in range(10)]
    alerts.append(make(Kind.ALERT, "fleetsync:100-1001", at=60, seq=20, gateway="gw2", channel="fire",
                       rule="man down"))
    store.ingest(alerts)
    store.set_alias("fleetsync:100-1001", "Officer Li")
    everyone: list[IncidentView] = history.all_pages(Filters(), limit=3)
    assert len(everyone) == len({i.id for i in everyone}) == 11
    assert everyone[0].unit == "fleetsync:100-1001" and everyone[0].alias == "Officer Li"
    assert [i.id for i in everyone[1:]] == sorted((i.id for i in everyone[1:]), reverse=True)

    def ids(**f: Any) -> list[str | None]:
        return [i.unit for i in history.incidents(Filters(**f)).rows]

    assert ids(gateway="gw2") == ["fleetsync:100-1001"]
    assert ids(channel="fire") == ["fleetsync:100-1001"]
    assert ids(unit="mdc:2003") == ["mdc:2003"]
    assert len(ids(unit="mdc:*")) == 10
    assert ids(text="MAN DOWN") == ["fleetsync:100-1001"]  # the label
    assert ids(since=T0 + timedelta(seconds=1)) == ["fleetsync:100-1001"]
    assert len(ids(until=T0 + timedelta(seconds=1))) == 10
    target = next(i for i in everyone if i.unit == "mdc:2004")
    store.add_note(target.id, "alice", "Car 7 sent to the river bridge")
    assert ids(text="river") == ["mdc:2004"]  # an operator's note


def test_filters_are_checked() -> None:
    with pytest.raises(ValueError, match="scope"):
        Filters(scope="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        Filters(scope="events", kind="gossip")
    with pytest.raises(ValueError, match="since: a naive time"):
        Filters(since=datetime(2026, 1, 1))
