"""Bad input to the case loop, against a real Mosquitto, a real gateway reading a Kenwood radio's data port
on a pseudo-terminal, and the bridge on SQLite and PostgreSQL: a status from a unit with no case, a
dispatch to a unit whose channel cannot transmit, a case kind not in the configuration, an outside system
whose webhook answers 500 and then hangs, a unit on a case that falls silent. Each gets a clear answer in
the case's history or the audit, nothing is lost (the same radio's next status still moves its case) and
the bridge keeps running."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from support import Listener, Mosquitto, SocatLink, wait_until
from test_cases import OutsideSystem

from bridge.audit import entries
from bridge.models import CaseAnswerRow
from bridge.service import Bridge
from bridge.views import IncidentView
from config.schema import parse_config
from gateway.runner import Gateway

PREFIX = "pttbridge/v1"


def status(fleet: int, unit: int, number: int) -> bytes:
    """A Kenwood data port's status frame: STX S FFF IIII ss ETX."""
    return b"\x02S%03d%04d%02d\x03" % (fleet, unit, number)


def test_bad_input_to_the_case_loop_gets_clear_answers_and_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink, database_url: str
) -> None:
    outside = OutsideSystem(["500", "hang", "200"])
    config = parse_config({
        "gateway": {"name": "gw-kw", "outbox": str(tmp_path / "outbox.sqlite"), "state_interval_s": 1},
        "mqtt": {"url": mosquitto.url},
        "bridge": {"database_url": database_url, "reannounce_s": 600},
        # The radio's channel listens only: whatever is dispatched there has no way to the radio.
        "channels": [{"name": "listen", "receive_only": True,
                      "drivers": [{"port": str(socat_link.radio), "protocol": "kenwood"}]}],
        "departments": [{"name": "urban-management", "units": ["fleetsync:100-*"]}],
        "case_kinds": {
            "street_stall": {"departments": ["urban-management"], "accept_s": 300},
            "parcel": {"flow": "transfer", "transfer": {"name": "city-hotline", "webhook": outside.url,
                                                        "mqtt_topic": "hotline/cases", "retries": 3,
                                                        "backoff_s": 0.1, "timeout_s": 1.0}}},
        # A unit on a case silent for 3 s is checked on, and 2 s later an alert is raised.
        "answers": {"fleetsync_status": {"10": "accepted", "11": "arrived"}, "lone_worker_s": 3,
                    "radio_check_grace_s": 2},
    })
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()
    hotline = Listener(mosquitto.url, "hotline/cases")
    consoles = Listener(mosquitto.url, f"{PREFIX}/bridge/#", persistent=False)
    store = bridge.store
    assert store is not None

    def send(body: dict[str, Any]) -> None:
        consoles.client.publish(f"{PREFIX}/bridge/cmd", json.dumps(body), qos=1).wait_for_publish(5)

    def case(kind: str) -> IncidentView | None:
        return next((i for i in store.incidents() if i.category == kind), None)

    def lines(kind: str, action: str) -> list[str]:
        c = case(kind)
        detail = store.incident_detail(c.id) if c is not None else None
        return [h.note or "" for h in detail.history if h.action == action] if detail is not None else []

    def answers() -> list[tuple[str | None, str, str]]:
        with store._read() as s:
            return [(r.unit, r.signal, r.outcome) for r in s.scalars(select(CaseAnswerRow).order_by(CaseAnswerRow.id))]

    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected, 10, "bridge and gateway connected")
        wait_until(lambda: gateway.drivers[0][1].snapshot()["state"] == "open", 10, "the data port")
        # (a) a status from a unit nobody sent anywhere: kept, with why it changed nothing
        socat_link.write(status(100, 1999, 11))
        wait_until(lambda: answers() == [("fleetsync:100-1999", "fleetsync status 11", "no_open_case")], 10,
                   "the answer kept")
        assert bridge.counts["answers_no_open_case"] == 1
        # (b) a case kind the site does not have: refused, in the audit and to the console
        send({"action": "open_case", "kind": "graffiti", "operator": "alice", "lat": 30.2, "lon": 120.1,
              "request": "r-graffiti"})
        wait_until(lambda: any(p.get("request") == "r-graffiti" for p in consoles.payloads("/bridge/refused")), 10,
                   "the refusal")
        [refused] = [p for p in consoles.payloads("/bridge/refused") if p.get("request") == "r-graffiti"]
        assert refused["reason"] == "kind: 'graffiti' is not a case kind of this site (case kinds: parcel, " \
                                    "street_stall)"
        # (c) a dispatch to a unit heard on a receive-only channel: the gateway's answer in the history
        socat_link.write(status(100, 1001, 30))  # the unit is heard (a status that answers nothing)
        wait_until(lambda: (u := store.unit("fleetsync:100-1001")) is not None and u.last_gateway == "gw-kw", 10,
                   "the unit heard")
        send({"action": "open_case", "kind": "street_stall", "operator": "alice", "lat": 30.28, "lon": 120.11})
        wait_until(lambda: case("street_stall") is not None, 10, "the case")
        stall = case("street_stall")
        assert stall is not None
        send({"action": "assign", "incident": stall.id, "unit": "fleetsync:100-1001", "operator": "alice"})
        wait_until(lambda: any(n.startswith("no transmit path") for n in lines("street_stall", "dispatch")), 15,
                   "the gateway's answer")
        [said] = [n for n in lines("street_stall", "dispatch") if n.startswith("no transmit path")]
        assert said == "no transmit path (no path) on gw-kw/listen: channel listen is receive-only: the radio does " \
                       "not transmit there"
        stall = case("street_stall")
        assert stall is not None
        assert stall.parts[0].dispatch_result == "no_transmit_path"
        # Nothing is lost: the officer, sent anyway, accepts from his radio and the case moves.
        socat_link.write(status(100, 1001, 10))
        wait_until(lambda: (c := case("street_stall")) is not None and c.parts[0].state == "accepted", 10,
                   "accepted")
        # (d) handed to an outside system whose webhook answers 500, then hangs, then takes it; and over MQTT
        send({"action": "open_case", "kind": "parcel", "operator": "bob", "lat": 30.2, "lon": 120.1,
              "note": "unattended parcel at the bus stop"})
        wait_until(lambda: any("HTTP 200" in n for n in lines("parcel", "transfer"))
                   and any("PUBACK" in n for n in lines("parcel", "transfer")), 20,
                   "the receipts")
        webhook = [n for n in lines("parcel", "transfer") if n.startswith("webhook")]
        where = f"webhook to city-hotline ({outside.url})"
        assert webhook[:2] == [f"{where} try 1 of 4: HTTP 500 ('internal error'); again in 0.1 s",
                               f"{where} try 2 of 4: no answer within 1 s; again in 0.2 s"]
        assert webhook[2].startswith(f"{where}: HTTP 200, answer 18 bytes, sha256 ")
        [mqtt_receipt] = [n for n in lines("parcel", "transfer") if n.startswith("mqtt")]
        assert mqtt_receipt.startswith("mqtt to city-hotline (topic hotline/cases): PUBACK from the broker")
        parcel = case("parcel")
        assert parcel is not None
        assert parcel.parts[0].state == "transferred"
        [handed] = hotline.payloads()
        assert (handed["case"], handed["kind"], handed["source"]) == (parcel.id, "parcel", "dispatcher")
        assert [r["case"] for r in outside.received] == [parcel.id] * 3
        # (e) the officer on the stall falls silent: his radio is checked through the gateway that heard him
        # (which cannot transmit there, and says so), then an alert is raised for him, linked to the case.
        wait_until(lambda: any(i.source == "lone_worker" for i in store.open_incidents()), 20, "the silent unit")
        [alert] = [i for i in store.open_incidents() if i.source == "lone_worker"]
        assert (alert.unit, alert.linked_case, alert.state) == ("fleetsync:100-1001", stall.id, "new")
        wait_until(lambda: any(n.startswith("no transmit path (no path) on gw-kw/listen")
                               for n in lines("street_stall", "radio_check")), 10, "the gateway's answer to the check")
        checks = lines("street_stall", "radio_check")
        assert checks[0].startswith("fleetsync:100-1001 not heard for ")
        assert checks[0].endswith(" s: its radio checked through gw-kw/listen")
        # The bridge kept running: connected, nothing failed, every command audited.
        assert bridge.connected
        assert bridge.counts["messages_failed"] == 0
        assert bridge.counts["batch_errors"] == 0
        audit = [(e.action, e.outcome) for e in entries(store.engine)]
        assert audit == [("open_case", "refused"), ("open_case", "done"), ("assign", "done"), ("open_case", "done")]
    finally:
        consoles.close()
        hotline.close()
        gateway.stop()
        bridge.stop()
        outside.close()
