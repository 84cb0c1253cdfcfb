"""The mixers' oscillators read as slices of a repeated table: the tones' own values at every sample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.audio.oscillator import Oscillators


@pytest.mark.parametrize(("tones", "rate", "step"), [((1200, 2200), 22050, 2), ((1200, 2200), 44100, 4),
                                                     ((1200, 2200), 48000, 5), ((1500,), 8000, 1),
                                                     ((1800,), 22050, 1), ((1200, 2200), 8000, 1)])
@given(first=st.integers(0, 10**9), count=st.integers(0, 5000))
def test_a_run_of_samples_is_each_tone_at_those_samples(tones: tuple[int, ...], rate: int, step: int, first: int,
                                                       count: int) -> None:
    lo = Oscillators(tones, rate, step)
    first -= first % step
    got = lo.at(first, count)
    assert got.shape == (len(tones), count)
    n = first + step * np.arange(count)
    # The same values as one period indexed by each sample's index modulo the period (what the mixers
    # gathered before), and within rounding of the tone computed at the sample itself.
    period = rate // np.gcd.reduce([rate, *tones])
    one = np.stack([np.exp(-2j * np.pi * f * np.arange(period) / rate) for f in tones])
    assert np.array_equal(got, one[:, n % period])
    assert np.allclose(got, np.exp(-2j * np.pi * np.outer(tones, n % (rate * 10)) / rate), atol=1e-9)
