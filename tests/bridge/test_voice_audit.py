"""Every transmission a dispatcher makes is in the bridge's audit with the operator's name: a real gateway
transmits what a desk says (a WAV dry run), its ``call`` event reaches a real bridge through Mosquitto,
the bridge stores the call (both sides of the conversation in the call history) and writes one audit row,
not two when the event is delivered again; ``pttbridge audit`` shows it. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import Mosquitto, free_port, wait_until
from voice_desk import RATE, Desk

import pttbridge
from bridge.audit import DONE, entries
from bridge.service import Bridge
from config.schema import parse_config
from gateway.runner import Gateway


def test_a_dispatchers_transmission_is_a_call_and_an_audit_row(
    tmp_path: Path, mosquitto: Mosquitto, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = parse_config({
        "data_dir": str(tmp_path / "data"),
        "gateway": {"name": "gw1", "outbox": str(tmp_path / "outbox.sqlite")},
        "mqtt": {"url": mosquitto.url},
        "bridge": {"database_url": database_url},
        "channels": [{"name": "patrol-1", "transmit": {"device": f"wav:{tmp_path / 'tx.wav'}", "lead_in_ms": 0}}],
    })
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()
    calls: list[bytes] = []
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-spy-{free_port()}")
    spy.on_message = lambda _c, _u, msg: calls.append(bytes(msg.payload))
    spy.connect("127.0.0.1", mosquitto.port)
    spy.subscribe("pttbridge/v1/gw/gw1/event/call", qos=1)
    spy.loop_start()
    desk = Desk(mosquitto.port, "gw1", "patrol-1", "desk-1", "alice")
    try:
        wait_until(lambda: bridge.connected and gateway.voice.subscribed.is_set(), 15, "bridge and gateway")
        desk.request("r1")
        granted = desk.answer("r1")
        assert granted.stream is not None
        desk.talk((0.3 * np.sin(2 * np.pi * 700 * np.arange(RATE // 2) / RATE)).astype(np.float32), granted.stream)
        desk.answer("r1", "released")
        store = bridge.store
        assert store is not None
        wait_until(lambda: [e for e in entries(store.engine) if e.action == "transmit"], 15, "the audit row")
        [row] = [e for e in entries(store.engine) if e.action == "transmit"]
        assert (row.operator, row.target, row.outcome) == ("alice", "channel:gw1/patrol-1", DONE)
        assert row.detail is not None and "from desk-1" in row.detail and "keyed" in row.detail

        wait_until(lambda: calls, 5, "the call event, seen on the wire")
        spy.publish("pttbridge/v1/gw/gw1/event/call", calls[0], qos=1).wait_for_publish(5)  # delivered again
        event_id = json.loads(calls[0])["id"]
        sentinel_note = {"action": "alias", "unit": "mdc:1234", "alias": "car 7", "operator": "supervisor",
                         "request": "s1"}
        spy.publish("pttbridge/v1/bridge/cmd", json.dumps(sentinel_note), qos=1).wait_for_publish(5)
        wait_until(lambda: [e for e in entries(store.engine) if e.operator == "supervisor"], 10, "the alias")
        assert len([e for e in entries(store.engine) if e.action == "transmit"]) == 1
        assert event_id in (row.detail or "")

        config_file = tmp_path / "site.toml"
        config_file.write_text(f'[bridge]\ndatabase_url = "{database_url}"\n')
        pttbridge.main(["audit", "-c", str(config_file), "--operator", "alice"])
        out = capsys.readouterr().out
        assert "alice" in out and "transmit" in out and "channel:gw1/patrol-1" in out
    finally:
        desk.close()
        spy.loop_stop()
        spy.disconnect()
        gateway.stop()
        bridge.stop()


def test_what_the_audit_says_of_each_kind_of_transmission() -> None:
    from datetime import UTC, datetime

    from bridge.audit import REFUSED, transmission
    from gateway.events import Event, Kind, uuid7

    def event(kind: Kind, detail: dict[str, object], unit: str | None = None) -> Event:
        now = datetime.now(UTC)
        return Event(id=uuid7(now), seq=1, gateway="gw1", channel="patrol-1", kind=kind, time=now, unit=unit,
                     detail=detail)

    cut = transmission(event(Kind.CALL, {"transmitted": True, "operator": "bob", "console": "desk-2", "keyed_s": 10.2,
                                         "result": "timeout", "reason": "the transmit time-out (10 s) cut it off",
                                         "override": True}))
    assert cut is not None and (cut["action"], cut["outcome"], cut["operator"]) == ("transmit", REFUSED, "bob")
    assert "over radio traffic" in cut["detail"] and "time-out" in cut["reason"]
    monitor = transmission(event(Kind.IO, {"command": "remote_monitor", "operator": "alice", "result": "sent",
                                           "duration_s": 30.0}, "mdc:1234"))
    assert monitor is not None and (monitor["action"], monitor["target"]) == ("monitor", "unit:mdc:1234")
    patch = transmission(event(Kind.IO, {"command": "patch", "operator": "alice", "result": "done", "patch": "aid",
                                         "action": "connect", "channels": ["a", "b"]}))
    assert patch is not None and (patch["target"], patch["detail"]) == ("patch:gw1/aid", "connect a,b")
    assert transmission(event(Kind.CALL, {"duration_s": 3.0})) is None  # a received call is no transmission
    assert transmission(event(Kind.IO, {"command": "ack_emergency"})) is None  # the bridge's own, audited as ack
