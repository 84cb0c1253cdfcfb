r"""The MSK receiver of the data-burst decoders (:mod:`drivers.audio.mdc1200`, :mod:`drivers.audio.fleetsync`):
audio in, the turned-back samples of each bit after a sync word out. Sans-I/O, numpy for the sample-level
stages, Python loops only over the bits after a sync.

Why one receiver serves both. MDC-1200 (XOR-precoded) and FleetSync (plain) are MSK: two tones half the
bit rate apart, phase-continuous. Relative to the centre frequency the phase turns -90 degrees over a
bit of the low tone and +90 over one of the high tone, so at the end of bit n the complex baseband,
turned back by j^n, is C * (-1)^c[n]: BPSK of c with an unknown carrier phase C, where c flips at every
high tone. MDC-1200 sends the high tone where a bit differs from the one before, so c is its bits;
FleetSync sends it for a 0, so c is the parity of the zeros sent and a data bit is 1 where c stays.
Each decoder turns c into its own bits and blocks; everything before that is here::

    samples x e^{-j2pi fc t}  (fc: the centre of the two tones)
      -> [x up, zero-stuffed, where the audio has too few samples a bit]
      -> Butterworth low-pass -> decimate (about 8 samples a bit)
      -> MSK matched filter (a half-cosine over two bits)                        MskReceiver.feed
      -> sync search: at every sample, the bit-spaced samples of the sync word, turned back by j^n,
         against its expected signs of c, coherently within segments and added non-coherently, over
         their energy (0..1: any carrier phase, either polarity, a tone a few % off); local maxima
         over a threshold are candidates                                          MskReceiver.search
      -> per candidate and demodulator (:class:`Variant`): the carrier phase and frequency from the
         known sync (or the phase blind from the squared samples, the sync bits deciding its sign);
         the sync's hard decisions must be within a tolerance of the pattern          acquire
      -> a decision-directed second-order carrier loop and an early/late bit clock through the bits
         that follow                                                              track

Sources: the MSK matched filter and the coherent detection are textbook (Proakis, Digital
Communications, "minimum-shift keying"); the sync tolerance, the demodulators tried in turn and the
blind polarity decision follow Matthew Kaufman's MDC and fsync decoders (see the two decoders'
docstrings); the loop gains are measured, where they are set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.audio.base import Samples, mended
from drivers.audio.fir import fir
from drivers.audio.iir import butter_lowpass, sosfilt
from drivers.audio.oscillator import Oscillators
from drivers.audio.peaks import sync_peaks
from drivers.audio.views import strided

Float = npt.NDArray[np.float64]
Complex = npt.NDArray[np.complex128]

# Carrier loop gains per bit (proportional, integral). Measured on MDC-1200, 60 bursts at 0 / -2 dB SNR,
# half of them 2 % off frequency, demodulator A alone: 0.04/0.001 decode 51/40, 0.08/0.003 57/50,
# 0.16/0.01 60/56, 0.2/0.015 58/52.
KP, KI = 0.16, 0.01
# The sync metric's energy is floored: in digital silence the FFT's rounding noise would make any ratio.
ENERGY_FLOOR = 1e-4
# Sync positions computed at once: their gathered bits (2 x 32-40 bits x 8 bytes each) stay in the cache.
SEARCH_CHUNK = 4096


@dataclass(frozen=True, slots=True)
class Variant:
    """One demodulator: a bit-timing offset (fraction of a bit), the carrier phase from the known sync
    bits (data-aided) or blind from the squared samples (then the sync decides the polarity, as the
    reference decoders' inverted-sync case), and a scale on the carrier loop gains."""

    name: str
    timing: float
    blind: bool = False
    loop: float = 1.0


#: The demodulators tried on every sync candidate, in this order (after the reference MDC decoder's
#: five sampling phases): three bit-timing phases, a blind carrier phase, a narrower and a wider loop.
VARIANTS: tuple[Variant, ...] = (
    Variant("A", 0.0),
    Variant("B", -0.25),
    Variant("C", 0.25),
    Variant("D", 0.0, blind=True),
    Variant("E", 0.0, loop=0.5),
    Variant("F", 0.0, loop=1.6),
)


@dataclass(frozen=True, slots=True)
class Loop:
    """How the tracking loops pull: the bit clock's gains (phase and rate, per unit of early/late error,
    in bits), how far the bit length may stray from nominal, and the phase detector: ``isi_q`` None
    takes the quadrature part of each sample as it comes; a number takes it one bit late, when the
    tone after it is known, less ``isi_q`` x (tone after - tone before) of the neighbours' pulses that
    the matched filter leaves there."""

    clock: float
    clock_rate: float
    max_clock_error: float = math.inf
    isi_q: float | None = None


@dataclass(frozen=True, slots=True)
class SyncCandidate:
    pos: float  # baseband index (fractional) of the end of the last sync bit
    pattern: int  # which of the receiver's sync patterns
    metric: float


@dataclass
class Track:
    """One demodulator following the bits after a sync: bit clock, carrier phase and frequency."""

    variant: Variant
    pos: float  # baseband index of the last bit read
    step: float  # the bit length, baseband samples
    phi: float  # carrier phase (rad) at pos
    omega: float  # carrier frequency offset (rad a bit)
    amp: float  # the mean amplitude of the sync samples: soft values are over it
    sync_errors: int
    c_prev: bool  # c of the last bit read
    s_prev: float  # its tone (+1 high)
    q_prev: float = 0.0  # its quadrature part (x its sign), for the phase error one bit late
    n: int = 0  # bits since the end of the sync


def sync_signs(bits: Iterable[int]) -> Float:
    """The expected sign of the turned-back baseband at the end of each bit, for the values of c."""
    return np.asarray([1.0 - 2.0 * b for b in bits], np.float64)


class MskReceiver:
    """Audio at ``rate`` -> matched-filtered baseband ``z`` (kept from index ``zbase``) -> sync
    candidates, for MSK at ``baud`` with tones around ``centre_hz``.

    ``up`` and ``dec``: the mixed audio is upsampled by ``up`` (zeros between, then the low-pass) and
    decimated by ``dec``; ``cutoff_hz`` is the low-pass corner. ``patterns`` are the sync words as
    expected signs of c (:func:`sync_signs`), all of one length, searched at once; ``segments`` how many
    pieces each is summed coherently in (a tone 2 % off turns 70 degrees in 8 bits).

    ``coarse`` (a fraction of ``threshold``, or None for every position): the metric is first computed
    at every third position only (positions that are multiples of 3, whatever the blocks), and exactly
    only within reach of those at or above ``coarse`` x ``threshold``. That finds every peak the full
    search finds provided the metric one sample either side of any position over the threshold is at
    least that fraction of it: true where the metric is smooth on the scale of a sample (measured for
    FleetSync at 8 or more samples a bit, see there), not for MDC-1200's, which is jagged in noise.
    """

    def __init__(self, rate: int, baud: float, centre_hz: float, cutoff_hz: float, *, up: int, dec: int,
                 patterns: Sequence[Float], segments: int, threshold: float, coarse: float | None = None) -> None:
        self.up, self.dec = up, dec
        self.spb = rate * up / dec / baud  # baseband samples per bit
        if centre_hz != int(centre_hz):
            raise ValueError(f"centre {centre_hz} Hz: whole numbers of Hz only")
        self.lo = Oscillators((int(centre_hz),), rate)
        self.sos = butter_lowpass(4, cutoff_hz, rate * up)
        self.zi = np.zeros((self.sos.shape[0], 2), np.complex128)
        # MSK matched filter: a half-cosine over two bits, centred (delay = half its length).
        half = math.floor(self.spb)
        tau = (np.arange(2 * half + 1) - half) / self.spb
        self.mf = np.cos(np.pi * tau / 2)
        self.mf /= self.mf.sum()
        self.mf_delay = half
        self.mf_zi = np.zeros(self.mf.size - 1, np.complex128)
        self.z = np.zeros(0, np.complex128)
        self.zbase = 0
        # Sync geometry: bit m of an nbits pattern sits (nbits - 1 - m) bits before the sync's end.
        self.patterns = tuple(np.asarray(p, np.float64) for p in patterns)
        nbits = self.patterns[0].size
        self.segments = segments
        self.threshold = threshold
        self.coarse = coarse
        self.sync_off = np.round((nbits - 1 - np.arange(nbits)) * self.spb).astype(np.int64)
        self.window = int(self.sync_off[0]) + 2  # samples before a position the metric needs
        self.checked = 0  # next z index to test for a sync peak
        seg = np.arange(nbits) // (nbits // segments)
        rot = np.array([1j ** (m % 4) for m in range(nbits)])
        # Per segment: its bits, and the distinct expected turned-back samples w of those bits over the
        # patterns (FleetSync's two sync words share their first half) as real rows that take the bits'
        # (re, im) pairs to (re, im) of the sum of w x z: only a segment's own bits are multiplied, in
        # real arithmetic (w is +-1 or +-j). ``which``: the row of each pattern.
        self.seg_parts: list[tuple[slice, Float, npt.NDArray[np.intp]]] = []
        for s in range(segments):
            bits = np.flatnonzero(seg == s)
            expected = np.array([signs[bits] * rot[bits] for signs in self.patterns], np.complex128)
            rows, which = np.unique(expected, axis=0, return_inverse=True)
            w = np.zeros((rows.shape[0], 2, bits.size, 2))  # (row, re/im out, bit, re/im in)
            w[:, 0, :, 0], w[:, 0, :, 1] = rows.real, -rows.imag
            w[:, 1, :, 0], w[:, 1, :, 1] = rows.imag, rows.real
            self.seg_parts.append((slice(int(bits[0]), int(bits[-1]) + 1), w.reshape(2 * rows.shape[0], -1),
                                   which.ravel()))

    @property
    def end(self) -> int:
        """The baseband index after the last sample produced."""
        return self.zbase + self.z.size

    def feed(self, x: Float, first: int) -> None:
        """Mix, filter, decimate and match-filter audio whose first sample has index ``first``."""
        mixed = x * self.lo.at(first, x.size)[0]
        if self.up > 1:
            mixed = np.repeat(mixed * self.up, self.up)
            mixed.reshape(-1, self.up)[:, 1:] = 0
        base, self.zi = sosfilt(self.sos, mixed, self.zi)
        keep = np.arange((-first * self.up) % self.dec, mixed.size, self.dec)
        zmf, self.mf_zi = fir(self.mf, base[keep], self.mf_zi)
        self.z = np.concatenate((self.z, zmf))

    def search(self, final: bool) -> list[SyncCandidate]:
        """New sync candidates: the local maxima of the metric over the threshold, in order. Positions
        near the end wait for more audio unless ``final`` (a peak needs the metric a bit either side)."""
        end = self.end
        lo = max(self.checked, self.zbase + self.window)
        w = max(1, round(self.spb))
        hi = end if final else end - w
        if hi <= lo:
            return []
        mlo = max(self.zbase + self.window, lo - w)
        parts = np.stack((self.z.real, self.z.imag))  # (2, kept)
        if self.coarse is None:
            metric = np.empty(end - mlo)
            seg = np.empty((len(self.patterns), end - mlo))
            self._spaced_metric(parts, mlo, end - mlo, 1, metric, seg)
        else:
            metric, seg = self._coarse_then_exact(parts, mlo, end, w + 1, self.coarse * self.threshold)
        self.checked = hi
        # The pattern only where there is a peak (argmax over every position cost as much as the peaks).
        return [SyncCandidate(pos, int(seg[:, k].argmax()), float(metric[k]))
                for pos, k in sync_peaks(metric, first=mlo, lo=lo, hi=hi, half_width=w, threshold=self.threshold)]

    def _coarse_then_exact(self, parts: Float, lo: int, hi: int, reach: int, rough: float) -> tuple[Float, Float]:
        """The metric (and each pattern's) of ``lo`` .. ``hi`` - 1 where it is needed: first at the
        multiples of 3, then exactly within ``reach`` of those at or above ``rough``. A peak over the
        threshold is then within one sample of one of those, and so is every position its neighbourhood
        is compared with; the rest stay -inf, below any threshold."""
        metric = np.full(hi - lo, -np.inf)
        seg = np.zeros((len(self.patterns), hi - lo))
        first = lo + (-lo) % 3
        coarse = np.empty(max(0, (hi - first + 2) // 3))
        self._spaced_metric(parts, first, coarse.size, 3, coarse, None)
        over = first + 3 * np.flatnonzero(coarse >= rough)
        if not over.size:
            return metric, seg
        # Every position within reach of one of them, once, in order, as indices from lo.
        near = np.zeros(hi - lo + 1, np.int64)
        np.add.at(near, np.maximum(over - reach, lo) - lo, 1)
        np.add.at(near, np.minimum(over + reach + 1, hi) - lo, -1)
        exact = np.flatnonzero(np.cumsum(near[:-1]) > 0)
        for i in range(0, exact.size, SEARCH_CHUNK):  # pieces that stay in the cache
            k = exact[i : i + SEARCH_CHUNK]
            got, part = np.empty(k.size), np.empty((len(self.patterns), k.size))
            self._metric(parts[:, k[None, :] + lo - self.zbase - self.sync_off[:, None]].transpose(1, 0, 2), got, part)
            metric[k], seg[:, k] = got, part
        return metric, seg

    def _spaced_metric(self, parts: Float, lo: int, count: int, step: int, metric: Float, seg: Float | None) -> None:
        """:meth:`_metric` of the ``count`` positions ``lo``, ``lo`` + ``step``, ..., their bit-spaced samples
        read through a view strided over ``parts`` (the (re, im) of the kept ``z``), in pieces that stay in
        the cache (a tenth of the time)."""
        for i in range(0, count, SEARCH_CHUNK):
            n = min(SEARCH_CHUNK, count - i)
            span = (n - 1) * step + 1
            windows = strided(parts, (parts.shape[1] - span + 1, 2, n),
                              (parts.strides[1], parts.strides[0], parts.strides[1] * step))
            rows = windows[lo + i * step - self.zbase - self.sync_off]  # (bits, re/im, positions)
            self._metric(rows, metric[i : i + n], None if seg is None else seg[:, i : i + n])

    def _metric(self, rows: Float, metric: Float, seg: Float | None) -> None:
        """The sync metric of positions whose bit-spaced samples are ``rows`` (bits, re/im, positions)
        into ``metric``, and each pattern's into ``seg`` unless None."""
        # Sparse FIRs (a tap per sync bit): the bit-spaced samples of every position as rows, (re, im)
        # of each sync bit in turn, then a small matrix product per segment. A fifth of the time of the
        # same sums by FFT convolution, which pays for all the zero taps between the bits.
        n = rows.shape[2]
        sums = np.empty((len(self.patterns), n)) if seg is None else seg
        sums[:] = 0.0
        for bits, mix, which in self.seg_parts:
            c = mix @ rows[bits].reshape(-1, n)  # (re, im) of each distinct expected segment
            sums += np.sqrt(c[0::2] ** 2 + c[1::2] ** 2)[which]
        flat = rows.reshape(-1, n)
        power = np.einsum("ij,ij->j", flat, flat)
        energy = np.maximum(np.sqrt(power * self.sync_off.size), ENERGY_FLOOR)
        np.divide(sums[0] if sums.shape[0] == 1 else np.maximum.reduce(sums), energy, out=metric)

    def at(self, pos: float) -> complex:
        """``z`` at a fractional index, linearly interpolated; 0 outside what is kept."""
        i = pos - self.zbase
        k = math.floor(i)
        if k < 0 or k + 1 >= self.z.size:
            return 0j
        f = i - k
        return complex(self.z[k] * (1 - f) + self.z[k + 1] * f)

    def at_many(self, pos: Float) -> Complex:
        """:meth:`at` for many indices at once."""
        i = pos - self.zbase
        k = np.floor(i).astype(np.int64)
        inside = (k >= 0) & (k + 1 < self.z.size)
        k = np.where(inside, k, 0)
        f = i - k
        return np.where(inside, self.z[k] * (1 - f) + self.z[np.minimum(k + 1, self.z.size - 1)] * f, 0)

    def trim(self, needed: Iterable[float]) -> None:
        """Forget the audio that no future sync search and none of the ``needed`` positions (candidates
        and tracks still to be read) will look at."""
        margin = self.window + 4 * int(self.spb) + 4
        keep = min([self.end - margin, self.checked - margin, *(int(p) - margin for p in needed)])
        drop = keep - self.zbase
        if drop > 0:
            self.z = self.z[drop:]
            self.zbase += drop

    def native(self, pos: float) -> float:
        """The input sample index of baseband index ``pos`` (the matched filter delays by mf_delay)."""
        return (pos - self.mf_delay) * self.dec / self.up


Acquired = dict[tuple[float, bool], "Track | None"]


def acquire(rx: MskReceiver, end: float, spb: float, signs: Float, variant: Variant, segments: int,
            tolerance: int, memo: Acquired | None = None) -> Track | None:
    """A track for ``variant`` after the sync that ends at ``end`` (bits ``spb`` long): the carrier
    frequency from the phase steps between the sync's segments, the phase from the sync (or blind), and
    the sync's hard decisions checked against ``signs``; None beyond ``tolerance`` errors.

    ``memo`` (one per sync, empty at first): demodulators that differ only in their loop gains start
    alike, so what one of the same timing and phase estimate got is handed to the next."""
    key = (variant.timing, variant.blind)
    if memo is not None and key in memo:
        known = memo[key]
        return None if known is None else replace(known, variant=variant)
    t = _acquire(rx, end, spb, signs, variant, segments, tolerance)
    if memo is not None:
        memo[key] = None if t is None else replace(t)  # a copy: tracking moves the one returned
    return t


def _acquire(rx: MskReceiver, end: float, spb: float, signs: Float, variant: Variant, segments: int,
             tolerance: int) -> Track | None:
    nbits = signs.size
    p0 = end + variant.timing * spb
    n = np.arange(-(nbits - 1), 1)
    y = rx.at_many(np.asarray(p0 + n * spb, np.float64)) * (1j ** (n % 4))
    amp = float(np.mean(np.abs(y)))
    if amp <= 0:
        return None
    seg = (y * signs).reshape(segments, -1).sum(axis=1)
    omega = float(np.angle(np.sum(seg[1:] * np.conj(seg[:-1])))) / (nbits // segments)
    yd = y * np.exp(-1j * omega * n)
    if variant.blind:
        # The phase modulo 180 degrees from the squared samples; the sync bits tell which.
        phi = float(np.angle(np.sum(yd**2))) / 2
        errors = _sign_errors(yd, phi, signs)
        if errors >= nbits - tolerance:
            phi += math.pi
            errors = nbits - errors
    else:
        phi = float(np.angle(np.sum(yd * signs)))
        errors = _sign_errors(yd, phi, signs)
    if errors > tolerance:
        return None
    return Track(variant, p0, spb, phi, omega, amp, sync_errors=errors, c_prev=bool(signs[-1] < 0),
                 s_prev=1.0 if signs[-1] != signs[-2] else -1.0)


def acquire_all(rx: MskReceiver, ends: Sequence[float], spb: float, signs: Float, variants: Sequence[Variant],
                segments: int, tolerance: int) -> list[Acquired]:
    """:func:`acquire`'s memo for each sync in ``ends``, filled for every distinct start of ``variants``
    at once: the same arithmetic as one at a time, along more axes. Most candidates of a noisy channel
    fail the sync check here, so the per-candidate numpy calls were most of a decoder's time."""
    keys = list(dict.fromkeys((v.timing, v.blind) for v in variants))
    if not ends or not keys:
        return [{} for _ in ends]
    nbits = signs.size
    timing = np.array([k[0] for k in keys])
    blind = np.array([k[1] for k in keys])
    n = np.arange(-(nbits - 1), 1)
    p0 = np.asarray(ends, np.float64)[:, None] + timing[None, :] * spb  # (syncs, starts)
    y = rx.at_many(p0[..., None] + n * spb) * (1j ** (n % 4))  # (syncs, starts, bits)
    amp = np.mean(np.abs(y), axis=-1)
    seg = (y * signs).reshape(*y.shape[:2], segments, -1).sum(axis=-1)
    omega = np.angle(np.sum(seg[..., 1:] * np.conj(seg[..., :-1]), axis=-1)) / (nbits // segments)
    yd = y * np.exp(-1j * omega[..., None] * n)
    phi = np.where(blind, np.angle(np.sum(yd**2, axis=-1)) / 2, np.angle(np.sum(yd * signs, axis=-1)))
    decided = np.where(np.real(yd * np.exp(-1j * phi)[..., None]) < 0, -1.0, 1.0)
    errors = (decided != signs).sum(axis=-1)
    flip = blind & (errors >= nbits - tolerance)
    phi = np.where(flip, phi + math.pi, phi)
    errors = np.where(flip, nbits - errors, errors)
    ok = (amp > 0) & (errors <= tolerance)
    c_prev, s_prev = bool(signs[-1] < 0), 1.0 if signs[-1] != signs[-2] else -1.0
    memos: list[Acquired] = []
    for i in range(len(ends)):
        memo: Acquired = {}
        for j, key in enumerate(keys):
            memo[key] = (Track(Variant("", key[0], key[1]), float(p0[i, j]), spb, float(phi[i, j]),
                               float(omega[i, j]), float(amp[i, j]), sync_errors=int(errors[i, j]),
                               c_prev=c_prev, s_prev=s_prev) if ok[i, j] else None)
        memos.append(memo)
    return memos


def _sign_errors(yd: Complex, phi: float, signs: Float) -> int:
    return int(np.count_nonzero(np.where(np.real(yd * np.exp(-1j * phi)) < 0, -1.0, 1.0) != signs))


def track(rx: MskReceiver, t: Track, count: int, loop: Loop, gain: float = 1.0) -> Complex:
    """The turned-back samples of the next ``count`` bits over the amplitude (real part positive: c = 0;
    the imaginary part is noise), tracking the carrier phase and frequency (a second-order
    decision-directed loop, gains :data:`KP`, :data:`KI` x the variant's and ``gain``) and the bit
    clock (early / late samples a quarter bit either side)."""
    g = t.variant.loop * gain
    kp, ki = KP * g, KI * g**2
    spb = rx.spb
    lo_step, hi_step = spb * (1 - loop.max_clock_error), spb * (1 + loop.max_clock_error)
    isi_q = loop.isi_q
    z, base, size = rx.z, rx.zbase, rx.z.size

    def at(p: float) -> complex:  # rx.at, without its attribute lookups: this loop is per bit
        i = p - base
        k = math.floor(i)
        if k < 0 or k + 1 >= size:
            return 0j
        f = i - k
        return complex(z[k] * (1 - f) + z[k + 1] * f)

    pos, step, phi, omega, amp = t.pos, t.step, t.phi, t.omega, t.amp
    q_prev, s_prev, c_prev = t.q_prev, t.s_prev, t.c_prev
    out = np.empty(count, np.complex128)
    rots = (1, 1j, -1, -1j)
    for i in range(count):
        t.n += 1
        pos += step
        phi += omega
        rot = rots[t.n % 4] * complex(math.cos(phi), -math.sin(phi))
        u = at(pos) * rot
        d = 1.0 if u.real >= 0 else -1.0
        # Bounded: a sample near zero (noise) must not yank the loop by up to 90 degrees, which is how a
        # loop slips half a turn.
        if isi_q is None:
            err = max(-1.0, min(1.0, u.imag * d / amp))
        else:
            c = d < 0
            tone = 1.0 if c != c_prev else -1.0  # +1: the high tone
            err = max(-1.0, min(1.0, q_prev - isi_q * (tone - s_prev)))
            q_prev, s_prev, c_prev = u.imag * d / amp, tone, c
        phi += kp * err
        omega += ki * err
        te = d * ((at(pos + step / 4) * rot).real - (at(pos - step / 4) * rot).real) / amp
        pos += loop.clock * te * spb
        step = min(hi_step, max(lo_step, step + loop.clock_rate * te * spb))
        out[i] = u / amp
    t.pos, t.step, t.phi, t.omega = pos, step, phi, omega
    t.q_prev, t.s_prev, t.c_prev = q_prev, s_prev, c_prev
    return out


class HeldAudio:
    """Audio gathered until a piece is worth demodulating (numpy calls cost the same for 20 ms as for
    250 ms; the result does not depend on the split anyway), handed out cleaned: NaN is silence, huge
    values are clipped, so that garbage does not poison the filter state."""

    def __init__(self) -> None:
        self._blocks: list[npt.NDArray[Any]] = []
        self.size = 0
        self.start = datetime.min  # the time of the first sample held

    def add(self, block: Samples, start: datetime) -> int:
        """Hold ``block``; returns how many samples are held."""
        if not self._blocks:
            self.start = start
        self._blocks.append(np.asarray(block).ravel())
        self.size += self._blocks[-1].size
        return self.size

    def take(self, now: datetime) -> tuple[Float, datetime]:
        """Everything held, and the time of its first sample (``now`` when nothing is held)."""
        start = self.start if self._blocks else now
        x = np.concatenate(self._blocks) if self._blocks else np.zeros(0)
        self._blocks.clear()
        self.size = 0
        return mended(np.asarray(x, dtype=np.float64)), start  # (a new array: the blocks were concatenated)
