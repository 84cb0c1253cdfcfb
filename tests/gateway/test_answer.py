"""What the gateway transmits to acknowledge a unit's emergency, checked by our own decoders; and the
gateway answering a bridge's ack_emergency command through a real Mosquitto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import soundfile
from support import Listener, Mosquitto, free_port, wait_until

from config.schema import parse_config
from drivers.audio.fleetsync import FleetSyncDecoder
from drivers.audio.mdc1200 import Mdc1200Decoder
from gateway.answer import AnswerError, emergency_ack_burst
from gateway.events import Decoded
from gateway.runner import Gateway

NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def decoded(decoder: Mdc1200Decoder | FleetSyncDecoder, x: np.ndarray) -> list[Decoded]:
    out = decoder.feed(x, NOW) + decoder.flush(NOW)
    return [d for d in out if isinstance(d, Decoded)]


@pytest.mark.parametrize("rate", [8000, 48000])
def test_the_mdc1200_answer_is_an_emergency_ack_to_that_unit(rate: int) -> None:
    [ack] = decoded(Mdc1200Decoder(rate), emergency_ack_burst("mdc:0A1B", rate))
    assert ack.unit == "mdc:0A1B" and ack.detail["name"] == "emergency_ack" and ack.detail["op"] == 0x20


@pytest.mark.parametrize(("signalling", "version", "baud"), [
    (None, 1, 1200), ({"version": 1, "baud": 1200}, 1, 1200), ({"version": 2, "baud": 2400}, 2, 2400),
    ({"version": 2, "baud": 1200}, 2, 1200), ({"version": "x", "baud": 9600}, 1, 1200)])
def test_the_fleetsync_answer_is_an_acknowledge_to_that_unit_the_way_it_signalled(
    signalling: dict[str, object] | None, version: int, baud: int
) -> None:
    [ack] = decoded(FleetSyncDecoder(48000), emergency_ack_burst("fleetsync:100-1001", 48000, signalling))
    assert ack.detail["name"] == "acknowledge"
    assert (ack.detail["to_fleet"], ack.detail["to_unit"]) == (100, 1001)
    assert (ack.detail["version"], ack.detail["baud"]) == (version, baud)


@pytest.mark.parametrize(("unit", "why"), [
    ("dtmf:1234", "dtmf radios have no emergency acknowledgement"),
    ("aprs:BG5ABC-9", "aprs radios have no"),
    ("mdc:12345", "4 hex digits"),
    ("fleetsync:100-0001", "1000..5094"),
    ("fleetsync:1001", "FFF-UUUU"),
    ("fleetsync:١٠٠-١٠٠١", "FFF-UUUU"),  # digits a radio does not read
])
def test_units_that_cannot_be_answered_say_why(unit: str, why: str) -> None:
    with pytest.raises(AnswerError, match=why):
        emergency_ack_burst(unit, 8000)


def test_the_gateway_answers_a_command_and_reports_the_result(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """A bridge's ack_emergency for a FleetSync II unit: transmitted (into a WAV dry run, VOX), and the
    result published as an io event; a command for a channel without a transmitter is answered too."""
    config = parse_config({
        "gateway": {"name": "gw-tx", "outbox": str(tmp_path / "outbox.sqlite")},
        "mqtt": {"url": mosquitto.url},
        "channels": [
            {"name": "patrol-8", "transmit": {"device": f"wav:{tmp_path / 'tx.wav'}", "rate": 16000,
                                              "lead_in_ms": 0, "tail_ms": 0}},
            {"name": "patrol-9"},
        ],
    })
    listener = Listener(mosquitto.url, "pttbridge/v1/gw/gw-tx/event/io")
    gateway = Gateway(config)
    gateway.start()
    bridge = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-bridge-{free_port()}")
    bridge.connect("127.0.0.1", mosquitto.port)
    bridge.loop_start()
    try:
        # Connected means subscribed (to cmd/+ among others).
        wait_until(lambda: gateway.publisher.connected and bridge.is_connected(), 10, "the gateway to connect")
        for incident, channel in ((7, "patrol-8"), (8, "patrol-9")):
            command = {"incident": incident, "unit": "fleetsync:100-1001", "channel": channel, "operator": "alice",
                       "request": f"r{incident}", "signalling": {"protocol": "fleetsync", "version": 2, "baud": 2400}}
            bridge.publish("pttbridge/v1/gw/gw-tx/cmd/ack_emergency", json.dumps(command), qos=1).wait_for_publish(5)
        wait_until(lambda: len(listener.events()) == 2, 10, "both results")
        results = {e["detail"]["incident"]: e for e in listener.events()}
        assert results[7]["detail"]["result"] == "sent" and results[7]["unit"] == "fleetsync:100-1001"
        assert results[7]["detail"]["request"] == "r7" and results[7]["detail"]["operator"] == "alice"
        assert results[8]["detail"]["result"] == "no_transmit_path"
        assert results[8]["channel"] == "patrol-9"
        x, rate = soundfile.read(tmp_path / "tx.wav", dtype="float32")
        [ack] = decoded(FleetSyncDecoder(rate), x)
        assert (ack.detail["to_fleet"], ack.detail["to_unit"], ack.detail["version"]) == (100, 1001, 2)
        assert gateway.health()["transmitters"]["patrol-8"]["sent"] == 1
    finally:
        bridge.loop_stop()
        bridge.disconnect()
        gateway.stop()
        listener.close()


def test_a_receive_only_channel_never_keys_its_radio(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """A receive-only channel (CHIRP's Duplex 'off') refuses every transmission, even with a transmit
    section: the gateway opens no PTT for it, an acknowledgement for it is answered no_transmit_path with
    the reason, and a plan that makes a transmitting channel receive-only takes its transmitter away."""
    def transmit(name: str) -> dict[str, object]:
        return {"device": f"wav:{tmp_path / name}", "rate": 16000, "lead_in_ms": 0, "tail_ms": 0}

    channels: list[dict[str, object]] = [
        {"name": "marine-16", "rx_mhz": 156.8, "receive_only": True, "transmit": transmit("marine-16.wav")},
        {"name": "patrol-8", "rx_mhz": 146.52, "transmit": transmit("patrol-8.wav")},
    ]
    config = parse_config({"gateway": {"name": "gw-rx", "outbox": str(tmp_path / "outbox.sqlite")},
                           "mqtt": {"url": mosquitto.url}, "channels": channels})
    listener = Listener(mosquitto.url, "pttbridge/v1/gw/gw-rx/#")
    gateway = Gateway(config)
    gateway.start()
    try:
        wait_until(lambda: listener.payloads("/state"), 10, "the gateway's state (the listener is subscribed)")
        assert list(gateway.health()["transmitters"]) == ["patrol-8"]

        def ack(incident: int, channel: str) -> None:
            gateway._command("ack_emergency", {"incident": incident, "unit": "mdc:0A1B", "channel": channel,
                                               "operator": "alice", "request": f"r{incident}"})

        ack(1, "marine-16")
        wait_until(lambda: len(listener.events()) == 1, 10, "the first answer")
        assert gateway.apply_plan({"version": 2, "channels": [channels[0], {**channels[1], "receive_only": True}]})
        assert gateway.health()["transmitters"] == {}
        ack(2, "patrol-8")
        wait_until(lambda: len(listener.events()) == 2, 10, "the second answer")
        results = {e["detail"]["incident"]: e["detail"] for e in listener.events()}
        assert (results[1]["result"], results[1]["reason"]) == (
            "no_transmit_path", "channel marine-16 is receive-only: the radio does not transmit there")
        assert (results[2]["result"], results[2]["reason"]) == (
            "no_transmit_path", "channel patrol-8 is receive-only: the radio does not transmit there")
        assert not (tmp_path / "marine-16.wav").exists() and not (tmp_path / "patrol-8.wav").exists()
    finally:
        gateway.stop()
        listener.close()
