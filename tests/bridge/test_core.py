"""The bridge's core on its own: messages and times in, actions out (no broker, no threads, no clock but
the one given). The store is a real SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from bridge.actions import (
    ALERTS,
    AckMessages,
    Action,
    AnswerRadio,
    AnswerRefused,
    Inbound,
    PublishIncident,
    PublishUnit,
    RequestReplay,
    SetOutput,
)
from bridge.core import Batch, BridgeCore
from bridge.store import Store
from bridge.views import Change
from config.schema import parse_config
from gateway.events import Decoded, Event, Kind, Position, encode_event

NOW = datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)
PREFIX = "pttbridge/v1"


@pytest.fixture
def core(tmp_path: Path) -> Iterator[BridgeCore]:
    store = Store.open(f"sqlite:///{tmp_path / 'bridge.sqlite'}", clock=lambda: NOW)
    config = parse_config({"data_dir": str(tmp_path), "bridge": {"replay_interval_s": 1.0, "replay_tries": 2,
                                                                  "beacon": "gw1/beacon"}})
    yield BridgeCore.open(config, store, clock=lambda: NOW)
    store.close()


def event(seq: int, kind: Kind = Kind.BEACON, unit: str = "mdc:1001", gateway: str = "gw1") -> Inbound:
    e = Event.stamp(Decoded(kind, NOW - timedelta(seconds=10) + timedelta(milliseconds=seq), unit,
                            Position(30.2, 120.1, fix_time=NOW - timedelta(seconds=60 - seq), source="nmea"),
                            {"protocol": "mdc1200"}), seq=seq, gateway=gateway, channel="patrol-1")
    levels = ("gw", gateway, "event", str(kind))
    return Inbound("/".join((PREFIX, *levels)), encode_event(e), seq, 1, 1, ALERTS if kind == Kind.ALERT else 0,
                   levels)


def command(body: dict[str, Any]) -> Inbound:
    return Inbound(f"{PREFIX}/bridge/cmd", json.dumps(body).encode(), 99, 1, 1, 0, ("bridge", "cmd"))


def handle(core: BridgeCore, *messages: Inbound, now: float = 0.0) -> list[Action]:
    batch = Batch(list(messages))
    core.handle(batch, now)
    return batch.take()


def test_stored_then_acknowledged_then_the_unit_and_the_incident(core: BridgeCore) -> None:
    alert = event(1, Kind.ALERT)
    garbage = Inbound(f"{PREFIX}/gw/gw1/event/alert", b"{not json", 7, 1, 1, ALERTS, ("gw", "gw1", "event", "alert"))
    actions = handle(core, alert, garbage)
    assert actions[0] == AckMessages((alert, garbage))  # the bad one refused alone, the batch acknowledged whole
    assert [type(a) for a in actions[1:]] == [PublishUnit, PublishIncident]
    unit, incident = actions[1], actions[2]
    assert isinstance(unit, PublishUnit) and unit.levels == ("bridge", "unit", "mdc:1001")
    assert isinstance(incident, PublishIncident) and incident.change == Change.OPENED
    assert incident.body["unit"] == "mdc:1001" and incident.body["state"] == "new" and "cameras" in incident.body
    assert core.counts["stored"] == 1 and core.counts["rejected"] == 1
    assert handle(core, alert)[0] == AckMessages((alert,))  # a redelivery: acknowledged, nothing new
    assert core.counts["duplicates"] == 1


def test_a_refused_command_is_answered_before_its_batch_is_acknowledged(core: BridgeCore) -> None:
    cmd = command({"action": "ack", "incident": 4242, "operator": "alice", "request": "r-1"})
    refused, ack = handle(core, cmd)
    assert refused == AnswerRefused({"request": "r-1", "action": "ack", "incident": 4242, "operator": "alice"},
                                    "incident 4242: no such incident")
    assert refused.levels == ("bridge", "refused") and ack == AckMessages((cmd,))
    assert core.counts["commands_refused"] == 1


def test_an_acknowledged_mdc_emergency_is_answered_to_the_radio(core: BridgeCore) -> None:
    handle(core, event(1, Kind.ALERT))
    [incident] = core.store.open_incidents()
    actions = handle(core, command({"action": "ack", "incident": incident.id, "operator": "alice"}))
    [radio] = [a for a in actions if isinstance(a, AnswerRadio)]
    assert radio.levels == ("gw", "gw1", "cmd", "ack_emergency")
    assert {k: radio.body[k] for k in ("incident", "unit", "gateway", "channel", "operator")} == {
        "incident": incident.id, "unit": "mdc:1001", "gateway": "gw1", "channel": "patrol-1", "operator": "alice"}
    assert [(a.incident.state, a.change) for a in actions if isinstance(a, PublishIncident)] == [
        ("acknowledged", Change.ACKNOWLEDGED), ("acknowledged", Change.RADIO_ACK)]
    assert actions.index(radio) < [type(a) for a in actions].index(AckMessages)


def test_a_unit_is_published_at_most_once_a_second_and_its_newest_state_is_held(core: BridgeCore) -> None:
    assert [type(a) for a in handle(core, event(1), now=0.0)] == [AckMessages, PublishUnit]
    second = event(2)
    assert [type(a) for a in handle(core, second, now=0.3)] == [AckMessages]  # held
    assert core.tick(0.5) == [SetOutput("gw1", "beacon", 0)]  # not yet; the beacon says nothing is open
    [held] = [a for a in core.tick(1.0) if isinstance(a, PublishUnit)]
    assert held.unit.last_event_id == json.loads(second.payload)["id"]  # the newest
    assert [a for a in core.flush(1.1) if isinstance(a, PublishUnit)] == []  # nothing left to send


def test_the_beacon_is_lit_while_an_incident_is_unacknowledged(core: BridgeCore) -> None:
    assert core.tick(0.0) == [SetOutput("gw1", "beacon", 0)]
    handle(core, event(1, Kind.ALERT), now=0.1)
    assert core.tick(0.2) == []  # checked every half second
    assert SetOutput("gw1", "beacon", 1) in core.tick(0.5)
    assert core.tick(1.0) == []  # sent when it changes, and again each minute
    [incident] = core.store.open_incidents()
    handle(core, command({"action": "ack", "incident": incident.id, "operator": "alice"}), now=1.1)
    assert SetOutput("gw1", "beacon", 0) in core.tick(1.5)
    assert SetOutput("gw1", "beacon", 0) in core.tick(62.0)  # for a gateway that restarted


def test_a_hole_is_asked_for_again_and_given_up_after_the_tries(core: BridgeCore) -> None:
    handle(core, event(1), event(2), event(5), now=0.0)

    def replays(now: float) -> list[Action]:
        return [a for a in core.tick(now) if isinstance(a, RequestReplay)]

    assert replays(0.0) == []  # what is in flight gets its chance first
    assert replays(1.0) == [RequestReplay("gw1", 3, 4)]
    assert replays(1.5) == []  # rate-limited
    assert replays(2.0) == [RequestReplay("gw1", 3, 4)]
    assert replays(3.0) == []  # two tries: given up
    assert core.counts["replay_requests"] == 2 and core.counts["lost"] == 2
    assert replays(3.5) == []  # nothing missing any more
    assert core.store.gateways()[0].lost == 2 and core.recovery.suspects == set()


def test_an_alert_sent_ahead_of_its_beacons_is_no_hole_once_they_come(core: BridgeCore) -> None:
    """A gateway sends an alert ahead of the beacons queued before it: its seq jumps, and the beacons that
    come next fill the hole. Nothing is asked for again, and the gateway is no longer looked at; a hole
    that stays is still asked for."""
    handle(core, event(4, Kind.ALERT), now=0.0)
    assert core.recovery.suspects == {"gw1"} and core.counts["gaps"] == 1
    handle(core, event(1), event(2), event(3), now=0.1)
    assert core.recovery.suspects == set()
    assert [a for a in core.tick(1.5) if isinstance(a, RequestReplay)] == []
    assert core.store.gateways()[0].contiguous_seq == 4
    handle(core, event(5), event(7), now=2.0)
    assert [a for a in core.tick(2.0) if isinstance(a, RequestReplay)] == []  # in flight, maybe
    assert [a for a in core.tick(3.0) if isinstance(a, RequestReplay)] == [RequestReplay("gw1", 6, 6)]


def test_a_tail_the_gateway_state_reveals_is_asked_for_once_its_stream_is_quiet(core: BridgeCore) -> None:
    handle(core, event(1), event(2), now=0.0)
    state = {"online": True, "outbox": {"next_seq": 6, "pending": 0, "oldest_seq": 1}}
    handle(core, Inbound(f"{PREFIX}/gw/gw1/state", json.dumps(state).encode(), 1, 1, 1, 0, ("gw", "gw1", "state")))
    assert core.recovery.hints["gw1"].published == 5
    assert [a for a in core.tick(1.0) if isinstance(a, RequestReplay)] == []  # first seen: left a while
    assert [a for a in core.tick(2.0) if isinstance(a, RequestReplay)] == [RequestReplay("gw1", 3, 5)]


def test_gateways_states_in_one_batch_are_stored_together_and_a_bad_one_is_refused_alone(
        core: BridgeCore, caplog: pytest.LogCaptureFixture) -> None:
    def state(gateway: str, payload: bytes) -> Inbound:
        return Inbound(f"{PREFIX}/gw/{gateway}/state", payload, 1, 1, 1, 0, ("gw", gateway, "state"))

    actions = handle(core, state("gw1", b'{"online": true}'), state("gw2", b"{not json"),
                     state("gw3", b'{"online": false}'), state("gw1", b'{"online": false, "why": "later"}'),
                     state("bad name", b'{"online": true}'), state("gw4", b""))
    stored = {g.name: (g.online, g.state) for g in core.store.gateways()}
    assert stored == {"gw1": (False, {"online": False, "why": "later"}), "gw3": (False, {"online": False})}
    refused = [r.getMessage() for r in caplog.records if "gateway state on" in r.getMessage()]
    assert len(refused) == 2 and "gw2" in refused[0] and "bad name" in refused[1]
    assert sum(len(a.messages) for a in actions if isinstance(a, AckMessages)) == 6  # every one acknowledged


def test_a_new_incident_is_published_with_what_the_cameras_add_and_cameras_are_read_only_if_some_were_added(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'bridge.sqlite'}", clock=lambda: NOW)
    config = parse_config({"data_dir": str(tmp_path), "cameras": [
        {"id": "cam-a", "lat": 30.2, "lon": 120.1, "fov_deg": 360, "range_m": 100}]})
    core = BridgeCore.open(config, store, clock=lambda: NOW)
    reads: list[str] = []
    sqlalchemy.event.listen(store.engine, "before_cursor_execute", lambda _c, _k, sql, *_: reads.append(sql)
                            if sql.startswith("SELECT incident_cameras") else None)

    def alert(seq: int, unit: str, lat: float, lon: float) -> Inbound:
        fix = Position(lat, lon, fix_time=NOW - timedelta(seconds=2), source="nmea")
        e = Event.stamp(Decoded(Kind.ALERT, NOW - timedelta(seconds=1), unit, fix, {"protocol": "mdc1200"}), seq=seq,
                        gateway="gw1", channel="patrol-1")
        return Inbound(f"{PREFIX}/gw/gw1/event/alert", encode_event(e), seq, 1, 1, ALERTS,
                       ("gw", "gw1", "event", "alert"))

    def opened(actions: list[Action]) -> dict[str, Any]:
        [incident] = [a for a in actions if isinstance(a, PublishIncident) and a.change == Change.OPENED]
        return incident.body

    try:
        seen = opened(handle(core, alert(1, "mdc:1", 30.2003, 120.1)))  # 33 m from cam-a
        assert [c["camera"] for c in seen["cameras"]] == ["cam-a"] and len(reads) == 1
        unseen = opened(handle(core, alert(2, "mdc:2", 30.3, 120.3)))  # far from any camera
        assert unseen["cameras"] == [] and unseen["detections"] == [] and len(reads) == 1  # known empty: not read
        # A detection in the batch that opens the incident is attached to it, and published with it.
        detection = json.dumps({"label": "person", "time": (NOW - timedelta(seconds=1)).isoformat(),
                                "position": {"lat": 30.30001, "lon": 120.30001}}).encode()
        body = opened(handle(core, alert(3, "mdc:3", 30.3, 120.30002),
                             Inbound(f"{PREFIX}/cam/cam-a/event", detection, 98, 1, 1, 0, ("cam", "cam-a", "event"))))
        assert body["unit"] == "mdc:3" and [d["label"] for d in body["detections"]] == ["person"]
        assert len(reads) == 2
        # An incident opened before is read as always: what it has is what the database holds.
        joined = [a for a in handle(core, alert(4, "mdc:2", 30.3, 120.3)) if isinstance(a, PublishIncident)]
        assert [a.change for a in joined] == [Change.ALERT] and len(reads) == 3
        assert [d["label"] for d in joined[0].body["detections"]] == ["person"]  # the detection of alert 3's batch
    finally:
        store.close()
