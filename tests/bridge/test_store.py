"""Storage on SQLite and PostgreSQL alike: idempotent ingest, unit state, seq gaps, incidents and history."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from support import create_database

import bridge.store.engine as engine_module
from bridge.models import Base, EventRow
from bridge.store import IncidentError, Store, migrate, redact, unavailable
from bridge.store import database_url as url_of
from bridge.store.base import event_from_row
from bridge.store.ingest import _remembered, _utc_text
from config.schema import ConfigError, parse_config
from gateway.events import INT64_MAX, Event, Kind, Position, uuid7

T0 = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)


class Radio:
    """Makes events as a gateway numbers them."""

    def __init__(self, gateway: str = "gw1") -> None:
        self.gateway = gateway
        self.seq = 0

    def event(self, kind: Kind = Kind.BEACON, unit: str | None = "mdc:1234", *, at: float = 0.0,
              position: Position | None = None, seq: int | None = None, **detail: object) -> Event:
        if seq is None:
            self.seq += 1
            seq = self.seq
        t = T0 + timedelta(seconds=at)
        return Event(id=uuid7(t), seq=seq, gateway=self.gateway, channel="patrol-1", kind=kind, time=t, unit=unit,
                     position=position, detail=detail)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, incident_window_s=600)
    yield s
    s.close()


def test_migrations_create_what_the_models_say(store: Store) -> None:
    migrate(store.engine)  # a second start changes nothing
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_the_same_event_twice_is_stored_once(store: Store) -> None:
    radio = Radio()
    a, b = radio.event(Kind.ALERT), radio.event(Kind.ALERT, at=1)
    first = store.ingest([a])
    assert first.stored == [a.id] and first.duplicates == 0
    assert [i.state for i, _ in first.incidents] == ["new"]
    again = store.ingest([a, b, b])  # a redelivered, b twice within one batch
    assert again.stored == [b.id] and again.duplicates == 2
    assert store.count_events() == 2
    # The redelivery changed nothing: the incident counts each alert once.
    [incident] = store.open_incidents()
    assert incident.alert_count == 2 and incident.first_event_id == a.id and incident.last_event_id == b.id
    assert store.ingest([a, b]).incidents == []


def test_units_keep_the_newest_state_whatever_the_arrival_order(store: Store) -> None:
    radio = Radio()
    newer = radio.event(Kind.BEACON, at=60, position=Position(30.21, 120.21, speed_mps=1.5, source="nmea"))
    older = radio.event(Kind.BEACON, at=10, position=Position(30.0, 120.0, source="nmea"))
    store.ingest([newer])
    result = store.ingest([older])  # replayed late
    assert result.units == []
    [unit] = store.units()
    assert unit.unit == "mdc:1234" and unit.last_event_id == newer.id
    assert unit.position is not None and (unit.position.lat, unit.position.lon) == (30.21, 120.21)
    assert unit.last_heard == newer.time and unit.last_channel == "patrol-1" and unit.last_gateway == "gw1"
    assert unit.gateway_online is False  # the gateway is known, and said nothing of being online
    store.note_gateway_state("gw1", {"online": True, "gateway": "gw1"})
    assert store.units()[0].gateway_online is True
    named = store.set_alias("mdc:1234", "Officer Chen")
    assert named.alias == "Officer Chen" and named.to_json()["position"]["fix_time"] == "2026-11-26T19:31:00.000Z"


def test_incidents_carry_their_units_alias_as_opened_joined_and_moved(store: Store) -> None:
    """The alias a dispatcher gave a unit is on its incident however the incident changed in a batch:
    opened by an alert, joined by the next, moved by a beacon, and with a unit of no alias beside it."""
    radio, other = Radio(), Radio("gw2")
    store.ingest([radio.event(Kind.BEACON, at=0, position=Position(30.2, 120.2, source="nmea"))])
    store.set_alias("mdc:1234", "Officer Chen")
    opened = store.ingest([radio.event(Kind.ALERT, at=5, position=Position(30.2, 120.2, source="nmea")),
                           other.event(Kind.ALERT, unit="mdc:777", at=5)]).incidents
    assert sorted((i.unit, i.alias, change) for i, change in opened) == [
        ("mdc:1234", "Officer Chen", "opened"), ("mdc:777", None, "opened")]
    [(joined, change)] = store.ingest([radio.event(Kind.ALERT, at=6)]).incidents
    assert (joined.alias, change) == ("Officer Chen", "alert")
    moved = store.ingest([radio.event(Kind.BEACON, at=9, position=Position(30.3, 120.3, source="nmea"))]).incidents
    assert [(i.alias, change, i.lat) for i, change in moved] == [("Officer Chen", "position", 30.3)]
    # A replayed alert older than what the unit last said changes no unit state; its alias is looked up.
    late = store.ingest([radio.event(Kind.ALERT, at=4)])
    assert late.units == [] and [(i.alias, change) for i, change in late.incidents] == [("Officer Chen", "alert")]


def test_an_incident_is_where_its_unit_was_last_whatever_the_batch(store: Store) -> None:
    """An incident follows its unit: opened by an alert with an older fix than a beacon of the same batch, it
    is at the beacon's fix, and is news once; an alert with no position takes the unit's newest; a later
    beacon moves it (news again), a beacon older than the incident's fix does not, nor one of a resolved
    incident."""
    radio = Radio()
    alert = radio.event(Kind.ALERT, at=5, position=Position(30.1, 120.1, fix_time=T0, source="nmea"))
    beacon = radio.event(Kind.BEACON, at=6, position=Position(30.2, 120.2, source="nmea"))
    [(opened, change)] = store.ingest([alert, beacon]).incidents
    assert (change, opened.lat, opened.lon) == ("opened", 30.2, 120.2)
    [(moved, change)] = store.ingest([radio.event(Kind.BEACON, at=9, position=Position(30.3, 120.3,
                                                                                       source="nmea"))]).incidents
    assert (moved.id, change, moved.lat) == (opened.id, "position", 30.3)
    older = radio.event(Kind.BEACON, at=8, position=Position(30.9, 120.9, source="nmea"))
    assert store.ingest([older]).incidents == []
    other = Radio("gw2")
    store.ingest([other.event(Kind.BEACON, unit="mdc:55", at=10, position=Position(30.5, 120.5, source="nmea"))])
    [(bare, _)] = store.ingest([other.event(Kind.ALERT, unit="mdc:55", at=11)]).incidents
    assert (bare.lat, bare.lon) == (30.5, 120.5)
    store.resolve(opened.id, "dispatcher", "handled")
    after = radio.event(Kind.BEACON, at=20, position=Position(30.4, 120.4, source="nmea"))
    assert store.ingest([after]).incidents == []


def test_the_beacons_under_an_alert_sent_ahead_carry_the_contiguous_seq_past_it(store: Store,
                                                                                 database_url: str) -> None:
    """The seqs a store committed past its gateway's contiguous seq are carried over once the hole below
    them fills; another store on the same database (a bridge of a shared group) that did not store them
    leaves the hole to the query that finds what is missing."""
    radio = Radio()
    beacons = [radio.event(Kind.BEACON, at=i) for i in range(3)]
    alert = radio.event(Kind.ALERT, at=3)
    first = store.ingest([alert])
    assert first.gaps == {"gw1": [(1, 3)]} and first.settled == {}
    second = store.ingest(beacons)
    assert second.gaps == {} and second.settled == {"gw1": 4}
    assert store.gateways()[0].contiguous_seq == 4
    other = Radio("gw2")
    ahead, below = other.event(Kind.ALERT, seq=3), [other.event(Kind.BEACON, seq=q) for q in (1, 2)]
    peer = Store.open(database_url)
    try:
        assert store.ingest([ahead]).settled == {}
        assert peer.ingest(below).settled == {}
        assert {g.name: g.contiguous_seq for g in store.gateways()}["gw2"] == 2
        assert store.missing_ranges("gw2").holes == []
        assert {g.name: g.contiguous_seq for g in store.gateways()}["gw2"] == 3
    finally:
        peer.close()


def test_the_transmission_an_alert_came_in_is_news_of_its_incident_when_it_ends(store: Store) -> None:
    """An emergency decoded during a transmission names it; the transmission's call event comes when it
    ends, after the alert opened the incident. The incident is news again then (with the call in its
    detail), so that a dispatcher looking at it sees the transmission; an incident resolved by then, and
    a transmission no alert came in, are no news."""
    radio = Radio()
    call = radio.event(Kind.CALL, at=4.8, duration_s=2.5)  # made now (its id), stored when it ends
    [(opened, _)] = store.ingest([radio.event(Kind.ALERT, at=5.2, call=call.id)]).incidents
    ended = store.ingest([call])
    assert [(i.id, change) for i, change in ended.incidents] == [(opened.id, "transmission")]
    assert ended.incidents[0][0].updated_at >= opened.updated_at
    detail = store.incident_detail(opened.id)
    assert detail is not None and [c.event_id for c in detail.calls] == [call.id]
    # Another unit's transmission, in which nothing was decoded: no incident is news.
    assert store.ingest([radio.event(Kind.CALL, unit="mdc:2222", at=20, duration_s=1.0)]).incidents == []
    # An incident resolved before its transmission's end came in (a late replay): no news of it.
    late_call = radio.event(Kind.CALL, unit="mdc:3333", at=40, duration_s=1.0)
    [(other, _)] = store.ingest([radio.event(Kind.ALERT, unit="mdc:3333", at=40.5, call=late_call.id)]).incidents
    store.resolve(other.id, "alice", "false_alarm")
    assert store.ingest([late_call]).incidents == []


def test_incident_lifecycle_with_operators_and_history(store: Store) -> None:
    radio = Radio()
    store.ingest([radio.event(Kind.BEACON, at=0, position=Position(30.2, 120.2, source="nmea"))])
    first = radio.event(Kind.ALERT, at=5, rule="emergency button")
    [(opened, change)] = store.ingest([first]).incidents
    assert change == "opened" and opened.state == "new" and opened.label == "emergency button"
    assert (opened.lat, opened.lon) == (30.2, 120.2)  # no position in the alert: the unit's last one
    # Within the window: the same incident; another unit: its own.
    [(joined, change)] = store.ingest([radio.event(Kind.ALERT, at=300)]).incidents
    assert change == "alert" and joined.id == opened.id and joined.alert_count == 2
    other = store.ingest([radio.event(Kind.ALERT, unit="mdc:9999", at=301)]).incidents[0][0]
    assert other.id != opened.id

    with pytest.raises(IncidentError, match="named operator"):
        store.acknowledge(opened.id, " ")
    acked = store.acknowledge(opened.id, "alice", note="calling the unit")
    assert acked.state == "acknowledged" and acked.acknowledged_by == "alice" and acked.acknowledged_at
    with pytest.raises(IncidentError, match="is acknowledged; it cannot be acknowledged"):
        store.acknowledge(opened.id, "bob")
    with pytest.raises(IncidentError, match="resolution: expected one of handled, false_alarm"):
        store.resolve(opened.id, "bob", "meh")
    store.add_note(opened.id, "bob", "unit 12 on scene")
    # A new alert while acknowledged (not resolved) still joins it.
    store.ingest([radio.event(Kind.ALERT, at=500)])
    resolved = store.resolve(opened.id, "bob", "handled")
    assert (resolved.state, resolved.resolution, resolved.resolved_by) == ("resolved", "handled", "bob")
    assert resolved.alert_count == 3
    with pytest.raises(IncidentError, match="is resolved"):
        store.resolve(opened.id, "bob", "false_alarm")
    with pytest.raises(IncidentError, match="no such incident"):
        store.acknowledge(10_000, "alice")

    detail = store.incident_detail(opened.id)
    assert detail is not None
    assert [(h.actor, h.action) for h in detail.history] == [
        ("bridge", "opened"), ("bridge", "alert"), ("alice", "acknowledged"), ("bob", "note"), ("bridge", "alert"),
        ("bob", "resolved"),
    ]
    assert detail.history[2].note == "calling the unit" and detail.history[5].note == "handled"
    assert detail.alerts[0].id == first.id and len(detail.alerts) == 3
    assert all(e.kind == Kind.ALERT for e in detail.alerts)

    # After it is resolved, and past the window, alerts of the unit open new incidents.
    again = store.ingest([radio.event(Kind.ALERT, at=600)]).incidents[0][0]
    late = store.ingest([radio.event(Kind.ALERT, at=600 + 601)]).incidents[0][0]
    assert len({again.id, late.id, opened.id}) == 3
    assert [i.id for i in store.open_incidents()] == [late.id, again.id, other.id]  # newest first
    assert {i.id for i in store.incidents()} == {opened.id, other.id, again.id, late.id}


def test_resolving_a_new_incident_acknowledges_it_on_the_way(store: Store) -> None:
    incident = store.ingest([Radio().event(Kind.ALERT)]).incidents[0][0]
    done = store.resolve(incident.id, "carol", "false_alarm", note="pocket dial")
    assert (done.acknowledged_by, done.resolved_by, done.resolution) == ("carol", "carol", "false_alarm")
    detail = store.incident_detail(incident.id)
    assert detail is not None
    assert [h.action for h in detail.history] == ["opened", "acknowledged", "resolved"]
    assert detail.history[-1].note == "false_alarm: pocket dial"


def test_alerts_without_a_unit_group_by_gateway_and_channel(store: Store) -> None:
    radio = Radio()
    a = store.ingest([radio.event(Kind.ALERT, unit=None, input="di3")]).incidents[0][0]
    b = store.ingest([radio.event(Kind.ALERT, unit=None, at=10, input="di3")]).incidents[0][0]
    assert a.id == b.id and b.alert_count == 2 and b.unit is None


def test_seq_gaps_are_found_filled_and_given_up(store: Store) -> None:
    radio = Radio()
    seqs = [1, 2, 3, 7, 8, 12]
    result = store.ingest([radio.event(seq=q, at=q) for q in seqs])
    assert result.gaps == {"gw1": [(4, 6), (9, 11)]}
    report = store.missing_ranges("gw1")
    assert (report.contiguous_seq, report.last_seq, report.holes) == (3, 12, [(4, 6), (9, 11)])
    assert store.ingest([radio.event(seq=q, at=q) for q in (5, 4, 6)]).gaps == {}  # a replay fills the first
    report = store.missing_ranges("gw1")
    assert (report.contiguous_seq, report.holes) == (8, [(9, 11)])
    assert store.ingest([radio.event(seq=13)]).gaps == {}
    assert store.mark_lost("gw1", 9, 11) == 3
    report = store.missing_ranges("gw1")
    assert (report.contiguous_seq, report.last_seq, report.holes) == (13, 13, [])
    assert store.ingest([radio.event(seq=20)]).gaps == {"gw1": [(14, 19)]}
    [gw] = store.gateways()
    assert (gw.name, gw.lost, gw.last_seq) == ("gw1", 3, 20)
    # A first event that is not seq 1 shows what came before it as missing.
    assert store.ingest([Radio("gw2").event(seq=5)]).gaps == {"gw2": [(1, 4)]}


def test_unacknowledged_incidents_are_due_again_once_per_interval(store: Store) -> None:
    radio = Radio()
    incident = store.ingest([radio.event(Kind.ALERT)]).incidents[0][0]
    other = store.ingest([radio.event(Kind.ALERT, unit="mdc:7")]).incidents[0][0]
    store.acknowledge(other.id, "alice")
    later = datetime.now(UTC) + timedelta(seconds=31)
    assert [i.id for i in store.due_announcements(30, later)] == [incident.id]
    assert store.due_announcements(30, later) == []  # claimed: announced once per interval
    assert [i.id for i in store.due_announcements(30, later + timedelta(seconds=31))] == [incident.id]


def test_the_database_comes_from_the_environment_the_file_or_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PTTBRIDGE_DATABASE_URL", raising=False)
    assert url_of(parse_config({"data_dir": str(tmp_path)})) == f"sqlite:///{tmp_path / 'bridge.sqlite'}"
    in_file = parse_config({"bridge": {"database_url": "postgresql+psycopg://bridge@db/pttbridge"}})
    assert url_of(in_file) == "postgresql+psycopg://bridge@db/pttbridge"
    monkeypatch.setenv("PTTBRIDGE_DATABASE_URL", "postgresql+psycopg://bridge:secret@db2/pttbridge")
    assert url_of(in_file) == "postgresql+psycopg://bridge:secret@db2/pttbridge"
    assert redact(url_of(in_file)) == "postgresql+psycopg://bridge:***@db2/pttbridge"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"incident_window_s": 0}, "bridge.incident_window_s: Input should be greater than 0"),
        ({"shared_group": "a/b"}, "bridge.shared_group: expected 1-64 characters"),
        ({"mqtt_version": "4"}, "bridge.mqtt_version: Input should be 'auto', '5' or '3.1.1'"),
        ({"reannounce": 5}, "bridge.reannounce: Extra inputs are not permitted"),
    ],
)
def test_bridge_configuration_errors_name_the_key(raw: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_config({"bridge": raw}, "site.toml")


def test_a_postgresql_connection_killed_while_idle_is_replaced_and_one_killed_just_now_is_a_retry(
        postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool pings a connection that has lain idle (a server restarted meanwhile closed it) and not one
    handed back a moment ago: that one fails like a connection lost in the middle of a transaction, a
    failure the bridge waits out and retries (``unavailable``), and the next use connects anew."""
    s = Store.open(create_database(postgres_admin_url, "pttbridge_ping"))
    admin = Store.open(postgres_admin_url, migrate_schema=False)

    def kill_the_pooled_connection() -> None:
        with s.engine.connect() as conn:
            pid = conn.scalar(text("SELECT pg_backend_pid()"))
        with admin.engine.connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}) is True

    try:
        kill_the_pooled_connection()
        monkeypatch.setattr(engine_module, "PING_IDLE_S", -1.0)  # every connection has lain idle long enough
        with s.engine.connect() as conn:
            assert conn.scalar(text("SELECT 1")) == 1
        monkeypatch.setattr(engine_module, "PING_IDLE_S", 3600.0)  # none has
        kill_the_pooled_connection()
        with pytest.raises(DBAPIError) as lost, s.engine.connect() as conn:
            conn.scalar(text("SELECT 1"))
        assert unavailable(lost.value)
        with s.engine.connect() as conn:
            assert conn.scalar(text("SELECT 1")) == 1
    finally:
        s.close()
        admin.close()


# Any value an event may carry, stored in one batch and read back: the batch's rows go to the database as
# plain values made by the store (on PostgreSQL one JSON text, on SQLite the driver's own binding), not
# through SQLAlchemy's per-value conversions, so they must come back as those conversions would have kept them.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=8) | st.sampled_from(["a\x00b", "\U0001f600"])
DETAIL = st.dictionaries(st.text(max_size=6), st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT, lambda x: st.lists(x, max_size=3) | st.dictionaries(TEXT, x, max_size=3), max_leaves=6), max_size=4)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 11, 26, 19, 30),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5))]))


@st.composite
def stored_events(draw: st.DrawFn) -> list[Event]:
    gateway = draw(st.sampled_from(["gw1", "gw-2"]))
    events = []
    for seq in range(1, draw(st.integers(1, 4)) + 1):
        position = draw(st.none() | st.builds(
            Position, st.floats(-90, 90), st.floats(-180, 180), st.none() | st.floats(-1e5, 1e6),
            st.none() | st.floats(0, 1e4), st.none() | st.floats(0, 360), st.none() | TIMES,
            st.sampled_from(["nmea", "kenwood", "aprs"])))
        at = draw(TIMES)
        events.append(Event(id=uuid7(at), seq=seq, gateway=gateway, channel="patrol-1",
                            kind=draw(st.sampled_from([Kind.BEACON, Kind.STATUS])), time=at,
                            unit=draw(st.none() | st.sampled_from(["mdc:1234", "aprs:BH4XYZ-9", "dmr:2300117"])),
                            position=position, detail=draw(DETAIL)))
    return events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=stored_events())
def test_an_event_reads_back_as_it_was_stored(store: Store, events: list[Event]) -> None:
    apart = uuid.uuid4().hex[:8]  # this example's gateway and units, apart from the others'
    events = [replace(e, gateway=f"{e.gateway}-{apart}", unit=e.unit and f"{e.unit}-{apart}") for e in events]
    assert store.ingest(events, received_at=T0).stored == [e.id for e in events]
    with store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(EventRow).where(EventRow.gateway == events[0].gateway))}
        for e in events:
            assert event_from_row(rows[e.id]) == e  # type: ignore[arg-type]
            # Found by its times as SQLAlchemy binds them (SQLite compares them as text: the same text).
            assert conn.scalar(select(func.count()).select_from(EventRow).where(
                EventRow.id == e.id, EventRow.time == e.time, EventRow.received_at == T0)) == 1
    again = store.ingest(events, received_at=T0)  # a redelivery is the same event, not another with its id
    assert again.stored == [] and again.conflicts == [] and again.duplicates == len(events)
    newest = {}
    for e in sorted(events, key=lambda e: (e.time, e.seq)):
        if e.unit is not None:
            newest[e.unit] = e
    for unit, e in newest.items():
        view = store.unit(unit)
        assert view is not None and view.last_heard == e.time and view.last_event_id == e.id


@st.composite
def unit_news(draw: st.DrawFn) -> list[tuple[datetime, list[Event]]]:
    """Batches of events of three units, each with the bridge's clock at its arrival (which may step back:
    a clock set right), stamped around it: late, early, ahead of the clock, beyond what it believes; with
    and without a position, and a position with or without a fix time of its own."""
    radio = Radio()
    offsets = st.integers(-200, 400)
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        clock = draw(st.sampled_from([0, 100, 200, 300]))  # seconds after T0
        now = T0 + timedelta(seconds=clock)
        batch = []
        for _ in range(draw(st.integers(1, 6))):
            fix = draw(st.none() | offsets)  # the receiver's own fix time, if it gave one
            position = draw(st.none() | st.builds(
                Position, st.floats(30, 31), st.floats(120, 121), source=st.just("nmea"),
                fix_time=st.just(None if fix is None else T0 + timedelta(seconds=clock + fix))))
            batch.append(radio.event(draw(st.sampled_from([Kind.BEACON, Kind.PTT])),
                                     draw(st.sampled_from(["mdc:1", "mdc:2", "mdc:3"])),
                                     at=clock + draw(offsets), position=position))
        batches.append((now, batch))
    return batches


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=unit_news())
def test_a_unit_takes_the_newest_news_of_every_batch(store: Store, batches: list[tuple[datetime, list[Event]]]) -> None:
    """What each unit's state must be, event by event (the rule as written): news dated past the bridge's
    clock counts as of now, news more than ``future`` ahead is not believed, and nothing older than what is
    held replaces it (what is held dated past now, from a clock since set back, is replaced)."""
    apart = uuid.uuid4().hex[:8]
    heard: dict[str, tuple[datetime, str]] = {}
    fixes: dict[str, tuple[datetime, float, float]] = {}
    for now, batch in batches:
        batch = [replace(e, gateway=f"gw-{apart}", unit=f"{e.unit}-{apart}") for e in batch]
        store.ingest(batch, received_at=now)
        for e in sorted((e for e in batch if e.time <= now + store.future), key=lambda e: (min(e.time, now), e.seq)):
            assert e.unit is not None
            held = heard.get(e.unit)
            if held is None or held[0] > now or min(e.time, now) >= held[0]:
                heard[e.unit] = min(e.time, now), e.id
            if e.position is not None:
                fix = min(e.position.fix_time or e.time, now)
                kept = fixes.get(e.unit)
                if kept is None or kept[0] > now or fix >= kept[0]:
                    fixes[e.unit] = fix, e.position.lat, e.position.lon
    for unit, (last_heard, event_id) in heard.items():
        view = store.unit(unit)
        assert view is not None and (view.last_heard, view.last_event_id) == (last_heard, event_id)
        position = view.position
        assert (None if position is None else (position.fix_time, position.lat, position.lon)) == fixes.get(unit)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.tuples(st.sampled_from("ab"), st.integers(1, 12)), min_size=1, max_size=8),
                        min_size=1, max_size=6))
def test_a_gateway_s_seqs_move_on_as_its_events_come_whatever_their_order(
        store: Store, batches: list[list[tuple[str, int]]]) -> None:
    """Batch by batch, each gateway's jumps, last seq and contiguous seq (everything up to it stored) are
    what its events say, whatever their order, repeats and alerts sent ahead (on PostgreSQL the seqs move
    on inside the statement that inserts the events)."""
    apart = uuid.uuid4().hex[:8]
    radios = {g: Radio(f"gw{g}-{apart}") for g in "ab"}
    events: dict[tuple[str, int], Event] = {}  # a seq sent again is the same event (a redelivery)
    stored: dict[str, set[int]] = {g: set() for g in "ab"}
    for batch in batches:
        sent = [events.setdefault((g, q), radios[g].event(seq=q, at=q)) for g, q in batch]
        result = store.ingest(sent)
        expected_gaps = {}
        for g in sorted({g for g, _ in batch}):
            last, jumps = max(stored[g], default=0), []
            for q in sorted({q for h, q in batch if h == g}):
                if q > last + 1:
                    jumps.append((last + 1, q - 1))
                last = max(last, q)
            if jumps:
                expected_gaps[radios[g].gateway] = jumps
            stored[g] |= {q for h, q in batch if h == g}
        assert result.gaps == expected_gaps
        rows = {gw.name: gw for gw in store.gateways()}
        for g in {g for g, _ in batch}:
            contiguous = 0
            while contiguous + 1 in stored[g]:
                contiguous += 1
            row = rows[radios[g].gateway]
            assert (row.last_seq, row.contiguous_seq) == (max(stored[g]), contiguous)
            assert result.settled.get(row.name) == (row.last_seq if contiguous == row.last_seq else None)


def test_a_gateway_at_the_top_of_the_seq_range_keeps_storing(store: Store) -> None:
    """A gateway that sent BIGINT's highest seq, the hole below it given up: its contiguous seq is the
    highest too, and neither the query for holes nor its next batch may fail (seq + 1 is out of range there)."""
    radio = Radio()
    store.ingest([radio.event(seq=1)])
    assert store.ingest([radio.event(seq=INT64_MAX)]).gaps == {"gw1": [(2, INT64_MAX - 1)]}
    assert store.mark_lost("gw1", 2, INT64_MAX - 1) == INT64_MAX - 2
    report = store.missing_ranges("gw1")
    assert (report.contiguous_seq, report.last_seq, report.holes) == (INT64_MAX, INT64_MAX, [])
    late = store.ingest([radio.event(seq=7, at=1)])
    assert len(late.stored) == 1 and late.settled == {"gw1": INT64_MAX} and late.gaps == {}


@given(st.lists(st.tuples(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
                          st.integers(-14 * 60, 14 * 60)), max_size=30))
def test_a_batch_writes_each_instant_once_and_as_utc_text_writes_it(times: list[tuple[datetime, int]]) -> None:
    """The batch's remembered time texts: the same text as _utc_text for every time, in whatever zone it
    comes, each instant written once (a unit's news carries its event's times again)."""
    aware = [t.replace(tzinfo=timezone(timedelta(minutes=m))) for t, m in times]
    written: list[datetime] = []

    def text(value: datetime | None) -> str | None:
        assert value is not None
        written.append(value)
        return _utc_text(value)

    utc = _remembered(text)
    assert [utc(t) for t in [*aware, *aware]] == [_utc_text(t) for t in [*aware, *aware]]
    assert utc(None) is None
    assert len(written) == len({t.astimezone(UTC) for t in aware})
