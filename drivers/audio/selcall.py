"""5-tone selective calling (selcall): ZVEI1, ZVEI2, ZVEI3, CCIR, EEA and EIA sequences in a radio's audio.

A call is a sequence of single tones sent back to back, one per digit, each lasting the standard's tone
time; a digit equal to the one before it is sent as the repeat tone ``E`` instead, so that the receiver
sees a change of tone for every digit::

        digits   1     2     2     2     3                     (a 5-digit call "12223")
        tones  | f1  | f2  | fE  | f2  | f3  |                  each tone_s long, no gaps
               |<-->|
               70 ms (ZVEI), 100 ms (CCIR), 40 ms (EEA), 33 ms (EIA)

The tone frequencies and times of each standard are a table of their own
(:mod:`drivers.audio.selcall_standards`).

The decoder takes 20 ms Hann frames every 5 ms (:mod:`drivers.audio.spectra`), finds the strongest peak in
400-3000 Hz, and labels a frame with the table tone within ``freq_tolerance`` when that peak's main lobe
holds most of the 300-3400 Hz power, or of the power above the noise floor (a voice spreads its power
over many harmonics, white noise is flat), and it has no second harmonic within 12 dB (a flute or a hum
whose fundamental dominates has one). Consecutive frames with one label make a tone; a tone starts where
the frames of its predecessor end (midway between their centres) or, after silence, at the first frame
with half its peak power. Tones whose length is within
``duration_tolerance`` of the standard's and that follow one another without a gap make a sequence; a
sequence of ``length`` digits is a unit identifying itself (kind ``ptt``), one of another length (from
``min_length``) a status code (kind ``status``) for the channel's rules to map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from drivers.audio.base import Samples
from drivers.audio.selcall_standards import REPEAT, STANDARDS, SYMBOLS
from drivers.audio.spectra import VOICE_HZ, Floats, FrameDecoder, Spectra
from gateway.events import Decoded, Kind


def _standard(standard: str) -> tuple[tuple[float, ...], float]:
    try:
        return STANDARDS[standard.upper()]
    except KeyError:
        raise ValueError(f"unknown selcall standard {standard!r}; expected one of {', '.join(STANDARDS)}") from None


def with_repeats(digits: str) -> str:
    """The tones that carry ``digits``: a digit equal to the one before it becomes the repeat tone E."""
    tones: list[str] = []
    for ch in digits.upper():
        tones.append(REPEAT if tones and ch == tones[-1] else ch)
    return "".join(tones)


def selcall_tones(
    digits: str,
    standard: str = "ZVEI1",
    rate: int = 8000,
    *,
    tone_s: float | None = None,
    level: float = 0.5,
    freq_error: float = 0.0,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
) -> Samples:
    """Samples of a selcall of ``digits`` (0-9, A-D, F; repeats are inserted here), phase-continuous as
    a radio's encoder sends it. ``tone_s`` overrides the standard's tone time; ``freq_error`` shifts every
    tone by that fraction."""
    freqs, nominal = _standard(standard)
    n = round((tone_s if tone_s is not None else nominal) * rate)
    tones = with_repeats(digits)
    if any(ch not in SYMBOLS or ch == REPEAT for ch in digits.upper()):
        raise ValueError(f"{digits!r}: selcall digits are 0-9, A-D and F (E is the repeat tone)")
    inst = np.concatenate([np.full(n, freqs[SYMBOLS.index(ch)] * (1 + freq_error)) for ch in tones] or [np.zeros(0)])
    phase = 2 * np.pi * np.cumsum(inst) / rate
    body = level * np.sin(phase)
    return np.concatenate([np.zeros(round(lead_s * rate)), body, np.zeros(round(tail_s * rate))]).astype(np.float32)


@dataclass
class _Run:
    """Consecutive frames with one label: first and last frame centre, and per-frame powers."""

    label: int
    first: int
    last: int
    powers: list[tuple[int, float]]
    freqs: list[float]


@dataclass
class _Tone:
    symbol: str
    start: int  # sample index
    end: int


class SelcallDecoder(FrameDecoder):
    """5-tone sequences of one standard; one :class:`Decoded` per sequence."""

    name: ClassVar[str] = "selcall"
    rates: ClassVar[tuple[int, ...]] = (8000, 16000, 22050, 44100, 48000)

    MIN_PURITY: ClassVar[float] = 0.60  # share of the 300-3400 Hz power in the tone's main lobe
    # Or, as the DTMF decoder counts it, the share of the power above the noise floor (white noise is
    # flat; at 3 dB SNR it alone leaves a tone ~0.7 of the band), with the lobe 9 dB over that floor in
    # one lobe (measured: 5-12 decode every 3 dB call; at 4 a voice under loud white noise made an EIA call).
    MIN_CLEAN_PURITY: ClassVar[float] = 0.80
    MIN_TONE_SNR: ClassVar[float] = 8.0
    # Noise in a lobe scatters about its floor by about half the floor (some 4-5 independent bins), so the
    # harmonic must stand 1.5 floors above it before it counts against the tone.
    HARMONIC_NOISE: ClassVar[float] = 1.5
    MAX_HARMONIC_DB: ClassVar[float] = -12.0  # second harmonic relative to its tone
    MIN_POWER: ClassVar[float] = 1e-5  # a sine of amplitude ~0.0045, about -50 dBFS
    MAX_GLITCH_FRAMES: ClassVar[int] = 1  # a single odd frame (a click) inside a tone is bridged
    MAX_DRIFT: ClassVar[float] = 0.01  # change of a tone's frequency from its first to its last third
    MIN_RUN: ClassVar[float] = 0.3  # runs of frames shorter than this share of a tone are transitions

    def __init__(
        self,
        rate: int | None = None,
        *,
        standard: str = "ZVEI1",
        length: int = 5,
        min_length: int = 3,
        freq_tolerance: float = 0.02,
        duration_tolerance: float = 0.35,
        **options: Any,
    ) -> None:
        super().__init__(rate, **options)
        self.standard = str(standard).upper()
        freqs, nominal = _standard(self.standard)
        if not 1 <= int(length) <= 16 or not 1 <= int(min_length) <= int(length):
            raise ValueError(f"decoder 'selcall': need 1 <= min_length <= length <= 16, got {min_length}, {length}")
        if not 0.002 <= float(freq_tolerance) <= 0.03:
            raise ValueError(f"decoder 'selcall': freq_tolerance must be a fraction 0.002..0.03, got {freq_tolerance}")
        if not 0.05 <= float(duration_tolerance) <= 0.6:
            raise ValueError(f"decoder 'selcall': duration_tolerance must be 0.05..0.6, got {duration_tolerance}")
        self.length, self.min_length = int(length), int(min_length)
        self.freq_tolerance, self.duration_tolerance = float(freq_tolerance), float(duration_tolerance)
        self.freqs = np.asarray(freqs, dtype=np.float64)
        self.tone = round(nominal * self.rate)
        self._hop = self._spec.hop
        self._lo_hz, self._hi_hz = float(self.freqs.min()) * 0.9, float(self.freqs.max()) * 1.1
        self._run: _Run | None = None
        self._glitch = 0
        self._tones: list[_Tone] = []
        self._pending: _Run | None = None  # the last finished run, whose end waits for what follows

    def _frames(self, centres: np.ndarray, spectra: Spectra) -> None:
        labels, powers, freqs = self._classify(spectra)
        if self._run is None and self._pending is None and not self._tones and not (labels >= 0).any():
            self._glitch = 0  # nothing heard and nothing pending
            return
        step = self._step
        for c, label, p, f in zip(centres.tolist(), labels.tolist(), powers.tolist(), freqs.tolist(), strict=True):
            step(c, label, p, f)  # a state machine over frames (200 a second), not samples

    def _finish(self) -> None:
        if self._run is not None:
            self._close_run(self._run)
            self._run = None
        self._settle(None)
        self._end_sequence()

    # --- frames ----------------------------------------------------------------------------------

    def _classify(self, spectra: Spectra) -> tuple[np.ndarray, Floats, Floats]:
        spec = spectra.spec
        freq, lobe = spectra.peak(self._lo_hz, self._hi_hz)
        total = spectra.voice + 1e-30
        nearest = np.argmin(np.abs(freq[:, None] - self.freqs[None, :]), axis=1)
        ok = np.abs(freq / self.freqs[nearest] - 1) <= self.freq_tolerance
        ok &= lobe >= self.MIN_POWER
        if not ok.any():  # silence, speech, data: most of a channel's time ends here
            return np.full(ok.size, -1), lobe, freq
        lobe_floor = spectra.floor * (2 * spec.lobe + 1)
        band = spec.band(*VOICE_HZ)
        rest = np.maximum(total - lobe - spectra.floor * (band.stop - band.start - (2 * spec.lobe + 1)), 0.0)
        pure = lobe >= self.MIN_PURITY * total
        pure |= (lobe >= self.MIN_CLEAN_PURITY * (lobe + rest)) & (lobe >= self.MIN_TONE_SNR * lobe_floor)
        ok &= pure
        # No second harmonic within 12 dB (above the noise, see HARMONIC_NOISE): an encoder's sine has none,
        # while a voice or an instrument whose fundamental dominates (a flute, a hum) always has one.
        harmonic = spectra.lobe_power(2 * freq / spec.bin_hz) - (1 + self.HARMONIC_NOISE) * lobe_floor
        ok &= harmonic <= 10 ** (self.MAX_HARMONIC_DB / 10) * lobe
        return np.where(ok, nearest, -1), lobe, freq

    def _step(self, centre: int, label: int, pwr: float, freq: float) -> None:
        run = self._run
        if run is not None and label == run.label:
            run.last = centre
            run.powers.append((centre, pwr))
            run.freqs.append(freq)
            self._glitch = 0
            return
        if run is not None and self._glitch < self.MAX_GLITCH_FRAMES and label < 0:
            self._glitch += 1
            return
        if run is not None:
            self._close_run(run)
            self._run = None
        self._glitch = 0
        if label >= 0:
            self._run = _Run(label, centre, centre, [(centre, pwr)], [freq])
            return
        if self._pending is not None and centre - self._pending.last > self._hop * (self.MAX_GLITCH_FRAMES + 2):
            self._settle(None)  # silence after a tone: it ended
        if self._pending is None and self._tones and centre - self._tones[-1].end > self.tone:
            self._end_sequence()

    def _close_run(self, run: _Run) -> None:
        """A run ended: settle the previous one (its end is now known) and keep this one pending."""
        self._settle(run)
        self._pending = run

    def _settle(self, following: _Run | None) -> None:
        prev = self._pending
        self._pending = None
        if prev is None:
            return
        if prev.last - prev.first < self.MIN_RUN * self.tone:
            # Too short for a tone: the frames that straddle two tones (their mix peaks between the
            # two, often on a third table tone), or a click. It neither makes nor breaks a sequence.
            return
        peak = max(p for _, p in prev.powers)
        gap = self.tone // 2
        # Back-to-back tones meet midway between their frames; after or before silence, a Hann frame
        # holds half the peak power when its centre is on the tone's edge.
        if self._tones and self._tones[-1].end >= prev.first - self._hop * (self.MAX_GLITCH_FRAMES + 1):
            start = self._tones[-1].end
        else:
            start = self._edge(prev.powers, 0.5 * peak)
        if following is not None and following.first - prev.last <= self._hop * (self.MAX_GLITCH_FRAMES + 2):
            end = (prev.last + following.first) // 2
        else:
            end = self._edge(prev.powers[::-1], 0.5 * peak)
        length = end - start
        ok = abs(length - self.tone) <= self.duration_tolerance * self.tone
        core = prev.freqs[1:-1] if len(prev.freqs) >= 5 else prev.freqs  # edge frames lean to the neighbours
        third = max(1, len(core) // 3)
        drift = float(np.median(core[-third:]) - np.median(core[:third]))
        ok &= abs(drift) <= self.MAX_DRIFT * self.freqs[prev.label]  # a voice glides, an encoder does not
        if self._tones and (not ok or start - self._tones[-1].end > gap):
            self._end_sequence()
        if ok:
            self._tones.append(_Tone(SYMBOLS[prev.label], start, end))
        elif length > self.tone:
            self._end_sequence()

    @staticmethod
    def _edge(powers: list[tuple[int, float]], half: float) -> int:
        """Where the power first reaches ``half`` (frame centres, interpolated between two frames)."""
        for i, (centre, pwr) in enumerate(powers):
            if pwr >= half:
                if i == 0:
                    return centre
                before, p0 = powers[i - 1]
                return round(before + (centre - before) * (half - p0) / (pwr - p0))
        return powers[-1][0]

    def _end_sequence(self) -> None:
        tones, self._tones = self._tones, []
        if len(tones) < self.min_length or self._start is None:
            return
        digits: list[str] = []
        for tone in tones:
            if tone.symbol == REPEAT:
                if not digits:
                    return  # a repeat with nothing to repeat: not a selcall
                digits.append(digits[-1])
            else:
                digits.append(tone.symbol)
        code = "".join(digits)
        if len(code) == self.length:
            kind, unit = Kind.PTT, f"{self.standard.lower()}:{code}"
        else:
            kind, unit = Kind.STATUS, None
        self._out.append(
            Decoded(
                kind=kind,
                time=self.time_of(tones[0].start),
                unit=unit,
                detail={
                    "protocol": self.standard.lower(),
                    "digits": code,
                    "offset_s": round(tones[0].start / self.rate, 4),
                },
            )
        )
