"""Audio out: what a transmitter plays into the radio's microphone input.

    DeviceOutput   a sound card output through sounddevice (PortAudio), one radio per output channel
    WavOutput      appends each transmission to a WAV file (a dry run: the field box has no radio yet)

``play`` blocks until the last sample has left the card (or ``abort`` is set), so that the transmitter
releases PTT only after the tail of the burst, never in the middle of it. ``play_stream`` plays audio
that is not all there yet (a dispatcher talking live): it asks ``next_block()`` for each block as the
card takes it (so the card sets the pace) until it answers None.
"""

from __future__ import annotations

import logging
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from drivers.audio.base import Samples
from drivers.audio.source import AudioSourceError, Resampler, find_output_device, load_sounddevice

# Live audio comes in 20 ms frames, played through 5 ms periods (LIVE_PERIOD_S) into a LIVE_BUFFER_S
# buffer: a frame is written once its room is free and heard LIVE_BUFFER_S later, and the writing thread
# has LIVE_BUFFER_S - 20 ms of slack. With 20 ms periods PortAudio makes the buffer two periods: 40 ms of
# delay for the same slack. The gateway's transmit stream and the console's speaker both play so.
LIVE_PERIOD_S = 0.005
LIVE_BUFFER_S = 0.025
log = logging.getLogger(__name__)


class AudioOutput(Protocol):
    name: str
    rate: int

    def play(self, samples: Samples, abort: threading.Event) -> None:
        """Play mono ``samples`` at :attr:`rate`; raises AudioSourceError or OSError."""

    def play_stream(self, next_block: Callable[[], Samples | None], abort: threading.Event) -> None:
        """Play the blocks ``next_block`` gives (mono, at :attr:`rate`) until it gives None; same errors."""


class DeviceOutput:
    """One output channel of a sound device; opened per transmission (an idle stream would hold the card)."""

    def __init__(self, device: int | str | None, rate: int = 48000, *, channels: int = 1, output: int = 1) -> None:
        if not 1 <= output <= channels:
            raise ValueError(f"output {output} of a {channels}-channel device")
        self.name = f"device:{device if device not in (None, '') else 'default'}"
        self.device, self.rate, self.channels, self.output = device, rate, channels, output

    def play(self, samples: Samples, abort: threading.Event) -> None:
        sd = load_sounddevice()
        index = find_output_device(self.device)
        frames = np.zeros((len(samples), self.channels), dtype=np.float32)
        frames[:, self.output - 1] = samples
        block = max(256, self.rate // 50)  # 20 ms: an abort (stuck-PTT timeout) takes effect quickly
        try:
            with sd.OutputStream(device=index, samplerate=self.rate, channels=self.channels, dtype="float32",
                                 blocksize=block) as stream:
                for at in range(0, len(frames), block):
                    if abort.is_set():
                        stream.abort()
                        return
                    stream.write(frames[at:at + block])
                # write() returns once the last block is queued; wait for it to be heard.
                abort.wait(stream.latency + block / self.rate)
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioSourceError(f"cannot play into {self.name} at {self.rate} Hz: {exc}") from exc

    def play_stream(self, next_block: Callable[[], Samples | None], abort: threading.Event) -> None:
        sd = load_sounddevice()
        index = find_output_device(self.device)
        block = max(256, self.rate // 50)
        try:
            # Low latency, with slack for the writing thread (see LIVE_BUFFER_S).
            with sd.OutputStream(device=index, samplerate=self.rate, channels=self.channels, dtype="float32",
                                 blocksize=max(1, round(self.rate * LIVE_PERIOD_S)), latency=LIVE_BUFFER_S
                                 ) as stream:
                while not abort.is_set():
                    samples = next_block()
                    if samples is None:
                        abort.wait(stream.latency + block / self.rate)
                        return
                    frames = np.zeros((len(samples), self.channels), dtype=np.float32)
                    frames[:, self.output - 1] = samples
                    stream.write(frames)
                stream.abort()
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioSourceError(f"cannot play into {self.name} at {self.rate} Hz: {exc}") from exc


class WavOutput:
    """Appends what would have been transmitted to a WAV file (16-bit mono), one file per channel."""

    def __init__(self, path: str | Path, rate: int = 8000) -> None:
        self.path = Path(path)
        self.name = f"wav:{self.path}"
        self.rate = rate
        self._lock = threading.Lock()

    def play(self, samples: Samples, abort: threading.Event) -> None:
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
        with self._lock:
            old = b""
            if self.path.exists():
                with wave.open(str(self.path), "rb") as r:
                    old = r.readframes(r.getnframes())
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(self.path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(self.rate)
                w.writeframes(old + pcm.tobytes())

    def play_stream(self, next_block: Callable[[], Samples | None], abort: threading.Event) -> None:
        """Collects the blocks, in real time (a file sets no pace), and appends them as one transmission."""
        blocks: list[Samples] = []
        while not abort.is_set():
            samples = next_block()
            if samples is None:
                break
            blocks.append(samples)
            abort.wait(len(samples) / self.rate)
        if blocks:
            self.play(np.concatenate(blocks).astype(np.float32), abort)


def resample_to(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """A whole burst from the encoder's rate to the output's."""
    if from_rate == to_rate:
        return samples
    r = Resampler(from_rate, to_rate)
    return np.concatenate([r.feed(samples), r.flush()]).astype(np.float32)


def open_output(spec: str, rate: int, *, channels: int = 1, output: int = 1) -> AudioOutput:
    """``wav:PATH`` or a device (name, part of a name, or index; empty = the default output)."""
    if spec.startswith("wav:"):
        return WavOutput(spec[4:], rate)
    try:
        return DeviceOutput(spec.removeprefix("device:"), rate, channels=channels, output=output)
    except ValueError as exc:
        raise AudioSourceError(str(exc)) from exc
