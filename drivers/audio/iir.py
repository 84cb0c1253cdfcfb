"""Butterworth low-passes as second-order sections, and running them with carried state, without importing
``scipy.signal``.

Why. ``scipy.signal`` takes 0.6 s of CPU to import (it pulls in scipy.stats and more), a good part of a
decode's start-up, and its ``sosfilt`` spends about 100 us of Python (validation, array-API dispatch,
copies) around every call of its compiled kernel, more than the kernel itself on the blocks a decoder
filters. Here :func:`butter_lowpass` designs the filter as scipy's ``butter(order, cutoff, fs=rate,
output="sos")`` does (the analog prototype's poles, the pre-warped bilinear transform, the same pairing of
poles and zeros into sections, in the same arithmetic: equal to it, tested), and :func:`sosfilt` calls
scipy's compiled kernel (``scipy/signal/_sosfilt``) itself, loaded without running the package's
``__init__`` (:mod:`drivers.audio.compiled`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.audio import compiled

Float = npt.NDArray[np.float64]

_KERNEL: Callable[..., None] = compiled.load("scipy.signal._sosfilt")._sosfilt


def _cplxreal(z: npt.NDArray[np.complex128]) -> tuple[npt.NDArray[np.complex128], Float]:
    """scipy's ``_cplxreal`` for the poles of a Butterworth filter (distinct real parts): the complex
    ones of positive imaginary part, averaged with their conjugates, and the real ones, each sorted."""
    tol = 100 * np.finfo(np.float64).eps
    z = z[np.lexsort((abs(z.imag), z.real))]
    real = abs(z.imag) <= tol * abs(z)
    zr = z[real].real
    z = z[~real]
    zp, zn = z[z.imag > 0], z[z.imag < 0]
    return (zp + zn.conj()) / 2, zr


def butter_lowpass(order: int, cutoff_hz: float, rate: float) -> Float:
    """A Butterworth low-pass of ``order`` with its -3 dB corner at ``cutoff_hz``, for audio at ``rate``:
    second-order sections (rows of b0 b1 b2 a0 a1 a2), as ``scipy.signal.butter(order, cutoff_hz,
    fs=rate, output="sos")``."""
    if not 0 < cutoff_hz < rate / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz outside (0, {rate / 2}) Hz")
    # Analog prototype, pre-warped to the corner (the bilinear transform at fs = 2, as scipy normalises).
    m = np.arange(-order + 1, order, 2, dtype=np.float64)
    p = -np.exp(1j * np.pi * m / (2 * order))
    warped = float(2 * 2.0 * np.tan(np.pi * np.float64(cutoff_hz / (rate / 2)) / 2.0))
    p = warped * p
    k = 1.0 * warped**order
    fs2 = 4.0
    pz = (fs2 + p) / (fs2 - p)
    kz = k * np.real(1.0 / np.prod(fs2 - p))
    zeros = -np.ones(order)
    poles: npt.NDArray[Any] = pz
    if order % 2:  # scipy's "nearest" pairing pads an odd count with a pole and a zero at the origin
        poles = np.concatenate((pz, [0.0]))
        zeros = np.concatenate((zeros, [0.0]))
    pc, pr = _cplxreal(poles.astype(np.complex128))
    plist: list[complex] = [*pc.tolist(), *(complex(v) for v in pr.tolist())]
    zlist: list[float] = sorted(zeros.tolist())
    sections = (poles.size + 1) // 2
    sos = np.zeros((sections, 6))

    def worst(cands: list[complex]) -> int:  # the pole nearest the unit circle (first of equals)
        return int(np.argmin(np.abs(1 - np.abs(np.asarray(cands)))))

    def nearest(to: complex) -> int:  # the zero nearest a pole (every zero is real here)
        return int(np.argsort(np.abs(np.asarray(zlist) - to))[0])

    # From the last section back, each takes the pole left nearest the unit circle (zpk2sos "nearest").
    for si in range(sections - 1, -1, -1):
        p1 = plist.pop(worst(plist))
        real_left = [q for q in plist if q.imag == 0]
        if p1.imag == 0 and not real_left:
            z1 = zlist.pop(nearest(p1))
            b, a = np.poly([z1, 0]), np.poly([p1.real, 0])
        else:
            if p1.imag == 0:
                p2 = real_left[worst(real_left)]
                plist.remove(p2)
            else:
                p2 = p1.conjugate()
            z1 = zlist.pop(nearest(p1))
            if zlist:
                z2 = zlist.pop(nearest(p1))
                b = np.poly([z1, z2])
            else:
                b = np.poly([z1])
            a = np.poly([p1, p2])
            if np.iscomplexobj(a):
                a = a.real
        sos[si, 3 - len(b) : 3] = b
        sos[si, 6 - len(a) : 6] = a
    sos[0, :3] *= kz
    return sos


def sosfilt(sos: Float, x: npt.NDArray[Any], zi: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """``x`` through the sections ``sos`` along its last axis, after the input that left the state ``zi``
    (shape (sections, *x.shape[:-1], 2), zeros at first): the output and the state after it, as
    ``scipy.signal.sosfilt(sos, x, axis=-1, zi=zi)``. Neither argument is changed."""
    dtype = np.result_type(sos, x, zi)
    if x.ndim == 1:  # one signal (most calls): its state is (sections, 2) as the kernel takes it, for a row
        y = np.array(x[None, :], dtype, order="C")
        state = np.array(zi[None], dtype, order="C")
        _KERNEL(np.asarray(sos, dtype), y, state)
        return y[0], state[0]
    shape = x.shape
    y = np.array(x.reshape(-1, shape[-1]), dtype, order="C")  # the kernel filters in place
    state = np.array(np.moveaxis(zi, 0, -2).reshape(-1, sos.shape[0], 2), dtype, order="C")
    _KERNEL(np.asarray(sos, dtype), y, state)
    return y.reshape(shape), np.moveaxis(state.reshape(*shape[:-1], sos.shape[0], 2), -2, 0)


def sosfilt_runs(
    sos: Float, x: npt.NDArray[Any], counts: list[int], zi: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """The 1-D ``x`` as consecutive runs (``counts[k]`` samples for run ``k``, in order), each through the
    sections ``sos`` from its own state ``zi[:, k]`` (shape (sections, runs, 2)): the output and the states
    after each run (a run with no samples keeps its state). The same as :func:`sosfilt` over a 2-D array of
    one run per row, without padding the rows to the longest: what it saves when the runs differ in length
    (the slicers of a demodulator, each with its own number of crossings)."""
    dtype = np.result_type(sos, x, zi)
    y = np.array(x, dtype, order="C")
    state = np.array(np.moveaxis(zi, 0, -2), dtype, order="C")  # (runs, sections, 2), as the kernel takes it
    coefficients = np.asarray(sos, dtype)
    at = 0
    for k, n in enumerate(counts):
        if n:
            _KERNEL(coefficients, y[None, at : at + n], state[k : k + 1])
            at += n
    return y, np.moveaxis(state, -2, 0)
