"""Where a frame sync is: the peaks of a sync metric, shared by the MDC-1200 and FleetSync decoders.

A correlation against a sync word rises and falls over a few samples around the true position; the
candidate is the sample whose metric is the highest within ``half_width`` either side (ties go to the
first), refined to a fraction of a sample by the parabola through it and its two neighbours.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def sync_peaks(metric: npt.NDArray[np.floating], *, first: int, lo: int, hi: int, half_width: int,
               threshold: float) -> list[tuple[float, int]]:
    """(position, index into ``metric``) of each peak at or above ``threshold`` whose absolute position
    (``first`` + index) lies in ``lo`` .. ``hi`` - 1."""
    w = half_width
    # Only a sample over the one before it and not under the one after it can be the highest of its
    # neighbourhood; those are then checked against their whole neighbourhoods, all at once.
    maybe = metric >= threshold
    maybe[1:] &= metric[1:] > metric[:-1]
    maybe[:-1] &= metric[:-1] >= metric[1:]
    k0 = min(metric.size, max(0, lo - first))
    k = np.flatnonzero(maybe[k0 : max(k0, hi - first)]) + k0
    if not k.size:
        return []
    pad = np.concatenate((np.full(w, -np.inf), metric, np.full(w, -np.inf)))
    windows = np.lib.stride_tricks.sliding_window_view(pad, w)
    peak = metric[k]
    k = k[(windows[k].max(axis=1) < peak) & (windows[k + w + 1].max(axis=1) <= peak)]
    # Refined by the parabola through the peak and its two neighbours.
    inner = (k > 0) & (k < metric.size - 1)
    a, b, c = metric[np.where(inner, k - 1, k)], metric[k], metric[np.where(inner, k + 1, k)]
    den = a - 2 * b + c
    bent = inner & (den < 0)
    frac = np.clip(0.5 * (a - c) / np.where(bent, den, -1.0), -0.5, 0.5)
    pos = (first + k) + np.where(bent, frac, 0.0)
    return list(zip(pos.tolist(), k.tolist(), strict=True))
