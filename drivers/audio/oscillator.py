"""Local oscillators for the mixers, read as one slice of a table per block.

A tone of ``f`` Hz sampled at ``rate`` repeats every ``rate / gcd(rate, f)`` samples, and so does any set
of such tones over their common period: a table of one period, repeated as far as the longest block yet,
gives a block's oscillator as a slice, where indexing one period by each sample's index modulo the period
cost three times as much (a gather, and the index array made for it). The values are those of the one
period, whatever the sample's index.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Complex = npt.NDArray[np.complex128]


class Oscillators:
    """e^{-2 pi i f n / rate} for each of ``tones_hz`` (whole numbers of Hz), at every ``step``-th sample
    ``n``: :meth:`at` gives them for a run of those samples."""

    def __init__(self, tones_hz: tuple[int, ...], rate: int, step: int = 1) -> None:
        period = rate // math.gcd(rate, *tones_hz)  # samples that hold whole cycles of every tone
        self.step = step
        self.period = period // math.gcd(period, step)  # the sampled tones repeat after this many steps
        n = (np.arange(self.period) * step) % period
        self._one = np.stack([np.exp(-2j * np.pi * f * n / rate) for f in tones_hz])
        self._table = self._one

    def at(self, first: int, count: int) -> Complex:
        """(tones, count): the oscillators at the samples ``first``, ``first + step``, ... (``first`` a
        multiple of ``step``). A view: not to be written to."""
        j = (first // self.step) % self.period
        if j + count > self._table.shape[1]:
            self._table = np.tile(self._one, (1, -(-(j + count) // self.period)))
        return self._table[:, j : j + count]
