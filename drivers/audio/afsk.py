r"""AFSK1200 (Bell 202) audio -> HDLC -> AX.25 -> APRS events, sans-I/O and vectorised with numpy/scipy.

Signal chain (one channel; every stage keeps its state between blocks, so any split of the audio gives
the same frames)::

    samples ─┬─ x e^{-j2π·1200·t} ─ low-pass ─ |.| ─ mark envelope m ─┐            ┌─ slicer g1 ─┐
             │                                                          ├ decimate ─┼─ slicer g2 ─┤ ...
             └─ x e^{-j2π·2200·t} ─ low-pass ─ |.| ─ space envelope s ─┘            └─ slicer gN ─┘
                        (one such pair per demodulator variant: different low-pass widths)

    slicer g:  d = m - g·s;  a zero crossing of d is a tone change, timed to a fraction of a sample
               by linear interpolation
    bit clock: the phase of the crossings on the 1200 baud grid, averaged over the last few crossings
               (a one-pole filter over unit phasors e^{j2π·t/T}, unwrapped), places every crossing
               in its bit cell: cell = round(t/T - phase). Two crossings in one cell cancel (a glitch).
    NRZI:      a tone change at the start of a cell is a 0, no change is a 1 (AX.25 2.2 section 3.4)
    HDLC:      runs of 1s between 0s: 5 ones then 0 = a stuffed 0 (dropped), 6 = flag 0x7E,
               7 or more = abort (ISO 3309 / AX.25 2.2 sections 3.1, 3.6)
    frame:     the bytes between two flags, LSB first; the last two are the FCS (CRC-16/X.25,
               :func:`drivers.ax25.fcs`); a good frame goes through :func:`drivers.kiss.frame_to_output`,
               the same path as frames from a KISS TNC.

The clock, NRZI and HDLC stages work on arrays of crossings and runs with numpy, all slicers of a
variant at once; Python loops only over flags. Several slicers (gains of the space tone against the
mark tone, to absorb the tilt of pre-emphasis and de-emphasis) on several low-pass widths run in
parallel, as Dire Wolf's multiple slicers do (demod_afsk.c; the "+" of its demodulator profiles, and
atest's default for 1200 baud is "E+"); a frame that several of them decode is reported once, by the
one whose closing flag came first (ties broken by the order of :data:`VARIANTS`).

Bell 202 (Bell System Technical Reference PUB 41212, 1976): mark 1200 Hz, space 2200 Hz, 1200 baud.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import signal

from drivers import ax25
from drivers.audio.base import AudioDecoder, Samples
from drivers.base import Output, Rejected
from drivers.kiss import frame_to_output

MARK_HZ = 1200.0  # Bell 202 mark (binary 1)
SPACE_HZ = 2200.0  # Bell 202 space (binary 0)
BAUD = 1200.0
# AX.25 2.2 section 3: two 7-byte addresses, control, PID and the 2-byte FCS; an UI frame with an
# empty info field is the shortest APRS can use.
MIN_FRAME_BYTES = 18
# 10 addresses + control + PID + 256 info + FCS = 330 bytes (AX.25 2.2 section 3.9); some TNCs send
# more, so allow a margin before calling a run of bits garbage.
MAX_FRAME_BYTES = 1024
# Bit-clock averaging: each crossing pulls the clock phase by (1 - this) of its own error, as Dire
# Wolf's DPLL inertia ("pll_locked_inertia" 0.74, demod_afsk.c) nudges its counter; 0.7-0.9 decode
# about the same on the gen_packets sweeps.
CLOCK_INERTIA = 0.8
# Frames of the same bytes ending within this time of each other are one transmission decoded by
# several slicers; a digipeated copy comes at least one frame length (> 100 ms) later.
DEDUP_SECONDS = 0.05
# Audio is demodulated in pieces of at least this length (see feed): the events come this much later.
CHUNK_SECONDS = 0.25

Float = npt.NDArray[np.float64]
Complex = npt.NDArray[np.complex128]
Int = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Variant:
    """One demodulator: the baseband low-pass (Butterworth, order and cutoff as a multiple of the baud
    rate) and the space/mark gains of its slicers."""

    name: str
    lpf_baud: float
    order: int
    gains: tuple[float, ...]


# Space gains from 1/4 to 4 on a log scale cover the mark/space tilt of radios with and without
# pre-emphasis, up to about 12 dB (Dire Wolf spreads its 9 slicers similarly, demod_afsk.c
# "space_gain"). Measured on a gen_packets -n 100 sweep tilted by two 6 dB/octave filters: gains
# 0.4-2.5 decode 63 and 49 frames (de-/pre-emphasis), 0.25-4 decode 63 and 58; atest 66 and 65.
_GAINS = tuple(round(4 ** (k / 4), 3) for k in range(-4, 5))
_FEW_GAINS = (0.5, 1.0, 2.0)
# Low-pass cutoffs: the tones are 1000 Hz apart in baseband, so a cutoff near 0.4 x baud (480 Hz)
# keeps the other tone out of each envelope; measured on gen_packets -n 100 noise sweeps (0.4 decodes
# most; 0.33 and 0.55 each add a few frames the others miss; 0.9 and up lose half of them).
VARIANTS: tuple[Variant, ...] = (
    Variant("A", 0.4, 2, _GAINS),
    Variant("B", 0.55, 3, _FEW_GAINS),
    Variant("C", 0.33, 2, _FEW_GAINS),
)


@dataclass
class _Slicer:
    """State of one slicer from the bit cells to the HDLC frames."""

    name: str
    clock_phase: float = 0.0  # the last unwrapped clock phase, in bits (a copy, for _close_cells)
    open_cell: int | None = None  # the last cell with crossings; more may come in the next block
    open_count: int = 0
    open_pos: float = 0.0
    last_zero: int | None = None  # the cell of the last NRZI 0
    runs: list[int] = field(default_factory=list)  # runs of 1s before each 0 since the last flag
    nbits: int = 0  # the frame bits they make
    synced: bool = False  # a flag has been seen since the last abort


@dataclass
class _Demod:
    variant: Variant
    sos: Float
    zi: Complex  # (sections, 2 tones, 2)
    slicers: list[_Slicer]
    # Per slicer, from the slicer output to the bit cells (vectorised over the slicers):
    gains: Float  # space gain
    last_d: Float  # the last decimated slicer output of the previous block
    clock_zi: Complex  # (slicers, 1): state of the phasor average
    clock_phase: Float  # the last unwrapped clock phase, in bits
    last_cell: Int  # the last bit cell (cells never go backwards)

    @classmethod
    def create(cls, variant: Variant, rate: int) -> _Demod:
        sos = signal.butter(variant.order, variant.lpf_baud * BAUD, fs=rate, output="sos").astype(np.float64)
        k = len(variant.gains)
        return cls(
            variant=variant,
            sos=sos,
            zi=np.zeros((sos.shape[0], 2, 2), np.complex128),
            slicers=[_Slicer(f"{variant.name}{i}") for i in range(k)],
            gains=np.array(variant.gains, np.float64),
            last_d=np.zeros(k),
            clock_zi=np.zeros((k, 1), np.complex128),
            clock_phase=np.zeros(k),
            last_cell=np.full(k, -(10**9), np.int64),
        )


@dataclass(order=True)
class _Candidate:
    end: float  # sample position of the closing flag
    order: int  # rank of the slicer, to break ties the same way on every split
    data: bytes = field(compare=False)
    slicer: str = field(compare=False)


class Afsk1200Decoder(AudioDecoder):
    """AFSK1200 APRS: Bell 202 tones -> AX.25 UI frames -> beacon / alert / status events.

    Options: ``fix_bits`` (reserved, only 0: frames with a bad FCS are dropped, as ``atest -F 0``).
    """

    name: ClassVar[str] = "afsk1200"
    rates: ClassVar[tuple[int, ...]] = (22050, 44100, 48000, 11025, 9600, 8000, 16000, 32000)

    def __init__(self, rate: int | None = None, *, fix_bits: int = 0, **options: Any) -> None:
        super().__init__(rate, **options)
        if fix_bits != 0:
            raise ValueError(f"decoder {self.name!r}: fix_bits={fix_bits} is not supported (only 0)")
        r = self.rate
        self._spb = r / BAUD  # samples per bit
        # Decimate the envelopes to about 9600 Hz (8 or more samples a bit): the low-pass has cut
        # everything above ~1 kHz, and crossings are timed by interpolation, not by the sample grid.
        self._dec = max(1, r // 9600)
        # Local oscillators as a table over one common period of both tones: 1200 and 2200 are
        # multiples of 200 Hz, so rate / gcd(rate, 200) samples hold whole cycles of each.
        period = r // math.gcd(r, 200)
        n = np.arange(period)
        self._lo = np.stack([np.exp(-2j * np.pi * f * n / r) for f in (MARK_HZ, SPACE_HZ)])
        self._period = period
        self._n = 0  # samples consumed so far
        self._last_pos = -1.0  # position of the last decimated sample
        self._demods = [_Demod.create(v, r) for v in VARIANTS]
        self._held: list[npt.NDArray[Any]] = []  # blocks not yet demodulated ...
        self._held_size = 0
        self._held_start = datetime.min  # ... and the time of the first one's first sample
        self._pending: list[_Candidate] = []
        self._recent: list[tuple[float, bytes]] = []  # frames reported, for de-duplication

    # ------------------------------------------------------------------ audio -> crossings

    def feed(self, block: Samples, start: datetime) -> list[Output]:
        # Blocks are gathered to CHUNK_SECONDS before they are demodulated: every numpy call costs
        # the same for 20 ms as for 500 ms, and the result does not depend on the split anyway.
        if not self._held:
            self._held_start = start
        self._held.append(np.asarray(block).ravel())
        self._held_size += self._held[-1].size
        if self._held_size < CHUNK_SECONDS * self.rate:
            return []
        return self._process()

    def _process(self) -> list[Output]:
        block = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        start = self._held_start
        self._held.clear()
        self._held_size = 0
        # Garbage in must not poison the filter state for good: NaN is silence, anything far beyond
        # full scale is clipped (a float overflow in the state would never decay).
        x = np.nan_to_num(np.asarray(block, dtype=np.float64).ravel(), nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(x, -4.0, 4.0, out=x)
        first = self._n
        self._n += x.size
        if x.size:
            idx = (np.arange(first, first + x.size)) % self._period
            mixed = self._lo[:, idx] * x  # (2, n): mark and space baseband
            # The decimated samples are those whose global index is a multiple of the decimation.
            keep = np.arange((-first) % self._dec, x.size, self._dec)
            positions = (first + keep).astype(np.float64)
            for rank, demod in enumerate(self._demods):
                base, demod.zi = signal.sosfilt(demod.sos, mixed, axis=1, zi=demod.zi)
                env = np.abs(base[:, keep])
                if keep.size:
                    for k, found in enumerate(self._slice(demod, env[0], env[1], positions)):
                        for data, end in found:
                            self._pending.append(_Candidate(end, rank * 100 + k, data, demod.slicers[k].name))
            if keep.size:
                self._last_pos = float(positions[-1])
        return self._release(start, first, final=False)

    def flush(self, now: datetime) -> list[Output]:
        out = self._process() if self._held else []
        for rank, demod in enumerate(self._demods):
            for k, slicer in enumerate(demod.slicers):
                for data, end in self._close_cells(slicer):
                    self._pending.append(_Candidate(end, rank * 100 + k, data, slicer.name))
        return out + self._release(now, self._n, final=True)

    def _slice(self, demod: _Demod, m: Float, sp: Float, pos: Float) -> list[list[tuple[bytes, float]]]:
        """All slicers of one demodulator at once: crossings, then the bit clock, as (slicer, crossing)
        arrays padded to the longest row; the per-slicer work starts at the bit cells."""
        gains = demod.gains[:, None]
        d = m[None, :] - gains * sp[None, :]  # (slicers, samples)
        d_all = np.concatenate((demod.last_d[:, None], d), axis=1)
        p_all = np.concatenate(([self._last_pos], pos))
        demod.last_d = d[:, -1].copy()
        # Zero crossings; a sample exactly 0 counts as positive, so a crossing is never counted twice.
        neg = d_all < 0
        change = neg[:, 1:] != neg[:, :-1]
        if p_all[0] < 0:
            change[:, 0] = False  # the very first sample has no predecessor
        rows, cols = np.nonzero(change)
        counts = np.bincount(rows, minlength=len(demod.slicers))
        results: list[list[tuple[bytes, float]]] = []
        if rows.size == 0:
            return [self._close_cells(s, before=float(pos[-1])) for s in demod.slicers]
        d0, d1 = d_all[rows, cols], d_all[rows, cols + 1]
        t_flat = p_all[cols] + (p_all[cols + 1] - p_all[cols]) * d0 / (d0 - d1)
        # Pad to (slicers, longest row); padding sits after each row's crossings and is never read.
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        within = np.arange(rows.size) - starts[rows]
        width = int(counts.max())
        t = np.zeros((counts.size, width))
        t[rows, within] = t_flat
        bits = t / self._spb
        # The bit clock: the mean phase of the crossings on the baud grid, as a one-pole average of
        # unit phasors (direct form II transposed: the state after a row is inertia * its last output).
        phasor = np.exp(2j * np.pi * bits)
        avg, _ = signal.lfilter([1 - CLOCK_INERTIA], [1, -CLOCK_INERTIA], phasor, axis=1, zi=demod.clock_zi)
        raw = np.angle(avg) / (2 * np.pi)
        # Unwrap against the phase carried over, so that a clock drifting through 0 does not slip a bit.
        steps = np.diff(np.concatenate((demod.clock_phase[:, None], raw), axis=1), axis=1)
        steps -= np.round(steps)
        phase = np.cumsum(np.concatenate((demod.clock_phase[:, None], steps), axis=1), axis=1)[:, 1:]
        cells = np.round(bits - phase).astype(np.int64)
        # Cells never go backwards (a jump of the clock phase must not reorder the bits).
        cells = np.maximum.accumulate(np.concatenate((demod.last_cell[:, None], cells), axis=1), axis=1)[:, 1:]
        has = counts > 0
        last = np.maximum(counts - 1, 0)
        r = np.arange(counts.size)
        demod.clock_zi[has, 0] = CLOCK_INERTIA * avg[r[has], last[has]]
        demod.clock_phase[has] = phase[r[has], last[has]]
        demod.last_cell[has] = cells[r[has], last[has]]
        for k, s in enumerate(demod.slicers):
            n = int(counts[k])
            if n == 0:
                s.clock_phase = float(demod.clock_phase[k])
                results.append(self._close_cells(s, before=float(pos[-1])))
            else:
                s.clock_phase = float(demod.clock_phase[k])
                results.append(self._cells(s, cells[k, :n], t[k, :n]))
        return results

    # ------------------------------------------------------------------ bit cells -> NRZI 0s

    def _cells(self, s: _Slicer, cells: Int, t: Float) -> list[tuple[bytes, float]]:
        # Crossings in the same cell: an odd count is a tone change there, an even count cancels.
        if s.open_cell is not None:
            cells = np.concatenate(([s.open_cell], cells))
            t = np.concatenate(([s.open_pos], t))
            counts_first = s.open_count
        else:
            counts_first = 1
        starts = np.flatnonzero(np.diff(cells, prepend=cells[0] - 1))
        counts = np.diff(np.append(starts, cells.size))
        counts[0] += counts_first - 1
        uniq = cells[starts]
        first_pos = t[starts]
        # The last cell may get more crossings in the next block: keep it open.
        s.open_cell, s.open_count, s.open_pos = int(uniq[-1]), int(counts[-1]), float(first_pos[-1])
        odd = (counts[:-1] & 1) == 1
        return self._zeros(s, uniq[:-1][odd], first_pos[:-1][odd])

    def _close_cells(self, s: _Slicer, before: float | None = None) -> list[tuple[bytes, float]]:
        """Close the open cell: at the end of the audio, or once the audio has passed it."""
        if s.open_cell is None:
            return []
        if before is not None and (before / self._spb - s.clock_phase) < s.open_cell + 1.5:
            return []
        cell, count, pos = s.open_cell, s.open_count, s.open_pos
        s.open_cell = None
        if count & 1 == 0:
            return []
        return self._zeros(s, np.array([cell], np.int64), np.array([pos]))

    # ------------------------------------------------------------------ NRZI 0s -> HDLC frames

    def _zeros(self, s: _Slicer, zeros: Int, pos: Float) -> list[tuple[bytes, float]]:
        if zeros.size == 0:
            return []
        prev = s.last_zero if s.last_zero is not None else int(zeros[0]) - 8
        runs = np.diff(np.concatenate(([prev], zeros))) - 1  # 1s before each 0
        s.last_zero = int(zeros[-1])
        out: list[tuple[bytes, float]] = []
        # Bits each run puts in a frame: its 1s, and its 0 unless that is a stuffed 0 (after five 1s).
        # Their running sum tells a frame's length without building it: most candidates between two
        # flags in noise are no whole number of bytes and are dropped for free.
        total = np.cumsum(runs + (runs < 5))
        # Only flags and aborts change state; the runs between them are collected as they are.
        marks = np.flatnonzero(runs >= 6)
        begin = 0
        for m in marks.tolist():
            if s.synced:
                nbits = s.nbits + int(total[m - 1] if m else 0) - int(total[begin - 1] if begin else 0) - 1
                if nbits % 8 == 0 and MIN_FRAME_BYTES * 8 <= nbits <= MAX_FRAME_BYTES * 8:
                    s.runs.extend(runs[begin:m].tolist())
                    frame = self._frame(s.runs)
                    if frame is not None:
                        out.append((frame, float(pos[m])))
            s.runs.clear()
            s.nbits = 0
            s.synced = bool(runs[m] == 6)
            begin = m + 1
        if s.synced:
            s.runs.extend(runs[begin:].tolist())
            s.nbits += int(total[-1]) - int(total[begin - 1] if begin else 0)
            if s.nbits > MAX_FRAME_BYTES * 8:  # no flag for far too long: lose sync
                s.runs.clear()
                s.nbits = 0
                s.synced = False
        return out

    @staticmethod
    def _frame(runs: list[int]) -> bytes | None:
        """The bytes between two flags from the runs of 1s before each 0, or None if not a good frame."""
        if not runs or runs[-1] >= 5:
            return None  # the closing flag's 0 must follow data (a stuffed 0 is never a flag's)
        r = np.asarray(runs, np.int64)
        zero = r < 5  # a run of 5 is followed by a stuffed 0, dropped
        nbits = int(r.sum() + zero.sum()) - 1  # the last 0 is the closing flag's
        if nbits % 8 or not MIN_FRAME_BYTES * 8 <= nbits <= MAX_FRAME_BYTES * 8:
            return None
        values = np.zeros(2 * r.size, np.uint8)
        values[0::2] = 1
        lengths = np.empty(2 * r.size, np.int64)
        lengths[0::2] = r
        lengths[1::2] = zero
        bits = np.repeat(values, lengths)[:nbits]
        data = np.packbits(bits, bitorder="little").tobytes()  # AX.25 sends each byte LSB first
        if ax25.fcs(data[:-2]) != data[-2] | data[-1] << 8:
            return None
        return data[:-2]

    # ------------------------------------------------------------------ frames -> events

    def _release(self, start: datetime, first: int, *, final: bool) -> list[Output]:
        """Report the frames no other slicer can still claim, the earliest of duplicates only."""
        horizon = self._n - 2 * DEDUP_SECONDS * self.rate
        self._pending.sort()
        ready = [c for c in self._pending if final or c.end < horizon]
        self._pending = [c for c in self._pending if not (final or c.end < horizon)]
        out: list[Output] = []
        window = DEDUP_SECONDS * self.rate
        for c in ready:
            self._recent = [(e, d) for e, d in self._recent if c.end - e <= window]
            if any(d == c.data for _, d in self._recent):
                continue
            self._recent.append((c.end, c.data))
            now = self.at(start, round(c.end) - first)
            result = frame_to_output(c.data, now, self.name)
            if result is None or isinstance(result, Rejected):  # no event here, or not APRS
                out.extend([result] if result is not None else [])
                continue
            detail = {**result.detail, "offset_s": round(c.end / self.rate, 4), "demodulator": c.slicer}
            out.append(replace(result, detail=detail))
        return out
