"""The FIR filter with carried state against scipy's lfilter, and its pieces against one pass over the block."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from drivers.audio.fir import FIR_PIECE, fir


def one_pass(taps: np.ndarray, x: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each output's sum taken tap by tap over the whole block: the order fir's pieces must keep."""
    acc = np.zeros(x.size + taps.size - 1, np.complex128)
    for k, tap in enumerate(taps.tolist()):
        acc[k : k + x.size] += tap * x
    acc[: state.size] += state
    return acc[: x.size], acc[x.size :]


@pytest.mark.parametrize("n", [1, 7, 1000, FIR_PIECE - 3, FIR_PIECE, 3 * FIR_PIECE + 5])
@pytest.mark.parametrize("ntaps", [1, 2, 13, 19])
def test_complex_fir_is_lfilter_and_the_same_sums_as_one_pass(n: int, ntaps: int) -> None:
    rng = np.random.default_rng(n * 100 + ntaps)
    taps = rng.normal(size=ntaps)
    x = rng.normal(size=n) + 1j * rng.normal(size=n)
    state = rng.normal(size=ntaps - 1) + 1j * rng.normal(size=ntaps - 1)
    y, after = fir(taps, x, state)
    want_y, want_after = signal.lfilter(taps, [1.0], x, zi=state)
    assert np.allclose(y, want_y, rtol=0, atol=1e-12) and np.allclose(after, want_after, rtol=0, atol=1e-12)
    exact_y, exact_after = one_pass(taps, x, state)
    assert np.array_equal(y, exact_y) and np.array_equal(after, exact_after)


def test_a_block_split_anywhere_gives_the_same_output() -> None:
    rng = np.random.default_rng(3)
    taps = np.cos(np.linspace(-1.4, 1.4, 19))
    x = rng.normal(size=40_000) + 1j * rng.normal(size=40_000)
    whole, _ = fir(taps, x, np.zeros(18, np.complex128))
    state, parts = np.zeros(18, np.complex128), []
    for piece in np.array_split(x, [1, 9000, 9001, 30_000]):
        out, state = fir(taps, piece, state)
        parts.append(out)
    assert np.allclose(np.concatenate(parts), whole, rtol=0, atol=1e-12)


def test_real_fir_is_lfilter() -> None:
    rng = np.random.default_rng(4)
    taps, x, state = rng.normal(size=9), rng.normal(size=500), rng.normal(size=8)
    y, after = fir(taps, x, state)
    want_y, want_after = signal.lfilter(taps, [1.0], x, zi=state)
    assert np.allclose(y, want_y, rtol=0, atol=1e-12) and np.allclose(after, want_after, rtol=0, atol=1e-12)
