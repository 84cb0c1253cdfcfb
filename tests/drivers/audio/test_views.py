"""The strided views the resampler, the spectra and the sync searches read their windows through: the
same values as numpy's as_strided, read-only, and never past the end of the array."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.lib.stride_tricks import as_strided

from drivers.audio.views import strided


@given(st.integers(1, 200), st.integers(0, 50), st.integers(1, 40), st.integers(1, 5),
       st.sampled_from([np.float32, np.float64]))
def test_every_window_as_as_strided_gives_it(size: int, skip: int, width: int, hop: int, dtype: type) -> None:
    base: np.ndarray = np.arange(size + skip, dtype=dtype)[skip:]  # a slice, as a block held after a trim is
    count = (size - width) // hop + 1
    if count < 1:
        return
    step = base.strides[0]
    got = strided(base, (count, width), (hop * step, step))
    assert np.array_equal(got, as_strided(base, (count, width), (hop * step, step)))
    assert not got.flags.writeable


def test_a_view_past_the_end_is_refused() -> None:
    base = np.zeros(10)
    with pytest.raises(ValueError, match="strides is incompatible"):
        strided(base, (3, 5), (8 * 3, 8))  # its last window would read elements 10 and 11
