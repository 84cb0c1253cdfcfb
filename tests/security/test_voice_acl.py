"""Live voice under the shipped secure broker and ACL: the listen and talk roles of consoles
(``pttbridge broker-acl --listen ... --talk ...``), asserted as a client sees them (PUBACK reason codes,
nothing delivered), and a real gateway on its certificate refusing to key for a console without the
talk role, because the broker never hands it that console's floor request or audio."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from secure_broker import NOT_AUTHORIZED, Probe, SecureBroker, sentinel, watch
from support import wait_until

import pttbridge
from config.schema import parse_config
from gateway.runner import Gateway
from gateway.voice import FloorAnswer, FloorRequest, ListenLease
from security.acl import Site
from security.identities import SecurityError

Probes = Callable[..., Probe]
VOICE = "gw/xixing-1/voice/patrol-1"


def test_roles_name_consoles_of_the_site(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SecurityError, match="--talk desk-9: not one of the consoles"):
        Site(consoles=["desk-1"], talk=["desk-9"])
    with pytest.raises(SystemExit, match="--listen x: not one of the consoles"):
        pttbridge.main(["broker-acl", "--console", "desk-1", "--listen", "x"])
    pttbridge.main(["broker-acl", "--gateway", "g", "--console", "a,b,c", "--listen", "b", "--talk", "a"])
    text = capsys.readouterr().out
    blocks = {b.split("\n")[1]: b for b in text.split("\n\n") if b.startswith("# console")}
    assert "voice/+/tx" in blocks["user console-a"] and "cmd/remote_monitor" in blocks["user console-a"]
    assert "voice/+/rx" in blocks["user console-b"] and "voice/+/tx" not in blocks["user console-b"]
    assert "voice/+/rx" not in blocks["user console-c"] and "voice/+/state" in blocks["user console-c"]
    with pytest.raises(SecurityError, match="--patch x: not one of the gateways"):
        Site(gateways=["g"], patching=["x"])
    site = Site(gateways=["g", "h"], patching=["g"])
    assert ("write", "pttbridge/v1/gw/+/voice/+/tx") in site.rules("gw-g")  # joins others' channels to its patches
    assert not [r for r in site.rules("gw-h") if "gw/+/" in r[1]]  # keeps to its own


def test_a_talking_console_reaches_the_gateway_and_hears_it(probes: Probes) -> None:
    gateway = probes("gw-xixing-1").connected()
    gateway.subscribe(f"{VOICE}/listen", f"{VOICE}/floor", f"{VOICE}/tx", "gw/xixing-1/cmd/+")
    desk = probes("console-desk-1").connected()
    desk.subscribe(f"{VOICE}/rx", f"{VOICE}/state", f"{VOICE}/floor/answer")
    for leaf in ("listen", "floor", "tx"):
        assert desk.publish(f"{VOICE}/{leaf}") == 0, leaf
    assert desk.publish("gw/xixing-1/cmd/remote_monitor") == 0
    assert desk.publish("gw/xixing-1/cmd/patch") == 0
    gateway.wait_for("gw/xixing-1/cmd/patch")
    assert gateway.topics() == [f"{VOICE}/listen", f"{VOICE}/floor", f"{VOICE}/tx", "gw/xixing-1/cmd/remote_monitor",
                                "gw/xixing-1/cmd/patch"]
    for leaf in ("rx", "state", "floor/answer"):
        assert gateway.publish(f"{VOICE}/{leaf}") == 0, leaf
    desk.wait_for(f"{VOICE}/floor/answer")
    assert desk.topics() == [f"{VOICE}/rx", f"{VOICE}/state", f"{VOICE}/floor/answer"]


REFUSED = [
    ("console-desk-2", f"{VOICE}/floor", "a listening console asking for the floor"),
    ("console-desk-2", f"{VOICE}/tx", "a listening console sending audio to transmit"),
    ("console-desk-2", "gw/xixing-1/cmd/remote_monitor", "a listening console keying a unit's microphone"),
    ("console-desk-2", "gw/xixing-1/cmd/patch", "a listening console patching channels"),
    ("console-desk-3", f"{VOICE}/listen", "a console without the listen role asking for audio"),
    ("console-desk-3", f"{VOICE}/tx", "a console without roles sending audio to transmit"),
    ("console-desk-1", "gw/xixing-1/cmd/ack_emergency", "a talking console commanding an acknowledgement"),
    ("console-desk-1", f"{VOICE}/rx", "a console forging a channel's receive audio"),
    ("console-desk-1", f"{VOICE}/floor/answer", "a console forging a floor grant"),
    ("console-desk-1", f"{VOICE}/state", "a console forging a channel's state"),
    ("gw-xixing-2", f"{VOICE}/rx", "a gateway forging another gateway's audio"),
    ("gw-xixing-2", f"{VOICE}/tx", "a gateway transmitting on another gateway's channel"),
    ("gw-xixing-2", "gw/xixing-2/voice/patrol-1/tx", "a gateway feeding its own transmitter"),
    ("cam-xixing-dome", f"{VOICE}/floor", "a camera asking for the floor"),
]


@pytest.mark.parametrize(("who", "topic", "why"), REFUSED, ids=[r[2] for r in REFUSED])
def test_voice_outside_ones_role_is_refused_and_goes_nowhere(probes: Probes, who: str, topic: str, why: str) -> None:
    monitor, bridge = watch(probes)
    culprit = probes(who).connected()
    assert culprit.publish(topic, b"PV\x01\x00\x00") == NOT_AUTHORIZED, why
    sentinel(monitor, bridge)
    assert topic not in monitor.topics()


@pytest.mark.parametrize(("who", "filters"), [
    ("console-desk-3", [f"{VOICE}/rx", "gw/+/voice/+/rx"]),
    ("console-desk-2", [f"{VOICE}/floor/answer", f"{VOICE}/tx"]),
    ("gw-xixing-2", ["gw/xixing-1/voice/+/tx", "gw/xixing-1/voice/+/floor"]),
], ids=["no-listen-role-hears-nothing", "listener-reads-no-grants-nor-others'-talk", "gateway-reads-another's-tx"])
def test_voice_is_delivered_only_to_its_roles(probes: Probes, who: str, filters: list[str]) -> None:
    monitor, bridge = watch(probes)
    snoop = probes(who).connected()
    snoop.subscribe(*filters)
    talker = probes("console-desk-1").connected()
    gateway = probes("gw-xixing-1").connected()
    assert gateway.publish(f"{VOICE}/rx") == 0 and gateway.publish(f"{VOICE}/floor/answer") == 0
    assert talker.publish(f"{VOICE}/tx") == 0 and talker.publish(f"{VOICE}/floor") == 0
    sentinel(monitor, bridge)
    assert snoop.topics() == []


def test_a_real_gateway_keys_only_for_the_talk_role(secure_broker: SecureBroker, probes: Probes,
                                                    tmp_path: Path) -> None:
    """gw-xixing-1 on its certificate with a channel that transmits (a WAV dry run): desk-2 (listen only)
    asks for the floor and is never answered (the broker refused its request; the gateway never saw it,
    nothing keyed); desk-2's lease works; desk-1 (talk) is granted."""
    config = parse_config({
        "gateway": {"name": "xixing-1", "outbox": str(tmp_path / "outbox.sqlite")},
        "mqtt": secure_broker.mqtt_config("gw-xixing-1"),
        "channels": [{"name": "patrol-1", "transmit": {"device": f"wav:{tmp_path / 'tx.wav'}", "lead_in_ms": 0}}],
    })
    gateway = Gateway(config)
    gateway.start()
    try:
        wait_until(gateway.voice.subscribed.is_set, 15, "the gateway's voice connection")
        talker, listener = probes("console-desk-1").connected(), probes("console-desk-2").connected()
        for desk in (talker, listener):
            desk.subscribe(f"{VOICE}/state", f"{VOICE}/floor/answer")
        assert listener.publish(f"{VOICE}/floor", FloorRequest("desk-2", "bob", "b1").to_json()) == NOT_AUTHORIZED
        assert listener.publish(f"{VOICE}/listen", ListenLease("desk-2", "bob", 10).to_json()) == 0
        wait_until(lambda: gateway.voice.channels["patrol-1"].listeners(gateway.voice.clock()) == 1, 10, "the lease")
        assert talker.publish(f"{VOICE}/floor", FloorRequest("desk-1", "alice", "a1").to_json()) == 0
        talker.wait_for(f"{VOICE}/floor/answer")
        [answer] = [FloorAnswer.from_json(p) for p in talker.payloads(f"{VOICE}/floor/answer")]
        assert (answer.request, answer.result) == ("a1", "granted")
        assert listener.topics().count(f"{VOICE}/floor/answer") == 0  # a listener reads no grants
        assert gateway.health()["voice"]["refused"] == {}  # the gateway never saw desk-2's request
        assert talker.publish(f"{VOICE}/floor", json.dumps({"console": "desk-1", "operator": "alice",
                                                            "request": "a2", "action": "release"})) == 0
        wait_until(lambda: gateway.voice.channels["patrol-1"].talk is None, 10, "released")
    finally:
        gateway.stop()
