"""The incident detail's timeline: history, alerts (with positions) and transmissions merged by time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.views import CallView, HistoryEntry, IncidentDetail
from console.screens.incident_detail import timeline
from gateway.events import Event, Kind, Position

T = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_timeline_merges_history_alerts_and_transmissions_oldest_first() -> None:
    alert = Event(id="e1", seq=1, gateway="gw1", channel="patrol-1", kind=Kind.ALERT, time=T, unit="mdc:1001",
                  position=Position(lat=30.2, lon=120.2, fix_time=T, source="gps"),
                  detail={"protocol": "mdc1200", "rule": "emergency", "call": "c1"})
    detail = IncidentDetail(
        incident=None,  # type: ignore[arg-type]  # the timeline reads only history, alerts and calls
        history=[HistoryEntry(T, "bridge", "opened", None, "e1"),
                 HistoryEntry(T, "bridge", "alert", None, "e1"),  # the same alert: shown once, as its event
                 HistoryEntry(T + timedelta(seconds=30), "alice", "acknowledged", None, None),
                 HistoryEntry(T + timedelta(seconds=60), "bridge", "radio_ack", "sent to mdc:1001", None)],
        alerts=[alert],
        calls=[CallView("c1", T - timedelta(seconds=4), "mdc:1001", "patrol-1", 3.5, "opus", 900, "ab" * 32)])
    rows = timeline(detail, T + timedelta(minutes=2))
    assert [key for key, _, _ in rows] == ["c:c1", "a:e1", "h:0", "h:2", "h:3"]
    what = {key: cells["what"].text for key, _, cells in rows}
    assert what == {"c:c1": "transmission", "a:e1": "alert", "h:0": "opened", "h:2": "acknowledged",
                    "h:3": "radio ack"}
    detail_text = {key: cells["detail"].text for key, _, cells in rows}
    assert "30.200000,120.200000" in detail_text["a:e1"] and "3.5 s" in detail_text["c:c1"]
