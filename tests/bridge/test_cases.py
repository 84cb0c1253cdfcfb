"""Cases through the bridge's core on a real database (SQLite and PostgreSQL), no broker: kinds and their
departments' parts, opening by hand, dispatch to the radio, the radios' answers, time limits and the
lone-worker check on an injected clock, the verdict on camera cases, and transfers to a real HTTP server
that answers 500 or hangs."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.actions import Action, AnswerRefused, CommandGateway, Inbound, PublishIncident, TransferCase
from bridge.audit import entries
from bridge.core import Batch, BridgeCore
from bridge.models import CaseAnswerRow
from bridge.store import CaseRules, Store
from bridge.transfer import CaseTransfer
from bridge.views import Change, IncidentView
from config.schema import ConfigError, parse_config
from gateway.events import Decoded, Event, Kind, Position, encode_event

START = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
PREFIX = "pttbridge/v1"

SITE: dict[str, Any] = {
    "departments": [
        {"name": "urban-management", "units": ["fleetsync:100-*"]},
        {"name": "police", "units": ["mdc:2*"]},
        {"name": "sanitation", "units": ["dtmf:*"]},
    ],
    "case_kinds": {
        "street_stall": {"flow": "lead", "departments": ["urban-management", "police"], "name": "占道经营",
                         "duty": "City Appearance Regulations art. 12", "accept_s": 300, "arrive_s": 900,
                         "resolve_s": 3600, "language": "cmn"},
        "noise": {"flow": "single", "departments": ["police"], "accept_s": 120, "arrive_s": 600},
        "alert": {"flow": "single", "departments": ["police"], "accept_s": 60},
        "obstruction": {"flow": "joint", "departments": ["urban-management", "sanitation"]},
    },
    "answers": {"fleetsync_status": {"10": "accepted", "11": "arrived", "12": "handled", "13": "needs_help"},
                "mdc_status": {"1": "accepted", "2": "arrived", "3": "handled"},
                "dtmf": {"*21*": "accepted", "*22*": "arrived", "*23*": "handled"},
                "aprs": {"OK": "accepted"}, "modbus": {"on-scene": "arrived"},
                "lone_worker_s": 600, "radio_check_grace_s": 60},
    "cameras": [{"id": "dome-3", "name": "Wenyi Rd / Gudun Rd", "lat": 30.2800, "lon": 120.1100, "fov_deg": 360}],
    "bridge": {"cameras": {"categories": {"street_stall": {"min_score": 0.5}}, "evidence": False}},
}


class Clock:
    """The bridge's clock, moved by the test."""

    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def core(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[BridgeCore]:
    config = parse_config({**SITE, "data_dir": str(tmp_path)})
    store = Store.open(database_url, clock=clock, rules=CaseRules.of(config))
    yield BridgeCore.open(config, store, clock=clock)
    store.close()


def handle(core: BridgeCore, *messages: Inbound) -> list[Action]:
    batch = Batch(list(messages))
    core.handle(batch, 0.0)
    return batch.take()


_seq = iter(range(1, 1_000_000))


def event(core: BridgeCore, kind: Kind, unit: str | None, detail: dict[str, Any], *, position: Position | None = None,
          event_id: str | None = None, channel: str = "patrol-1") -> Inbound:
    e = Event.stamp(Decoded(kind, core.clock(), unit, position, detail), seq=next(_seq), gateway="gw1",
                    channel=channel, id=event_id)
    levels = ("gw", "gw1", "event", str(kind))
    return Inbound("/".join((PREFIX, *levels)), encode_event(e), 1, 1, 1, 0, levels)


def command(body: dict[str, Any]) -> Inbound:
    return Inbound(f"{PREFIX}/bridge/cmd", json.dumps(body).encode(), 99, 1, 1, 0, ("bridge", "cmd"))


def heard(core: BridgeCore, unit: str, lat: float = 30.2801, lon: float = 120.1101) -> None:
    """The unit's beacon: it is heard by gw1 on patrol-1, at a place."""
    handle(core, event(core, Kind.BEACON, unit, {"protocol": "nmea"},
                       position=Position(lat, lon, fix_time=core.clock(), source="gps")))


def published(actions: list[Action]) -> list[tuple[IncidentView, str]]:
    return [(a.incident, str(a.change)) for a in actions if isinstance(a, PublishIncident)]


def history(core: BridgeCore, case_id: int) -> list[tuple[str, str, str]]:
    detail = core.store.incident_detail(case_id)
    assert detail is not None
    return [(h.actor, h.action, h.note or "") for h in detail.history]


def open_stall(core: BridgeCore) -> IncidentView:
    handle(core, command({"action": "open_case", "kind": "street_stall", "operator": "alice", "camera": "dome-3",
                          "note": "two carts on the pavement"}))
    [case] = [i for i in core.store.open_incidents() if i.category == "street_stall"]
    return case


def test_the_configuration_says_every_mistake_of_cases_in_one_run() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({
            "departments": [{"name": "police", "units": ["mdc2*"]}, {"name": "police"}],
            "case_kinds": {"noise": {"flow": "joint", "departments": ["police", "fire"]},
                           "Stall": {"departments": ["police"]},
                           "parcel": {"flow": "transfer"}},
            "answers": {"fleetsync_status": {"5": "accepted", "11": "arrive"}, "dtmf": {"*2x*": "accepted"}},
        })
    lines = str(caught.value).splitlines()
    assert any(line.startswith("<config>: departments[0].units[0]: expected a unit pattern") for line in lines)
    assert "<config>: departments[1].name: department names must be unique, repeated: police (also departments[0])" \
        in lines
    assert "<config>: case_kinds.noise.departments[1]: no department named fire (declared: police)" in lines
    assert any(line.startswith("<config>: case_kinds.Stall.[key]: String should match pattern") for line in lines)
    assert "<config>: case_kinds.parcel: transfer: flow transfer needs where the case goes (mqtt_topic and/or " \
           "webhook)" in lines
    assert ("<config>: answers.fleetsync_status: '5': expected a FleetSync status number 10-136; '11': expected "
            "one of accepted, arrived, handled, needs_help, got 'arrive'") in lines
    assert "<config>: answers.dtmf: '*2x*': expected DTMF digits 0-9 A-D * #" in lines


def test_a_case_opened_by_hand_has_its_kinds_departments_duty_and_clocks(core: BridgeCore, clock: Clock) -> None:
    heard(core, "fleetsync:100-1001")
    case = open_stall(core)
    assert (case.source, case.flow, case.camera, case.state) == ("dispatcher", "lead", "dome-3", "acknowledged")
    assert case.duty == "City Appearance Regulations art. 12"
    assert [(p.department, p.role, p.state) for p in case.parts] == [
        ("urban-management", "lead", "new"), ("police", "assist", "new")]
    lead = case.parts[0]
    assert (lead.accept_due, lead.arrive_due, lead.resolve_due) == (
        START + timedelta(seconds=300), START + timedelta(seconds=900), START + timedelta(seconds=3600))
    assert [u["unit"] for u in case.suggested] == ["fleetsync:100-1001"]
    assert history(core, case.id)[0] == ("alice", "opened", "street stall at camera dome-3 (Wenyi Rd / Gudun Rd): "
                                                            "two carts on the pavement")
    # A department added later has its own part, its clock starting now.
    clock.advance(120)
    handle(core, command({"action": "add_department", "incident": case.id, "department": "sanitation",
                          "operator": "bob"}))
    view = core.store.incident(case.id)
    assert view is not None
    added = view.parts[-1]
    assert (added.department, added.role, added.opened_at, added.accept_due) == (
        "sanitation", "assist", START + timedelta(seconds=120), START + timedelta(seconds=420))
    assert history(core, case.id)[-1] == ("bob", "department", "sanitation added")


def test_a_kind_or_department_not_configured_is_refused_with_its_reason_in_the_audit(core: BridgeCore) -> None:
    refused = handle(core, command({"action": "open_case", "kind": "graffiti", "operator": "alice", "lat": 30.28,
                                    "lon": 120.11, "request": "r1"}))
    [answer] = [a for a in refused if isinstance(a, AnswerRefused)]
    assert answer.reason == ("kind: 'graffiti' is not a case kind of this site (case kinds: alert, noise, "
                             "obstruction, street_stall)")
    case = open_stall(core)
    handle(core, command({"action": "add_department", "incident": case.id, "department": "fire", "operator": "bob"}))
    handle(core, command({"action": "add_department", "incident": case.id, "department": "police",
                          "operator": "bob"}))
    audit = [(e.action, e.target, e.outcome, e.reason) for e in entries(core.store.engine)]
    assert audit == [
        ("open_case", "kind:graffiti", "refused", answer.reason),
        ("open_case", "kind:street_stall", "done", None),
        ("add_department", f"incident:{case.id}", "refused",
         "department: no department 'fire' (departments: urban-management, police, sanitation)"),
        ("add_department", f"incident:{case.id}", "refused", f"incident {case.id}: police has a part already"),
    ]
    assert core.counts["messages_failed"] == 0


def test_a_case_a_vehicles_camera_found_is_announced_at_a_fixed_camera_near_it_not_at_the_car(
    database_url: str, tmp_path: Path, clock: Clock
) -> None:
    car = {"id": "car-9-360", "name": "Patrol car 9, all-round camera", "kind": "vehicle", "unit": "gps:car-9",
           "lat": 30.2800, "lon": 120.1100, "fov_deg": 360, "range_m": 200}
    config = parse_config({**SITE, "cameras": [*SITE["cameras"], car], "data_dir": str(tmp_path)})
    store = Store.open(database_url, clock=clock, rules=CaseRules.of(config))
    try:
        core = BridgeCore.open(config, store, clock=clock)
        heard(core, "fleetsync:100-1001")
        seen = {"label": "street_stall", "score": 0.9, "time": clock().isoformat(),
                "position": {"lat": 30.2803, "lon": 120.1102}}
        handle(core, Inbound(f"{PREFIX}/cam/car-9-360/event", json.dumps(seen).encode(), 98, 1, 1, 0,
                             ("cam", "car-9-360", "event")))
        [case] = [i for i in core.store.open_incidents() if i.category == "street_stall"]
        assert (case.camera, case.source) == ("car-9-360", "camera")
        actions = handle(core, command({"action": "assign", "incident": case.id, "unit": "fleetsync:100-1001",
                                        "operator": "alice"}))
        [dispatch] = [a for a in actions if isinstance(a, CommandGateway)]
        assert dispatch.body["text"] == f"CASE {case.id} STREET STALL @DOME-3 5MIN"
        assert "地点：Wenyi Rd / Gudun Rd。" in dispatch.body["speech"]["text"]
    finally:
        store.close()


def test_sending_a_unit_dispatches_to_its_radio_through_the_gateway_that_heard_it(core: BridgeCore) -> None:
    heard(core, "fleetsync:100-1001")
    case = open_stall(core)
    actions = handle(core, command({"action": "assign", "incident": case.id, "unit": "fleetsync:100-1001",
                                    "operator": "alice"}))
    [dispatch] = [a for a in actions if isinstance(a, CommandGateway)]
    assert dispatch.levels == ("gw", "gw1", "cmd", "dispatch")
    body = dispatch.body
    assert (body["case"], body["unit"], body["channel"], body["operator"]) == (
        case.id, "fleetsync:100-1001", "patrol-1", "alice")
    assert body["text"] == f"CASE {case.id} STREET STALL @DOME-3 5MIN"
    assert len(body["text"]) <= 48
    assert body["text"].isascii()
    assert body["speech"] == {"text": f"案件{case.id}，占道经营，地点：Wenyi Rd / Gudun Rd。请在5分钟内接警。",
                              "language": "cmn"}
    view = published(actions)[-1][0]
    lead = view.parts[0]
    assert (lead.state, lead.unit, lead.dispatch_result) == ("dispatched", "fleetsync:100-1001", "requested")
    assert history(core, case.id)[-1] == (
        "alice", "dispatch", f"to fleetsync:100-1001 through gw1/patrol-1 (heard there last): {body['text']}")

    # The gateway's report of each path it tried comes back as an io event, with no unit of its own.
    for path, result, reason in (("kenwood_message", "no_transmit_path", "channel patrol-1 has no Kenwood data port"),
                                 ("fleetsync_message", "sent", "")):
        handle(core, event(core, Kind.IO, None, {"protocol": "tx", "command": "dispatch", "request": body["request"],
                                                 "case": case.id, "unit": "fleetsync:100-1001",
                                                 "channel": "patrol-1", "path": path, "result": result,
                                                 "reason": reason, "operator": "alice"}))
    assert history(core, case.id)[-2:] == [
        ("bridge", "dispatch", "no transmit path (kenwood_message) on gw1/patrol-1: channel patrol-1 has no Kenwood "
                               "data port"),
        ("bridge", "dispatch", "sent (fleetsync_message) on gw1/patrol-1")]
    after = core.store.incident(case.id)
    assert after is not None
    assert after.parts[0].dispatch_result == "sent"


def test_a_remote_monitors_result_goes_into_the_history_of_the_case_it_was_asked_from(core: BridgeCore) -> None:
    """The gateway names the case the console asked from; the bridge writes how it went there and tells the
    consoles (change ``remote_monitor``). A result naming no case, or a case that is not there, changes no
    case and is still stored."""
    case = open_stall(core)
    for result, reason in (("no_transmit_path", "channel patrol-1 has no transmit path"), ("sent", None)):
        actions = handle(core, event(core, Kind.IO, "mdc:2001", {
            "protocol": "tx", "output": "ptt", "command": "remote_monitor", "request": "r1", "case": case.id,
            "operator": "alice", "duration_s": 30.0, "result": result, "reason": reason}))
        assert [(v.id, change) for v, change in published(actions)] == [(case.id, "remote_monitor")]
    assert history(core, case.id)[-2:] == [
        ("bridge", "remote_monitor", "no transmit path to mdc:2001 on gw1/patrol-1, asked by alice: channel patrol-1 "
                                     "has no transmit path"),
        ("bridge", "remote_monitor", "sent to mdc:2001 on gw1/patrol-1, the channel streamed 30 s, asked by alice")]
    before = history(core, case.id)
    for bad in ({}, {"case": case.id + 1000}, {"case": True}):
        actions = handle(core, event(core, Kind.IO, "mdc:2001", {
            "protocol": "tx", "command": "remote_monitor", "request": "r2", "operator": "bob", "result": "sent",
            **bad}))
        assert published(actions) == []
    assert history(core, case.id) == before
    assert core.store.count_events("gw1") >= 5


def test_a_unit_sent_late_is_told_the_time_left_to_accept(core: BridgeCore, clock: Clock) -> None:
    heard(core, "mdc:2001")
    case = open_stall(core)
    clock.advance(250)  # 50 s of the 300 s left: "1 minute"
    actions = handle(core, command({"action": "assign", "incident": case.id, "unit": "mdc:2001", "operator": "a"}))
    [dispatch] = [a for a in actions if isinstance(a, CommandGateway)]
    assert dispatch.body["text"] == f"CASE {case.id} STREET STALL @DOME-3 1MIN"
    clock.advance(100)  # past the limit: "now"
    heard(core, "mdc:2002")
    actions = handle(core, command({"action": "assign", "incident": case.id, "unit": "mdc:2002", "operator": "a"}))
    [dispatch] = [a for a in actions if isinstance(a, CommandGateway)]
    assert dispatch.body["text"] == f"CASE {case.id} STREET STALL @DOME-3 NOW"
    assert dispatch.body["speech"]["text"].endswith("请立即接警。")


def test_a_unit_no_gateway_has_heard_or_a_name_that_is_no_radio_gets_a_clear_history_line(core: BridgeCore) -> None:
    case = open_stall(core)
    for unit in ("mdc:2042", "car 7"):
        actions = handle(core, command({"action": "assign", "incident": case.id, "unit": unit, "operator": "alice"}))
        assert not [a for a in actions if isinstance(a, CommandGateway)]
    lines = [note for _, action, note in history(core, case.id) if action == "dispatch"]
    assert lines == ["not sent: no radio path to mdc:2042: no gateway has heard it",
                     "not sent over the radio: car 7 is not a radio identity (e.g. mdc:1234)"]
    view = core.store.incident(case.id)
    assert view is not None
    # mdc:2042 is police's: it took police's part; the patrol car's name the lead's.
    assert [(p.department, p.unit, p.state) for p in view.parts] == [
        ("urban-management", "car 7", "dispatched"), ("police", "mdc:2042", "dispatched")]


def test_the_radios_answers_move_the_units_part_and_its_clocks_stop(core: BridgeCore, clock: Clock) -> None:
    heard(core, "fleetsync:100-1001")
    heard(core, "mdc:2001")
    case = open_stall(core)
    handle(core, command({"action": "assign", "incident": case.id, "unit": "fleetsync:100-1001", "operator": "a"}))
    handle(core, command({"action": "assign", "incident": case.id, "unit": "mdc:2001", "operator": "a"}))
    clock.advance(60)
    # FleetSync status 10 over the air: accepted.
    actions = handle(core, event(core, Kind.STATUS, "fleetsync:100-1001",
                                 {"protocol": "fleetsync", "name": "status", "status": 10}))
    assert ("answer" in [c for _, c in published(actions)])
    clock.advance(240)
    # The same unit's Kenwood data port reports status "0011" (digits as sent): arrived.
    handle(core, event(core, Kind.STATUS, "fleetsync:100-1001", {"protocol": "fleetsync", "frame": "status",
                                                                 "status": "0011"}))
    # MDC-1200 status 3 from police's unit: handled, with accepted and arrived implied.
    handle(core, event(core, Kind.STATUS, "mdc:2001", {"protocol": "mdc1200", "name": "status", "status": 3}))
    view = core.store.incident(case.id)
    assert view is not None
    um, police = view.parts
    assert (um.state, um.accepted_at, um.arrived_at, um.handled_at) == (
        "arrived", START + timedelta(seconds=60), START + timedelta(seconds=300), None)
    assert (police.state, police.accepted_at, police.arrived_at, police.handled_at) == (
        "handled", START + timedelta(seconds=300), START + timedelta(seconds=300), START + timedelta(seconds=300))
    answers = [(actor, note) for actor, action, note in history(core, case.id) if action == "answer"]
    assert answers == [
        ("fleetsync:100-1001", "fleetsync:100-1001 sent fleetsync status 10 (accepted) on gw1/patrol-1: "
                               "urban-management's part accepted"),
        ("fleetsync:100-1001", "fleetsync:100-1001 sent fleetsync status 11 (arrived) on gw1/patrol-1: "
                               "urban-management's part arrived"),
        ("mdc:2001", "mdc:2001 sent mdc1200 status 3 (handled) on gw1/patrol-1: police's part handled (accepted, "
                     "arrived implied)")]
    # An answer that would move a part back changes nothing, and says so.
    handle(core, event(core, Kind.STATUS, "fleetsync:100-1001", {"protocol": "fleetsync", "name": "status",
                                                                 "status": 10}))
    assert history(core, case.id)[-1][2].endswith("urban-management's part is arrived already")
    # The accept clock stopped at 60 s: past 300 s nothing is escalated for acceptance.
    clock.advance(400)
    assert core.store.escalate_parts() == []


def test_an_aprs_reply_and_a_modbus_input_answer_too(core: BridgeCore) -> None:
    heard(core, "aprs:BG5ABC-9")
    heard(core, "io:car-7")
    handle(core, command({"action": "open_case", "kind": "noise", "operator": "alice", "lat": 30.2, "lon": 120.1}))
    [case] = core.store.open_incidents()
    handle(core, command({"action": "assign", "incident": case.id, "unit": "aprs:BG5ABC-9", "operator": "a"}))
    # An APRS message to the centre whose first word is a reply word, in any case.
    handle(core, event(core, Kind.STATUS, "aprs:BG5ABC-9", {"protocol": "aprs", "type": "message",
                                                            "addressee": "BG5ZZZ-10", "text": "ok on my way",
                                                            "message_id": "12"}))
    view = core.store.incident(case.id)
    assert view is not None
    assert view.parts[0].state == "accepted"
    # A car's "on scene" button, a Modbus input whose point names the car: its part arrived.
    handle(core, command({"action": "assign", "incident": case.id, "unit": "io:car-7", "operator": "a"}))
    handle(core, event(core, Kind.IO, "io:car-7", {"protocol": "modbus", "point": "on-scene", "value": 1,
                                                   "previous": 0}))
    handle(core, event(core, Kind.IO, "io:car-7", {"protocol": "modbus", "point": "on-scene", "value": 0,
                                                   "previous": 1}))  # released: no answer
    view = core.store.incident(case.id)
    assert view is not None
    assert (view.parts[0].unit, view.parts[0].state) == ("io:car-7", "arrived")
    assert [note.split(": ", 1)[0] for _, action, note in history(core, case.id) if action == "answer"] == [
        "aprs:BG5ABC-9 sent aprs OK (accepted) on gw1/patrol-1",
        "io:car-7 sent modbus on-scene (arrived) on gw1/patrol-1"]


def test_a_dtmf_code_takes_the_unit_of_its_transmission_even_when_that_comes_later(core: BridgeCore,
                                                                                   clock: Clock) -> None:
    heard(core, "dtmf:7001")
    case = open_stall(core)
    handle(core, command({"action": "add_department", "incident": case.id, "department": "sanitation",
                          "operator": "a"}))
    handle(core, command({"action": "assign", "incident": case.id, "unit": "dtmf:7001", "operator": "a"}))
    call = "01938a00-0000-7000-8000-000000000001"
    # The code comes first, with no unit of its own: it waits.
    handle(core, event(core, Kind.STATUS, None, {"protocol": "dtmf", "digits": "*21*", "call": call}))
    with core.store._read() as s:
        [waiting] = s.scalars(select(CaseAnswerRow)).all()
        assert (waiting.outcome, waiting.unit, waiting.call) == ("waiting", None, call)
    # The transmission ends: its call event names the unit identified in it.
    handle(core, event(core, Kind.CALL, "dtmf:7001", {"duration_s": 3.2}, event_id=call))
    view = core.store.incident(case.id)
    assert view is not None
    assert [(p.department, p.state) for p in view.parts][-1] == ("sanitation", "accepted")
    # Later codes of a transmission whose unit is already known apply at once.
    handle(core, event(core, Kind.STATUS, None, {"protocol": "dtmf", "digits": "*22*", "call": call}))
    view = core.store.incident(case.id)
    assert view is not None
    assert view.parts[-1].state == "arrived"
    # A code decoded just after its transmission ended (it names none): the unit of the one that just ended.
    clock.advance(60)
    handle(core, event(core, Kind.CALL, "dtmf:7001", {"duration_s": 2.0}))
    clock.advance(2.6)
    handle(core, event(core, Kind.STATUS, None, {"protocol": "dtmf", "digits": "*23*"}))
    view = core.store.incident(case.id)
    assert view is not None
    assert view.parts[-1].state == "handled"
    # Long after it, a code is nobody's.
    clock.advance(30)
    handle(core, event(core, Kind.STATUS, None, {"protocol": "dtmf", "digits": "*21*"}))
    with core.store._read() as s:
        last = s.scalars(select(CaseAnswerRow).order_by(CaseAnswerRow.id.desc())).first()
        assert last is not None
        assert (last.outcome, last.unit) == ("no_unit", None)


def test_an_answer_from_a_unit_with_no_open_case_is_kept_and_counted(core: BridgeCore) -> None:
    handle(core, event(core, Kind.STATUS, "fleetsync:100-1999", {"protocol": "fleetsync", "name": "status",
                                                                 "status": 11}))
    handle(core, event(core, Kind.STATUS, None, {"protocol": "dtmf", "digits": "*23*"}))
    with core.store._read() as s:
        rows = [(r.unit, r.signal, r.transition, r.outcome, r.note) for r in s.scalars(
            select(CaseAnswerRow).order_by(CaseAnswerRow.id))]
    assert rows == [("fleetsync:100-1999", "fleetsync status 11", "arrived", "no_open_case",
                     "the unit has no open case"),
                    (None, "dtmf *23*", "handled", "no_unit", "no unit identified itself with it")]
    assert (core.counts["answers_no_open_case"], core.counts["answers_no_unit"]) == (1, 1)
    assert core.counts["stored"] >= 2
    assert core.counts["messages_failed"] == 0


def test_needs_help_opens_an_alert_of_its_own_linked_to_the_case(core: BridgeCore) -> None:
    heard(core, "fleetsync:100-1001")
    case = open_stall(core)
    handle(core, command({"action": "assign", "incident": case.id, "unit": "fleetsync:100-1001", "operator": "a"}))
    actions = handle(core, event(core, Kind.STATUS, "fleetsync:100-1001", {"protocol": "fleetsync",
                                                                           "name": "status", "status": 13}))
    [(alert, change)] = [(i, c) for i, c in published(actions) if i.id != case.id]
    assert change == Change.OPENED
    assert (alert.category, alert.source, alert.unit, alert.linked_case, alert.state) == (
        "alert", "needs_help", "fleetsync:100-1001", case.id, "new")
    assert alert.label == f"fleetsync:100-1001 needs help on case {case.id}"
    assert [p.department for p in alert.parts] == ["police"]  # kind alert is configured: police's part
    assert history(core, case.id)[-1][2].endswith(f"alert {alert.id} opened for it")


def test_parts_past_their_limits_are_escalated_once_each_on_the_injected_clock(core: BridgeCore,
                                                                              clock: Clock) -> None:
    handle(core, command({"action": "open_case", "kind": "noise", "operator": "alice", "lat": 30.2, "lon": 120.1}))
    [case] = core.store.open_incidents()
    assert [a for a in core.tick(0.0) if isinstance(a, PublishIncident)] == []  # nothing is late at the start
    clock.advance(121)
    late = [(i.id, c) for i, c in ((a.incident, a.change) for a in core.tick(1.0) if isinstance(a, PublishIncident))]
    assert late == [(case.id, Change.ESCALATED)]
    view = core.store.incident(case.id)
    assert view is not None
    assert view.overdue
    assert view.parts[0].escalated == "accept"
    clock.advance(10)
    assert [a for a in core.tick(2.0) if isinstance(a, PublishIncident)] == []  # once per limit
    clock.advance(600)
    [again] = [a for a in core.tick(3.0) if isinstance(a, PublishIncident)]
    assert again.incident.parts[0].escalated == "arrive"
    assert [note for _, action, note in history(core, case.id) if action == "escalated"] == [
        "police: not accepted within 120 s", "police: not arrived at within 600 s"]


def test_resolving_a_case_closes_its_parts_where_they_stood(core: BridgeCore, clock: Clock) -> None:
    heard(core, "fleetsync:100-1001")
    case = open_stall(core)
    handle(core, command({"action": "assign", "incident": case.id, "unit": "fleetsync:100-1001", "operator": "a"}))
    handle(core, event(core, Kind.STATUS, "fleetsync:100-1001", {"protocol": "fleetsync", "name": "status",
                                                                 "status": 10}))
    handle(core, command({"action": "resolve", "incident": case.id, "operator": "a", "resolution": "handled"}))
    view = core.store.incident(case.id)
    assert view is not None
    assert [(p.department, p.state, p.accepted_at is not None) for p in view.parts] == [
        ("urban-management", "closed", True), ("police", "closed", False)]
    # Nothing of a resolved case is escalated, checked on, or moved by a late answer.
    clock.advance(7200)
    assert [a for a in core.tick(1.0) if isinstance(a, PublishIncident | CommandGateway)] == []
    handle(core, event(core, Kind.STATUS, "fleetsync:100-1001", {"protocol": "fleetsync", "name": "status",
                                                                 "status": 11}))
    with core.store._read() as s:
        last = s.scalars(select(CaseAnswerRow).order_by(CaseAnswerRow.id.desc())).first()
        assert last is not None
        assert last.outcome == "no_open_case"


def test_a_silent_unit_on_a_case_gets_a_radio_check_then_an_alert(core: BridgeCore, clock: Clock) -> None:
    heard(core, "mdc:2001")
    handle(core, command({"action": "open_case", "kind": "noise", "operator": "alice", "unit": "mdc:2001"}))
    [case] = core.store.open_incidents()
    handle(core, command({"action": "assign", "incident": case.id, "unit": "mdc:2001", "operator": "alice"}))
    clock.advance(599)
    assert [a for a in core.tick(1.0) if isinstance(a, CommandGateway)] == []
    clock.advance(2)
    [check] = [a for a in core.tick(2.0) if isinstance(a, CommandGateway)]
    assert check.levels == ("gw", "gw1", "cmd", "radio_check")
    assert (check.body["case"], check.body["unit"], check.body["channel"]) == (case.id, "mdc:2001", "patrol-1")
    clock.advance(30)
    assert [a for a in core.tick(3.0) if isinstance(a, CommandGateway | PublishIncident)] == []  # within the grace
    clock.advance(31)
    actions = core.tick(4.0)
    [alert] = [a.incident for a in actions if isinstance(a, PublishIncident) and a.incident.id != case.id]
    assert (alert.source, alert.unit, alert.linked_case) == ("lone_worker", "mdc:2001", case.id)
    assert [note for _, action, note in history(core, case.id) if action in ("radio_check", "escalated")][-2:] == [
        "mdc:2001 not heard for 601 s: its radio checked through gw1/patrol-1",
        f"mdc:2001 still silent 60 s after its radio check: alert {alert.id} opened"]


def test_a_unit_heard_after_its_radio_check_raises_no_alert(core: BridgeCore, clock: Clock) -> None:
    heard(core, "mdc:2001")
    handle(core, command({"action": "open_case", "kind": "noise", "operator": "alice", "unit": "mdc:2001"}))
    [case] = core.store.open_incidents()
    handle(core, command({"action": "assign", "incident": case.id, "unit": "mdc:2001", "operator": "alice"}))
    clock.advance(601)
    assert [a for a in core.tick(1.0) if isinstance(a, CommandGateway)]
    clock.advance(5)
    # The radio answers the check by itself (MDC-1200 radio-check ack): the unit is heard.
    handle(core, event(core, Kind.STATUS, "mdc:2001", {"protocol": "mdc1200", "name": "radio_check_ack"}))
    clock.advance(120)
    assert [a for a in core.tick(2.0) if isinstance(a, PublishIncident) and a.incident.id != case.id] == []


def test_a_camera_case_is_verified_when_resolved(core: BridgeCore) -> None:
    detection = Inbound(f"{PREFIX}/cam/dome-3/event", json.dumps({"label": "street_stall", "score": 0.9,
                                                                  "time": START.isoformat()}).encode(),
                        5, 1, 1, 0, ("cam", "dome-3", "event"))
    handle(core, detection)
    [case] = core.store.open_incidents()
    assert (case.source, case.camera, case.flow) == ("camera", "dome-3", "lead")
    handle(core, command({"action": "resolve", "incident": case.id, "operator": "alice", "resolution": "false_alarm",
                          "verdict": "false_detection", "reason": "a parked delivery tricycle, not a stall"}))
    view = core.store.incident(case.id)
    assert view is not None
    assert (view.verdict, view.verdict_reason) == (
        "false_detection", "a parked delivery tricycle, not a stall")
    assert history(core, case.id)[-1] == ("alice", "verified",
                                          "false detection: a parked delivery tricycle, not a stall")
    # A case no camera found is not verified.
    handle(core, command({"action": "open_case", "kind": "noise", "operator": "alice", "lat": 30.2, "lon": 120.1}))
    [noise] = core.store.open_incidents()
    refused = handle(core, command({"action": "resolve", "incident": noise.id, "operator": "alice",
                                    "resolution": "handled", "verdict": "valid"}))
    [answer] = [a for a in refused if isinstance(a, AnswerRefused)]
    assert answer.reason == f"verdict: only a case a camera found is verified (incident {noise.id} was found by " \
                            "dispatcher)"


# --- transfer ------------------------------------------------------------------------------------------------


class OutsideSystem(http.server.ThreadingHTTPServer):
    """A webhook: answers each POST as ``plan`` says (500, hang, 200), and keeps what it was sent."""

    def __init__(self, plan: list[str]) -> None:
        self.plan = plan
        self.received: list[dict[str, Any]] = []
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/cases"

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: OutsideSystem

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))
        step = self.server.plan.pop(0) if self.server.plan else "200"
        if step == "hang":
            self.server.release.wait(10)
            return
        self.send_response(int(step))
        self.end_headers()
        self.wfile.write(b"internal error" if step == "500" else b'{"ticket": "T-77"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("plan", [["500", "200"], ["hang", "200"], ["500", "500", "500"]])
def test_a_transfer_is_retried_with_backoff_and_its_receipt_recorded(plan: list[str], database_url: str,
                                                                      tmp_path: Path, clock: Clock) -> None:
    outside = OutsideSystem(list(plan))
    site = {**SITE, "case_kinds": {**SITE["case_kinds"], "parcel": {
        "flow": "transfer", "transfer": {"name": "city-hotline", "webhook": outside.url, "retries": 2,
                                         "backoff_s": 0.05, "timeout_s": 0.5}}}}
    config = parse_config({**site, "data_dir": str(tmp_path)})
    store = Store.open(database_url, clock=clock, rules=CaseRules.of(config))
    core = BridgeCore.open(config, store, clock=clock)
    transfer = CaseTransfer(core.transfer_news.put)
    try:
        actions = handle(core, command({"action": "open_case", "kind": "parcel", "operator": "alice", "lat": 30.2,
                                        "lon": 120.1, "note": "unattended parcel"}))
        [hand_over] = [a for a in actions if isinstance(a, TransferCase)]
        [case] = store.open_incidents()
        assert [(p.department, p.role, p.state) for p in case.parts] == [("city-hotline", "transfer", "new")]
        # Handling more of what arrives is not held up meanwhile: the worker threads do the waiting.
        transfer.submit(hand_over.request)
        handle(core, event(core, Kind.BEACON, "mdc:2001", {"protocol": "nmea"}))
        final = "200" if plan[-1] == "200" else "failed"

        def lines() -> list[str]:
            core.tick(0.0)
            return [note for _, action, note in history(core, case.id) if action == "transfer"]

        deadline = datetime.now(UTC) + timedelta(seconds=15)
        while not any(("HTTP 200" in n) if final == "200" else ("failed after" in n) for n in lines()):
            assert datetime.now(UTC) < deadline, lines()
            threading.Event().wait(0.05)
        said = lines()
        where = f"webhook to city-hotline ({outside.url})"
        first = {"500": f"{where} try 1 of 3: HTTP 500 ('internal error'); again in 0.05 s",
                 "hang": f"{where} try 1 of 3: no answer within 0.5 s; again in 0.05 s"}[plan[0]]
        assert said[0] == first
        view = store.incident(case.id)
        assert view is not None
        if final == "200":
            assert said[-1].startswith(f"{where}: HTTP 200, answer 18 bytes, sha256 ")
            assert view.parts[0].state == "transferred"
            assert view.parts[0].transferred_at is not None
        else:
            assert said[-1] == (f"{where} failed after 3 tries: HTTP 500 ('internal error'); the case stays with "
                                "the dispatcher")
            assert view.parts[0].state == "new"
        assert outside.received[0]["case"] == case.id
        assert outside.received[0]["kind"] == "parcel"
        assert core.counts["messages_failed"] == 0
    finally:
        transfer.stop()
        outside.close()
        store.close()
