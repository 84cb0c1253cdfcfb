"""A whole site through the shipped secure broker: a real gateway, a real bridge and a real console link,
each with its client certificate, an emergency from a radio stored and acknowledged, the acknowledgement
going back to the gateway; and what a stolen gateway certificate can and cannot do."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from secure_broker import NOT_AUTHORIZED, Probe, SecureBroker
from support import SocatLink, caller_id, wait_until

from bridge.audit import entries
from bridge.service import Bridge
from config.schema import Config, parse_config
from console.link import BridgeLink
from console.messages import BrokerStatus
from gateway.events import Event, Kind, encode_event, uuid7
from gateway.runner import Gateway


def site(tmp: Path, broker: SecureBroker, ident: str, radio: Path | None = None) -> Config:
    raw: dict[str, Any] = {"data_dir": str(tmp / "data"), "mqtt": broker.mqtt_config(ident),
                           "bridge": {"name": "center", "database_url": f"sqlite:///{tmp / 'bridge.sqlite'}"}}
    if radio is not None:
        raw["gateway"] = {"name": ident.removeprefix("gw-"), "outbox": str(tmp / f"{ident}.sqlite"),
                          "state_interval_s": 1}
        raw["channels"] = [{"name": "emergency-1", "drivers": [{"port": str(radio), "protocol": "kenwood"}],
                            "rules": [{"when": {"kind": "ptt", "transmission": "begin"}, "kind": "alert",
                                       "label": "key-up on the emergency channel"}]}]
    return parse_config(raw)


def test_an_emergency_crosses_the_secure_broker_and_is_acknowledged_from_a_console(
    tmp_path: Path, secure_broker: SecureBroker, socat_link: SocatLink, probes: Callable[..., Probe]
) -> None:
    bridge = Bridge(site(tmp_path, secure_broker, "bridge-center"))
    bridge.start()
    gateway = Gateway(site(tmp_path, secure_broker, "gw-xixing-1", socat_link.radio))
    gateway.start()
    heard: list[Any] = []
    console = BridgeLink(parse_config({"mqtt": secure_broker.mqtt_config("console-desk-1")}).mqtt, heard.append)
    console.start()
    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected and console.connected, 15,
                   "the bridge, the gateway and the console to connect with their certificates")
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "the radio port")
        wait_until(lambda: any(isinstance(m, BrokerStatus) and m.connected for m in heard), 10,
                   "the console's subscriptions")
        socat_link.write(caller_id(2))
        store = bridge.store
        assert store is not None
        wait_until(lambda: len(store.open_incidents()) == 1, 15, "the alert stored as an incident")
        incident = store.open_incidents()[0]
        assert (incident.unit, incident.gateway) == ("fleetsync:100-1002", "xixing-1")
        wait_until(lambda: any(getattr(m, "incident", None) is not None for m in heard), 10,
                   "the console to hear of the incident")

        console.send("ack", incident.id, "alice")
        wait_until(lambda: (i := store.incident(incident.id)) is not None and i.state == "acknowledged", 10,
                   "the acknowledgement")
        # The bridge asked the gateway to answer the radio (gw/xixing-1/cmd/ack_emergency), and its answer
        # came back through the gateway's outbox: the bridge may command that gateway, and hear it.

        def answered() -> bool:
            detail = store.incident_detail(incident.id)
            return detail is not None and any(h.action == "radio_ack" and h.actor == "bridge" for h in detail.history)

        wait_until(answered, 10, "the gateway's answer")
        audit = entries(store.engine)
        assert [(a.operator, a.action, a.target, a.outcome) for a in audit] == \
            [("alice", "ack", f"incident:{incident.id}", "done")]
        assert bridge.counts["rejected"] == 0
    finally:
        console.stop()
        gateway.stop()
        bridge.stop()


def test_a_stolen_gateway_certificate_speaks_only_for_that_gateway(
    tmp_path: Path, secure_broker: SecureBroker, probes: Callable[..., Probe]
) -> None:
    """The broker keeps a gateway's identity to its own topics; the bridge keeps the payload to its topic.
    Together, gw-xixing-2's certificate cannot put an alert in xixing-1's name."""
    bridge = Bridge(site(tmp_path, secure_broker, "bridge-center"))
    bridge.start()
    try:
        wait_until(lambda: bridge.connected, 15, "the bridge to connect")
        thief = probes("gw-xixing-2").connected()

        def alert(gateway: str, seq: int) -> bytes:
            at = datetime.now(UTC)
            return encode_event(Event(id=uuid7(at), seq=seq, gateway=gateway, channel="patrol-1", kind=Kind.ALERT,
                                      time=at, unit="mdc:1234", position=None, detail={"protocol": "test"}))

        assert thief.publish("gw/xixing-1/event/alert", alert("xixing-1", 1)) == NOT_AUTHORIZED
        assert thief.publish("gw/xixing-2/event/alert", alert("xixing-1", 2)) == 0  # its own topic, another's name
        assert thief.publish("gw/xixing-2/event/alert", alert("xixing-2", 3)) == 0  # what it may say
        wait_until(lambda: bridge.counts["stored"] == 1 and bridge.counts["rejected"] == 1, 10,
                   "one stored, one rejected")
        store = bridge.store
        assert store is not None
        assert [i.gateway for i in store.open_incidents()] == ["xixing-2"]
    finally:
        bridge.stop()


def test_a_console_certificate_cannot_command_a_gateway_or_forge_an_incident(
    secure_broker: SecureBroker, probes: Callable[..., Probe]
) -> None:
    gateway = probes("gw-xixing-1").connected()
    gateway.subscribe("gw/xixing-1/cmd/+", "gw/xixing-1/config")
    console = probes("console-desk-1").connected()
    console.subscribe("bridge/incident/+")
    forged = json.dumps({"point": "beacon", "value": 1})
    assert console.publish("gw/xixing-1/cmd/output", forged) == NOT_AUTHORIZED
    assert console.publish("gw/xixing-1/config", "[]", retain=True) == NOT_AUTHORIZED
    assert probes("console-desk-2").connected().publish("bridge/incident/9", "{}") == NOT_AUTHORIZED
    bridge = probes("bridge-center").connected()
    assert bridge.publish("gw/xixing-1/cmd/output", forged) == 0
    gateway.wait_for("gw/xixing-1/cmd/output")
    assert gateway.topics() == ["gw/xixing-1/cmd/output"]  # the bridge's, and only the bridge's
    assert console.topics() == []
