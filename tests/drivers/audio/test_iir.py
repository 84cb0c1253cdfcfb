"""The Butterworth design and the section filter of drivers.audio.iir against scipy.signal's own."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from drivers.audio.iir import butter_lowpass, sosfilt, sosfilt_runs


@pytest.mark.parametrize("order", [2, 3, 4, 5, 6])
@pytest.mark.parametrize(("cutoff", "rate"), [(480.0, 9600), (660.0, 11025), (396.0, 11025), (4000.0, 22050),
                                               (4000.0, 44100), (4000.0, 48000), (1500.0, 44100)])
def test_butter_lowpass_is_scipys_design(order: int, cutoff: float, rate: int) -> None:
    ours = butter_lowpass(order, cutoff, rate)
    assert np.array_equal(ours, signal.butter(order, cutoff, fs=rate, output="sos"))


def test_butter_lowpass_rejects_a_corner_outside_the_band() -> None:
    with pytest.raises(ValueError, match="cutoff"):
        butter_lowpass(4, 5000.0, 9600)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_sosfilt_is_scipys_and_chunking_invariant(dtype: type) -> None:
    rng = np.random.default_rng(7)
    sos = butter_lowpass(3, 480.0, 9600)
    x: np.ndarray = rng.normal(size=(2, 3000)).astype(dtype)
    if dtype is np.complex128:
        x = x + 1j * rng.normal(size=x.shape)
    zi = rng.normal(size=(sos.shape[0], 2, 2))
    before = (x.copy(), zi.copy())
    y, z = sosfilt(sos, x, zi)
    want_y, want_z = signal.sosfilt(sos, x, axis=-1, zi=zi)
    assert np.array_equal(y, want_y) and np.array_equal(z, want_z)
    assert np.array_equal(x, before[0]) and np.array_equal(zi, before[1])  # the arguments are untouched
    state, parts = zi, []
    for piece in np.array_split(x, [1, 700, 701, 2500], axis=1):
        out, state = sosfilt(sos, piece, state)
        parts.append(out)
    assert np.array_equal(np.concatenate(parts, axis=1), y) and np.array_equal(state, z)
    y1, z1 = sosfilt(sos, x[0], zi[:, 0])  # one signal: state (sections, 2)
    assert np.array_equal(y1, y[0]) and np.array_equal(z1, z[:, 0])
    assert np.array_equal(x, before[0]) and np.array_equal(zi, before[1])


@pytest.mark.parametrize("counts", [[5, 0, 7, 3], [0, 0, 4], [1], [9, 1, 0]])
def test_sosfilt_runs_is_sosfilt_over_rows_padded_to_the_longest(counts: list[int]) -> None:
    """Each run filtered from its own state, as scipy filters the rows of a padded array: the outputs of
    the run's samples and the states after them equal; a run with no samples keeps its state."""
    rng = np.random.default_rng(len(counts))
    sos = butter_lowpass(3, 480.0, 9600)
    x = rng.normal(size=sum(counts)) + 1j * rng.normal(size=sum(counts))
    zi = rng.normal(size=(sos.shape[0], len(counts), 2)) + 0j
    padded = np.zeros((len(counts), max(counts)), np.complex128)
    starts = np.cumsum([0, *counts[:-1]])
    for k, (at, n) in enumerate(zip(starts, counts, strict=True)):
        padded[k, :n] = x[at : at + n]
    before = (x.copy(), zi.copy())
    y, z = sosfilt_runs(sos, x, counts, zi)
    for k, (at, n) in enumerate(zip(starts, counts, strict=True)):
        if n == 0:
            assert np.array_equal(z[:, k], zi[:, k])
            continue
        want_y, want_z = signal.sosfilt(sos, padded[k, :n], zi=zi[:, k])
        assert np.array_equal(y[at : at + n], want_y)
        assert np.array_equal(z[:, k], want_z)
    assert np.array_equal(x, before[0]) and np.array_equal(zi, before[1])  # the arguments are untouched
