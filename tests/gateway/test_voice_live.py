"""Live voice through a real gateway, every part real: PulseAudio null sinks as the radio's receive and
transmit audio, a real Mosquitto, PTT on a serial device server's RTS (RFC 2217) and a Modbus server's
coil, and desks that are real MQTT clients speaking the wire format (tests/voice_desk.py).
What comes out is checked by this project's own decoders (DTMF, MDC-1200)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.io import wavfile
from support import DeviceServer, Listener, Mosquitto, PulseNullSink, ptt_keyed_by, wait_until
from voice_desk import RATE, Desk, decode_frames, to_rate

from config.schema import parse_config
from drivers.audio import mdc1200
from drivers.audio.dtmf import DtmfDecoder, dtmf_tones
from gateway.events import Decoded, Kind
from gateway.runner import Gateway
from gateway.voice import Flag, VoiceFrame

GW = "gw-voice"
NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def dtmf_heard(x: np.ndarray, rate: int = RATE) -> list[str]:
    decoder = DtmfDecoder(rate=8000)
    out = decoder.feed(to_rate(x, rate, 8000), NOW) + decoder.flush(NOW)
    return [o.detail["digits"] for o in out if isinstance(o, Decoded) and o.kind == Kind.STATUS]


def speech(tmp_path: Path, text: str = "Patrol seven, say your position") -> np.ndarray:
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
    rate, data = wavfile.read(wav)
    x = data.astype(np.float32) / 32768.0
    y: np.ndarray = 0.5 * to_rate(x, rate, RATE) / np.max(np.abs(x))
    return y


def config(tmp_path: Path, url: str, channels: list[dict[str, Any]], **more: Any) -> Any:
    return parse_config({"gateway": {"name": GW, "outbox": str(tmp_path / "outbox.sqlite")}, "mqtt": {"url": url},
                         "channels": channels, **more})


def rx_driver(pulse: PulseNullSink, decoders: list[str] | None = None) -> dict[str, Any]:
    return {"type": "audio", "device": pulse.device, "rate": RATE, "decoders": decoders or ["dtmf"]}


def warm_up_output(gateway: Gateway, channel: str) -> None:
    """A recording of the transmit sink's monitor loses the end of the first stream it hears (measured:
    the first 100 ms of a 180 ms burst, every later burst whole): the transmitter's output plays a moment
    of silence first, without PTT, so that a short burst is recorded whole."""
    gateway.transmitters[channel].output.play(np.zeros(RATE // 5, np.float32), threading.Event())


def started(gateway: Gateway) -> Gateway:
    gateway.start()
    wait_until(gateway.voice.subscribed.is_set, 10, "the gateway's voice connection and subscriptions")
    wait_until(lambda: all(d.snapshot()["state"] in ("open", "up") for _, d in gateway.drivers), 10,
               "the sound device (and the I/O module) to open")
    return gateway


def test_received_audio_streams_to_a_listener_while_its_lease_lives_and_decodes(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink
) -> None:
    """Speech (espeak-ng) and DTMF played as the radio's receive audio arrive at a listening desk as
    Opus frames naming the unit that identified itself (MDC-1200 PTT ID); this project's DTMF decoder
    decodes the DTMF from what the desk decoded. No lease: nothing is sent, even while the channel is
    busy; after the lease ends, nothing either."""
    gateway = started(Gateway(config(tmp_path, mosquitto.url, [
        {"name": "patrol-1", "drivers": [rx_driver(pulse_radio, ["mdc1200", "dtmf"])]}])))
    desk = Desk(mosquitto.port, GW, "patrol-1")
    try:
        desk.wait_state(lambda s: not s.busy and s.listeners == 0, "the channel's state")
        # Nobody listens: the channel is busy, and nothing is streamed.
        pulse_radio.play(dtmf_tones("55", RATE, lead_s=0.1, tail_s=0.3), RATE)
        desk.wait_state(lambda s: s.busy, "busy with the burst")
        desk.wait_state(lambda s: not s.busy, "quiet again")
        assert desk.frames == [] and gateway.voice.channels["patrol-1"].frames_sent == 0

        desk.listen(10)
        desk.wait_state(lambda s: s.listeners == 1, "one listener")
        burst = np.concatenate([  # as a radio keys up: its PTT ID, the officer's words, and its ID again at de-key
            mdc1200.encode(mdc1200.ptt_id(0x1234), rate=RATE, lead_s=0.1, tail_s=0.05),
            speech(tmp_path),
            dtmf_tones("*911*1234#", RATE, lead_s=0.1, tail_s=0.2),
            mdc1200.encode(mdc1200.ptt_id(0x1234, post=True), rate=RATE, tail_s=0.05)])
        pulse_radio.play(burst, RATE)
        pulse_radio.wait()
        desk.wait_state(lambda s: not s.busy and s.unit == "mdc:1234", "quiet again, the unit known", 20)
        wait_until(lambda: desk.frames and desk.frames[-1].end, 5, "the last frame of the spurt")
        frames = list(desk.frames)
        assert frames[0].start and frames[-1].end
        assert {f.stream for f in frames} == {frames[0].stream}
        assert any(f.unit == "mdc:1234" for f in frames)  # from its PTT ID on, the frames name the unit
        heard = decode_frames(frames)
        assert len(heard) >= 0.9 * len(burst)  # the whole transmission came through (silence gaps aside)
        assert dtmf_heard(heard)[-1:] == ["*911*1234#"]

        desk.listen(0)  # the desk stops listening
        desk.wait_state(lambda s: s.listeners == 0, "no listener")
        count = len(desk.frames)
        pulse_radio.play(dtmf_tones("66", RATE, lead_s=0.1, tail_s=0.3), RATE)
        desk.wait_state(lambda s: s.busy, "busy again")
        desk.wait_state(lambda s: not s.busy, "quiet again")
        assert len(desk.frames) == count
    finally:
        desk.close()
        gateway.stop()


@pytest.mark.parametrize("ptt", ["serial", "modbus"])
def test_a_dispatcher_talks_through_the_radio_with_ptt_keyed_and_released(
    ptt: str, tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    """The desk asks for the floor, is granted a stream, talks DTMF through Opus; the gateway keys PTT
    (RTS of an RFC 2217 device server, or a Modbus coil), plays it into the transmit sink with its lead-in
    and tail, and releases PTT at the end; our DTMF decoder hears it on the air. The transmission is a
    ``call`` event marked transmitted, with the operator and its clip."""
    io_drivers, keying, io_module = ptt_keyed_by(ptt, tmp_path, device_server)
    drivers = [rx_driver(pulse_radio), *io_drivers]
    gateway = started(Gateway(config(tmp_path, mosquitto.url, [{
        "name": "patrol-7", "drivers": drivers,
        "transmit": {"device": pulse_radio.device, "rate": RATE, "lead_in_ms": 200, "tail_ms": 100, "ptt": keying}}])))
    calls = Listener(mosquitto.url, f"pttbridge/v1/gw/{GW}/#")
    on_air = pulse_radio.record_tx()
    desk = Desk(mosquitto.port, GW, "patrol-7")
    try:
        desk.wait_state(lambda s: s.transmit and s.talker is None, "a channel that transmits")
        desk.request("r1")
        granted = desk.answer("r1")
        assert granted.result == "granted" and granted.stream is not None and granted.ready_ms == 200
        desk.wait_state(lambda s: s.keyed and s.talker is not None and s.talker.operator == "alice", "keyed")
        desk.talk(dtmf_tones("*7#", RATE, lead_s=0.1, tail_s=0.3), granted.stream)
        released = desk.answer("r1", "released")
        assert released.reason == "alice at desk-1 ended the transmission"
        desk.wait_state(lambda s: not s.keyed and s.talker is None, "released")
        if io_module is None:
            wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 5, "RTS released")
            assert device_server.rts() == ["RTS 0", "RTS 1", "RTS 0"]  # opened released, keyed, released
        else:
            io_module.expect("write co 4 0")
            assert [line for line in io_module.seen if line.startswith("write")] == ["write co 4 1", "write co 4 0"]
        time.sleep(0.3)  # the tail leaves the sink's monitor
        assert dtmf_heard(on_air.samples()) == ["*7#"]
        wait_until(lambda: any(t.endswith("/event/call") for t, _, _ in calls.messages), 10, "the call event")
        [call] = [json.loads(p) for t, p, _ in calls.messages if t.endswith("/event/call")]
        assert call["detail"]["transmitted"] is True and call["detail"]["operator"] == "alice"
        assert call["detail"]["console"] == "desk-1" and call["channel"] == "patrol-7"
        wait_until(lambda: any(t.endswith(f"/audio/{call['id']}") for t, _, _ in calls.messages), 10, "its clip")
    finally:
        desk.close()
        on_air.stop()
        calls.close()
        gateway.stop()
        if io_module is not None:
            io_module.stop()


def floor_gateway(tmp_path: Path, mosquitto: Mosquitto, pulse: PulseNullSink, device_server: DeviceServer,
                  **voice: Any) -> Gateway:
    return started(Gateway(config(tmp_path, mosquitto.url, [
        {"name": "patrol-2", "drivers": [rx_driver(pulse)], "voice": {"silence_ms": 800, **voice},
         "transmit": {"device": f"wav:{tmp_path / 'tx.wav'}", "rate": RATE, "lead_in_ms": 100, "tail_ms": 50,
                      "timeout_s": 10, "ptt": {"method": "serial", "port": device_server.url}}},
        {"name": "marine-16", "receive_only": True, "drivers": [],
         "transmit": {"device": f"wav:{tmp_path / 'marine.wav'}"}},
    ])))


def test_floor_one_talker_busy_channels_and_receive_only(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    """Two desks pressing at once: one wins, the other is told who has it. A channel busy with radio
    traffic refuses unless the request overrides. A receive-only channel refuses."""
    gateway = floor_gateway(tmp_path, mosquitto, pulse_radio, device_server)
    alice = Desk(mosquitto.port, GW, "patrol-2", "desk-1", "alice")
    bob = Desk(mosquitto.port, GW, "patrol-2", "desk-2", "bob")
    try:
        alice.wait_state(lambda s: s.transmit, "the state")
        # Both at once (published back to back, not waiting for the first answer).
        alice.client.publish(alice.topic("floor"), b'{"console":"desk-1","operator":"alice","request":"a1"}', qos=1)
        bob.client.publish(bob.topic("floor"), b'{"console":"desk-2","operator":"bob","request":"b1"}', qos=1)
        a, b = alice.answer("a1"), bob.answer("b1")
        assert sorted([a.result, b.result]) == ["granted", "refused"]
        winner, loser = (alice, bob) if a.result == "granted" else (bob, alice)
        refusal = b if loser is bob else a
        assert refusal.reason == f"patrol-2: the floor is held by {winner.operator} at {winner.name}"
        winner.request(f"{winner.name}-done", action="release")
        winner.wait_state(lambda s: s.talker is None and not s.keyed, "the floor free again")
        assert winner.answer(f"{winner.name}-done").result == "released"

        # Radio traffic on the channel: refused unless overriding (an emergency may need it).
        pulse_radio.play(0.3 * np.sin(2 * np.pi * 800 * np.arange(3 * RATE) / RATE).astype(np.float32), RATE)
        alice.wait_state(lambda s: s.busy, "busy with radio traffic")
        alice.request("a2")
        busy = alice.answer("a2")
        assert busy.result == "refused" and "busy with radio traffic" in (busy.reason or "")
        alice.request("a3", override=True)
        assert alice.answer("a3").result == "granted"
        alice.request("a4", action="release")
        alice.answer("a3", "released")
        alice.wait_state(lambda s: s.talker is None and not s.keyed, "free")

        marine = Desk(mosquitto.port, GW, "marine-16")
        marine.request("m1")
        refused = marine.answer("m1")
        assert refused.result == "refused"
        assert refused.reason == "channel marine-16 is receive-only: the radio does not transmit there"
        marine.close()
        assert not (tmp_path / "marine.wav").exists()
    finally:
        alice.close()
        bob.close()
        gateway.stop()


def test_a_talker_that_vanishes_loses_the_floor_within_the_silence_time_out(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    """The desk's audio stops mid-talk (its machine died: no release, no END): PTT is released after
    ``silence_ms`` (0.8 s), long before the 10 s transmit time-out, and everyone is told why."""
    gateway = floor_gateway(tmp_path, mosquitto, pulse_radio, device_server)
    desk = Desk(mosquitto.port, GW, "patrol-2")
    watcher = Desk(mosquitto.port, GW, "patrol-2", "desk-9", "carol")
    try:
        desk.request("r1")
        granted = desk.answer("r1")
        assert granted.stream is not None
        wait_until(lambda: device_server.rts()[-1:] == ["RTS 1"], 5, "RTS keyed")
        desk.talk(dtmf_tones("1", RATE, lead_s=0.5), granted.stream, end=False)
        last_frame = time.monotonic()
        desk.client.disconnect()  # gone, without a word
        wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 5, "RTS released")
        released_after = [t for t, text in device_server.lines if text == "RTS 0"][-1] - last_frame
        answer = watcher.answer("r1", "released", console="desk-1")  # every desk of the channel is told
        assert answer.reason == "no audio from desk-1 for 0.8 s; PTT released"
        assert released_after < 3.0  # the silence time-out (0.8 s, plus tail), not the 10 s transmit one
        watcher.wait_state(lambda s: s.talker is None and not s.keyed, "the floor free")
    finally:
        desk.close()
        watcher.close()
        gateway.stop()


def test_bad_input_on_the_voice_topics_crashes_nothing_and_keys_nothing(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    """Frames on tx with nobody holding the floor (a flood of them: good Opus, garbage, JSON): nothing is
    keyed (the PTT port is never even opened). While a desk holds the floor, frames of another stream,
    out-of-range sequence numbers and packets that are not Opus are refused and counted, and the talk goes
    on; bad leases and floor requests are refused; the gateway answers as before."""
    gateway = floor_gateway(tmp_path, mosquitto, pulse_radio, device_server)
    desk = Desk(mosquitto.port, GW, "patrol-2")
    try:
        desk.wait_state(lambda s: s.transmit, "the state")
        forger = Desk(mosquitto.port, GW, "patrol-2", "desk-6", "mallory")
        good = VoiceFrame(1234, 1, 0, bytes([0x78]) + bytes(30), Flag.START).encode()
        junk = [good, b"", b"\x00" * 40, b'{"console":"desk-6"}', b"PV\x01\x00\x00" + bytes(12) + b"\x7c\x00",
                b"PV\x09" + bytes(30), bytes(range(256)) * 8]
        for i in range(2000):
            forger.client.publish(forger.topic("tx"), junk[i % len(junk)], qos=0)
        for bad in (b"nope", b'{"console":"desk 6","operator":"m","lease_s":5}', b"[]"):
            forger.client.publish(forger.topic("listen"), bad, qos=1)
            forger.client.publish(forger.topic("floor"), bad, qos=1)
        forger.client.publish(forger.topic("floor"), b'{"console":"desk-6","operator":"m","request":"x",'
                              b'"action":"release"}', qos=1).wait_for_publish(5)
        assert forger.answer("x").result == "refused"  # everything before it was handled (in order)
        refused = gateway.health()["voice"]["refused"]
        assert refused["no_floor"] == 2000 and refused["listen"] == 3 and refused["floor"] == 3
        assert device_server.rts() == []  # never keyed: the PTT port was not even opened

        desk.request("r1")
        granted = desk.answer("r1")
        assert granted.stream is not None
        stream = granted.stream
        talking = threading.Thread(target=desk.talk, args=(dtmf_tones("*5#", RATE, lead_s=0.2, tail_s=0.3), stream))
        talking.start()
        wait_until(lambda: (t := gateway.voice.channels["patrol-2"].talk) is not None and t.tracker is not None
                   and t.tracker.newest is not None, 5, "the desk's first frame taken")
        strangers = [VoiceFrame(stream ^ 1, 5, 0, bytes([0x78]) + bytes(20), Flag.START),  # another stream
                     VoiceFrame(stream, 2**31, 0, bytes([0x78]) + bytes(20))]  # far out of range
        for frame in strangers * 50:
            forger.client.publish(forger.topic("tx"), frame.encode(), qos=0)
        not_opus = b"PV\x01\x00\x00" + stream.to_bytes(4, "big") + bytes(8) + b"\x03"  # the granted stream
        for _ in range(50):
            forger.client.publish(forger.topic("tx"), not_opus, qos=0)
        talking.join(10)
        assert desk.answer("r1", "released").reason == "alice at desk-1 ended the transmission"
        counts = gateway.health()["voice"]["refused"]
        assert counts["tx_stream"] >= 50 and counts["tx"] >= 50
        forger.close()
        wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 5, "RTS released")
        assert device_server.rts() == ["RTS 0", "RTS 1", "RTS 0"]
    finally:
        desk.close()
        gateway.stop()


def test_the_broker_restarting_mid_call_releases_ptt_and_voice_comes_back(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    gateway = floor_gateway(tmp_path, mosquitto, pulse_radio, device_server)
    desk = Desk(mosquitto.port, GW, "patrol-2")
    stop = threading.Event()
    try:
        desk.request("r1")
        granted = desk.answer("r1")
        assert granted.stream is not None
        talking = threading.Thread(target=desk.talk, args=(dtmf_tones("1" * 40, RATE), granted.stream),
                                   kwargs={"stop": stop})
        talking.start()
        wait_until(lambda: device_server.rts()[-1:] == ["RTS 1"], 5, "RTS keyed")
        mosquitto.stop()
        wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 5, "RTS released while the broker is away")
        stop.set()
        talking.join(10)
        assert not gateway.voice.subscribed.is_set()
        mosquitto.start()
        wait_until(lambda: gateway.voice.subscribed.is_set() and desk.client.is_connected(), 15, "both back")
        wait_until(lambda: gateway.health()["voice"]["channels"]["patrol-2"]["talker"] is None, 5, "the floor free")
        desk.request("r2")
        assert desk.answer("r2").result == "granted"
        desk.request("r3", action="release")
        desk.answer("r2", "released")
    finally:
        stop.set()
        desk.close()
        gateway.stop()


def test_remote_monitor_keys_the_units_microphone_and_its_audio_streams(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    """``cmd/remote_monitor`` for an MDC-1200 unit: the gateway keys PTT and sends the remote-monitor packet
    (opcode 0x11, argument 0x8A, to that unit; our decoder reads it off the air), reports the result as an
    ``io`` event, and streams the channel for ``duration_s`` with no console's lease; a unit of another
    protocol is answered ``unsupported``."""
    gateway = started(Gateway(config(tmp_path, mosquitto.url, [{
        "name": "patrol-3", "drivers": [rx_driver(pulse_radio)],
        "transmit": {"device": pulse_radio.device, "rate": RATE, "lead_in_ms": 150, "tail_ms": 100,
                     "ptt": {"method": "serial", "port": device_server.url}}}])))
    events = Listener(mosquitto.url, f"pttbridge/v1/gw/{GW}/event/io")
    on_air = pulse_radio.record_tx()
    warm_up_output(gateway, "patrol-3")
    desk = Desk(mosquitto.port, GW, "patrol-3")  # subscribed, holding no lease
    try:
        for request, unit in (("m1", "mdc:1234"), ("m2", "dtmf:77")):
            body = {"request": request, "unit": unit, "channel": "patrol-3", "operator": "alice", "duration_s": 20}
            desk.client.publish(f"pttbridge/v1/gw/{GW}/cmd/remote_monitor", json.dumps(body), qos=1)
        wait_until(lambda: len(events.events()) == 2, 15, "both results")
        results = {e["detail"]["request"]: e for e in events.events()}
        assert results["m1"]["detail"]["result"] == "sent" and results["m1"]["unit"] == "mdc:1234"
        assert results["m1"]["detail"]["command"] == "remote_monitor" and results["m1"]["detail"]["operator"] == "alice"
        assert results["m2"]["detail"]["result"] == "unsupported"
        assert "MDC-1200 only" in results["m2"]["detail"]["reason"]
        wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 5, "RTS released")
        assert device_server.rts() == ["RTS 0", "RTS 1", "RTS 0"]
        time.sleep(0.3)  # the tail leaves the sink's monitor
        decoder = mdc1200.Mdc1200Decoder(RATE)
        heard = [d for d in decoder.feed(on_air.samples(), NOW) + decoder.flush(NOW) if isinstance(d, Decoded)]
        assert [(d.unit, d.detail["name"], d.detail["op"], d.detail["arg"]) for d in heard] == [
            ("mdc:1234", "remote_monitor", 0x11, 0x8A)]
        state = desk.wait_state(lambda s: s.monitor is not None, "the monitor in the state")
        assert state.monitor is not None and state.monitor["unit"] == "mdc:1234" and state.listeners == 0
        # The unit's radio transmits what its microphone hears: it streams, though no desk leased it.
        pulse_radio.play(dtmf_tones("42", RATE, lead_s=0.1, tail_s=0.3), RATE)
        wait_until(lambda: desk.frames and desk.frames[-1].end, 10, "the monitored audio")
        assert dtmf_heard(decode_frames(desk.frames)) == ["42"]
    finally:
        desk.close()
        on_air.stop()
        events.close()
        gateway.stop()


def test_a_patch_transmits_what_one_channel_receives_on_the_other(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    """``[[patches]]`` of two channels: DTMF received on patrol-4 goes out on patrol-5 (PTT on RTS, the
    transmit sink, where our decoder hears it), recorded as a transmitted call of the patch; patrol-4's own
    transmitter (a WAV file) never transmits its own audio back."""
    gateway = started(Gateway(config(tmp_path, mosquitto.url, [
        {"name": "patrol-4", "drivers": [rx_driver(pulse_radio)],
         "transmit": {"device": f"wav:{tmp_path / 'patrol-4.wav'}", "lead_in_ms": 0}},
        {"name": "patrol-5", "transmit": {"device": pulse_radio.device, "rate": RATE, "lead_in_ms": 150,
                                          "tail_ms": 100, "ptt": {"method": "serial", "port": device_server.url}}},
    ], patches=[{"name": "mutual-aid", "channels": ["patrol-4", "patrol-5"]}])))
    calls = Listener(mosquitto.url, f"pttbridge/v1/gw/{GW}/event/call")
    on_air = pulse_radio.record_tx()
    desk = Desk(mosquitto.port, GW, "patrol-5")
    try:
        desk.wait_state(lambda s: s.patch == "mutual-aid", "the patch in the state")
        pulse_radio.play(dtmf_tones("*3*", RATE, lead_s=0.1, tail_s=0.2), RATE)
        wait_until(lambda: len(calls.events()) == 1, 15, "the patch's transmission recorded")
        [call] = calls.events()
        assert call["channel"] == "patrol-5" and call["detail"]["patch"] == "mutual-aid"
        assert call["detail"]["transmitted"] is True and call["detail"]["console"] == "patrol-4"
        assert device_server.rts() == ["RTS 0", "RTS 1", "RTS 0"]
        time.sleep(0.3)
        assert dtmf_heard(on_air.samples()) == ["*3*"]
        assert not (tmp_path / "patrol-4.wav").exists()
    finally:
        desk.close()
        on_air.stop()
        calls.close()
        gateway.stop()


def test_a_dispatcher_patches_channels_and_takes_the_patch_apart(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    """``cmd/patch`` from a desk: connect patrol-4 and patrol-5 (DTMF received on one goes out on the other),
    refused with the reason for a channel already patched or not here, then taken apart (received audio
    no longer goes out); every command's result is an ``io`` event."""
    gateway = started(Gateway(config(tmp_path, mosquitto.url, [
        {"name": "patrol-4", "drivers": [rx_driver(pulse_radio)]},
        {"name": "patrol-5", "transmit": {"device": pulse_radio.device, "rate": RATE, "lead_in_ms": 150,
                                          "tail_ms": 100, "ptt": {"method": "serial", "port": device_server.url}}},
        {"name": "patrol-6"},
    ])))
    events = Listener(mosquitto.url, f"pttbridge/v1/gw/{GW}/event/+")
    on_air = pulse_radio.record_tx()
    desk = Desk(mosquitto.port, GW, "patrol-5")

    def command(body: dict[str, Any]) -> dict[str, Any]:
        n = len(events.events())
        desk.client.publish(f"pttbridge/v1/gw/{GW}/cmd/patch", json.dumps({"operator": "alice", **body}), qos=1)
        wait_until(lambda: len(events.events()) > n, 10, f"the result of {body['request']}")
        return events.events()[-1]["detail"]  # type: ignore[no-any-return]

    try:
        warm_up_output(gateway, "patrol-5")
        made = command({"request": "p1", "name": "aid", "channels": ["patrol-4", "patrol-5"]})
        assert (made["result"], made["command"], made["operator"]) == ("done", "patch", "alice")
        desk.wait_state(lambda s: s.patch == "aid", "the patch in the state")
        again = command({"request": "p2", "name": "aid-2", "channels": ["patrol-6", "patrol-5"]})
        assert (again["result"], again["reason"]) == ("refused", "channel patrol-5 is in patch aid already")
        nowhere = command({"request": "p3", "name": "aid-3", "channels": ["patrol-6", "patrol-9"]})
        assert nowhere["reason"] == "no channel patrol-9 here"

        pulse_radio.play(dtmf_tones("*3*", RATE, lead_s=0.1, tail_s=0.2), RATE)
        wait_until(lambda: any(e["kind"] == "call" for e in events.events()), 15, "the patch's transmission")
        time.sleep(0.3)
        assert dtmf_heard(on_air.samples()) == ["*3*"]

        apart = command({"request": "p4", "name": "aid", "action": "disconnect"})
        assert apart["result"] == "done" and apart["channels"] == ["patrol-4", "patrol-5"]
        desk.wait_state(lambda s: s.patch is None, "no patch in the state")
        keyed = device_server.rts().count("RTS 1")
        pulse_radio.play(dtmf_tones("77", RATE, lead_s=0.1, tail_s=0.2), RATE)
        pulse_radio.wait()
        wait_until(lambda: not gateway.voice.channels["patrol-4"].busy, 10, "patrol-4 quiet again")
        assert device_server.rts().count("RTS 1") == keyed  # nothing transmitted any more
    finally:
        desk.close()
        on_air.stop()
        events.close()
        gateway.stop()


def test_a_patch_joins_a_channel_of_another_gateway(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    """``[[patches]] channels = ["a1", "gw-b/b1"]`` on gw-a: what a1 receives goes out on gw-b's channel b1,
    through gw-b's voice topics and floor as a console's would (PTT on RTS, our decoder hears the DTMF on
    the air), recorded by gw-b as a transmitted call of the patch."""
    gw_a = started(Gateway(parse_config({
        "gateway": {"name": "gw-a", "outbox": str(tmp_path / "a.sqlite")}, "mqtt": {"url": mosquitto.url},
        "channels": [{"name": "a1", "drivers": [rx_driver(pulse_radio)]}],
        "patches": [{"name": "aid", "channels": ["a1", "gw-b/b1"]}]})))
    gw_b = started(Gateway(parse_config({
        "gateway": {"name": "gw-b", "outbox": str(tmp_path / "b.sqlite")}, "mqtt": {"url": mosquitto.url},
        "channels": [{"name": "b1", "transmit": {"device": pulse_radio.device, "rate": RATE, "lead_in_ms": 150,
                                                 "tail_ms": 100, "ptt": {"method": "serial",
                                                                         "port": device_server.url}}}]})))
    calls = Listener(mosquitto.url, "pttbridge/v1/gw/gw-b/event/call")
    on_air = pulse_radio.record_tx()
    watcher = Desk(mosquitto.port, "gw-b", "b1")
    try:
        warm_up_output(gw_b, "b1")
        watcher.wait_state(lambda s: s.listeners == 1, "gw-a's lease on gw-b/b1")
        pulse_radio.play(dtmf_tones("*4*", RATE, lead_s=0.1, tail_s=0.2), RATE)
        wait_until(lambda: calls.events(), 20, "gw-b's transmission recorded")
        [call] = calls.events()
        assert call["detail"]["operator"] == "patch aid" and call["detail"]["console"] == "gw-a"
        assert call["detail"]["transmitted"] is True
        assert device_server.rts() == ["RTS 0", "RTS 1", "RTS 0"]
        time.sleep(0.3)
        assert dtmf_heard(on_air.samples()) == ["*4*"]
    finally:
        watcher.close()
        on_air.stop()
        calls.close()
        gw_a.stop()
        gw_b.stop()
