"""A FIR filter with carried state, as ``scipy.signal.lfilter(taps, [1.0], x, zi=state)`` computes it (a
full convolution, the state added to its head, the tail the next state), without lfilter's dispatch
through ``numpy.apply_along_axis``, which cost more than the convolution on the blocks a decoder filters
(a few thousand samples, a few dozen taps)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FIR_PIECE = 8192  # outputs computed together: 128 KiB of (re, im) pairs and as much scratch


def fir(taps: npt.NDArray[Any], x: npt.NDArray[Any], state: npt.NDArray[Any]) -> tuple[npt.NDArray[Any],
                                                                                       npt.NDArray[Any]]:
    """``x`` through ``taps`` (1-D, real), after the input that left ``state`` (taps.size - 1 values,
    zeros at first): the output, as long as ``x``, and the state after it."""
    if not x.size:
        return x[:0], state
    if np.iscomplexobj(x):
        # numpy's complex convolution is a dot product per output: for short real taps, a shifted
        # multiply-add per tap over the (re, im) pairs takes 40 % of its time. The outputs are made in
        # pieces that stay in the cache (a block of audio is larger than it), each output's sum taken
        # tap by tap in the same order as a whole-block pass would: the same values.
        n, reach = x.size, taps.size - 1
        padded = np.zeros((n + 2 * reach, 2))
        padded[reach : reach + n] = np.ascontiguousarray(x, np.complex128).view(np.float64).reshape(-1, 2)
        pairs = np.empty((n + reach, 2))
        product = np.empty((min(FIR_PIECE, n + reach), 2))
        weights = taps.tolist()
        for a in range(0, n + reach, FIR_PIECE):
            b = min(a + FIR_PIECE, n + reach)
            out, scratch = pairs[a:b], product[: b - a]
            np.multiply(padded[a + reach : b + reach], weights[0], out=out)
            for k in range(1, len(weights)):
                np.multiply(padded[a + reach - k : b + reach - k], weights[k], out=scratch)
                np.add(out, scratch, out=out)
        full = pairs.view(np.complex128).ravel()
    else:
        full = np.convolve(taps, x)
    full[: state.size] += state
    return full[: x.size], full[x.size :]
