"""Live voice at the console when things go wrong, every part real (see test_voice_console.py): a network
that stalls between the broker and the console (a TCP relay in the test holding what the broker sends),
a console that dies while talking, two consoles pressing at once, the broker restarting mid-call, and
garbage on the voice topics a console reads."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from rig import CountingApp, run, until
from support import ConsoleSound, DeviceServer, Mosquitto, PulseNullSink, wait_until
from test_voice_console import GW, Voice, cell, choose, dtmf_heard, sound, voice_config
from textual.pilot import Pilot
from voice_desk import Desk

from config.schema import MqttConfig
from console.app import TALK_REPEAT_S
from console.voice import ChannelView, JitterBuffer, Lease
from console.voice_link import VoiceLink, _Listened
from drivers.audio.dtmf import dtmf_tones
from gateway.voice import RATE, Flag, OpusDecoder, VoiceFrame, parse_frame

__all__ = ["sound"]  # the fixture, used by name


class Relay:
    """A TCP relay from a local port to the broker. ``hold()`` stops passing on what the broker sends (it
    waits, then comes all at once on ``release()``), as a network stalls; ``freeze()`` stops both ways
    for good, as a machine that died."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held = threading.Event()
        self.frozen = threading.Event()
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            broker = socket.create_connection(("127.0.0.1", self.upstream))
            for src, dst, down in ((client, broker, False), (broker, client, True)):
                threading.Thread(target=self._pipe, args=(src, dst, down), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while data := src.recv(65536):
                while (downstream and self.held.is_set()) or self.frozen.is_set():
                    time.sleep(0.005)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def hold(self) -> None:
        self.held.set()

    def release(self) -> None:
        self.held.clear()

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        self.closed.set()
        self.frozen.clear()
        self.held.clear()
        self.server.close()



async def listen(pilot: Pilot[None], app: CountingApp) -> _Listened:
    """The dispatcher listens to patrol-1 (``l`` on its row) until the gateway counts the lease; its channel."""
    await choose(pilot, app, "patrol-1")
    await pilot.press("l")
    await until(pilot, lambda: (v := app.voice.views.get((GW, "patrol-1"))) is not None
                and v.state is not None and v.state.listeners == 1, "the gateway counting the lease")
    return app.voice.listened[(GW, "patrol-1")]

def test_a_network_that_stalls_is_ridden_out_by_the_jitter_buffer(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, sound: ConsoleSound,
    device_server: DeviceServer
) -> None:
    """What the broker sends the console stalls for 300 ms mid-transmission, then comes all at once: the
    console's jitter buffer sees the clump (its jitter estimate grows), plays every held frame (none too
    late), and plays on: the DTMF said after the stall comes out of the speaker whole."""
    relay = Relay(mosquitto.port)
    with Voice(voice_config(tmp_path, mosquitto, device_server)):
        app = CountingApp(voice_config(tmp_path, mosquitto, device_server, url=f"mqtt://127.0.0.1:{relay.port}"))

        async def scenario() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                held = await listen(pilot, app)
                speaker = sound.record_speaker()
                tone = 0.3 * np.sin(2 * np.pi * 700 * np.arange(int(1.5 * RATE)) / RATE).astype(np.float32)
                pulse_radio.play(np.concatenate([tone, dtmf_tones("*55#", RATE, lead_s=0.05, tail_s=0.3)]), RATE)
                await until(pilot, lambda: held.buffer.stats.played > 5, "playing")
                jitter, received = held.buffer.jitter_ms, held.buffer.stats.received
                relay.hold()
                await pilot.pause(0.3)
                assert held.buffer.stats.received <= received + 2  # nothing came meanwhile
                relay.release()
                await until(pilot, lambda: held.buffer.stats.received > received + 10, "the held frames at once")
                # Read as the clump is in: a second of steady frames after it brings the estimate back down.
                clumped = held.buffer.jitter_ms
                await until(pilot, lambda: held.buffer.stats.spurts >= 1, "played to its end", timeout=15)
                await pilot.pause(0.3)
                stats = held.buffer.stats
                assert clumped > jitter  # the clump was seen
                assert stats.late == 0  # and nothing of it came too late to play
                assert dtmf_heard(speaker.samples()) == ["*55#"]
                speaker.stop()

        try:
            run(scenario())
        finally:
            relay.close()


def test_a_console_that_dies_while_talking_releases_ptt(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, sound: ConsoleSound,
    device_server: DeviceServer
) -> None:
    """The console's machine dies mid-talk (its network freezes: no release, no END, not even a
    disconnect): the gateway releases PTT after the channel's silence_ms (0.8 s), and the other consoles
    read why."""
    relay = Relay(mosquitto.port)
    with Voice(voice_config(tmp_path, mosquitto, device_server)):
        app = CountingApp(voice_config(tmp_path, mosquitto, device_server, url=f"mqtt://127.0.0.1:{relay.port}"))
        watcher = Desk(mosquitto.port, GW, "patrol-1", "desk-9", "carol")

        async def scenario() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                await choose(pilot, app, "patrol-1")
                await pilot.press("k")
                await until(pilot, lambda: cell(app, "patrol-1", "floor") == "YOU ARE TALKING", "granted")
                sound.say(dtmf_tones("1", RATE, lead_s=0.3, tail_s=2.0))
                await until(pilot, lambda: app.voice.frames_sent > 10, "talking")
                relay.freeze()
                frozen = time.monotonic()
                wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 5, "RTS released")
                released = [t for t, line in device_server.lines if line == "RTS 0"][-1] - frozen
                assert released < 3.0  # the silence time-out and the tail, not the transmit time-out (30 s)
                talk = app.voice.talk
                assert talk is not None and talk.floor.request is not None
                answer = watcher.answer(talk.floor.request, "released", console="desk-1")
                assert answer.reason == "no audio from desk-1 for 0.8 s; PTT released"
                relay.close()

        try:
            run(scenario())
        finally:
            watcher.close()
            relay.close()


def test_two_consoles_press_at_once_and_the_one_refused_is_told(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, sound: ConsoleSound,
    device_server: DeviceServer
) -> None:
    config = voice_config(tmp_path, mosquitto, device_server)
    with Voice(config):
        alice = CountingApp(config)
        bob = CountingApp(voice_config(tmp_path, mosquitto, device_server, name="desk-2", operator="bob",
                                       microphone=None, audio_device=None))

        async def scenario() -> None:
            async with alice.run_test(size=(160, 48)) as pa, bob.run_test(size=(160, 48)) as pb:
                await choose(pa, alice, "patrol-1")
                await choose(pb, bob, "patrol-1")
                await pa.press("k")
                await pb.press("k")
                await until(pa, lambda: any("refused" in n or "Talking" in n for n in alice.notes + bob.notes)
                            and len([n for n in alice.notes + bob.notes if "refused" in n or "Talking" in n]) == 2,
                            "both answered")
                winner, loser = (alice, bob) if any("Talking" in n for n in alice.notes) else (bob, alice)
                [refusal] = [n for n in loser.notes if "refused" in n]
                who = "alice at desk-1" if winner is alice else "bob at desk-2"
                assert refusal.endswith(f"patrol-1: the floor is held by {who}")
                pilot = pa if winner is alice else pb
                await until(pilot, lambda: cell(loser, "patrol-1", "floor") == who, "the loser sees who talks")
                await pilot.pause(TALK_REPEAT_S)
                await pilot.press("k")
                wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 10, "RTS released")

        run(scenario())


def test_the_broker_restarting_mid_call_releases_ptt_and_the_console_comes_back(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, sound: ConsoleSound,
    device_server: DeviceServer
) -> None:
    """Mid-talk the broker restarts: PTT is released (the gateway's talk ends with its connection), the
    dispatcher is told, and once the broker is back the console listens again (its lease renewed) and
    talks again."""
    config = voice_config(tmp_path, mosquitto, device_server)
    with Voice(config) as site:
        app = CountingApp(config)

        async def scenario() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                await choose(pilot, app, "patrol-1")
                await pilot.press("k")
                await until(pilot, lambda: cell(app, "patrol-1", "floor") == "YOU ARE TALKING",
                            f"granted ({app.notes})")
                sound.say(dtmf_tones("1" * 10, RATE, lead_s=0.3))
                await until(pilot, lambda: app.voice.frames_sent > 10, "talking")
                mosquitto.stop()
                wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 5, f"RTS released ({app.notes})")
                await until(pilot, lambda: any("lost the broker: PTT released" in n for n in app.notes),
                            "the dispatcher told")
                assert app.voice.talk is None
                mosquitto.start()
                await until(pilot, lambda: app.voice.connected and site.gateway.voice.subscribed.is_set(),
                            "both back", timeout=20)
                await until(pilot, lambda: site.gateway.voice.channels["patrol-1"].listeners(time.monotonic()) == 1,
                            "the lease renewed", timeout=10)
                await until(pilot, lambda: site.gateway.voice.channels["patrol-1"].talk is None, "the floor free")
                await pilot.pause(TALK_REPEAT_S)
                await pilot.press("k")
                await until(pilot, lambda: cell(app, "patrol-1", "floor") == "YOU ARE TALKING",
                            f"granted again ({app.notes})")
                await pilot.pause(TALK_REPEAT_S)
                await pilot.press("k")
                wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 10, "RTS released")

        run(scenario())


def test_garbage_on_the_voice_topics_crashes_nothing_and_good_audio_still_plays(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, sound: ConsoleSound,
    device_server: DeviceServer
) -> None:
    """A flood on the rx topic the console listens to (frames whose packet is not Opus, sequence numbers
    out of range, bytes that are no frame, JSON) and bad states and floor answers: refused and counted,
    the console lives, and the channel's next transmission plays whole."""
    config = voice_config(tmp_path, mosquitto, device_server)
    with Voice(config):
        app = CountingApp(config)
        forger = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-forger")
        forger.connect("127.0.0.1", mosquitto.port)
        forger.loop_start()

        async def scenario() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                await choose(pilot, app, "patrol-1")
                await pilot.press("l")
                await until(pilot, lambda: "on" in cell(app, "patrol-1", "listen"), "listening")
                base = f"pttbridge/v1/gw/{GW}/voice/patrol-1"
                junk = [b"", b"\x00" * 40, b'{"console":"x"}', b"PV\x01\x00\x00" + bytes(12) + b"\x03",
                        b"PV\x09" + bytes(30), bytes(range(256)) * 8,
                        VoiceFrame(77, 1, 0, bytes([0x78]), Flag.START).encode(),
                        VoiceFrame(77, 2**31, 0, bytes([0x78])).encode()]
                for i in range(2000):
                    forger.publish(f"{base}/rx", junk[i % len(junk)], qos=0)
                for bad in (b"nope", b'{"channel":"patrol-1","busy":"yes"}', b"[]"):
                    forger.publish(f"{base}/state", bad, qos=1)
                    forger.publish(f"{base}/floor/answer", bad, qos=1)
                forger.publish(f"{base}/floor/answer", b'{"console":"desk-1","operator":"a","result":"granted",'
                               b'"request":"never-asked","stream":5}', qos=1).wait_for_publish(5)
                await until(pilot, lambda: sum(app.voice.refused.values()) >= 1000 and app.voice.refused["state"] >= 2
                            and app.voice.refused["floor/answer"] >= 3, "the garbage refused")
                assert app.voice.talk is None  # an answer to no request of ours keys nothing
                held = app.voice.listened[(GW, "patrol-1")]
                await until(pilot, lambda: not held.buffer.playing, "the forged spurt given up")
                speaker = sound.record_speaker()
                spurts = held.buffer.stats.spurts
                pulse_radio.play(dtmf_tones("*8#", RATE, lead_s=0.1, tail_s=0.3), RATE)
                await until(pilot, lambda: cell(app, "patrol-1", "busy") == "BUSY", "busy")
                await until(pilot, lambda: held.buffer.stats.spurts > spurts, "played to its end", timeout=15)
                await pilot.pause(0.3)
                assert dtmf_heard(speaker.samples()) == ["*8#"]
                speaker.stop()

        try:
            run(scenario())
        finally:
            forger.loop_stop()
            forger.disconnect()


def unplayed_link() -> VoiceLink:
    """A link never connected, listening to patrol-1 without a speaker (nothing is played)."""
    link = VoiceLink(MqttConfig(url="mqtt://127.0.0.1:1"), "desk-1", lambda: "alice", lambda _m: None)
    link.listened[(GW, "patrol-1")] = _Listened(ChannelView(GW, "patrol-1", listening=True), JitterBuffer(),
                                                OpusDecoder(), Lease())
    return link


LINK = unplayed_link()


def frame_like(stream: int, seq: int, timestamp: int, flags: int, opus: bytes) -> bytes:
    """A voice frame's header (whatever its fields) before any bytes as its packet."""
    return b"PV\x01" + bytes([flags, 0]) + stream.to_bytes(4, "big") + seq.to_bytes(4, "big") \
        + timestamp.to_bytes(4, "big") + opus


u32 = st.integers(0, 2**32 - 1)
# Raw bytes, and frames of a few streams with any sequence, timestamp, flags and packet (Opus or not).
payloads = st.binary(max_size=200) | st.builds(frame_like, st.integers(1, 3), u32, u32, st.integers(0, 3),
                                               st.binary(min_size=1, max_size=80))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leaf=st.sampled_from(["rx", "state", "floor/answer", "listen", "tx", "floor"]), payload=payloads)
def test_any_payload_on_a_voice_topic_is_refused_or_taken_never_raised(leaf: str, payload: bytes) -> None:
    """The link's message handler (paho's thread) on arbitrary bytes: nothing escapes it, and what it took
    plays (or is concealed) without raising either."""
    msg = mqtt.MQTTMessage(topic=f"pttbridge/v1/gw/{GW}/voice/patrol-1/{leaf}".encode())
    msg.payload = payload
    LINK._on_message(LINK.client, None, msg)
    with LINK._lock:
        block = LINK.mix(time.monotonic() + 10.0)
    assert block.shape == (960,) and np.all(np.abs(block) <= 1.0)


class LossyRelay:
    """An MQTT-aware relay between the gateway's topics and a console's (which uses a prefix of its own):
    everything passes both ways, but the frames of the channel's receive audio are lost and reordered on
    their way to the console, by their place in the talk spurt: the 5th of every 9 never arrives, the
    8th comes after the 9th. ``lost`` and ``swapped`` count what it did."""

    LOSE, SWAP, EVERY = 4, 7, 9

    def __init__(self, port: int, gateway_prefix: str, console_prefix: str) -> None:
        self.gw, self.console = gateway_prefix, console_prefix
        self.lost = self.swapped = self.passed = 0
        self._held: VoiceFrame | None = None
        self._index = 0
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-lossy-relay")
        self.client.on_connect = lambda c, *_: c.subscribe([(f"{self.gw}/gw/+/voice/#", 1),
                                                           (f"{self.console}/gw/+/voice/#", 1)])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self._subscribed.is_set, 10, "the relay subscribed")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        up = msg.topic.startswith(f"{self.console}/")  # from the console, to the gateway
        leaf = msg.topic.split("/voice/", 1)[1].split("/", 1)[1]
        if up and leaf in ("listen", "floor", "tx"):
            self.client.publish(self.gw + msg.topic[len(self.console):], msg.payload, msg.qos)
        elif not up and leaf in ("state", "floor/answer"):
            # The state is retained at the broker; passed on live, it must be retained again for the console.
            self.client.publish(self.console + msg.topic[len(self.gw):], msg.payload, msg.qos, leaf == "state")
        elif not up and leaf == "rx":
            self._frame(self.console + msg.topic[len(self.gw):], parse_frame(msg.payload))

    def _frame(self, to: str, frame: VoiceFrame) -> None:
        self._index = 0 if frame.start else self._index + 1
        place = self._index % self.EVERY
        if frame.end and self._held is not None:  # the spurt ends: what was held back goes before the END
            self._pass(to, self._held)
            self._held = None
        if not frame.start and not frame.end and place == self.LOSE:
            self.lost += 1
        elif not frame.start and not frame.end and place == self.SWAP:
            self._held = frame
        else:
            self._pass(to, frame)
            if self._held is not None:
                self._pass(to, self._held)
                self._held = None
                self.swapped += 1

    def _pass(self, to: str, frame: VoiceFrame) -> None:
        self.passed += 1
        self.client.publish(to, frame.encode(), 0)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def pitch_track(x: np.ndarray, start_hz: float, stop_hz: float, rate: int = RATE) -> np.ndarray:
    """The strongest frequency (Hz) in each 10 ms of ``x`` loud enough to hold the tone."""
    win = rate // 100
    out = []
    for at in range(0, len(x) - win, win):
        seg = x[at:at + win]
        if np.sqrt(np.mean(np.square(seg))) < 0.05:
            continue
        spectrum = np.abs(np.fft.rfft(seg * np.hanning(win), 16384))
        freqs = np.fft.rfftfreq(16384, 1 / rate)
        band = (freqs > start_hz * 0.8) & (freqs < stop_hz * 1.2)
        out.append(freqs[band][np.argmax(spectrum[band])])
    return np.asarray(out)


def test_frames_lost_and_reordered_on_the_way_to_the_console_are_concealed_and_put_back_in_order(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, sound: ConsoleSound,
    device_server: DeviceServer
) -> None:
    """Between the broker and the console, one frame in 9 of the channel's receive audio is lost and another
    comes after the one that follows it. The radio receives a tone rising steadily in pitch: the console
    plays it to its end, each lost frame concealed in its turn, the swapped ones put back in sequence and
    played (at most two came after their turn: dropped, concealed, the delay grown), and the dispatcher
    hears the tone rise to its end."""
    config = voice_config(tmp_path, mosquitto, device_server)
    relay = LossyRelay(mosquitto.port, config.mqtt.prefix, "lossy/v1")
    with Voice(config):
        app = CountingApp(config.model_copy(update={"mqtt": config.mqtt.model_copy(update={"prefix": "lossy/v1"})}))

        async def scenario() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                held = await listen(pilot, app)
                speaker = sound.record_speaker()
                t = np.arange(int(2.0 * RATE)) / RATE
                low, high = 500.0, 2500.0  # 1000 Hz a second: 20 Hz a frame
                sweep = (0.3 * np.sin(2 * np.pi * (low * t + (high - low) / 4.0 * t * t))).astype(np.float32)
                pulse_radio.play(np.concatenate([sweep, np.zeros(RATE // 2, np.float32)]), RATE)
                await until(pilot, lambda: held.buffer.stats.spurts >= 1, "played to its end", timeout=15)
                await pilot.pause(0.3)
                heard = speaker.samples()
                speaker.stop()
                stats = held.buffer.stats
                assert relay.lost >= 8 and relay.swapped >= 8
                # Every lost frame was concealed in its turn; a swapped one either played in its turn or, come
                # after it, was dropped and concealed (the delay then grew a frame).
                assert stats.concealed >= relay.lost + stats.late
                assert stats.played + stats.late == relay.passed
                assert stats.late <= 2
                track = pitch_track(heard, low, high)
                assert len(track) >= 150  # the tone came out of the speaker, nearly all of its 2 s
                # It rises from start to end: each 100 ms's median pitch over the one before (a concealed frame
                # is libopus's guess, so single 10 ms steps may go either way).
                medians = [np.median(track[at:at + 10]) for at in range(0, len(track) - 9, 10)]
                assert np.all(np.diff(medians) > 0), medians
                assert medians[-1] - medians[0] > 0.8 * (high - low)

        try:
            run(scenario())
        finally:
            relay.close()
