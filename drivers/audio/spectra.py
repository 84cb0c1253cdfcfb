"""Short-time spectra of an audio stream cut into blocks of any size: the front end of the tone decoders.

Frames are ``win`` samples long and start every ``hop`` samples counted from the first sample ever fed,
so the frames (and everything decided from them) do not depend on how the stream was cut into blocks::

    sample  0         hop       2*hop                      (absolute index, kept across blocks)
            |---- frame 0 ----|
                      |---- frame 1 ----|
                                |---- frame 2 ----|

Each frame is Hann-windowed and zero-padded to ``nfft`` points. Powers are scaled so that a sine of
amplitude ``A`` gives ``A**2 / 2`` summed over its main lobe (+-2 bins of ``rate / win``), and the sum
over a band is the mean power in that band, whatever the frame length.

Sharing: DTMF and 5-tone decoders on one channel run on the same frames. A :class:`Spectrogram` fed
the very same block objects, at the same position and after the same history, as the one fed just
before it on this thread takes that one's :class:`Spectra` instead of computing them again (the audio
driver hands one array to every decoder of a rate). Each decoder still works alone; sharing changes
no result, only the work.
"""

from __future__ import annotations

import math
import threading
from abc import abstractmethod
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from drivers.audio import compiled
from drivers.audio.base import AudioDecoder, Samples
from drivers.audio.views import strided
from drivers.base import Output, Rejected

Floats = npt.NDArray[np.float64]
Powers = npt.NDArray[np.float32] | npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]

#: The speech band of a radio channel (ITU-T G.712 300-3400 Hz): where tone purity and noise are judged.
VOICE_HZ = (300.0, 3400.0)

_TRIO = np.array([-1, 0, 1])
_last = threading.local()  # the last Spectra computed on this thread, for a sibling decoder to take
#: What ``_last.entry`` holds: (key, the objects fed, the spectra, then the spectrogram's state after them:
#: buffer, history, samples fed, next start).
_Entry = tuple[tuple[object, ...], list[object], "Spectra", "Samples", object, int, int]

# scipy.fft's compiled FFT without importing scipy.fft (0.16 s of start-up); numpy.fft takes twice the time.
_pocketfft = compiled.load("scipy.fft._pocketfft.pypocketfft")


def _rfft(x: npt.NDArray[Any], n: int) -> npt.NDArray[Any]:
    """``scipy.fft.rfft(x, n, axis=1)`` of real rows (float32 gives complex64): the same call of pocketfft's
    ``r2c`` (the rows zero-padded or cut to ``n``, no normalisation, one thread), so the same numbers."""
    if x.shape[1] < n:
        padded = np.zeros((x.shape[0], n), x.dtype)
        padded[:, : x.shape[1]] = x
        x = padded
    else:
        x = x[:, :n]
    return _pocketfft.r2c(x, (1,), True, 0, None, 1)  # type: ignore[no-any-return]


def sanitize(block: Samples) -> tuple[Samples, bool]:
    """The block as float32 in -1..1; NaN and infinities become silence (and ``True`` says there were some)."""
    data = np.asarray(block, dtype=np.float32).reshape(-1)
    bad = ~np.isfinite(data)
    has_bad = bool(bad.any())
    if has_bad:
        data = np.where(bad, np.float32(0.0), data)
    return np.clip(data, -1.0, 1.0).astype(np.float32, copy=False), has_bad


class Spectra:
    """The power spectra of a run of frames, and what the tone decoders derive from them, each computed
    once on first use (a sibling decoder sharing these frames gets them for free)."""

    def __init__(self, spec: Spectrogram, starts: Ints, power: Powers, had_bad: bool) -> None:
        self.spec = spec
        self.starts = starts
        self.power = power
        self.had_bad = had_bad  # the samples held NaN or infinities (taken as silence)
        self._peaks: dict[tuple[float, float], tuple[Floats, Floats]] = {}

    def __len__(self) -> int:
        return int(self.starts.size)

    @cached_property
    def voice(self) -> Floats:
        """Per frame, the power in 300-3400 Hz."""
        return self.spec.band_power(self.power, *VOICE_HZ)

    @cached_property
    def floor(self) -> Floats:
        """Per frame, the noise floor per bin in 300-3400 Hz: white noise is flat and a voice or a tone is
        not, so the median bin (ln 2 of the mean for Gaussian noise) estimates it. Every third bin is
        enough (the zero-padded bins are correlated anyway) and costs a third."""
        band = self.spec.band(*VOICE_HZ)
        floor: Floats = np.median(self.power[:, band.start : band.stop : 3], axis=1) / np.log(2)
        return floor

    def peak(self, lo_hz: float, hi_hz: float) -> tuple[Floats, Floats]:
        if (lo_hz, hi_hz) not in self._peaks:
            self._peaks[lo_hz, hi_hz] = self.spec.peak(self.power, lo_hz, hi_hz)
        return self._peaks[lo_hz, hi_hz]

    def lobe_power(self, k: Ints | Floats) -> Floats:
        return self.spec.lobe_power(self.power, k)


class Spectrogram:
    """Streaming power spectra of ``win``-sample frames every ``hop`` samples (see the module docstring)."""

    def __init__(self, rate: int, win_s: float, hop_s: float) -> None:
        self.rate = rate
        self.win = max(16, round(win_s * rate))
        self.hop = max(1, round(hop_s * rate))
        self.nfft = 1 << int(np.ceil(np.log2(6 * self.win)))  # bins of ~rate/(6*win): fine peak interpolation
        self.bin_hz = rate / self.nfft
        self.window = np.hanning(self.win + 2)[1:-1].astype(np.float32)  # no zero end points
        self.scale = 2.0 / (self.nfft * float(np.sum(self.window.astype(np.float64) ** 2)))
        #: Half-width of a sine's main lobe in bins (the Hann main lobe is +-2 * rate / win).
        self.lobe = int(np.ceil(2 * rate / self.win / self.bin_hz))
        self._lobe_offsets = np.arange(-self.lobe, self.lobe + 1)
        self._buf = np.zeros(0, dtype=np.float32)
        self.next_start = 0  # absolute index of the next frame's first sample (== index of _buf[0])
        self._fed = 0  # samples fed so far
        self._history: object = None  # names what this spectrogram has been fed (see feed_blocks)

    def feed(self, data: Samples) -> tuple[Ints, Powers]:
        """Append samples; return the absolute start index and the power spectrum of each completed frame."""
        spectra = self._compute(data, False)
        return spectra.starts, spectra.power

    def feed_blocks(self, fed: list[object], blocks: list[Samples]) -> Spectra:
        """Append the blocks (sanitized here); the spectra of the completed frames. If the spectrogram fed
        just before on this thread had the same history and was fed the same objects ``fed`` (the arrays
        as the caller passed them; ``blocks`` are their copies), its spectra are taken as they are."""
        key = (self.rate, self.win, self.hop, self._fed, self._history, tuple(map(id, fed)))
        last: _Entry | None = getattr(_last, "entry", None)
        if last is not None and last[0] == key:  # the entry holds the objects, so their ids are not reused
            _, _, spectra, buf, history, count, next_start = last
            self._buf, self._history, self._fed, self.next_start = buf, history, count, next_start
            return spectra
        data, had_bad = sanitize(blocks[0] if len(blocks) == 1 else np.concatenate(blocks))
        spectra = self._compute(data, had_bad)
        self._history = object()
        _last.entry = (key, fed, spectra, self._buf, self._history, self._fed, self.next_start)
        return spectra

    def _compute(self, data: Samples, had_bad: bool) -> Spectra:
        self._fed += data.size
        self._buf = np.concatenate([self._buf, data]) if self._buf.size else data.copy()
        if self._buf.size < self.win:
            return Spectra(self, np.zeros(0, dtype=np.intp), np.zeros((0, self.nfft // 2 + 1), np.float32), had_bad)
        count = (self._buf.size - self.win) // self.hop + 1
        step = self._buf.strides[0]
        frames = strided(self._buf, (count, self.win), (self.hop * step, step))
        spectra = _rfft(frames * self.window, self.nfft)  # float32 in, complex64 out
        # Single precision is plenty for powers summed over a few hundred bins, and halves the traffic.
        power = np.square(spectra.real)
        power += np.square(spectra.imag)
        power *= np.float32(self.scale)
        starts = self.next_start + self.hop * np.arange(count, dtype=np.intp)
        self._buf = self._buf[count * self.hop :].copy()
        self.next_start += count * self.hop
        return Spectra(self, starts, power, had_bad)

    def band(self, lo_hz: float, hi_hz: float) -> slice:
        return slice(math.floor(lo_hz / self.bin_hz), math.ceil(hi_hz / self.bin_hz) + 1)

    def peak(self, power: Powers, lo_hz: float, hi_hz: float) -> tuple[Floats, Floats]:
        """Per frame: the frequency of the strongest peak in ``lo_hz..hi_hz`` (interpolated on the log
        spectrum, exact for a Gaussian and within a fraction of a hertz for a Hann main lobe) and the
        power in its main lobe."""
        band = self.band(lo_hz, hi_hz)
        k = np.argmax(power[:, band], axis=1) + band.start
        rows = np.arange(power.shape[0])[:, None]
        a, b, c = np.log(power[rows, k[:, None] + _TRIO] + np.float32(1e-30)).T
        # b is the largest of the three, so |a - c| <= -(a - 2b + c) and the offset is within half a bin.
        delta = 0.5 * (a - c) / np.minimum(a - 2 * b + c, -1e-12)
        delta = np.maximum(np.minimum(delta, 0.5), -0.5)  # against rounding
        return (k + delta) * self.bin_hz, self.lobe_power(power, k)

    def lobe_power(self, power: Powers, k: Ints | Floats) -> Floats:
        """Per frame, the power within a main lobe around bin ``k`` (a per-frame array of bins)."""
        kk = np.rint(k).astype(np.intp) if k.dtype.kind == "f" else k
        kk = np.maximum(np.minimum(kk, power.shape[1] - 1 - self.lobe), self.lobe)
        rows = np.arange(power.shape[0])[:, None]
        total: Floats = power[rows, kk[:, None] + self._lobe_offsets].sum(axis=1, dtype=np.float64)
        return total

    def band_power(self, power: Powers, lo_hz: float, hi_hz: float) -> Floats:
        total: Floats = power[:, self.band(lo_hz, hi_hz)].sum(axis=1, dtype=np.float64)
        return total


class FrameDecoder(AudioDecoder):
    """A decoder that decides on short-time spectra (DTMF, 5-tone): :meth:`feed` cuts the stream into
    frames of ``FRAME_S`` every ``HOP_S`` and hands them to :meth:`_frames`; :meth:`_finish` ends what is
    pending at :meth:`flush`. Both append what they find to ``self._out``.

    Blocks are gathered to ``CHUNK_S`` before their frames are computed: the frames do not depend on the
    split, and the few hundred numpy calls that decide on a chunk cost about the same (~0.3 ms for DTMF
    and 5-tone together, measured) for 20 ms as for 250 ms. Events come up to that much later: a DTMF
    sequence waits for its inter-digit timeout (1 s) anyway, a 5-tone call lasts 0.2-0.5 s.
    """

    FRAME_S: ClassVar[float] = 0.020
    HOP_S: ClassVar[float] = 0.005
    CHUNK_S: ClassVar[float] = 0.25

    def __init__(self, rate: int | None = None, **options: Any) -> None:
        super().__init__(rate, **options)
        self._spec = Spectrogram(self.rate, self.FRAME_S, self.HOP_S)
        self._base = 0  # absolute index of the next sample to come
        self._block_base = 0  # absolute index of the first held block's first sample (times count from it)
        self._start: datetime | None = None  # start time of the first held block
        self._fed: list[object] = []  # the blocks as fed, to recognise them (see Spectrogram.feed_blocks)
        self._held: list[Samples] = []  # their copies: a caller may reuse its buffer
        self._held_size = 0
        self._chunk = max(1, round(self.CHUNK_S * self.rate))
        self._out: list[Output] = []

    def feed(self, block: Samples, start: datetime) -> list[Output]:
        if not self._held:
            self._start, self._block_base = start, self._base
        self._fed.append(block)
        self._held.append(np.array(block, dtype=np.float32).reshape(-1))
        self._held_size += self._held[-1].size
        if self._held_size < self._chunk:
            return []
        self._out = []
        self._process()
        return self._out

    def _process(self) -> None:
        fed, held, size = self._fed, self._held, self._held_size
        self._fed, self._held, self._held_size = [], [], 0
        spectra = self._spec.feed_blocks(fed, held)
        if spectra.had_bad:
            self._out.append(Rejected(self.name, "block held NaN or infinite samples (taken as silence)", b""))
        if len(spectra):
            self._frames(spectra.starts + self._spec.win // 2, spectra)
        self._base += size

    def flush(self, now: datetime) -> list[Output]:
        self._out = []
        if self._held:
            self._process()
        if self._start is None:
            return self._out
        self._finish()
        return self._out

    def time_of(self, index: int) -> datetime:
        """The time of the sample at absolute ``index`` (counted from the first sample ever fed)."""
        assert self._start is not None
        return self.at(self._start, index - self._block_base)

    @abstractmethod
    def _frames(self, centres: Ints, spectra: Spectra) -> None:
        """Decide on the frames centred at ``centres`` (absolute sample indices)."""

    @abstractmethod
    def _finish(self) -> None:
        """End what is pending: the stream is over, or has gone quiet."""
