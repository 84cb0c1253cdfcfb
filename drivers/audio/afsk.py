r"""AFSK1200 (Bell 202) audio -> HDLC -> AX.25 -> APRS events, sans-I/O and vectorised with numpy/scipy.

Signal chain (one channel; every stage keeps its state between blocks, so any split of the audio gives
the same frames)::

                                    ┌─ x e^{-j2π·1200·t} ─ low-pass ─ |.| ─ mark envelope m ──┐  ┌─ slicer g1
    samples ─ anti-alias ─ decimate ┤                                                         ├──┼─ slicer g2
              (4 kHz)     (~9.6 kHz)└─ x e^{-j2π·2200·t} ─ low-pass ─ |.| ─ space envelope s ─┘  └─ ... gN
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

The clock, NRZI and HDLC stages work on arrays of crossings and runs with numpy, all slicers of all
variants at once; Python loops only over the slicers and the byte-aligned candidate frames between two
flags. Several slicers (gains of the space tone against the mark tone, to absorb the tilt of pre-emphasis
and de-emphasis) on several low-pass widths run in parallel, as Dire Wolf's multiple slicers do
(demod_afsk.c; the "+" of its demodulator profiles, and atest's default for 1200 baud is "E+"); a frame
that several of them decode is reported once, by the one whose closing flag came first (ties broken by
the order of :data:`VARIANTS`).

Bell 202 (Bell System Technical Reference PUB 41212, 1976): mark 1200 Hz, space 2200 Hz, 1200 baud.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from drivers import ax25
from drivers.audio.base import AudioDecoder, Samples, mended
from drivers.audio.iir import butter_lowpass, sosfilt, sosfilt_runs
from drivers.audio.oscillator import Oscillators
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
# The anti-alias low-pass before decimation (Butterworth): within 0.1 dB up to 2860 Hz (space plus the
# widest envelope low-pass), and 30 dB or more down where noise would fold onto the tones (from 6740 Hz
# at 48000 Hz, decimated to 9600; 42 dB at 44100, 67 dB at 22050). Cutoffs of 3200-4200 Hz and orders
# 6-10 decode within two frames of each other on the gen_packets sweeps; this one decodes at least as
# many as the full-rate demodulator did on each.
AA_ORDER = 6
AA_HZ = 4000.0
# Audio is demodulated in pieces of at least this length (see feed): the events come this much later,
# and an APRS frame is on the air for 0.2-2 s anyway. Each piece costs about 0.5 ms of numpy and scipy
# calls whatever its length (measured): 2 ms per second of audio at 0.25 s, 1 ms at 0.5 s.
CHUNK_SECONDS = 0.5

Float = npt.NDArray[np.float64]
Single = npt.NDArray[np.float32]
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
    """HDLC state of one slicer (its bit-cell state is in the decoder's per-slicer arrays)."""

    name: str
    order: int  # rank among all slicers, to break ties the same way on every split
    runs: list[int] = field(default_factory=list)  # runs of 1s before each 0 since the last flag
    nbits: int = 0  # the frame bits they make
    synced: bool = False  # a flag has been seen since the last abort


@dataclass
class _Demod:
    variant: Variant
    sos: Float
    zi: Complex  # (sections, 2 tones, 2)

    @classmethod
    def create(cls, variant: Variant, rate: float) -> _Demod:
        sos = butter_lowpass(variant.order, variant.lpf_baud * BAUD, rate)
        return cls(variant=variant, sos=sos, zi=np.zeros((sos.shape[0], 2, 2), np.complex128))


_NONE = -(1 << 62)  # "no cell": before every real cell number
# Bit cells are numbered from the start of the audio: below 2**40 for 29 years at 1200 baud. A running
# maximum over all slicers at once lifts each slicer's cells 2**42 above the one before it.
_CELL_SPAN = 1 << 40
_ROW_LIFT = 1 << 42
# Unit phasors e^{2πi k/_STEPS} for the bit clock: a table is ten times faster than np.exp here. With
# 4096 steps one frame of the gen_packets sweeps was lost; at 65536 (a phase error of at most 1/131072
# of a bit) they decode exactly as with np.exp.
_STEPS = 65536
_PHASORS = np.exp(2j * np.pi * np.arange(_STEPS) / _STEPS)
# The clock's one-pole average y[n] = (1 - inertia) x[n] + inertia y[n-1] as a single section.
_CLOCK_SOS = np.array([[1 - CLOCK_INERTIA, 0.0, 0.0, 1.0, -CLOCK_INERTIA, 0.0]])


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
        # The mixers' oscillators at the decimated samples: 1200 and 2200 Hz are multiples of 200 Hz.
        self._lo = Oscillators((int(MARK_HZ), int(SPACE_HZ)), r, self._dec)
        self._n = 0  # samples consumed so far
        self._last_pos = -1.0  # position of the last decimated sample
        # Decimate before mixing, behind an anti-alias low-pass (AA_HZ): the mixers and envelope
        # low-passes then run at about 9600 Hz, not at the audio rate.
        self._aa = butter_lowpass(AA_ORDER, AA_HZ, r) if self._dec > 1 else None
        self._aa_zi = np.zeros((AA_ORDER // 2, 2))
        self._demods = [_Demod.create(v, r / self._dec) for v in VARIANTS]
        # Every slicer of every demodulator in one row of the arrays below, so that each stage is one
        # numpy call for all of them (Python loops only over slicers that met a flag).
        self._slicers = [
            _Slicer(f"{v.name}{k}", rank * 100 + k) for rank, v in enumerate(VARIANTS) for k in range(len(v.gains))
        ]
        count = len(self._slicers)
        self._last_d: Single = np.zeros(count, np.float32)  # the last decimated slicer output of the previous block
        self._clock_zi = np.zeros((1, count, 2), np.complex128)  # state of the phasor average (one section)
        self._clock_phase = np.zeros(count)  # the last unwrapped clock phase, in bits
        self._last_cell = np.full(count, _NONE, np.int64)  # cells never go backwards
        # The last cell with crossings (more may come in the next block), their count and first time:
        self._open_cell = np.full(count, _NONE, np.int64)
        self._open_count = np.zeros(count, np.int64)  # 0: no open cell
        self._open_pos = np.zeros(count)
        self._last_zero = np.full(count, _NONE, np.int64)  # the cell of the last NRZI 0
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
        self._held.append(np.array(block, dtype=np.float64).ravel())  # a copy: the caller may reuse its buffer
        self._held_size += self._held[-1].size
        if self._held_size < CHUNK_SECONDS * self.rate:
            return []
        return self._process()

    def _process(self) -> list[Output]:
        block = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        start = self._held_start
        self._held.clear()
        self._held_size = 0
        x = mended(block)  # our own copy (see feed): garbage in must not poison the filter state for good
        first = self._n
        self._n += x.size
        if self._aa is not None and x.size:
            x, self._aa_zi = sosfilt(self._aa, x, self._aa_zi)
        # The decimated samples are those whose global index is a multiple of the decimation.
        keep = slice((-first) % self._dec, None, self._dec)
        at = np.arange(first + keep.start, first + x.size, self._dec)
        if at.size:
            mixed = self._lo.at(int(at[0]), at.size) * x[keep]  # (2, n): mark and space baseband
            # Slicer outputs, one row per slicer, after the last one of the previous block. The envelopes
            # and slicer outputs are single precision, so there is half the memory to pass over (the
            # filters run in double precision, and a crossing is timed in it): the frames are the same.
            d = np.empty((len(self._slicers), at.size + 1), np.float32)
            d[:, 0] = self._last_d
            row = 0
            for demod in self._demods:
                base, demod.zi = sosfilt(demod.sos, mixed, demod.zi)
                env = np.abs(base, out=np.empty(base.shape, np.float32))
                rows = d[row : row + len(demod.variant.gains), 1:]
                np.multiply(np.asarray(demod.variant.gains, np.float32)[:, None], env[1], out=rows)
                np.subtract(env[0], rows, out=rows)
                row += len(demod.variant.gains)
            for k, data, end in self._slice(d, int(at[0]), int(at[-1])):
                s = self._slicers[k]
                self._pending.append(_Candidate(end, s.order, data, s.name))
            self._last_pos = float(at[-1])
        return self._release(start, first, final=False)

    def flush(self, now: datetime) -> list[Output]:
        out = self._process() if self._held else []
        for k in range(len(self._slicers)):
            for data, end in self._close_cell(k):
                s = self._slicers[k]
                self._pending.append(_Candidate(end, s.order, data, s.name))
        return out + self._release(now, self._n, final=True)

    def _slice(self, d_all: Single, first: int, last: int) -> list[tuple[int, bytes, float]]:
        """All slicers at once, from their outputs ``d_all`` (slicer, sample; column 0 is the previous
        block's last) at the decimated samples ``first`` to ``last`` (one decimation apart) to frames
        (slicer, data, end): crossings, then the bit clock, flattened over the slicers, then the bit cells
        and NRZI 0s."""
        self._last_d = d_all[:, -1].copy()
        # Zero crossings; a sample exactly 0 counts as positive, so a crossing is never counted twice.
        neg = d_all < 0
        change = neg[:, 1:] ^ neg[:, :-1]
        if self._last_pos < 0:
            change[:, 0] = False  # the very first sample has no predecessor
        width = change.shape[1]
        flat = np.flatnonzero(change)  # 2-D np.nonzero is three times slower
        rows = flat // width
        cols = flat - rows * width
        counts = np.bincount(rows, minlength=len(self._slicers))
        found: list[tuple[int, bytes, float]] = []
        for k in np.flatnonzero(counts == 0).tolist():  # no crossing: the open cell may be over
            found += [(k, data, end) for data, end in self._close_cell(k, before=float(last))]
        if rows.size == 0:
            return found
        # Each crossing timed by linear interpolation between the samples around it: column c of d_all
        # is at first + (c - 1) * step (column 0 one step before the first).
        before = flat + rows  # the index in d_all, one column wider than change, of the sample before
        d0, d1 = d_all.ravel()[before], d_all.ravel()[before + 1]
        step = np.float64(self._dec)
        t = (first + (cols - 1) * self._dec) + step * d0 / (d0 - d1)
        bits = t / self._spb
        # Per slicer, the index of its first crossing; each crossing, whether it is its slicer's first.
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        has = np.flatnonzero(counts > 0)  # the slicers with crossings
        opening = np.zeros(rows.size, bool)
        opening[starts[has]] = True
        # The bit clock: the mean phase of the crossings on the baud grid, as a one-pole average of
        # unit phasors over each slicer's crossings (direct form II transposed: the state after a
        # slicer's run is inertia * its last output).
        phasor = _PHASORS[((bits - np.floor(bits)) * _STEPS + 0.5).astype(np.intp) & (_STEPS - 1)]
        avg, _ = sosfilt_runs(_CLOCK_SOS, phasor, counts.tolist(), self._clock_zi)
        raw = np.arctan2(avg.imag, avg.real) / (2 * np.pi)  # np.angle, without its overhead
        # Unwrap against the phase carried over, so that a clock drifting through 0 does not slip a bit.
        steps = np.diff(raw, prepend=0.0)
        steps[opening] = raw[opening] - self._clock_phase[rows[opening]]
        steps -= np.round(steps)
        total = np.cumsum(steps)  # over all rows: each row's own sum starts from its first crossing
        runs = counts[has]
        phase = total - np.repeat((total - steps)[opening], runs) + np.repeat(self._clock_phase[has], runs)
        cells = np.round(bits - phase).astype(np.int64)
        # Cells never go backwards (a jump of the clock phase must not reorder the bits): a running
        # maximum per slicer, from its last cell, as one running maximum over all slicers with each
        # slicer's cells lifted above all of the slicers before it.
        lift = rows * _ROW_LIFT
        lifted = cells + lift
        floor = np.maximum(self._last_cell[has], -_CELL_SPAN) + has * _ROW_LIFT
        lifted[starts[has]] = np.maximum(lifted[starts[has]], floor)
        cells = np.maximum.accumulate(lifted) - lift
        ends = starts + counts - 1
        self._clock_zi[0, has, 0] = CLOCK_INERTIA * avg[ends[has]]
        self._clock_phase[has] = phase[ends[has]]
        self._last_cell[has] = cells[ends[has]]
        return found + self._cells(rows, cells, t, counts, starts)

    # ------------------------------------------------------------------ bit cells -> NRZI 0s

    def _cells(self, rows: Int, cells: Int, t: Float, counts: Int, starts: Int) -> list[tuple[int, bytes, float]]:
        """Crossings (row-major by slicer, in time order; ``counts`` and ``starts`` of each slicer's) to NRZI
        0s: crossings in the same cell, with those of the cell left open by the last block, count once if
        odd, cancel if even."""
        opened = np.flatnonzero((self._open_count > 0) & (counts > 0))
        at = starts[opened]  # each slicer's open cell goes before its first new crossing
        r = np.insert(rows, at, opened)
        c = np.insert(cells, at, self._open_cell[opened])
        p = np.insert(t, at, self._open_pos[opened])
        new = np.ones(r.size, bool)
        new[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
        groups = np.flatnonzero(new)
        # Crossings per cell: one each, and an open cell brings the count it had (it starts its group).
        g_count = np.diff(groups, append=r.size)
        g_count[np.searchsorted(groups, at + np.arange(opened.size))] += self._open_count[opened] - 1
        g_row, g_cell, g_pos = r[groups], c[groups], p[groups]
        # Each slicer's last cell may get more crossings in the next block: keep it open.
        last = np.ones(groups.size, bool)
        last[:-1] = g_row[1:] != g_row[:-1]
        lr = g_row[last]
        self._open_cell[lr], self._open_count[lr], self._open_pos[lr] = g_cell[last], g_count[last], g_pos[last]
        zero = ~last & ((g_count & 1) == 1)
        return self._zeros(g_row[zero], g_cell[zero], g_pos[zero])

    def _close_cell(self, k: int, before: float | None = None) -> list[tuple[bytes, float]]:
        """Close slicer ``k``'s open cell: at the end of the audio, or once the audio has passed it."""
        if self._open_count[k] == 0:
            return []
        cell = int(self._open_cell[k])
        if before is not None and (before / self._spb - self._clock_phase[k]) < cell + 1.5:
            return []
        count, pos = int(self._open_count[k]), float(self._open_pos[k])
        self._open_count[k] = 0
        if count & 1 == 0:
            return []
        return [(data, end) for _, data, end in self._zeros(np.array([k]), np.array([cell]), np.array([pos]))]

    # ------------------------------------------------------------------ NRZI 0s -> HDLC frames

    def _zeros(self, rows: Int, zeros: Int, pos: Float) -> list[tuple[int, bytes, float]]:
        """NRZI 0s (row-major by slicer) to frames: the runs of 1s between them, flags and aborts."""
        if zeros.size == 0:
            return []
        first = np.ones(rows.size, bool)
        first[1:] = rows[1:] != rows[:-1]
        prev = np.empty_like(zeros)
        prev[1:] = zeros[:-1]
        carried = self._last_zero[rows[first]]
        prev[first] = np.where(carried == _NONE, zeros[first] - 8, carried)
        runs = zeros - prev - 1  # 1s before each 0
        last = np.ones(rows.size, bool)
        last[:-1] = first[1:]
        self._last_zero[rows[last]] = zeros[last]
        # Bits each run puts in a frame: its 1s, and its 0 unless that is a stuffed 0 (after five 1s).
        # Their running sum tells a frame's length without building it: most candidates between two
        # flags in noise are no whole number of bytes and are dropped for free.
        total = np.concatenate(([0], np.cumsum(runs + (runs < 5))))  # total[i]: bits of runs[:i]
        starts = np.flatnonzero(first)
        bounds = np.append(starts, rows.size)
        ids = rows[starts].tolist()
        slicers = [self._slicers[k] for k in ids]
        # Only flags (6 ones) and aborts (7 or more) change state: for each, the candidate frame since
        # the mark before it (in this block, or carried over from the last) is checked all at once.
        marks = np.flatnonzero(runs >= 6)
        group = np.searchsorted(starts, marks, side="right") - 1  # each mark's slicer, as an index of starts
        opening = np.ones(marks.size, bool)  # the first mark of its slicer in this block
        opening[1:] = group[1:] != group[:-1]
        begin = np.where(opening, starts[group], np.concatenate(([0], marks[:-1] + 1)))
        synced = np.empty(marks.size, bool)
        synced[1:] = runs[marks[:-1]] == 6
        carried_bits = np.array([s.nbits for s in slicers], np.int64)[group]
        synced[opening] = np.array([s.synced for s in slicers], bool)[group[opening]]
        nbits = np.where(opening, carried_bits, 0) + total[marks] - total[begin] - 1
        good = synced & (nbits % 8 == 0) & (nbits >= MIN_FRAME_BYTES * 8) & (nbits <= MAX_FRAME_BYTES * 8)
        run = runs.tolist()
        out: list[tuple[int, bytes, float]] = []
        for i in np.flatnonzero(good).tolist():
            s, m, j = slicers[group[i]], int(marks[i]), int(begin[i])
            frame = self._frame((s.runs if opening[i] else []) + run[j:m])
            if frame is not None:
                out.append((ids[group[i]], frame, float(pos[m])))
        # What each slicer carries into the next block: the runs since its last flag, if any.
        closing = np.ones(marks.size, bool)
        closing[:-1] = group[1:] != group[:-1]
        last_mark = np.full(len(slicers), -1)
        last_mark[group[closing]] = marks[closing]
        for g, s in enumerate(slicers):
            m, end = int(last_mark[g]), int(bounds[g + 1])
            if m >= 0:
                s.runs.clear()
                s.nbits = 0
                s.synced = run[m] == 6
            start = m + 1 if m >= 0 else int(bounds[g])
            if s.synced:
                s.runs.extend(run[start:end])
                s.nbits += int(total[end] - total[start])
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
            if isinstance(result, Rejected):  # a connected-mode frame: not broadcast, no event
                out.append(result)
                continue
            detail = {**result.detail, "offset_s": round(c.end / self.rate, 4), "demodulator": c.slicer}
            out.append(replace(result, detail=detail))
        return out
