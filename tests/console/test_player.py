"""The clip player against a real PortAudio device (a private PulseAudio null sink): a 1 kHz tone clip
made here as FLAC comes out of the sink at 1 kHz, the level bar moves with it, and a pause holds the
position until resumed. Also: a call whose audio has not arrived says so."""

from __future__ import annotations

import io
import threading

import numpy as np
import soundfile
from rig import run, until
from support import PulseNullSink
from textual.app import App, ComposeResult
from textual.message import Message
from textual.widgets import Footer, Static

from console.widgets.player import DONE, FAILED, PAUSED, PLAYING, ClipPlayer

RATE = 16000  # a radio clip's rate: the sink runs at 48 kHz, so the way there resamples


def tone_flac(seconds: float, hz: float = 1000.0, amplitude: float = 0.5) -> bytes:
    t = np.arange(round(seconds * RATE)) / RATE
    buf = io.BytesIO()
    soundfile.write(buf, (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32), RATE, format="FLAC")
    return buf.getvalue()


class PlayerHost(App[None]):
    """The player under a table-like widget that has the keys until a clip plays."""

    def __init__(self, device: str | None) -> None:
        super().__init__()
        self.player = ClipPlayer(device=device)
        self.before = Static("results", id="before")
        self.before.can_focus = True

    def compose(self) -> ComposeResult:
        yield self.before
        yield self.player
        yield Footer()

    def on_mount(self) -> None:
        self.before.focus()


def test_a_tone_clip_comes_out_of_the_device_with_level_and_pause(pulse_null_sink: PulseNullSink) -> None:
    from drivers.audio.source import DeviceSource

    clip = tone_flac(2.5)
    source = DeviceSource(pulse_null_sink.device, 48000)
    heard: list[np.ndarray] = []
    stop = threading.Event()

    def capture() -> None:
        for block, _ in source.blocks():
            heard.append(block[:, 0].copy())
            if stop.is_set():
                return

    reader = threading.Thread(target=capture, daemon=True)
    reader.start()
    app = PlayerHost(pulse_null_sink.device)
    progress: list[ClipPlayer.Progress] = []
    bars: set[str] = set()

    def hook(message: Message) -> None:
        if isinstance(message, ClipPlayer.Progress):
            progress.append(message)

    async def scenario() -> None:
        async with app.run_test(size=(100, 12), message_hook=hook) as pilot:
            player = app.player
            player.play("call-1", "mdc:1001 patrol-1@gw1", lambda: ("flac", clip))
            await pilot.pause()
            assert app.focused is player  # space and escape are the player's now

            def half_way() -> bool:
                bars.add(player.line.plain)
                return player.state == PLAYING and player.position_s > 0.8

            await until(pilot, half_way, "the clip to play for a while")
            assert player.duration_s == 2.5
            assert player.level_db > -12  # the tone is at -9 dBFS
            assert any("████████████" in b and "dBFS" in b for b in bars), bars

            await pilot.press("space")
            await until(pilot, lambda: player.state == PAUSED, "the pause")
            held = player.position_s
            reports = len(progress)
            await pilot.pause(0.4)  # time passes while paused: the position must not
            assert player.state == PAUSED and player.position_s == held and len(progress) == reports
            assert "PAUSED" in player.line.plain

            await pilot.press("space")
            await until(pilot, lambda: player.position_s > held, "playing again")
            await until(pilot, lambda: player.state == DONE, "the end of the clip", timeout=15)
            assert player.position_s == 2.5
            levels = [p.level_db for p in progress if p.state == PLAYING]
            assert min(levels) < -50 < -12 < max(levels)  # the bar started empty and moved

            await pilot.press("escape")
            assert app.focused is app.before and not player.has_class("-shown")

    try:
        run(scenario())
    finally:
        stop.set()
        source.close()
        reader.join(3)
    x = np.concatenate(heard)
    loud = x[np.abs(x) > 0.2]
    assert len(loud) > 0.5 * 48000 * 2.5 * 0.6  # most of the tone came through
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * 48000 / len(x) - 1000) < 5


def test_a_call_without_its_audio_says_so() -> None:
    app = PlayerHost(device=None)

    async def scenario() -> None:
        async with app.run_test(size=(100, 12)) as pilot:
            app.player.play("call-2", "fleetsync:100-1001 fire@gw2", lambda: None)
            await until(pilot, lambda: app.player.state == FAILED, "the failure")
            assert "no audio stored for this call" in app.player.line.plain
            assert app.player.has_class("-failed")
            await pilot.press("escape")
            assert app.focused is app.before

    run(scenario())
