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
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from drivers.audio.base import AudioDecoder, Samples
from drivers.base import Output, Rejected

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]


def sanitize(block: Samples) -> tuple[Samples, bool]:
    """The block as float32 in -1..1; NaN and infinities become silence (and ``True`` says there were some)."""
    data = np.asarray(block, dtype=np.float32).reshape(-1)
    bad = ~np.isfinite(data)
    has_bad = bool(bad.any())
    if has_bad:
        data = np.where(bad, np.float32(0.0), data)
    return np.clip(data, -1.0, 1.0).astype(np.float32, copy=False), has_bad


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
        self._buf = np.zeros(0, dtype=np.float32)
        self.next_start = 0  # absolute index of the next frame's first sample (== index of _buf[0])

    def feed(self, data: Samples) -> tuple[Ints, Floats]:
        """Append samples; return the absolute start index and the power spectrum of each completed frame."""
        self._buf = np.concatenate([self._buf, data]) if self._buf.size else data.copy()
        if self._buf.size < self.win:
            return np.zeros(0, dtype=np.intp), np.zeros((0, self.nfft // 2 + 1))
        frames = sliding_window_view(self._buf, self.win)[:: self.hop]
        count = frames.shape[0]
        spectra = np.fft.rfft(frames * self.window, self.nfft, axis=1)
        power = (spectra.real.astype(np.float64) ** 2 + spectra.imag.astype(np.float64) ** 2) * self.scale
        starts = self.next_start + self.hop * np.arange(count, dtype=np.intp)
        self._buf = self._buf[count * self.hop :]
        self.next_start += count * self.hop
        return starts, power

    def band(self, lo_hz: float, hi_hz: float) -> slice:
        return slice(int(np.floor(lo_hz / self.bin_hz)), int(np.ceil(hi_hz / self.bin_hz)) + 1)

    def peak(self, power: Floats, lo_hz: float, hi_hz: float) -> tuple[Floats, Floats]:
        """Per frame: the frequency of the strongest peak in ``lo_hz..hi_hz`` (interpolated on the log
        spectrum, exact for a Gaussian and within a fraction of a hertz for a Hann main lobe) and the
        power in its main lobe."""
        band = self.band(lo_hz, hi_hz)
        k = np.argmax(power[:, band], axis=1) + band.start
        rows = np.arange(power.shape[0])
        km = np.clip(k - 1, 0, power.shape[1] - 1)
        kp = np.clip(k + 1, 0, power.shape[1] - 1)
        a, b, c = (np.log(power[rows, j] + 1e-30) for j in (km, k, kp))
        denom = a - 2 * b + c
        safe = np.where(np.abs(denom) > 1e-12, denom, -1.0)
        delta = np.where(np.abs(denom) > 1e-12, np.clip(0.5 * (a - c) / safe, -0.5, 0.5), 0.0)
        return (k + delta) * self.bin_hz, self.lobe_power(power, k)

    def lobe_power(self, power: Floats, k: Ints | Floats) -> Floats:
        """Per frame, the power within a main lobe around bin ``k`` (a per-frame array of bins)."""
        cums = np.concatenate([np.zeros((power.shape[0], 1)), np.cumsum(power, axis=1)], axis=1)
        kk = np.rint(np.asarray(k)).astype(np.intp)
        lo = np.clip(kk - self.lobe, 0, power.shape[1])
        hi = np.clip(kk + self.lobe + 1, 0, power.shape[1])
        rows = np.arange(power.shape[0])
        return np.asarray(cums[rows, hi] - cums[rows, lo], dtype=np.float64)

    def band_power(self, power: Floats, lo_hz: float, hi_hz: float) -> Floats:
        return np.asarray(power[:, self.band(lo_hz, hi_hz)].sum(axis=1), dtype=np.float64)


class FrameDecoder(AudioDecoder):
    """A decoder that decides on short-time spectra (DTMF, 5-tone): :meth:`feed` cuts the stream into
    frames of ``FRAME_S`` every ``HOP_S`` and hands their centres and spectra to :meth:`_frames`;
    :meth:`_finish` ends what is pending at :meth:`flush`. Both append what they find to ``self._out``."""

    FRAME_S: ClassVar[float] = 0.020
    HOP_S: ClassVar[float] = 0.005

    def __init__(self, rate: int | None = None, **options: Any) -> None:
        super().__init__(rate, **options)
        self._spec = Spectrogram(self.rate, self.FRAME_S, self.HOP_S)
        self._base = 0  # absolute index of the next sample to come
        self._block_base = 0  # absolute index of the last block's first sample (times count from it)
        self._start: datetime | None = None  # start time of the current block
        self._out: list[Output] = []

    def feed(self, block: Samples, start: datetime) -> list[Output]:
        data, had_bad = sanitize(block)
        self._out = []
        if had_bad:
            self._out.append(Rejected(self.name, "block held NaN or infinite samples (taken as silence)", b""))
        self._start, self._block_base = start, self._base
        starts, power = self._spec.feed(data)
        if starts.size:
            self._frames(starts + self._spec.win // 2, power)
        self._base += data.size
        return self._out

    def flush(self, now: datetime) -> list[Output]:
        self._out = []
        if self._start is None:
            return []
        self._finish()
        return self._out

    def time_of(self, index: int) -> datetime:
        """The time of the sample at absolute ``index`` (counted from the first sample ever fed)."""
        assert self._start is not None
        return self.at(self._start, index - self._block_base)

    @abstractmethod
    def _frames(self, centres: Ints, power: Floats) -> None:
        """Decide on the frames centred at ``centres`` (absolute sample indices)."""

    @abstractmethod
    def _finish(self) -> None:
        """End what is pending: the stream is over, or has gone quiet."""
