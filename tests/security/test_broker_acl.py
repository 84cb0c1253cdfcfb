"""The shipped secure broker configuration against a real Mosquitto: every identity can do what its role
needs, and everything that must be refused is refused (asserted as a client sees it: the PUBACK's reason
code, a connection turned away, nothing delivered to a monitor that reads everything).

Every refused publish is followed by a sentinel that the monitor receives; the broker handles publishes
one at a time and delivers to one subscriber in order, so a refused message that had got through would
have arrived before the sentinel."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable

import pytest
from secure_broker import (
    ACL,
    NOT_AUTHORIZED,
    PASSWORD,
    PASSWORD_USER,
    SENTINEL,
    Probe,
    SecureBroker,
    sentinel,
    shipped_identities,
    watch,
)

import pttbridge

Probes = Callable[..., Probe]


def test_the_shipped_acl_is_what_broker_acl_writes(capsys: pytest.CaptureFixture[str]) -> None:
    header = next(line for line in ACL.read_text().splitlines() if "pttbridge broker-acl" in line)
    argv = shlex.split(header.lstrip("# "))[1:]
    pttbridge.main(argv)
    assert capsys.readouterr().out == ACL.read_text()
    assert not [line for line in ACL.read_text().splitlines() if line.startswith("pattern")]


def test_a_gateway_publishes_its_own_topics_and_hears_its_own_commands(probes: Probes) -> None:
    monitor, bridge = watch(probes)
    gateway = probes("gw-xixing-1").connected()
    gateway.subscribe("gw/xixing-1/cmd/+", "gw/xixing-1/config")
    for topic in ("gw/xixing-1/event/alert", "gw/xixing-1/audio/0193", "gw/xixing-1/state", "gw/xixing-1/levels"):
        assert gateway.publish(topic) == 0, topic
    sentinel(monitor, bridge)
    assert {"gw/xixing-1/event/alert", "gw/xixing-1/audio/0193", "gw/xixing-1/state",
            "gw/xixing-1/levels"} <= set(monitor.topics())
    assert bridge.publish("gw/xixing-1/cmd/ack_emergency") == 0
    assert bridge.publish("gw/xixing-1/config") == 0
    gateway.wait_for("gw/xixing-1/config")
    assert gateway.topics() == ["gw/xixing-1/cmd/ack_emergency", "gw/xixing-1/config"]


def test_a_console_sends_commands_and_follows_incidents_units_and_gateways(probes: Probes) -> None:
    bridge = probes("bridge-center").connected()
    bridge.subscribe("bridge/cmd")
    console = probes("console-desk-1").connected()
    console.subscribe("bridge/incident/+", "bridge/unit/+", "gw/+/state", "gw/+/levels")
    gateway = probes("gw-xixing-2").connected()
    assert console.publish("bridge/cmd", b'{"action":"ack"}') == 0
    bridge.wait_for("bridge/cmd")
    assert bridge.publish("bridge/incident/7") == 0
    assert bridge.publish("bridge/unit/mdc:1234") == 0
    assert gateway.publish("gw/xixing-2/state") == 0
    assert gateway.publish("gw/xixing-2/levels") == 0
    console.wait_for("gw/xixing-2/levels")
    assert console.topics() == ["bridge/incident/7", "bridge/unit/mdc:1234", "gw/xixing-2/state", "gw/xixing-2/levels"]


def test_cameras_and_frigate_reach_the_bridge_by_certificate_or_password(probes: Probes) -> None:
    bridge = probes("bridge-center").connected()
    bridge.subscribe("cam/+/event", "frigate/events")
    assert probes("cam-xixing-dome").connected().publish("cam/xixing-dome/event") == 0
    by_password = probes(None, username=PASSWORD_USER, password=PASSWORD, password_port=True).connected()
    assert by_password.publish("cam/binjiang-bridge/event") == 0
    assert probes("frigate-nvr-1").connected().publish("frigate/events") == 0
    bridge.wait_for("frigate/events")
    assert bridge.topics() == ["cam/xixing-dome/event", "cam/binjiang-bridge/event", "frigate/events"]


def test_the_bridge_receives_frigates_snapshots_and_tracked_object_updates(probes: Probes) -> None:
    monitor, bridge = watch(probes)  # the monitor reads them too: the refusals below are seen not to arrive
    bridge.subscribe("frigate/+/+/snapshot", "frigate/tracked_object_update")
    nvr = probes("frigate-nvr-1").connected()
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
    assert nvr.publish("frigate/front_door/person/snapshot", jpeg) == 0
    assert nvr.publish("frigate/tracked_object_update", b'{"type": "lpr", "id": "1", "plate": "ABC123"}') == 0
    bridge.wait_for("frigate/tracked_object_update")
    assert bridge.topics() == ["frigate/front_door/person/snapshot", "frigate/tracked_object_update"]
    assert bridge.payloads("frigate/front_door/person/snapshot") == [jpeg]
    monitor.wait_for("frigate/tracked_object_update")
    assert "frigate/front_door/person/snapshot" in monitor.topics()


def test_the_bridge_reads_what_it_needs_and_publishes_incidents_units_commands_and_plans(probes: Probes) -> None:
    monitor, bridge = watch(probes)
    bridge.subscribe("gw/+/event/+", "gw/+/audio/+", "gw/+/state", "cam/+/event", "bridge/cmd")
    gateway = probes("gw-xixing-1").connected()
    for topic in ("gw/xixing-1/event/beacon", "gw/xixing-1/audio/0193", "gw/xixing-1/state"):
        gateway.publish(topic)
    probes("console-desk-2").connected().publish("bridge/cmd")
    bridge.wait_for("bridge/cmd")
    for topic in ("bridge/incident/1", "bridge/unit/aprs:BG5ABC-9", "gw/xixing-2/cmd/replay", "gw/xixing-2/config"):
        assert bridge.publish(topic) == 0, topic
    monitor.wait_for("gw/xixing-2/config")


# Who tries what, that must be refused. ``topic`` is published by ``who``; nothing may arrive anywhere.
REFUSED_PUBLISH = [
    ("gw-xixing-1", "gw/xixing-2/event/alert", "a gateway forging another gateway's alert"),
    ("gw-xixing-1", "gw/xixing-2/state", "a gateway declaring another gateway offline"),
    ("gw-xixing-1", "gw/xixing-2/audio/0193", "a gateway forging another gateway's audio"),
    ("gw-xixing-1", "gw/xixing-2/levels", "a gateway forging another gateway's levels"),
    ("gw-xixing-1", "gw/xixing-1/cmd/ack_emergency", "a gateway commanding itself"),
    ("gw-xixing-1", "gw/xixing-1/config", "a gateway writing its own channel plan"),
    ("gw-xixing-1", "bridge/cmd", "a gateway acting as an operator"),
    ("gw-xixing-1", "bridge/incident/1", "a gateway forging an incident for the consoles"),
    ("gw-xixing-1", "cam/xixing-dome/event", "a gateway posing as a camera"),
    ("console-desk-1", "gw/xixing-1/event/alert", "a console forging a gateway's alert"),
    ("console-desk-1", "gw/xixing-1/cmd/ack_emergency", "a console keying a radio behind the bridge's back"),
    ("console-desk-1", "gw/xixing-1/cmd/output", "a console switching a gateway's coil"),
    ("console-desk-1", "gw/xixing-1/config", "a console pushing a channel plan past the bridge's validation"),
    ("console-desk-1", "bridge/incident/1", "a console forging an incident"),
    ("console-desk-1", "bridge/unit/mdc:1234", "a console moving a unit"),
    ("cam-xixing-dome", "cam/xixi-wenyi-ne/event", "a camera posing as another camera"),
    ("cam-xixing-dome", "gw/xixing-1/event/alert", "a camera forging a gateway's alert"),
    ("cam-xixing-dome", "bridge/cmd", "a camera acting as an operator"),
    ("cam-xixing-dome", "frigate/events", "a camera posing as Frigate"),
    ("cam-xixing-dome", "frigate/front_door/person/snapshot", "a camera forging Frigate's snapshot"),
    ("cam-xixing-dome", "frigate/tracked_object_update", "a camera forging Frigate's recognition"),
    ("console-desk-1", "frigate/front_door/person/snapshot", "a console planting a snapshot as evidence"),
    ("console-desk-1", "frigate/tracked_object_update", "a console forging a recognised plate"),
    ("gw-xixing-1", "frigate/tracked_object_update", "a gateway forging a recognised face"),
    ("frigate-nvr-1", "cam/xixing-dome/event", "Frigate posing as a camera"),
    ("frigate-nvr-1", "gw/xixing-1/event/alert", "Frigate forging a gateway's alert"),
    ("bridge-center", "gw/xixing-1/event/alert", "the bridge forging a gateway's event"),
    ("monitor-ops", "gw/xixing-1/event/alert", "the read-only monitor publishing"),
    ("gw-rogue", "gw/rogue/event/alert", "a certificate of the site's CA whose identity the ACL does not list"),
]


@pytest.mark.parametrize(("who", "topic", "why"), REFUSED_PUBLISH, ids=[r[2] for r in REFUSED_PUBLISH])
def test_a_publish_outside_ones_role_is_refused_and_goes_nowhere(probes: Probes, who: str, topic: str,
                                                                 why: str) -> None:
    monitor, bridge = watch(probes)
    # One connection per identity (the client id is the identity): the watchers' own are reused.
    culprit = {"monitor-ops": monitor, "bridge-center": bridge}.get(who) or probes(who).connected()
    assert culprit.publish(topic, b'{"v":1}') == NOT_AUTHORIZED, why
    assert culprit.publish(topic, b'{"v":1}', retain=True) == NOT_AUTHORIZED, why
    sentinel(monitor, bridge)
    assert topic not in monitor.topics()
    assert not culprit.disconnected.is_set()  # refused, not thrown off: its own topics keep working


def test_a_password_device_is_held_to_its_own_topics_too(probes: Probes) -> None:
    monitor, bridge = watch(probes)
    camera = probes(None, username=PASSWORD_USER, password=PASSWORD, password_port=True).connected()
    assert camera.publish("cam/xixing-dome/event") == NOT_AUTHORIZED
    assert camera.publish("gw/xixing-1/event/alert") == NOT_AUTHORIZED
    sentinel(monitor, bridge)
    assert monitor.topics() == [f"{SENTINEL}0"]


@pytest.mark.parametrize(("who", "filters", "publisher", "topic"), [
    ("gw-xixing-1", ["gw/xixing-2/cmd/+", "gw/xixing-2/config", "gw/+/cmd/+", "gw/#", "#"], "bridge-center",
     "gw/xixing-2/cmd/ack_emergency"),
    ("gw-xixing-1", ["gw/+/event/+"], "gw-xixing-2", "gw/xixing-2/event/alert"),
    ("console-desk-1", ["gw/+/event/+", "gw/+/audio/+", "gw/+/cmd/+", "cam/+/event", "bridge/cmd"], "gw-xixing-1",
     "gw/xixing-1/event/alert"),
    ("console-desk-1", ["bridge/cmd"], "console-desk-2", "bridge/cmd"),
    ("cam-xixing-dome", ["#"], "bridge-center", "bridge/incident/3"),
    ("gw-rogue", ["#"], "gw-xixing-1", "gw/xixing-1/event/alert"),
], ids=["gateway-reads-another's-commands", "gateway-reads-another's-events", "console-reads-the-raw-stream",
        "console-reads-other-consoles'-commands", "camera-reads-anything", "unlisted-identity-reads-anything"])
def test_a_subscription_outside_ones_role_receives_nothing(probes: Probes, who: str, filters: list[str],
                                                           publisher: str, topic: str) -> None:
    """Mosquitto 2.0's acl_file answers every SUBSCRIBE with "granted" and checks read access on each
    message it would deliver; what matters is that nothing is delivered. Its own topic (or, for an
    identity that has none, the monitor's) is the sentinel."""
    monitor, bridge = watch(probes)
    snoop = probes(who).connected()
    codes = snoop.subscribe(*filters)
    assert all(code in (1, NOT_AUTHORIZED) for code in codes), codes
    own = {"gw-xixing-1": "gw/xixing-1/config", "console-desk-1": "bridge/incident/sentinel"}.get(who)
    if own is not None:
        snoop.subscribe(own)
    assert probes(publisher).connected().publish(topic) == 0
    if own is not None:
        assert bridge.publish(own) == 0
        snoop.wait_for(own)
        assert set(snoop.topics()) == {own}
    else:
        sentinel(monitor, bridge)
        assert snoop.topics() == []
    assert topic in monitor.topics()  # it was published, and went to those allowed to read it


def test_a_certificate_names_the_identity_whatever_username_the_client_claims(probes: Probes) -> None:
    monitor, bridge = watch(probes)
    console = probes("console-desk-1", username="bridge-center", password="anything").connected()
    assert console.publish("gw/xixing-1/cmd/ack_emergency") == NOT_AUTHORIZED
    assert console.publish("bridge/cmd") == 0
    sentinel(monitor, bridge)
    assert "gw/xixing-1/cmd/ack_emergency" not in monitor.topics()


def test_an_identity_using_the_bridges_client_id_reads_nothing_of_the_bridges_session(
    secure_broker: SecureBroker, probes: Probes
) -> None:
    """Client ids are not tied to identities (the bridge keeps two sessions under one certificate), so a
    gateway can connect with the bridge's client id and inherit its persistent session: the broker still
    checks every message against the gateway's own ACL, so nothing queued for the bridge reaches it."""
    bridge = probes("bridge-center", client_id="pttbridge-bridge-center", v5=False, clean_session=False).connected()
    bridge.subscribe("gw/+/event/+", "gw/+/state", "bridge/cmd")
    bridge.close()
    gateway = probes("gw-xixing-1").connected()
    assert gateway.publish("gw/xixing-1/event/alert", b"queued for the bridge") == 0
    intruder = probes("gw-xixing-2", client_id="pttbridge-bridge-center", v5=False, clean_session=False).connected()
    assert intruder.session_present  # it did take the bridge's session ...
    assert gateway.publish("gw/xixing-1/event/alert", b"sent while it holds it") == 0
    console = probes("console-desk-1").connected()
    assert console.publish("bridge/cmd", b"{}") == 0
    intruder.subscribe("gw/xixing-2/config")
    assert probes("bridge-center").connected().publish("gw/xixing-2/config") == 0
    intruder.wait_for("gw/xixing-2/config")
    assert intruder.topics() == ["gw/xixing-2/config"]  # ... and got only what gw-xixing-2 may read


@pytest.mark.parametrize("how", ["no certificate", "another CA's certificate", "a revoked certificate",
                                 "plain MQTT on the TLS port"])
def test_a_client_without_a_certificate_of_the_site_is_turned_away(secure_broker: SecureBroker, probes: Probes,
                                                                    how: str) -> None:
    if how == "no certificate":
        probe = probes(None)
    elif how == "another CA's certificate":
        probe = probes("gw-xixing-1", other_ca=True)
    elif how == "a revoked certificate":
        cert, _ = secure_broker.pki.cert("gw-xixing-1", stolen=True)
        ca = str(secure_broker.pki.ca)
        # Nothing is wrong with it but its revocation:
        assert subprocess.run(["openssl", "verify", "-CAfile", ca, str(cert)], capture_output=True).returncode == 0
        assert "certificate revoked" in subprocess.run(
            ["openssl", "verify", "-crl_check", "-CAfile", ca, "-CRLfile", str(ca).replace("ca.crt", "crl.pem"),
             str(cert)], capture_output=True, text=True).stderr
        probe = probes("gw-xixing-1", stolen=True)
    else:
        probe = probes(None, tls=False, username="gw-xixing-1")
    probe.refused()
    assert probe.connack is None  # never got as far as MQTT
    expected = {"no certificate": "peer did not return a certificate",
                "another CA's certificate": "certificate verify failed",
                "a revoked certificate": "certificate verify failed"}.get(how)
    if expected:
        assert expected in secure_broker.log()


@pytest.mark.parametrize("how", ["wrong password", "unknown user", "no username", "a certificate holder's name"])
def test_the_password_listener_takes_only_known_users(probes: Probes, how: str) -> None:
    username, password = {"wrong password": (PASSWORD_USER, "guess"), "unknown user": ("cam-nowhere", PASSWORD),
                          "no username": (None, None),
                          "a certificate holder's name": ("gw-xixing-1", PASSWORD)}[how]
    probe = probes(None, username=username, password=password, password_port=True)
    probe.refused()
    assert probe.connack == NOT_AUTHORIZED
    old = probes(None, username=username, password=password, password_port=True, v5=False)
    old.refused()
    assert old.connack == NOT_AUTHORIZED  # 3.1.1 says "not authorised" (5), which paho reports as 135


def test_an_oversized_message_is_dropped_by_the_broker(probes: Probes) -> None:
    """message_size_limit (4 MiB): the broker completes the QoS 1 flow and forwards nothing. A gateway
    (MQTT 3.1.1) sees an ordinary PUBACK; mosquitto 2.0.11 tells MQTT 5 clients with reason 0x95, which
    is not a PUBACK code and which paho takes for a malformed packet, so it is shown with 3.1.1 here."""
    monitor, bridge = watch(probes)
    gateway = probes("gw-xixing-1", v5=False).connected()
    clip = b"\x00" * 1_900_000  # 120 s of FLAC at 8 kHz is under this: a real clip passes
    assert gateway.publish("gw/xixing-1/audio/ok", clip) == 0
    assert gateway.publish("gw/xixing-1/audio/big", b"\x00" * (4 * 1024 * 1024 + 1)) == 0
    sentinel(monitor, bridge)
    assert "gw/xixing-1/audio/ok" in monitor.topics()
    assert "gw/xixing-1/audio/big" not in monitor.topics()


def test_a_packet_past_max_packet_size_closes_the_connection(probes: Probes) -> None:
    monitor, bridge = watch(probes)
    assert monitor.connack_props.MaximumPacketSize == 8 * 1024 * 1024  # told to every MQTT 5 client
    gateway = probes("gw-xixing-1", v5=False).connected()
    gateway.client.publish("pttbridge/v1/gw/xixing-1/audio/huge", b"\x00" * (8 * 1024 * 1024 + 1), qos=1)
    gateway.disconnected.wait(15)
    assert gateway.disconnected.is_set()
    sentinel(monitor, bridge)
    assert "gw/xixing-1/audio/huge" not in monitor.topics()


def test_every_identity_of_the_shipped_acl_has_a_role() -> None:
    idents = shipped_identities()
    assert {i.split("-", 1)[0] for i in idents} == {"bridge", "gw", "console", "cam", "frigate", "monitor"}
    assert len(idents) == len(set(idents))
