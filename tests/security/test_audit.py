"""Operator actions are audited: every command a console sends the bridge over MQTT leaves a record of
when, who, what, on what, and whether it was done or refused and why, on SQLite and PostgreSQL, and
``pttbridge audit`` shows them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from support import Mosquitto, free_port, site_config, wait_until

import pttbridge
from bridge.audit import DONE, REFUSED, entries, parse_since
from bridge.service import Bridge
from config.schema import load_config
from gateway.events import Event, Kind, Position, encode_event, uuid7

PREFIX = "pttbridge/v1"
CHANNELS = [{"name": "patrol-1", "drivers": [{"port": "/dev/ttyUSB0", "protocol": "kenwood"}]}]


@pytest.fixture
def client(mosquitto: Mosquitto) -> Iterator[mqtt.Client]:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-console-{free_port()}")
    c.connect("127.0.0.1", mosquitto.port)
    c.loop_start()
    wait_until(c.is_connected, 10, "the test's client to connect")
    yield c
    c.loop_stop()
    c.disconnect()


def send(client: mqtt.Client, topic: str, body: dict[str, object] | bytes) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body)
    client.publish(f"{PREFIX}/{topic}", payload, qos=1).wait_for_publish(5)


def test_every_command_is_audited_done_or_refused_and_audit_shows_them(
    tmp_path: Path, mosquitto: Mosquitto, database_url: str, client: mqtt.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_path = site_config(tmp_path, mosquitto.url, database_url)
    bridge = Bridge(load_config(cfg_path))
    bridge.start()
    try:
        wait_until(lambda: bridge.connected, 10, "the bridge to connect")
        now = datetime.now(UTC)
        alert = Event(id=uuid7(now), seq=1, gateway="gw1", channel="patrol-1", kind=Kind.ALERT, time=now,
                      unit="mdc:1234", position=Position(30.2095, 120.2107, source="nmea"), detail={"protocol": "t"})
        send(client, "gw/gw1/event/alert", encode_event(alert))
        store = bridge.store
        assert store is not None
        wait_until(lambda: len(store.open_incidents()) == 1, 10, "the incident")
        n = store.open_incidents()[0].id

        commands: list[dict[str, object] | bytes] = [
            {"action": "ack", "incident": n, "operator": "alice"},
            {"action": "ack", "incident": n, "operator": "bob"},  # twice: refused
            {"action": "note", "incident": n, "operator": "bob", "note": "officer answers on channel 2"},
            {"action": "assign", "incident": n, "operator": "alice", "unit": "mdc:2001"},
            {"action": "ack", "incident": 99999, "operator": "carol"},
            {"action": "alias", "unit": "mdc:1234", "alias": "Officer Wang", "operator": "alice"},
            {"action": "plan", "gateway": "gw1", "channels": [{"name": "bad name!"}], "operator": "tech"},
            {"action": "plan", "gateway": "gw1", "channels": CHANNELS, "operator": "tech"},
            {"action": "launch", "incident": n, "operator": "mallory"},
            b"\xff not json",
            {"action": "resolve", "incident": n, "operator": "bob", "resolution": "handled"},
        ]
        for body in commands:
            send(client, "bridge/cmd", body)
        wait_until(lambda: len(entries(store.engine)) == len(commands), 10, "an audit record for every command")
        audit = entries(store.engine)
        assert [(a.operator, a.action, a.target, a.outcome) for a in audit] == [
            ("alice", "ack", f"incident:{n}", DONE),
            ("bob", "ack", f"incident:{n}", REFUSED),
            ("bob", "note", f"incident:{n}", DONE),
            ("alice", "assign", f"incident:{n}", DONE),
            ("carol", "ack", "incident:99999", REFUSED),
            ("alice", "alias", "unit:mdc:1234", DONE),
            ("tech", "plan", "gateway:gw1", REFUSED),
            ("tech", "plan", "gateway:gw1", DONE),
            ("mallory", "launch", f"incident:{n}", REFUSED),
            ("", "", "", REFUSED),
            ("bob", "resolve", f"incident:{n}", DONE),
        ]
        reasons = [a.reason or "" for a in audit]
        assert all(a.reason is None for a in audit if a.outcome == DONE)
        assert "99999" in reasons[4] and "channels[0]" in reasons[6] and "launch" in reasons[8]
        assert "not JSON" in (audit[9].detail or "") and reasons[9]
        assert audit[2].detail == "note='officer answers on channel 2'"
        assert audit[3].detail == "unit='mdc:2001'" and audit[10].detail == "resolution='handled'"
        assert audit[5].detail == "alias='Officer Wang'" and audit[7].detail == "1 channel"
        assert all(now - timedelta(seconds=5) <= a.at <= datetime.now(UTC) for a in audit)
    finally:
        bridge.stop()

    # What a supervisor reads.
    pttbridge.main(["audit", "-c", str(cfg_path), "--operator", "alice"])
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 3 and all(" alice " in line for line in lines)
    assert "ack" in lines[0] and f"incident:{n}" in lines[0] and lines[0].rstrip().endswith("done")
    assert "3 records" in out.err
    pttbridge.main(["audit", "-c", str(cfg_path), "--since", "1h", "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(commands) and rows[4]["outcome"] == "refused" and "99999" in rows[4]["reason"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    pttbridge.main(["audit", "-c", str(cfg_path), "--since", tomorrow])
    assert capsys.readouterr().out == ""
    pttbridge.main(["audit", "-c", str(cfg_path), "--limit", "1"])
    assert "resolve" in capsys.readouterr().out


def test_since_takes_a_time_ago_or_an_iso_time() -> None:
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-11-27T06:00", now) == datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    assert parse_since("2026-11-27T06:00+08:00", now) == datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="time ago"):
        parse_since("yesterday", now)
