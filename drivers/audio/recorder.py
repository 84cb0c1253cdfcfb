"""Transmission recording, sans-I/O: where each received transmission starts and ends, and its audio.

    audio ──20 ms frames──▶ level (dBFS) vs threshold and noise floor ──▶ active?
                                   ┌──────── hang_s of quiet ends it ────────┐
    ...quiet...|pre-roll|▶ CallStarted(id) ... speech ... PTT ID burst ......│▶ CallEnded(id, samples)

A transmission is marked by voice activity (``detect="vad"``) or by the radio's carrier-operated relay
(``detect="cor"``: :meth:`CallRecorder.carrier` is called when a COR input changes; the audio is only
recorded). The id of the call is made when it starts, so that what is decoded during it (an emergency,
a PTT ID) can name the transmission it came in; the gateway turns ``CallEnded`` into the ``call`` event
with that id and publishes the clip.

A decoder that recognised its signal says so (:meth:`CallRecorder.heard`, from the decoders'
``heard()``): that audio is active whatever its level. A decoder answers some time after the audio
(DMR: up to about 0.1 s after a burst), when those frames have been judged already, so a call may start
up to ``LOOKBACK_S`` back; the driver passes what was heard before what was decoded, so the call is
open when the decoder's events name it.

Voice activity here is deliberately simple and robust for radio receive audio: squelched silence or
steady discriminator noise between transmissions. A frame is active when its level is above
``threshold_dbfs`` and 9 dB above the noise floor, which follows the quietest recent frames (it falls
at once and rises 0.1 dB per frame, so that the pauses of speech keep it down). A signal of steady
level is no speech: heard from the first frame it is the floor, and a long one becomes the floor after
a few seconds. That is why decoders of such signals (DMR) say where they heard them.
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
LOOKBACK_S = 1.0  # how late a decoder may say what it heard and still start the call where it was


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
        self._keep = self.pre_roll + round(LOOKBACK_S * rate)
        self._history = np.zeros(0, np.float32)  # the last _keep samples judged (pre-roll and look-back)
        self._floor_db = 0.0  # starts high: the first quiet frames pull it down
        self._epoch: datetime | None = None  # the time of absolute sample 0
        self._call: _Open | None = None
        self._carrier = False
        self._heard_until = 0  # absolute index: frames that start before it are active (a decoder heard them)
        self._last_end = 0  # absolute index where the last call ended
        self._anchor: tuple[int, datetime] | None = None  # (index, time) of the last block fed
        self.calls = 0

    # --- inputs ------------------------------------------------------------------------------

    def carrier(self, on: bool) -> None:
        """COR changed (``detect="cor"``): takes effect at the start of the next block."""
        self._carrier = on

    def heard(self, start: datetime, end: datetime) -> list[CallMark]:
        """A decoder recognised its signal from ``start`` to ``end``: those frames are active. Frames
        judged already (up to ``LOOKBACK_S`` back) are taken back: an open call goes on from them, and
        if none is open one starts where the signal was heard (its ``CallStarted`` is returned)."""
        if self._anchor is None:
            return []
        a, b = self._index(start), self._index(end)
        self._heard_until = max(self._heard_until, b)
        judged = self._pending_at  # frames before this index have been judged
        lo = a // self.frame * self.frame  # the first frame heard
        last = (min(b, judged) - 1) // self.frame * self.frame  # the last judged frame heard
        if last < lo:
            return []  # nothing of it judged yet: the frames are active when they are fed
        call = self._call
        if call is not None:
            if last >= call.first:
                call.last_active = max(call.last_active, last)
            return []
        earliest = judged - min(len(self._history), self._keep - self.pre_roll)
        first = max(lo, -(-earliest // self.frame) * self.frame, self._last_end)
        if first > last:
            return []  # too late to go back to, or the call that had it has ended
        clip_first = max(first - self.pre_roll, judged - len(self._history))
        call = _Open(self._new_id(self._time(first)), first, clip_first,
                     [self._history[len(self._history) - (judged - clip_first):]], last)
        self._call = call
        out: list[CallMark] = [CallStarted(call.call_id, self._time(first))]
        if (judged - last) / self.rate >= self.hang_s:
            out.append(self._end(last + self.frame))
        return out

    def feed(self, block: Samples, start: datetime) -> list[CallMark]:
        if self._epoch is None:
            self._epoch = start - timedelta(seconds=self._pending_at / self.rate)
        self._anchor = (self._pending_at + len(self._pending), start)
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
            on = on or at < self._heard_until
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
        # What a call would need as pre-roll, or a decoder's late word as its start: the newest samples.
        self._history = np.concatenate([self._history, x])[-self._keep:]
        return out

    def _start(self, at: int, x: Samples, i: int) -> _Open:
        before = np.concatenate([self._history, x[: i * self.frame]])[-self.pre_roll:] if self.pre_roll else x[:0]
        call = _Open(self._new_id(self._time(at)), at, at - len(before), [before], at)
        self._call = call
        return call

    def _end(self, end: int, *, cut: bool = False) -> CallEnded:
        call = self._call
        assert call is not None
        self._call = None
        self._last_end = end
        self.calls += 1
        duration = (end - call.first) / self.rate
        return CallEnded(call.call_id, self._time(call.first), duration, np.concatenate(call.chunks).astype(np.float32),
                         self.rate, self._time(call.clip_first), cut, short=duration < self.min_s and not cut)

    def _index(self, time: datetime) -> int:
        """The absolute index of the sample heard at ``time``, counted from the last block fed (the
        clock of a sound card drifts from the wall clock that times its blocks: not from the first)."""
        assert self._anchor is not None
        index, start = self._anchor
        return index + round((time - start).total_seconds() * self.rate)

    def _time(self, index: int) -> datetime:
        assert self._epoch is not None
        return self._epoch + timedelta(seconds=index / self.rate)


@dataclass
class _Open:
    call_id: str
    first: int  # absolute index of the first active sample
    clip_first: int  # absolute index of the clip's first sample (pre-roll included)
    chunks: list[Samples]
    last_active: int  # absolute index of the last active frame


def flac(samples: Samples, rate: int) -> bytes:
    """A clip as FLAC (16-bit, mono): lossless, and about half the size of the PCM for radio audio."""
    import soundfile  # here, so that decoding never needs libsndfile

    buf = io.BytesIO()
    soundfile.write(buf, np.clip(samples, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()
