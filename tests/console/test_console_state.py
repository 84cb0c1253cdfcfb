"""What a console knows and how it writes it, without a terminal: merging the database snapshot and the
bridge's messages in any order, when to ring, the bridge's payloads read back, and fitting 80 columns."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bridge.views import GatewayView, IncidentView, PayloadError, UnitView
from console import format as fmt
from console.format import Cell, fit
from console.state import ConsoleState, Outcome
from console.widgets.alert_queue import AlertQueue
from console.widgets.fitted_table import SCROLLBAR, share_widths
from console.widgets.units_table import UnitsTable
from gateway.events import Position

T0 = datetime(2026, 11, 26, 19, 30, 1, 123456, tzinfo=UTC)


def incident(id: int = 1, state: str = "new", *, at: float = 0.0, count: int = 1, **kw: object) -> IncidentView:
    t = T0 + timedelta(seconds=at)
    fields: dict[str, object] = dict(
        id=id, state=state, resolution=None, unit="fleetsync:100-1001", alias=None, gateway="gw1",
        channel="emergency-1", label="emergency", opened_at=T0, acknowledged_at=None, acknowledged_by=None,
        resolved_at=None, resolved_by=None, first_event_id="a", last_event_id="b", last_alert_at=t,
        alert_count=count, lat=30.2095, lon=120.2107, position_time=T0, updated_at=t)
    fields.update(kw)
    return IncidentView(**fields)  # type: ignore[arg-type]


def unit(name: str = "fleetsync:100-1001", *, at: float = 0.0, gateway: str = "gw1") -> UnitView:
    return UnitView(name, None, Position(30.2095, 120.2107, fix_time=T0, source="kenwood"),
                    T0 + timedelta(seconds=at), "beacon", "emergency-1", gateway, "e", True)


def test_a_new_alert_rings_once_and_repeats_of_the_same_message_do_not() -> None:
    s = ConsoleState()
    first = s.apply_incident(incident(), "opened")
    assert first.outcome is Outcome.ADDED and first.ring
    again = s.apply_incident(incident(), "opened")  # a QoS 1 redelivery
    assert again.outcome is Outcome.CHANGED and not again.ring
    joined = s.apply_incident(incident(at=5, count=2), "alert")
    assert joined.ring and s.incidents[1].alert_count == 2
    assert s.apply_incident(incident(at=5, count=2), "reannounce").ring  # still unacknowledged: again
    acked = incident(state="acknowledged", at=6, count=2)
    assert not s.apply_incident(acked, "acknowledged").ring
    assert not s.apply_incident(acked, "reannounce").ring


def test_older_news_never_overwrites_newer() -> None:
    s = ConsoleState()
    s.apply_incident(incident(state="acknowledged", at=10, acknowledged_by="alice"), "acknowledged")
    stale = s.apply_incident(incident(at=0), "opened")  # arrived late
    assert stale.outcome is Outcome.STALE and s.incidents[1].state == "acknowledged"
    # The wire has milliseconds, the database microseconds: the same change read both ways is not older.
    same = s.apply_incident(replace(s.incidents[1], updated_at=s.incidents[1].updated_at.replace(microsecond=123000)))
    assert same.outcome is Outcome.CHANGED
    gone = s.apply_incident(incident(state="resolved", at=20, resolution="false_alarm"), "resolved")
    assert gone.outcome is Outcome.REMOVED and not s.incidents
    assert s.apply_incident(incident(state="acknowledged", at=10), "acknowledged").outcome is Outcome.STALE
    assert not s.incidents


def test_a_snapshot_removes_what_was_resolved_meanwhile_but_not_what_is_newer_than_it() -> None:
    s = ConsoleState()
    s.apply_incident(incident(1), "opened")
    s.apply_incident(incident(2), "opened")
    s.begin_snapshot()
    s.apply_incident(incident(3, at=1), "opened")  # announced while the snapshot was being read
    updates = s.apply_snapshot([incident(2, "acknowledged", at=2)], [unit()], [GatewayView(
        "gw1", False, None, 0, 0, 0, T0)])
    assert sorted(s.incidents) == [2, 3]  # 1 resolved meanwhile; 3 is newer than the snapshot
    assert {(u.outcome, u.incident.id) for u in updates} == {(Outcome.REMOVED, 1), (Outcome.CHANGED, 2)}
    assert s.units["fleetsync:100-1001"].gateway_online is False  # the console's own gateway knowledge
    [changed] = s.apply_gateway("gw1", True)
    assert changed.gateway_online is True



def test_a_console_running_for_days_holds_its_open_incidents_not_every_one_it_has_seen() -> None:
    s = ConsoleState()
    s.begin_snapshot()  # at start: the one snapshot of a console that never loses the broker
    s.apply_snapshot([], [], [])
    for n in range(1, 20_001):  # incidents opened, alerting and resolved, a few open at a time
        s.apply_incident(incident(n, at=n), "opened")
        s.apply_incident(incident(n, at=n + 0.5, count=2), "alert")
        if n > 5:
            s.apply_incident(incident(n - 5, "resolved", at=n + 0.7, resolution="handled"), "resolved")
            s.apply_incident(incident(n - 5, at=n + 0.6, count=3), "alert")  # late: stays resolved
    assert sorted(s.incidents) == list(range(19_996, 20_001))
    # What a snapshot must not remove: the open ones, not the 20,000 ids of the console's life.
    assert s._live_since_snapshot == set(range(19_996, 20_001))
    assert len(s._resolved) <= 10_000
    s.begin_snapshot()  # the broker came back: read again; #19996 was resolved while this console was away
    s.apply_incident(incident(20_001, at=20_001), "opened")  # announced while the snapshot was being read
    updates = s.apply_snapshot([incident(n, at=n) for n in range(19_997, 20_001)], [], [])
    assert sorted(s.incidents) == list(range(19_997, 20_002))
    assert [(u.outcome, u.incident.id) for u in updates if u.outcome is Outcome.REMOVED] == [(Outcome.REMOVED, 19_996)]

def test_queue_order_puts_unacknowledged_first_and_newest_first_within() -> None:
    s = ConsoleState()
    s.apply_incident(incident(1, at=1), "opened")
    s.apply_incident(incident(2, "acknowledged", at=3), "acknowledged")
    s.apply_incident(incident(3, at=2), "opened")
    assert [i.id for i in s.ordered()] == [3, 1, 2]
    assert s.unacknowledged == 2


def test_the_bridge_payloads_read_back_into_its_views() -> None:
    i = incident(7, "acknowledged", acknowledged_at=T0, acknowledged_by="alice", alias="Wang")
    body = i.to_json("acknowledged")
    back, change = IncidentView.from_json(body), IncidentView.change_of(body)
    assert change == "acknowledged"
    ms = {k: getattr(i, k).replace(microsecond=123000) for k in ("opened_at", "acknowledged_at", "last_alert_at",
                                                                  "position_time", "updated_at")}
    assert back == replace(i, **ms)
    u = unit()
    assert UnitView.from_json(u.to_json()) == replace(u, last_heard=T0.replace(microsecond=123000),
                                                  position=replace(u.position, fix_time=T0.replace(
                                                      microsecond=123000)) if u.position else None)
    with pytest.raises(PayloadError, match="alert_count"):
        IncidentView.from_json({**i.to_json(), "alert_count": "many"})
    with pytest.raises(PayloadError, match="unit"):
        UnitView.from_json({"unit": None})


@pytest.mark.parametrize("table", [AlertQueue, UnitsTable])
def test_the_tables_fit_80_columns_and_use_more_when_there_is_more(table: type[AlertQueue | UnitsTable]) -> None:
    inner = 80 - 2 - SCROLLBAR  # the border, and the scrollbar's column
    widths = share_widths(table.COLUMNS, inner)
    assert sum(widths.values()) <= inner
    assert all(widths[c.key] >= c.width for c in table.COLUMNS)
    wide = share_widths(table.COLUMNS, 200)
    assert all(wide[c.key] <= (c.max_width or 200) for c in table.COLUMNS)
    assert sum(wide.values()) > sum(widths.values())
    narrow = share_widths(table.COLUMNS, 60)  # narrower than designed for: flexible columns give way
    assert all(narrow[c.key] == c.width for c in table.COLUMNS if not c.flex)


def test_cells_are_fitted_exactly() -> None:
    assert fit(Cell("fleetsync:100-1001"), 10).plain == "fleetsyn… "
    assert fit(Cell("3", justify="right"), 5).plain == "   3 "
    assert fit(Cell("▲ NEW", "bold white on red"), 6).plain == "▲ NEW "
    assert fit(Cell("anything"), 0).plain == ""


def test_ages_positions_and_times_in_few_characters() -> None:
    now = T0 + timedelta(hours=2, minutes=5)
    assert [fmt.age(now - timedelta(seconds=s), now) for s in (0, 59, 61, 7300, 200000)] == [
        "0s", "59s", "1m", "2h", "2d"]
    assert fmt.age(now + timedelta(seconds=3), now) == "0s"  # a bridge clock a little ahead
    assert fmt.position(30.2095, 120.2107) == "30.2095,120.2107"
    assert fmt.position(-49.9025, -119.3934) == "-49.903,-119.393"  # no room for four decimals
    assert fmt.position(None, 1.0) == "-"
    assert fmt.where("emergency-1", "gw1") == "emergency-1@gw1"
