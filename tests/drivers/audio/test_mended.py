"""What a decoder does to its own copy of the audio before its filters (AFSK1200, MDC-1200, FleetSync, DMR)."""

from __future__ import annotations

import numpy as np

from drivers.audio.base import mended


def test_nan_is_silence_and_the_far_beyond_full_scale_is_clipped_in_place() -> None:
    x = np.array([0.5, np.nan, np.inf, -np.inf, 7.0, -1e300, -0.25])
    assert mended(x) is x
    assert x.tolist() == [0.5, 0.0, 1.0, -1.0, 4.0, -4.0, -0.25]


def test_audio_within_range_is_left_as_it_is() -> None:
    x = np.linspace(-4.0, 4.0, 101, dtype=np.float32)
    assert np.array_equal(mended(x.copy()), x)
