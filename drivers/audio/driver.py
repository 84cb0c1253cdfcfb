"""The audio I/O driver: one capture stream per device, split into radios, each feeding its decoders.

Thin on purpose, like the serial driver: decoding is in the sans-I/O decoders, reading in the sources.

    device (or recording) --blocks--> LevelMeter (health)
        | split by input
        +-- radio on input 1 --resample to each decoder's rate--> CallRecorder ----------> on_call (first:
        |                                                         dtmf, dmr, ... --heard--^   what is decoded
        |                                                                     `--events--> sink   then names
        +-- radio on input 2 --> ...                                                           the call)

A radio's live voice tap gets every block as captured (20 ms from a sound card); its recorder and
decoders get the blocks gathered to ``decode_ms`` (100 ms), as a call costs them a fixed time on top of
the work per sample.

Several channels' tables that name one device share one driver (``share_key``), each attached as a
radio on its input. A device that goes away (unplugged, PulseAudio restarted) is reopened with backoff
and a logged reason, whatever the sound library raised (the loop is :class:`drivers.io.IoDriver`'s); a
recording ends, its decoders are flushed and the driver says "ended" (or starts it again, ``loop``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from config.schema import AudioDriverConfig, ConfigError
from drivers.audio.base import AudioTap, Heard, Samples
from drivers.audio.recorder import CallMark, CallRecorder
from drivers.audio.source import (
    AudioSource,
    AudioSourceError,
    ChannelSplitter,
    LevelMeter,
    Resampler,
    open_source,
)
from drivers.audio.workers import Decoders, RemoteDecoders, WorkerLost
from drivers.base import Output
from drivers.io import STOP_WAIT_S, CallSink, Counters, DeviceError, DriverContext, IoDriver, Sink
from drivers.registry import UnknownProtocol, audio_decoder_class, create_audio_decoder

log = logging.getLogger(__name__)


@dataclass
class Radio:
    """One radio's receive audio: an input of the stream and the decoders listening to it."""

    name: str
    input: int  # 1-based, as technicians count the inputs of an interface
    decoding: Decoders | RemoteDecoders  # its decoders, here or in a worker process
    sink: Sink
    counters: Counters = field(default_factory=lambda: Counters(("decoded", "rejected")))
    resamplers: dict[int, Resampler] = field(default_factory=dict)
    recorder: CallRecorder | None = None
    on_call: CallSink | None = None
    tap: AudioTap | None = None  # the live voice stream of the channel
    decode_s: float = 0.0
    held: list[tuple[Samples, datetime]] = field(default_factory=list)  # blocks gathered for the decoders
    held_samples: int = 0  # in those blocks


def _stream(config: AudioDriverConfig) -> tuple[str, int, int]:
    replay = config.device.startswith(("wav:", "file:")) or config.device.endswith(".wav")
    return (config.device if replay else f"device:{config.device}", config.rate, config.channels)


class AudioDriver(IoDriver[AudioSource, AudioDriverConfig]):
    """Reads one audio source on a thread of its own and feeds the radios attached to it."""

    TYPE = "audio"
    CONFIG = AudioDriverConfig
    # Audio decoders reject what noise happens to start (a sync word without a valid frame): often, and
    # not worth a warning each time.
    REJECTED_LOG_LEVEL = logging.INFO

    def __init__(
        self,
        name: str,
        spec: str,
        *,
        rate: int,
        channels: int,
        realtime: bool = True,
        loop: bool = False,
        on_health: Callable[[], None] | None = None,
        opener: Callable[[], AudioSource] | None = None,
    ) -> None:
        super().__init__(name, on_health=on_health)
        self.spec = spec
        self.rate = rate
        self.channels = channels
        self.loop = loop
        # A recording replayed in real time is timed from when it starts playing, like a live device.
        self._opener = opener or (lambda: open_source(spec, rate=rate, channels=channels, realtime=realtime,
                                                      start=datetime.now(UTC) if realtime else None))
        self.radios: list[Radio] = []
        self.meter: LevelMeter | None = None
        self._splitter = ChannelSplitter(channels)
        self._rate = rate  # the open source's rate

    # --- building from configuration ----------------------------------------------------------

    @classmethod
    def share_key(cls, config: AudioDriverConfig) -> Hashable:
        """One capture stream per device: ``(source spec, rate, channels)``."""
        return _stream(config)

    @classmethod
    def from_config(cls, config: AudioDriverConfig, ctx: DriverContext) -> AudioDriver:
        spec, rate, channels = _stream(config)
        return cls(f"audio:{config.device}", spec, rate=rate, channels=channels, realtime=True, loop=config.loop,
                   on_health=ctx.on_health)

    def attach(self, config: AudioDriverConfig, ctx: DriverContext) -> None:
        """The radio a channel's table puts on an input of this stream, with its decoders."""
        decoders = []
        for name in config.decoders:
            try:
                rate = audio_decoder_class(name).rate_for(self.rate)  # never up from the stream's rate
                decoders.append(create_audio_decoder(name, rate, config.options.get(name)))
            except UnknownProtocol as exc:
                raise ConfigError(f"{ctx.key}.decoders: {exc}") from None
            except ValueError as exc:
                raise ConfigError(f"{ctx.key}.options.{name}: {exc}") from None
        radio = f"{ctx.channel}/{config.name or 'audio'}"
        if not 1 <= config.input <= self.channels:
            raise ConfigError(f"{ctx.key}.input: {radio}: input {config.input} of a {self.channels}-channel stream")
        recording = ctx.take_recorder()
        recorder, on_call = recording if recording is not None else (None, None)
        decoding: Decoders | RemoteDecoders = Decoders(decoders)
        if ctx.decode_pool is not None:  # made here all the same: the configuration is checked in the gateway
            decoding = ctx.decode_pool.radio([(d.name, d.rate, config.options.get(d.name)) for d in decoders])
        self.radios.append(Radio(radio, config.input, decoding, ctx.sink, recorder=recorder, on_call=on_call,
                                 tap=ctx.take_tap(), decode_s=config.decode_ms / 1000))

    def _status(self) -> dict[str, Any]:
        levels = self.meter.as_dict()["channels"] if self.meter is not None else []
        return {
            "device": self.spec,
            "radios": {
                r.name: {
                    "input": r.input,
                    "decoders": r.decoding.names,
                    **r.counters.as_dict(),
                    "level": levels[r.input - 1] if len(levels) >= r.input else None,
                }
                for r in self.radios
            },
        }

    # --- the thread ----------------------------------------------------------------------------

    def _open(self) -> AudioSource:
        with self._capture_errors():
            source = self._opener()
        self._rate = source.rate
        self.meter = LevelMeter(source.rate, source.channels)
        self._splitter = ChannelSplitter(source.channels, [r.input - 1 for r in self.radios])
        log.info("%s: capturing %s at %d Hz", self.name, self.spec, source.rate)
        return source

    def _pump(self, source: AudioSource) -> None:
        try:
            with self._capture_errors():
                for block, start in source.blocks():
                    if self.stopping:
                        return
                    self._feed(block, start)
        finally:  # what is held is decoded before a gap (a device reopened) or the flush at the end
            for radio in self.radios:
                self._decode_held(radio)

    def stop(self, timeout: float = STOP_WAIT_S) -> None:
        super().stop(timeout)
        for radio in self.radios:  # a driver replaced by a new plan leaves no decoders in the workers
            if isinstance(radio.decoding, RemoteDecoders):
                radio.decoding.close()

    def _close(self, source: AudioSource) -> None:
        source.close()

    def _interrupt(self) -> None:
        source = self._handle
        if source is not None:
            source.close()  # unblocks a device read

    def _reopen_at_end(self) -> bool:
        return self.loop

    def _drain(self) -> None:
        now = datetime.now(UTC)
        for radio in self.radios:
            recorder = radio.recorder if radio.on_call is not None else None
            try:
                out, heard = radio.decoding.flush(now)
            except WorkerLost as exc:  # stopped or died with what the decoders held: lost, and said so
                log.warning("%s: %s: the decoders' last audio is not decoded", radio.name, exc)
                out, heard = [], []
            self._hand_over(radio, self._marks(recorder, heard), out)
            if recorder is not None:
                self._hand_over(radio, recorder.flush(now), [])

    @contextmanager
    def _capture_errors(self) -> Iterator[None]:
        try:
            yield
        except (AudioSourceError, OSError, ValueError) as exc:
            raise DeviceError(str(exc)) from exc
        except Exception as exc:  # e.g. PortAudioError from a device gone mid-read
            # A device lost under PortAudio can raise its own errors (an invalid stream once the sound
            # server went away); they are the device going away too, to be reopened like any other.
            log.warning("%s: capture failed: %r", self.name, exc)
            raise DeviceError(f"capture failed: {exc}") from exc

    def _feed(self, block: Any, start: datetime) -> None:
        assert self.meter is not None
        self.meter.feed(block)
        for radio, mono in zip(self.radios, self._splitter.split(block), strict=True):
            if radio.tap is not None:
                radio.tap.feed(mono, start, self._rate)
            radio.held.append((mono, start))
            radio.held_samples += len(mono)
            if radio.held_samples >= radio.decode_s * self._rate:
                self._decode_held(radio)

    def _decode_held(self, radio: Radio) -> None:
        """The audio held for the radio's decoders and recorder, as one piece."""
        if not radio.held:
            return
        blocks, [start, *_] = zip(*radio.held, strict=True)
        mono = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        radio.held.clear()
        radio.held_samples = 0
        at_rate: dict[int, Samples] = {}  # the piece at the decoders' rates, for the recorder at one of them
        out, heard = radio.decoding.feed(mono, self._rate, start, at_rate)
        recorder = radio.recorder if radio.on_call is not None else None
        marks: list[CallMark] = []
        if recorder is not None:
            marks = recorder.feed(self._resampled(radio, mono, recorder.rate, at_rate), start)
            marks += self._marks(recorder, heard)
        self._hand_over(radio, marks, out)

    @staticmethod
    def _marks(recorder: CallRecorder | None, heard: list[Heard]) -> list[CallMark]:
        """What the decoders heard of their signals is activity for the recorder."""
        return [m for h in heard for m in recorder.heard(h.start, h.end)] if recorder is not None else []

    def _hand_over(self, radio: Radio, marks: list[CallMark], out: list[Output]) -> None:
        # The marks first: a call a decoder's signal opened is open when its events come to name it.
        if marks and radio.on_call is not None:
            radio.on_call(marks)
        if out:
            self._deliver(out, sink=radio.sink, counters=radio.counters, source=radio.name)

    def _resampled(self, radio: Radio, mono: Samples, rate: int, done: dict[int, Samples]) -> Samples:
        """``mono`` at ``rate``, resampled once per block for all who need that rate."""
        if rate not in done:
            resampler = radio.resamplers.get(rate)
            if resampler is None:  # made once: its filter bank costs more than resampling a block
                resampler = radio.resamplers[rate] = Resampler(self._rate, rate)
            done[rate] = resampler.feed(mono)
        return done[rate]

