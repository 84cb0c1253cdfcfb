"""Transmission recording, sans-I/O: where each received transmission starts and ends, and its audio.

    audio ──20 ms frames──▶ level (dBFS) vs threshold and noise floor ──▶ active?
                                   ┌──────── hang_s of quiet ends it ────────┐
    ...quiet...|pre-roll|▶ CallStarted(id) ... speech ... PTT ID burst ......│▶ CallEnded(id, samples)

A transmission is marked by voice activity (``detect="vad"``) or by the radio's carrier-operated relay
(``detect="cor"``: :meth:`CallRecorder.carrier` is called when a COR input changes; the audio is only
recorded). The id of the call is made when it starts, so that what is decoded during it (an emergency,
a PTT ID) can name the transmission it came in; the gateway turns ``CallEnded`` into the ``call`` event
with that id and publishes the clip.

Voice activity here is deliberately simple and robust for radio receive audio: squelched silence or
steady discriminator noise between transmissions. A frame is active when its level is above
``threshold_dbfs`` and 9 dB above the noise floor, which follows the quietest recent frames (it falls
at once and rises 0.1 dB per frame, so a long transmission does not become the floor).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from drivers.audio.base import Samples
from gateway.events import uuid7

FRAME_S = 0.02
FLOOR_MARGIN_DB = 9.0
FLOOR_RISE_DB = 0.1  # per frame


@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    time: datetime  # the first active sample (the clip starts pre-roll earlier)


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    time: datetime  # when the transmission started
    duration_s: float  # from the start to the last active sample
    samples: Samples  # pre-roll + the transmission + up to one hang of its tail
    rate: int
    clip_start: datetime  # the time of samples[0]
    cut: bool = False  # ended at max_s; the transmission goes on in the next call
    short: bool = False  # active for less than min_s: a click or squelch tail, unless something was decoded in it


CallMark = CallStarted | CallEnded


class CallRecorder:
    """Marks and records the transmissions of one radio; fed mono blocks of any size at ``rate``."""

    def __init__(self, rate: int = 8000, *, detect: str = "vad", threshold_dbfs: float = -40.0, hang_s: float = 0.8,
                 min_s: float = 0.3, pre_roll_s: float = 0.3, max_s: float = 120.0,
                 new_id: Callable[[datetime], str] = uuid7) -> None:
        if detect not in ("vad", "cor"):
            raise ValueError(f"detect: expected 'vad' or 'cor', got {detect!r}")
        self.rate, self.detect = rate, detect
        self.threshold_db, self.hang_s, self.min_s, self.max_s = threshold_dbfs, hang_s, min_s, max_s
        self.pre_roll = round(pre_roll_s * rate)
        self.frame = round(FRAME_S * rate)
        self._new_id = new_id
        self._pending = np.zeros(0, np.float32)  # samples not yet a whole frame
        self._pending_at = 0  # absolute index of _pending[0]
        self._history = np.zeros(0, np.float32)  # the last pre_roll samples before a call
        self._floor_db = 0.0  # starts high: the first quiet frames pull it down
        self._epoch: datetime | None = None  # the time of absolute sample 0
        self._call: _Open | None = None
        self._carrier = False
        self.calls = 0

    # --- inputs ------------------------------------------------------------------------------

    def carrier(self, on: bool) -> None:
        """COR changed (``detect="cor"``): takes effect at the start of the next block."""
        self._carrier = on

    def feed(self, block: Samples, start: datetime) -> list[CallMark]:
        if self._epoch is None:
            self._epoch = start - timedelta(seconds=self._pending_at / self.rate)
        x = np.concatenate([self._pending, np.asarray(block, np.float32)])
        n = len(x) // self.frame * self.frame
        out: list[CallMark] = []
        if self.detect == "cor":
            out += self._frames(x[:n], np.full(n // self.frame, self._carrier))
        elif n:
            frames = x[:n].reshape(-1, self.frame)
            level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
            out += self._frames(x[:n], self._vad(level))
        self._pending = x[n:]
        self._pending_at += n
        return out

    def flush(self, now: datetime) -> list[CallMark]:
        """The recording ended or the driver stops: an open call ends where the audio did."""
        if self._call is None:
            return []
        return [self._end(self._call.last_active + self.frame)]

    # --- inside --------------------------------------------------------------------------------

    def _vad(self, level: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        active = np.zeros(len(level), bool)
        floor = self._floor_db
        for i, db in enumerate(level.tolist()):  # the floor is a recurrence: one step per 20 ms frame
            floor = db if db < floor else floor + FLOOR_RISE_DB
            active[i] = db > self.threshold_db and db > floor + FLOOR_MARGIN_DB
        self._floor_db = floor
        return active

    def _frames(self, x: Samples, active: npt.NDArray[np.bool_]) -> list[CallMark]:
        out: list[CallMark] = []
        base = self._pending_at
        for i, on in enumerate(active.tolist()):
            at = base + i * self.frame
            call = self._call
            if call is None:
                if on:
                    call = self._start(at, x, i)
                    out.append(CallStarted(call.call_id, self._time(at)))
                else:
                    continue
            call.chunks.append(x[i * self.frame:(i + 1) * self.frame])
            if on:
                call.last_active = at
            if (at + self.frame - call.first) / self.rate >= self.max_s:
                out.append(self._end(at + self.frame, cut=True))
            elif (at + self.frame - call.last_active) / self.rate >= self.hang_s:
                out.append(self._end(call.last_active + self.frame))
        # What a call would need as pre-roll: the newest samples of this block (or earlier ones).
        if self.pre_roll:
            self._history = np.concatenate([self._history, x])[-self.pre_roll:]
        return out

    def _start(self, at: int, x: Samples, i: int) -> _Open:
        before = np.concatenate([self._history, x[: i * self.frame]])[-self.pre_roll:] if self.pre_roll else x[:0]
        call = _Open(self._new_id(self._time(at)), at, at - len(before), [before])
        self._call = call
        return call

    def _end(self, end: int, *, cut: bool = False) -> CallEnded:
        call = self._call
        assert call is not None
        self._call = None
        self.calls += 1
        duration = (end - call.first) / self.rate
        return CallEnded(call.call_id, self._time(call.first), duration, np.concatenate(call.chunks).astype(np.float32),
                         self.rate, self._time(call.clip_first), cut, short=duration < self.min_s and not cut)

    def _time(self, index: int) -> datetime:
        assert self._epoch is not None
        return self._epoch + timedelta(seconds=index / self.rate)


@dataclass
class _Open:
    call_id: str
    first: int  # absolute index of the first active sample
    clip_first: int  # absolute index of the clip's first sample (pre-roll included)
    chunks: list[Samples]
    last_active: int = 0

    def __post_init__(self) -> None:
        self.last_active = self.first


def flac(samples: Samples, rate: int) -> bytes:
    """A clip as FLAC (16-bit, mono): lossless, and about half the size of the PCM for radio audio."""
    import soundfile  # here, so that decoding never needs libsndfile

    buf = io.BytesIO()
    soundfile.write(buf, np.clip(samples, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()
