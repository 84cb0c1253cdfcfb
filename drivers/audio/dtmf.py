"""DTMF (ITU-T Q.23 tones, ITU-T Q.24 receiver rules): digits heard in a radio's audio, grouped into
ANI/ID sequences such as ``*1234#``.

The keypad (ITU-T Q.23, table 1): each digit is one tone of the low group plus one of the high group::

                 1209 Hz  1336 Hz  1477 Hz  1633 Hz
        697 Hz      1        2        3        A
        770 Hz      4        5        6        B
        852 Hz      7        8        9        C
        941 Hz      *        0        #        D

A digit is on the air like this; the receiver rules are those of ITU-T Q.24 (table A-1, the values most
administrations use)::

        |<- tone >= 40 ms ->|<- pause >= 40 ms ->|<- tone ... ->|      ...  silence > interdigit_s -> sequence
        tones of 20 ms or less, and gaps of 20 ms or less inside a tone, are not recognised

    frequency   accepted within +-1.5 % of nominal, rejected beyond +-3.5 %  -> we draw the line at 2.5 %
    duration    accepted from 40 ms, rejected at 20 ms and less                -> line at 30 ms
    pause       recognised from 40 ms, a 20 ms interruption is not a pause    -> line at 30 ms
    twist       high group up to 4 dB stronger than the low ("forward"), or up to 8 dB weaker ("reverse"),
                as this project's issue 4 states it; Bell/Asterisk name the directions the other way
                round and allow 8 dB the other way, so both limits carry 1 dB of margin and are
                class attributes that a subclass may widen.

How it decides (all vectorised over 20 ms Hann frames every 5 ms; see :mod:`drivers.audio.spectra`):

1. the strongest peak in each group, its frequency interpolated to a fraction of a hertz, within
   2.5 % of a keypad frequency;
2. talk-off guards: the two main lobes hold >= 90 % of the power in 300-3400 Hz that stands above the
   noise floor (speech and music spread theirs over many harmonics; white noise is flat, so the median
   bin gives its floor and it is not counted against the tones), each tone 6 dB over that floor, no
   second harmonic within 12 dB of either tone (a DTMF generator makes none; a voice always does),
   twist within limits, and a level above -50 dBFS;
3. a frame-level state machine (a loop over frames, not samples) measures each tone's length as the
   number of frames holding at least half its peak power, which for a Hann window equals the tone's
   length whatever its alignment; the frequencies must not glide (first third against last third of the
   tone, its two edge frames left out).

The CTCSS band (67-254 Hz) is left out of every power sum, so sub-audible tones on an unfiltered
discriminator output do not hide digits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from drivers.audio.base import Samples
from drivers.audio.spectra import VOICE_HZ, Floats, FrameDecoder, Spectra
from gateway.events import Decoded, Kind

#: ITU-T Q.23 table 1.
LOW_HZ = (697.0, 770.0, 852.0, 941.0)
HIGH_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = "123A456B789C*0#D"  # row-major: KEYS[4 * row + column]


def dtmf_tones(
    digits: str,
    rate: int = 8000,
    *,
    tone_s: float = 0.07,
    pause_s: float = 0.07,
    level: float = 0.35,
    twist_db: float = 0.0,
    freq_error: float = 0.0,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
) -> Samples:
    """Samples of ``digits`` as DTMF: each tone pair ``tone_s`` long, then ``pause_s`` of silence.

    ``level`` is the amplitude of the low-group tone; the high group is ``twist_db`` louder (forward twist
    when positive). ``freq_error`` shifts both frequencies by that fraction (0.015 = +1.5 %).
    """
    n_tone, n_pause = round(tone_s * rate), round(pause_s * rate)
    t = np.arange(n_tone) / rate
    parts = [np.zeros(round(lead_s * rate))]
    high_level = level * 10 ** (twist_db / 20)
    for ch in digits.upper():
        index = KEYS.find(ch)
        if index < 0:
            raise ValueError(f"{ch!r} is not a DTMF digit (0-9 * # A-D)")
        lo, hi = LOW_HZ[index // 4] * (1 + freq_error), HIGH_HZ[index % 4] * (1 + freq_error)
        parts.append(level * np.sin(2 * np.pi * lo * t) + high_level * np.sin(2 * np.pi * hi * t))
        parts.append(np.zeros(n_pause))
    parts.append(np.zeros(round(tail_s * rate)))
    return np.concatenate(parts).astype(np.float32)


@dataclass
class _Tone:
    """A tone being heard: its key and, per frame, centre sample, power and the two frequencies."""

    key: int
    frames: list[tuple[int, float, float, float]] = field(default_factory=list)
    peak: float = 0.0


class DtmfDecoder(FrameDecoder):
    """DTMF digits grouped into sequences; one :class:`Decoded` (kind ``status``) per sequence."""

    name: ClassVar[str] = "dtmf"
    rates: ClassVar[tuple[int, ...]] = (8000, 16000, 22050, 44100, 48000)

    FREQ_TOLERANCE: ClassVar[float] = 0.025  # Q.24: accept 1.5 %, reject 3.5 %
    MIN_TONE_S: ClassVar[float] = 0.030  # Q.24: accept 40 ms, reject <= 20 ms
    MIN_PAUSE_S: ClassVar[float] = 0.030  # Q.24: pause accepted from 40 ms, 20 ms interruptions bridged
    FORWARD_TWIST_DB: ClassVar[float] = 5.0  # high group stronger: 4 dB accepted (+1 dB margin)
    REVERSE_TWIST_DB: ClassVar[float] = 9.0  # high group weaker: 8 dB accepted (+1 dB margin)
    # Share of the 300-3400 Hz power above the noise floor in the two tones: 99 % of the frames of true
    # tones at 3 dB SNR keep 0.95; 0.8 let a voice under white noise through (measured; 0.9-0.95 decode
    # the same).
    MIN_TONE_RATIO: ClassVar[float] = 0.90
    MIN_TONE_SNR: ClassVar[float] = 4.0  # each tone's main lobe over the noise floor in one lobe (6 dB)
    MAX_HARMONIC_DB: ClassVar[float] = -12.0  # second harmonic relative to its tone
    MIN_POWER: ClassVar[float] = 1e-5  # per tone: a sine of amplitude ~0.0045, about -50 dBFS
    # Change of a tone's frequency from the first to the last third of its core: measured, true tones at
    # 3 dB SNR stay within 1.1 % and the speech that gets this far glides 1.3 % and more.
    MAX_DRIFT: ClassVar[float] = 0.012

    def __init__(self, rate: int | None = None, *, interdigit_s: float = 1.0, **options: Any) -> None:
        super().__init__(rate, **options)
        if not 0.05 <= float(interdigit_s) <= 60:
            raise ValueError(f"decoder 'dtmf': interdigit_s must be 0.05..60 seconds, got {interdigit_s!r}")
        self.interdigit = round(float(interdigit_s) * self.rate)
        self._pause_frames = max(1, round(self.MIN_PAUSE_S / self.HOP_S))
        self._tone: _Tone | None = None
        self._gap: list[tuple[int, int, float, float, float]] = []  # frames heard since the tone faded
        self._digits: list[str] = []
        self._first = 0  # sample index of the first digit of the pending sequence
        self._last_end = 0  # sample index where the last accepted digit ended

    def _finish(self) -> None:
        if self._tone is not None:
            self._end_tone()
        self._emit()

    # --- per frame ---------------------------------------------------------------------------------

    def _classify(self, spectra: Spectra) -> tuple[np.ndarray, Floats, Floats, Floats]:
        """Per frame: the key (-1 for none), the tone power, and the two measured frequencies."""
        spec = spectra.spec
        f_lo, p_lo = spectra.peak(640.0, 1000.0)
        f_hi, p_hi = spectra.peak(1150.0, 1720.0)
        total = spectra.voice + 1e-30
        low, high = np.asarray(LOW_HZ), np.asarray(HIGH_HZ)
        row = np.argmin(np.abs(f_lo[:, None] - low[None, :]), axis=1)
        col = np.argmin(np.abs(f_hi[:, None] - high[None, :]), axis=1)
        ok = np.abs(f_lo / low[row] - 1) <= self.FREQ_TOLERANCE
        ok &= np.abs(f_hi / high[col] - 1) <= self.FREQ_TOLERANCE
        ok &= (p_lo >= self.MIN_POWER) & (p_hi >= self.MIN_POWER)
        if not ok.any():  # silence, speech, data: most of a channel's time ends here
            return np.full(ok.size, -1), p_lo + p_hi, f_lo, f_hi
        # Only power above the noise floor (white noise is flat) counts against the tones.
        band = spec.band(*VOICE_HZ)
        floor = spectra.floor
        tones = p_lo + p_hi
        rest = np.maximum(total - tones - floor * (band.stop - band.start - 2 * (2 * spec.lobe + 1)), 0.0)
        ok &= tones >= self.MIN_TONE_RATIO * (tones + rest)
        lobe_floor = floor * (2 * spec.lobe + 1)
        ok &= (p_lo >= self.MIN_TONE_SNR * lobe_floor) & (p_hi >= self.MIN_TONE_SNR * lobe_floor)
        twist = 10 * np.log10((p_hi + 1e-30) / (p_lo + 1e-30))
        ok &= (twist <= self.FORWARD_TWIST_DB) & (twist >= -self.REVERSE_TWIST_DB)
        # Second harmonics: 2 x high lies in 2418-3266 Hz, clear of every tone. 2 x low (1394-1882 Hz)
        # may fall in the high tone's main lobe; it is checked only where it does not.
        harm = 10 ** (self.MAX_HARMONIC_DB / 10)
        k2_hi = 2 * f_hi / spec.bin_hz
        ok &= spectra.lobe_power(k2_hi) - lobe_floor <= harm * p_hi  # above the noise floor
        k2_lo = 2 * f_lo / spec.bin_hz
        clear = np.abs(2 * f_lo - f_hi) > 2.5 * spec.lobe * spec.bin_hz
        ok &= ~clear | (spectra.lobe_power(k2_lo) - lobe_floor <= harm * p_lo)
        key = np.where(ok, 4 * row + col, -1)
        return key, p_lo + p_hi, f_lo, f_hi

    def _frames(self, centres: np.ndarray, spectra: Spectra) -> None:
        keys, powers, f_lo, f_hi = self._classify(spectra)
        if self._tone is None and not (keys >= 0).any():  # no digit: only the inter-digit timeout can end
            if self._digits and int(centres[-1]) - self._last_end >= self.interdigit:
                self._emit()
            return
        step = self._step
        columns = (centres.tolist(), keys.tolist(), powers.tolist(), f_lo.tolist(), f_hi.tolist())
        for c, k, p, fl, fh in zip(*columns, strict=True):
            step(c, k, p, fl, fh)  # a state machine over frames (200 a second), not over samples

    def _step(self, centre: int, key: int, pwr: float, f_lo: float, f_hi: float) -> None:
        tone = self._tone
        if tone is None:
            if key >= 0:
                self._tone = _Tone(key, [(centre, pwr, f_lo, f_hi)], pwr)
            elif self._digits and centre - self._last_end >= self.interdigit:
                self._emit()
            return
        if key == tone.key and pwr >= 0.5 * tone.peak:
            tone.frames.extend((c, p, fl, fh) for c, k, p, fl, fh in self._gap if k == tone.key)
            tone.frames.append((centre, pwr, f_lo, f_hi))
            tone.peak = max(tone.peak, pwr)
            self._gap.clear()
            return
        self._gap.append((centre, key, pwr, f_lo, f_hi))
        if len(self._gap) >= self._pause_frames:
            gap = self._gap
            self._gap = []
            self._end_tone()
            for c, k, p, fl, fh in gap:  # what followed the tone may be the next digit
                self._step(c, k, p, fl, fh)

    def _end_tone(self) -> None:
        tone, self._tone = self._tone, None
        self._gap.clear()
        if tone is None:
            return
        frames = np.asarray(tone.frames)
        strong = frames[frames[:, 1] >= 0.5 * tone.peak]
        # With a Hann window, the frames holding at least half the peak power span the tone's length.
        if strong.shape[0] * self._spec.hop < self.MIN_TONE_S * self.rate:
            return
        # The first and last frames straddle the tone's edges: half noise, so their frequencies are the
        # least sure (at 3 dB SNR they alone push true tones past the limit).
        core = strong[1:-1] if strong.shape[0] >= 5 else strong
        third = max(1, core.shape[0] // 3)
        for column, nominal in ((2, LOW_HZ[tone.key // 4]), (3, HIGH_HZ[tone.key % 4])):
            drift = np.median(core[-third:, column]) - np.median(core[:third, column])
            if abs(drift) > self.MAX_DRIFT * nominal:
                return  # a glide (speech, a whistle) rather than a generator's steady tone
        begin = int(strong[0, 0])
        if not self._digits:
            self._first = begin
        self._digits.append(KEYS[tone.key])
        self._last_end = int(strong[-1, 0])

    def _emit(self) -> None:
        if not self._digits or self._start is None:
            return
        digits = "".join(self._digits)
        self._digits = []
        self._out.append(
            Decoded(
                kind=Kind.STATUS,
                time=self.time_of(self._first),
                unit=None,
                detail={"protocol": "dtmf", "digits": digits, "offset_s": round(self._first / self.rate, 4)},
            )
        )
