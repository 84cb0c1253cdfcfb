"""A channel plan reaches a running gateway (tests the issue's "a channel plan edited in the console
reaches a running gateway, which starts decoding on the new channel"): a real Mosquitto, a bridge, and
audio played into a PulseAudio null sink that the gateway captures through PortAudio.

The recording carries a DTMF emergency code and then a 5-tone ID. The 5-tone decoder runs all along, so
its ID tells that the recording went by; the DTMF emergency is heard only once a plan adds the decoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from support import Listener, Mosquitto, PulseNullSink, free_port, read_recording, recording, wait_until

from bridge.service import Bridge
from config.schema import Config, parse_config
from gateway.runner import Gateway

RULES = [{"match": {"digits": r"\*911\*(\d{4})#"}, "kind": "alert", "unit": "dtmf:{1}", "label": "DTMF emergency"}]


def channel(decoders: list[str]) -> dict[str, Any]:
    return {"name": "patrol-3", "rx_mhz": 146.52, "mode": "NFM",
            "drivers": [{"type": "audio", "device": "pulse", "rate": 48000, "decoders": decoders,
                         "options": {"selcall": {"standard": "ZVEI1"}}}],
            "rules": RULES}


def send_plan(url: str, channels: list[dict[str, Any]]) -> None:
    """As the console does: a ``plan`` command to the bridge."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-console-{free_port()}")
    client.connect("127.0.0.1", int(url.rsplit(":", 1)[1]))
    client.loop_start()
    body = {"action": "plan", "gateway": "gw-plan", "channels": channels, "operator": "tech-anna"}
    client.publish("pttbridge/v1/bridge/cmd", json.dumps(body), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def states(listener: Listener) -> list[dict[str, Any]]:
    return [s for s in listener.payloads("/state") if s.get("online")]


def kinds(listener: Listener) -> list[tuple[str, str]]:
    return [(e["kind"], e["unit"]) for e in listener.events()]


def test_a_plan_from_the_bridge_changes_what_a_running_gateway_decodes(
    tmp_path: Path, mosquitto: Mosquitto, pulse_null_sink: PulseNullSink
) -> None:
    samples, rate = read_recording(recording(tmp_path / "radio.wav"))
    config: Config = parse_config({
        "data_dir": str(tmp_path / "data"),
        "gateway": {"name": "gw-plan", "outbox": str(tmp_path / "gw" / "outbox.sqlite"), "state_interval_s": 1},
        "mqtt": {"url": mosquitto.url},
        "bridge": {"database_url": f"sqlite:///{tmp_path / 'bridge.sqlite'}"},
        "channels": [channel(["selcall"])],  # no DTMF decoder yet
    })
    events = Listener(mosquitto.url, "pttbridge/v1/gw/+/event/#")
    state = Listener(mosquitto.url, "pttbridge/v1/gw/gw-plan/state", persistent=False)
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()

    def opened(gw: Gateway) -> bool:
        return bool(gw.drivers) and gw.drivers[0][1].snapshot()["state"] == "open"

    def play_and_hear(gw: Gateway, ids: int) -> None:
        wait_until(lambda: opened(gw), 10, "the device to open")
        pulse_null_sink.play(samples, rate)
        wait_until(lambda: kinds(events).count(("ptt", "zvei1:12345")) >= ids, 20, f"5-tone ID number {ids}")
        pulse_null_sink.wait()

    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected, 10, "both to connect")
        assert gateway.plan_version is None  # the configuration file's channels

        # Before the change: the recording goes by, its 5-tone ID is heard, its DTMF emergency is not.
        play_and_hear(gateway, 1)
        assert kinds(events) == [("ptt", "zvei1:12345")]

        # The technician adds the DTMF decoder; the bridge stores version 1 and sends it to the gateway.
        send_plan(mosquitto.url, [channel(["dtmf", "selcall"])])
        wait_until(lambda: any(s.get("plan_version") == 1 for s in states(state)), 15, "the gateway to run v1")
        assert gateway.plan_version == 1 and gateway.plan_error is None
        play_and_hear(gateway, 2)
        wait_until(lambda: ("alert", "dtmf:1234") in kinds(events), 10, "the DTMF emergency")
        assert kinds(events) == [("ptt", "zvei1:12345"), ("alert", "dtmf:1234"), ("ptt", "zvei1:12345")]
        alert = events.events()[1]
        assert alert["channel"] == "patrol-3" and alert["detail"]["rule"] == "DTMF emergency"

        # A plan the gateway cannot run (a decoder it does not have) is refused; v1 keeps running.
        running = gateway.drivers[0][1]
        send_plan(mosquitto.url, [channel(["dtmf", "selcall", "no-such-decoder"])])
        wait_until(lambda: any(s.get("plan_error") for s in states(state)), 15, "the refusal in the state")
        refused = [s for s in states(state) if s.get("plan_error")][-1]
        assert refused["plan_version"] == 1
        assert "channels[0].drivers[0].decoders" in refused["plan_error"]
        assert "no-such-decoder" in refused["plan_error"]
        assert gateway.drivers[0][1] is running and running.snapshot()["state"] == "open"
        assert bridge.plans is not None and [p.version for p in bridge.plans.history("gw-plan")] == [2, 1]
    finally:
        gateway.stop()
        bridge.stop()

    # Restarted while the bridge is away, the gateway starts from the plan it kept: DTMF and all.
    gateway = Gateway(config)
    assert gateway.plan_version == 1
    assert gateway.drivers[0][1].snapshot()["radios"]["patrol-3/audio"]["decoders"] == ["dtmf", "selcall"]
    gateway.start()
    try:
        play_and_hear(gateway, 3)
        wait_until(lambda: kinds(events).count(("alert", "dtmf:1234")) == 2, 10, "the DTMF emergency again")
    finally:
        gateway.stop()
        events.close()
        state.close()
