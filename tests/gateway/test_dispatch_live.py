"""Dispatch to the radio end to end, every part real: commands arrive over Mosquitto as the bridge sends
them; the gateway keys PTT (RTS of a serial device server, or a coil of a Modbus I/O module, each a real
process watched from the other side) and transmits into a PulseAudio sink, from which our own decoders
read the FleetSync text and the MDC-1200 call alert and the announcement is measured; an APRS message
goes out through a Dire Wolf TNC and the unit's ack, played into Dire Wolf as audio, makes it acked; a
Kenwood radio's data port is a pseudo-terminal; bad commands each get their answer."""

from __future__ import annotations

import json
import os
import queue
import re
import select
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import (
    DeviceServer,
    DireWolf,
    Listener,
    Mosquitto,
    PulseNullSink,
    SocatLink,
    afsk_audio,
    free_port,
    ptt_keyed_by,
    wait_until,
)

from config.schema import parse_config
from drivers.audio.fleetsync import FleetSyncDecoder
from drivers.audio.mdc1200 import Mdc1200Decoder
from gateway.events import Decoded
from gateway.runner import Gateway
from gateway.speech import speak

RATE = 48000
SPEECH = "Case one two three four. Street stall at Wenyi Road and Gudun Road. Accept within five minutes."


class Bridge:
    """The bridge's side of the wire, as far as these tests need it: commands out, reports in."""

    def __init__(self, broker: Mosquitto, gateway: str) -> None:
        self.prefix = f"pttbridge/v1/gw/{gateway}"
        self.listener = Listener(broker.url, f"{self.prefix}/#")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-bridge-{free_port()}")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def ready(self) -> None:
        """The gateway's state has come: it subscribed to its commands before it published it."""
        wait_until(lambda: bool(self.listener.payloads("/state")), 15, "the gateway's state")

    def send(self, verb: str, body: dict[str, Any] | bytes) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body)
        self.client.publish(f"{self.prefix}/cmd/{verb}", payload, qos=1).wait_for_publish(5)

    def reports(self, request: str) -> list[dict[str, Any]]:
        return [e["detail"] for e in sorted(self.listener.events(), key=lambda e: e["seq"])
                if e["kind"] == "io" and e["detail"].get("request") == request]

    def wait(self, request: str, n: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.reports(request)) >= n, timeout, f"{n} report(s) of {request}")
        return self.reports(request)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.listener.close()


def voiced(x: np.ndarray, rate: int) -> np.ndarray:
    """Which 20 ms frames carry speech energy (over -40 dBFS)."""
    n = rate // 50
    frames = x[: x.size // n * n].reshape(-1, n).astype(np.float64)
    speaking: np.ndarray = np.sqrt(np.mean(frames**2, axis=1)) > 0.01
    return speaking


def span_s(mask: np.ndarray) -> float:
    on = np.flatnonzero(mask)
    return float((on[-1] - on[0] + 1) * 0.02) if on.size else 0.0


@pytest.mark.parametrize("ptt", ["serial", "modbus"])
def test_a_dispatch_over_mosquitto_goes_on_the_air_as_the_unit_understands_it(
    ptt: str, tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    drivers, keying, io_module = ptt_keyed_by(ptt, tmp_path, device_server)
    config = parse_config({
        "gateway": {"name": "gw-live", "outbox": str(tmp_path / "outbox.sqlite"), "state_interval_s": 1},
        "mqtt": {"url": mosquitto.url},
        "channels": [{"name": "patrol-7", "drivers": drivers,
                      "transmit": {"device": pulse_radio.device, "rate": RATE, "lead_in_ms": 250, "tail_ms": 100,
                                   "timeout_s": 30, "ptt": keying},
                      "dispatch": {"mdc_id": "0001", "fleetsync_id": "100-1000", "language": "en"}}],
    })
    gateway = Gateway(config)
    gateway.start()
    bridge = Bridge(mosquitto, "gw-live")
    on_air = pulse_radio.record_tx()
    try:
        bridge.ready()
        wait_until(lambda: on_air.samples().size > RATE // 5, 10, "the transmit sink's recording to run")
        if io_module is not None:
            wait_until(lambda: gateway.drivers[0][1].snapshot()["state"] == "open", 10, "the I/O module")
        base = {"case": 1234, "channel": "patrol-7", "operator": "alice"}
        # (a) a FleetSync unit: a short text message over the air
        bridge.send("dispatch", {**base, "request": "fs", "unit": "fleetsync:100-1001",
                                 "text": "CASE 1234 STALL WENYI/GUDUN 5MIN", "paths": ["fleetsync_message"]})
        [fs] = bridge.wait("fs")
        assert (fs["path"], fs["result"], fs["unit"], fs["case"]) == ("fleetsync_message", "sent",
                                                                      "fleetsync:100-1001", 1234)
        # (b) + (c) an MDC-1200 unit: the call alert, then the case spoken
        bridge.send("dispatch", {**base, "request": "mdc", "unit": "mdc:1234", "text": "CASE 1234",
                                 "speech": {"text": SPEECH, "language": "en"}})
        page, spoken = bridge.wait("mdc", 2)
        assert [(r["path"], r["result"]) for r in (page, spoken)] == [("mdc_call_alert", "sent"),
                                                                        ("announcement", "sent")]
        assert spoken["keyed_s"] >= spoken["audio_s"] + 0.35  # lead-in and tail around the speech
        recorded = on_air.samples().size  # the tail has been played; let the recording run past it
        wait_until(lambda: on_air.samples().size > recorded + RATE // 2, 10, "the recording past the tail")
        heard = on_air.samples()
    finally:
        on_air.stop()
        bridge.close()
        gateway.stop()
    try:
        # PTT, seen from the other side: keyed three times, released every time
        if io_module is None:
            rts = device_server.rts()
            changes = [r for i, r in enumerate(rts) if i == 0 or r != rts[i - 1]]  # closing the port repeats 0
            assert changes == ["RTS 0"] + ["RTS 1", "RTS 0"] * 3, rts
        else:
            deadline = time.monotonic() + 10
            while io_module.seen.count("write co 4 0") < 3 and time.monotonic() < deadline:
                try:
                    io_module.seen.append(io_module.lines.get(timeout=0.5))
                except queue.Empty:
                    pass
            assert [s for s in io_module.seen if s.startswith("write")] == ["write co 4 1", "write co 4 0"] * 3
            assert device_server.rts() == []
    finally:
        if io_module is not None:
            io_module.stop()

    now = datetime.now(UTC)
    decoder = FleetSyncDecoder(RATE)
    fleetsync = [d for d in decoder.feed(heard, now) + decoder.flush(now) if isinstance(d, Decoded)]
    assert [(d.detail["name"], d.detail["text"], d.detail["to_fleet"], d.detail["to_unit"], d.unit)
            for d in fleetsync] == [("message", "CASE 1234 STALL WENYI/GUDUN 5MIN", 100, 1001, "fleetsync:100-1000")]
    mdc = Mdc1200Decoder(RATE)
    [call] = [d for d in mdc.feed(heard, now) + mdc.flush(now) if isinstance(d, Decoded)]
    assert (call.detail["name"], call.detail["target_id"], call.unit) == ("call_alert", "1234", "mdc:0001")
    # the announcement: speech energy after the call alert, as long as the speech itself
    after = heard[round((call.detail["offset_s"] + 0.4) * RATE):]
    expected, rate = speak(SPEECH, "en", wpm=150, level=0.5)
    assert abs(spoken["audio_s"] - expected.size / rate) < 0.01
    assert abs(span_s(voiced(after, RATE)) - span_s(voiced(expected, rate))) < 0.3


def test_an_aprs_dispatch_through_a_dire_wolf_tnc_is_acked_by_the_unit(tmp_path: Path, mosquitto: Mosquitto) -> None:
    tnc = DireWolf(tmp_path)
    tnc.start()
    config = parse_config({
        "gateway": {"name": "gw-aprs", "outbox": str(tmp_path / "outbox.sqlite"), "state_interval_s": 1},
        "mqtt": {"url": mosquitto.url},
        "channels": [{"name": "aprs", "drivers": [{"port": tnc.url, "protocol": "kiss"}],
                      "dispatch": {"aprs_callsign": "BG5ZZZ-10", "aprs_retry_s": [20, 20]}}],
    })
    gateway = Gateway(config)
    gateway.start()
    bridge = Bridge(mosquitto, "gw-aprs")
    log = tmp_path / f"direwolf-{tnc.port}.log"
    try:
        bridge.ready()
        wait_until(lambda: gateway.drivers[0][1].snapshot()["state"] == "open", 10, "the KISS TCP connection")
        bridge.send("dispatch", {"request": "ap", "case": 8, "unit": "aprs:BG5ABC-9", "channel": "aprs",
                                 "text": "CASE 8 STALL AT WENYI RD", "operator": "carol"})
        # Dire Wolf transmits it: its log shows the frame it sent, message id and all
        sent = re.compile(r"\[0L\] BG5ZZZ-10>APZPTB,WIDE1-1::BG5ABC-9 :CASE 8 STALL AT WENYI RD\{(\w+)")
        wait_until(lambda: bool(sent.search(log.read_text(errors="replace"))), 15, "Dire Wolf to transmit")
        match = sent.search(log.read_text(errors="replace"))
        assert match is not None
        message_id = match[1]
        # the unit's radio acks; its ack reaches the gateway through Dire Wolf's demodulator
        tnc.play(afsk_audio([f"BG5ABC-9>APDW16::BG5ZZZ-10:ack{message_id}".encode()], tmp_path))
        [report] = bridge.wait("ap", 1, 20)
        assert (report["path"], report["result"], report["acked"], report["message_id"], report["tries"]) == (
            "aprs_message", "acked", True, message_id, 1)
        assert report["reason"] == f"BG5ABC-9 acknowledged message {message_id}"
    finally:
        bridge.close()
        gateway.stop()
        tnc.stop()


def test_a_kenwood_data_port_dispatch_and_bad_commands_over_mosquitto(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink
) -> None:
    config = parse_config({
        "gateway": {"name": "gw-kw", "outbox": str(tmp_path / "outbox.sqlite"), "state_interval_s": 1},
        "mqtt": {"url": mosquitto.url},
        "channels": [{"name": "patrol-8", "drivers": [{"port": str(socat_link.radio), "protocol": "kenwood"}]},
                     {"name": "marine-16", "receive_only": True}],
    })
    gateway = Gateway(config)
    gateway.start()
    bridge = Bridge(mosquitto, "gw-kw")
    radio = os.open(socat_link.feed, os.O_RDWR | os.O_NOCTTY)
    try:
        bridge.ready()
        wait_until(lambda: gateway.drivers[0][1].snapshot()["state"] == "open", 10, "the data port")
        good = {"case": 21, "unit": "fleetsync:100-1001", "channel": "patrol-8", "text": "CASE 21 ACCEPT",
                "operator": "dan"}
        bridge.send("dispatch", b"this is not JSON")  # logged with its bytes and dropped: it names no request
        bridge.send("dispatch", {**good, "request": "bad-case", "case": "21"})
        bridge.send("dispatch", {**good, "request": "rx-only", "channel": "marine-16"})
        bridge.send("dispatch", {**good, "request": "no-path", "paths": ["teleport"]})
        bridge.send("radio_check", {**good, "request": "no-way", "unit": "dtmf:1234"})
        assert bridge.wait("bad-case")[0]["reason"].startswith("case: expected the case number")
        assert [(r["path"], r["result"]) for r in bridge.wait("rx-only")] == [(None, "no_transmit_path")]
        assert [(r["path"], r["result"]) for r in bridge.wait("no-path")] == [("teleport", "failed")]
        [no_way] = bridge.wait("no-way")
        assert (no_way["command"], no_way["result"]) == ("radio_check", "no_transmit_path")
        # (e) and the gateway still sends a good one: the frame on the radio's port, the radio's reply
        bridge.send("dispatch", {**good, "request": "kw"})
        frame = b""
        deadline = time.monotonic() + 10
        while not frame.endswith(b"\x03") and time.monotonic() < deadline:
            if select.select([radio], [], [], 0.5)[0]:
                frame += os.read(radio, 256)
        assert frame == b"\x02F1001001CASE 21 ACCEPT\x03"
        os.write(radio, b"\x020\x03")
        [report] = bridge.wait("kw")
        assert (report["path"], report["result"], report["acked"], report["reason"]) == (
            "kenwood_message", "acked", True, "the radio reports fleetsync:100-1001 acknowledged")
        # every report is an io event of its channel (or of the gateway), with no unit heard
        events = [e for e in bridge.listener.events() if e["kind"] == "io"]
        assert all(e["unit"] is None for e in events)
        assert {e["channel"] for e in events} == {"gateway", "patrol-8", "marine-16"}
    finally:
        os.close(radio)
        bridge.close()
        gateway.stop()
