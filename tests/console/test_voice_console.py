"""Live voice at the console, every part real: a gateway whose radio receive and transmit audio are
PulseAudio null sinks, PTT on a serial device server's RTS (RFC 2217), a real Mosquitto, a bridge on
SQLite, and the console headless (``run_test``) with its speaker and microphone on null sinks of their own
(support.ConsoleSound). What the console plays and what the radio transmits are checked by this
project's own DTMF decoder; the keys are the dispatcher's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rig import CountingApp, run, until
from support import ConsoleSound, DeviceServer, Listener, Mosquitto, PulseNullSink, wait_until
from textual.pilot import Pilot

from bridge.service import Bridge
from config.schema import Config, parse_config
from console.app import TALK_REPEAT_S
from console.screens.confirm import ConfirmScreen
from drivers.audio import mdc1200
from drivers.audio.dtmf import DtmfDecoder, dtmf_tones
from drivers.audio.source import Resampler
from gateway.events import Decoded, Kind
from gateway.runner import Gateway
from gateway.voice import RATE

GW = "gw-voice"
NOW = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def dtmf_heard(x: np.ndarray, rate: int = RATE) -> list[str]:
    r = Resampler(rate, 8000)
    y = np.concatenate([r.feed(x), r.flush()]).astype(np.float32)
    decoder = DtmfDecoder(rate=8000)
    out = decoder.feed(y, NOW) + decoder.flush(NOW)
    return [o.detail["digits"] for o in out if isinstance(o, Decoded) and o.kind == Kind.STATUS]


@pytest.fixture
def sound(pulse_radio: PulseNullSink) -> Iterator[ConsoleSound]:
    s = ConsoleSound(pulse_radio)
    s.start()
    yield s
    s.stop()


def voice_config(tmp_path: Path, mosquitto: Mosquitto, device_server: DeviceServer, *, name: str = "desk-1",
                 operator: str = "alice", **console: Any) -> Config:
    """The site: patrol-1 (receive and transmit, PTT on RTS) and the receive-only marine-16; the console's
    name, operator and voice devices (``console`` overrides, e.g. its own ``url`` through a relay)."""
    url = console.pop("url", mosquitto.url)
    return parse_config({
        "data_dir": str(tmp_path / "data"),
        "gateway": {"name": GW, "outbox": str(tmp_path / "outbox.sqlite"), "state_interval_s": 1},
        "mqtt": {"url": url},
        "bridge": {"database_url": f"sqlite:///{tmp_path / 'bridge.sqlite'}"},
        "console": {"name": name, "operator": operator, "audio_device": ConsoleSound.speaker,
                    "microphone": ConsoleSound.microphone, **console},
        "channels": [
            {"name": "patrol-1",
             "drivers": [{"type": "audio", "device": "pulse", "rate": RATE, "decoders": ["mdc1200", "dtmf"]}],
             "voice": {"silence_ms": 800},
             "transmit": {"device": "pulse", "rate": RATE, "lead_in_ms": 100, "tail_ms": 100, "timeout_s": 30,
                          "ptt": {"method": "serial", "port": device_server.url, "line": "rts"}}},
            {"name": "marine-16", "receive_only": True, "drivers": [],
             "transmit": {"device": f"wav:{tmp_path / 'marine.wav'}"}},
        ]})


class Voice:
    """A gateway and a bridge running on ``config``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.bridge = Bridge(config)
        self.gateway = Gateway(config)

    def __enter__(self) -> Voice:
        self.bridge.start()
        self.gateway.start()
        wait_until(self.gateway.voice.subscribed.is_set, 10, "the gateway's voice subscriptions")
        wait_until(lambda: self.bridge.connected, 10, "the bridge")
        wait_until(lambda: all(d.snapshot()["state"] in ("open", "up") for _, d in self.gateway.drivers), 10,
                   "the sound device")
        # The first stream into the transmit sink loses its start in the monitor's recording: a moment of
        # silence first (see tests/gateway/test_voice_live.py).
        self.gateway.transmitters["patrol-1"].output.play(np.zeros(RATE // 5, np.float32), threading.Event())
        return self

    def __exit__(self, *_: object) -> None:
        self.gateway.stop()
        self.bridge.stop()


async def choose(pilot: Pilot[None], app: CountingApp, channel: str) -> None:
    """The voice panel focused on ``channel``'s row (once the gateway's state named it)."""
    panel = app.dispatch.voice
    await until(pilot, lambda: f"{GW}/{channel}" in panel.views, f"{channel} in the voice panel")
    await pilot.press("c")
    panel.move_cursor(row=list(panel.views).index(f"{GW}/{channel}"))
    await pilot.pause()
    assert panel.selected is not None and panel.selected.channel == channel


def cell(app: CountingApp, channel: str, column: str) -> str:
    panel = app.dispatch.voice
    try:
        return str(panel.get_cell(f"{GW}/{channel}", column))
    except Exception:  # noqa: BLE001 - the row not drawn yet
        return ""


def test_a_dispatcher_listens_and_hears_the_channel_with_the_unit_named(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, sound: ConsoleSound,
    device_server: DeviceServer
) -> None:
    """``l`` on a channel of the voice panel: the console leases it, and what the radio receives (an MDC-1200
    PTT ID, DTMF, the ID again at de-key) comes out of the console's speaker, decodable by our DTMF
    decoder; the panel shows the channel busy, the unit talking and the level, and idle again after."""
    config = voice_config(tmp_path, mosquitto, device_server)
    with Voice(config) as site:
        app = CountingApp(config)

        async def scenario() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                await choose(pilot, app, "patrol-1")
                await pilot.press("l")
                await until(pilot, lambda: "on" in cell(app, "patrol-1", "listen"), "listening in the panel")
                await until(pilot, lambda: site.gateway.voice.channels["patrol-1"].listeners(time.monotonic()) == 1,
                            "the gateway's lease")
                speaker = sound.record_speaker()
                burst = np.concatenate([
                    mdc1200.encode(mdc1200.ptt_id(0x1234), rate=RATE, lead_s=0.1, tail_s=0.05),
                    dtmf_tones("*911*1234#", RATE, lead_s=0.1, tail_s=0.2),
                    mdc1200.encode(mdc1200.ptt_id(0x1234, post=True), rate=RATE, tail_s=0.05)])
                pulse_radio.play(burst, RATE)
                await until(pilot, lambda: cell(app, "patrol-1", "busy") == "BUSY", "busy in the panel")
                await until(pilot, lambda: cell(app, "patrol-1", "talking") == "mdc:1234", "the unit talking")
                await until(pilot, lambda: "▮" in cell(app, "patrol-1", "level"), "the level")
                await until(pilot, lambda: cell(app, "patrol-1", "busy") == "idle", "idle again", timeout=15)
                held = app.voice.listened[(GW, "patrol-1")]
                await until(pilot, lambda: held.buffer.stats.spurts >= 1, "the spurt played to its end")
                await pilot.pause(0.3)  # the speaker's monitor passes on the last of it
                assert dtmf_heard(speaker.samples()) == ["*911*1234#"]
                assert held.buffer.stats.late == 0
                speaker.stop()

                await pilot.press("l")  # stops listening: the lease ends at once
                await until(pilot, lambda: site.gateway.voice.channels["patrol-1"].listeners(time.monotonic()) == 0,
                            "no lease")

        run(scenario())


def test_an_emergency_is_listened_to_by_itself_and_its_radio_remote_monitored(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, sound: ConsoleSound,
    device_server: DeviceServer
) -> None:
    """An MDC-1200 emergency decoded on patrol-1 opens an incident; the console starts listening to
    patrol-1 by itself (the panel says why), and ``M`` on the incident sends the radio the remote-monitor
    packet (the gateway reports it ``sent``, keyed on RTS; the dispatcher reads it, the case's history keeps
    it), after which what the radio hears is heard."""
    config = voice_config(tmp_path, mosquitto, device_server)
    with Voice(config) as site:
        app = CountingApp(config)
        results = Listener(mosquitto.url, f"pttbridge/v1/gw/{GW}/event/io")

        async def scenario() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                await until(pilot, lambda: app.broker is True and f"{GW}/patrol-1" in app.dispatch.voice.views,
                            "the console ready")
                pulse_radio.play(mdc1200.encode(mdc1200.emergency(0x4321), rate=RATE, lead_s=0.1, tail_s=0.2), RATE)
                await until(pilot, lambda: app.dispatch.queue.selected_id is not None, "the emergency", timeout=15)
                await until(pilot, lambda: "emergency #" in cell(app, "patrol-1", "listen"), "listening by itself")
                await until(pilot, lambda: site.gateway.voice.channels["patrol-1"].listeners(time.monotonic()) == 1,
                            "the console's lease")
                speaker = sound.record_speaker()
                await pilot.press("M")
                wait_until(lambda: results.events(), 15, "the remote monitor's result")
                [result] = results.events()
                assert result["detail"]["command"] == "remote_monitor" and result["detail"]["result"] == "sent"
                assert result["unit"] == "mdc:4321" and result["detail"]["operator"] == "alice"
                case_id = app.dispatch.queue.selected_id
                assert result["detail"]["case"] == case_id
                # The dispatcher reads how it went, and the case's history keeps it.
                told = f"Remote monitor, #{case_id}: sent to mdc:4321 on {GW}/patrol-1, the channel streamed 30 s, " \
                       "asked by alice"
                await until(pilot, lambda: told in app.notes, "the result told to the dispatcher", timeout=10)
                assert case_id is not None
                detail = site.bridge.store.incident_detail(case_id)  # type: ignore[union-attr]
                assert detail is not None
                assert [(h.action, h.actor) for h in detail.history if h.action == "remote_monitor"] == [
                    ("remote_monitor", "bridge")]
                wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 10, "RTS released")
                assert device_server.rts().count("RTS 1") == 1
                held = app.voice.listened[(GW, "patrol-1")]
                await until(pilot, lambda: not held.buffer.playing and cell(app, "patrol-1", "busy") == "idle",
                            "the emergency's own transmission over")
                spurts = held.buffer.stats.spurts
                pulse_radio.play(dtmf_tones("42", RATE, lead_s=0.1, tail_s=0.3), RATE)  # the radio's microphone
                await until(pilot, lambda: held.buffer.stats.spurts > spurts, "the monitored audio played",
                            timeout=15)
                await pilot.pause(0.3)
                assert dtmf_heard(speaker.samples())[-1:] == ["42"]
                speaker.stop()

        try:
            run(scenario())
        finally:
            results.close()


def test_the_talk_key_keys_the_radio_and_the_dispatchers_voice_goes_out(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, sound: ConsoleSound,
    device_server: DeviceServer
) -> None:
    """``k`` asks for the floor; once granted, DTMF said into the console's microphone comes out of the
    radio's transmit sink decodable, with PTT keyed; ``k`` again releases it. A receive-only channel
    refuses and the dispatcher reads why; radio traffic refuses ``k`` but ``K`` (confirmed) talks over it."""
    config = voice_config(tmp_path, mosquitto, device_server)
    with Voice(config):
        app = CountingApp(config)
        on_air = pulse_radio.record_tx()

        async def scenario() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                await choose(pilot, app, "patrol-1")
                await pilot.press("k")
                await until(pilot, lambda: cell(app, "patrol-1", "floor") == "YOU ARE TALKING", "granted")
                await until(pilot, lambda: cell(app, "patrol-1", "ptt") == "TX", "keyed in the panel")
                assert device_server.rts()[-1:] == ["RTS 1"]
                said = sound.say(dtmf_tones("*7#", RATE, lead_s=0.2, tail_s=0.4))
                wait_until(lambda: said.poll() is not None, 10, "the dispatcher's words said")
                await pilot.pause(0.3)  # the microphone's last block
                await pilot.press("k")
                await until(pilot, lambda: cell(app, "patrol-1", "floor") == "", "released")
                wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 10, "RTS released")
                assert device_server.rts() == ["RTS 0", "RTS 1", "RTS 0"]
                await pilot.pause(0.3)
                assert dtmf_heard(on_air.samples()) == ["*7#"]
                assert app.voice.frames_sent > 20

                await pilot.pause(TALK_REPEAT_S)
                await choose(pilot, app, "marine-16")
                await pilot.press("k")
                await until(pilot, lambda: any("refused" in n for n in app.notes), "the refusal")
                assert any("Talk on marine-16@gw-voice refused: channel marine-16 is receive-only" in n
                           for n in app.notes)

                # Radio traffic on patrol-1: k is refused, K (confirmed) talks over it.
                pulse_radio.play(0.3 * np.sin(2 * np.pi * 800 * np.arange(4 * RATE) / RATE).astype(np.float32), RATE)
                await choose(pilot, app, "patrol-1")
                await until(pilot, lambda: cell(app, "patrol-1", "busy") == "BUSY", "busy")
                await pilot.pause(TALK_REPEAT_S)
                await pilot.press("k")
                await until(pilot, lambda: any("busy with radio traffic" in n for n in app.notes), "busy refusal")
                await pilot.press("K")
                assert isinstance(app.screen, ConfirmScreen)
                await pilot.press("y")
                await until(pilot, lambda: cell(app, "patrol-1", "floor") == "YOU ARE TALKING", "override granted")
                await pilot.press("K")  # the same key ends it
                await until(pilot, lambda: cell(app, "patrol-1", "floor") == "", "released")
                wait_until(lambda: device_server.rts()[-1:] == ["RTS 0"], 10, "RTS released")

        try:
            run(scenario())
        finally:
            on_air.stop()
