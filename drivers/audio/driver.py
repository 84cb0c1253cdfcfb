"""The audio I/O driver: one capture stream per device, split into radios, each feeding its decoders.

Thin on purpose, like the serial driver: decoding is in the sans-I/O decoders, reading in the sources.

    device (or recording) --blocks--> LevelMeter (health)
        | split by input
        +-- radio on input 1 --resample to each decoder's rate--> CallRecorder ----------> on_call (first:
        |                                                         dtmf, dmr, ... --heard--^   what is decoded
        |                                                                     `--events--> sink   then names
        +-- radio on input 2 --> ...                                                           the call)

A device that goes away (unplugged, PulseAudio restarted) is reopened with backoff and a logged reason,
whatever the sound library raised;
a recording ends, its decoders are flushed and the driver says "ended".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drivers.audio.base import AudioDecoder, Samples
from drivers.audio.recorder import CallMark, CallRecorder
from drivers.audio.source import (
    AudioSource,
    AudioSourceError,
    ChannelSplitter,
    LevelMeter,
    Resampler,
    open_source,
)
from drivers.base import Output, Rejected
from drivers.link import BACKOFF_MAX_S, BACKOFF_MIN_S, LinkState

log = logging.getLogger(__name__)

Sink = Callable[[list[Output]], None]
CallSink = Callable[[list[CallMark]], None]


@dataclass
class Radio:
    """One radio's receive audio: an input of the stream and the decoders listening to it."""

    name: str
    input: int  # 1-based, as technicians count the inputs of an interface
    decoders: list[AudioDecoder]
    sink: Sink
    decoded: int = 0
    rejected: int = 0
    resamplers: dict[int, Resampler] = field(default_factory=dict)
    recorder: CallRecorder | None = None
    on_call: CallSink | None = None


class AudioDriver:
    """Reads one audio source on a thread of its own and feeds the radios attached to it."""

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
        self.name = name
        self.spec = spec
        self.rate = rate
        self.channels = channels
        self.link = LinkState(name, on_health)  # on_health: called when the driver's state changes
        self.loop = loop
        # A recording replayed in real time is timed from when it starts playing, like a live device.
        self._open = opener or (lambda: open_source(spec, rate=rate, channels=channels, realtime=realtime,
                                                    start=datetime.now(UTC) if realtime else None))
        self.radios: list[Radio] = []
        self.meter: LevelMeter | None = None
        self._splitter = ChannelSplitter(channels)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._source: AudioSource | None = None
        self._thread = threading.Thread(target=self._run, name=f"audio:{name}", daemon=True)

    def attach(self, name: str, input: int, decoders: list[AudioDecoder], sink: Sink, *,
               recorder: CallRecorder | None = None, on_call: CallSink | None = None) -> None:
        if not 1 <= input <= self.channels:
            raise ValueError(f"{name}: input {input} of a {self.channels}-channel stream")
        self.radios.append(Radio(name, input, decoders, sink, recorder=recorder, on_call=on_call))

    # --- control -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        source = self._source
        if source is not None:
            source.close()  # unblocks a device read
        self._thread.join(timeout)
        self.link.set("stopped")

    def snapshot(self) -> dict[str, Any]:
        levels = self.meter.as_dict()["channels"] if self.meter is not None else []
        with self._lock:
            return {
                **self.link.as_dict(),
                "device": self.spec,
                "radios": {
                    r.name: {
                        "input": r.input,
                        "decoders": [d.name for d in r.decoders],
                        "decoded": r.decoded,
                        "rejected": r.rejected,
                        "level": levels[r.input - 1] if len(levels) >= r.input else None,
                    }
                    for r in self.radios
                },
            }

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self._stop.is_set():
            try:
                self._source = self._open()
                self.meter = LevelMeter(self._source.rate, self._source.channels)
                self._splitter = ChannelSplitter(self._source.channels, [r.input - 1 for r in self.radios])
                self.link.set("open")
                log.info("%s: capturing %s at %d Hz", self.name, self.spec, self._source.rate)
                for block, start in self._source.blocks():
                    if self._stop.is_set():
                        break
                    self._feed(block, start)
                    backoff = BACKOFF_MIN_S
                else:
                    if not self._stop.is_set():  # a recording has ended: what is pending is complete
                        self._flush()
                        if self.loop:
                            continue
                        self.link.set("ended")
                        return
            except (AudioSourceError, OSError, ValueError) as exc:
                self.link.down(str(exc), backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except Exception as exc:  # e.g. PortAudioError from a device gone mid-read
                # A device lost under PortAudio can raise its own errors (an invalid stream once the
                # sound server went away); the thread must live on and reopen it, or the radio would
                # sit "open" and deaf.
                log.warning("%s: capture failed: %r", self.name, exc)
                self.link.down(f"capture failed: {exc}", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            finally:
                if self._source is not None:
                    self._source.close()
                    self._source = None
        self._flush()

    def _feed(self, block: Any, start: datetime) -> None:
        assert self.meter is not None and self._source is not None
        self.meter.feed(block)
        for radio, mono in zip(self.radios, self._splitter.split(block), strict=True):
            at_rate: dict[int, Samples] = {}
            recorder = radio.recorder if radio.on_call is not None else None
            marks: list[CallMark] = []
            if recorder is not None:
                marks = recorder.feed(self._resampled(radio, mono, recorder.rate, at_rate), start)
            out: list[Output] = []
            for decoder in radio.decoders:
                out += decoder.feed(self._resampled(radio, mono, decoder.rate, at_rate), start)
                marks += self._heard(recorder, decoder)
            self._hand_over(radio, marks, out)

    @staticmethod
    def _heard(recorder: CallRecorder | None, decoder: AudioDecoder) -> list[CallMark]:
        """What the decoder heard of its signal is activity for the recorder (asked even with no
        recorder, so that the decoder forgets it)."""
        heard = decoder.heard()
        return [m for h in heard for m in recorder.heard(h.start, h.end)] if recorder is not None else []

    def _hand_over(self, radio: Radio, marks: list[CallMark], out: list[Output]) -> None:
        # The marks first: a call a decoder's signal opened is open when its events come to name it.
        if marks and radio.on_call is not None:
            radio.on_call(marks)
        if out:
            self._deliver(radio, out)

    def _resampled(self, radio: Radio, mono: Samples, rate: int, done: dict[int, Samples]) -> Samples:
        """``mono`` at ``rate``, resampled once per block for all who need that rate."""
        if rate not in done:
            assert self._source is not None
            done[rate] = radio.resamplers.setdefault(rate, Resampler(self._source.rate, rate)).feed(mono)
        return done[rate]

    def _flush(self) -> None:
        now = datetime.now(UTC)
        for radio in self.radios:
            recorder = radio.recorder if radio.on_call is not None else None
            out: list[Output] = []
            marks: list[CallMark] = []
            for decoder in radio.decoders:
                out += decoder.flush(now)
                marks += self._heard(recorder, decoder)
            self._hand_over(radio, marks, out)
            if recorder is not None:
                self._hand_over(radio, recorder.flush(now), [])

    def _deliver(self, radio: Radio, out: list[Output]) -> None:
        rejected = [o for o in out if isinstance(o, Rejected)]
        with self._lock:
            radio.decoded += len(out) - len(rejected)
            radio.rejected += len(rejected)
        for r in rejected:
            log.info("%s: rejected %s", radio.name, r)
        radio.sink(out)
