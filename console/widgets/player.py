"""The clip player: a received transmission played on the console's sound output, with its level and
position, because the officer's voice is often the most important evidence.

    play(event_id, title, loader)   the clip is read (``loader``: Store.clip in a worker), decoded with
                                    soundfile (FLAC, Ogg Opus) and played through sounddevice (PortAudio)
    space   pause / resume          escape  stop (and give the keys back to where they were)

Everything blocking (the database, decoding, PortAudio's blocking writes) runs in one worker thread per
clip; it reports with :class:`ClipPlayer.Progress` messages about ten times a second, and the widget only
draws what they say. The output device is ``[console] audio_device`` (default: the system's output).

    ▶ mdc:1001 patrol-1@gw1  0:01.2 / 0:03.0  ██████████░░░░░░░░░░ -12 dBFS   space pause · esc stop
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from console.format import shown
from drivers.audio.playback import resample_to
from drivers.audio.source import AudioSourceError, find_output_device, load_sounddevice

ClipLoader = Callable[[], tuple[str, bytes] | None]  # (codec, bytes), or None: not stored (yet)

BLOCK_S = 0.02  # written 20 ms at a time: a pause or a stop takes effect at once
REPORT_EVERY = 5  # blocks between reports: ten a second is smooth enough for a bar, and cheap
FLOOR_DB = -60.0  # the bar's empty end: quieter than this is silence on a radio channel
BAR = 20  # cells
FALLBACK_RATE = 48000  # what to resample to when the device refuses the clip's own rate

IDLE, LOADING, PLAYING, PAUSED, DONE, STOPPED, FAILED = "idle", "loading", "playing", "paused", "done", "stopped", \
    "failed"


def dbfs(block: np.ndarray) -> float:
    """RMS level relative to full scale (a full-scale sine is -3 dBFS); :data:`FLOOR_DB` for silence."""
    if len(block) == 0:
        return FLOOR_DB
    rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64))))
    return max(FLOOR_DB, 20 * math.log10(rms)) if rms > 0 else FLOOR_DB


def level_bar(level_db: float, width: int = BAR) -> str:
    filled = round(width * (min(max(level_db, FLOOR_DB), 0.0) - FLOOR_DB) / -FLOOR_DB)
    return "█" * filled + "░" * (width - filled)


def clock(seconds: float) -> str:
    m, s = divmod(max(seconds, 0.0), 60)
    return f"{int(m)}:{s:04.1f}"


@dataclass
class _Control:
    """What the UI tells one playback's thread."""

    stop: threading.Event
    running: threading.Event  # cleared while paused


class ClipPlayer(Static, can_focus=True):
    DEFAULT_CSS = """
    ClipPlayer {
        height: 3;
        border: round $accent;
        border-title-style: bold;
        padding: 0 1;
        display: none;
    }
    ClipPlayer.-shown {
        display: block;
    }
    ClipPlayer:focus {
        border: round $accent-lighten-2;
    }
    ClipPlayer.-failed {
        border: round $error;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "pause", "Pause/resume"),
        Binding("escape", "stop", "Stop"),
    ]

    class Progress(Message):
        """From the playback thread: where it is, how loud, in what state (``error`` when failed)."""

        def __init__(self, serial: int, state: str, position_s: float = 0.0, duration_s: float = 0.0,
                     level_db: float = FLOOR_DB, error: str | None = None) -> None:
            super().__init__()
            self.serial, self.state = serial, state
            self.position_s, self.duration_s, self.level_db, self.error = position_s, duration_s, level_db, error

    def __init__(self, device: str | None = None, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.device = device  # None: [console] audio_device, else the system's default output
        self.state = IDLE
        self.event_id: str | None = None
        self.title = ""
        self.position_s = 0.0
        self.duration_s = 0.0
        self.level_db = FLOOR_DB
        self.error: str | None = None
        self._serial = 0
        self._control: _Control | None = None
        self._return_to: Widget | None = None
        self.line = Text()

    # --- what screens call -----------------------------------------------------------------------

    def play(self, event_id: str, title: str, loader: ClipLoader) -> None:
        """Play a call's clip (stopping whatever was playing); the keys come here until it is stopped."""
        self._halt()
        self._serial += 1
        self._control = _Control(threading.Event(), threading.Event())
        self._control.running.set()
        self.event_id, self.title = event_id, title
        self.state, self.position_s, self.duration_s, self.level_db, self.error = LOADING, 0.0, 0.0, FLOOR_DB, None
        self.border_title = "Transmission"
        self.add_class("-shown")
        self.remove_class("-failed")
        focused = self.screen.focused
        if focused is not self:
            self._return_to = focused
        self.call_after_refresh(self.focus)  # once shown: a hidden widget cannot take the focus
        self._draw()
        self._run(self._serial, self._control, loader, self._device())

    def _device(self) -> str | None:
        if self.device is not None:
            return self.device
        settings = getattr(self.app, "settings", None)
        return getattr(settings, "audio_device", None)

    def _halt(self) -> None:
        if self._control is not None:
            self._control.stop.set()
            self._control.running.set()  # a paused thread wakes to see the stop
            self._control = None

    def action_pause(self) -> None:
        c = self._control
        if c is None or self.state not in (PLAYING, PAUSED):
            return
        if c.running.is_set():
            c.running.clear()
        else:
            c.running.set()

    def action_stop(self) -> None:
        was_playing = self.state in (LOADING, PLAYING, PAUSED)
        self._halt()
        if was_playing:
            self.state = STOPPED
        self.remove_class("-shown")
        target = self._return_to
        self._return_to = None
        if target is not None and target.is_attached and target.can_focus:
            target.focus()
        else:
            self.screen.focus_next()

    def on_unmount(self) -> None:
        self._halt()  # a screen dismissed mid-clip does not leave the sound card playing

    # --- what the thread reports -----------------------------------------------------------------

    def on_clip_player_progress(self, message: Progress) -> None:
        if message.serial != self._serial:
            return  # a clip stopped since: its last words do not matter
        if self.state == STOPPED and message.state != FAILED:
            return
        self.state, self.position_s, self.duration_s = message.state, message.position_s, message.duration_s
        self.level_db, self.error = message.level_db, message.error
        self.set_class(message.state == FAILED, "-failed")
        self._draw()

    def _draw(self) -> None:
        line = Text(no_wrap=True, overflow="ellipsis")
        mark = {LOADING: "…", PLAYING: "▶", PAUSED: "⏸", DONE: "■", STOPPED: "■", FAILED: "✖"}.get(self.state, " ")
        line.append(f"{mark} {shown(self.title)}  ", style="bold")
        if self.state == FAILED:
            line.append(shown(self.error or "cannot play"), style="bold red")
        elif self.state == LOADING:
            line.append("loading the clip…")
        else:
            line.append(f"{clock(self.position_s)} / {clock(self.duration_s)}  ")
            level = self.level_db if self.state == PLAYING else FLOOR_DB
            line.append(level_bar(level), style="green" if level < -6 else "bold yellow")
            line.append(f" {level:4.0f} dBFS" if level > FLOOR_DB else "    - dBFS")
            hint = {PLAYING: "space pause · esc stop", PAUSED: "PAUSED · space resume · esc stop",
                    DONE: "done · esc close"}.get(self.state, "")
            line.append(f"   {hint}", style="dim")
        self.line = line  # what it says, for tests and screenshots in words
        self.update(line)

    # --- the playback thread ---------------------------------------------------------------------

    @work(thread=True, group="clip-player")
    def _run(self, serial: int, control: _Control, loader: ClipLoader, device: str | None) -> None:
        def report(state: str, position: float = 0.0, duration: float = 0.0, level: float = FLOOR_DB,
                   error: str | None = None) -> None:
            self.post_message(self.Progress(serial, state, position, duration, level, error))

        try:
            clip = loader()
        except Exception as exc:  # noqa: BLE001 - the database away: say so on the player, not in a traceback
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            report(FAILED, error=f"cannot read the clip: {why}")
            return
        if clip is None:
            report(FAILED, error="no audio stored for this call (yet)")
            return
        codec, data = clip
        try:
            import soundfile

            decoded, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - soundfile raises LibsndfileError, RuntimeError on old builds; a bad clip must not end the console
            report(FAILED, error=f"cannot decode the {codec} clip: {exc}")
            return
        samples = decoded.mean(axis=1).astype(np.float32)  # a radio channel is mono; a stereo clip is mixed
        duration = len(samples) / rate
        try:
            self._play(samples, int(rate), duration, device, control, report)
        except AudioSourceError as exc:
            report(FAILED, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - PortAudio mid-clip (a headset unplugged): the console must live on
            report(FAILED, error=f"playback stopped: {exc}")

    @staticmethod
    def _play(samples: np.ndarray, rate: int, duration: float, device: str | None, control: _Control,
              report: Callable[..., None]) -> None:
        sd = load_sounddevice()
        index = find_output_device(device)
        played_rate = rate
        try:
            stream = sd.OutputStream(device=index, samplerate=rate, channels=1, dtype="float32")
        except (sd.PortAudioError, ValueError):
            # Some cards take only their own rate (a clip is 8 or 16 kHz): resample rather than refuse.
            samples = resample_to(samples, rate, FALLBACK_RATE)
            played_rate = FALLBACK_RATE
            try:
                stream = sd.OutputStream(device=index, samplerate=played_rate, channels=1, dtype="float32")
            except (sd.PortAudioError, ValueError) as exc:
                name = device if device not in (None, "") else "the default output"
                raise AudioSourceError(f"cannot play on {name}: {exc}") from exc
        block = max(64, round(played_rate * BLOCK_S))
        with stream:
            stream.start()
            report(PLAYING, 0.0, duration, FLOOR_DB)
            for n, at in enumerate(range(0, len(samples), block), start=1):
                if not control.running.is_set():
                    stream.stop()  # not an underflow of silence: the card stops until resumed
                    report(PAUSED, at / played_rate, duration, FLOOR_DB)
                    control.running.wait()
                    if control.stop.is_set():
                        break
                    stream.start()
                if control.stop.is_set():
                    stream.abort()
                    return
                chunk = samples[at:at + block]
                level = dbfs(chunk)
                stream.write(chunk.reshape(-1, 1))
                if n % REPORT_EVERY == 0:
                    report(PLAYING, (at + len(chunk)) / played_rate, duration, level)
            else:
                # write() returns once the last block is queued: wait until it has been heard.
                control.stop.wait(stream.latency + BLOCK_S)
        if control.stop.is_set():
            return
        report(DONE, duration, duration, FLOOR_DB)
